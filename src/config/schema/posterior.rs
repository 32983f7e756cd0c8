//! The tempered, localized posterior: [`PosteriorConfig`] (β, γ).

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, positive};

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
