//! The samplers' settings: one config type per algorithm, and [`SamplerConfig`], the tagged union the experiments file and spec.json carry.

use serde::{Deserialize, Serialize};

use super::check::{Invalid, at_least_one, fraction, invalid, positive};
use super::model::default_true;

fn d_chains() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmcConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    /// Adaptation steps (discarded).
    pub warmup: usize,
    pub draws: usize,
    /// Mean leapfrog steps per transition, or `auto`: a fixed integration time over the
    /// adapted step size (see the `hmc` sampler module).
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

/// The No-U-Turn Sampler ([`crate::samplers`]' `nuts` module): HMC whose trajectory length is
/// chosen per transition by doubling until it turns back on itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NutsConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    /// Adaptation steps (discarded).
    pub warmup: usize,
    pub draws: usize,
    /// Initial step size; adapted during warmup when `adapt_step_size`.
    pub step_size: f64,
    #[serde(default = "d_target_acceptance")]
    pub target_acceptance: f64,
    /// A trajectory doubles at most this many times: at most 2^depth − 1 leapfrog steps.
    #[serde(default = "d_max_tree_depth")]
    pub max_tree_depth: usize,
    #[serde(default = "default_true")]
    pub adapt_step_size: bool,
    #[serde(default = "default_true")]
    pub adapt_mass_matrix: bool,
    /// An energy error above this marks the transition divergent and stops its tree.
    #[serde(default = "d_max_energy_error")]
    pub max_energy_error: f64,
    /// As HMC's: pooled (lockstep) or per-chain warmup; left out of the serialized config at
    /// its default.
    #[serde(default, skip_serializing_if = "Adaptation::is_default")]
    pub adaptation: Adaptation,
    /// Part of the run ID, and so of every chain's RNG seed: change it for another replicate.
    #[serde(default)]
    pub seed: u64,
}

/// Stan's and BlackJAX's default.
fn d_max_tree_depth() -> usize {
    10
}

/// The largest `max_tree_depth` accepted: 2^15 − 1 gradients per draw is already far past any
/// budget this tool is meant for, and the tree keeps per-level buffers.
pub const MAX_TREE_DEPTH_LIMIT: usize = 15;

/// How HMC's (and NUTS's) warmup adapts the step size and inverse mass matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Adaptation {
    /// All chains warm up in lockstep and share what they learn: dual averaging sees their
    /// mean acceptance, the variances all their positions.
    #[default]
    Pooled,
    /// Each chain adapts alone, as in Stan.
    PerChain,
}

impl Adaptation {
    fn is_default(&self) -> bool {
        *self == Adaptation::default()
    }
}

fn d_target_acceptance() -> f64 {
    0.8
}
fn d_max_energy_error() -> f64 {
    1000.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precond {
    #[default]
    None,
    Rmsprop,
    Adam,
}

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

/// HMC's leapfrog steps per transition: a number, or chosen from the adapted step size.
///
/// Serialized like [`StepSize`]: a number stays a number, so run IDs of configs that give one
/// are unchanged.
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

/// A number, or the string `auto` (→ `None`); anything else is an error naming both.
fn number_or_auto<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    what: &str,
) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<T> {
        Number(T),
        Text(String),
    }
    match Raw::<T>::deserialize(d) {
        Ok(Raw::Number(x)) => Ok(Some(x)),
        Ok(Raw::Text(t)) if t == "auto" => Ok(None),
        Ok(Raw::Text(t)) => Err(serde::de::Error::custom(format!(
            "expected {what} or `auto`, got \"{t}\""
        ))),
        Err(_) => Err(serde::de::Error::custom(format!(
            "expected {what} or `auto`"
        ))),
    }
}

