//! What a sweep's jobs are doing (`lambda-hat status`) and stopping its SLURM jobs
//! (`lambda-hat cancel`), with every SLURM command going through the [`Cluster`] trait, so the
//! simulated cluster tests them as it tests the controller.
//!
//! Input: the plan, the store (outputs, incomplete markers, journal) and a [`Cluster`]: when the
//! journal has SLURM jobs in flight, ONE `squeue` (live state) and at most ONE `sacct` (final
//! state, elapsed, MaxRSS). Output: a [`SweepStatus`] (per-rule counts, one [`JobRow`] per job,
//! the health of the finished ones) for the CLI to print, or a [`Cancelled`] summary after one
//! `scancel` that the journal records. Works for local sweeps too: then SLURM is never asked.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::slurm::cluster::record_jobs_by_name;
use super::slurm::history::{self, JobHistory};
use super::slurm::parse::{AccountingRecord, JobKey, JobState, parse_sacct, parse_squeue};
use super::slurm::script;
use super::slurm::{Cluster, SlurmError};
use crate::plan::{JobRef, OutputStatus, Plan, Rule};
use crate::store::{Event, IncompleteMarkers, Journal, StoreHealth, StoreStatus};

/// The state of one job as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Its completion marker exists and is intact.
    Done,
    /// Done, but on another build of its target than the one in the store now: the next
    /// sweep redoes it.
    Outdated,
    /// Running: on SLURM, or as a live local worker.
    Running,
    /// Queued on SLURM.
    Pending,
    /// Its last attempt failed (or SLURM ended it unsuccessfully).
    Failed,
    /// An incomplete marker with no live owner: killed; `--rerun-incomplete` redoes it.
    Incomplete,
    /// Its completion marker exists but is damaged.
    Corrupt,
    /// Never started (or its output was removed).
    Missing,
}

impl JobStatus {
    pub const ALL: [JobStatus; 8] = [
        JobStatus::Done,
        JobStatus::Outdated,
        JobStatus::Running,
        JobStatus::Pending,
        JobStatus::Failed,
        JobStatus::Incomplete,
        JobStatus::Corrupt,
        JobStatus::Missing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Done => "done",
            JobStatus::Outdated => "outdated",
            JobStatus::Running => "running",
            JobStatus::Pending => "pending",
            JobStatus::Failed => "failed",
            JobStatus::Incomplete => "incomplete",
            JobStatus::Corrupt => "corrupt",
            JobStatus::Missing => "missing",
        }
    }
}

/// One job of the sweep.
#[derive(Debug, Serialize)]
pub struct JobRow {
    pub rule: &'static str,
    pub job: String,
    pub output: String,
    pub state: JobStatus,
    pub slurm_job_id: Option<String>,
    pub slurm_state: Option<String>,
    pub attempts: u32,
    pub elapsed_secs: Option<u64>,
    pub max_rss_bytes: Option<u64>,
    pub log: String,
    /// A pending job's reason that waiting will not clear, with what to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<String>,
}

/// Health of the finished jobs.
#[derive(Debug, Serialize)]
pub struct HealthCounts {
    pub healthy_runs: usize,
    pub unhealthy_runs: usize,
    pub targets: usize,
    pub unconverged_targets: usize,
    pub convergence_unknown: usize,
    pub unreadable: usize,
}

/// Everything `status` reports.
#[derive(Debug, Serialize)]
pub struct SweepStatus {
    pub store_root: String,
    /// Per rule, how many jobs are in each state (every state present, zeros included).
    pub rules: BTreeMap<&'static str, BTreeMap<JobStatus, usize>>,
    pub health: HealthCounts,
    /// The health line of the table output.
    #[serde(skip)]
    pub health_line: String,
    pub jobs: Vec<JobRow>,
}

/// What SLURM says about the jobs the journal knows: live state and accounting.
#[derive(Default)]
struct Live {
    queue: HashMap<JobKey, JobState>,
    /// Pending jobs whose reason waiting will not clear, with the advice for it: seen here, so
    /// that `status` names them after `--detach` too, when no controller polls and journals it.
    stuck: HashMap<JobKey, String>,
    acct: HashMap<JobKey, AccountingRecord>,
}

