//! Stochastic gradient Langevin dynamics on the localized posterior, with optional RMSprop/Adam
//! preconditioning, and a MALA-style acceptance diagnostic.
//!
//! Input: an [`SgldConfig`], the posterior and the chain's RNG. Output: the chain's
//! [`ChainTrace`]. The chain starts at w*. Each step draws a minibatch of `batch_size` rows
//! without replacement (`null`, or a size of at least n, uses the full batch), takes the loss
//! gradient ĝ on it and moves
//!
//!   w ← w − (ε/2)·P⊙[nβ·ĝ + γ(w − w*)] + √(ε·P)⊙ξ,  ξ ~ N(0, I),
//!
//! with P the preconditioner ([`super::precond`]; 1 without one). P adapts during the first
//! `warmup` steps (at least the first step), whose positions are discarded (there Adam's drift
//! uses its first moment in place of ĝ); then P is held fixed, the drift is ĝ, and the
//! full-batch loss is recorded every `eval_every` steps, one LLC draw each. A step that produces a non-finite
//! position is undone, and so is a move onto a point where the minibatch loss or gradient is
//! not finite (the chain returns to where it came from); both count as divergences.
//!
//! The step size is `step_size`, or with `auto` the one [`super::sgld_step`] chose for the run.
//! A chain that explodes (a recorded LLC above [`super::exploded_llc_limit`] or not finite, or
//! most steps undone) is caught while it runs and restarted from w* with a step ten times
//! smaller, at most [`MAX_RESTARTS`] times; the restart is recorded in `tuned.restarts` and
//! in the chain's warnings, so the run is reported unhealthy. A chain that still explodes fails
//! the run with [`SamplerError::Exploded`], which names the step size: an exploded chain's
//! numbers never reach analysis.json.
//!
//! The acceptance diagnostic: on up to [`MALA_CHECKS`] evenly spread recorded steps, the
//! full-batch log p and gradient at the start and end of the step give the Metropolis–Hastings
//! acceptance probability a MALA correction (proposal N(w + (ε/2)P∇log p(w), εP)) would have
//! had for the move SGLD actually made. Its mean is `acceptance_rate`. Below
//! [`MIN_MALA_ACCEPTANCE`] (0.95), pooled over the run's chains, the run carries a warning: the
//! step is too large for the curvature the chains met, and SGLD's LLC comes out too high.
//!
//! The stiffness check: at [`STIFFNESS_CHECKS`] evenly spread recorded positions of each chain
//! (unpreconditioned runs), λ_max of the Hessian of L_n by the auto step's power iteration
//! (`sgld_step::lambda_max_at`, 51 gradients each, counted in `grad_evals`); the chain's mean
//! of ε·(nβ·λ_max + γ) is `tuned.stiffness`, and above [`MAX_STIFFNESS`] pooled over the
//! chains the run carries a warning. It sees what the MALA check can miss: a singular target
//! whose Hessian nearly vanishes at w* (so the auto step is large) and is far stiffer where the
//! chains go (+14 % to +18 % at MALA acceptance 0.94–0.96, figures at [`MAX_STIFFNESS`]).

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::precond::{Precond, Preconditioner};
use super::settings::{d_chains, number_or_auto};
use super::vecops::all_finite;
use super::{
    ChainTrace, Footprint, NonFinite, Sampler, SamplerError, calibration_rng, exploded_llc_limit,
    sgld_step, stat,
};
use crate::invalid::{Invalid, count, count_or_zero, fraction, invalid, positive};
use crate::numeric::Real;
use crate::posterior::{LogpEval, LossModel, Posterior, Rows};

/// SGLD's settings: a `name: sgld` entry of an experiments file, over `config/sampler/sgld.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgldConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    /// `auto` (the preset's default): chosen per run from the posterior's curvature; or a
    /// number, used as given.
    pub step_size: StepSize,
    /// Minibatch size; `null` uses the full batch.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Burn-in steps, discarded.
    pub warmup: usize,
    /// Steps after warmup.
    pub steps: usize,
    /// The full-batch loss (one LLC draw) is recorded every this many steps.
    pub eval_every: usize,
    #[serde(default)]
    pub precond: Precond,
    /// rmsprop/adam second-moment decay.
    #[serde(default = "d_precond_decay")]
    pub precond_decay: f64,
    /// adam first-moment decay.
    #[serde(default = "d_precond_beta1")]
    pub precond_beta1: f64,
    #[serde(default = "d_precond_eps")]
    pub precond_eps: f64,
    #[serde(default)]
    pub seed: u64,
}

/// RMSprop's and Adam's usual constants.
fn d_precond_decay() -> f64 {
    0.99
}
fn d_precond_beta1() -> f64 {
    0.9
}
fn d_precond_eps() -> f64 {
    1e-8
}

