//! Learning-coefficient oracles and the small dense linear algebra behind them.
//!
//! * [`oracles`]: the formulas (Aoyagi's λ for deep linear networks, the regular model's exact
//!   finite-nβ expectation from Hessian eigenvalues); pure.
//! * [`linalg`]: a small dense solver for the regular truth from a Hessian and for
//!   least-squares minima.

pub mod linalg;
pub mod oracles;

pub use oracles::{aoyagi_deep_linear_llc, regular_expected_llc};