/// One squeue and, if asked, one sacct for `ids`. A command that cannot run or fails leaves
/// its part empty: status then falls back on the journal (SLURM is advice here, not truth).
fn ask_slurm(cluster: &mut impl Cluster, ids: &BTreeSet<u64>, with_accounting: bool) -> Live {
    let mut live = Live::default();
    if ids.is_empty() {
        return live;
    }
    let ids: Vec<u64> = ids.iter().copied().collect();
    if let Ok(out) = cluster.squeue(&ids)
        && out.success
    {
        for e in parse_squeue(&out.stdout).unwrap_or_default() {
            if let (JobState::Pending, Some(reason)) = (&e.state, &e.reason)
                && let Some(advice) = crate::exec::slurm::parse::stuck_pending_advice(reason)
            {
                live.stuck.insert(e.job, format!("{reason}: {advice}"));
            }
            live.queue.insert(e.job, e.state);
        }
    }
    if with_accounting
        && let Ok(out) = cluster.sacct(&ids)
        && out.success
    {
        for r in parse_sacct(&out.stdout).unwrap_or_default() {
            live.acct.insert(r.job, r);
        }
    }
    live
}

/// What the store says about a job's files.
#[derive(Debug, Clone, Copy, Default)]
struct Files {
    done: bool,
    outdated: bool,
    corrupt: bool,
    incomplete: bool,
    /// Its completion marker was written after its bundle was submitted, while the bundle
    /// (SLURM job) may still run its other members: finished, whatever SLURM says.
    finished_in_bundle: bool,
    /// Its own log (removed at submission) ends with the bundle script's line for a member
    /// whose worker exited non-zero: failed, while the bundle may still run the others.
    failed_in_bundle: bool,
}

/// The state of a job from what SLURM, the store and the journal say. A live SLURM job (queued
/// or running) or a live local worker wins: a forced rerun is running even while the previous
/// run's files are still there. Then a completion marker, unless an incomplete marker says a
/// later attempt died over it (its files may be half rewritten: `-n` plans it as incomplete
/// too). Then how SLURM ended an open submission, the markers, and the journal's history.
fn classify(
    files: Files,
    h: Option<&JobHistory>,
    slurm: Option<(&Option<JobState>, bool)>,
    local_alive: bool,
) -> JobStatus {
    let open_state = slurm.filter(|(_, open)| *open).map(|(state, _)| state);
    if files.finished_in_bundle && files.done {
        return JobStatus::Done;
    }
    if files.failed_in_bundle && !files.done {
        return JobStatus::Failed;
    }
    match open_state {
        Some(Some(JobState::Pending | JobState::Requeued)) => return JobStatus::Pending,
        Some(Some(s)) if !s.is_terminal() => return JobStatus::Running,
        _ => {}
    }
    // A job with an open SLURM submission has its marker because it was submitted (the
    // planner's `ReattachStatus` reads it so too): its files decide, not the marker.
    let incomplete = files.incomplete && open_state.is_none();
    if incomplete && local_alive {
        return JobStatus::Running;
    }
    if files.done && !incomplete {
        return if files.outdated {
            JobStatus::Outdated
        } else {
            JobStatus::Done
        };
    }
    if let Some(state) = open_state {
        return match state {
            Some(JobState::Completed) => JobStatus::Running, // ended; output not seen yet
            Some(_) => JobStatus::Failed,
            None => JobStatus::Pending,
        };
    }
    if incomplete {
        return JobStatus::Incomplete;
    }
    if files.corrupt {
        return JobStatus::Corrupt;
    }
    match h.and_then(|h| h.last_end.as_deref()) {
        Some(history::FAILED | history::SUBMIT_FAILED) => JobStatus::Failed,
        _ => JobStatus::Missing,
    }
}

/// What `status -v` shows of a job's latest attempt.
#[derive(Debug, PartialEq)]
struct AttemptFigures {
    state: Option<String>,
    elapsed_secs: Option<u64>,
    max_rss_bytes: Option<u64>,
}

