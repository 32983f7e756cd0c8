//! The typed, resolved configuration of one target and one sampler run.
//!
//! These structs are the schema of the YAML presets and of the `spec.json` files the worker reads:
//! YAML (presets deep-merged with overrides) is deserialized into them with unknown keys refused,
//! then [`validate`](ModelConfig::validate)d. Their canonical JSON is what target and run IDs hash,
//! so renaming a field or changing a default changes every ID: the ID tests pin that.

mod data;
mod model;
mod spec;
mod teacher;
mod training;

pub use crate::invalid::Invalid;
pub use data::{DataConfig, NoiseModel, XDist};
pub use model::{Activation, Init, MAX_DEPTH, MAX_DIM, MAX_TARGET_PARAMS, ModelConfig};
// The posterior's and the samplers' settings are defined next to what they configure
// (`crate::posterior`, `crate::samplers`, both below config); they are part of the schema of
// experiments files and spec.json.
pub use crate::posterior::{BetaMode, PosteriorConfig};
pub use crate::samplers::{
    Adaptation, HmcConfig, IntegrationSteps, Integrator, MAX_TREE_DEPTH_LIMIT, MclmcConfig,
    NutsConfig, Precond, SamplerConfig, SamplerKind, SgldConfig, StepSize,
};
pub use spec::{RunConfig, TargetConfig};
pub use teacher::{ResolvedTeacher, TeacherConfig};
pub use training::{Finish, Optimizer, TrainingConfig};
