//! One polling cycle's knowledge, merged, and the adaptive interval between cycles. Pure.
//!
//! Each cycle asks `squeue` once about every tracked SLURM job (live state, and the final state of
//! jobs that ended less than `MinJobAge` ago), then `sacct` once about the jobs that ended or left
//! the queue (exit code, elapsed, MaxRSS; the only source once the controller purged a job), or
//! `scontrol show job` where accounting is disabled. [`merge`] turns the parsed outputs into one
//! [`Seen`] per tracked job. squeue's state wins over sacct's, because sacct lags by a second or
//! two (a job that squeue shows COMPLETED may still be RUNNING in sacct).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::parse::{AccountingRecord, ControlRecord, JobKey, JobState, QueueEntry};

/// What a cycle learned about one tracked job.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Still pending, running, completing...
    Queued(JobState),
    /// Ended for good.
    Ended(Final),
    /// Neither squeue nor sacct knows it (yet).
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    pub state: JobState,
    pub exit_code: u32,
    pub signal: u32,
    pub elapsed_secs: Option<u64>,
    pub max_rss_bytes: Option<u64>,
}

/// The array/job ids to ask sacct about: jobs squeue shows ended or does not show at all.
pub fn needs_accounting(tracked: &[JobKey], queue: &[QueueEntry]) -> Vec<u64> {
    let live: HashMap<JobKey, &JobState> = queue.iter().map(|e| (e.job, &e.state)).collect();
    let ids: BTreeSet<u64> = tracked
        .iter()
        .filter(|k| live.get(k).is_none_or(|s| s.is_terminal()))
        .map(|k| k.job_id)
        .collect();
    ids.into_iter().collect()
}

/// Merges squeue entries with sacct records (or scontrol records) for every tracked job.
pub fn merge(
    tracked: &[JobKey],
    queue: &[QueueEntry],
    acct: &[AccountingRecord],
    control: &[ControlRecord],
) -> HashMap<JobKey, Seen> {
    let q: HashMap<JobKey, &QueueEntry> = queue.iter().map(|e| (e.job, e)).collect();
    let a: HashMap<JobKey, &AccountingRecord> = acct.iter().map(|r| (r.job, r)).collect();
    let c: HashMap<JobKey, &ControlRecord> = control.iter().map(|r| (r.job, r)).collect();
    let mut out = HashMap::new();
    for key in tracked {
        let acct = a.get(key).filter(|r| r.state.is_terminal());
        let seen = match (q.get(key), acct) {
            (Some(e), _) if !e.state.is_terminal() => Seen::Queued(e.state.clone()),
            (Some(e), Some(r)) => Seen::Ended(Final {
                state: e.state.clone(),
                exit_code: r.exit_code,
                signal: r.signal,
                elapsed_secs: Some(r.elapsed_secs),
                max_rss_bytes: r.max_rss_bytes,
            }),
            (Some(e), None) => {
                let ctl = c.get(key);
                Seen::Ended(Final {
                    state: e.state.clone(),
                    exit_code: ctl.map_or(0, |r| r.exit_code),
                    signal: ctl.map_or(0, |r| r.signal),
                    elapsed_secs: ctl.and_then(|r| r.run_time_secs),
                    max_rss_bytes: None,
                })
            }
            (None, Some(r)) => Seen::Ended(Final {
                state: r.state.clone(),
                exit_code: r.exit_code,
                signal: r.signal,
                elapsed_secs: Some(r.elapsed_secs),
                max_rss_bytes: r.max_rss_bytes,
            }),
            (None, None) => match c.get(key) {
                Some(r) if r.state.is_terminal() => Seen::Ended(Final {
                    state: r.state.clone(),
                    exit_code: r.exit_code,
                    signal: r.signal,
                    elapsed_secs: r.run_time_secs,
                    max_rss_bytes: None,
                }),
                _ => Seen::Unknown,
            },
        };
        out.insert(*key, seen);
    }
    out
}

/// The wait between polling cycles: `min` while jobs are finishing, growing by half each quiet
/// cycle up to `max`, so an idle sweep of long jobs costs the scheduler little.
#[derive(Debug, Clone)]
pub struct Interval {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Interval {
    pub fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Interval {
            min,
            max,
            current: min,
        }
    }

    /// Something changed (a job ended or was submitted): poll again soon.
    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The wait before the next cycle; quiet cycles lengthen the following waits.
    pub fn next(&mut self, changed: bool) -> Duration {
        if changed {
            self.reset();
            return self.current;
        }
        let wait = self.current;
        self.current = self.current.mul_f64(1.5).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qe(job: JobKey, state: JobState) -> QueueEntry {
        QueueEntry {
            job,
            state,
            reason: None,
        }
    }

    fn rec(job: JobKey, state: JobState, signal: u32) -> AccountingRecord {
        AccountingRecord {
            job,
            state,
            cancelled_by: None,
            exit_code: 0,
            signal,
            elapsed_secs: 4,
            max_rss_bytes: Some(1 << 20),
            req_mem_bytes: None,
        }
    }

    #[test]
    fn squeue_state_wins_and_sacct_adds_details() {
        let (a, b, c, d) = (
            JobKey::job(1),
            JobKey::task(2, 0),
            JobKey::task(2, 1),
            JobKey::job(3),
        );
        let queue = vec![
            qe(a, JobState::Running),
            qe(b, JobState::Completed),
            qe(c, JobState::Failed),
        ];
        assert_eq!(needs_accounting(&[a, b, c, d], &queue), vec![2, 3]);
        // sacct lags: it still says RUNNING for b; it knows c failed with signal 9; d was purged.
        let acct = vec![
            rec(b, JobState::Running, 0),
            rec(c, JobState::Failed, 9),
            rec(d, JobState::Timeout, 15),
        ];
        let seen = merge(&[a, b, c, d], &queue, &acct, &[]);
        assert_eq!(seen[&a], Seen::Queued(JobState::Running));
        assert!(
            matches!(&seen[&b], Seen::Ended(f) if f.state == JobState::Completed && f.elapsed_secs.is_none())
        );
        assert!(
            matches!(&seen[&c], Seen::Ended(f) if f.signal == 9 && f.max_rss_bytes == Some(1 << 20))
        );
        assert!(matches!(&seen[&d], Seen::Ended(f) if f.state == JobState::Timeout));
        assert_eq!(
            merge(&[JobKey::job(9)], &[], &[], &[])[&JobKey::job(9)],
            Seen::Unknown
        );
    }

    #[test]
    fn interval_backs_off_when_quiet_and_resets_on_change() {
        let mut i = Interval::new(Duration::from_secs(1), Duration::from_secs(3));
        let w: Vec<f64> = (0..5).map(|_| i.next(false).as_secs_f64()).collect();
        assert_eq!(w, vec![1.0, 1.5, 2.25, 3.0, 3.0]);
        assert_eq!(i.next(true), Duration::from_secs(1));
    }
}
