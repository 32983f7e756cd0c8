//! MCMC samplers of the localized posterior: HMC, NUTS, SGLD and MCLMC, and the registry that
//! makes them known to the rest of lambda-hat.
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
//! **The registry.** Each sampler's module holds its settings type (`hmc::HmcConfig`, …) and
//! implements [`Sampler`] for it: preset, `validate --quick` budget, validation, runner, memory
//! footprint, the fix to suggest when it fails. One line of the `registry!` call below turns the
//! list into [`SamplerKind`] and [`SamplerConfig`], the tagged union that experiments files and
//! spec.json carry. Adding a sampler is three files: `samplers/NAME.rs`, `config/sampler/NAME.yaml`
//! and this one (`mod NAME;` and its registry line); the trait's required items are what the
//! compiler asks for (ARCHITECTURE.md §4, "Where to go"). The settings live here, below `config`,
//! because they are the samplers' own: `config` reads them into the sweep and re-exports them.
//!
//! Modules (private; [`run`] is the entry point): `hmc` and `nuts` (+ `window_adaptation`), `mclmc`
//! (+ `mclmc_tuning`, `mclmc_kernel`, `curvature`), `sgld` (+ `sgld_step`, `precond`); `vecops`
//! holds the allocation-free vector helpers they share, `settings` their serde defaults. Each
//! module's doc says what it records.

mod curvature;
mod hmc;
mod mclmc;
mod mclmc_kernel;
mod mclmc_settings;
pub mod mclmc_tuning;
mod nuts;
mod precond;
mod settings;
mod sgld;
mod sgld_step;
mod vecops;
mod window_adaptation;

#[cfg(test)]
mod test_models;
#[cfg(test)]
mod tests;

pub use hmc::{HmcConfig, IntegrationSteps};
pub use mclmc_settings::{Integrator, MclmcConfig};
pub use nuts::{MAX_TREE_DEPTH_LIMIT, NutsConfig};
pub use precond::Precond;
pub use sgld::{SgldConfig, StepSize};
pub use window_adaptation::Adaptation;

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, count};
use crate::numeric::Real;
use crate::posterior::{LossModel, Posterior};

/// What the rest of lambda-hat asks of a sampler, implemented by its settings type.
///
/// `plan` asks for the [`footprint`](Sampler::footprint), `validate` for the quick budget and
/// whether the sampler is Metropolis-corrected, `config` for the preset and the validation,
/// the worker (through [`run`]) for the chains.
pub trait Sampler: Clone + PartialEq + Serialize + DeserializeOwned {
    /// The built-in preset, `config/sampler/NAME.yaml` compiled in.
    const PRESET: &'static str;
    /// The overrides `lambda-hat validate --quick` lays over the preset (a YAML mapping): less
    /// work, same tolerances.
    const QUICK_OVERRIDES: &'static str;
    /// Whether each transition is accepted or rejected (HMC, NUTS): such a sampler has a
    /// target acceptance, can get stuck, and is held to the tighter `validate` tolerances.
    const METROPOLIS: bool;
    /// The per-draw statistics its traces carry ([`ChainTrace::stats`], names from [`stat`]):
    /// what trace.npz holds besides `llc` and `loss`. A statistic of a stage the settings skip
    /// (MCLMC's tuning when `L` and `step_size` are given) is left out of that run's trace.
    const STATS: &'static [&'static str];

    fn chains(&self) -> usize;

    /// Part of the run ID, and so of every chain's RNG seed: change it for another replicate.
    fn seed(&self) -> u64;

    /// The acceptance rate the warmup adapts the step size to (Metropolis samplers only).
    fn target_acceptance(&self) -> Option<f64> {
        None
    }

    /// Pushes every out-of-range setting onto `out`, its key path under `prefix`. `chains` is
    /// checked by [`SamplerConfig::validate`] for every sampler.
    fn validate(&self, prefix: &str, out: &mut Vec<Invalid>);

    /// Refuses a model this sampler cannot sample, once the common checks passed.
    fn check_model(&self, _dim: usize) -> Result<(), SamplerError> {
        Ok(())
    }

    /// Runs every chain from w*, `rngs[c]` being chain c's RNG; traces in chain order.
    fn run_chains<F: Real, M: LossModel<F>>(
        &self,
        post: &Posterior<'_, F, M>,
        rngs: Vec<Xoshiro256PlusPlus>,
        run_id: &str,
    ) -> Result<Vec<ChainTrace>, SamplerError>;

    /// The setting to change when a chain of this run explodes or gets stuck.
    fn fix(&self) -> String;

    /// What a run of `params` parameters on `n_data` rows keeps besides the chains' vectors,
    /// for `plan`'s memory estimate.
    fn footprint(&self, params: f64, n_data: f64) -> Footprint;

    /// Roughly how many full-batch gradient evaluations one chain spends on `n_data` rows,
    /// warmup and tuning included: what `bundle-size: auto` plans SLURM bundles by
    /// (`exec::slurm::bundle`). An order of magnitude is enough; trajectory lengths the config
    /// leaves open count as [`OPEN_TRAJECTORY_STEPS`].
    fn gradients_per_chain(&self, n_data: f64) -> f64;
}

