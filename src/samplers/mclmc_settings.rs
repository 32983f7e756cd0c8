//! MCLMC's settings, read by the sampler (`mclmc`), its tuning (`mclmc_tuning`) and its
//! integrator (`mclmc_kernel`); here, below all three, so that none of them imports another
//! for its settings. The [`super::Sampler`] implementation is in `mclmc`.

use serde::{Deserialize, Serialize};

use super::settings::d_chains;

/// MCLMC's settings: a `name: mclmc` entry of an experiments file, over
/// `config/sampler/mclmc.yaml`.
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

/// BlackJAX's defaults for the tuning fractions, energy variance, trust and ESS target.
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

/// MCLMC's integrator of the isokinetic dynamics (`integrator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Integrator {
    #[default]
    IsokineticMclachlan,
    IsokineticLeapfrog,
}
