//! What to do about a SLURM job that ended without success, and how long to back off after a
//! transient error of a SLURM command. Pure: state, signal, log tail and resources in, a
//! [`RetryVerdict`] or a delay out.
//!
//! - out of memory (`OUT_OF_MEMORY`, or `FAILED` + signal 9 + SLURM's "Exceeded job memory
//!   limit" in the log, as without cgroups): retry with memory × factor;
//! - `TIMEOUT`: retry with runtime × factor;
//! - `NODE_FAIL`, `PREEMPTED`, `BOOT_FAIL`: the machine's fault, resubmit as is;
//! - `FAILED` (and a COMPLETED job without its output): retry as is;
//! - `CANCELLED` by someone else, `DEADLINE`, anything unknown: no retry.
//!
//! Every retry counts against `--retries`.

use std::time::Duration;

use super::flags::int_resource;
use super::parse::{JobState, is_oom_kill};
use crate::exec::resources::{ResourceMap, ResourceValue};

#[derive(Debug, Clone, PartialEq)]
pub enum RetryVerdict {
    /// Submit again with these resources.
    Retry { resources: ResourceMap, why: String },
    /// Give up on the job.
    Fail { why: String },
}

/// How a job ended, as far as the decision needs it.
#[derive(Debug, Clone)]
pub struct Ending<'a> {
    pub state: &'a JobState,
    pub exit_code: u32,
    pub signal: u32,
    /// The end of the job's log, where SLURM writes why it killed a job.
    pub log_tail: Option<&'a str>,
}

impl Ending<'_> {
    pub fn is_oom(&self) -> bool {
        is_oom_kill(self.state, self.signal, self.log_tail)
    }

    /// A job killed from outside (signal, time or memory limit, cancel) may have left partial
    /// files, so its incomplete marker is kept.
    pub fn killed(&self) -> bool {
        self.signal != 0
            || self.is_oom()
            || matches!(
                self.state,
                JobState::Timeout | JobState::Cancelled | JobState::NodeFail | JobState::Preempted
            )
    }

    /// One line for the user: what SLURM says happened.
    pub fn describe(&self, res: &ResourceMap) -> String {
        if self.is_oom() {
            let mem = memory(res)
                .map(|(name, v)| format!(" ({name}={v})"))
                .unwrap_or_default();
            return format!("ran out of memory{mem}");
        }
        match self.state {
            JobState::Timeout => {
                let t = int_resource(res, "runtime")
                    .map(|m| format!(" of {m} min"))
                    .unwrap_or_default();
                format!("hit its time limit{t} (TIMEOUT)")
            }
            JobState::Failed if self.signal != 0 => {
                format!("was killed by signal {} (FAILED)", self.signal)
            }
            // FAILED means a non-zero exit: 0 is what we hold when squeue saw the end before
            // sacct recorded it (array tasks, a busy slurmdbd), so no code is better than 0.
            JobState::Failed if self.exit_code == 0 => "failed (FAILED)".into(),
            JobState::Failed => format!("failed with exit code {} (FAILED)", self.exit_code),
            s if s.is_infrastructure_failure() => format!("ended {s}: a node or scheduler problem"),
            // Who cancelled is not in SLURM's record, but `lambda-hat cancel` writes journal
            // lines (just after its scancel), and the controller takes the jobs they name (and
            // those killed with them) as cancelled, not failed, looking again one poll later
            // for lines not yet written (`controller/cancel.rs`). What is left is someone's own
            // scancel, or an administrator's.
            JobState::Cancelled => {
                "was cancelled outside lambda-hat (CANCELLED: by scancel or an administrator)"
                    .into()
            }
            s => format!("ended {s}"),
        }
    }
}

/// The memory resource a job sets (`mem_mb` or `mem_mb_per_cpu`).
fn memory(res: &ResourceMap) -> Option<(&'static str, i64)> {
    ["mem_mb", "mem_mb_per_cpu"]
        .into_iter()
        .find_map(|n| int_resource(res, n).map(|v| (n, v)))
}

fn scaled(v: i64, factor: f64) -> i64 {
    ((v as f64 * factor).ceil() as i64).max(v + 1)
}