/// A job's latest attempt as `status -v` shows it. An attempt that has ended has its own record
/// in the journal, which comes first: for a bundle member it is its worker's (its own time and
/// memory, COMPLETED when it finished), while its SLURM job, and sacct's line, are the whole
/// bundle's (FAILED when another member failed). SLURM's state and sacct's figures speak for an
/// attempt still open, and fill in what the journal lacks.
fn attempt_figures(
    h: Option<&JobHistory>,
    live_state: Option<&JobState>,
    acct: Option<&AccountingRecord>,
) -> AttemptFigures {
    let ended = h.filter(|h| h.open.is_none() && h.last_end.is_some());
    // A bundle member's SLURM job is its bundle: sacct's time and memory are not the member's
    // (one that never started showed the bundle's 6 s and 10 MiB).
    let acct = acct.filter(|_| !ended.is_some_and(|h| h.last_bundled));
    AttemptFigures {
        state: ended
            .and_then(|h| h.state.clone())
            .or_else(|| live_state.map(|s| s.to_string()))
            .or_else(|| h.and_then(|h| h.state.clone())),
        elapsed_secs: ended
            .and_then(|h| h.elapsed_secs)
            .or_else(|| acct.map(|a| a.elapsed_secs))
            .or_else(|| h.and_then(|h| h.elapsed_secs)),
        max_rss_bytes: ended
            .and_then(|h| h.max_rss_bytes)
            .or_else(|| acct.and_then(|a| a.max_rss_bytes))
            .or_else(|| h.and_then(|h| h.max_rss_bytes)),
    }
}

/// Whether the file at `path` was last written at or after `since` (RFC 3339): a bundle member's
/// marker written in this submission, not one a forced rerun is about to replace.
fn written_since(path: &std::path::Path, since: &str) -> bool {
    let Ok(since) = chrono::DateTime::parse_from_rfc3339(since) else {
        return false;
    };
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t) >= since)
        .unwrap_or(false)
}

/// Submissions whose `sbatch` was cut off (the controller died while it ran: the journal has
/// `submitting` and no `submitted`) may be on SLURM all the same: ONE `squeue --name` looks
/// for them by their unique job names, as a controller's reattach does, and fills in the SLURM
/// id of those it finds, so `status` shows them running and `cancel` stops them. Nothing is
/// asked when there are none; a squeue that fails leaves them unknown.
fn find_cut_off_submissions(hist: &mut HashMap<String, JobHistory>, cluster: &mut impl Cluster) {
    let names: BTreeSet<String> = hist
        .values()
        .filter_map(|h| h.open.as_ref())
        .filter(|o| o.slurm.is_none() && !o.name.is_empty())
        .map(|o| o.name.clone())
        .collect();
    if names.is_empty() {
        return;
    }
    let names: Vec<String> = names.into_iter().collect();
    let Ok(out) = cluster.squeue_names(&names) else {
        return;
    };
    if !out.success {
        return;
    }
    let mut found = HashMap::new();
    record_jobs_by_name(&out.stdout, &mut found);
    for open in hist.values_mut().filter_map(|h| h.open.as_mut()) {
        if open.slurm.is_none() {
            open.slurm = found.get(&(open.name.clone(), open.task)).copied();
        }
    }
}

