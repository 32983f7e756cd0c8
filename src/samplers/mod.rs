//! MCMC samplers of the localized posterior: HMC, NUTS, SGLD and MCLMC.
//!
//! Input: a [`SamplerConfig`], a [`Posterior`] and the run ID (which seeds every chain's RNG).
//! Output: a [`SamplerRun`], one [`ChainTrace`] per chain with the LLC and loss of every recorded
//! draw and per-step sampler statistics. Chains run in parallel with rayon; each chain's RNG is
//! derived from (run id, chain index) only, so traces are bit-identical whatever the thread count.
//!
//! Every chain starts at w*. The step loops do not allocate: each chain preallocates its buffers
//! and one model workspace before its loop. A transition that produces a non-finite value never
//! aborts the run: the chain keeps its previous state and the event is reported in the chain's
//! `warnings` (and as divergences where the sampler has that notion).
//!
//! No garbage as a result: a run whose chain exploded (a recorded LLC not finite or above
//! [`exploded_llc_limit`]) or got stuck (90 % of its Metropolis transitions divergent, as with a
//! huge fixed HMC step) is an error, [`SamplerError::Exploded`] or [`SamplerError::Stuck`], whose
//! message names the setting to change; it never becomes an analysis.json. SGLD first tries to
//! recover by itself ([`sgld`]'s restarts), HMC stops a stuck chain early.
//!
//! Modules (private; [`run`] is the entry point): `hmc` and `nuts` (+ `window_adaptation`), `mclmc`
//! (+ `mclmc_tuning`, `curvature`), `sgld` (+ `precond`); `vecops` holds the allocation-free
//! vector helpers they share. Each module's doc says what it records.

mod curvature;
mod hmc;
mod mclmc;
mod mclmc_kernel;
pub mod mclmc_tuning;
mod nuts;
mod precond;
mod sgld;
mod sgld_step;
mod vecops;
mod window_adaptation;

#[cfg(test)]
mod test_models;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::config::schema::{SamplerConfig, StepSize};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// The names of the per-draw statistics in [`ChainTrace::stats`] (and so in trace.npz), one
/// constant each so that the samplers that write them and the worker and reports that read them
/// cannot drift apart.
pub mod stat {
    /// Metropolis acceptance probability of the transition (HMC, NUTS).
    pub const ACCEPTANCE: &str = "acceptance";
    /// Hamiltonian at the end of the transition (HMC, NUTS).
    pub const ENERGY: &str = "energy";
    /// Energy error of the transition's trajectory (HMC, NUTS).
    pub const ENERGY_ERROR: &str = "energy_error";
    pub const STEP_SIZE: &str = "step_size";
    /// 1 for a divergent transition, else 0 (written as booleans to trace.npz).
    pub const DIVERGING: &str = "diverging";
    pub const TREE_DEPTH: &str = "tree_depth";
    pub const N_LEAPFROG: &str = "n_leapfrog";
    /// Per warmup transition: the step size, acceptance and divergences of the adaptation.
    pub const WARMUP_STEP_SIZE: &str = "warmup_step_size";
    pub const WARMUP_ACCEPTANCE: &str = "warmup_acceptance";
    pub const WARMUP_DIVERGING: &str = "warmup_diverging";
    /// Kinetic minus log-density change of an MCLMC step (its tuning targets the variance).
    pub const ENERGY_CHANGE: &str = "energy_change";
    /// SGLD's MALA-style acceptance diagnostic (nothing is rejected).
    pub const MALA_ACCEPTANCE: &str = "mala_acceptance";
    /// Statistics that are flags (0/1), stored as booleans.
    pub const FLAGS: [&str; 2] = [DIVERGING, WARMUP_DIVERGING];
}

