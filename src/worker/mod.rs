//! Worker mode: the compute-node entry points `lambda-hat worker build-target SPEC` and
//! `lambda-hat worker run-sampler SPEC`. Each reads a spec.json, does the numerical work and writes
//! its artifacts next to the spec, the completion marker (meta.json / analysis.json) last.
//! The local and the SLURM executors run exactly these commands as separate processes.

pub mod spec;

use crate::cli::{CliError, WorkerCommand};

/// Runs one worker command.
pub fn run(cmd: WorkerCommand) -> Result<(), CliError> {
    match cmd {
        WorkerCommand::BuildTarget { spec } | WorkerCommand::RunSampler { spec } => {
            Err(CliError::Worker(format!(
                "{}: the numerical core is not built into this binary yet",
                spec.display()
            )))
        }
    }
}
