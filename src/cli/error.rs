//! The CLI's error type: one message for the user, and an exit code scripts can test (the codes
//! and what they mean are in [`crate::exit_code`]; [`CliError::exit_code`] picks one).

use crate::config::ConfigError;
use crate::exec::ExecError;
use crate::exec::resources::ResourceError;
use crate::exec::slurm::SlurmError;
use crate::exit_code;
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
    #[error(transparent)]
    Worker(#[from] crate::worker::JobFailed),
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
    /// Ends the program the way both binaries do on an error: one `error: ...` line on stderr
    /// (control characters made visible, crate::terminal) and the error's exit code. Not
    /// `eprintln!`: with stderr a closed pipe (`2>&1 | head`) that panics, and the exit code
    /// would become 101.
    pub fn exit(&self) -> ! {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "error: {}",
            crate::terminal::terminal_safe(&self.to_string())
        );
        std::process::exit(self.exit_code())
    }

    /// The exit code of this error: work that failed is [`exit_code::FAILED`], a machine that
    /// cannot read, write or start a program is [`exit_code::ENVIRONMENT`], the rest is the
    /// user's input ([`exit_code::USAGE`]).
    pub fn exit_code(&self) -> i32 {
        use crate::report::ReportError;
        match self {
            CliError::JobsFailed(_)
            | CliError::Worker(_)
            | CliError::Validate(_)
            | CliError::ValidationFailed(_) => exit_code::FAILED,
            CliError::Interrupted(code) => *code,
            CliError::Io { .. }
            | CliError::Exec(
                ExecError::Io { .. } | ExecError::Spawn { .. } | ExecError::Signals(_),
            )
            | CliError::Slurm(SlurmError::Io { .. } | SlurmError::Program { .. })
            | CliError::Locked(crate::store::LockError::Io { .. })
            | CliError::Report(
                ReportError::Read { .. }
                | ReportError::Write { .. }
                | ReportError::Delete { .. }
                | ReportError::Plot(crate::report::PlotError::Draw { .. }),
            ) => exit_code::ENVIRONMENT,
            _ => exit_code::USAGE,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}
