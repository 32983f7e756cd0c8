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

/// `text` safe for a terminal: control characters other than newline and tab (ESC sequences
/// could move the cursor, clear the screen or retitle the window) are shown escaped. Config
/// files come from other people, and their strings reach error messages and progress lines.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_for_the_terminal_but_newlines_stay() {
        assert_eq!(terminal_safe("plain\n\tline"), "plain\n\tline");
        let shown = terminal_safe("store \u{1b}[2J\u{7}here\r");
        assert!(
            !shown
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\r')
        );
        assert_eq!(shown, "store \\u{1b}[2J\\u{7}here\\r");
    }
}
