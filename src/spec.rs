//! `spec.json`: the worker's only input, written by the controller into the job's directory
//! before the job runs (locally or on SLURM). It carries the fully resolved config and the ID it
//! hashes to, so a worker on a compute node needs nothing else from the experiments file.
//!
//! This module is the contract between the executors and the worker, below both (see
//! ARCHITECTURE.md): the spec's types, and the environment variables an executor may set for
//! the worker process ([`THREADS_ENV`], [`WATCH_PARENT_ENV`]).

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::schema::{RunConfig, TargetConfig};
use crate::plan::{JobRef, Plan};
use crate::store::write_json_atomic;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub target_id: String,
    pub config: TargetConfig,
    /// lambda-hat version that wrote the spec.
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub run_id: String,
    pub target_id: String,
    pub config: RunConfig,
    pub version: String,
}

/// Threads the worker may use (set by the local executor from `cpus_per_task`; on SLURM the
/// job script sets it from `SLURM_CPUS_PER_TASK`).
pub const THREADS_ENV: &str = "LAMBDA_HAT_THREADS";

/// Set (to any value) by the local executor for the workers it spawns: the worker then stops
/// when its controller is gone (`crate::worker::orphan`).
pub const WATCH_PARENT_ENV: &str = "LAMBDA_HAT_WATCH_PARENT";

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The spec of `job` as JSON.
pub fn job_spec(plan: &Plan, job: JobRef) -> serde_json::Value {
    let value = match job {
        JobRef::Target(t) => {
            let target = &plan.targets[t as usize];
            serde_json::to_value(TargetSpec {
                target_id: target.id.clone(),
                config: target.config.clone(),
                version: VERSION.into(),
            })
        }
        JobRef::Run(r) => {
            let config = plan.run_config(r);
            serde_json::to_value(RunSpec {
                run_id: plan.run_id(r),
                target_id: config.target_id.clone(),
                config,
                version: VERSION.into(),
            })
        }
    };
    // Our spec types contain only string-keyed maps and plain values: serialization cannot fail.
    value.unwrap_or(serde_json::Value::Null)
}

/// Writes `job`'s spec.json (atomically) and returns its path.
pub fn write_spec(plan: &Plan, job: JobRef) -> io::Result<PathBuf> {
    let path = plan.spec_path(job);
    write_json_atomic(&path, &job_spec(plan, job))?;
    Ok(path)
}