impl SweepStatus {
    /// The status of every job of `plan`. SLURM is asked (through `cluster`) only about jobs
    /// the journal has in flight, or, when `detailed`, also about finished ones (for their
    /// elapsed time and MaxRSS).
    pub fn observe(
        plan: &Plan,
        detailed: bool,
        cluster: &mut impl Cluster,
    ) -> std::io::Result<SweepStatus> {
        let status = StoreStatus::scan(plan);
        let events = Journal::read_all(&plan.store_root)?;
        let mut hist = history::histories(&events);
        find_cut_off_submissions(&mut hist, cluster);
        let markers = IncompleteMarkers::new(&plan.store_root);
        let mut ids = BTreeSet::new();
        let mut any_open = false;
        for job in plan.jobs() {
            if let Some(h) = hist.get(&plan.job_key(job)) {
                if let Some(k) = h.open.as_ref().and_then(|o| o.slurm) {
                    ids.insert(k.job_id);
                    any_open = true;
                } else if detailed
                    && let Some(k) = h.slurm_id.as_deref().and_then(|s| s.parse::<JobKey>().ok())
                {
                    ids.insert(k.job_id);
                }
            }
        }
        let live = if any_open || detailed {
            ask_slurm(cluster, &ids, true)
        } else {
            Live::default()
        };
        let mut rules: BTreeMap<&'static str, BTreeMap<JobStatus, usize>> = Rule::ALL
            .iter()
            .map(|r| (r.name(), JobStatus::ALL.iter().map(|s| (*s, 0)).collect()))
            .collect();
        let mut jobs = Vec::new();
        for job in plan.jobs() {
            let key = plan.job_key(job);
            let h = hist.get(&key);
            let open = h.and_then(|h| h.open.as_ref());
            let slurm_key = open
                .and_then(|o| o.slurm)
                .or_else(|| h.and_then(|h| h.slurm_id.as_deref()?.parse().ok()));
            let acct = slurm_key.and_then(|k| live.acct.get(&k));
            let slurm_state = slurm_key
                .and_then(|k| live.queue.get(&k).cloned())
                .or_else(|| acct.map(|a| a.state.clone()));
            let incomplete = status.incomplete(plan, job);
            let files = Files {
                done: status.done(plan, job),
                outdated: status.outdated(plan, job),
                corrupt: status.corrupt(plan, job),
                incomplete,
                finished_in_bundle: open
                    .is_some_and(|o| o.bundled && written_since(&plan.output(job), &o.since)),
                failed_in_bundle: open.is_some_and(|o| o.bundled)
                    && script::log_tail(&plan.log_path(job))
                        .is_some_and(|t| script::bundle_member_exit_status(&t).is_some()),
            };
            let state = classify(
                files,
                h,
                slurm_key.map(|_| (&slurm_state, open.is_some())),
                incomplete && markers.owner_alive(&key),
            );
            if let Some(count) = rules
                .get_mut(job.rule().name())
                .and_then(|m| m.get_mut(&state))
            {
                *count += 1;
            }
            let figures = attempt_figures(h, slurm_state.as_ref(), acct);
            jobs.push(JobRow {
                rule: job.rule().name(),
                output: plan.output(job).display().to_string(),
                state,
                slurm_job_id: slurm_key.map(|k| k.to_string()),
                slurm_state: figures.state,
                attempts: h.map_or(0, |h| h.attempts),
                elapsed_secs: figures.elapsed_secs,
                max_rss_bytes: figures.max_rss_bytes,
                log: plan.log_path(job).display().to_string(),
                stuck: slurm_key
                    .and_then(|k| live.stuck.get(&k).cloned())
                    .or_else(|| {
                        h.and_then(|h| h.stuck.as_ref())
                            .map(|(reason, advice)| format!("{reason}: {advice}"))
                    })
                    .filter(|_| state == JobStatus::Pending),
                job: key,
            });
        }
        let health = StoreHealth::scan(plan, &status);
        Ok(SweepStatus {
            store_root: plan.store_root.display().to_string(),
            rules,
            health: HealthCounts {
                healthy_runs: health.healthy_runs(),
                unhealthy_runs: health.unhealthy.len(),
                targets: health.targets,
                unconverged_targets: health.unconverged.len(),
                convergence_unknown: health.convergence_unknown,
                unreadable: health.unreadable.len(),
            },
            health_line: health.status_line(),
            jobs,
        })
    }
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The SLURM job ids passed to scancel (arrays once), sorted.
    pub slurm_ids: Vec<String>,
    /// How many lambda-hat jobs they held, finished ones included.
    pub jobs: usize,
    /// Of those, how many had finished (whole outputs): recorded as finished, not cancelled.
    pub kept: usize,
}

