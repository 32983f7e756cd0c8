//! Parsers for the text that SLURM's command-line tools print, and nothing else.
//!
//! The SLURM executor runs `sbatch`, `squeue`, `sacct` and `scontrol` as subprocesses; this module
//! turns their captured stdout/stderr into typed values. It runs no process, reads no file and
//! knows no lambda-hat type: text goes in, [`JobKey`]s, [`JobState`]s and records come out, so it can
//! be tested against the exact outputs captured from a real SLURM 22.05 (Debian bookworm's
//! `slurm-wlm`, the cluster of `scripts/slurm-local.sh`); those captures are the test fixtures.
//!
//! | command (args the caller must use)                                   | parser                       |
//! |----------------------------------------------------------------------|------------------------------|
//! | `sbatch --parsable ...` stdout                                        | [`parse_sbatch_parsable`]    |
//! | `sbatch` stderr when it exits non-zero                                | [`classify_sbatch_failure`]  |
//! | `squeue` + [`SQUEUE_ARGS`] + `-j ID,ID,...` stdout                    | [`parse_squeue`]             |
//! | `sacct` + [`SACCT_ARGS`] + `-j ID,ID,...` stdout                      | [`parse_sacct`]              |
//! | `scontrol show job ID` (or `scontrol -o show job ID`) stdout          | [`parse_scontrol_show_job`]  |
//! | stderr of a failed `squeue`/`sacct`/`scontrol`                        | [`classify_query_failure`]   |
//! | (final state, signal, tail of the job's log)                          | [`is_oom_kill`]              |
//!
//! Facts about SLURM these parsers rely on (observed on the real cluster, see the tests):
//! - Array tasks are named `ARRAYID_TASK` (`123_4`). Tasks still pending together are shown as
//!   one row with a range, `123_[4-7%2]`, by `squeue` without `-r` and by `sacct` (also for
//!   tasks cancelled while pending: `35_[1-9%2]|CANCELLED by 0`). Ranges are expanded here, so
//!   callers always see one entry per task.
//! - `sacct`'s MaxRSS is only on the steps (`123.batch`, `123.extern`, `123.0`), never on the
//!   allocation line, so `-X` must not be used; [`parse_sacct`] merges steps into their job.
//! - `sacct` lags the controller by a second or more (a running job may still read PENDING,
//!   a just-submitted one may be missing): use `squeue` for live state and `sacct` only for jobs
//!   that left the queue.
//! - Without cgroups, an over-memory job is killed by `JobAcctGatherParams=OverMemoryKill` and
//!   ends `FAILED` with signal 9, exactly like a job that was `kill -9`ed for another reason; only
//!   the log text ("Exceeded job memory limit") or MaxRSS > ReqMem tell them apart.
//! - `sbatch --dependency=afterok:ID` is accepted for any numeric ID; if the controller no
//!   longer knows ID (purged after `MinJobAge`, or never existed) the dependency counts as
//!   satisfied and the job runs, even if ID had failed. While ID is known and failed, the child
//!   stays PENDING with reason `DependencyNeverSatisfied` forever (it is not cancelled unless
//!   the cluster sets `kill_invalid_depend`). Only a malformed dependency gives
//!   "Job dependency problem".

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------------
// Job ids
// ------------------------------------------------------------------------------------------------

/// One schedulable unit: a plain job (`123`) or one task of an array (`123_4`).
///
/// Array tasks are keyed by the array's id (what `sbatch --parsable` returned) and the task
/// index, never by the per-task numeric job id SLURM allocates internally (`JobIDRaw`), because
/// that is what the executor knows and what every command prints in the JobID column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub job_id: u64,
    pub array_task: Option<u32>,
}

impl JobKey {
    pub fn job(job_id: u64) -> Self {
        JobKey {
            job_id,
            array_task: None,
        }
    }

    pub fn task(array_job_id: u64, task: u32) -> Self {
        JobKey {
            job_id: array_job_id,
            array_task: Some(task),
        }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.array_task {
            None => write!(f, "{}", self.job_id),
            Some(t) => write!(f, "{}_{}", self.job_id, t),
        }
    }
}

impl FromStr for JobKey {
    type Err = ParseError;

    /// `123` or `123_4`. A range (`123_[4-7]`) is several keys: use [`parse_job_ids`].
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let keys = parse_job_ids(s)?;
        match keys.as_slice() {
            [one] if !s.contains('[') => Ok(*one),
            _ => Err(ParseError::BadJobId(s.to_string())),
        }
    }
}

/// Parse a JobID column value into the job(s) it names: `123`, `123_4`, or a pending array range
/// `123_[4-7%2]` / `123_[1,3,5-9:2]`, which expands to one key per task (the `%throttle` is
/// dropped; `:step` is honoured).
pub fn parse_job_ids(s: &str) -> Result<Vec<JobKey>, ParseError> {
    let bad = || ParseError::BadJobId(s.to_string());
    let s = s.trim();
    let (job, task) = match s.split_once('_') {
        None => (s, None),
        Some((job, task)) => (job, Some(task)),
    };
    let job_id = parse_u64_digits(job).ok_or_else(bad)?;
    match task {
        None => Ok(vec![JobKey::job(job_id)]),
        Some(t) if t.starts_with('[') && t.ends_with(']') && t.len() >= 2 => {
            let tasks = parse_array_indices(&t[1..t.len() - 1])?;
            Ok(tasks.into_iter().map(|i| JobKey::task(job_id, i)).collect())
        }
        Some(t) => {
            let idx = parse_u64_digits(t)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(bad)?;
            Ok(vec![JobKey::task(job_id, idx)])
        }
    }
}

/// Array index expression as in `--array` and in `[..]` ranges: comma-separated `N`, `A-B` or
/// `A-B:STEP`, optionally followed by `%THROTTLE`. Returns the indices in order.
pub fn parse_array_indices(expr: &str) -> Result<Vec<u32>, ParseError> {
    let bad = || ParseError::BadArrayRange(expr.to_string());
    // The throttle limits concurrency, not membership.
    let list = match expr.split_once('%') {
        Some((list, throttle)) => {
            parse_u64_digits(throttle).ok_or_else(bad)?;
            list
        }
        None => expr,
    };
    let num = |t: &str| {
        parse_u64_digits(t)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(bad)
    };
    let mut out = Vec::new();
    for item in list.split(',') {
        let (range, step) = match item.split_once(':') {
            Some((r, st)) => (r, num(st)?),
            None => (item, 1),
        };
        if step == 0 {
            return Err(bad());
        }
        match range.split_once('-') {
            None => out.push(num(range)?),
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad());
                }
                out.extend((a..=b).step_by(step as usize));
            }
        }
    }
    Ok(out)
}

