//! What the journal says about each job: the SLURM submission still open (for reattaching),
//! the latest SLURM id, attempts (SLURM submissions and local starts), final state, elapsed
//! time, MaxRSS and log (for `status`).
//!
//! Input: the journal's [`Event`]s in order. Output: a [`JobHistory`] per job key. Pure.
//!
//! The SLURM executor writes, per job: `submitting` (intent, flushed BEFORE sbatch runs, with the
//! submission's unique job name), then `submitted` (with the SLURM id), `submit_failed`, and
//! finally `finished` / `failed` / `cancelled` / `skipped`. A submission is open from
//! `submitting` until one of the closing events. An open submission without a SLURM id means
//! the controller died while sbatch ran: whether the job exists is then looked up by its name.

use std::collections::HashMap;

use super::parse::JobKey;
use crate::exec::resources::ResourceMap;
use crate::store::Event;

pub const SUBMITTING: &str = "submitting";
pub const SUBMITTED: &str = "submitted";
pub const SUBMIT_FAILED: &str = "submit_failed";
pub const FINISHED: &str = "finished";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";
pub const SKIPPED: &str = "skipped";
/// The `reason` of the `cancelled` lines `lambda-hat cancel` writes; a controller still
/// running finds its cancelled jobs by it (and writes no `failed` line of its own for them).
pub const CANCEL_COMMAND_REASON: &str = "lambda-hat cancel";
/// A job SLURM keeps pending for a reason waiting will not clear (detail: reason, advice).
pub const PENDING_STUCK: &str = "pending_stuck";

/// A submission the journal does not close.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    /// The submission's unique `--job-name`.
    pub name: String,
    /// Set once `submitted` was written.
    pub slurm: Option<JobKey>,
    /// The job's index in its array, for finding a task by name.
    pub task: Option<u32>,
    /// RFC 3339 time of the intent (a lower bound for `sacct -S`).
    pub since: String,
    /// Resources the submission asked for (retries may have raised them).
    pub resources: Option<ResourceMap>,
    /// The job runs in a bundle (`bundle-size`): judged by its own output, whatever the
    /// SLURM job's state.
    pub bundled: bool,
    /// Which attempt of the job this submission is (1 = the first; retries count up), so a
    /// controller that takes it over counts the retries left from there.
    pub attempt: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobHistory {
    pub open: Option<Open>,
    /// Latest SLURM id of the job (`123` or `123_4`).
    pub slurm_id: Option<String>,
    /// SLURM submissions over every invocation.
    pub attempts: u32,
    /// The last closing event (`finished`, `failed`, ...) and its state word.
    pub last_end: Option<String>,
    pub state: Option<String>,
    pub reason: Option<String>,
    pub elapsed_secs: Option<u64>,
    pub max_rss_bytes: Option<u64>,
    /// The last closed submission ran in a bundle: sacct's figures for its SLURM job are the
    /// whole bundle's, not this job's.
    pub last_bundled: bool,
    /// The log of the latest submission.
    pub log: Option<String>,
    /// While the submission is open: the pending reason waiting will not clear, and what to
    /// change (from a `pending_stuck` event).
    pub stuck: Option<(String, String)>,
}

fn detail_str(e: &Event, key: &str) -> Option<String> {
    e.detail.as_ref()?.get(key)?.as_str().map(String::from)
}

fn detail_u64(e: &Event, key: &str) -> Option<u64> {
    e.detail.as_ref()?.get(key)?.as_u64()
}

