//! The SLURM controller: the state machine that submits a schedule's jobs, follows them and
//! decides about retries, generic over the [`Cluster`] it talks to.
//!
//! Input: the plan, the schedule (topological order), [`SlurmOptions`] and a cluster. Output:
//! an [`Outcome`] (plus whether it detached). Side effects: spec.json files, incomplete
//! markers, scripts under `.lambda-hat/slurm/`, the journal, and SLURM commands via the cluster.
//!
//! Each job moves through
//!
//! ```text
//!  Waiting ──sbatch──▶ Queued ──squeue/sacct: COMPLETED──▶ Verifying ──marker──▶ Done
//!     ▲                  │                                     │ (no marker after latency-wait)
//!     └──── retry ◀──────┴── FAILED/TIMEOUT/OOM/NODE_FAIL ◀─────┘
//!                        └── retries used up ─▶ Failed ─▶ children: cancelled, Skipped
//! ```
//!
//! The members of a bundle (`bundle-size`, `super::bundle`) share one SLURM job but move
//! through these states each on its own: whatever state the bundle ends in, each member goes to
//! Verifying and is done when its own marker appears; a member without one is judged by the
//! bundle's state and retried alone. A bundle may start with its target's build: if that build
//! leaves no target, the bundle's runs never ran, so they go back to Waiting for the build's
//! next attempt without counting a failure (or are skipped when the build failed for good).
//!
//! Rules the loop keeps:
//! - the journal line is written and flushed BEFORE the action it records (`submitting` before
//!   `sbatch`, so a controller killed mid-submit can find the job by its unique name later);
//! - at most `jobs` SLURM jobs (array tasks counted one by one, a bundle once) are queued or
//!   running;
//! - a child depends (`afterok`) only on a parent that the last poll (or our own `sbatch` a
//!   moment ago) showed in the queue: SLURM treats a dependency on a purged job as satisfied;
//! - one `squeue` and at most one `sacct` (or `scontrol`) per cycle, whatever the job count;
//! - a transient SLURM error never abandons jobs already queued: the loop backs off and goes on.
//!
//! The controller is one struct, [`Controller`], whose methods are split by job over these
//! files, each an `impl` block of its own:
//!
//! - `attach`: takes over the submissions an earlier run left open; `--detach` ends the run;
//! - `submit`: groups the jobs that may go now and submits them with one `sbatch` per group;
//! - `reconcile`: one poll cycle (squeue, sacct or scontrol) and the check for outputs;
//! - `outcome`: what a finished attempt means: done, retried, failed for good or skipped;
//! - `cancel`: `scancel` for children of a failed or retried parent, Ctrl-C, and the end of
//!   a run whose jobs `lambda-hat cancel` cancelled from another terminal.
//!
//! This file holds the state (jobs, journal, options), [`Controller::new`], the main loop
//! [`Controller::run`] and the small helpers every part uses.

mod attach;
mod cancel;
mod outcome;
mod reconcile;
mod submit;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::flags::sbatch_flags;
use super::parse::JobKey;
use super::poll::{Final, Interval};
use super::retry::Backoff;
use super::{SlurmError, SlurmOptions};
use crate::exec::Outcome;
use crate::exec::progress::Progress;
use crate::exec::resources::ResourceMap;
use crate::plan::{JobRef, Plan, Rule, Schedule};
use crate::store::{Event, IncompleteMarkers, Journal};

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Waiting,
    Queued,
    Verifying,
    Done,
    Failed,
    Skipped,
}

struct Job {
    job: JobRef,
    key: String,
    st: St,
    resources: ResourceMap,
    /// Failed attempts in this invocation (bounded by `--retries`).
    failures: u32,
    /// The current SLURM submission.
    slurm: Option<JobKey>,
    /// The last poll (or our own sbatch) saw it queued or running: children may depend on it.
    in_flight: bool,
    unknown_since: Option<Instant>,
    /// The ending of the current submission when the last poll saw it end CANCELLED with no
    /// `lambda-hat cancel` line for it: judged on the next poll (or when the run stops), after
    /// the journal is read again. `lambda-hat cancel` runs scancel before it writes its lines,
    /// so a poll in between would otherwise take its jobs as failed.
    cancel_unexplained: Option<Final>,
    verify_deadline: Option<Instant>,
    ended: Option<Final>,
    /// When the current submission went out (its wall time when sacct has no elapsed yet).
    submitted_at: Option<Instant>,
    /// `logs/<rule>/<key>.log`: SLURM's output file, or for array tasks a link to it; a bundle
    /// member's worker writes it directly.
    log: PathBuf,
    /// The bundle's own SLURM log when the current attempt runs in a bundle of several jobs
    /// (where SLURM writes why it killed the bundle); `None` for a job on its own.
    bundle_log: Option<PathBuf>,
    /// Expected seconds of the job, for `bundle-size: auto` (`bundle::expected_secs`,
    /// `bundle::expected_build_secs`).
    expected_secs: f64,
}

