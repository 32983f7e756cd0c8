//! The localized, tempered posterior the samplers explore.
//!
//! log p(w) = −nβ L_n(w) − (γ/2)‖w − w*‖², where L_n is the model's mean loss over the data
//! ([`LossModel`]), w* the trained parameters and L0 = L_n(w*). Samplers see the model only
//! through this module: they ask for the loss and its gradient (full batch, or a minibatch for
//! SGLD) and turn a recorded loss into an LLC draw with [`Posterior::llc`].
//! Nothing here allocates per call: callers own the gradient buffer and a workspace.
//!
//! Its settings, [`PosteriorConfig`] (β, γ: the `posterior:` key of experiments files and
//! spec.json), are defined here, below `config`, which re-exports them.

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, positive};
use crate::numeric::Real;

/// How β is chosen: from n (WBIC) or as given.
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

/// Which data rows a loss evaluation uses.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    All,
    Subset(&'a [usize]),
}

/// A differentiable empirical loss L(w) = mean over rows of the per-sample loss.
///
/// Implementations: the MLP with its data (`nn`), and analytic models in tests.
pub trait LossModel<F: Real>: Sync {
    /// Scratch memory for one evaluation; one per chain so chains never share buffers.
    type Workspace: Send;

    /// Number of parameters p (length of `w` and `grad`).
    fn dim(&self) -> usize;

    /// Number of data points n.
    fn n_data(&self) -> usize;

    /// A workspace able to evaluate at most `max_rows` rows at once.
    fn workspace(&self, max_rows: usize) -> Self::Workspace;

    /// Mean loss over `rows`.
    fn loss(&self, w: &[F], rows: Rows<'_>, ws: &mut Self::Workspace) -> F;

    /// Mean loss over `rows`; its gradient with respect to `w` is written (not added) to `grad`.
    fn loss_grad(&self, w: &[F], rows: Rows<'_>, grad: &mut [F], ws: &mut Self::Workspace) -> F;
}

/// The posterior around w* for one model.
pub struct Posterior<'m, F: Real, M: LossModel<F>> {
    pub model: &'m M,
    pub w_star: Vec<F>,
    /// nβ
    pub n_beta: F,
    /// γ, the localization strength.
    pub gamma: F,
    /// L0 = L_n(w*), full data.
    pub l0: F,
}

/// The value of log p at a point together with the loss it came from.
#[derive(Debug, Clone, Copy)]
pub struct LogpEval<F> {
    pub logp: F,
    pub loss: F,
}

impl<'m, F: Real, M: LossModel<F>> Posterior<'m, F, M> {
    /// Builds the posterior with β from `cfg` and L0 evaluated at `w_star` on the full data.
    pub fn new(model: &'m M, w_star: Vec<F>, cfg: &PosteriorConfig) -> Self {
        let n = model.n_data();
        let mut ws = model.workspace(n);
        let l0 = model.loss(&w_star, Rows::All, &mut ws);
        Posterior {
            model,
            n_beta: F::of(n as f64 * cfg.beta(n)),
            gamma: F::of(cfg.gamma),
            w_star,
            l0,
        }
    }

    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Full-batch log p(w); ∇ log p(w) is written to `grad`.
    pub fn logp_grad(&self, w: &[F], grad: &mut [F], ws: &mut M::Workspace) -> LogpEval<F> {
        let loss = self.model.loss_grad(w, Rows::All, grad, ws);
        let mut sq = F::zero();
        for ((g, &wi), &ws_i) in grad.iter_mut().zip(w).zip(&self.w_star) {
            let dw = wi - ws_i;
            sq += dw * dw;
            *g = -(self.n_beta * *g + self.gamma * dw);
        }
        let half = F::of(0.5);
        LogpEval {
            logp: -(self.n_beta * loss) - half * self.gamma * sq,
            loss,
        }
    }

    /// Full-batch log p(w) without the gradient.
    pub fn logp(&self, w: &[F], ws: &mut M::Workspace) -> LogpEval<F> {
        let loss = self.model.loss(w, Rows::All, ws);
        let sq: F = w
            .iter()
            .zip(&self.w_star)
            .map(|(&a, &b)| (a - b) * (a - b))
            .sum();
        LogpEval {
            logp: -(self.n_beta * loss) - F::of(0.5) * self.gamma * sq,
            loss,
        }
    }

    /// One LLC draw from a full-data loss: nβ (L_n(w) − L0), in f64.
    pub fn llc(&self, loss: F) -> f64 {
        self.n_beta.f64() * (loss.f64() - self.l0.f64())
    }
}
