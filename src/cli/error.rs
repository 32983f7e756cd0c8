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
    /// Ctrl-C or a signal: the exit code, and the incomplete markers left in the store (only a
    /// job that was running when stopped leaves one; one that was queued or pending does not).
    #[error("{}", interrupted_message(*markers))]
    Interrupted { code: i32, markers: usize },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn interrupted_message(markers: usize) -> String {
    match markers {
        0 => "interrupted: no job was left half-done; run the same command to go on".into(),
        n => format!(
            "interrupted: running jobs were stopped; {n} incomplete marker{} kept (rerun with \
             --rerun-incomplete)",
            if n == 1 { " was" } else { "s were" }
        ),
    }
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
            CliError::Interrupted { code, .. } => *code,
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
