//! Hamiltonian Monte Carlo with a diagonal inverse mass matrix and a windowed warmup.
//!
//! Input: an [`HmcConfig`], the posterior, and one RNG per chain. Output: one [`ChainTrace`]
//! per chain. Every chain starts at w*. During `warmup` transitions the step size is adapted
//! toward `target_acceptance` and the inverse mass matrix is re-estimated at the end of each
//! slow window ([`super::window_adaptation`]); warmup transitions are discarded apart from
//! their step size and acceptance, kept as `warmup_step_size` / `warmup_acceptance` for plots.
//! Then `draws` transitions are recorded: loss, LLC, `acceptance` (the Metropolis acceptance
//! probability), `energy` (the Hamiltonian of the state after the transition), `energy_error`
//! (H(proposal) − H(start)), `step_size` and `diverging` (1 when the energy error exceeded
//! `max_energy_error` or was not finite). `warmup_diverging` marks warmup transitions that
//! diverged; those are expected while the step size is being found and are not warned about.
//!
//! Warmup, and where it departs from Stan (each chain alone, dual averaging to the end):
//! * `adaptation: pooled` (the default): the chains warm up in lockstep, one transition each
//!   per step, in parallel. Dual averaging sees their mean acceptance, the slow windows'
//!   variances all their positions, and they end warmup with one step size and one metric.
//!   `per_chain` runs the same warmup for each chain alone. Either way the chains then draw
//!   independently. A pooled step's chains share its jittered trajectory length (the first
//!   chain draws it, [`jittered_steps`]), so that no thread waits at the step's end for
//!   another's longer trajectories when the chains divide evenly among the threads: ~6 % of a
//!   run's speed (figures at `WarmupWalker::lockstep_draw`). Until 2026-12-07 each chain drew
//!   its own length there too; pooled warmups of several chains, and so their runs' draws,
//!   changed bits then (small tanh model, 4 chains: λ̂ 5.175 → 5.152, MCSE 0.05 each). The
//!   acceptance figures below were measured before that change.
//! * The last 40 % of warmup is two calibration windows (10 % and 30 %) at a fixed step size:
//!   each measures the mean acceptance and corrects the step size from it
//!   ([`calibrated_step_size`](super::window_adaptation::calibrated_step_size)). Dual
//!   averaging alone ends at a step size whose acceptance *with the step held fixed* can be far
//!   from the target: its iterates react to each rejection, and on posteriors whose curvature
//!   varies from place to place they shrink exactly when the chains meet stiff regions. Measured on a deep linear validation model:
//!   dual averaging's last 250 steps averaged 0.794 acceptance, and the same step size held
//!   fixed then gave 0.88 for 4,000 draws.
//! * Measured with `lambda-hat validate` over 20 seeds (warmup 1000, draws 2000), the run's
//!   acceptance (target 0.8) on the regular / dln432 / dln333 models:
//!   Stan's warmup 0.776–0.839 / 0.786–0.867 / 0.729–0.862 (5 of 40 deep linear runs off by
//!   more than 0.05); calibration with `per_chain` 0.793–0.812 / 0.779–0.823 / 0.731–0.833
//!   (2 off, one with 455 divergences and an LLC 5.8 % low); calibration with `pooled`
//!   0.792–0.806 / 0.780–0.816 / 0.787–0.822 (none off, LLC within 2.2 %). Pooling is the
//!   default because a single chain's windows have four times the variance, and the chain
//!   that ends warmup with too large a step stalls in the stiff parts of the posterior.
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
//! A pooled group searches from every chain and takes the geometric mean.

