//! How a target is trained to w*: [`TrainingConfig`] (optimizer, steps, the exact finish).

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, count, invalid, positive};

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
        // 0 steps would hand the sampler the initialization as "w*", far from any minimum.
        count(out, &format!("{prefix}.steps"), self.steps);
        count(out, &format!("{prefix}.eval_every"), self.eval_every);
        if let Some(b) = self.batch_size {
            count(out, &format!("{prefix}.batch_size"), b);
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