/// Strict decimal: digits only (no sign, no spaces), fits in u64.
fn parse_u64_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ------------------------------------------------------------------------------------------------
// Job states
// ------------------------------------------------------------------------------------------------

/// A SLURM job state as printed by `squeue %T`, `sacct State` and `scontrol JobState=`.
/// (`sacct`'s `CANCELLED by UID` is [`JobState::Cancelled`]; the uid is in [`parse_state`].)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Suspended,
    Completing,
    Completed,
    Cancelled,
    Failed,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// REQUEUED, REQUEUE_HOLD, REQUEUE_FED: the job goes back to the queue by itself.
    Requeued,
    /// RESIZING, REVOKED, SIGNALING, SPECIAL_EXIT, STAGE_OUT, STOPPED, RESV_DEL_HOLD, ...:
    /// states the executor has no special handling for. Kept verbatim.
    Other(String),
}

impl JobState {
    /// The job has ended for good: it will not run (again) without a new submission.
    pub fn is_terminal(&self) -> bool {
        use JobState::*;
        matches!(
            self,
            Completed
                | Cancelled
                | Failed
                | Timeout
                | OutOfMemory
                | NodeFail
                | Preempted
                | BootFail
                | Deadline
        )
    }

    /// Ended because of the machine, not the job: resubmitting the same job is the remedy.
    pub fn is_infrastructure_failure(&self) -> bool {
        matches!(
            self,
            JobState::NodeFail | JobState::Preempted | JobState::BootFail
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use JobState::*;
        let s = match self {
            Pending => "PENDING",
            Configuring => "CONFIGURING",
            Running => "RUNNING",
            Suspended => "SUSPENDED",
            Completing => "COMPLETING",
            Completed => "COMPLETED",
            Cancelled => "CANCELLED",
            Failed => "FAILED",
            Timeout => "TIMEOUT",
            OutOfMemory => "OUT_OF_MEMORY",
            NodeFail => "NODE_FAIL",
            Preempted => "PREEMPTED",
            BootFail => "BOOT_FAIL",
            Deadline => "DEADLINE",
            Requeued => "REQUEUED",
            Other(s) => s,
        };
        f.write_str(s)
    }
}

/// Parse a state word, long (`%T`, sacct, scontrol) or compact (`%t`: `PD`, `R`, `CG`, ...), plus
/// sacct's `CANCELLED by 1000` suffix, returned as the uid. Unknown words become
/// [`JobState::Other`] rather than an error, so a newer SLURM with a new state cannot break polling.
pub fn parse_state(s: &str) -> (JobState, Option<u32>) {
    use JobState::*;
    let s = s.trim();
    let (word, by) = match s.split_once(" by ") {
        Some((w, uid)) => (w.trim(), uid.trim().parse().ok()),
        None => (s, None),
    };
    // Some SLURM versions append '+' to a state (e.g. "CANCELLED+") when it is abbreviated.
    let word = word.trim_end_matches('+');
    let state = match word {
        "PENDING" | "PD" => Pending,
        "CONFIGURING" | "CF" => Configuring,
        "RUNNING" | "R" => Running,
        "SUSPENDED" | "S" => Suspended,
        "COMPLETING" | "CG" => Completing,
        "COMPLETED" | "CD" => Completed,
        "CANCELLED" | "CA" => Cancelled,
        "FAILED" | "F" => Failed,
        "TIMEOUT" | "TO" => Timeout,
        "OUT_OF_MEMORY" | "OOM" => OutOfMemory,
        "NODE_FAIL" | "NF" => NodeFail,
        "PREEMPTED" | "PR" => Preempted,
        "BOOT_FAIL" | "BF" => BootFail,
        "DEADLINE" | "DL" => Deadline,
        "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "RH" | "REQUEUE_FED" | "RF" => Requeued,
        other => Other(other.to_string()),
    };
    (state, by)
}

// ------------------------------------------------------------------------------------------------
// Small value formats
// ------------------------------------------------------------------------------------------------

/// `CODE:SIGNAL` as in sacct's ExitCode and scontrol's `ExitCode=`: (exit status, signal number).
pub fn parse_exit_code(s: &str) -> Result<(u32, u32), ParseError> {
    let bad = || ParseError::BadExitCode(s.to_string());
    let (code, sig) = s.trim().split_once(':').ok_or_else(bad)?;
    let code = parse_u64_digits(code)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(bad)?;
    let sig = parse_u64_digits(sig)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(bad)?;
    Ok((code, sig))
}

/// SLURM duration `[D-]HH:MM:SS`, also `MM:SS` and a fractional seconds part (`00:00.123`,
/// printed for very short steps) → whole seconds (fraction dropped).
pub fn parse_duration_secs(s: &str) -> Result<u64, ParseError> {
    let bad = || ParseError::BadDuration(s.to_string());
    let s = s.trim();
    let (days, hms) = match s.split_once('-') {
        Some((d, rest)) => (parse_u64_digits(d).ok_or_else(bad)?, rest),
        None => (0, s),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, sec] => (*h, *m, *sec),
        [m, sec] => ("0", *m, *sec),
        _ => return Err(bad()),
    };
    let sec = sec.split_once('.').map_or(sec, |(whole, _)| whole);
    let h = parse_u64_digits(h).ok_or_else(bad)?;
    let m = parse_u64_digits(m).ok_or_else(bad)?;
    let sec = parse_u64_digits(sec).ok_or_else(bad)?;
    Ok(days * 86_400 + h * 3_600 + m * 60 + sec)
}