/// Folds the journal into one history per job key.
pub fn histories(events: &[Event]) -> HashMap<String, JobHistory> {
    let mut out: HashMap<String, JobHistory> = HashMap::new();
    for e in events {
        let h = out.entry(e.job.clone()).or_default();
        match e.event.as_str() {
            SUBMITTING => {
                h.open = Some(Open {
                    name: detail_str(e, "name").unwrap_or_default(),
                    slurm: None,
                    task: detail_u64(e, "task").map(|t| t as u32),
                    since: e.time.clone(),
                    resources: e
                        .detail
                        .as_ref()
                        .and_then(|d| d.get("resources"))
                        .and_then(|r| serde_json::from_value(r.clone()).ok()),
                    bundled: e.detail.as_ref().is_some_and(|d| d.get("bundle").is_some()),
                    attempt: e.attempt,
                });
                h.log = detail_str(e, "log").or(h.log.take());
                h.stuck = None;
            }
            PENDING_STUCK => {
                h.stuck = detail_str(e, "reason").zip(detail_str(e, "advice"));
            }
            SUBMITTED => {
                let key = e
                    .slurm_job_id
                    .as_deref()
                    .and_then(|s| s.parse::<JobKey>().ok());
                if let Some(open) = h.open.as_mut() {
                    open.slurm = key;
                }
                h.slurm_id = e.slurm_job_id.clone();
                h.attempts += 1;
            }
            SUBMIT_FAILED | FINISHED | FAILED | CANCELLED | SKIPPED | "started" => {
                h.last_bundled = h.open.as_ref().is_some_and(|o| o.bundled);
                h.open = None;
                h.stuck = None;
                if e.event != "started" {
                    h.last_end = Some(e.event.clone());
                    h.state = e.state.clone();
                    h.reason = detail_str(e, "reason");
                    if e.slurm_job_id.is_some() {
                        h.slurm_id = e.slurm_job_id.clone();
                    }
                    h.elapsed_secs = detail_u64(e, "elapsed_secs").or(h.elapsed_secs);
                    h.max_rss_bytes = detail_u64(e, "max_rss_bytes").or(h.max_rss_bytes);
                } else {
                    // Only the local executor writes `started`: each is one attempt, as each
                    // `submitted` is on SLURM.
                    h.last_end = None;
                    h.attempts += 1;
                    // What an earlier attempt ended with is not this one's.
                    (h.state, h.reason, h.elapsed_secs, h.max_rss_bytes) = (None, None, None, None);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, job: &str, slurm: Option<&str>, detail: serde_json::Value) -> Event {
        Event {
            slurm_job_id: slurm.map(String::from),
            detail: Some(detail),
            ..Event::new(event, job, "run_sampler")
        }
    }

    #[test]
    fn each_local_start_counts_as_an_attempt() {
        let events = vec![
            ev("started", "j", None, serde_json::json!({})),
            ev("retry", "j", None, serde_json::json!("exit 1")),
            ev("started", "j", None, serde_json::json!({})),
            ev(FINISHED, "j", None, serde_json::json!({})),
        ];
        let h = &histories(&events)["j"];
        assert_eq!(h.attempts, 2);
        assert_eq!(h.last_end.as_deref(), Some(FINISHED));
        // Started again after finishing (a forced rerun, then killed): no state of the last.
        let mut again = events.clone();
        again[3].state = Some("COMPLETED".into());
        again.push(ev("started", "j", None, serde_json::json!({})));
        let h = &histories(&again)["j"];
        assert_eq!(
            (h.attempts, h.state.as_deref(), h.last_end.as_deref()),
            (3, None, None)
        );
    }

    #[test]
    fn a_closed_submission_remembers_whether_it_ran_in_a_bundle() {
        let mut events = vec![
            ev(
                SUBMITTING,
                "j",
                None,
                serde_json::json!({ "name": "a", "bundle": 1 }),
            ),
            ev(SUBMITTED, "j", Some("7"), serde_json::json!({})),
            ev(CANCELLED, "j", Some("7"), serde_json::json!({})),
        ];
        assert!(histories(&events)["j"].last_bundled);
        events.extend([
            ev(SUBMITTING, "j", None, serde_json::json!({ "name": "b" })),
            ev(SUBMITTED, "j", Some("8"), serde_json::json!({})),
            ev(FINISHED, "j", Some("8"), serde_json::json!({})),
        ]);
        assert!(!histories(&events)["j"].last_bundled);
    }

    #[test]
    fn a_stuck_reason_lasts_while_the_submission_is_open() {
        let stuck =
            serde_json::json!({ "reason": "PartitionConfig", "advice": "lower cpus_per_task" });
        let mut events = vec![
            ev(SUBMITTING, "j", None, serde_json::json!({ "name": "n" })),
            ev(SUBMITTED, "j", Some("7"), serde_json::json!({})),
            ev(PENDING_STUCK, "j", Some("7"), stuck),
        ];
        let h = &histories(&events)["j"];
        assert_eq!(
            h.stuck,
            Some(("PartitionConfig".into(), "lower cpus_per_task".into()))
        );
        events.push(ev(CANCELLED, "j", Some("7"), serde_json::json!({})));
        assert_eq!(histories(&events)["j"].stuck, None);
    }

    #[test]
    fn tracks_open_submissions_and_their_end() {
        let events = vec![
            ev(
                SUBMITTING,
                "a",
                None,
                serde_json::json!({"name": "lh-1", "task": 0, "log": "L"}),
            ),
            ev(
                SUBMITTING,
                "b",
                None,
                serde_json::json!({"name": "lh-1", "task": 1}),
            ),
            ev(SUBMITTED, "a", Some("7_0"), serde_json::json!({})),
            ev(SUBMITTED, "b", Some("7_1"), serde_json::json!({})),
            ev(
                FINISHED,
                "a",
                Some("7_0"),
                serde_json::json!({"elapsed_secs": 3, "max_rss_bytes": 1000}),
            ),
            ev(SUBMITTING, "c", None, serde_json::json!({"name": "lh-2"})),
        ];
        let h = histories(&events);
        assert_eq!(h["a"].open, None);
        assert_eq!(h["a"].last_end.as_deref(), Some(FINISHED));
        assert_eq!(h["a"].elapsed_secs, Some(3));
        assert_eq!(h["a"].log.as_deref(), Some("L"));
        assert_eq!(
            h["b"].open.as_ref().unwrap().slurm,
            Some(JobKey::task(7, 1))
        );
        assert_eq!(h["b"].attempts, 1);
        // The controller died while sbatch ran: an intent without an id, to be looked up by name.
        let c = h["c"].open.as_ref().unwrap();
        assert_eq!((c.slurm, c.name.as_str(), c.task), (None, "lh-2", None));
    }
}