/// How the controller ended.
#[derive(Debug, Default)]
pub struct SlurmOutcome {
    pub outcome: Outcome,
    /// `--detach`: how many jobs were left queued on SLURM and how many wait for a later run.
    pub detached: Option<(usize, usize)>,
}

pub struct Controller<'a, C: Cluster> {
    plan: &'a Plan,
    opts: &'a SlurmOptions,
    cluster: &'a mut C,
    jobs: Vec<Job>,
    /// Target index → slot in `jobs` (targets scheduled in this run).
    target_slot: HashMap<u32, usize>,
    journal: Journal,
    markers: IncompleteMarkers,
    slurm_dir: PathBuf,
    flags: BTreeMap<Rule, Vec<(String, String)>>,
    outcome: Outcome,
    progress: Progress,
    stop_launching: bool,
    accounting: bool,
    query_backoff: Backoff,
    submit_backoff: Backoff,
    submit_after: Option<Instant>,
    interval: Interval,
    /// Parents whose id sbatch refused as a dependency; not depended on until the next poll.
    no_dependency: BTreeSet<usize>,
    /// Jobs to scancel at the end of the cycle (one call for all).
    to_cancel: Vec<usize>,
    cwd: PathBuf,
    serial: u64,
    /// (SLURM job id, pending reason) already reported as stuck, so each is said once.
    reported_stuck: BTreeSet<(u64, String)>,
    /// What `lambda-hat cancel` recorded in the journal, read when a poll first sees a job
    /// ended CANCELLED; `None` until then.
    command_cancels: Option<cancel::CommandCancels>,
    /// When this run started, less a minute (a `lambda-hat cancel` that ran while this run
    /// planned, before it reattached to the jobs): older journal lines are not about its
    /// submissions.
    started_at: chrono::DateTime<chrono::Utc>,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SlurmError + use<> {
    let path = path.to_path_buf();
    move |source| SlurmError::Io { what, path, source }
}

