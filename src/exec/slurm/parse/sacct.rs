//! `sacct` output (with [`SACCT_ARGS`]): one [`AccountingRecord`] per job or array task, steps merged in.

use std::collections::HashMap;

use super::error::ParseError;
use super::job_id::{JobKey, parse_job_ids};
use super::state::{JobState, parse_state};
use super::values::{parse_duration_secs, parse_exit_code, parse_mem_bytes};

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
