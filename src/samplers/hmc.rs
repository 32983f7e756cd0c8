//! Hamiltonian Monte Carlo with a diagonal inverse mass matrix and Stan's windowed warmup.
//!
//! Input: an [`HmcConfig`], the posterior, and the chain's RNG. Output: the chain's
//! [`ChainTrace`]. The chain starts at w*. During `warmup` transitions the step size is dual-
//! averaged toward `target_acceptance` and the inverse mass matrix is re-estimated at the end of
//! each slow window ([`super::window_adaptation`]); warmup transitions are discarded apart from
//! their step size and acceptance, kept as `warmup_step_size` / `warmup_acceptance` for plots.
//! Then `draws` transitions are recorded: loss, LLC, `acceptance` (the Metropolis acceptance
//! probability), `energy` (the Hamiltonian of the state after the transition), `energy_error`
//! (H(proposal) − H(start)), `step_size` and `diverging` (1 when the energy error exceeded
//! `max_energy_error` or was not finite). `warmup_diverging` marks warmup transitions that
//! diverged; those are expected while the step size is being found and are not warned about.
//!
//! The number of leapfrog steps of each transition is drawn uniformly from
//! ⌈L/2⌉ ..= ⌊3L/2⌋ (L = `num_integration_steps`, the mean; cost per draw is unchanged on
//! average). A fixed trajectory length resonates on nearly Gaussian posteriors: once the mass
//! matrix has whitened them, trajectories of length near a multiple of π return the potential
//! energy — the LLC — to where it started. With the adapted step size, L = 10 gives a length
//! of about 2π for p ≈ 10–20: on the tests' Gaussian posterior a fixed L gave an LLC ESS of
//! 3–15 % of the draws, the jittered length 25–30 %. (Neal 2011, "MCMC using Hamiltonian
//! dynamics", recommends randomizing the trajectory for this reason.)
//!
//! Dual averaging uses Stan's constants except γ = 0.15 instead of 0.05. Stan's γ was chosen
//! for NUTS, whose acceptance statistic averages over a whole trajectory; a static trajectory
//! gives one Metropolis probability, far noisier, and with γ = 0.05 the iterates jump by
//! factors of several after a single rejection, so the averaged step size ends well inside the
//! acceptance curve. Measured on the tests' Gaussian posterior (6 runs × 4 chains, Stan's
//! 50-step final window, target 0.8): acceptance after warmup 0.90–0.92 with γ = 0.05,
//! 0.83–0.85 with 0.1, 0.81–0.82 with 0.15, 0.79–0.81 with 0.2; larger γ recovers more slowly
//! from a poor starting step, hence 0.15.
//!
//! As in Stan, a "reasonable" step size is searched (doubling or halving until a single
//! leapfrog step crosses 80 % acceptance) before dual averaging starts and again after every
//! metric update: the metric changes the scale of the step size by orders of magnitude when the
//! posterior is much narrower than 1, which dual averaging alone takes long to catch up with.

use rand::Rng;

use super::vecops::{all_finite, fill_normal, weighted_norm_sq};
use super::window_adaptation::{DiagWelford, DualAveraging, Stage, schedule};
use super::{ChainTrace, NonFinite};
use crate::config::schema::HmcConfig;
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// Acceptance probability the step-size search aims at (Stan's `init_stepsize`).
const SEARCH_ACCEPTANCE: f64 = 0.8;
/// Doublings/halvings the search may make: 2^±60 covers any sane starting value.
const SEARCH_MAX_ITERS: usize = 60;

/// One transition's statistics.
#[derive(Debug, Clone, Copy)]
struct Transition {
    accept_prob: f64,
    energy: f64,
    energy_error: f64,
    divergent: bool,
}

/// A chain's state and its preallocated buffers.
struct Chain<'p, 'm, F: Real, M: LossModel<F>> {
    post: &'p Posterior<'m, F, M>,
    ws: M::Workspace,
    x: Vec<F>,
    grad: Vec<F>,
    logp: f64,
    loss: F,
    x_new: Vec<F>,
    grad_new: Vec<F>,
    momentum: Vec<F>,
    inv_mass: Vec<F>,
    grad_evals: u64,
    non_finite: NonFinite,
}

impl<'p, 'm, F: Real, M: LossModel<F>> Chain<'p, 'm, F, M> {
    fn new(post: &'p Posterior<'m, F, M>) -> Self {
        let d = post.dim();
        let mut ws = post.model.workspace(post.model.n_data());
        let x = post.w_star.clone();
        let mut grad = vec![F::zero(); d];
        let eval = post.logp_grad(&x, &mut grad, &mut ws);
        Chain {
            post,
            ws,
            x,
            grad,
            logp: eval.logp.f64(),
            loss: eval.loss,
            x_new: vec![F::zero(); d],
            grad_new: vec![F::zero(); d],
            momentum: vec![F::zero(); d],
            inv_mass: vec![F::one(); d],
            grad_evals: 1,
            non_finite: NonFinite::default(),
        }
    }