impl<'a, C: Cluster> Controller<'a, C> {
    pub fn new(
        plan: &'a Plan,
        schedule: &Schedule,
        opts: &'a SlurmOptions,
        cluster: &'a mut C,
    ) -> Result<Self, SlurmError> {
        let mut flags = BTreeMap::new();
        for rule in Rule::ALL {
            let res = opts.resources.get(&rule).cloned().unwrap_or_default();
            flags.insert(rule, sbatch_flags(rule, &res, &opts.slurm_extra)?);
        }
        opts.templates.check()?;
        let cwd =
            std::env::current_dir().map_err(io_err("the working directory", Path::new(".")))?;
        let store = if plan.store_root.is_absolute() {
            plan.store_root.clone()
        } else {
            cwd.join(&plan.store_root)
        };
        let slurm_dir = crate::store::private_dir(&store).join("slurm");
        super::script::check_log_dir(&slurm_dir.join("logs"))?;
        std::fs::create_dir_all(slurm_dir.join("logs"))
            .map_err(io_err("the SLURM script directory", &slurm_dir))?;
        let journal = Journal::open(&plan.store_root)
            .map_err(io_err("the journal", &Journal::path_in(&plan.store_root)))?;
        let mut target_slot = HashMap::new();
        let jobs: Vec<Job> = schedule
            .jobs
            .iter()
            .enumerate()
            .map(|(i, (job, _))| {
                if let JobRef::Target(t) = job {
                    target_slot.insert(*t, i);
                }
                Job {
                    job: *job,
                    key: plan.job_key(*job),
                    st: St::Waiting,
                    resources: opts.resources.get(&job.rule()).cloned().unwrap_or_default(),
                    failures: 0,
                    slurm: None,
                    in_flight: false,
                    unknown_since: None,
                    cancel_unexplained: None,
                    verify_deadline: None,
                    ended: None,
                    submitted_at: None,
                    log: cwd.join(plan.log_path(*job)),
                    bundle_log: None,
                    expected_secs: super::bundle::expected_job_secs(plan, *job),
                }
            })
            .collect();
        let progress = Progress::new(jobs.len(), opts.quiet);
        Ok(Controller {
            plan,
            opts,
            cluster,
            jobs,
            target_slot,
            journal,
            markers: IncompleteMarkers::new(&plan.store_root),
            slurm_dir,
            flags,
            outcome: Outcome::default(),
            progress,
            reported_stuck: BTreeSet::new(),
            command_cancels: None,
            started_at: chrono::Utc::now() - chrono::TimeDelta::seconds(60),
            stop_launching: false,
            accounting: true,
            query_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            submit_backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(60)),
            submit_after: None,
            interval: Interval::new(opts.poll_min, opts.poll_max),
            no_dependency: BTreeSet::new(),
            to_cancel: Vec::new(),
            cwd,
            serial: 0,
        })
    }

    /// Job `i`'s benchmark path in the store (crate::store::benchmark).
    fn benchmark_path(&self, i: usize) -> PathBuf {
        crate::store::benchmark::path(
            &self.plan.store_root,
            self.jobs[i].job.rule().name(),
            &self.jobs[i].key,
        )
    }

    fn abs(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.cwd.join(p)
        }
    }

    fn append(&mut self, event: Event) -> Result<(), SlurmError> {
        self.journal
            .append(&Event {
                executor: Some("slurm".into()),
                ..event
            })
            .map_err(|source| SlurmError::Io {
                what: "the journal",
                path: self.journal.path().to_path_buf(),
                source,
            })
    }

    fn event(&self, i: usize, name: &str) -> Event {
        let j = &self.jobs[i];
        Event {
            slurm_job_id: j.slurm.map(|k| k.to_string()),
            ..Event::new(name, &j.key, j.job.rule().name())
        }
    }

    fn describe(&self, i: usize) -> String {
        let j = &self.jobs[i];
        format!(
            "{} {}",
            j.job.rule().name(),
            self.plan.output(j.job).display()
        )
    }

    /// Runs the whole schedule.
    pub fn run(mut self) -> Result<SlurmOutcome, SlurmError> {
        let reattached = self.reattach()?;
        let mut changed = true;
        if reattached > 0 {
            self.progress.message(&format!(
                "reattached to {reattached} SLURM job(s) of an earlier run"
            ));
            changed = self.poll()?;
            self.verify()?;
        }
        loop {
            if self.cluster.interrupts() > 0 {
                self.interrupt()?;
                break;
            }
            // Again while something went: children of a target submitted a moment ago can
            // go right away, with afterok on it.
            while !self.stop_launching && self.cluster.interrupts() == 0 && self.submit_ready()? {
                changed = true;
            }
            if self.cluster.interrupts() > 0 {
                continue; // cancels what went out (above), also with --detach
            }
            self.cancel_pending()?;
            // --detach: exit once everything that can go is submitted (after waiting out a
            // transient sbatch failure, so a detached sweep is not left half-submitted).
            if self.opts.detach && self.submit_after.is_none() {
                return self.detach();
            }
            if !self
                .jobs
                .iter()
                .any(|j| matches!(j.st, St::Queued | St::Verifying))
            {
                if self.submit_after.is_some() && self.jobs.iter().any(|j| j.st == St::Waiting) {
                    // Only waiting for sbatch to work again.
                    let wait = self
                        .submit_after
                        .map(|t| t.saturating_duration_since(self.cluster.now()))
                        .unwrap_or_default();
                    self.cluster.sleep(wait);
                    continue;
                }
                break;
            }
            let wait = self.interval.next(changed);
            self.cluster.sleep(wait);
            if self.cluster.interrupts() > 0 {
                continue;
            }
            changed = self.poll()?;
            changed |= self.verify()?;
            self.cancel_pending()?;
            if self.outcome.cancelled_by_command {
                self.stop_after_cancel_command()?;
                break;
            }
        }
        for i in 0..self.jobs.len() {
            if self.jobs[i].st == St::Waiting {
                self.outcome.skipped += 1;
            }
        }
        self.progress.finish();
        Ok(SlurmOutcome {
            outcome: self.outcome,
            detached: None,
        })
    }
}

/// `logs/<rule>/<key>.log` → SLURM's per-task file of an array (replacing any earlier log).
fn link_log(link: &Path, target: &Path) {
    let _ = std::fs::remove_file(link);
    if let Some(dir) = link.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    #[cfg(unix)]
    {
        let _ = std::os::unix::fs::symlink(target, link);
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}