/// What one chain produced.
#[derive(Debug, Clone, Default)]
pub struct ChainTrace {
    /// nβ (L_n(w_t) − L0) per recorded draw (after warmup).
    pub llc: Vec<f64>,
    /// L_n(w_t) per recorded draw.
    pub loss: Vec<f64>,
    /// Per-step sampler statistics written to trace.npz (e.g. `acceptance`, `step_size`,
    /// `energy_error`, `warmup_step_size`); each vector may have its own length.
    pub stats: BTreeMap<String, Vec<f64>>,
    /// Gradient evaluations spent by this chain, warmup and tuning included, in full-data
    /// gradient equivalents: a minibatch gradient over b of n rows counts b/n (SGLD; the
    /// total is rounded up), a full-batch gradient counts 1. Loss-only evaluations (SGLD's
    /// recorded draws) are not gradient evaluations and are not counted.
    pub grad_evals: u64,
    pub divergences: u64,
    /// Mean acceptance probability after warmup (HMC; NUTS's trajectory-mean statistic), or the MALA-style diagnostic (SGLD).
    pub acceptance_rate: Option<f64>,
    /// Tuned or adapted values (final step size, L, ...), reported in analysis.json.
    pub tuned: BTreeMap<String, f64>,
    /// Non-fatal problems (e.g. "chain 2 produced NaN at step 130; state kept").
    pub warnings: Vec<String>,
}

/// What a sampler run produced: one trace per chain, in chain order.
#[derive(Debug, Clone, Default)]
pub struct SamplerRun {
    pub chains: Vec<ChainTrace>,
    /// Run-level health problems that no chain sees (e.g. the target is not a converged
    /// minimum); `analyze` lists them after the chains' warnings.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// The sampler config fails [`SamplerConfig::validate`].
    #[error("invalid sampler config: {0}")]
    InvalidConfig(String),
    /// w* does not have one entry per model parameter.
    #[error("w* has {w_star} entries but the model has {dim} parameters")]
    DimensionMismatch { w_star: usize, dim: usize },
    /// The model has no data rows to evaluate the loss on.
    #[error("the model has no data (n = 0): nothing to sample")]
    NoData,
    /// MCLMC moves on the unit sphere of velocities, which needs at least 2 dimensions.
    #[error("MCLMC needs at least 2 parameters, the model has {0}")]
    TooFewParameters(usize),
    /// A chain's LLC draws became non-finite or absurdly large, and recovery (if the sampler
    /// has one) did not help.
    #[error("{sampler} chain {chain} exploded ({what}): {fix}")]
    Exploded {
        sampler: &'static str,
        chain: usize,
        what: String,
        fix: String,
    },
    /// Most of a chain's transitions diverged: its draws would sit at w* and report an LLC
    /// near 0.
    #[error(
        "{sampler} chain {chain} is stuck: {diverged} of {transitions} transitions diverged at step size {step_size:.3e}; {fix}"
    )]
    Stuck {
        sampler: &'static str,
        chain: usize,
        diverged: u64,
        transitions: usize,
        step_size: f64,
        fix: String,
    },
    /// The posterior cannot be evaluated at w* (a broken target); sampling would only produce NaN.
    #[error(
        "the posterior is not finite at w* ({what}): check the target's training (meta.json L0) and the posterior config"
    )]
    NonFiniteStart { what: String },
}

