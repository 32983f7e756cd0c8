//! The parsers' error type: the text that did not have the expected shape, verbatim.

use thiserror::Error;

/// Text that does not have the shape the parser expects. The offending text is kept verbatim so
/// that the message shows what SLURM actually printed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("sbatch --parsable printed no job id (stdout was {0:?})")]
    NoJobId(String),
    #[error("not a SLURM job id: {0:?}")]
    BadJobId(String),
    #[error("not a SLURM array index range: {0:?}")]
    BadArrayRange(String),
    #[error("not a SLURM duration ([D-]HH:MM:SS): {0:?}")]
    BadDuration(String),
    #[error("not a SLURM memory size: {0:?}")]
    BadMemory(String),
    #[error("not a SLURM exit code (CODE:SIGNAL): {0:?}")]
    BadExitCode(String),
    #[error(
        "{command} output line has {found} '|'-separated fields, expected {expected}: {line:?}"
    )]
    FieldCount {
        command: &'static str,
        expected: usize,
        found: usize,
        line: String,
    },
    #[error("scontrol show job record has no {field}: {record:?}")]
    MissingField { field: &'static str, record: String },
}

/// Why `sbatch` refused a submission (from its stderr), and so what the executor should do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    /// The controller is busy, unreachable, or a submit-count limit is reached: the same
    /// submission can succeed later, so retry with backoff.
    #[error("SLURM could not take the job right now (transient): {message}")]
    Transient { message: String },
    /// `--dependency` was rejected. SLURM 22.05 says this only for a malformed dependency; a
    /// dependency on an unknown or already purged job id is accepted and treated as satisfied.
    #[error("SLURM rejected the job's --dependency: {message}")]
    DependencyProblem { message: String },
    /// Anything else (invalid partition, impossible memory request, bad option...): retrying the
    /// same submission cannot help. `message` is sbatch's stderr verbatim.
    #[error("SLURM rejected the job: {message}")]
    Rejected { message: String },
}

impl SubmitError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SubmitError::Transient { .. })
    }

    /// sbatch's stderr, trimmed, verbatim.
    pub fn message(&self) -> &str {
        match self {
            SubmitError::Transient { message }
            | SubmitError::DependencyProblem { message }
            | SubmitError::Rejected { message } => message,
        }
    }
}

/// Why a status query (`squeue`, `sacct`, `scontrol show job`) exited non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// "Invalid job id specified": the controller no longer knows the job (older than
    /// `MinJobAge`). `squeue -j ID` with ONE id fails like this, while `squeue -j ID1,ID2` with
    /// the same unknown ids succeeds with empty output; either way, ask `sacct`.
    #[error("SLURM does not know the job (any more): {message}")]
    NoSuchJob { message: String },
    /// Controller or accounting daemon unreachable or busy: retry with backoff.
    #[error("SLURM is not reachable right now (transient): {message}")]
    Transient { message: String },
    #[error("SLURM query failed: {message}")]
    Failed { message: String },
}

impl QueryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, QueryError::Transient { .. })
    }
}