use rand::Rng;
use rayon::prelude::*;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::settings::{
    d_chains, d_max_energy_error, d_target_acceptance, default_true, number_or_auto,
};
use super::stat;
use super::vecops::{all_finite, fill_normal, weighted_norm_sq};
use super::window_adaptation::{
    Adaptation, MetropolisSettings, WarmupSettings, WarmupWalker, step_size_fix, windowed_warmup,
};
use super::{
    ChainTrace, Footprint, NonFinite, OPEN_TRAJECTORY_STEPS, Sampler, SamplerError, is_stuck,
};
use crate::invalid::{Invalid, count, count_or_zero};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// HMC's settings: a `name: hmc` entry of an experiments file, over `config/sampler/hmc.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmcConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    /// Adaptation steps (discarded).
    pub warmup: usize,
    pub draws: usize,
    /// Mean leapfrog steps per transition, or `auto`: a fixed integration time over the
    /// adapted step size (see [`leapfrog_steps`]).
    pub num_integration_steps: IntegrationSteps,
    /// Initial step size; adapted during warmup when `adapt_step_size`.
    pub step_size: f64,
    #[serde(default = "d_target_acceptance")]
    pub target_acceptance: f64,
    #[serde(default = "default_true")]
    pub adapt_step_size: bool,
    #[serde(default = "default_true")]
    pub adapt_mass_matrix: bool,
    /// An energy error above this marks the transition divergent.
    #[serde(default = "d_max_energy_error")]
    pub max_energy_error: f64,
    /// Whether the chains adapt together (one step size and metric) or each on its own.
    /// Left out of the serialized config (and so of run IDs) at its default.
    #[serde(default, skip_serializing_if = "Adaptation::is_default")]
    pub adaptation: Adaptation,
    /// Part of the run ID, and so of every chain's RNG seed: change it for another replicate.
    #[serde(default)]
    pub seed: u64,
}

impl Sampler for HmcConfig {
    const PRESET: &'static str = include_str!("../../config/sampler/hmc.yaml");
    /// 1,500 draws instead of the preset's 4,000 (2,000 when the figures below were measured);
    /// warmup stays (the adaptation is part of what is checked, and acceptance is judged on 4
    /// chains). Measured over 20 chain seeds (f64), relative errors: regular −0.9…+1.4 %
    /// (tolerance 3 %, sem 0.6 %), deep linear −2.0…+2.7 % (10 %).
    const QUICK_OVERRIDES: &'static str = "{ draws: 1500 }";
    const METROPOLIS: bool = true;
    const STATS: &'static [&'static str] = &[
        stat::ACCEPTANCE,
        stat::ENERGY,
        stat::ENERGY_ERROR,
        stat::STEP_SIZE,
        stat::DIVERGING,
        stat::WARMUP_STEP_SIZE,
        stat::WARMUP_ACCEPTANCE,
        stat::WARMUP_DIVERGING,
    ];

    fn chains(&self) -> usize {
        self.chains
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn target_acceptance(&self) -> Option<f64> {
        Some(self.target_acceptance)
    }

    fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        MetropolisSettings {
            draws: self.draws,
            step_size: self.step_size,
            target_acceptance: self.target_acceptance,
            max_energy_error: self.max_energy_error,
        }
        .validate(prefix, out);
        count_or_zero(out, &format!("{prefix}.warmup"), self.warmup);
        if let IntegrationSteps::Fixed(n) = self.num_integration_steps {
            count(out, &format!("{prefix}.num_integration_steps"), n);
        }
    }

    fn run_chains<F: Real, M: LossModel<F>>(
        &self,
        post: &Posterior<'_, F, M>,
        rngs: Vec<Xoshiro256PlusPlus>,
        _run_id: &str,
    ) -> Result<Vec<ChainTrace>, SamplerError> {
        // The warmup may move the chains in lockstep (pooled adaptation), so it drives them.
        Ok(run_chains(self, post, rngs))
    }

    fn fix(&self) -> String {
        step_size_fix(
            self.adapt_step_size,
            self.warmup,
            self.step_size,
            self.target_acceptance,
            ", or use name: nuts",
        )
    }

    fn gradients_per_chain(&self, _n_data: f64) -> f64 {
        let steps = match self.num_integration_steps {
            IntegrationSteps::Fixed(l) => l as f64,
            IntegrationSteps::Auto => OPEN_TRAJECTORY_STEPS,
        };
        (self.warmup + self.draws) as f64 * steps
    }

    fn footprint(&self, _params: f64, _n_data: f64) -> Footprint {
        Footprint {
            draws: self.draws as f64,
            warmup_steps: self.warmup as f64,
            extra_bytes: 0.0,
        }
    }
}

