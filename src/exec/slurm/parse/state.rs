//! SLURM job states as [`JobState`], and advice for pending reasons that never clear.

use std::fmt;

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
