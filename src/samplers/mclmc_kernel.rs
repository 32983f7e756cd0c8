//! One MCLMC chain's state and step, shared by sampling ([`super::mclmc`]) and tuning
//! ([`super::mclmc_tuning`]), so that neither imports the other.
//!
//! Input: the posterior, the integrator and an RNG (for the first velocity). A [`Kernel`] holds
//! the position x, the unit velocity u, the gradient and the diagonal preconditioner σ, with
//! preallocated buffers; [`Kernel::step`] advances it by one integrator step with partial
//! velocity refresh and undoes a step that produces a non-finite value (see `super::mclmc` for
//! the dynamics).

use rand::Rng;
use rand_distr::StandardNormal;

use super::NonFinite;
use super::mclmc_settings::Integrator;
use super::vecops::{all_finite, fill_unit_vector, normalize};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// McLachlan's minimal-norm two-stage coefficient (McLachlan 1995), as in BlackJAX.
const MCLACHLAN_B1: f64 = 0.193_183_327_503_783_6;

/// Alternating velocity / position coefficients of one integrator step (palindromic; odd
/// length; starts and ends with a velocity update).
fn coefficients(integrator: Integrator) -> &'static [f64] {
    match integrator {
        Integrator::IsokineticLeapfrog => &[0.5, 1.0, 0.5],
        Integrator::IsokineticMclachlan => &[
            MCLACHLAN_B1,
            0.5,
            1.0 - 2.0 * MCLACHLAN_B1,
            0.5,
            MCLACHLAN_B1,
        ],
    }
}

/// The outcome of one MCLMC step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    /// Kinetic energy change minus log p change; 0 for an undone step.
    pub energy_change: f64,
    /// False when the step produced a non-finite value and was undone.
    pub ok: bool,
}

/// A chain's state, its preconditioner and its preallocated buffers.
pub(super) struct Kernel<'p, 'm, F: Real, M: LossModel<F>> {
    post: &'p Posterior<'m, F, M>,
    ws: M::Workspace,
    coefs: &'static [f64],
    pub x: Vec<F>,
    u: Vec<F>,
    grad: Vec<F>,
    logp: f64,
    pub loss: F,
    x_prev: Vec<F>,
    grad_prev: Vec<F>,
    /// Diagonal preconditioner: the scale of each coordinate (posterior std estimates).
    pub sigma: Vec<F>,
    pub grad_evals: u64,
    pub non_finite: NonFinite,
}

impl<'p, 'm, F: Real, M: LossModel<F>> Kernel<'p, 'm, F, M> {
    pub fn new<R: Rng>(post: &'p Posterior<'m, F, M>, integrator: Integrator, rng: &mut R) -> Self {
        let d = post.dim();
        let mut ws = post.model.workspace(post.model.n_data());
        let x = post.w_star.clone();
        let mut grad = vec![F::zero(); d];
        let eval = post.logp_grad(&x, &mut grad, &mut ws);
        let mut u = vec![F::zero(); d];
        fill_unit_vector(rng, &mut u);
        Kernel {
            post,
            ws,
            coefs: coefficients(integrator),
            x,
            u,
            grad,
            logp: eval.logp.f64(),
            loss: eval.loss,
            x_prev: vec![F::zero(); d],
            grad_prev: vec![F::zero(); d],
            sigma: vec![F::one(); d],
            grad_evals: 1,
            non_finite: NonFinite::default(),
        }
    }

    pub fn dim(&self) -> usize {
        self.x.len()
    }

    pub fn workspace(&mut self) -> &mut M::Workspace {
        &mut self.ws
    }

    pub fn posterior(&self) -> &'p Posterior<'m, F, M> {
        self.post
    }

    /// Partial refresh over time `t`: u ← (u + νz)/‖u + νz‖ with ν = √((e^{2t/L} − 1)/d),
    /// which decorrelates u over a distance L.
    fn refresh<R: Rng>(&mut self, t: f64, l: f64, rng: &mut R) {
        let nu = (((2.0 * t / l).exp() - 1.0) / self.dim() as f64).sqrt();
        for u in self.u.iter_mut() {
            let z: f64 = rng.sample(StandardNormal);
            *u += F::of(nu * z);
        }
        normalize(&mut self.u);
    }