    /// Draws p ~ N(0, M) with M = diag(1 / inv_mass).
    fn draw_momentum<R: Rng>(&mut self, rng: &mut R) {
        fill_normal(rng, &mut self.momentum);
        for (p, &w) in self.momentum.iter_mut().zip(&self.inv_mass) {
            *p /= w.sqrt();
        }
    }

    fn kinetic(&self) -> f64 {
        0.5 * weighted_norm_sq(&self.momentum, &self.inv_mass)
    }

    /// Integrates `n_steps` leapfrog steps from the current state into `x_new`/`grad_new`
    /// (with the momentum in `momentum`); returns log p at the end, or −∞ when the trajectory
    /// left the region where log p is finite (it is then abandoned early).
    fn leapfrog(&mut self, eps: F, n_steps: usize) -> (f64, F) {
        self.x_new.copy_from_slice(&self.x);
        self.grad_new.copy_from_slice(&self.grad);
        let half = eps * F::of(0.5);
        let mut end = (self.logp, self.loss);
        for _ in 0..n_steps {
            for (p, &g) in self.momentum.iter_mut().zip(&self.grad_new) {
                *p += half * g;
            }
            for ((x, &p), &w) in self
                .x_new
                .iter_mut()
                .zip(&self.momentum)
                .zip(&self.inv_mass)
            {
                *x += eps * w * p;
            }
            let eval = self
                .post
                .logp_grad(&self.x_new, &mut self.grad_new, &mut self.ws);
            self.grad_evals += 1;
            end = (eval.logp.f64(), eval.loss);
            if !end.0.is_finite() {
                return (f64::NEG_INFINITY, eval.loss);
            }
            for (p, &g) in self.momentum.iter_mut().zip(&self.grad_new) {
                *p += half * g;
            }
        }
        end
    }

    /// One HMC transition with Metropolis correction; the trajectory has a random number of
    /// steps with mean `mean_steps` (see the module doc).
    fn transition<R: Rng>(
        &mut self,
        eps: f64,
        mean_steps: usize,
        max_energy_error: f64,
        rng: &mut R,
    ) -> Transition {
        let n_steps = rng.random_range(mean_steps.div_ceil(2)..=mean_steps + mean_steps / 2);
        self.draw_momentum(rng);
        let h0 = -self.logp + self.kinetic();
        let (logp1, loss1) = self.leapfrog(F::of(eps), n_steps);
        let h1 = -logp1 + self.kinetic();
        let mut energy_error = h1 - h0;
        let finite = energy_error.is_finite() && all_finite(&self.x_new);
        self.non_finite.observe(!finite);
        if !finite {
            energy_error = f64::INFINITY;
        }
        let accept_prob = (-energy_error).exp().min(1.0);
        // energy_error is never NaN here (mapped to +∞ above), so this is a total order.
        let divergent = energy_error > max_energy_error;
        // Draw the uniform even when acceptance is certain so the RNG stream does not depend
        // on the outcome (keeps f32 and f64 runs aligned draw for draw).
        let u: f64 = rng.random();
        let accepted = u < accept_prob;
        if accepted {
            std::mem::swap(&mut self.x, &mut self.x_new);
            std::mem::swap(&mut self.grad, &mut self.grad_new);
            self.logp = logp1;
            self.loss = loss1;
        }
        Transition {
            accept_prob,
            energy: if accepted { h1 } else { h0 },
            energy_error,
            divergent,
        }
    }

    /// log of the Metropolis ratio of one leapfrog step of size `eps` with fresh momentum,
    /// from the current state (which is left unchanged); −∞ for a non-finite result.
    fn one_step_log_ratio<R: Rng>(&mut self, eps: f64, rng: &mut R) -> f64 {
        self.draw_momentum(rng);
        let h0 = -self.logp + self.kinetic();
        let (logp1, _) = self.leapfrog(F::of(eps), 1);
        let r = h0 - (-logp1 + self.kinetic());
        if r.is_nan() { f64::NEG_INFINITY } else { r }
    }