/// One `scancel` for every SLURM job of the sweep the journal has in flight, each recorded in
/// the journal as cancelled, except those whose outputs exist: they finished (perhaps
/// while no controller watched, after `--detach`) and are recorded as finished. A cancelled job
/// that never started (SLURM never created its log) has its incomplete marker cleared: it left
/// no partial files, so the next sweep simply runs it. `Ok` with no ids when nothing is in
/// flight.
pub fn cancel(plan: &Plan, cluster: &mut impl Cluster) -> Result<Cancelled, SlurmError> {
    let journal_err = |source| SlurmError::Io {
        what: "the journal",
        path: Journal::path_in(&plan.store_root),
        source,
    };
    let events = Journal::read_all(&plan.store_root).map_err(journal_err)?;
    let mut hist = history::histories(&events);
    find_cut_off_submissions(&mut hist, cluster);
    let mut open: Vec<(String, JobRef, JobKey)> = Vec::new();
    for job in plan.jobs() {
        let key = plan.job_key(job);
        if let Some(k) = hist
            .get(&key)
            .and_then(|h| h.open.as_ref())
            .and_then(|o| o.slurm)
        {
            open.push((key, job, k));
        }
    }
    if open.is_empty() {
        return Ok(Cancelled {
            slurm_ids: Vec::new(),
            jobs: 0,
            kept: 0,
        });
    }
    // Only SLURM jobs with a job still to finish: one whose jobs all wrote their outputs has
    // nothing to cancel (and counting it said "Cancelled 8" where 4 had completed).
    let ids: BTreeSet<String> = open
        .iter()
        .filter(|(_, job, _)| !plan.output(*job).is_file())
        .map(|(_, _, k)| k.job_id.to_string())
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    if !ids.is_empty() {
        let out = cluster
            .scancel(&ids)
            .map_err(|source| SlurmError::Program {
                program: "scancel",
                source,
            })?;
        if !out.success {
            return Err(SlurmError::Refused {
                command: format!("scancel {}", ids.join(" ")),
                stderr: out.stderr.trim().to_string(),
            });
        }
    }
    let mut journal = Journal::open(&plan.store_root).map_err(journal_err)?;
    let markers = IncompleteMarkers::new(&plan.store_root);
    let mut kept = 0;
    for (key, job, k) in &open {
        let rule = job.rule().name();
        // `IncompleteMarkers::mark` removed any earlier output at submission: an output is this
        // submission's (if it is damaged, planning says so).
        let event = if plan.output(*job).is_file() {
            kept += 1;
            let _ = markers.clear(key);
            Event {
                state: Some("COMPLETED".into()),
                detail: Some(serde_json::json!({
                    "reason": "finished before lambda-hat cancel",
                    crate::store::integrity::OUTPUT_HASH_KEY:
                        crate::store::integrity::output_hash(&plan.output(*job)),
                })),
                ..Event::new(history::FINISHED, key, rule)
            }
        } else {
            if crate::exec::slurm::script::never_started(&plan.log_path(*job)) {
                let _ = markers.clear(key);
            }
            Event {
                detail: Some(serde_json::json!({"reason": history::CANCEL_COMMAND_REASON})),
                ..Event::new(history::CANCELLED, key, rule)
            }
        };
        journal
            .append(&Event {
                executor: Some("slurm".into()),
                slurm_job_id: Some(k.to_string()),
                ..event
            })
            .map_err(journal_err)?;
    }
    Ok(Cancelled {
        slurm_ids: ids,
        jobs: open.len(),
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(done: bool, outdated: bool, corrupt: bool, incomplete: bool) -> Files {
        Files {
            done,
            outdated,
            corrupt,
            incomplete,
            finished_in_bundle: false,
            failed_in_bundle: false,
        }
    }

    #[test]
    fn a_bundle_member_that_finished_is_done_while_its_bundle_runs() {
        let running = Some(JobState::Running);
        // Its marker written in this submission: done, whatever SLURM says of the bundle.
        let finished = Files {
            finished_in_bundle: true,
            ..files(true, false, false, true)
        };
        assert_eq!(
            classify(finished, None, Some((&running, true)), false),
            JobStatus::Done
        );
        // Files from before (a forced rerun waiting its turn in the bundle): running.
        let waiting = files(true, false, false, true);
        assert_eq!(
            classify(waiting, None, Some((&running, true)), false),
            JobStatus::Running
        );
        // Its worker exited non-zero (the bundle script's line ends its log): failed, while
        // the bundle runs its other members.
        let failed = Files {
            failed_in_bundle: true,
            ..files(false, false, false, true)
        };
        assert_eq!(
            classify(failed, None, Some((&running, true)), false),
            JobStatus::Failed
        );
    }

    #[test]
    fn an_ended_attempt_shows_its_own_record_and_an_open_one_what_slurm_says() {
        // sacct's line of the bundle: FAILED (another member failed), 12 s, 10 MiB.
        let bundle = AccountingRecord {
            job: JobKey::job(3275),
            state: JobState::Failed,
            cancelled_by: None,
            exit_code: 1,
            signal: 0,
            elapsed_secs: 12,
            max_rss_bytes: Some(10 << 20),
            req_mem_bytes: None,
        };
        // The member finished: the journal holds its worker's 3 s and 15 MiB.
        let finished = JobHistory {
            slurm_id: Some("3275".into()),
            attempts: 1,
            last_end: Some(history::FINISHED.into()),
            state: Some("COMPLETED".into()),
            elapsed_secs: Some(3),
            max_rss_bytes: Some(15 << 20),
            ..Default::default()
        };
        let failed = Some(JobState::Failed);
        assert_eq!(
            attempt_figures(Some(&finished), failed.as_ref(), Some(&bundle)),
            AttemptFigures {
                state: Some("COMPLETED".into()),
                elapsed_secs: Some(3),
                max_rss_bytes: Some(15 << 20),
            }
        );
        // An ended attempt without figures of its own (an older journal) takes sacct's.
        let bare = JobHistory {
            elapsed_secs: None,
            max_rss_bytes: None,
            ..finished.clone()
        };
        let figures = attempt_figures(Some(&bare), failed.as_ref(), Some(&bundle));
        assert_eq!(figures.state.as_deref(), Some("COMPLETED"));
        assert_eq!(
            (figures.elapsed_secs, figures.max_rss_bytes),
            (Some(12), Some(10 << 20))
        );
        // The same, for a member of a bundle (cancelled before it started): the bundle's
        // figures are not its own, so it has none.
        let member = JobHistory {
            last_bundled: true,
            ..bare.clone()
        };
        let figures = attempt_figures(Some(&member), failed.as_ref(), Some(&bundle));
        assert_eq!((figures.elapsed_secs, figures.max_rss_bytes), (None, None));
        // Still open (queued again after an earlier attempt ended): SLURM speaks for it.
        let open = JobHistory {
            open: Some(history::Open {
                name: "lh-x".into(),
                slurm: Some(JobKey::job(3280)),
                task: None,
                since: String::new(),
                resources: None,
                bundled: false,
                attempt: Some(2),
            }),
            ..finished.clone()
        };
        let running = Some(JobState::Running);
        let figures = attempt_figures(Some(&open), running.as_ref(), None);
        assert_eq!(figures.state.as_deref(), Some("RUNNING"));
        assert_eq!(
            figures.elapsed_secs,
            Some(3),
            "the journal's, for want of sacct's"
        );
    }

    #[test]
    fn a_marker_counts_as_written_since_a_time_by_its_modification_time() {
        let dir = std::env::temp_dir().join(format!("lh-written-since-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("analysis.json");
        std::fs::write(&marker, "{}").unwrap();
        assert!(written_since(&marker, "2020-01-01T00:00:00+00:00"));
        assert!(!written_since(&marker, "2999-01-01T00:00:00Z"));
        assert!(!written_since(&marker, "not a time"));
        assert!(!written_since(
            &dir.join("absent.json"),
            "2020-01-01T00:00:00Z"
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rerun_over_finished_files_is_running_or_incomplete_not_done() {
        let finished = files(true, false, false, false);
        let rerun = files(true, false, false, true);
        assert_eq!(classify(finished, None, None, false), JobStatus::Done);
        // A local worker redoing it (`-R`): running while the old files are still there.
        assert_eq!(classify(rerun, None, None, true), JobStatus::Running);
        // The rerun died: what `-n` says too.
        assert_eq!(classify(rerun, None, None, false), JobStatus::Incomplete);
        // On SLURM: what squeue says of the open submission.
        let pending = Some(JobState::Pending);
        let running = Some(JobState::Running);
        assert_eq!(
            classify(finished, None, Some((&pending, true)), false),
            JobStatus::Pending
        );
        assert_eq!(
            classify(rerun, None, Some((&running, true)), false),
            JobStatus::Running
        );
    }

    #[test]
    fn finished_files_win_over_what_slurm_no_longer_knows() {
        // After --detach: the output is there, the marker of the submission too.
        let detached = files(true, false, false, true);
        let completed = Some(JobState::Completed);
        assert_eq!(
            classify(detached, None, Some((&completed, true)), false),
            JobStatus::Done
        );
        let finished = files(true, false, false, false);
        assert_eq!(
            classify(finished, None, Some((&None, true)), false),
            JobStatus::Done
        );
        let completed = Some(JobState::Completed);
        assert_eq!(
            classify(finished, None, Some((&completed, true)), false),
            JobStatus::Done
        );
        // Ended, output not seen yet / failed, without files.
        let none = files(false, false, false, false);
        assert_eq!(
            classify(none, None, Some((&completed, true)), false),
            JobStatus::Running
        );
        let failed = Some(JobState::Failed);
        assert_eq!(
            classify(none, None, Some((&failed, true)), false),
            JobStatus::Failed
        );
        assert_eq!(classify(none, None, None, false), JobStatus::Missing);
    }

    #[test]
    fn a_run_of_an_earlier_target_build_is_outdated_and_damage_is_corrupt() {
        assert_eq!(
            classify(files(true, true, false, false), None, None, false),
            JobStatus::Outdated
        );
        assert_eq!(
            classify(files(false, false, true, false), None, None, false),
            JobStatus::Corrupt
        );
    }
}