/// Decides about a failed attempt. `failures` counts this one; `retries` is `--retries`.
pub fn decide(
    ending: &Ending,
    res: &ResourceMap,
    failures: u32,
    retries: u32,
    factor: f64,
) -> RetryVerdict {
    let what = ending.describe(res);
    let give_up = |why: String| RetryVerdict::Fail { why };
    if matches!(ending.state, JobState::Cancelled) && !ending.is_oom() {
        return give_up(what);
    }
    let retryable = ending.is_oom()
        || ending.state.is_infrastructure_failure()
        || matches!(
            ending.state,
            JobState::Timeout | JobState::Failed | JobState::Completed
        );
    if !retryable {
        return give_up(what);
    }
    if failures > retries {
        let tries = if retries == 0 {
            " (no retries: raise them with --retries/-T)".to_string()
        } else {
            format!(" (after {} attempts)", retries + 1)
        };
        return give_up(format!("{what}{tries}"));
    }
    let mut next = res.clone();
    let change = if ending.is_oom() {
        let (name, v) = memory(res).unwrap_or(("mem_mb", 1000));
        let n = scaled(v, factor);
        next.insert(name.into(), ResourceValue::Int(n));
        format!("retrying with {name}={n}")
    } else if *ending.state == JobState::Timeout {
        let v = int_resource(res, "runtime").unwrap_or(60);
        let n = scaled(v, factor);
        next.insert("runtime".into(), ResourceValue::Int(n));
        format!("retrying with runtime={n} min")
    } else {
        "retrying as is".into()
    };
    RetryVerdict::Retry {
        resources: next,
        why: format!("{what}; {change}"),
    }
}

/// Exponential backoff for transient errors of SLURM commands: `base`, 2×, 4×, ... up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before the next try.
    pub fn fail(&mut self) -> Duration {
        let d = self.base.saturating_mul(1u32 << self.failures.min(16));
        self.failures += 1;
        d.min(self.max)
    }

    pub fn succeed(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn res() -> ResourceMap {
        BTreeMap::from([
            ("mem_mb".to_string(), ResourceValue::Int(100)),
            ("runtime".to_string(), ResourceValue::Int(1)),
        ])
    }

    fn end<'a>(state: &'a JobState, signal: u32, log: Option<&'a str>) -> Ending<'a> {
        Ending {
            state,
            exit_code: 0,
            signal,
            log_tail: log,
        }
    }

    #[test]
    fn oom_without_cgroups_doubles_memory() {
        let log = "slurmstepd-vm: error: Exceeded job memory limit\n";
        let e = end(&JobState::Failed, 9, Some(log));
        match decide(&e, &res(), 1, 2, 2.0) {
            RetryVerdict::Retry { resources, why } => {
                assert_eq!(resources["mem_mb"], ResourceValue::Int(200));
                assert!(
                    why.contains("out of memory") && why.contains("mem_mb=200"),
                    "{why}"
                );
            }
            v => panic!("{v:?}"),
        }
        // The cgroup form.
        let e = end(&JobState::OutOfMemory, 0, None);
        assert!(matches!(
            decide(&e, &res(), 1, 1, 2.0),
            RetryVerdict::Retry { .. }
        ));
        // A plain kill -9 is a failure, retried as is.
        let e = end(&JobState::Failed, 9, Some("nothing"));
        match decide(&e, &res(), 1, 1, 2.0) {
            RetryVerdict::Retry { resources, why } => {
                assert_eq!(resources, res());
                assert!(why.contains("signal 9"), "{why}");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn timeout_doubles_runtime_and_retries_are_bounded() {
        let e = end(&JobState::Timeout, 15, None);
        match decide(&e, &res(), 1, 1, 2.0) {
            RetryVerdict::Retry { resources, .. } => {
                assert_eq!(resources["runtime"], ResourceValue::Int(2))
            }
            v => panic!("{v:?}"),
        }
        match decide(&e, &res(), 2, 1, 2.0) {
            RetryVerdict::Fail { why } => {
                assert!(why.contains("TIMEOUT") && why.contains("2 attempts"))
            }
            v => panic!("{v:?}"),
        }
        match decide(&e, &res(), 1, 0, 2.0) {
            RetryVerdict::Fail { why } => assert!(why.contains("--retries"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn infrastructure_resubmits_and_cancel_gives_up() {
        let e = end(&JobState::NodeFail, 0, None);
        assert!(
            matches!(decide(&e, &res(), 1, 1, 2.0), RetryVerdict::Retry { resources, .. } if resources == res())
        );
        let e = end(&JobState::Cancelled, 0, None);
        match decide(&e, &res(), 1, 5, 2.0) {
            // Not retried: someone wanted it stopped.
            RetryVerdict::Fail { why } => {
                assert!(why.contains("CANCELLED"), "{why}");
                assert!(why.contains("scancel"), "{why}");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_failure_names_its_exit_code_only_when_sacct_gave_one() {
        let mut e = end(&JobState::Failed, 0, None);
        assert_eq!(e.describe(&res()), "failed (FAILED)");
        e.exit_code = 1;
        assert_eq!(e.describe(&res()), "failed with exit code 1 (FAILED)");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let waits: Vec<u64> = (0..5).map(|_| b.fail().as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000]);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_millis(500));
    }
}
