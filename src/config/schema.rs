//! The typed, resolved configuration of one target and one sampler run.
//!
//! These structs are the schema of the YAML presets and of the `spec.json` files the worker reads:
//! YAML (presets deep-merged with overrides) is deserialized into them with unknown keys refused,
//! then [`validate`](ModelConfig::validate)d. Their canonical JSON is what target and run IDs hash,
//! so renaming a field or changing a default changes every ID: the ID tests pin that.

use serde::{Deserialize, Serialize};

/// One problem with a config value: where it is (a dotted key path) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

fn positive(out: &mut Vec<Invalid>, path: &str, x: f64) {
    if !(x.is_finite() && x > 0.0) {
        out.push(invalid(path, format!("must be a positive number, got {x}")));
    }
}

fn at_least_one(out: &mut Vec<Invalid>, path: &str, x: usize) {
    if x == 0 {
        out.push(invalid(path, "must be at least 1, got 0"));
    }
}

fn fraction(out: &mut Vec<Invalid>, path: &str, x: f64, open_low: bool) {
    let ok = x.is_finite() && x < 1.0 && if open_low { x > 0.0 } else { x >= 0.0 };
    if !ok {
        let range = if open_low { "in (0, 1)" } else { "in [0, 1)" };
        out.push(invalid(path, format!("must be {range}, got {x}")));
    }
}

// ---------------------------------------------------------------- model

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Gelu,
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    #[default]
    He,
    Xavier,
    Lecun,
}

fn default_true() -> bool {
    true
}

/// An MLP: `in_dim` → `depth` hidden layers → `out_dim`.
///
/// After resolution `widths` is always `Some` with `depth` entries (solved from `target_params`
/// when not given), so the spec says exactly which network is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub in_dim: usize,
    pub out_dim: usize,
    pub depth: usize,
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    #[serde(default)]
    pub target_params: Option<usize>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default = "default_true")]
    pub bias: bool,
    #[serde(default)]
    pub skip_connections: bool,
    #[serde(default)]
    pub init: Init,
}

/// Hard bounds on a model's size, far above any network an MCMC sweep can sample but below
/// what would exhaust memory while merely planning (`depth: 100000000` with `target_params`
/// made even `lambda-hat -n` abort). A job's memory is estimated from its config before it runs
/// (crate::plan::memory); these bounds keep that arithmetic and the width solver finite.
pub const MAX_DEPTH: usize = 10_000;
pub const MAX_DIM: usize = 10_000_000;
pub const MAX_TARGET_PARAMS: usize = 10_000_000_000;

fn at_most(out: &mut Vec<Invalid>, key: &str, value: usize, max: usize) {
    if value > max {
        out.push(invalid(
            key,
            format!("{value} is above the largest lambda-hat accepts ({max})"),
        ));
    }
}

impl ModelConfig {
    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        at_least_one(out, &format!("{prefix}.in_dim"), self.in_dim);
        at_least_one(out, &format!("{prefix}.out_dim"), self.out_dim);
        at_most(out, &format!("{prefix}.in_dim"), self.in_dim, MAX_DIM);
        at_most(out, &format!("{prefix}.out_dim"), self.out_dim, MAX_DIM);
        at_most(out, &format!("{prefix}.depth"), self.depth, MAX_DEPTH);
        if let Some(w) = &self.widths
            && let Some(&big) = w.iter().max()
        {
            at_most(out, &format!("{prefix}.widths"), big, MAX_DIM);
        }
        if let Some(p) = self.target_params {
            at_most(
                out,
                &format!("{prefix}.target_params"),
                p,
                MAX_TARGET_PARAMS,
            );
        }
        match (&self.widths, self.target_params) {
            (Some(w), _) => {
                if w.len() != self.depth {
                    out.push(invalid(
                        &format!("{prefix}.widths"),
                        format!(
                            "has {} entries but depth is {}: give one width per hidden layer, or drop `widths` and set `target_params`",
                            w.len(),
                            self.depth
                        ),
                    ));
                }
                if w.contains(&0) {
                    out.push(invalid(
                        &format!("{prefix}.widths"),
                        "widths must be at least 1",
                    ));
                }
            }
            (None, Some(p)) => at_least_one(out, &format!("{prefix}.target_params"), p),
            (None, None) if self.depth > 0 => out.push(invalid(
                &format!("{prefix}.widths"),
                "a model with hidden layers needs `widths` (one per layer) or `target_params`",
            )),
            (None, None) => {}
        }
    }

    /// Hidden widths; empty for `depth: 0`. Only meaningful after resolution.
    pub fn hidden_widths(&self) -> &[usize] {
        self.widths.as_deref().unwrap_or(&[])
    }
}

