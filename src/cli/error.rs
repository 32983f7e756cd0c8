//! The CLI's error type and exit codes: one message for the user, and a code scripts can test.
//!
//! Exit codes: 0 success; 1 a job failed, or a `validate` check did; 2 the user's input is wrong
//! (config, flags, profile, globs) or the environment is (missing program), or another
//! controller holds the store; 130, 143, 129 interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP.

use crate::config::ConfigError;
use crate::exec::ExecError;
use crate::exec::resources::ResourceError;
use crate::exec::slurm::SlurmError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Worker(String),
    #[error("{0}")]
    JobsFailed(String),
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    #[error(transparent)]
    Locked(#[from] crate::store::LockError),
    #[error("{0}")]
    ValidationFailed(String),
    #[error(
        "interrupted: running jobs were stopped; their incomplete markers were kept (rerun with --rerun-incomplete)"
    )]
    Interrupted(i32),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::JobsFailed(_)
            | CliError::Worker(_)
            | CliError::Validate(_)
            | CliError::ValidationFailed(_) => 1,
            CliError::Interrupted(code) => *code,
            _ => 2,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}