/// A memory size as sacct prints it → bytes. `""` (never sampled) → `None`.
/// With `--noconvert` MaxRSS is plain bytes (`120016896`); without it, or for ReqMem, it has a
/// binary unit suffix (`117204K`, `1.50G`, `50M`). A trailing `n`/`c` (per node / per CPU, printed
/// by SLURM < 21.08 in ReqMem) is ignored. Absurd values (22.05 transiently shows ReqMem
/// `18446744073709551616.00M` for a job it has not recorded yet) → `None`, not an error.
pub fn parse_mem_bytes(s: &str) -> Result<Option<u64>, ParseError> {
    let bad = || ParseError::BadMemory(s.to_string());
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    let s = s.trim_end_matches(['n', 'c']);
    let (num, mult) = match s.char_indices().last() {
        Some((i, unit)) if unit.is_ascii_alphabetic() => {
            let exp = match unit.to_ascii_uppercase() {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                'P' => 5,
                _ => return Err(bad()),
            };
            (&s[..i], 1024f64.powi(exp))
        }
        _ => (s, 1.0),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    if mult == 1.0
        && let Some(v) = parse_u64_digits(num)
    {
        return Ok(Some(v)); // exact for plain byte counts
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (v * mult).round();
    // u64::MAX as f64 rounds up to 2^64, so `<` excludes SLURM's "infinite" sentinel.
    Ok((bytes < u64::MAX as f64).then_some(bytes as u64))
}

// ------------------------------------------------------------------------------------------------
// sbatch
// ------------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------------
// squeue
// ------------------------------------------------------------------------------------------------

/// Arguments for the one `squeue` call per polling cycle; append `-j ID,ID,...` (array ids
/// included, which select all their tasks).
/// - `--format=%i|%T|%r`: job id (`%i`: `123`, `123_4`, or a range `123_[4-7%2]`), long state
///   (`%T`), reason (`%r`). `|` never occurs in the first two fields; the reason is last and
///   split off with `splitn`, so even a reason containing `|` parses.
/// - `-r`: one row per array task (pending tasks otherwise share one range row).
/// - `-t all`: also list jobs that ended less than `MinJobAge` ago, with their final state
///   (COMPLETED, FAILED, TIMEOUT, ...) straight from the controller; by default squeue hides them.
/// - `--noheader`: data rows only.
///
/// A job that is in neither squeue's output nor `sacct` yet has just been submitted or just been
/// purged; an empty output with exit 0 is normal. With a single id, squeue exits 1 with "Invalid
/// job id specified" when the controller has forgotten it (see [`classify_query_failure`]).
pub const SQUEUE_ARGS: &[&str] = &["-r", "-t", "all", "--noheader", "--format=%i|%T|%r"];

/// One row of `squeue` output (with [`SQUEUE_ARGS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub job: JobKey,
    pub state: JobState,
    /// Why it is pending or how it ended (`Dependency`, `DependencyNeverSatisfied`,
    /// `JobArrayTaskLimit`, `Resources`, `TimeLimit`, `NonZeroExitCode`, ...); `None` for "None".
    pub reason: Option<String>,
}

/// What to change when a job pends for `reason`, if waiting will not help: the reasons SLURM
/// gives for a request no node, partition, association or QOS can ever grant. `None` for the
/// reasons that clear by themselves (`Priority`, `Resources`, `Dependency`, ...).
pub fn stuck_pending_advice(reason: &str) -> Option<&'static str> {
    let advice = match reason {
        "PartitionConfig" | "PartitionNodeLimit" | "BadConstraints" | "ReqNodeNotAvail" => {
            "no node of the partition can satisfy the job's request: lower cpus_per_task, mem_mb or gpu, or choose another slurm_partition (sinfo -o '%P %c %m %G' lists what nodes have)"
        }
        "PartitionTimeLimit" => {
            "runtime is above the partition's time limit: lower runtime or choose another slurm_partition"
        }
        "InvalidAccount" | "InvalidQOS" => {
            "the account or QOS is not valid for you: check slurm_account and qos (sacctmgr show assoc user=$USER)"
        }
        r if r.starts_with("AssocMax") || r.starts_with("QOSMax") => {
            "a per-job limit of your association or QOS is exceeded: lower the job's resources, or ask for another qos"
        }
        _ => return None,
    };
    Some(advice)
}