/// HMC's leapfrog steps per transition: a number, or chosen from the adapted step size.
///
/// Serialized like [`super::StepSize`]: a number stays a number, so run IDs of configs that
/// give one are unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntegrationSteps {
    Auto,
    Fixed(usize),
}

impl Serialize for IntegrationSteps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntegrationSteps::Auto => s.serialize_str("auto"),
            IntegrationSteps::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl std::fmt::Display for IntegrationSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntegrationSteps::Auto => f.write_str("auto"),
            IntegrationSteps::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for IntegrationSteps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(number_or_auto::<D, usize>(d, "a whole number")?
            .map_or(IntegrationSteps::Auto, IntegrationSteps::Fixed))
    }
}

/// The jittered trajectory length for a uniform draw `u` in [0, 1): one of ⌈L/2⌉ ..= ⌊3L/2⌋
/// (L = `mean_steps`), each equally likely (see the module doc); the lengths a pooled warmup's
/// chains share ([`WarmupWalker::lockstep_draw`]). A chain on its own draws its length with
/// `random_range` over the same set, [`jitter_range`].
pub fn jittered_steps(mean_steps: usize, u: f64) -> usize {
    let (lo, hi) = jitter_range(mean_steps).into_inner();
    // `min`: u·(hi − lo + 1) rounds up to hi − lo + 1 for u just below 1.
    lo + ((u * (hi - lo + 1) as f64) as usize).min(hi - lo)
}

/// The trajectory lengths of mean `mean_steps`: ⌈L/2⌉ ..= ⌊3L/2⌋.
fn jitter_range(mean_steps: usize) -> std::ops::RangeInclusive<usize> {
    mean_steps.div_ceil(2)..=mean_steps + mean_steps / 2
}

/// Integration time of `num_integration_steps: auto`, in the units of the adapted metric.
/// Stan's static HMC sets the number of steps the same way (its `int_time`, default 2π).
pub const AUTO_INTEGRATION_TIME: f64 = std::f64::consts::FRAC_PI_2;
/// Most mean steps `auto` may choose: NUTS's cost cap at its preset's depth 10 (2^10 − 1).
pub const AUTO_MAX_STEPS: usize = 1023;

/// The mean number of leapfrog steps of a transition at step size `eps`.
///
/// `auto` keeps the trajectory's length fixed rather than its step count: where the posterior
/// is stiff the step size shrinks, and a fixed count would shrink the distance each transition
/// travels with it (measured on a 3-layer deep linear network at γ = 1: 10 steps gave a bulk
/// ESS of 38–83 of 8,000 draws and R-hat 1.03–1.07; 50 steps, ESS 2,122).
pub fn leapfrog_steps(steps: IntegrationSteps, eps: f64) -> usize {
    match steps {
        IntegrationSteps::Fixed(n) => n,
        IntegrationSteps::Auto => {
            let n = (AUTO_INTEGRATION_TIME / eps).ceil();
            // NaN (a zero or non-finite step) falls to 1 step, the search's own scale.
            if n >= AUTO_MAX_STEPS as f64 {
                AUTO_MAX_STEPS
            } else if n >= 1.0 {
                n as usize
            } else {
                1
            }
        }
    }
}

