//! A cheap estimate of how sharply the loss curves at w*, used to scale MCLMC's starting step
//! size and L to the posterior's width instead of to √p.
//!
//! Input: the posterior (its model and w*), a workspace and an RNG. Output: the mean curvature
//! κ ≈ tr(H)/p of L_n at w*, estimated from a few random directions v as
//! vᵀ(∇L(w* + h v) − ∇L(w*))/h (a Hessian-vector product by a gradient difference, so no
//! Hessian is ever formed), and the number of gradient evaluations spent. The posterior's
//! typical per-coordinate width is then about 1/√(nβκ + γ).

use rand::Rng;

use super::vecops::{dot, fill_unit_vector};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior, Rows};

/// Random directions probed; the estimate only seeds a tuning loop, so a handful is enough.
const PROBES: usize = 4;
/// Finite-difference step as a fraction of the width the posterior would have at unit
/// curvature, 1/√(nβ + γ): small enough to stay inside the quadratic region, large enough
/// that f32 rounding of the gradient (~1e-7 relative) is negligible against h·κ.
const STEP_FRACTION: f64 = 0.1;

/// The estimate and its cost.
#[derive(Debug, Clone, Copy)]
pub struct Curvature {
    /// Mean curvature of L_n at w* (clamped at 0: a negative estimate means w* is not a
    /// minimum, and the posterior is then at least as wide as the localization allows).
    pub mean: f64,
    pub grad_evals: u64,
}

impl Curvature {
    /// The posterior's typical per-coordinate standard deviation, 1/√(nβκ + γ).
    pub fn width(&self, n_beta: f64, gamma: f64) -> f64 {
        1.0 / (n_beta * self.mean + gamma).sqrt()
    }
}

/// Probes the mean curvature of L_n at w*. Allocates its probe buffers (it runs once per
/// chain, before the step loop).
pub fn probe<F: Real, M: LossModel<F>, R: Rng>(
    post: &Posterior<'_, F, M>,
    ws: &mut M::Workspace,
    rng: &mut R,
) -> Curvature {
    let d = post.dim();
    let h = STEP_FRACTION / (post.n_beta.f64() + post.gamma.f64()).sqrt();
    let mut g0 = vec![F::zero(); d];
    let mut g1 = vec![F::zero(); d];
    let mut v = vec![F::zero(); d];
    let mut w = vec![F::zero(); d];
    post.model.loss_grad(&post.w_star, Rows::All, &mut g0, ws);
    let mut sum = 0.0;
    let mut used = 0usize;
    for _ in 0..PROBES {
        fill_unit_vector(rng, &mut v);
        for ((wi, &si), &vi) in w.iter_mut().zip(&post.w_star).zip(&v) {
            *wi = si + F::of(h) * vi;
        }
        post.model.loss_grad(&w, Rows::All, &mut g1, ws);
        let c = (dot(&v, &g1) - dot(&v, &g0)) / h;
        if c.is_finite() {
            sum += c;
            used += 1;
        }
    }
    let mean = if used > 0 {
        (sum / used as f64).max(0.0)
    } else {
        0.0
    };
    Curvature {
        mean,
        grad_evals: 1 + PROBES as u64,
    }
}