/// A step size that is either given or chosen by the sampler (`auto`).
///
/// Serialized as the number itself or the string `"auto"`, so configs that give a number keep
/// the run IDs they had before `auto` existed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepSize {
    Auto,
    Fixed(f64),
}

impl Serialize for StepSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StepSize::Auto => s.serialize_str("auto"),
            StepSize::Fixed(x) => s.serialize_f64(*x),
        }
    }
}

impl<'de> Deserialize<'de> for StepSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(number_or_auto::<D, f64>(d, "a positive number")?
            .map_or(StepSize::Auto, StepSize::Fixed))
    }
}

impl Sampler for SgldConfig {
    const PRESET: &'static str = include_str!("../../config/sampler/sgld.yaml");
    /// 100,000 of the preset's 200,000 steps; warmup stays. Measured over 20 chain seeds
    /// (f64), relative errors: regular −1.9…+2.5 %, deep linear −0.8…+8.9 % (tolerance 15 %).
    const QUICK_OVERRIDES: &'static str = "{ steps: 100000 }";
    const METROPOLIS: bool = false;
    const STATS: &'static [&'static str] = &[stat::MALA_ACCEPTANCE];

    fn chains(&self) -> usize {
        self.chains
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        let p = |k: &str| format!("{prefix}.{k}");
        match self.step_size {
            StepSize::Fixed(x) => positive(out, &p("step_size"), x),
            // The automatic step bounds the bias of plain SGLD; a preconditioner rescales
            // every direction by its own factor, which that bound ignores.
            StepSize::Auto if self.precond != Precond::None => out.push(invalid(
                &p("step_size"),
                "`auto` works with `precond: none` only: give a number with a preconditioner",
            )),
            StepSize::Auto => {}
        }
        count(out, &p("steps"), self.steps);
        count_or_zero(out, &p("warmup"), self.warmup);
        count(out, &p("eval_every"), self.eval_every);
        if self.eval_every > 0 && self.steps > 0 && self.steps < self.eval_every {
            out.push(invalid(
                &p("steps"),
                format!(
                    "must be at least eval_every ({}) to record one draw",
                    self.eval_every
                ),
            ));
        }
        if let Some(b) = self.batch_size {
            count(out, &p("batch_size"), b);
        }
        fraction(out, &p("precond_decay"), self.precond_decay, true);
        fraction(out, &p("precond_beta1"), self.precond_beta1, false);
        positive(out, &p("precond_eps"), self.precond_eps);
    }

    fn run_chains<F: Real, M: LossModel<F>>(
        &self,
        post: &Posterior<'_, F, M>,
        rngs: Vec<Xoshiro256PlusPlus>,
        run_id: &str,
    ) -> Result<Vec<ChainTrace>, SamplerError> {
        let (eps, auto) = match self.step_size {
            StepSize::Fixed(eps) => (eps, None),
            StepSize::Auto => {
                let auto = sgld_step::auto_step_size(post, &mut calibration_rng(run_id));
                (auto.step_size, Some(auto))
            }
        };
        let mut chains: Vec<ChainTrace> = rngs
            .into_par_iter()
            .enumerate()
            .map(|(c, mut rng)| run_chain(self, post, eps, &mut rng, c))
            .collect::<Result<_, _>>()?;
        if let Some(auto) = auto {
            for (i, c) in chains.iter_mut().enumerate() {
                // The calibration is the run's, not a chain's: its cost goes to chain 0 so
                // the run's total counts it once.
                if i == 0 {
                    c.grad_evals += auto.grad_evals;
                }
                c.tuned.insert("auto_step_size".into(), auto.step_size);
                c.tuned.insert("hessian_max_eig".into(), auto.lambda_max);
            }
        }
        if let Some(warning) = mala_warning(&chains, self.step_size) {
            chains[0].warnings.push(warning);
        }
        if let Some(warning) = gradient_noise_warning(&chains) {
            chains[0].warnings.push(warning);
        }
        if let Some(warning) = stiffness_warning(&chains) {
            chains[0].warnings.push(warning);
        }
        Ok(chains)
    }

    fn fix(&self) -> String {
        "lower sgld step_size or use step_size: auto".into()
    }

    fn gradients_per_chain(&self, n_data: f64) -> f64 {
        // Minibatch gradients count b/n of a full one; each recorded draw is one full loss.
        let batch = self.batch_size.map_or(n_data, |b| (b as f64).min(n_data));
        let draws = self.steps as f64 / self.eval_every.max(1) as f64;
        (self.warmup + self.steps) as f64 * batch / n_data.max(1.0) + draws
    }

    fn footprint(&self, _params: f64, n_data: f64) -> Footprint {
        Footprint {
            draws: (self.steps / self.eval_every.max(1)) as f64,
            warmup_steps: 0.0,
            // The row permutation minibatches are drawn from.
            extra_bytes: n_data * 8.0,
        }
    }
}

