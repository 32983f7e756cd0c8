//! The network: [`ModelConfig`] (depth, widths, activation, bias, skip connections, initialization).

use serde::{Deserialize, Serialize};

use crate::invalid::{Invalid, count, invalid};

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

pub(super) fn default_true() -> bool {
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
        self.validate_with_depth_from(prefix, None, out)
    }

    /// [`ModelConfig::validate`], where `depth_from` says where a depth the user did not write
    /// in this section came from (a teacher inherits the model's), for the message when the
    /// widths do not fit it.
    pub fn validate_with_depth_from(
        &self,
        prefix: &str,
        depth_from: Option<&str>,
        out: &mut Vec<Invalid>,
    ) {
        count(out, &format!("{prefix}.in_dim"), self.in_dim);
        count(out, &format!("{prefix}.out_dim"), self.out_dim);
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
                            "has {} entries but depth is {}: give one width per hidden layer, or drop `widths` and set `target_params`{}",
                            w.len(),
                            self.depth,
                            depth_from.map(|from| format!(" ({from})")).unwrap_or_default()
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
            (None, Some(p)) => count(out, &format!("{prefix}.target_params"), p),
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
