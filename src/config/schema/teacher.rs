//! The teacher network that generates the targets' labels: [`TeacherConfig`], resolved into a [`ResolvedTeacher`].

use serde::{Deserialize, Serialize};

use super::model::{Activation, ModelConfig};

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
