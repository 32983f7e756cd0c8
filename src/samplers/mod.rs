//! MCMC samplers of the localized posterior: HMC, SGLD and MCLMC.
//!
//! Input: a [`SamplerConfig`], a [`Posterior`] and the run ID (which seeds every chain's RNG).
//! Output: a [`SamplerRun`], one [`ChainTrace`] per chain with the LLC and loss of every recorded
//! draw and per-step sampler statistics. Chains run in parallel with rayon; each chain's RNG is
//! derived from (run id, chain index) only, so traces are bit-identical whatever the thread count.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

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
    /// Gradient evaluations spent by this chain, warmup and tuning included.
    pub grad_evals: u64,
    pub divergences: u64,
    /// Mean acceptance probability after warmup (HMC), or the MALA-style diagnostic (SGLD).
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
    #[error("sampler `{0}` is not implemented yet")]
    NotImplemented(&'static str),
}

/// The RNG of chain `chain` of the run whose ID is `run_id`.
pub fn chain_rng(run_id: &str, chain: usize) -> Xoshiro256PlusPlus {
    let seed = xxhash_rust::xxh3::xxh3_64(format!("{run_id}/chain/{chain}").as_bytes());
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Runs the configured sampler on `post`; chains in parallel.
pub fn run<F: Real, M: LossModel<F>>(
    cfg: &SamplerConfig,
    _post: &Posterior<'_, F, M>,
    _run_id: &str,
) -> Result<SamplerRun, SamplerError> {
    Err(SamplerError::NotImplemented(cfg.name()))
}