/// Dual averaging's regularization γ for HMC: 0.15 instead of Stan's 0.05 (module doc).
const HMC_DA_GAMMA: f64 = 0.15;

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
        let n_steps = rng.random_range(jitter_range(mean_steps));
        self.transition_with(eps, n_steps, max_energy_error, rng)
    }

    /// [`Self::transition`] with a trajectory of exactly `n_steps` leapfrog steps.
    fn transition_with<R: Rng>(
        &mut self,
        eps: f64,
        n_steps: usize,
        max_energy_error: f64,
        rng: &mut R,
    ) -> Transition {
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

/// A chain with its RNG and its warmup record: what the warmup moves in lockstep.
struct Walker<'p, 'm, F: Real, M: LossModel<F>, R> {
    chain: Chain<'p, 'm, F, M>,
    rng: R,
    /// `num_integration_steps` and `max_energy_error` of the config.
    steps: IntegrationSteps,
    max_err: f64,
    /// The last warmup transition's acceptance probability, which the group's step-size
    /// adaptation averages over its chains.
    last_accept: f64,
    /// The step size the last search found (the group combines them).
    searched: f64,
    /// The adapted step size the draws use.
    eps: f64,
    warm_eps: Vec<f64>,
    warm_acc: Vec<f64>,
    warm_div: Vec<f64>,
}

impl<'p, 'm, F: Real, M: LossModel<F>, R: Rng> Walker<'p, 'm, F, M, R> {
    fn new(post: &'p Posterior<'m, F, M>, rng: R, cfg: &HmcConfig) -> Self {
        Walker {
            chain: Chain::new(post),
            rng,
            steps: cfg.num_integration_steps,
            max_err: cfg.max_energy_error,
            last_accept: 0.0,
            searched: cfg.step_size,
            eps: cfg.step_size,
            warm_eps: Vec::with_capacity(cfg.warmup),
            warm_acc: Vec::with_capacity(cfg.warmup),
            warm_div: Vec::with_capacity(cfg.warmup),
        }
    }
}

impl<F: Real, M: LossModel<F>, R: Rng + Send> WarmupWalker<F> for Walker<'_, '_, F, M, R> {
    fn warmup_transition(&mut self, eps: f64, shared: Option<f64>) {
        let mean_steps = leapfrog_steps(self.steps, eps);
        let t = match shared {
            Some(u) => {
                let n_steps = jittered_steps(mean_steps, u);
                self.chain
                    .transition_with(eps, n_steps, self.max_err, &mut self.rng)
            }
            None => self
                .chain
                .transition(eps, mean_steps, self.max_err, &mut self.rng),
        };
        self.last_accept = t.accept_prob;
        self.warm_eps.push(eps);
        self.warm_acc.push(t.accept_prob);
        self.warm_div.push(if t.divergent { 1.0 } else { 0.0 });
    }

    fn lockstep_draw(&mut self) -> Option<f64> {
        Some(self.rng.random::<f64>())
    }

    fn last_accept(&self) -> f64 {
        self.last_accept
    }

    fn search_step_size(&mut self, eps: f64) {
        self.searched = self.chain.reasonable_step_size(eps, &mut self.rng);
    }

    fn searched(&self) -> f64 {
        self.searched
    }

    fn position(&self) -> &[F] {
        &self.chain.x
    }

    fn inv_mass(&self) -> &[F] {
        &self.chain.inv_mass
    }

    fn inv_mass_mut(&mut self) -> &mut [F] {
        &mut self.chain.inv_mass
    }

    fn finish_warmup(&mut self, eps: f64) {
        self.eps = eps;
        // Divergences while the step size is still being found are expected (dual averaging
        // probes too-large steps on purpose): they go to `warmup_diverging`, not to warnings.
        self.chain.non_finite = NonFinite::default();
    }
}

/// Runs every chain of an HMC run (warmup, then draws); `rngs` holds one RNG per chain.
pub(super) fn run_chains<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &HmcConfig,
    post: &Posterior<'_, F, M>,
    rngs: Vec<R>,
) -> Vec<ChainTrace> {
    let mut walkers: Vec<_> = rngs
        .into_par_iter()
        .map(|rng| Walker::new(post, rng, cfg))
        .collect();
    match cfg.adaptation {
        // Inside a scope the loop runs on a pool thread, so each lockstep step is a cheap
        // in-pool fork-join rather than a job injected from outside the pool.
        Adaptation::Pooled => rayon::scope(|_| warmup(cfg, post, &mut walkers)),
        Adaptation::PerChain => walkers
            .par_iter_mut()
            .for_each(|w| warmup(cfg, post, std::slice::from_mut(w))),
    }
    walkers
        .into_par_iter()
        .enumerate()
        .map(|(i, w)| draws(cfg, post, w, i))
        .collect()
}

