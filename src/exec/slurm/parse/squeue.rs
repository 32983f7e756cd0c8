//! `squeue` output (with [`SQUEUE_ARGS`]): one [`QueueEntry`] per job or array task.

use super::error::ParseError;
use super::job_id::{JobKey, parse_job_ids};
use super::state::{JobState, parse_state};

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
/// job id specified" when the controller has forgotten it (see [`classify_query_failure`](super::classify_query_failure)).
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
///
/// Only the reason's first word counts: SLURM appends details after a comma or in parentheses
/// for several reasons (`ReqNodeNotAvail, UnavailableNodes:vm`,
/// `ReqNodeNotAvail, May be reserved for other job`, `BadConstraints(...)` on some versions), so
/// matching the whole text missed exactly the drained-node case users hit most.
pub fn stuck_pending_advice(reason: &str) -> Option<&'static str> {
    let word = reason
        .split([',', '(', ' '])
        .next()
        .unwrap_or_default()
        .trim();
    let advice = match word {
        "PartitionConfig" | "PartitionNodeLimit" | "BadConstraints" => {
            "no node of the partition can satisfy the job's request: lower cpus_per_task, mem_mb or gpu, or choose another slurm_partition (sinfo -o '%P %c %m %G' lists what nodes have)"
        }
        // The request fits, but the nodes it may run on are down, drained or reserved: lowering
        // the request does not help, an admin or another partition does.
        "ReqNodeNotAvail" => {
            "the nodes it may run on are down or drained: ask the admins (sinfo -R lists why) or choose another slurm_partition"
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