    /// Stan's `init_stepsize`: doubles (or halves) `eps` until one leapfrog step's acceptance
    /// crosses [`SEARCH_ACCEPTANCE`]. Returns `eps` unchanged when no finite answer is found.
    fn reasonable_step_size<R: Rng>(&mut self, eps: f64, rng: &mut R) -> f64 {
        let threshold = SEARCH_ACCEPTANCE.ln();
        let mut e = eps;
        let up = self.one_step_log_ratio(e, rng) > threshold;
        for _ in 0..SEARCH_MAX_ITERS {
            let next = if up { 2.0 * e } else { 0.5 * e };
            if !(next.is_finite() && next > 0.0) {
                break;
            }
            e = next;
            let r = self.one_step_log_ratio(e, rng);
            if (up && r <= threshold) || (!up && r >= threshold) {
                return e;
            }
        }
        if e.is_finite() && e > 0.0 { e } else { eps }
    }
}

/// Runs one HMC chain (warmup, then draws) and returns its trace.
pub(super) fn run_chain<F: Real, M: LossModel<F>, R: Rng>(
    cfg: &HmcConfig,
    post: &Posterior<'_, F, M>,
    rng: &mut R,
    chain_index: usize,
) -> ChainTrace {
    let mut chain = Chain::new(post);
    let n_steps = cfg.num_integration_steps;
    let max_err = cfg.max_energy_error;

    // ---- warmup
    let stages = schedule(cfg.warmup, cfg.adapt_mass_matrix);
    let mut warm_eps = Vec::with_capacity(cfg.warmup);
    let mut warm_acc = Vec::with_capacity(cfg.warmup);
    let mut warm_div = Vec::with_capacity(cfg.warmup);
    let mut eps = cfg.step_size;
    if cfg.adapt_step_size && cfg.warmup > 0 {
        eps = chain.reasonable_step_size(eps, rng);
    }
    let mut da = DualAveraging::new(eps, cfg.target_acceptance);
    let mut welford = DiagWelford::new(post.dim());
    for stage in stages {
        let t = chain.transition(eps, n_steps, max_err, rng);
        warm_eps.push(eps);
        warm_acc.push(t.accept_prob);
        warm_div.push(if t.divergent { 1.0 } else { 0.0 });
        if cfg.adapt_step_size {
            eps = da.update(t.accept_prob);
        }
        if let Stage::Slow { window_end } = stage {
            welford.add(&chain.x, &post.w_star);
            if window_end {
                welford.finish_window(&mut chain.inv_mass);
                if cfg.adapt_step_size {
                    eps = chain.reasonable_step_size(da.averaged(), rng);
                    da = DualAveraging::new(eps, cfg.target_acceptance);
                }
            }
        }
    }
    if cfg.adapt_step_size && cfg.warmup > 0 {
        eps = da.averaged();
    }
    // Divergences while the step size is still being found are expected (dual averaging
    // probes too-large steps on purpose): they go to `warmup_diverging`, not to warnings.
    chain.non_finite = NonFinite::default();

    // ---- draws
    let mut trace = ChainTrace::default();
    let n = cfg.draws;
    let (mut llc, mut loss) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut acc, mut energy) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut err, mut div) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = chain.transition(eps, n_steps, max_err, rng);
        llc.push(post.llc(chain.loss));
        loss.push(chain.loss.f64());
        acc.push(t.accept_prob);
        energy.push(t.energy);
        err.push(t.energy_error);
        div.push(if t.divergent { 1.0 } else { 0.0 });
        if t.divergent {
            trace.divergences += 1;
        }
    }

    trace.acceptance_rate = Some(acc.iter().sum::<f64>() / n.max(1) as f64);
    trace.llc = llc;
    trace.loss = loss;
    trace.grad_evals = chain.grad_evals;
    let stats = &mut trace.stats;
    stats.insert("acceptance".into(), acc);
    stats.insert("energy".into(), energy);
    stats.insert("energy_error".into(), err);
    stats.insert("step_size".into(), vec![eps; n]);
    stats.insert("diverging".into(), div);
    stats.insert("warmup_step_size".into(), warm_eps);
    stats.insert("warmup_acceptance".into(), warm_acc);
    stats.insert("warmup_diverging".into(), warm_div);
    let inv_mass = chain.inv_mass.iter().map(|w| w.f64());
    let (lo, hi) = inv_mass.fold((f64::INFINITY, 0.0_f64), |(lo, hi), w| {
        (lo.min(w), hi.max(w))
    });
    trace.tuned.insert("step_size".into(), eps);
    trace.tuned.insert("inv_mass_min".into(), lo);
    trace.tuned.insert("inv_mass_max".into(), hi);
    let consequence = "each was rejected as divergent; the chain kept its state";
    if let Some(w) = chain
        .non_finite
        .warning(chain_index, "proposals", consequence)
    {
        trace.warnings.push(w);
    }
    trace
}