/// Gradient evaluations assumed per transition where the config leaves the trajectory open
/// (HMC's `num_integration_steps: auto`, NUTS's trees), for [`Sampler::gradients_per_chain`].
pub(crate) const OPEN_TRAJECTORY_STEPS: f64 = 32.0;

/// What a run records, for the memory estimate (`plan::memory`), in counts per chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    /// Draws recorded in the trace.
    pub draws: f64,
    /// Warmup or tuning steps whose statistics are recorded.
    pub warmup_steps: f64,
    /// Bytes a chain holds besides [`Footprint::draws`], the warmup statistics and the
    /// parameter-sized vectors every sampler has (NUTS's tree, MCLMC's tuning buffer, SGLD's
    /// row permutation).
    pub extra_bytes: f64,
}

/// Builds [`SamplerKind`] and [`SamplerConfig`] from the registry's lines, with one exhaustive
/// `match` per question, so that nothing else in the program lists the samplers.
macro_rules! registry {
    ($($variant:ident = $name:literal => $settings:ty),+ $(,)?) => {
        /// A sampler lambda-hat knows, by kind. A name that is not one of them is an error
        /// wherever it is read, never a fallback.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum SamplerKind {
            $($variant),+
        }

        impl SamplerKind {
            pub const ALL: [SamplerKind; [$($name),+].len()] = [$(SamplerKind::$variant),+];

            /// The name in experiments files, presets (`sampler/NAME.yaml`), run IDs and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(SamplerKind::$variant => $name),+
                }
            }

            /// The sampler called `name`; `None` for a name that is not a sampler.
            pub fn from_name(name: &str) -> Option<SamplerKind> {
                SamplerKind::ALL.into_iter().find(|k| k.name() == name)
            }

            /// The built-in preset, `config/sampler/NAME.yaml` compiled in.
            pub fn builtin_preset(self) -> &'static str {
                match self {
                    $(SamplerKind::$variant => <$settings as Sampler>::PRESET),+
                }
            }

            /// What `validate --quick` lays over the preset ([`Sampler::QUICK_OVERRIDES`]).
            pub fn quick_overrides(self) -> &'static str {
                match self {
                    $(SamplerKind::$variant => <$settings as Sampler>::QUICK_OVERRIDES),+
                }
            }

            /// See [`Sampler::STATS`].
            pub fn stats(self) -> &'static [&'static str] {
                match self {
                    $(SamplerKind::$variant => <$settings as Sampler>::STATS),+
                }
            }

            /// See [`Sampler::METROPOLIS`].
            pub fn is_metropolis(self) -> bool {
                match self {
                    $(SamplerKind::$variant => <$settings as Sampler>::METROPOLIS),+
                }
            }
        }

        /// A sampler configuration; `name` selects the algorithm and is the run ID's prefix.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name")]
        pub enum SamplerConfig {
            $(#[serde(rename = $name)] $variant($settings)),+
        }

        impl SamplerConfig {
            /// Every sampler's name, in [`SamplerKind::ALL`]'s order (for clap's lists).
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            pub fn kind(&self) -> SamplerKind {
                match self {
                    $(SamplerConfig::$variant(_) => SamplerKind::$variant),+
                }
            }

            pub fn name(&self) -> &'static str {
                self.kind().name()
            }

            /// Reads the settings of a `kind` sampler (a preset merged with its overrides,
            /// without the `name` key) from `d`.
            pub fn deserialize_as<'de, D: serde::Deserializer<'de>>(
                kind: SamplerKind,
                d: D,
            ) -> Result<SamplerConfig, D::Error> {
                match kind {
                    $(SamplerKind::$variant => {
                        <$settings>::deserialize(d).map(SamplerConfig::$variant)
                    })+
                }
            }

            pub fn chains(&self) -> usize {
                match self {
                    $(SamplerConfig::$variant(s) => s.chains()),+
                }
            }

            /// See [`Sampler::seed`].
            pub fn seed(&self) -> u64 {
                match self {
                    $(SamplerConfig::$variant(s) => s.seed()),+
                }
            }

            /// See [`Sampler::target_acceptance`].
            pub fn target_acceptance(&self) -> Option<f64> {
                match self {
                    $(SamplerConfig::$variant(s) => s.target_acceptance()),+
                }
            }

            /// Pushes every out-of-range setting onto `out`, key paths under `prefix`.
            pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
                count(out, &format!("{prefix}.chains"), self.chains());
                match self {
                    $(SamplerConfig::$variant(s) => s.validate(prefix, out)),+
                }
            }

            /// See [`Sampler::gradients_per_chain`].
            pub fn gradients_per_chain(&self, n_data: f64) -> f64 {
                match self {
                    $(SamplerConfig::$variant(s) => s.gradients_per_chain(n_data)),+
                }
            }

            /// See [`Sampler::footprint`].
            pub fn footprint(&self, params: f64, n_data: f64) -> Footprint {
                match self {
                    $(SamplerConfig::$variant(s) => s.footprint(params, n_data)),+
                }
            }

            fn check_model(&self, dim: usize) -> Result<(), SamplerError> {
                match self {
                    $(SamplerConfig::$variant(s) => s.check_model(dim)),+
                }
            }

            fn fix(&self) -> String {
                match self {
                    $(SamplerConfig::$variant(s) => s.fix()),+
                }
            }

            fn run_chains<F: Real, M: LossModel<F>>(
                &self,
                post: &Posterior<'_, F, M>,
                rngs: Vec<Xoshiro256PlusPlus>,
                run_id: &str,
            ) -> Result<Vec<ChainTrace>, SamplerError> {
                match self {
                    $(SamplerConfig::$variant(s) => s.run_chains(post, rngs, run_id)),+
                }
            }
        }
    };
}
// The samplers lambda-hat knows: variant, name (in experiments files, presets, run IDs and
// reports) and settings type. One line each; see the module doc.
registry! {
    Hmc = "hmc" => HmcConfig,
    Nuts = "nuts" => NutsConfig,
    Sgld = "sgld" => SgldConfig,
    Mclmc = "mclmc" => MclmcConfig,
}

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
    /// MCLMC's step size through its tuning stages, one per tuning step.
    pub const TUNING_STEP_SIZE: &str = "tuning_step_size";
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
pub(crate) fn calibration_rng(run_id: &str) -> Xoshiro256PlusPlus {
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
    let chains = cfg.run_chains(post, rngs, run_id)?;
    guard(cfg, post.dim(), &chains)?;
    Ok(SamplerRun {
        chains,
        warnings: Vec::new(),
    })
}

