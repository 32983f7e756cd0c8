//! `sbatch --parsable` output, and what its stderr says when it fails.

use super::error::{ParseError, QueryError, SubmitError};
use super::job_id::parse_u64_digits;

/// Job id from `sbatch --parsable` stdout: `123` or, on a multi-cluster setup, `123;cluster`.
/// For `--array` submissions this is the array's id; its tasks are `123_0`, `123_1`, ...
pub fn parse_sbatch_parsable(stdout: &str) -> Result<u64, ParseError> {
    // The id is the last non-empty line: site-specific job_submit plugins may print notes before it.
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or_else(|| ParseError::NoJobId(stdout.to_string()))?;
    let id = line.split_once(';').map_or(line, |(id, _cluster)| id);
    parse_u64_digits(id.trim()).ok_or_else(|| ParseError::NoJobId(stdout.to_string()))
}

/// Substrings (compared case-insensitively) of sbatch/squeue/sacct/scontrol stderr that mean
/// "try again later": controller restarting or overloaded, network trouble, a submit-count limit
/// (e.g. `QOSMaxSubmitJobPerUserLimit`, `AssocMaxSubmitJobLimit`, `AssocGrpSubmitJobsLimit`),
/// `MaxJobCount` reached. Limits on size or time (`QOSMaxWallDurationPerJobLimit`, ...) are not
/// here: they reject the job itself. sbatch's generic second line "Job violates accounting/QOS
/// policy (job submit limit, user's size and/or time limits)" is printed for both kinds, so only
/// the specific reason on the line before it (`...SubmitJob...`) counts.
const TRANSIENT_MARKERS: &[&str] = &[
    "socket timed out",
    "temporarily unavailable",
    "temporarily unable",
    "unable to contact slurm controller",
    "slurm controller not responding",
    "submitjob",
    "zero bytes were transmitted or received",
    "communication connection failure",
    "connection refused",
    "connection reset",
    "problem talking to the database",
    "transaction in progress",
];

fn has_transient_marker(lower: &str) -> bool {
    TRANSIENT_MARKERS.iter().any(|m| lower.contains(m))
}

/// Classify the stderr of an `sbatch` that exited non-zero. Observed on 22.05:
/// - `sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)`
///   (after ~9 s of internal retries) → transient
/// - `sbatch: error: QOSMaxSubmitJobPerUserLimit` + `... Job violates accounting/QOS policy (job
///   submit limit, user's size and/or time limits)` → transient
/// - `sbatch: error: Batch job submission failed: Job dependency problem` → dependency problem
/// - `sbatch: error: invalid partition specified: nosuchpart` + `... Invalid partition name
///   specified` → rejected
pub fn classify_sbatch_failure(stderr: &str) -> SubmitError {
    let message = stderr.trim().to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("job dependency problem") {
        SubmitError::DependencyProblem { message }
    } else if has_transient_marker(&lower) {
        SubmitError::Transient { message }
    } else {
        SubmitError::Rejected { message }
    }
}

/// Classify the stderr of a `squeue`, `sacct` or `scontrol show job` that exited non-zero.
/// Observed: `slurm_load_jobs error: Invalid job id specified` (squeue with one purged id,
/// scontrol), `slurm_load_jobs error: Unable to contact slurm controller (connect failure)`,
/// `sacct: error: Problem talking to the database: Connection refused` (slurmdbd down).
pub fn classify_query_failure(stderr: &str) -> QueryError {
    let message = stderr.trim().to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("invalid job id specified") {
        QueryError::NoSuchJob { message }
    } else if has_transient_marker(&lower) {
        QueryError::Transient { message }
    } else {
        QueryError::Failed { message }
    }
}
