//! Did SLURM kill a job for its memory? From its final state, signal and log tail.

use super::state::JobState;

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
/// so the last few KiB suffice. `signal` is from [`AccountingRecord`](super::AccountingRecord)/[`ControlRecord`](super::ControlRecord).
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