/// Parse `squeue` output (with [`SQUEUE_ARGS`]); a range row expands into one entry per task.
pub fn parse_squeue(stdout: &str) -> Result<Vec<QueueEntry>, ParseError> {
    let mut out = Vec::new();
    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.splitn(3, '|').collect();
        let [id, state, reason] = fields.as_slice() else {
            return Err(ParseError::FieldCount {
                command: "squeue",
                expected: 3,
                found: fields.len(),
                line: line.to_string(),
            });
        };
        let (state, _) = parse_state(state);
        let reason = match reason.trim() {
            "" | "None" => None,
            r => Some(r.to_string()),
        };
        for job in parse_job_ids(id)? {
            out.push(QueueEntry {
                job,
                state: state.clone(),
                reason: reason.clone(),
            });
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------------
// sacct
// ------------------------------------------------------------------------------------------------

/// Arguments for the one `sacct` call per cycle; append `-j ID,ID,...`.
/// - `--format`: these fields, in this order. JobID (not JobIDRaw: for array tasks JobIDRaw is
///   an internal per-task id, and for the last task it equals the array id), then what the
///   executor needs to decide on retries and to report.
/// - no `-X`: MaxRSS is only recorded on the steps (`.batch`, `.extern`, `.0`), so the steps are
///   needed; [`parse_sacct`] folds them into their job.
/// - `--parsable2`: `|`-separated without a trailing `|`; `--noheader`: data only.
/// - `--noconvert`: MaxRSS in plain bytes instead of a rounded `117204K`.
/// - no `--duplicates`: for a requeued job (NODE_FAIL, PREEMPTED) only the latest run is shown.
/// - with `-j`, sacct searches from the epoch, so no `-S` is needed.
pub const SACCT_ARGS: &[&str] = &[
    "--parsable2",
    "--noheader",
    "--noconvert",
    "--format=JobID,State,ExitCode,Elapsed,MaxRSS,ReqMem",
];

/// What accounting knows about one job or array task, steps merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRecord {
    pub job: JobKey,
    pub state: JobState,
    /// uid from `CANCELLED by UID`.
    pub cancelled_by: Option<u32>,
    /// Exit status of the batch script (0-255) and the signal that ended it (0 = none).
    /// From the job's own line; when that says `0:0` for a job that did not complete (SLURM
    /// leaves the allocation's ExitCode at 0:0 on TIMEOUT), from its `.batch` step, which
    /// carries the real `0:15` / `0:9`.
    pub exit_code: u32,
    pub signal: u32,
    pub elapsed_secs: u64,
    /// Largest MaxRSS over the job's steps; `None` if never sampled (a job shorter than
    /// JobAcctGatherFrequency has none).
    pub max_rss_bytes: Option<u64>,
    /// Requested memory (ReqMem) in bytes, if known.
    pub req_mem_bytes: Option<u64>,
}

/// Parse `sacct` output (with [`SACCT_ARGS`]): one record per job or array
/// task, in order of first appearance; range rows (`123_[4-7%2]`) expand to one record per task.
/// Het-job components (`123+0`) are skipped: the executor never submits het jobs.
pub fn parse_sacct(stdout: &str) -> Result<Vec<AccountingRecord>, ParseError> {
    struct Step {
        exit: (u32, u32),
        max_rss: Option<u64>,
        is_batch: bool,
    }
    let mut records: Vec<AccountingRecord> = Vec::new();
    let mut index: HashMap<JobKey, usize> = HashMap::new();
    // Steps are kept apart and merged at the end, so their order relative to the job line
    // does not matter.
    let mut steps: Vec<(JobKey, Step)> = Vec::new();

    for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').collect();
        let [id, state, exit, elapsed, max_rss, req_mem] = fields.as_slice() else {
            return Err(ParseError::FieldCount {
                command: "sacct",
                expected: 6,
                found: fields.len(),
                line: line.to_string(),
            });
        };
        if id.contains('+') {
            continue;
        }
        let (job_part, step) = match id.split_once('.') {
            Some((j, s)) => (j, Some(s)),
            None => (*id, None),
        };
        // The .batch step of a NODE_FAIL job has an empty ExitCode ("49.batch|CANCELLED||...").
        let exit = if exit.trim().is_empty() {
            (0, 0)
        } else {
            parse_exit_code(exit)?
        };
        if let Some(step) = step {
            let job = job_part.parse::<JobKey>()?;
            steps.push((
                job,
                Step {
                    exit,
                    max_rss: parse_mem_bytes(max_rss)?,
                    is_batch: step == "batch",
                },
            ));
            continue;
        }
        let (state, cancelled_by) = parse_state(state);
        let elapsed_secs = parse_duration_secs(elapsed)?;
        let own_rss = parse_mem_bytes(max_rss)?;
        let req_mem_bytes = parse_mem_bytes(req_mem)?;
        for job in parse_job_ids(job_part)? {
            let rec = AccountingRecord {
                job,
                state: state.clone(),
                cancelled_by,
                exit_code: exit.0,
                signal: exit.1,
                elapsed_secs,
                max_rss_bytes: own_rss,
                req_mem_bytes,
            };
            // A job listed twice (should not happen without --duplicates): the later line wins.
            match index.get(&job) {
                Some(&i) => records[i] = rec,
                None => {
                    index.insert(job, records.len());
                    records.push(rec);
                }
            }
        }
    }

    for (job, step) in steps {
        let Some(&i) = index.get(&job) else {
            continue; // a step whose job line was not printed: nothing to attach it to
        };
        let rec = &mut records[i];
        rec.max_rss_bytes = match (rec.max_rss_bytes, step.max_rss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if step.is_batch
            && (rec.exit_code, rec.signal) == (0, 0)
            && rec.state != JobState::Completed
            && rec.state.is_terminal()
        {
            (rec.exit_code, rec.signal) = step.exit;
        }
    }
    Ok(records)
}

// ------------------------------------------------------------------------------------------------
// scontrol show job
// ------------------------------------------------------------------------------------------------

/// What `scontrol show job` says about one job or array task: the fallback when accounting
/// (sacct) is disabled. Only available until the controller purges the job (`MinJobAge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    pub job: JobKey,
    pub state: JobState,
    pub reason: Option<String>,
    pub exit_code: u32,
    pub signal: u32,
    pub run_time_secs: Option<u64>,
}

/// Parse `scontrol show job ID` output (multi-line records separated by blank lines; one per
/// array task, pending tasks as one `ArrayTaskId=1-9%2` record) or `scontrol -o show job ID`
/// (one line per record). Every record starts with `JobId=`.
///
/// Fields are whitespace-separated `Key=Value` pairs; the first occurrence of a key wins.
/// `JobName` can contain spaces and `=`, so its value is skipped: a job name like
/// `x JobState=COMPLETED` cannot fake a state. (Later free-text fields such as `Command=` or
/// `StdOut=` paths come after every field read here, so first-wins makes them harmless.)
pub fn parse_scontrol_show_job(text: &str) -> Result<Vec<ControlRecord>, ParseError> {
    // Split into records at each "JobId=" that starts a line.
    let mut raw_records: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("JobId=") {
            raw_records.push(String::new());
        }
        if let Some(cur) = raw_records.last_mut() {
            cur.push_str(t);
            cur.push('\n');
        }
    }
    let mut out = Vec::new();
    for rec in raw_records {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for (n, line) in rec.lines().enumerate() {
            // The first line is "JobId=.. [ArrayJobId=.. ArrayTaskId=..] JobName=NAME"; NAME may
            // contain spaces and '=', so it is skipped. In -o mode the rest of the record follows
            // NAME on the same line, from " UserId=" (the field after JobName) on. A name that
            // itself contains " UserId=" would confuse -o mode only; the executor's names do not.
            if n == 0
                && let Some(i) = line.find(" JobName=")
            {
                let (head, tail) = line.split_at(i);
                fields_from(head, &mut fields);
                if let Some(j) = tail.find(" UserId=") {
                    fields_from(&tail[j..], &mut fields);
                }
            } else {
                fields_from(line, &mut fields);
            }
        }
        let missing = |field| ParseError::MissingField {
            field,
            record: rec.trim().to_string(),
        };
        let job_id = fields.get("JobId").ok_or_else(|| missing("JobId"))?;
        let jobs = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
            (Some(array), Some(tasks)) => {
                let array = parse_u64_digits(array)
                    .ok_or_else(|| ParseError::BadJobId(array.to_string()))?;
                parse_array_indices(tasks)?
                    .into_iter()
                    .map(|t| JobKey::task(array, t))
                    .collect()
            }
            _ => vec![job_id.parse::<JobKey>()?],
        };
        let (state, _) = parse_state(fields.get("JobState").ok_or_else(|| missing("JobState"))?);
        let (exit_code, signal) =
            parse_exit_code(fields.get("ExitCode").ok_or_else(|| missing("ExitCode"))?)?;
        let reason = fields
            .get("Reason")
            .filter(|r| **r != "None")
            .map(|r| r.to_string());
        let run_time_secs = fields
            .get("RunTime")
            .map(|r| parse_duration_secs(r))
            .transpose()?;
        for job in jobs {
            out.push(ControlRecord {
                job,
                state: state.clone(),
                reason: reason.clone(),
                exit_code,
                signal,
                run_time_secs,
            });
        }
    }
    Ok(out)
}