/// At most this many recorded steps per chain get the (2 full-batch gradients) MALA check:
/// enough for a mean acceptance to ±0.05, cheap next to the sampling itself.
pub const MALA_CHECKS: usize = 50;
/// Below this mean MALA acceptance, over all chains' checks, a run is warned about its step.
/// Measured (2026-12-05) on 170 SGLD runs (deep linear networks of 2–6 layers, small tanh models;
/// auto and fixed steps), against HMC on the same target: the 7 below 0.95 were all too high,
/// six on a 4-layer [5, 4, 3, 2, 1] network, +11 % to +29 % at 0.87–0.94 (the auto step, chosen
/// from the curvature at w*, is too large further out), and one [2, 2, 2, 2, 2] network +7 % at
/// 0.948. Of the 163 at 0.95 or above, the 143 with an HMC reference were within 6 % of it except
/// [3, 1, 3] (−8 %) and a rank-1 teacher at n = 10⁵–10⁶ (+9 % to +15 %, slow mixing; README's
/// validation section). Every `validate` case's SGLD run, and every tanh run, is at 0.98 or above.
/// Not a bound on the bias: a 4-layer [1, 1, 1, 1, 1] network (λ = 0.5) at 0.97–0.98 came out
/// +12 % to +18 % (0.500 at a 20× smaller step).
pub const MIN_MALA_ACCEPTANCE: f64 = 0.95;

/// Above this estimated share of the LLC added by minibatch gradient noise, a run is warned.
/// 5 %: the order of the discretization bias README accepts for SGLD (+3–4 %), so a run past it
/// is off by more than SGLD is trusted to be.
pub const MAX_GRADIENT_NOISE_SHARE: f64 = 0.05;

/// The LLC that minibatch gradient noise adds, in LLC units: ε·E[Σ_i P_i·e_i²]/8, with
/// e = nβ·(ĝ − ∇L_n) the drift's error, `mean_sq_error` its P-weighted square averaged over the
/// MALA checks (where the full-batch gradient at the chain's position is computed anyway, so
/// the estimate costs nothing and sees the noise where the chain is, not only at w*).
///
/// Why: the step's drift carries (ε/2)·P·e, noise of variance (ε²/4)·P²·E\[e²\] per coordinate
/// next to the injected ε·P, so coordinate i runs at temperature 1 + r_i with
/// r_i = ε·P_i·E\[e_i²\]/4; near w* each well-determined direction adds T/2 to nβ·E[L − L0], so
/// the excess is Σ_i r_i/2. Exact for a quadratic loss whose gradient covariance and Hessian
/// share axes. On two deep linear networks with a known LLC (n = 10,000; 2026-12-05) it came to
/// 0.6–1.4 times the measured excess over the full-batch run at batch sizes 1–64 (0.05–3.6 LLC
/// units), and at n = 10^6 with the preset batch of 256 it gave 0.17 and 0.70 where the runs
/// were 0.18 and 0.89 above the truth.
pub fn gradient_noise_llc(eps: f64, mean_sq_error: f64) -> f64 {
    eps * mean_sq_error / 8.0
}

/// Σ_i P_i·e_i² at `w`, with e = nβ·ĝ + γ(w − w*) + ∇log p(w) = nβ·(ĝ − ∇L_n(w)): the error of
/// the minibatch drift, from the minibatch loss gradient `g_batch` and the full-batch
/// ∇log p `g_logp` at the same point.
fn drift_sq_error<F: Real, M: LossModel<F>>(
    post: &Posterior<'_, F, M>,
    w: &[F],
    g_batch: &[F],
    g_logp: &[F],
    factor: &[F],
) -> f64 {
    let (n_beta, gamma) = (post.n_beta, post.gamma);
    let mut sum = 0.0;
    for i in 0..w.len() {
        let e = (n_beta * g_batch[i] + gamma * (w[i] - post.w_star[i]) + g_logp[i]).f64();
        sum += factor[i].f64() * e * e;
    }
    sum
}