/// Runs one HMC chain with its own adaptation (the group of one that `per_chain` makes).
#[cfg(test)]
pub(super) fn run_chain<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &HmcConfig,
    post: &Posterior<'_, F, M>,
    rng: &mut R,
    chain_index: usize,
) -> ChainTrace {
    let mut w = Walker::new(post, rng, cfg);
    warmup(cfg, post, std::slice::from_mut(&mut w));
    draws(cfg, post, w, chain_index)
}

/// Windowed warmup of a group of chains ([`windowed_warmup`], shared with NUTS). Leaves the
/// adapted step size in each walker's `eps`.
fn warmup<F: Real, M: LossModel<F>, R: Rng + Send>(
    cfg: &HmcConfig,
    post: &Posterior<'_, F, M>,
    group: &mut [Walker<'_, '_, F, M, R>],
) {
    let settings = WarmupSettings {
        warmup: cfg.warmup,
        step_size: cfg.step_size,
        target_acceptance: cfg.target_acceptance,
        adapt_step_size: cfg.adapt_step_size,
        adapt_mass_matrix: cfg.adapt_mass_matrix,
        dual_averaging_gamma: HMC_DA_GAMMA,
    };
    windowed_warmup(&settings, &post.w_star, group);
}

/// Records `cfg.draws` transitions of an adapted chain and assembles its trace.
fn draws<F: Real, M: LossModel<F>, R: Rng>(
    cfg: &HmcConfig,
    post: &Posterior<'_, F, M>,
    walker: Walker<'_, '_, F, M, R>,
    chain_index: usize,
) -> ChainTrace {
    let Walker {
        mut chain,
        mut rng,
        eps,
        warm_eps,
        warm_acc,
        warm_div,
        ..
    } = walker;
    let (n_steps, max_err) = (
        leapfrog_steps(cfg.num_integration_steps, eps),
        cfg.max_energy_error,
    );
    let mut trace = ChainTrace::default();
    let n = cfg.draws;
    let (mut llc, mut loss) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut acc, mut energy) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut err, mut div) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = chain.transition(eps, n_steps, max_err, &mut rng);
        llc.push(post.llc(chain.loss));
        loss.push(chain.loss.f64());
        acc.push(t.accept_prob);
        energy.push(t.energy);
        err.push(t.energy_error);
        div.push(if t.divergent { 1.0 } else { 0.0 });
        if t.divergent {
            trace.divergences += 1;
        }
        // A chain whose transitions mostly diverge is stuck at its state: stop it early, and
        // `samplers::run` turns it into an error instead of a result (see `super::guard`).
        if is_stuck(trace.divergences, llc.len()) {
            break;
        }
    }
    let n = llc.len();

    trace.acceptance_rate = Some(acc.iter().sum::<f64>() / n.max(1) as f64);
    trace.llc = llc;
    trace.loss = loss;
    trace.grad_evals = chain.grad_evals;
    let stats = &mut trace.stats;
    stats.insert(stat::ACCEPTANCE.into(), acc);
    stats.insert(stat::ENERGY.into(), energy);
    stats.insert(stat::ENERGY_ERROR.into(), err);
    stats.insert(stat::STEP_SIZE.into(), vec![eps; n]);
    stats.insert(stat::DIVERGING.into(), div);
    stats.insert(stat::WARMUP_STEP_SIZE.into(), warm_eps);
    stats.insert(stat::WARMUP_ACCEPTANCE.into(), warm_acc);
    stats.insert(stat::WARMUP_DIVERGING.into(), warm_div);
    let inv_mass = chain.inv_mass.iter().map(|w| w.f64());
    let (lo, hi) = inv_mass.fold((f64::INFINITY, 0.0_f64), |(lo, hi), w| {
        (lo.min(w), hi.max(w))
    });
    trace.tuned.insert("step_size".into(), eps);
    trace
        .tuned
        .insert("num_integration_steps".into(), n_steps as f64);
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