/// Runs one independent chain per RNG in parallel; traces come back in chain order.
pub(crate) fn independent_chains<R: Send>(
    rngs: Vec<R>,
    run_chain: impl Fn(&mut R, usize) -> ChainTrace + Sync,
) -> Vec<ChainTrace> {
    use rayon::prelude::*;
    rngs.into_par_iter()
        .enumerate()
        .map(|(c, mut rng)| run_chain(&mut rng, c))
        .collect()
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

/// At the end of a run, when no more draws are coming: a chain is also stuck when every one of
/// its transitions diverged, however few there were. Such a chain never left its start, and a
/// run shorter than [`STUCK_CHECK_AFTER`] reported an LLC of exactly 0 with an ESS of every
/// draw. (A short chain with most but not all transitions divergent moved, and is reported
/// with its divergences, which make it unhealthy: refusing it would make short smoke runs
/// fail where the longer run would only be flagged.)
pub(crate) fn ended_stuck(divergences: u64, transitions: usize) -> bool {
    is_stuck(divergences, transitions) || (transitions > 0 && divergences == transitions as u64)
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
                fix: cfg.fix(),
            });
        }
        // Metropolis samplers: one transition per draw, each divergent or not.
        let metropolis = cfg.kind().is_metropolis();
        let transitions = trace.llc.len();
        if metropolis && ended_stuck(trace.divergences, transitions) {
            return Err(SamplerError::Stuck {
                sampler: cfg.name(),
                chain: c,
                diverged: trace.divergences,
                transitions,
                step_size: trace.tuned.get("step_size").copied().unwrap_or(f64::NAN),
                fix: cfg.fix(),
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
    cfg.check_model(dim)?;
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

    /// `"chain 2: 3 of 1000 proposals were not finite (first at #130); <consequence>"`.
    pub(crate) fn warning(&self, chain: usize, what: &str, consequence: &str) -> Option<String> {
        let first = self.first?;
        Some(format!(
            "chain {chain}: {} of {} {what} were not finite (first at #{first}); {consequence}",
            self.count, self.seen
        ))
    }
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// Every preset, typed as its sampler's settings (`name` added as an experiments file has it).
    fn preset_config(kind: SamplerKind) -> SamplerConfig {
        let mut value: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
        value
            .as_mapping_mut()
            .unwrap()
            .insert("name".into(), kind.name().into());
        serde_yaml::from_value(value).unwrap()
    }

    #[test]
    fn the_registry_names_every_sampler_once_and_round_trips() {
        let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, SamplerConfig::NAMES);
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for kind in SamplerKind::ALL {
            assert_eq!(SamplerKind::from_name(kind.name()), Some(kind));
            let preset: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
            assert!(preset.is_mapping(), "{}: {preset:?}", kind.name());
        }
        assert_eq!(SamplerKind::from_name("HMC"), None);
        assert_eq!(SamplerKind::from_name("mclmc2"), None);
    }

    #[test]
    fn a_config_knows_its_kind_and_writes_its_name() {
        for kind in SamplerKind::ALL {
            let cfg = preset_config(kind);
            assert_eq!(cfg.kind(), kind);
            assert_eq!(cfg.target_acceptance().is_some(), kind.is_metropolis());
            let json = serde_json::to_value(&cfg).unwrap();
            assert_eq!(json["name"], kind.name(), "{json}");
            let mut problems = Vec::new();
            cfg.validate("sampler", &mut problems);
            assert!(problems.is_empty(), "{}: {problems:?}", kind.name());
        }
    }

    #[test]
    fn deserialize_as_reads_the_settings_of_the_kind_it_is_given() {
        for kind in SamplerKind::ALL {
            let value: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
            let cfg = SamplerConfig::deserialize_as(kind, value).unwrap();
            assert_eq!(cfg, preset_config(kind));
        }
        // HMC's preset is not NUTS's settings: `num_integration_steps` is refused.
        let hmc: serde_yaml::Value =
            serde_yaml::from_str(SamplerKind::Hmc.builtin_preset()).unwrap();
        let err = SamplerConfig::deserialize_as(SamplerKind::Nuts, hmc).unwrap_err();
        assert!(err.to_string().contains("num_integration_steps"), "{err}");
    }

    #[test]
    fn every_sampler_has_quick_overrides_that_lower_its_budget() {
        for kind in SamplerKind::ALL {
            let quick: serde_yaml::Value = serde_yaml::from_str(kind.quick_overrides()).unwrap();
            let map = quick.as_mapping().expect("a mapping");
            assert!(!map.is_empty(), "{kind:?}: {quick:?}");
            let preset: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
            for (key, value) in map {
                let full = preset.get(key).and_then(|v| v.as_u64());
                let quick = value.as_u64();
                assert!(
                    matches!((full, quick), (Some(f), Some(q)) if q < f),
                    "{kind:?}: {key:?} quick {quick:?} vs preset {full:?}"
                );
            }
        }
    }

    #[test]
    fn the_footprint_grows_with_the_draws() {
        for kind in SamplerKind::ALL {
            let small = preset_config(kind).footprint(100.0, 1000.0);
            assert!(small.draws >= 1.0, "{kind:?}: {small:?}");
            assert!(small.extra_bytes >= 0.0 && small.warmup_steps >= 0.0);
        }
    }
}