/// The run's warning when the minibatch noise adds more than [`MAX_GRADIENT_NOISE_SHARE`] of
/// the LLC (chains' mean `gradient_noise_llc` against the draws' mean); `None` otherwise, and
/// for a full-batch run or one whose LLC is not positive (other checks speak for that).
fn gradient_noise_warning(chains: &[ChainTrace]) -> Option<String> {
    let excess: Vec<f64> = chains
        .iter()
        .filter_map(|c| c.tuned.get("gradient_noise_llc").copied())
        .collect();
    let draws: Vec<f64> = chains.iter().flat_map(|c| c.llc.iter().copied()).collect();
    if excess.is_empty() || draws.is_empty() {
        return None;
    }
    let excess = excess.iter().sum::<f64>() / excess.len() as f64;
    let llc = draws.iter().sum::<f64>() / draws.len() as f64;
    if llc.is_nan() || llc <= 0.0 || excess <= MAX_GRADIENT_NOISE_SHARE * llc {
        return None;
    }
    Some(format!(
        "SGLD's minibatch gradient noise adds about {excess:.3} to the LLC ({:.1} % of its mean \
         {llc:.3}; estimated from the minibatch gradient's error at the MALA checks, bar {:.0} %): the draws run hotter than the posterior, so the LLC comes out too high; \
         raise batch_size (or null for the full batch) or lower step_size",
        100.0 * excess / llc,
        100.0 * MAX_GRADIENT_NOISE_SHARE
    ))
}

/// How many relaxation times of the localization alone the recorded steps span: γ·ε·P_min·steps/2.
/// Along a direction the loss leaves flat, only the drift −(ε/2)·P·γ·(w − w*) pulls, so the
/// chain forgets its start there after about 2/(γ·ε·P) steps and spreads to the localization's
/// scale 1/√γ only after a few of them; below 1 it has covered about √(ε·P·steps) instead
/// (README, SGLD's weak localization). P_min, the smallest preconditioner entry, gives the
/// slowest such direction a diagonal P allows. Recorded, not judged: on deep linear networks
/// most runs below 1 were accurate (README), so it is no health check.
pub fn localization_relaxations(eps: f64, gamma: f64, p_min: f64, steps: usize) -> f64 {
    gamma * eps * p_min * steps as f64 / 2.0
}

/// Positions per chain at which the stiffness check measures the curvature (evenly spread over
/// the recorded draws, the last one the chain's end). Nine, because the curvature along a chain
/// jumps by 30× from one point to the next on singular targets, and the mean over fewer points
/// separated biased from accurate runs only barely (figures at [`MAX_STIFFNESS`]). Each costs
/// 51 full-batch gradients, about 7 % of the preset's run at nine.
pub const STIFFNESS_CHECKS: usize = 9;
/// Seeds the stiffness check's own RNG (xor the chain index).
const STIFFNESS_SEED: u64 = 0x5717_F000_0000_0000;

/// Above this mean of ε·(nβ·λ_max(w) + γ) over the chains' checked positions, a run is warned.
///
/// Why: on a direction of posterior precision a, SGLD's stationary variance is
/// 1/(a(1 − εa/4)), so the LLC's relative bias is about m/(1 − m), m the mean of εa/4 over what
/// the chains visit; `step_size: auto` makes εa = 0.1 at w* (2.6 %), but on a singular target the
/// Hessian at w* can nearly vanish while the posterior is far stiffer where the chains go. At
/// 0.35, m ≈ 0.09 bounds the bias by about 10 %, the most README trusts SGLD to be off (λ_max is
/// the stiffest direction only, so this errs on the safe side). Measured (2026-12-06, auto step
/// unless said): a [3, 1, 3] deep linear network with a zero teacher (n = 10,000) at 0.42–0.53
/// over three seeds, +14 % to +18 % against HMC, NUTS, MCLMC and BlackJAX's NUTS (MALA
/// acceptance 0.94–0.96, which the MALA check passes), and the same at ε = 2e-4 at 0.21, +3 %;
/// every `validate` case's SGLD run 0.10–0.27 (within 3 % of its known LLC), the demo's 0.10.
/// The maximum over the positions did not separate them (0.80 on an accurate run, 0.60 at the
/// end of a biased one), nor did the end point alone.
pub const MAX_STIFFNESS: f64 = 0.35;

