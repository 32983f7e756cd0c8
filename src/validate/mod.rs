//! Sampler validation against known learning coefficients: the engine of `lambda-hat validate`.
//!
//! In: sampler configs (the presets, resolved by the CLI) and the names of cases. Each case is
//! a real MLP trained by the production path ([`cases`]); each sampler runs on it through the
//! production sampler and analysis code, and the estimate is compared with the truth
//! ([`check`]). Out: one [`check::Row`] per (case, sampler) with the verdict, rendered as a
//! text table or JSON ([`table`]). Nothing here reads or writes files.
//!
//! * [`oracles`]: the formulas (Aoyagi's λ for deep linear networks, the regular model's exact
//!   finite-nβ expectation from Hessian eigenvalues); pure.
//! * [`cases`]: the models, their truths, and the check that w* is the minimum.
//! * [`check`]: runs one sampler on one case and judges the estimate.
//! * [`quick`]: the smaller budgets of `--quick`.
//! * [`table`]: the text table and the JSON document.

pub mod cases;
pub mod check;
pub mod oracles;
pub mod quick;
pub mod table;

pub use cases::{BuiltCase, Case};
pub use check::{Row, Verdict};
pub use oracles::{aoyagi_deep_linear_llc, regular_expected_llc};

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("validation case {case}: cannot build the target: {message}")]
    Target { case: &'static str, message: String },
    #[error(
        "validation case {case}: training did not reach the minimum: L0 = {l0:.9e} but the minimum (least squares, at the rank of the network's narrowest layer) is {l_min:.9e}, nβ(L0 − min) = {excess:.2e} > {limit:.2e}; the estimate would be biased by about that much"
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
