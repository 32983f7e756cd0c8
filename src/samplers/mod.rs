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
//! Modules (private; [`run`] is the entry point): `hmc` and `nuts` (+ `window_adaptation`), `mclmc`
//! (+ `mclmc_tuning`, `curvature`), `sgld` (+ `precond`); `vecops` holds the allocation-free
//! vector helpers they share. Each module's doc says what it records.

mod curvature;
mod hmc;
mod mclmc;
mod mclmc_tuning;
mod nuts;
mod precond;
mod sgld;
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

use crate::config::schema::SamplerConfig;
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

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
            independent_chains(rngs, |rng, c| sgld::run_chain(s, post, rng, c))
        }
        SamplerConfig::Mclmc(m) => {
            independent_chains(rngs, |rng, c| mclmc::run_chain(m, post, rng, c))
        }
    };
    Ok(SamplerRun { chains })
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
