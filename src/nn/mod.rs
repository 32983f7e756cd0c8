//! The neural network of a target: an MLP over one flat parameter buffer, with hand-written
//! forward and backward passes, and its empirical loss on a data set.
//!
//! Data enters as a resolved [`ModelConfig`](crate::config::schema::ModelConfig) (→ [`Mlp`]), a
//! flat parameter buffer (layout in [`layout`]) and the data matrices X, Y (→ [`MlpLoss`]).
//! It leaves as predictions, losses and gradients (through
//! [`LossModel`](crate::posterior::LossModel), which the trainer and the samplers use) and as the
//! named arrays of params.npz ([`Layout::to_named`]).
//!
//! - [`layout`]: where each W and b sits in the flat buffer; params.npz names.
//! - [`mlp`]: the architecture, initialization, forward/backward on one chunk of rows.
//! - [`loss`]: the mean squared error over all rows or a minibatch, chunked and parallel.
//! - `moments`: a moment-matched small data set for the full-batch loss of affine networks.
//! - `narrow`: row-loop kernels for narrow layers (fused passes, no general matrix product);
//!   `narrow/tiles`: their weight and bias gradients in AVX-512 register tiles.
//! - `activation`, `tanh`, `matmul`: elementwise activations (with a vectorizable tanh) and the
//!   general matrix-product backend of wide layers.

mod activation;
mod aligned;
pub mod layout;
pub mod loss;
mod matmul;
pub mod mlp;
mod moments;
mod narrow;

#[cfg(test)]
mod gradient_tests;

pub use layout::{LayerShape, Layout};
pub use loss::{MlpLoss, MlpWorkspace};
pub use mlp::{KernelChoice, Mlp};

/// What can be wrong with a model, its parameters or its data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NnError {
    #[error(
        "layer {index} of the network has width 0 (layer 0 is the input, the last is the output)"
    )]
    EmptyLayer { index: usize },
    #[error("the network is too large: its parameter count overflows")]
    TooLarge,
    #[error("model has depth {depth} but no `widths`: resolve `target_params` to widths first")]
    UnresolvedWidths { depth: usize },
    #[error("model has {widths} widths but depth {depth}")]
    WidthsDepth { widths: usize, depth: usize },
    #[error("parameter buffer has {found} values, the model has {expected} parameters")]
    ParamLength { expected: usize, found: usize },
    #[error("{what} has {found} columns, the model expects {expected}")]
    DataShape {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("X has {x} rows but Y has {y}")]
    RowMismatch { x: usize, y: usize },
    #[error("parameter array `{name}` is missing")]
    MissingArray { name: String },
    #[error("parameter array `{name}` does not belong to this model")]
    UnexpectedArray { name: String },
    #[error("parameter array `{name}` appears twice")]
    DuplicateArray { name: String },
    #[error("parameter array `{name}` has shape {found:?}, the model needs {expected:?}")]
    ArrayShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
}