/// Add the `Key=Value` tokens of `s` to `fields`; the first occurrence of a key wins.
fn fields_from<'a>(s: &'a str, fields: &mut HashMap<&'a str, &'a str>) {
    for tok in s.split_whitespace() {
        if let Some((k, v)) = tok.split_once('=') {
            fields.entry(k).or_insert(v);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Out-of-memory detection
// ------------------------------------------------------------------------------------------------

/// Lines SLURM writes into a job's output when it kills the job for memory. Without cgroups
/// (OverMemoryKill, as on the test cluster): `slurmstepd-vm: error: StepId=22.batch exceeded
/// memory limit (329871360 > 52428800), being killed` and `slurmstepd-vm: error: Exceeded job
/// memory limit`. With cgroups: `slurmstepd: error: Detected 1 oom-kill event(s) in
/// StepId=123.batch. Some of your processes may have been killed by the cgroup out-of-memory
/// handler.` Compared case-insensitively.
const OOM_MARKERS: &[&str] = &[
    "exceeded job memory limit",
    "exceeded step memory limit",
    "exceeded memory limit",
    "oom-kill",
    "oom_kill",
    "out-of-memory handler",
];

/// Did SLURM kill this job for using more memory than it requested?
///
/// - `OUT_OF_MEMORY` (cgroup-enforcing clusters) → yes, whatever the rest says.
/// - `FAILED`/`CANCELLED` (OverMemoryKill ends FAILED with signal 9, its batch step
///   CANCELLED) → yes if the log tail has one of SLURM's memory-kill messages. The state and
///   signal 9 alone are not enough: a job killed with `kill -9` for another reason looks
///   identical in sacct and scontrol (observed: `FAILED`, `0:9`, reason `JobLaunchFailure`).
/// - anything else (COMPLETED, TIMEOUT, still running...) → no: a memory kill of some
///   subprocess in a job that then completed is not a failed job.
///
/// `log_tail` is (the end of) the job's output file; SLURM appends its messages at the end,
/// so the last few KiB suffice. `signal` is from [`AccountingRecord`]/[`ControlRecord`].
pub fn is_oom_kill(state: &JobState, signal: u32, log_tail: Option<&str>) -> bool {
    let has_marker = || {
        log_tail.is_some_and(|t| {
            let lower = t.to_ascii_lowercase();
            OOM_MARKERS.iter().any(|m| lower.contains(m))
        })
    };
    match state {
        JobState::OutOfMemory => true,
        JobState::Failed | JobState::Cancelled => has_marker(),
        // A job whose state has not settled yet but was already signalled with SIGKILL.
        JobState::Completing => signal == 9 && has_marker(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_reasons_that_never_clear_get_advice_and_the_others_none() {
        for r in [
            "PartitionConfig",
            "ReqNodeNotAvail",
            "PartitionTimeLimit",
            "InvalidQOS",
            "AssocMaxCpuPerJobLimit",
            "QOSMaxMemoryPerJob",
        ] {
            assert!(stuck_pending_advice(r).is_some(), "{r}");
        }
        for r in [
            "Priority",
            "Resources",
            "Dependency",
            "JobArrayTaskLimit",
            "BeginTime",
        ] {
            assert_eq!(stuck_pending_advice(r), None, "{r}");
        }
    }

    // ---- outputs captured from the real SLURM 22.05 of scripts/slurm-local.sh ----

    #[test]
    fn sbatch_parsable_plain_and_cluster_suffix() {
        assert_eq!(parse_sbatch_parsable("41\n"), Ok(41));
        assert_eq!(parse_sbatch_parsable("29\n"), Ok(29)); // an --array submission
        assert_eq!(parse_sbatch_parsable("123;lambdahat\n"), Ok(123));
        assert_eq!(parse_sbatch_parsable("note from a plugin\n77\n"), Ok(77));
        assert!(matches!(
            parse_sbatch_parsable(""),
            Err(ParseError::NoJobId(_))
        ));
        assert!(matches!(
            parse_sbatch_parsable("abc\n"),
            Err(ParseError::NoJobId(_))
        ));
    }

    #[test]
    fn sbatch_failures_are_classified() {
        let down = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n";
        assert!(classify_sbatch_failure(down).is_transient());

        let qos = "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)\n";
        assert!(classify_sbatch_failure(qos).is_transient());

        let dep = "sbatch: error: Batch job submission failed: Job dependency problem\n";
        assert_eq!(
            classify_sbatch_failure(dep),
            SubmitError::DependencyProblem {
                message: dep.trim().to_string()
            }
        );

        let part = "sbatch: error: invalid partition specified: nosuchpart\nsbatch: error: Batch job submission failed: Invalid partition name specified\n";
        let e = classify_sbatch_failure(part);
        assert!(matches!(e, SubmitError::Rejected { .. }));
        assert_eq!(e.message(), part.trim()); // verbatim, both lines

        // Not captured here (documented SLURM messages).
        for transient in [
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
            "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
            "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
            "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
        ] {
            assert!(
                classify_sbatch_failure(transient).is_transient(),
                "{transient}"
            );
        }
        let wall = "sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)";
        assert!(matches!(
            classify_sbatch_failure(wall),
            SubmitError::Rejected { .. }
        ));
        let mem = "sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job submission failed: Requested node configuration is not available";
        assert!(matches!(
            classify_sbatch_failure(mem),
            SubmitError::Rejected { .. }
        ));
    }

    #[test]
    fn query_failures_are_classified() {
        let gone = "slurm_load_jobs error: Invalid job id specified\n";
        assert!(matches!(
            classify_query_failure(gone),
            QueryError::NoSuchJob { .. }
        ));
        let down = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n";
        assert!(classify_query_failure(down).is_transient());
        let dbd = "sacct: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:localhost:6819: Connection refused\nsacct: error: Sending PersistInit msg: Connection refused\nsacct: error: Problem talking to the database: Connection refused\n";
        assert!(classify_query_failure(dbd).is_transient());
        assert!(matches!(
            classify_query_failure("squeue: error: Invalid user: nobodyx"),
            QueryError::Failed { .. }
        ));
    }

    #[test]
    fn job_ids_and_ranges() {
        assert_eq!("123".parse::<JobKey>(), Ok(JobKey::job(123)));
        assert_eq!("123_4".parse::<JobKey>(), Ok(JobKey::task(123, 4)));
        assert_eq!(JobKey::task(123, 4).to_string(), "123_4");
        assert_eq!(JobKey::job(9).to_string(), "9");
        assert!("123_[4-5]".parse::<JobKey>().is_err());
        assert!("123.batch".parse::<JobKey>().is_err());
        assert!("-1".parse::<JobKey>().is_err());
        assert!("".parse::<JobKey>().is_err());

        let keys = parse_job_ids("3_[2-5%2]").unwrap();
        assert_eq!(
            keys,
            (2..=5).map(|t| JobKey::task(3, t)).collect::<Vec<_>>()
        );
        assert_eq!(parse_array_indices("1,3,5-9:2"), Ok(vec![1, 3, 5, 7, 9]));
        assert_eq!(parse_array_indices("0-5%2"), Ok(vec![0, 1, 2, 3, 4, 5]));
        assert_eq!(parse_array_indices("7"), Ok(vec![7]));
        for bad in ["", "5-3", "1-3:0", "a", "1-", "1%x", "1,,2"] {
            assert!(parse_array_indices(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn states() {
        assert_eq!(
            parse_state("CANCELLED by 0"),
            (JobState::Cancelled, Some(0))
        );
        assert_eq!(parse_state("CANCELLED"), (JobState::Cancelled, None));
        assert_eq!(parse_state("OUT_OF_MEMORY").0, JobState::OutOfMemory);
        assert_eq!(parse_state("NODE_FAIL").0, JobState::NodeFail);
        assert_eq!(parse_state("PREEMPTED").0, JobState::Preempted);
        assert_eq!(parse_state("BOOT_FAIL").0, JobState::BootFail);
        assert_eq!(parse_state("TIMEOUT").0, JobState::Timeout);
        assert_eq!(parse_state("FAILED").0, JobState::Failed);
        assert_eq!(parse_state("COMPLETED").0, JobState::Completed);
        assert_eq!(parse_state("COMPLETING").0, JobState::Completing);
        assert_eq!(parse_state("PD").0, JobState::Pending);
        assert_eq!(parse_state("REQUEUED").0, JobState::Requeued);
        assert_eq!(
            parse_state("RESV_DEL_HOLD").0,
            JobState::Other("RESV_DEL_HOLD".into())
        );
        assert!(JobState::Timeout.is_terminal());
        assert!(!JobState::Completing.is_terminal());
        assert!(!JobState::Requeued.is_terminal());
        assert!(JobState::NodeFail.is_infrastructure_failure());
        assert_eq!(JobState::OutOfMemory.to_string(), "OUT_OF_MEMORY");
    }

    #[test]
    fn small_formats() {
        assert_eq!(parse_exit_code("0:9"), Ok((0, 9)));
        assert_eq!(parse_exit_code("42:0"), Ok((42, 0)));
        assert!(parse_exit_code("42").is_err());
        assert_eq!(parse_duration_secs("00:01:11"), Ok(71));
        assert_eq!(parse_duration_secs("1-02:03:04"), Ok(93_784));
        assert_eq!(parse_duration_secs("01:02"), Ok(62));
        assert_eq!(parse_duration_secs("00:00.123"), Ok(0));
        assert!(parse_duration_secs("UNLIMITED").is_err());
        assert_eq!(parse_mem_bytes(""), Ok(None));
        assert_eq!(parse_mem_bytes("120016896"), Ok(Some(120_016_896)));
        assert_eq!(parse_mem_bytes("117204K"), Ok(Some(120_016_896)));
        assert_eq!(parse_mem_bytes("50M"), Ok(Some(52_428_800)));
        assert_eq!(parse_mem_bytes("1.50G"), Ok(Some(1_610_612_736)));
        assert_eq!(parse_mem_bytes("4000Mn"), Ok(Some(4_194_304_000)));
        assert_eq!(parse_mem_bytes("18446744073709551616.00M"), Ok(None));
        assert!(parse_mem_bytes("12X").is_err());
        assert!(parse_mem_bytes("K").is_err());
    }

    /// `squeue -r -t all --noheader --format=%i|%T|%r` during `--array=0-5%2`, then without `-r`.
    #[test]
    fn squeue_array_with_throttle() {
        let out = "3_2|PENDING|JobArrayTaskLimit\n3_3|PENDING|JobArrayTaskLimit\n3_4|PENDING|JobArrayTaskLimit\n3_5|PENDING|JobArrayTaskLimit\n3_0|RUNNING|None\n3_1|RUNNING|None\n";
        let rows = parse_squeue(out).unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(
            rows[0],
            QueueEntry {
                job: JobKey::task(3, 2),
                state: JobState::Pending,
                reason: Some("JobArrayTaskLimit".into())
            }
        );
        assert_eq!(rows[4].state, JobState::Running);
        assert_eq!(rows[4].reason, None);

        let no_r = "3_[2-5%2]|PENDING|JobArrayTaskLimit\n3_0|RUNNING|None\n3_1|RUNNING|None\n";
        let rows2 = parse_squeue(no_r).unwrap();
        assert_eq!(rows2, rows);
    }

    /// Dependencies: afterok on a running parent, and on a parent that failed.
    #[test]
    fn squeue_dependencies_and_final_states() {
        let out = "12|FAILED|NonZeroExitCode\n11|PENDING|Dependency\n13|PENDING|DependencyNeverSatisfied\n10|RUNNING|None\n";
        let rows = parse_squeue(out).unwrap();
        assert_eq!(rows[0].state, JobState::Failed);
        assert_eq!(rows[2].reason.as_deref(), Some("DependencyNeverSatisfied"));
        // -t all shows jobs that ended < MinJobAge ago; OOM and TIMEOUT as seen by squeue:
        let ended = "22|FAILED|JobLaunchFailure\n23|TIMEOUT|TimeLimit\n13|CANCELLED|DependencyNeverSatisfied\n";
        let rows = parse_squeue(ended).unwrap();
        assert_eq!(rows[1].state, JobState::Timeout);
        assert_eq!(rows[2].state, JobState::Cancelled);
        assert_eq!(parse_squeue(""), Ok(vec![]));
        assert!(matches!(
            parse_squeue("12 FAILED"),
            Err(ParseError::FieldCount { found: 1, .. })
        ));
        // The reason is the last field and may contain anything.
        let odd = parse_squeue("5|PENDING|ReqNodeNotAvail, UnavailableNodes:vm|x\n").unwrap();
        assert_eq!(
            odd[0].reason.as_deref(),
            Some("ReqNodeNotAvail, UnavailableNodes:vm|x")
        );
    }

    fn rec(out: &[AccountingRecord], job: JobKey) -> &AccountingRecord {
        out.iter().find(|r| r.job == job).unwrap()
    }

    /// `sacct --parsable2 --noheader --noconvert --format=JobID,State,ExitCode,Elapsed,MaxRSS,ReqMem`
    #[test]
    fn sacct_oom_timeout_cancel_fail() {
        // OOM via OverMemoryKill (--mem=50, 300 MB allocated).
        let oom = "22|FAILED|0:9|00:00:02||50M\n22.batch|CANCELLED by 0|0:9|00:00:02|329871360|\n";
        let r = parse_sacct(oom).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0],
            AccountingRecord {
                job: JobKey::job(22),
                state: JobState::Failed,
                cancelled_by: None,
                exit_code: 0,
                signal: 9,
                elapsed_secs: 2,
                max_rss_bytes: Some(329_871_360),
                req_mem_bytes: Some(52_428_800),
            }
        );

        // TIMEOUT: the job line says 0:0, the batch step has the signal.
        let timeout = "23|TIMEOUT|0:0|00:01:11||1024M\n23.batch|CANCELLED|0:9|00:01:16|3366912|\n33|TIMEOUT|0:0|00:01:02||1024M\n33.batch|CANCELLED|0:15|00:01:02|3309568|\n";
        let r = parse_sacct(timeout).unwrap();
        assert_eq!(r[0].state, JobState::Timeout);
        assert_eq!((r[0].exit_code, r[0].signal, r[0].elapsed_secs), (0, 9, 71));
        assert_eq!((r[1].exit_code, r[1].signal), (0, 15));

        // scancel of a running job and of a throttled array (pending tasks as one range line).
        let cancel = "34|CANCELLED by 0|0:0|00:00:02||1024M\n34.batch|CANCELLED|0:15|00:00:02|3276800|\n35_0|CANCELLED by 0|0:0|00:00:02||1024M\n35_0.batch|CANCELLED|0:15|00:00:02|3272704|\n35_[1-9%2]|CANCELLED by 0|0:0|00:00:00||1024M\n";
        let r = parse_sacct(cancel).unwrap();
        assert_eq!(r.len(), 11);
        assert_eq!(rec(&r, JobKey::job(34)).cancelled_by, Some(0));
        assert_eq!(rec(&r, JobKey::job(34)).signal, 15);
        assert_eq!(rec(&r, JobKey::task(35, 0)).max_rss_bytes, Some(3_272_704));
        let t9 = rec(&r, JobKey::task(35, 9));
        assert_eq!(
            (t9.state.clone(), t9.max_rss_bytes),
            (JobState::Cancelled, None)
        );

        // Exit codes and a self-inflicted SIGKILL (indistinguishable from OOM in sacct).
        // A line in another format (5 fields) is an error, not a silent misparse.
        assert!(matches!(
            parse_sacct("37|FAILED|11:0|00:00:00|\n"),
            Err(ParseError::FieldCount { found: 5, .. })
        ));
        let fails = "37|FAILED|11:0|00:00:00||1024M\n37.batch|FAILED|11:0|00:00:00||\n38|FAILED|42:0|00:00:00||1024M\n38.batch|FAILED|42:0|00:00:00||\n39|FAILED|0:9|00:00:00||1024M\n39.batch|CANCELLED|0:9|00:00:00||\n";
        let r = parse_sacct(fails).unwrap();
        assert_eq!((r[1].exit_code, r[1].signal), (42, 0));
        assert_eq!((r[2].state.clone(), r[2].signal), (JobState::Failed, 9));
    }

    /// A completed array `--array=0-5%2` and, while it ran, the lagging view (`3_[2-5%2]` pending,
    /// steps RUNNING without MaxRSS).
    #[test]
    fn sacct_array_and_running() {
        let running = "3_0|RUNNING|0:0|00:00:03||1024M\n3_0.batch|RUNNING|0:0|00:00:03||\n3_1|RUNNING|0:0|00:00:03||1024M\n3_1.batch|RUNNING|0:0|00:00:03||\n3_[2-5%2]|PENDING|0:0|00:00:00||1024M\n";
        let r = parse_sacct(running).unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(rec(&r, JobKey::task(3, 5)).state, JobState::Pending);

        let done = "3_0|COMPLETED|0:0|00:00:04||1024M\n3_0.batch|COMPLETED|0:0|00:00:04|3383296|\n3_1|COMPLETED|0:0|00:00:04||1024M\n3_1.batch|COMPLETED|0:0|00:00:04|3313664|\n29_2|FAILED|2:0|00:00:00||100M\n29_2.batch|FAILED|2:0|00:00:00||\n";
        let r = parse_sacct(done).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(rec(&r, JobKey::task(3, 1)).max_rss_bytes, Some(3_313_664));
        assert_eq!(rec(&r, JobKey::task(29, 2)).exit_code, 2);

        // The transient garbage ReqMem of a job accounting has not caught up with.
        let lag =
            "34|PENDING|0:0|00:00:02||18446744073709551616.00M\n34.batch|RUNNING|0:0|00:00:02||\n";
        let r = parse_sacct(lag).unwrap();
        assert_eq!(r[0].req_mem_bytes, None);

        // A step with MaxRSS and an extern step: the max wins; steps before their job line work.
        let steps = "7.extern|COMPLETED|0:0|00:00:05|1000|\n7|COMPLETED|0:0|00:00:05||1G\n7.batch|COMPLETED|0:0|00:00:05|5000|\n7.0|COMPLETED|0:0|00:00:04|3000|\n8+0|COMPLETED|0:0|00:00:01||1G\n";
        let r = parse_sacct(steps).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].max_rss_bytes, Some(5000));
    }

    /// slurmd killed under a running job: after ~90 s the node is `down*` and the job NODE_FAIL,
    /// then SLURM requeues it (Requeue=1 by default) under the same id. Without --duplicates sacct
    /// shows only the newest instance (here cancelled while requeued); with it, both.
    #[test]
    fn sacct_node_fail_and_requeue() {
        let dup = "49|NODE_FAIL|0:0|00:01:33||1024M\n49.batch|CANCELLED||00:01:33||\n49|CANCELLED by 0|0:0|00:00:00||1024M\n";
        let r = parse_sacct(dup).unwrap();
        assert_eq!(r.len(), 1); // the later instance wins
        assert_eq!(r[0].state, JobState::Cancelled);
        let nf = "49|NODE_FAIL|0:0|00:01:33||1024M\n49.batch|CANCELLED||00:01:33||\n";
        let r = parse_sacct(nf).unwrap();
        assert_eq!(
            (r[0].state.clone(), r[0].signal, r[0].elapsed_secs),
            (JobState::NodeFail, 0, 93)
        );
        assert!(r[0].state.is_infrastructure_failure());
        let q = parse_squeue("49|PENDING|BeginTime\n").unwrap();
        assert_eq!(q[0].state, JobState::Pending);
    }

    const SCONTROL_FAILED: &str = "JobId=12 JobName=failparent
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901753 Nice=0 Account=root QOS=normal
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-11-29T14:04:22 EligibleTime=2026-11-29T14:04:22
   AccrueTime=2026-11-29T14:04:22
   StartTime=2026-11-29T14:04:22 EndTime=2026-11-29T14:04:23 Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-29T14:04:22 Scheduler=Main
   Partition=debug AllocNode:Sid=localhost:2371
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=vm
   BatchHost=vm
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,mem=1G,node=1,billing=1
   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*
   MinCPUsNode=1 MinMemoryCPU=1G MinTmpDiskNode=0
   Features=(null) DelayBoot=00:00:00
   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)
   Command=(null)
   WorkDir=/work/scratch/jobs
   StdErr=/work/scratch/jobs/dep-12.out
   StdIn=/dev/null
   StdOut=/work/scratch/jobs/dep-12.out
   Power=
   

";

    #[test]
    fn scontrol_records() {
        let r = parse_scontrol_show_job(SCONTROL_FAILED).unwrap();
        assert_eq!(
            r,
            vec![ControlRecord {
                job: JobKey::job(12),
                state: JobState::Failed,
                reason: Some("NonZeroExitCode".into()),
                exit_code: 3,
                signal: 0,
                run_time_secs: Some(1),
            }]
        );

        // OOM and TIMEOUT as scontrol reports them (sacct's TIMEOUT job line says 0:0 instead).
        let oom = "JobId=22 JobName=oom\n   JobState=FAILED Reason=JobLaunchFailure Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9\n   RunTime=00:00:02 TimeLimit=365-00:00:00 TimeMin=N/A\n";
        let r = parse_scontrol_show_job(oom).unwrap();
        assert_eq!((r[0].state.clone(), r[0].signal), (JobState::Failed, 9));
        let timeout = "JobId=23 JobName=tmo\n   JobState=TIMEOUT Reason=TimeLimit Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:9\n   RunTime=00:01:11 TimeLimit=00:01:00 TimeMin=N/A\n";
        let r = parse_scontrol_show_job(timeout).unwrap();
        assert_eq!(
            (r[0].state.clone(), r[0].run_time_secs),
            (JobState::Timeout, Some(71))
        );

        // A pending throttled array: one record for the range, expanded; plus a running task.
        let array = "JobId=35 ArrayJobId=35 ArrayTaskId=1-9%2 ArrayTaskThrottle=2 JobName=arrc\n   UserId=root(0) GroupId=root(0) MCS_label=N/A\n   JobState=PENDING Reason=Resources Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A\n\nJobId=36 ArrayJobId=35 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=arrc\n   JobState=RUNNING Reason=None Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0\n   RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A\n";
        let r = parse_scontrol_show_job(array).unwrap();
        assert_eq!(r.len(), 10);
        assert_eq!(r[0].job, JobKey::task(35, 1));
        assert_eq!(r[0].reason.as_deref(), Some("Resources"));
        assert_eq!(r[9].job, JobKey::task(35, 0));
        assert_eq!(
            (r[9].state.clone(), r[9].reason.clone()),
            (JobState::Running, None)
        );

        // Captured: a job named with sbatch's quoting of `a"b$HOME`c;d'e`, and one faking fields.
        let named = "JobId=27 JobName=a\"b$HOME`c;d'e JobState=COMPLETED x=1\n   UserId=root(0) GroupId=root(0) MCS_label=N/A\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=1:0\n";
        let r = parse_scontrol_show_job(named).unwrap();
        assert_eq!(
            (r[0].job, r[0].state.clone(), r[0].exit_code),
            (JobKey::job(27), JobState::Failed, 1)
        );

        // One-line mode and a job name that tries to fake fields.
        let one = "JobId=50 JobName=x JobState=COMPLETED ExitCode=0:0 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=root QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:05 TimeLimit=UNLIMITED\n";
        let r = parse_scontrol_show_job(one).unwrap();
        assert_eq!(
            (r[0].job, r[0].state.clone()),
            (JobKey::job(50), JobState::Running)
        );

        assert!(matches!(
            parse_scontrol_show_job("JobId=5 JobName=x\n   Reason=None\n"),
            Err(ParseError::MissingField {
                field: "JobState",
                ..
            })
        ));
        assert_eq!(parse_scontrol_show_job(""), Ok(vec![]));
    }

    #[test]
    fn oom_detection() {
        let log = "slurmstepd-vm: error: StepId=22.batch exceeded memory limit (329871360 > 52428800), being killed\nslurmstepd-vm: error: *** JOB 22 ON vm CANCELLED AT 2026-11-29T14:04:40 ***\nslurmstepd-vm: error: StepId=22.batch exceeded memory limit (329871360 > 52428800), being killed\nslurmstepd-vm: error: Exceeded job memory limit\n";
        assert!(is_oom_kill(&JobState::Failed, 9, Some(log)));
        assert!(is_oom_kill(&JobState::Cancelled, 9, Some(log)));
        // kill -9 from elsewhere: same state and signal, no SLURM message.
        assert!(!is_oom_kill(&JobState::Failed, 9, Some("Killed\n")));
        assert!(!is_oom_kill(&JobState::Failed, 9, None));
        // cgroup clusters.
        assert!(is_oom_kill(&JobState::OutOfMemory, 0, None));
        let cg = "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=123.batch. Some of your processes may have been killed by the cgroup out-of-memory handler.\n";
        assert!(is_oom_kill(&JobState::Failed, 0, Some(cg)));
        // Ended otherwise.
        assert!(!is_oom_kill(&JobState::Completed, 0, Some(cg)));
        let tlog = "slurmstepd-vm: error: *** JOB 23 ON vm CANCELLED AT 2026-11-29T14:05:59 DUE TO TIME LIMIT ***\n";
        assert!(!is_oom_kill(&JobState::Timeout, 9, Some(tlog)));
        assert!(!is_oom_kill(&JobState::Failed, 0, Some(tlog)));
    }
}