fn d_precond_decay() -> f64 {
    0.99
}
fn d_precond_beta1() -> f64 {
    0.9
}
fn d_precond_eps() -> f64 {
    1e-8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    #[default]
    IsokineticMclachlan,
    IsokineticLeapfrog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MclmcConfig {
    #[serde(default = "d_chains")]
    pub chains: usize,
    pub draws: usize,
    #[serde(default)]
    pub integrator: Integrator,
    /// BlackJAX's `num_steps`: tuning stage k runs ⌊frac_tuneK · num_tuning_steps⌋ steps (plus a
    /// third of stage 2 again with diagonal_preconditioning), all discarded.
    pub num_tuning_steps: usize,
    #[serde(default = "d_frac")]
    pub frac_tune1: f64,
    #[serde(default = "d_frac")]
    pub frac_tune2: f64,
    #[serde(default = "d_frac")]
    pub frac_tune3: f64,
    #[serde(default = "d_energy_var")]
    pub desired_energy_var: f64,
    #[serde(default = "d_trust")]
    pub trust_in_estimate: f64,
    #[serde(default = "d_num_eff")]
    pub num_effective_samples: f64,
    /// Momentum decoherence length; with `step_size`, skips tuning.
    #[serde(default, rename = "L")]
    pub l: Option<f64>,
    #[serde(default)]
    pub step_size: Option<f64>,
    #[serde(default)]
    pub diagonal_preconditioning: bool,
    #[serde(default)]
    pub seed: u64,
}

fn d_frac() -> f64 {
    0.1
}
fn d_energy_var() -> f64 {
    5e-4
}
fn d_trust() -> f64 {
    1.5
}
fn d_num_eff() -> f64 {
    150.0
}

/// The registry of samplers: every sampler lambda-hat knows, and what the rest of the program
/// asks of each by kind (its name, its built-in preset, whether it has a Metropolis
/// correction). Each `match` over it, and over [`SamplerConfig`], is exhaustive, so a new sampler
/// makes the compiler list every place that must learn about it (ARCHITECTURE.md, "Where to go").
/// A name that is not here is an error wherever it is read, never a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SamplerKind {
    Hmc,
    Nuts,
    Sgld,
    Mclmc,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 4] = [
        SamplerKind::Hmc,
        SamplerKind::Nuts,
        SamplerKind::Sgld,
        SamplerKind::Mclmc,
    ];

    /// The name in experiments files, presets (`sampler/NAME.yaml`), run IDs and reports.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Hmc => "hmc",
            SamplerKind::Nuts => "nuts",
            SamplerKind::Sgld => "sgld",
            SamplerKind::Mclmc => "mclmc",
        }
    }

    /// The sampler called `name`; `None` for a name that is not a sampler.
    pub fn from_name(name: &str) -> Option<SamplerKind> {
        SamplerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The built-in preset, `config/sampler/NAME.yaml` compiled in.
    pub fn builtin_preset(self) -> &'static str {
        match self {
            SamplerKind::Hmc => include_str!("../../../config/sampler/hmc.yaml"),
            SamplerKind::Nuts => include_str!("../../../config/sampler/nuts.yaml"),
            SamplerKind::Sgld => include_str!("../../../config/sampler/sgld.yaml"),
            SamplerKind::Mclmc => include_str!("../../../config/sampler/mclmc.yaml"),
        }
    }

    /// Whether each transition is accepted or rejected (HMC, NUTS): such a sampler has a target
    /// acceptance, can get stuck, and is held to the tighter `validate` tolerances.
    pub fn is_metropolis(self) -> bool {
        match self {
            SamplerKind::Hmc | SamplerKind::Nuts => true,
            SamplerKind::Sgld | SamplerKind::Mclmc => false,
        }
    }
}

/// A sampler configuration; `name` selects the algorithm and is the run ID's prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum SamplerConfig {
    Hmc(HmcConfig),
    Nuts(NutsConfig),
    Sgld(SgldConfig),
    Mclmc(MclmcConfig),
}