// ---------------------------------------------------------------- data

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum XDist {
    #[default]
    GaussIso,
    GaussAniso,
    Mixture,
    LowdimManifold,
    HeavyTail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoiseModel {
    #[default]
    Gauss,
    Hetero,
    StudentT,
    Outliers,
}

fn d_noise_scale() -> f64 {
    0.1
}
fn d_aniso_condition() -> f64 {
    10.0
}
fn d_mixture_components() -> usize {
    4
}
fn d_mixture_spread() -> f64 {
    2.0
}
fn d_manifold_dim() -> usize {
    2
}
fn d_tail_df() -> f64 {
    3.0
}
fn d_outlier_frac() -> f64 {
    0.05
}
fn d_outlier_scale() -> f64 {
    10.0
}

/// Inputs x ~ `x_dist`, outputs y = teacher(x) + noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub n_data: usize,
    #[serde(default)]
    pub x_dist: XDist,
    #[serde(default)]
    pub noise: NoiseModel,
    #[serde(default = "d_noise_scale")]
    pub noise_scale: f64,
    /// gauss_aniso: ratio of the largest to the smallest input variance.
    #[serde(default = "d_aniso_condition")]
    pub aniso_condition: f64,
    /// mixture: number of Gaussian components and the spread of their centres.
    #[serde(default = "d_mixture_components")]
    pub mixture_components: usize,
    #[serde(default = "d_mixture_spread")]
    pub mixture_spread: f64,
    /// lowdim_manifold: intrinsic dimension of the input manifold.
    #[serde(default = "d_manifold_dim")]
    pub manifold_dim: usize,
    /// heavy_tail inputs and student_t noise: degrees of freedom.
    #[serde(default = "d_tail_df")]
    pub tail_df: f64,
    /// outliers noise: fraction of points and the scale of their noise.
    #[serde(default = "d_outlier_frac")]
    pub outlier_frac: f64,
    #[serde(default = "d_outlier_scale")]
    pub outlier_scale: f64,
}

impl DataConfig {
    /// Gaussian inputs and noise with every other key at its default.
    pub fn gauss_iso(n_data: usize, noise_scale: f64) -> Self {
        DataConfig {
            n_data,
            x_dist: XDist::GaussIso,
            noise: NoiseModel::Gauss,
            noise_scale,
            aniso_condition: d_aniso_condition(),
            mixture_components: d_mixture_components(),
            mixture_spread: d_mixture_spread(),
            manifold_dim: d_manifold_dim(),
            tail_df: d_tail_df(),
            outlier_frac: d_outlier_frac(),
            outlier_scale: d_outlier_scale(),
        }
    }

    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        at_least_one(out, &format!("{prefix}.n_data"), self.n_data);
        if !(self.noise_scale.is_finite() && self.noise_scale >= 0.0) {
            out.push(invalid(
                &format!("{prefix}.noise_scale"),
                format!("must be >= 0, got {}", self.noise_scale),
            ));
        }
        positive(
            out,
            &format!("{prefix}.aniso_condition"),
            self.aniso_condition,
        );
        at_least_one(
            out,
            &format!("{prefix}.mixture_components"),
            self.mixture_components,
        );
        positive(
            out,
            &format!("{prefix}.mixture_spread"),
            self.mixture_spread,
        );
        at_least_one(out, &format!("{prefix}.manifold_dim"), self.manifold_dim);
        positive(out, &format!("{prefix}.tail_df"), self.tail_df);
        fraction(
            out,
            &format!("{prefix}.outlier_frac"),
            self.outlier_frac,
            false,
        );
        positive(out, &format!("{prefix}.outlier_scale"), self.outlier_scale);
    }
}

// ---------------------------------------------------------------- teacher

fn d_weight_scale() -> f64 {
    1.0
}

/// The network that generates y. Every architecture field left out is copied from the student
/// (so the `_null` preset, `{}`, is "the student's architecture with its own random init").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    #[serde(default)]
    pub depth: Option<usize>,
    #[serde(default)]
    pub widths: Option<Vec<usize>>,
    #[serde(default)]
    pub target_params: Option<usize>,
    #[serde(default)]
    pub activation: Option<Activation>,
    #[serde(default)]
    pub bias: Option<bool>,
    /// Multiplies the teacher's initial weights (signal strength relative to the noise).
    #[serde(default = "d_weight_scale")]
    pub weight_scale: f64,
}

/// The teacher after resolution against the student: a full model plus its weight scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedTeacher {
    pub model: ModelConfig,
    pub weight_scale: f64,
}

// ---------------------------------------------------------------- training

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Adam,
    Sgd,
    Adamw,
}

fn d_learning_rate() -> f64 {
    1e-3
}
fn d_train_steps() -> usize {
    2000
}
fn d_eval_every() -> usize {
    100
}