    /// ESH velocity update over time `t` with the current gradient; returns the kinetic
    /// energy change. With g̃ = σ⊙∇log p, ĝ = g̃/‖g̃‖, δ = t‖g̃‖/(d−1), ζ = e^{−δ} and
    /// c = u·ĝ: u ← normalize(ĝ(1−ζ)(1+ζ+c(1−ζ)) + 2ζu), ΔK = (d−1)(δ − ln 2 + ln(1+c+(1−c)ζ²)).
    fn velocity_update(&mut self, t: f64) -> f64 {
        let dm1 = (self.dim() - 1) as f64;
        let mut norm_sq = 0.0;
        let mut u_dot_g = 0.0;
        for ((&g, &s), &u) in self.grad.iter().zip(&self.sigma).zip(&self.u) {
            let gs = g.f64() * s.f64();
            norm_sq += gs * gs;
            u_dot_g += u.f64() * gs;
        }
        let norm = norm_sq.sqrt();
        // A vanishing gradient leaves u alone (δ = 0, ζ = 1 gives u ← normalize(2u)).
        let (inv_norm, c) = if norm > 0.0 {
            (1.0 / norm, u_dot_g / norm)
        } else {
            (0.0, 0.0)
        };
        let delta = t * norm / dm1;
        let zeta = (-delta).exp();
        let along = (1.0 - zeta) * (1.0 + zeta + c * (1.0 - zeta)) * inv_norm;
        for ((u, &g), &s) in self.u.iter_mut().zip(&self.grad).zip(&self.sigma) {
            *u = F::of(along * g.f64() * s.f64() + 2.0 * zeta * u.f64());
        }
        normalize(&mut self.u);
        dm1 * (delta - std::f64::consts::LN_2 + (1.0 + c + (1.0 - c) * zeta * zeta).ln())
    }

    /// Position update over time `t`, then log p and its gradient at the new position.
    fn position_update(&mut self, t: f64) {
        let tf = F::of(t);
        for ((x, &u), &s) in self.x.iter_mut().zip(&self.u).zip(&self.sigma) {
            *x += tf * s * u;
        }
        let eval = self.post.logp_grad(&self.x, &mut self.grad, &mut self.ws);
        self.grad_evals += 1;
        self.logp = eval.logp.f64();
        self.loss = eval.loss;
    }

    /// One MCLMC step of size `eps` with decoherence length `l`.
    pub fn step<R: Rng>(&mut self, eps: f64, l: f64, rng: &mut R) -> Step {
        self.x_prev.copy_from_slice(&self.x);
        self.grad_prev.copy_from_slice(&self.grad);
        let (logp0, loss0) = (self.logp, self.loss);

        self.refresh(0.5 * eps, l, rng);
        let mut kinetic_change = 0.0;
        for (i, &c) in self.coefs.iter().enumerate() {
            if i % 2 == 0 {
                kinetic_change += self.velocity_update(eps * c);
            } else {
                self.position_update(eps * c);
            }
        }
        self.refresh(0.5 * eps, l, rng);

        let energy_change = kinetic_change - (self.logp - logp0);
        let ok = energy_change.is_finite() && all_finite(&self.x) && all_finite(&self.u);
        self.non_finite.observe(!ok);
        if ok {
            return Step { energy_change, ok };
        }
        // Undo: previous position, log p and gradient; a fresh direction (the old one led
        // into the bad region).
        std::mem::swap(&mut self.x, &mut self.x_prev);
        std::mem::swap(&mut self.grad, &mut self.grad_prev);
        self.logp = logp0;
        self.loss = loss0;
        fill_unit_vector(rng, &mut self.u);
        Step {
            energy_change: 0.0,
            ok,
        }
    }
}
