//! Sampler validation against known learning coefficients: the engine of `lambda-hat validate`.
//!
//! In: the names of cases. Each case is a real MLP trained by the production path ([`cases`])
//! with its known truth. Nothing here reads or writes files.
//!
//! * [`oracles`]: the formulas (Aoyagi's λ for deep linear networks, the regular model's exact
//!   finite-nβ expectation from Hessian eigenvalues); pure.
//! * [`linalg`]: the small dense solver behind the regular truth and the least-squares minimum.
//! * [`cases`]: the models, their truths, and the check that w* is the minimum.

pub mod cases;
pub mod linalg;
pub mod oracles;

pub use cases::{BuiltCase, Case};
pub use oracles::{aoyagi_deep_linear_llc, regular_expected_llc};

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("validation case {case}: cannot build the target: {message}")]
    Target { case: &'static str, message: String },
    #[error(
        "validation case {case}: training did not reach the minimum: L0 = {l0:.9e} but the least-squares minimum is {l_min:.9e}, nβ(L0 − min) = {excess:.2e} > {limit:.2e}; the estimate would be biased by about that much"
    )]
    NotAtMinimum {
        case: &'static str,
        l0: f64,
        l_min: f64,
        excess: f64,
        limit: f64,
    },
    #[error("validation case {case}, sampler {sampler}: {message}")]
    Sampler {
        case: &'static str,
        sampler: &'static str,
        message: String,
    },
}