/// The RNG of chain `chain` of the run whose ID is `run_id`.
pub fn chain_rng(run_id: &str, chain: usize) -> Xoshiro256PlusPlus {
    let seed = xxhash_rust::xxh3::xxh3_64(format!("{run_id}/chain/{chain}").as_bytes());
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// The RNG of a run's own calibration (SGLD's automatic step size): shared by the chains.
fn calibration_rng(run_id: &str) -> Xoshiro256PlusPlus {
    let seed = xxhash_rust::xxh3::xxh3_64(format!("{run_id}/calibration").as_bytes());
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// The largest LLC draw a healthy chain can produce: 10·p + 100.
///
/// Why: a draw is nβ(L_n(w) − L0) at a point of the localized posterior, whose expectation is
/// at most about p/2 (the regular value; singular models have less) with fluctuations of order
/// √p; even an unconverged w* only lowers the draws. A draw twenty times the largest possible
/// mean (plus a margin for tiny models) is a chain that left the posterior: the integrator went
/// unstable. Discretization bias, even devinterp's +40 % at its README step, stays far below.
pub fn exploded_llc_limit(dim: usize) -> f64 {
    10.0 * dim as f64 + 100.0
}

/// Runs the configured sampler on `post`; chains in parallel.
pub fn run<F: Real, M: LossModel<F>>(
    cfg: &SamplerConfig,
    post: &Posterior<'_, F, M>,
    run_id: &str,
) -> Result<SamplerRun, SamplerError> {
    check(cfg, post)?;
    let rngs: Vec<_> = (0..cfg.chains()).map(|c| chain_rng(run_id, c)).collect();
    let chains = match cfg {
        // HMC's and NUTS's warmup may move its chains in lockstep (pooled adaptation), so it drives them.
        SamplerConfig::Hmc(h) => hmc::run_chains(h, post, rngs),
        SamplerConfig::Nuts(n) => nuts::run_chains(n, post, rngs),
        SamplerConfig::Sgld(s) => {
            let (eps, auto) = match s.step_size {
                StepSize::Fixed(eps) => (eps, None),
                StepSize::Auto => {
                    let auto = sgld_step::auto_step_size(post, &mut calibration_rng(run_id));
                    (auto.step_size, Some(auto))
                }
            };
            let mut chains: Vec<ChainTrace> = rngs
                .into_par_iter()
                .enumerate()
                .map(|(c, mut rng)| sgld::run_chain(s, post, eps, &mut rng, c))
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
            chains
        }
        SamplerConfig::Mclmc(m) => {
            independent_chains(rngs, |rng, c| mclmc::run_chain(m, post, rng, c))
        }
    };
    guard(cfg, post.dim(), &chains)?;
    Ok(SamplerRun {
        chains,
        warnings: Vec::new(),
    })
}

/// Runs one independent chain per RNG in parallel; traces come back in chain order.
fn independent_chains<R: Send>(
    rngs: Vec<R>,
    run_chain: impl Fn(&mut R, usize) -> ChainTrace + Sync,
) -> Vec<ChainTrace> {
    rngs.into_par_iter()
        .enumerate()
        .map(|(c, mut rng)| run_chain(&mut rng, c))
        .collect()
}

/// The setting to change when a chain of `cfg` explodes or gets stuck.
fn fix_for(cfg: &SamplerConfig) -> String {
    match cfg {
        SamplerConfig::Hmc(h) if !h.adapt_step_size => format!(
            "step_size {:.3e} is fixed (adapt_step_size: false) and too large for this \
             posterior: lower it, or set adapt_step_size: true",
            h.step_size
        ),
        SamplerConfig::Hmc(_) => "the adapted step size is too large for parts of this \
             posterior: raise target_acceptance (e.g. 0.95) or posterior.gamma, or use name: nuts"
            .into(),
        SamplerConfig::Nuts(n) if !n.adapt_step_size => format!(
            "step_size {:.3e} is fixed (adapt_step_size: false) and too large for this \
             posterior: lower it, or set adapt_step_size: true",
            n.step_size
        ),
        SamplerConfig::Nuts(_) => "the adapted step size is too large for parts of this \
             posterior: raise target_acceptance (e.g. 0.95) or posterior.gamma"
            .into(),
        SamplerConfig::Sgld(_) => "lower sgld step_size or use step_size: auto".into(),
        SamplerConfig::Mclmc(m) if m.step_size.is_some() => {
            "the given step_size and L are too large: lower them or leave both null to tune them"
                .into()
        }
        SamplerConfig::Mclmc(_) => "the tuned step size is too large for parts of this \
             posterior: lower desired_energy_var"
            .into(),
    }
}

/// Draws a Metropolis chain must have made before it can be called stuck: enough that a
/// healthy chain's burst of divergences in one stiff region (tens of transitions) cannot
/// trigger it.
pub(crate) const STUCK_CHECK_AFTER: usize = 200;

/// A chain is stuck when at least 90 % of at least [`STUCK_CHECK_AFTER`] transitions diverged:
/// its state has barely moved from where it started, and its LLC draws say nothing.
pub(crate) fn is_stuck(divergences: u64, transitions: usize) -> bool {
    transitions >= STUCK_CHECK_AFTER && 10 * divergences >= 9 * transitions as u64
}

/// Refuses a run whose chains exploded or got stuck (see the module doc).
fn guard(cfg: &SamplerConfig, dim: usize, chains: &[ChainTrace]) -> Result<(), SamplerError> {
    let limit = exploded_llc_limit(dim);
    for (c, trace) in chains.iter().enumerate() {
        if let Some(bad) = trace.llc.iter().find(|&&x| x.is_nan() || x > limit) {
            return Err(SamplerError::Exploded {
                sampler: cfg.name(),
                chain: c,
                what: format!("an LLC draw was {bad:.3e}, above the limit {limit:.0}"),
                fix: fix_for(cfg),
            });
        }
        // Metropolis samplers: one transition per draw, each divergent or not.
        let metropolis = cfg.kind().is_metropolis();
        let transitions = trace.llc.len();
        if metropolis && is_stuck(trace.divergences, transitions) {
            return Err(SamplerError::Stuck {
                sampler: cfg.name(),
                chain: c,
                diverged: trace.divergences,
                transitions,
                step_size: trace.tuned.get("step_size").copied().unwrap_or(f64::NAN),
                fix: fix_for(cfg),
            });
        }
    }
    Ok(())
}

/// Everything that would make sampling meaningless, checked once before any chain starts.
fn check<F: Real, M: LossModel<F>>(
    cfg: &SamplerConfig,
    post: &Posterior<'_, F, M>,
) -> Result<(), SamplerError> {
    let mut problems = Vec::new();
    cfg.validate("sampler", &mut problems);
    if !problems.is_empty() {
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        return Err(SamplerError::InvalidConfig(text.join("; ")));
    }
    let dim = post.dim();
    if post.w_star.len() != dim {
        return Err(SamplerError::DimensionMismatch {
            w_star: post.w_star.len(),
            dim,
        });
    }
    if post.model.n_data() == 0 {
        return Err(SamplerError::NoData);
    }
    if matches!(cfg, SamplerConfig::Mclmc(_)) && dim < 2 {
        return Err(SamplerError::TooFewParameters(dim));
    }
    let scalars = [
        ("L0", post.l0.f64()),
        ("nβ", post.n_beta.f64()),
        ("γ", post.gamma.f64()),
    ];
    for (name, v) in scalars {
        if !v.is_finite() {
            return Err(SamplerError::NonFiniteStart {
                what: format!("{name} = {v}"),
            });
        }
    }
    if !vecops::all_finite(&post.w_star) {
        return Err(SamplerError::NonFiniteStart {
            what: "w* has non-finite entries".into(),
        });
    }
    Ok(())
}

/// Counts transitions that produced a non-finite value, to turn them into one warning per
/// chain after the loop (formatting a message inside the loop would allocate).
#[derive(Debug, Clone, Default)]
pub(crate) struct NonFinite {
    seen: u64,
    count: u64,
    first: Option<u64>,
}

impl NonFinite {
    /// Records one transition; `bad` when it produced a non-finite value.
    pub(crate) fn observe(&mut self, bad: bool) {
        if bad {
            self.count += 1;
            self.first.get_or_insert(self.seen);
        }
        self.seen += 1;
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// "chain 2: 3 of 1000 proposals were not finite (first at #130); <consequence>".
    pub(crate) fn warning(&self, chain: usize, what: &str, consequence: &str) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "chain {chain}: {} of {} {what} were not finite (first at #{first}); {consequence}",
            self.count, self.seen
        ))
    }
}
