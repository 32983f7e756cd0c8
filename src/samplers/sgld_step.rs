//! SGLD's `step_size: auto`: the step size chosen from the posterior's stiffest direction.
//!
//! In: the posterior and an RNG (derived from the run ID, so every chain of a run gets the same
//! step). Out: an [`AutoStep`] with the step size, the curvature it came from and the gradient
//! evaluations spent (counted in the run's `grad_evals`).
//!
//! Why this rule: SGLD is the Euler–Maruyama discretization of Langevin dynamics, and on a
//! direction of posterior precision a = nβh + γ its stationary variance is 1/(a(1 − εa/4))
//! instead of 1/a. The LLC sums nβh·variance over directions, so its relative bias is a
//! weighted mean of εa/4 over them, at most ε·a_max/4. Choosing ε = [`STIFFNESS_FRACTION`]/a_max
//! bounds that bias by 2.6 % (0.1/4 / (1 − 0.1/4)), well inside the 10 % a researcher asks of
//! SGLD, while keeping the step as large as that bound allows (the flat directions mix at a
//! rate proportional to ε). A hand-picked step cannot do this across models: devinterp's README
//! step (1e-3) gave +40 % on a 6-parameter regression and 87 for a truth of 4 on a deep linear
//! network; 1e-4 gave +3 to +10 %; only 1e-5 to 3e-5 came within 3 % (measured full batch on
//! n = 5,000–10,000, where nβ ≈ 600–1,100).
//!
//! Minibatch noise adds variance too, but relative to the injected noise it is about
//! ε·nβ²·Var(per-row gradient)/(4b); at this ε that is ≈ 0.1·nβ·σ²/b (σ² the noise variance
//! of the data, b the batch), below 1 % for the presets.
//!
//! a_max comes from λ_max of the Hessian of L_n at w*, by power iteration on Hessian-vector
//! products taken as gradient differences, (∇L(w* + hv) − ∇L(w*))/h, so no Hessian is formed.
//! The curvature away from w* can be larger (on deep linear networks it grows along the set of
//! equivalent weights); the chain's explosion guard ([`super::sgld`]) catches what this misses.

use rand::Rng;

use super::vecops::{dot, fill_unit_vector, normalize};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior, Rows};

/// ε · a_max: the discretization bias bound is about a quarter of it (module doc).
pub const STIFFNESS_FRACTION: f64 = 0.1;
/// Power iterations. The Rayleigh quotient approaches λ_max from below at the rate
/// (λ₂/λ₁)^(2k); with λ₂ = 0.95 λ₁, fifty iterations leave it within 1 %. An underestimate
/// by a few percent only raises the bias bound from 2.6 % to 2.7 %.
const POWER_ITERS: usize = 50;
/// Finite-difference step, as a fraction of the posterior's width at unit curvature (as in
/// [`super::curvature`]).
const STEP_FRACTION: f64 = 0.1;

/// The chosen step and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct AutoStep {
    pub step_size: f64,
    /// The largest Hessian eigenvalue of L_n at w* found (0 when none is positive).
    pub lambda_max: f64,
    pub grad_evals: u64,
}

/// Chooses SGLD's step size for `post` (see the module doc).
pub fn auto_step_size<F: Real, M: LossModel<F>, R: Rng>(
    post: &Posterior<'_, F, M>,
    rng: &mut R,
) -> AutoStep {
    let (n_beta, gamma) = (post.n_beta.f64(), post.gamma.f64());
    let (lambda_max, grad_evals) = lambda_max_at(post, &post.w_star, rng);
    AutoStep {
        step_size: STIFFNESS_FRACTION / (n_beta * lambda_max + gamma),
        lambda_max,
        grad_evals,
    }
}

/// The largest Hessian eigenvalue of L_n at `at` (clamped at 0: away from a minimum the power
/// iteration may settle on a negative one, which adds no stiffness), and the gradients spent.
/// Used at w* for the auto step, and at the chains' positions by SGLD's stiffness check.
pub fn lambda_max_at<F: Real, M: LossModel<F>, R: Rng>(
    post: &Posterior<'_, F, M>,
    at: &[F],
    rng: &mut R,
) -> (f64, u64) {
    let d = post.dim();
    let (n_beta, gamma) = (post.n_beta.f64(), post.gamma.f64());
    let h = STEP_FRACTION / (n_beta + gamma).sqrt();
    let mut ws = post.model.workspace(post.model.n_data());
    let mut g0 = vec![F::zero(); d];
    let mut g1 = vec![F::zero(); d];
    let mut v = vec![F::zero(); d];
    let mut w = vec![F::zero(); d];
    post.model.loss_grad(at, Rows::All, &mut g0, &mut ws);
    fill_unit_vector(rng, &mut v);
    let mut lambda = 0.0f64;
    for _ in 0..POWER_ITERS {
        for ((wi, &si), &vi) in w.iter_mut().zip(at).zip(&v) {
            *wi = si + F::of(h) * vi;
        }
        post.model.loss_grad(&w, Rows::All, &mut g1, &mut ws);
        // g1 ← Hv ≈ (∇L(at + hv) − ∇L(at)) / h
        for (a, &b) in g1.iter_mut().zip(&g0) {
            *a = (*a - b) / F::of(h);
        }
        let rayleigh = dot(&v, &g1);
        if !rayleigh.is_finite() {
            break;
        }
        lambda = rayleigh;
        v.copy_from_slice(&g1);
        normalize(&mut v);
        if !super::vecops::all_finite(&v) {
            break;
        }
    }
    (lambda.max(0.0), 1 + POWER_ITERS as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::PosteriorConfig;
    use crate::samplers::test_models::LinReg;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Linear regression: L_n is exactly quadratic with Hessian (2/n) X̃ᵀX̃, whose largest
    /// eigenvalue the test computes densely and compares with the power iteration's.
    #[test]
    fn finds_the_largest_hessian_eigenvalue_of_a_regression() {
        let prob = LinReg::<f64>::problem(400, 6, 0.5, 3);
        let post = Posterior::new(
            &prob.model,
            prob.w_star.clone(),
            &PosteriorConfig::default(),
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let auto = auto_step_size(&post, &mut rng);
        let exact = prob.hessian_eigs.iter().fold(0.0f64, |m, &e| m.max(e));
        // The loss is quadratic, so the finite difference is exact up to rounding (~1e-12
        // relative); the power iteration's error is (λ₂/λ₁)^40, negligible unless the top two
        // eigenvalues nearly coincide: 2 % covers a ratio up to 0.9.
        assert!(
            (auto.lambda_max / exact - 1.0).abs() < 0.02,
            "{} vs {exact}",
            auto.lambda_max
        );
        let a_max = post.n_beta * exact + post.gamma;
        assert!((auto.step_size * a_max / STIFFNESS_FRACTION - 1.0).abs() < 0.02);
        assert_eq!(auto.grad_evals, 51);
    }
}