/// The run's warning when the chains met curvature too stiff for the step (see
/// [`MAX_STIFFNESS`]); `None` when no chain was checked (a preconditioned run, whose step per
/// coordinate this does not model, or one without recorded draws).
fn stiffness_warning(chains: &[ChainTrace]) -> Option<String> {
    let values: Vec<(f64, f64)> = chains
        .iter()
        .filter_map(|c| {
            Some((
                c.tuned.get("stiffness").copied()?,
                c.tuned.get("step_size").copied()?,
            ))
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().map(|(r, _)| r).sum::<f64>() / values.len() as f64;
    if mean.is_nan() || mean <= MAX_STIFFNESS {
        return None;
    }
    let eps = values
        .iter()
        .map(|(_, e)| e)
        .fold(f64::INFINITY, |a, &b| a.min(b));
    // m/(1 − m) with m the mean of εa/4; past m = 1/2 the formula no longer bounds anything.
    let m = mean / 4.0;
    let bias = if m < 0.5 {
        format!("{:.0} %", 100.0 * m / (1.0 - m))
    } else {
        "100 % or more".into()
    };
    Some(format!(
        "SGLD's step is too large for the curvature where the chains went: step_size × \
         (nβ·λ_max + γ) averages {mean:.2} over the chains' checked positions (> {MAX_STIFFNESS}; \
         0.1 is what step_size: auto aims for at w*), which bounds the LLC's upward bias by about \
         {bias}; set step_size to about {:.1e} (and raise steps as much), or use hmc",
        eps * 0.1 / mean
    ))
}

/// Restarts of an exploded chain, each with a step ten times smaller (so down to 1/1000).
pub const MAX_RESTARTS: usize = 3;
/// Steps after which a chain whose steps are mostly undone counts as exploded.
const MIN_STEPS_FOR_STUCK: usize = 100;

/// Why an attempt at a chain was abandoned.
struct Explosion {
    step: usize,
    what: String,
    grad_evals: u64,
}

/// Log MH ratio of the move `from → to` under a MALA proposal with step `eps` and
/// preconditioner `p`, from log p and ∇log p at both ends.
/// The run's warning when its pooled MALA acceptance is below [`MIN_MALA_ACCEPTANCE`]; `None`
/// without checks (a run too short to have any).
fn mala_warning(chains: &[ChainTrace], step: StepSize) -> Option<String> {
    let checks: Vec<f64> = chains
        .iter()
        .filter_map(|c| c.stats.get(stat::MALA_ACCEPTANCE))
        .flatten()
        .copied()
        .collect();
    if checks.is_empty() {
        return None;
    }
    let mean = checks.iter().sum::<f64>() / checks.len() as f64;
    let why = match step {
        StepSize::Auto => {
            "the auto step, chosen from the curvature at w*, is too large where the chains went"
        }
        StepSize::Fixed(_) => "the step is too large for the posterior's curvature",
    };
    (mean < MIN_MALA_ACCEPTANCE).then(|| {
        format!(
            "SGLD's MALA acceptance averages {mean:.3} over {} checks (< {MIN_MALA_ACCEPTANCE}): \
             {why}, and the LLC comes out too high (measured +11 % to +29 % at 0.87–0.94); \
             lower step_size and raise steps, or use hmc",
            checks.len()
        )
    })
}

fn mala_log_ratio<F: Real>(
    eps: f64,
    p: &[F],
    from: (&[F], f64, &[F]),
    to: (&[F], f64, &[F]),
) -> f64 {
    let (x, logp_x, g_x) = from;
    let (y, logp_y, g_y) = to;
    let mut log_q_fwd = 0.0;
    let mut log_q_bwd = 0.0;
    for i in 0..x.len() {
        let pi = p[i].f64();
        let (xi, yi) = (x[i].f64(), y[i].f64());
        let fwd = yi - xi - 0.5 * eps * pi * g_x[i].f64();
        let bwd = xi - yi - 0.5 * eps * pi * g_y[i].f64();
        log_q_fwd -= fwd * fwd / (2.0 * eps * pi);
        log_q_bwd -= bwd * bwd / (2.0 * eps * pi);
    }
    logp_y - logp_x + log_q_bwd - log_q_fwd
}

/// A chain's state and its preallocated buffers.
struct Chain<'p, 'm, F: Real, M: LossModel<F>> {
    post: &'p Posterior<'m, F, M>,
    ws: M::Workspace,
    eps: f64,
    /// Minibatch size; equal to n for full-batch SGLD.
    batch: usize,
    /// A permutation of the row indices whose first `batch` entries are the minibatch.
    perm: Vec<usize>,
    w: Vec<F>,
    /// The last position whose minibatch loss was finite (where a bad move returns to).
    w_prev: Vec<F>,
    w_next: Vec<F>,
    grad: Vec<F>,
    pre: Preconditioner<F>,
    /// Gradient rows evaluated (minibatch and full-batch), for `grad_evals`.
    rows: u64,
}

impl<'p, 'm, F: Real, M: LossModel<F>> Chain<'p, 'm, F, M> {
    fn new(cfg: &SgldConfig, post: &'p Posterior<'m, F, M>, eps: f64, batch: usize) -> Self {
        let (n, d) = (post.model.n_data(), post.dim());
        Chain {
            post,
            ws: post.model.workspace(n),
            eps,
            batch,
            perm: if batch < n {
                (0..n).collect()
            } else {
                Vec::new()
            },
            w: post.w_star.clone(),
            w_prev: post.w_star.clone(),
            w_next: vec![F::zero(); d],
            grad: vec![F::zero(); d],
            pre: Preconditioner::new(
                cfg.precond,
                cfg.precond_decay,
                cfg.precond_beta1,
                cfg.precond_eps,
                d,
            ),
            rows: 0,
        }
    }

    /// The minibatch loss gradient at `w` into `grad`; false when it is not finite.
    fn minibatch_gradient<R: Rng>(&mut self, rng: &mut R) -> bool {
        let n = self.post.model.n_data();
        let rows = if self.batch == n {
            Rows::All
        } else {
            // Partial Fisher–Yates: the first `batch` entries become a uniform random subset.
            for i in 0..self.batch {
                let j = rng.random_range(i..n);
                self.perm.swap(i, j);
            }
            Rows::Subset(&self.perm[..self.batch])
        };
        let loss = self
            .post
            .model
            .loss_grad(&self.w, rows, &mut self.grad, &mut self.ws);
        self.rows += self.batch as u64;
        loss.is_finite() && all_finite(&self.grad)
    }

    /// The SGLD move from `w` into `w_next`, using `grad` (already folded into the
    /// preconditioner); false when `w_next` is not finite.
    fn propose<R: Rng>(&mut self, rng: &mut R) -> bool {
        let (n_beta, gamma) = (self.post.n_beta, self.post.gamma);
        let half_eps = F::of(0.5 * self.eps);
        for i in 0..self.w.len() {
            let p = self.pre.factor[i];
            let drift = n_beta * self.pre.drift_grad[i] + gamma * (self.w[i] - self.post.w_star[i]);
            let z: f64 = rng.sample(StandardNormal);
            self.w_next[i] =
                self.w[i] - half_eps * p * drift + F::of((self.eps * p.f64()).sqrt() * z);
        }
        all_finite(&self.w_next)
    }

    /// Full-batch log p and its gradient at `w` (`at_next`: at `w_next`) into `out`.
    fn full_logp_grad(&mut self, at_next: bool, out: &mut [F]) -> LogpEval<F> {
        self.rows += self.post.model.n_data() as u64;
        let w = if at_next { &self.w_next } else { &self.w };
        self.post.logp_grad(w, out, &mut self.ws)
    }

    fn full_loss(&mut self) -> F {
        self.post.model.loss(&self.w, Rows::All, &mut self.ws)
    }
}

/// Runs one SGLD chain at step size `eps` (warmup, then sampling with recorded draws),
/// restarting it with smaller steps when it explodes (see the module doc).
pub(super) fn run_chain<F: Real, M: LossModel<F>, R: Rng>(
    cfg: &SgldConfig,
    post: &Posterior<'_, F, M>,
    eps: f64,
    rng: &mut R,
    chain_index: usize,
) -> Result<ChainTrace, SamplerError> {
    let mut step = eps;
    let mut spent = 0;
    let mut history = Vec::new();
    for restart in 0..=MAX_RESTARTS {
        match attempt(cfg, post, step, rng, chain_index) {
            Ok(mut trace) => {
                trace.grad_evals += spent;
                trace.tuned.insert("restarts".into(), restart as f64);
                if restart > 0 {
                    trace.warnings.push(format!(
                        "chain {chain_index} exploded and was restarted from w* {restart} time(s) \
                         ({}); its draws come from step_size {step:.3e}: give a smaller \
                         step_size, or step_size: auto",
                        history.join("; ")
                    ));
                }
                return Ok(trace);
            }
            Err(e) => {
                spent += e.grad_evals;
                history.push(format!(
                    "at step {} with step_size {step:.3e}: {}",
                    e.step, e.what
                ));
                step /= 10.0;
            }
        }
    }
    Err(SamplerError::Exploded {
        sampler: "sgld",
        chain: chain_index,
        what: history.join("; "),
        fix: format!(
            "step_size {eps:.3e} is far too large for this posterior (restarts down to {:.3e} \
             did not help): lower sgld step_size or use step_size: auto, and check that the \
             target converged (meta.json)",
            eps / 10f64.powi(MAX_RESTARTS as i32)
        ),
    })
}

/// One try at a chain at step size `eps`; an [`Explosion`] when it explodes.
fn attempt<F: Real, M: LossModel<F>, R: Rng>(
    cfg: &SgldConfig,
    post: &Posterior<'_, F, M>,
    eps: f64,
    rng: &mut R,
    chain_index: usize,
) -> Result<ChainTrace, Explosion> {
    let (n, d) = (post.model.n_data(), post.dim());
    let mut trace = ChainTrace::default();
    // A batch of at least n rows is the full batch (README), recorded as `tuned.batch_size`;
    // not a warning, which would make a sound run unhealthy (the preset's 256 on a small n).
    let batch = cfg.batch_size.map_or(n, |b| b.min(n));
    let limit = exploded_llc_limit(d);
    let mut chain = Chain::new(cfg, post, eps, batch);
    let (mut g_from, mut g_to) = (vec![F::zero(); d], vec![F::zero(); d]);

    let n_draws = cfg.steps / cfg.eval_every;
    let check_every = n_draws.div_ceil(MALA_CHECKS).max(1);
    let (mut llc, mut loss) = (Vec::with_capacity(n_draws), Vec::with_capacity(n_draws));
    let mut accept = Vec::with_capacity(MALA_CHECKS);
    // The stiffness check's positions (see `stiffness_warning`): copies of the chain at evenly
    // spread recorded draws, into buffers allocated here, not in the loop.
    let stiffness_at: Vec<usize> = if cfg.precond == Precond::None {
        (1..=STIFFNESS_CHECKS)
            .map(|k| (k * n_draws).div_ceil(STIFFNESS_CHECKS))
            .filter(|&i| i >= 1)
            .collect()
    } else {
        Vec::new()
    };
    let mut positions = vec![vec![F::zero(); d]; stiffness_at.len()];
    let mut kept = 0;
    let mut non_finite = NonFinite::default();
    // The minibatch drift's P-weighted squared error, summed over the checks (minibatch runs).
    let (mut noise_sq_error, mut noise_checks) = (0.0, 0_u64);

    for t in 0..cfg.warmup + cfg.steps {
        let since = (t + 1).saturating_sub(cfg.warmup);
        let record = t >= cfg.warmup && since.is_multiple_of(cfg.eval_every);
        let check = record && (since / cfg.eval_every - 1).is_multiple_of(check_every);

        let logp_from = if check {
            chain.full_logp_grad(false, &mut g_from).logp.f64()
        } else {
            0.0
        };
        // A step is bad when it meets a non-finite value anywhere; the chain then returns to
        // (or stays at) the last position whose loss was finite.
        let mut bad = false;
        let mut recorded_loss = None;
        if chain.minibatch_gradient(rng) {
            // Adapting P while recording would bias the draws (precond.rs's module doc).
            if t < cfg.warmup.max(1) {
                chain.pre.update(&chain.grad);
            } else {
                chain.pre.hold(&chain.grad);
            }
            if check && batch < n {
                noise_sq_error +=
                    drift_sq_error(post, &chain.w, &chain.grad, &g_from, &chain.pre.factor);
                noise_checks += 1;
            }
            chain.w_prev.copy_from_slice(&chain.w);
            if chain.propose(rng) {
                if check {
                    let to = chain.full_logp_grad(true, &mut g_to);
                    let log_ratio = mala_log_ratio(
                        chain.eps,
                        &chain.pre.factor,
                        (&chain.w, logp_from, &g_from),
                        (&chain.w_next, to.logp.f64(), &g_to),
                    );
                    // A NaN ratio (non-finite log p at the end) is a certain rejection.
                    accept.push(if log_ratio.is_nan() {
                        0.0
                    } else {
                        log_ratio.exp().min(1.0)
                    });
                    recorded_loss = Some(to.loss);
                }
                std::mem::swap(&mut chain.w, &mut chain.w_next);
            } else {
                bad = true;
            }
        } else {
            // The last move landed where the minibatch loss is not finite: undo it.
            bad = true;
            chain.w.copy_from_slice(&chain.w_prev);
        }
        if record {
            let mut l = recorded_loss.unwrap_or_else(|| chain.full_loss());
            if !l.is_finite() {
                bad = true;
                chain.w.copy_from_slice(&chain.w_prev);
                l = chain.full_loss();
            }
            let value = post.llc(l);
            if value.is_nan() || value > limit {
                return Err(Explosion {
                    step: t,
                    what: format!("a recorded LLC was {value:.3e} (limit {limit:.0})"),
                    grad_evals: chain.rows.div_ceil(n as u64),
                });
            }
            llc.push(value);
            loss.push(l.f64());
            if kept < stiffness_at.len() && stiffness_at[kept] == llc.len() {
                positions[kept].copy_from_slice(&chain.w);
                kept += 1;
            }
        }
        non_finite.observe(bad);
        if t + 1 >= MIN_STEPS_FOR_STUCK && 2 * non_finite.count() > (t + 1) as u64 {
            return Err(Explosion {
                step: t,
                what: format!(
                    "{} of {} steps met non-finite values",
                    non_finite.count(),
                    t + 1
                ),
                grad_evals: chain.rows.div_ceil(n as u64),
            });
        }
    }

    trace.grad_evals = chain.rows.div_ceil(n as u64);
    if kept > 0 {
        // Its own RNG (the start vectors of the power iterations), so the chain's draws are
        // the same bits with or without the check.
        let mut check_rng = Xoshiro256PlusPlus::seed_from_u64(STIFFNESS_SEED ^ chain_index as u64);
        let (n_beta, gamma) = (post.n_beta.f64(), post.gamma.f64());
        let mut sum = 0.0;
        for w in &positions[..kept] {
            let (lambda, evals) = sgld_step::lambda_max_at(post, w, &mut check_rng);
            trace.grad_evals += evals;
            sum += eps * (n_beta * lambda + gamma);
        }
        trace.tuned.insert("stiffness".into(), sum / kept as f64);
    }
    trace.divergences = non_finite.count();
    trace.acceptance_rate = if accept.is_empty() {
        None
    } else {
        Some(accept.iter().sum::<f64>() / accept.len() as f64)
    };
    trace.llc = llc;
    trace.loss = loss;
    trace.stats.insert(stat::MALA_ACCEPTANCE.into(), accept);
    trace.tuned.insert("step_size".into(), eps);
    trace.tuned.insert("batch_size".into(), batch as f64);
    let p_min = chain
        .pre
        .factor
        .iter()
        .map(|p| p.f64())
        .fold(f64::INFINITY, f64::min);
    trace.tuned.insert(
        "localization_relaxations".into(),
        localization_relaxations(eps, post.gamma.f64(), p_min, cfg.steps),
    );
    if noise_checks > 0 {
        let mean_sq_error = noise_sq_error / noise_checks as f64;
        trace.tuned.insert(
            "gradient_noise_llc".into(),
            gradient_noise_llc(eps, mean_sq_error),
        );
    }
    if let Some(msg) = non_finite.warning(
        chain_index,
        "steps",
        "each was undone (the chain kept its previous position); lower step_size",
    ) {
        trace.warnings.push(msg);
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains_with_acceptance(values: &[f64]) -> Vec<ChainTrace> {
        (0..4)
            .map(|_| {
                let mut c = ChainTrace::default();
                c.stats
                    .insert(stat::MALA_ACCEPTANCE.into(), values.to_vec());
                c
            })
            .collect()
    }

    /// Chains with the given `gradient_noise_llc` and LLC draws all equal to `llc`.
    fn chains_with_noise(excess: Option<f64>, llc: f64) -> Vec<ChainTrace> {
        (0..4)
            .map(|_| {
                let mut c = ChainTrace {
                    llc: vec![llc; 10],
                    ..Default::default()
                };
                if let Some(e) = excess {
                    c.tuned.insert("gradient_noise_llc".into(), e);
                }
                c
            })
            .collect()
    }

    #[test]
    fn minibatch_noise_past_its_share_of_the_llc_is_warned() {
        // ε·E[ΣP·e²]/8: a step of 1e-3 and a mean squared drift error of 800 add 0.1.
        assert!((gradient_noise_llc(1e-3, 800.0) - 0.1).abs() < 1e-15);
        let share = MAX_GRADIENT_NOISE_SHARE;
        assert_eq!(
            gradient_noise_warning(&chains_with_noise(Some(0.9 * share * 3.0), 3.0)),
            None
        );
        let w = gradient_noise_warning(&chains_with_noise(Some(1.2 * share * 3.0), 3.0)).unwrap();
        assert!(w.contains("adds about 0.180") && w.contains("6.0 %"), "{w}");
        assert!(w.contains("raise batch_size"), "{w}");
        // Full batch (no estimate) and a non-positive LLC (other checks speak): no warning.
        assert_eq!(gradient_noise_warning(&chains_with_noise(None, 3.0)), None);
        assert_eq!(
            gradient_noise_warning(&chains_with_noise(Some(1.0), -2.0)),
            None
        );
    }

    #[test]
    fn a_low_pooled_mala_acceptance_warns_and_names_the_step() {
        // Half the checks at 0.8 and half at 1.0: mean 0.9, below the bar.
        let low: Vec<f64> = (0..50)
            .map(|i| if i % 2 == 0 { 0.8 } else { 1.0 })
            .collect();
        let w = mala_warning(&chains_with_acceptance(&low), StepSize::Auto).expect("a warning");
        assert!(w.contains("averages 0.900 over 200 checks (< 0.95)"), "{w}");
        assert!(
            w.contains("auto step") && w.contains("lower step_size"),
            "{w}"
        );
        let fixed = mala_warning(&chains_with_acceptance(&low), StepSize::Fixed(1e-4)).unwrap();
        assert!(fixed.contains("the step is too large"), "{fixed}");
        // 0.97, like the validation cases' runs (0.985–0.994), and a run without checks: none.
        assert_eq!(
            mala_warning(&chains_with_acceptance(&[0.97; 50]), StepSize::Auto),
            None
        );
        assert_eq!(
            mala_warning(&chains_with_acceptance(&[]), StepSize::Auto),
            None
        );
    }
}