impl SamplerConfig {
    /// Every sampler's name, in [`SamplerKind::ALL`]'s order (a constant, for clap's lists; a
    /// unit test keeps the two equal).
    pub const NAMES: [&'static str; 4] = ["hmc", "nuts", "sgld", "mclmc"];

    pub fn kind(&self) -> SamplerKind {
        match self {
            SamplerConfig::Hmc(_) => SamplerKind::Hmc,
            SamplerConfig::Nuts(_) => SamplerKind::Nuts,
            SamplerConfig::Sgld(_) => SamplerKind::Sgld,
            SamplerConfig::Mclmc(_) => SamplerKind::Mclmc,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The acceptance rate the warmup adapts the step size to, for samplers with a Metropolis
    /// correction; `None` for the others.
    pub fn target_acceptance(&self) -> Option<f64> {
        match self {
            SamplerConfig::Hmc(h) => Some(h.target_acceptance),
            SamplerConfig::Nuts(n) => Some(n.target_acceptance),
            SamplerConfig::Sgld(_) | SamplerConfig::Mclmc(_) => None,
        }
    }

    pub fn chains(&self) -> usize {
        match self {
            SamplerConfig::Hmc(c) => c.chains,
            SamplerConfig::Nuts(c) => c.chains,
            SamplerConfig::Sgld(c) => c.chains,
            SamplerConfig::Mclmc(c) => c.chains,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            SamplerConfig::Hmc(c) => c.seed,
            SamplerConfig::Nuts(c) => c.seed,
            SamplerConfig::Sgld(c) => c.seed,
            SamplerConfig::Mclmc(c) => c.seed,
        }
    }

    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        let p = |k: &str| format!("{prefix}.{k}");
        at_least_one(out, &p("chains"), self.chains());
        match self {
            SamplerConfig::Hmc(c) => {
                at_least_one(out, &p("draws"), c.draws);
                if let IntegrationSteps::Fixed(n) = c.num_integration_steps {
                    at_least_one(out, &p("num_integration_steps"), n);
                }
                positive(out, &p("step_size"), c.step_size);
                fraction(out, &p("target_acceptance"), c.target_acceptance, true);
                positive(out, &p("max_energy_error"), c.max_energy_error);
            }
            SamplerConfig::Nuts(c) => {
                at_least_one(out, &p("draws"), c.draws);
                positive(out, &p("step_size"), c.step_size);
                fraction(out, &p("target_acceptance"), c.target_acceptance, true);
                positive(out, &p("max_energy_error"), c.max_energy_error);
                if !(1..=MAX_TREE_DEPTH_LIMIT).contains(&c.max_tree_depth) {
                    out.push(invalid(
                        &p("max_tree_depth"),
                        format!(
                            "must be in 1..={MAX_TREE_DEPTH_LIMIT}, got {}",
                            c.max_tree_depth
                        ),
                    ));
                }
            }
            SamplerConfig::Sgld(c) => {
                match c.step_size {
                    StepSize::Fixed(x) => positive(out, &p("step_size"), x),
                    // The automatic step bounds the bias of plain SGLD; a preconditioner
                    // rescales every direction by its own factor, which that bound ignores.
                    StepSize::Auto if c.precond != Precond::None => out.push(invalid(
                        &p("step_size"),
                        "`auto` works with `precond: none` only: give a number with a preconditioner",
                    )),
                    StepSize::Auto => {}
                }
                at_least_one(out, &p("steps"), c.steps);
                at_least_one(out, &p("eval_every"), c.eval_every);
                if c.eval_every > 0 && c.steps > 0 && c.steps < c.eval_every {
                    out.push(invalid(
                        &p("steps"),
                        format!(
                            "must be at least eval_every ({}) to record one draw",
                            c.eval_every
                        ),
                    ));
                }
                if let Some(b) = c.batch_size {
                    at_least_one(out, &p("batch_size"), b);
                }
                fraction(out, &p("precond_decay"), c.precond_decay, true);
                fraction(out, &p("precond_beta1"), c.precond_beta1, false);
                positive(out, &p("precond_eps"), c.precond_eps);
            }
            SamplerConfig::Mclmc(c) => {
                at_least_one(out, &p("draws"), c.draws);
                for (k, f) in [
                    ("frac_tune1", c.frac_tune1),
                    ("frac_tune2", c.frac_tune2),
                    ("frac_tune3", c.frac_tune3),
                ] {
                    if !(f.is_finite() && (0.0..=1.0).contains(&f)) {
                        out.push(invalid(&p(k), format!("must be in [0, 1], got {f}")));
                    }
                }
                positive(out, &p("desired_energy_var"), c.desired_energy_var);
                positive(out, &p("trust_in_estimate"), c.trust_in_estimate);
                positive(out, &p("num_effective_samples"), c.num_effective_samples);
                match (c.l, c.step_size) {
                    (Some(l), Some(s)) => {
                        positive(out, &p("L"), l);
                        positive(out, &p("step_size"), s);
                    }
                    (Some(_), None) => out.push(invalid(&p("L"), "is set without `step_size`: set both to skip tuning, or neither to tune them")),
                    (None, Some(_)) => out.push(invalid(&p("step_size"), "is set without `L`: set both to skip tuning, or neither to tune them")),
                    (None, None) => {
                        at_least_one(out, &p("num_tuning_steps"), c.num_tuning_steps);
                        if (c.frac_tune1 + c.frac_tune2) * (c.num_tuning_steps as f64) < 1.0 {
                            out.push(invalid(
                                &p("frac_tune1"),
                                "frac_tune1 + frac_tune2 leave no step-size tuning steps: raise them or num_tuning_steps, or give L and step_size",
                            ));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_every_sampler_once_and_round_trips() {
        let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, SamplerConfig::NAMES);
        for kind in SamplerKind::ALL {
            assert_eq!(SamplerKind::from_name(kind.name()), Some(kind));
            let preset: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
            assert!(preset.is_mapping(), "{}: {preset:?}", kind.name());
        }
        assert_eq!(SamplerKind::from_name("HMC"), None);
        assert_eq!(SamplerKind::from_name("mclmc2"), None);
    }

    #[test]
    fn a_config_knows_its_kind() {
        for kind in SamplerKind::ALL {
            let mut value: serde_yaml::Value = serde_yaml::from_str(kind.builtin_preset()).unwrap();
            value
                .as_mapping_mut()
                .unwrap()
                .insert("name".into(), kind.name().into());
            let cfg: SamplerConfig = serde_yaml::from_value(value).unwrap();
            assert_eq!(cfg.kind(), kind);
            assert_eq!(cfg.target_acceptance().is_some(), kind.is_metropolis());
        }
    }
}