#[cfg(test)]
mod step_count_tests {
    use super::*;
    use crate::samplers::SamplerConfig;

    #[test]
    fn auto_keeps_the_integration_time_and_a_number_is_honoured() {
        assert_eq!(leapfrog_steps(IntegrationSteps::Fixed(7), 0.001), 7);
        // ⌈(π/2)/ε⌉: 0.5 → 4 steps (time 2.0 ≥ π/2), 0.01 → 158.
        assert_eq!(leapfrog_steps(IntegrationSteps::Auto, 0.5), 4);
        assert_eq!(leapfrog_steps(IntegrationSteps::Auto, 0.01), 158);
        // Bounded on both sides, and never 0 or a panic for a degenerate step size.
        assert_eq!(leapfrog_steps(IntegrationSteps::Auto, 1e-9), AUTO_MAX_STEPS);
        assert_eq!(leapfrog_steps(IntegrationSteps::Auto, 100.0), 1);
        for eps in [0.0, f64::NAN, f64::INFINITY, -1.0] {
            let n = leapfrog_steps(IntegrationSteps::Auto, eps);
            assert!((1..=AUTO_MAX_STEPS).contains(&n), "{eps}: {n}");
        }
    }

    #[test]
    fn a_shared_draw_gives_each_jittered_length_equally_often() {
        // u on a grid of 110,000 points in [0, 1): each of the 11 lengths 5 ..= 15 of L = 10
        // takes an eleventh of it, 10,000 points, ±1 for a point on a bin's edge (u·11 may
        // round to either side of the integer).
        let mut counts = [0usize; 16];
        for k in 0..110_000 {
            counts[jittered_steps(10, k as f64 / 110_000.0)] += 1;
        }
        assert_eq!(&counts[..5], &[0; 5]);
        assert!(
            counts[5..].iter().all(|&c| c.abs_diff(10_000) <= 1),
            "{counts:?}"
        );
        // The ends: u = 0 and the largest f64 below 1.
        assert_eq!(jittered_steps(10, 0.0), 5);
        assert_eq!(jittered_steps(10, 1.0 - f64::EPSILON / 2.0), 15);
        assert_eq!(jittered_steps(1, 0.7), 1);
        assert_eq!(jittered_steps(3, 0.99), 4);
    }

    #[test]
    fn num_integration_steps_reads_auto_or_a_number_and_writes_them_back() {
        let parse = |v: &str| {
            let yaml = format!(
                "{{name: hmc, warmup: 1, draws: 1, step_size: 0.1, num_integration_steps: {v}}}"
            );
            serde_yaml::from_str::<SamplerConfig>(&yaml)
        };
        for (text, want) in [
            ("auto", IntegrationSteps::Auto),
            ("12", IntegrationSteps::Fixed(12)),
        ] {
            let SamplerConfig::Hmc(c) = parse(text).unwrap() else {
                panic!("not hmc")
            };
            assert_eq!(c.num_integration_steps, want);
            // A number serializes as a number, so run IDs of such configs are unchanged.
            let back = serde_json::to_value(c.num_integration_steps).unwrap();
            assert_eq!(back.to_string().trim_matches('"'), text);
        }
        let err = parse("often").unwrap_err().to_string();
        assert!(err.contains("auto"), "{err}");
    }
}