/// Training of the student to w*.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    #[serde(default)]
    pub optimizer: Optimizer,
    #[serde(default = "d_learning_rate")]
    pub learning_rate: f64,
    #[serde(default = "d_train_steps")]
    pub steps: usize,
    /// Minibatch size; `null` trains full batch.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// adamw's decoupled weight decay (ignored by adam and sgd, which must leave it at 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Full-data loss is evaluated (and recorded for the training-loss plot) every this many steps.
    #[serde(default = "d_eval_every")]
    pub eval_every: usize,
    /// Stop early when the full-data loss improved by less than this relative amount between two
    /// evaluations; `null` never stops early.
    #[serde(default)]
    pub early_stop_tol: Option<f64>,
    /// How training ends: `lbfgs` (the default) hands the second half of the `steps` budget to a
    /// full-batch L-BFGS finish that runs until the gradient criterion holds; `none` spends all
    /// of `steps` on `optimizer`. Left out of the serialized config (and so of target IDs) at
    /// its default, so configs written before it existed keep their IDs.
    #[serde(default, skip_serializing_if = "Finish::is_default")]
    pub finish: Finish,
    /// The target counts as converged when the full-batch gradient norm ‖∇L_n(w*)‖ is at most
    /// this; `null` (the default) is 0.1·ln(n)/n, which moves the LLC at the default posterior by at
    /// most 0.01 (see `crate::train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_tol: Option<f64>,
}

/// The last phase of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// Full-batch L-BFGS until converged (or the step budget is spent).
    #[default]
    Lbfgs,
    /// No finish: `optimizer` runs all the steps.
    None,
}

impl Finish {
    fn is_default(&self) -> bool {
        *self == Finish::default()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Lbfgs => "lbfgs",
            Finish::None => "none",
        }
    }
}

impl TrainingConfig {
    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        positive(out, &format!("{prefix}.learning_rate"), self.learning_rate);
        at_least_one(out, &format!("{prefix}.eval_every"), self.eval_every);
        if let Some(b) = self.batch_size {
            at_least_one(out, &format!("{prefix}.batch_size"), b);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            out.push(invalid(
                &format!("{prefix}.weight_decay"),
                format!("must be >= 0, got {}", self.weight_decay),
            ));
        } else if self.weight_decay > 0.0 && self.optimizer != Optimizer::Adamw {
            out.push(invalid(
                &format!("{prefix}.weight_decay"),
                "is only used by `optimizer: adamw`",
            ));
        }
        if let Some(t) = self.early_stop_tol {
            positive(out, &format!("{prefix}.early_stop_tol"), t);
        }
        if let Some(t) = self.grad_tol {
            positive(out, &format!("{prefix}.grad_tol"), t);
        }
    }
}

// ---------------------------------------------------------------- posterior

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum BetaMode {
    /// β = beta0 / ln n (the WBIC temperature).
    #[default]
    #[serde(rename = "1_over_log_n")]
    OneOverLogN,
    /// β = beta0.
    #[serde(rename = "fixed")]
    Fixed,
}

fn d_one() -> f64 {
    1.0
}

/// The localized, tempered posterior: log p(w) = −nβ L_n(w) − (γ/2)‖w − w*‖².
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosteriorConfig {
    #[serde(default)]
    pub beta_mode: BetaMode,
    #[serde(default = "d_one")]
    pub beta0: f64,
    #[serde(default = "d_one")]
    pub gamma: f64,
}

impl Default for PosteriorConfig {
    fn default() -> Self {
        PosteriorConfig {
            beta_mode: BetaMode::OneOverLogN,
            beta0: 1.0,
            gamma: 1.0,
        }
    }
}

impl PosteriorConfig {
    pub fn validate(&self, prefix: &str, out: &mut Vec<Invalid>) {
        positive(out, &format!("{prefix}.beta0"), self.beta0);
        positive(out, &format!("{prefix}.gamma"), self.gamma);
    }

    /// The inverse temperature β for n data points.
    pub fn beta(&self, n: usize) -> f64 {
        match self.beta_mode {
            BetaMode::OneOverLogN => self.beta0 / (n.max(2) as f64).ln(),
            BetaMode::Fixed => self.beta0,
        }
    }
}

// ---------------------------------------------------------------- samplers

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
    pub const NAMES: [&'static str; 4] = ["hmc", "nuts", "sgld", "mclmc"];

    pub fn name(&self) -> &'static str {
        match self {
            SamplerConfig::Hmc(_) => "hmc",
            SamplerConfig::Nuts(_) => "nuts",
            SamplerConfig::Sgld(_) => "sgld",
            SamplerConfig::Mclmc(_) => "mclmc",
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

// ---------------------------------------------------------------- specs

/// Everything `worker build-target` needs: the fully resolved target. Its canonical JSON (without
/// `target_id`) is what the target ID hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub teacher: ResolvedTeacher,
    pub training: TrainingConfig,
    pub seed: u64,
    pub precision: crate::numeric::Precision,
}

/// Everything `worker run-sampler` needs besides the target's files. Its canonical JSON (without
/// `run_id`) is what the run ID hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub target_id: String,
    pub sampler: SamplerConfig,
    pub posterior: PosteriorConfig,
    pub precision: crate::numeric::Precision,
}
