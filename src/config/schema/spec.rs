//! What one job is resolved to: [`TargetConfig`] (a target) and [`RunConfig`] (a sampler run on it).

use serde::{Deserialize, Serialize};

use super::data::DataConfig;
use super::model::ModelConfig;
use super::teacher::ResolvedTeacher;
use super::training::TrainingConfig;
use crate::posterior::PosteriorConfig;
use crate::samplers::SamplerConfig;

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
