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
//! Rules the loop keeps:
//! - the journal line is written and flushed BEFORE the action it records (`submitting` before
//!   `sbatch`, so a controller killed mid-submit can find the job by its unique name later);
//! - at most `jobs` SLURM jobs (array tasks counted one by one) are queued or running;
//! - a child depends (`afterok`) only on a parent that the last poll (or our own `sbatch` a
//!   moment ago) showed in the queue: SLURM treats a dependency on a purged job as satisfied;
//! - one `squeue` and at most one `sacct` (or `scontrol`) per cycle, whatever the job count;
//! - a transient SLURM error never abandons jobs already queued: the loop backs off and goes on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, parse_id_name};
use super::flags::sbatch_flags;
use super::history::{self, Open};
use super::parse::{
    JobKey, JobState, SubmitError, classify_query_failure, classify_sbatch_failure, parse_job_ids,
    parse_sacct, parse_sbatch_parsable, parse_scontrol_show_job, parse_squeue,
};
use super::poll::{Final, Interval, Seen, merge, needs_accounting};
use super::retry::{Backoff, Ending, Verdict, decide};
use super::script::{self, Body, Script};
use super::{SlurmError, SlurmOptions};
use crate::exec::progress::Progress;
use crate::exec::resources::ResourceMap;
use crate::exec::{Failure, Outcome};
use crate::plan::{JobRef, Plan, Rule, Schedule};
use crate::store::{Event, IncompleteMarkers, Journal};
use crate::worker::spec::write_spec;

/// A job SLURM has not heard of for this long (neither squeue nor sacct) is judged by its
/// output file alone; sacct's lag is 1-2 s, so this only matters without accounting.
const UNKNOWN_GRACE: Duration = Duration::from_secs(30);
/// Give up submitting after this many transient sbatch failures in a row (~10 minutes).
const MAX_SUBMIT_FAILURES: u32 = 14;

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
    verify_deadline: Option<Instant>,
    ended: Option<Final>,
    /// When the current submission went out (its wall time when sacct has no elapsed yet).
    submitted_at: Option<Instant>,
    /// `logs/<rule>/<key>.log`: SLURM's output file, or for array tasks a link to it.
    log: PathBuf,
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
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SlurmError + use<> {
    let path = path.to_path_buf();
    move |source| SlurmError::Io { what, path, source }
}

/// The last 8 KiB of a log: SLURM appends its kill messages at the end.
fn log_tail(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `sacct -S` wants local time without zone; go back a minute for clock skew.
fn sacct_since(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            (t.with_timezone(&chrono::Local) - chrono::Duration::minutes(1))
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| "now-7days".into())
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
        let slurm_dir = store.join(".lambda-hat").join("slurm");
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
                    verify_deadline: None,
                    ended: None,
                    submitted_at: None,
                    log: cwd.join(plan.log_path(*job)),
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
            while !self.stop_launching && self.submit_ready()? {
                changed = true;
            }
            self.cancel_pending()?;
            // --detach: exit once everything that can go is submitted (after waiting out a
            // transient sbatch failure, so a detached sweep is not left half-submitted).
            if self.opts.detach && self.submit_after.is_none() {
                return Ok(self.detach());
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

    fn detach(self) -> SlurmOutcome {
        let queued = self.jobs.iter().filter(|j| j.st == St::Queued).count();
        let waiting = self
            .jobs
            .iter()
            .filter(|j| matches!(j.st, St::Waiting | St::Verifying))
            .count();
        self.progress.finish();
        SlurmOutcome {
            outcome: self.outcome,
            detached: Some((queued, waiting)),
        }
    }

    // -------------------------------------------------------------------------------------
    // Reattach
    // -------------------------------------------------------------------------------------

    /// Takes over the submissions the journal leaves open; returns how many.
    fn reattach(&mut self) -> Result<usize, SlurmError> {
        let events = Journal::read_all(&self.plan.store_root).map_err(io_err(
            "the journal",
            &Journal::path_in(&self.plan.store_root),
        ))?;
        let hist = history::histories(&events);
        let mut dangling: Vec<(usize, Open)> = Vec::new();
        let mut count = 0;
        for i in 0..self.jobs.len() {
            let Some(open) = hist.get(&self.jobs[i].key).and_then(|h| h.open.clone()) else {
                continue;
            };
            if let Some(res) = &open.resources {
                self.jobs[i].resources = res.clone();
            }
            match open.slurm {
                Some(k) => {
                    self.adopt(i, k, &open);
                    count += 1;
                }
                None => dangling.push((i, open)),
            }
        }
        if dangling.is_empty() {
            return Ok(count);
        }
        // The controller died while sbatch ran: find the submissions by their unique names.
        let names: Vec<String> = dangling
            .iter()
            .map(|(_, o)| o.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found: HashMap<(String, Option<u32>), JobKey> = HashMap::new();
        let record = |text: &str, found: &mut HashMap<(String, Option<u32>), JobKey>| {
            for (id, name) in parse_id_name(text) {
                for key in parse_job_ids(&id).unwrap_or_default() {
                    found.insert((name.clone(), key.array_task), key);
                }
            }
        };
        if let Ok(out) = self.cluster.squeue_names(&names)
            && out.success
        {
            record(&out.stdout, &mut found);
        }
        let since = dangling
            .iter()
            .map(|(_, o)| o.since.clone())
            .min()
            .unwrap_or_default();
        if dangling
            .iter()
            .any(|(_, o)| !found.contains_key(&(o.name.clone(), o.task)))
            && let Ok(out) = self.cluster.sacct_names(&names, &sacct_since(&since))
            && out.success
        {
            record(&out.stdout, &mut found);
        }
        for (i, open) in dangling {
            match found.get(&(open.name.clone(), open.task)) {
                Some(k) => {
                    self.jobs[i].slurm = Some(*k);
                    let mut ev = self.event(i, history::SUBMITTED);
                    ev.detail = Some(serde_json::json!({"name": open.name, "recovered": true}));
                    self.append(ev)?;
                    self.adopt(i, *k, &open);
                    count += 1;
                }
                None => {
                    let mut ev = self.event(i, history::SUBMIT_FAILED);
                    ev.detail = Some(serde_json::json!({
                        "reason": "not found on SLURM: the controller stopped before sbatch ran",
                        "name": open.name,
                    }));
                    self.append(ev)?;
                }
            }
        }
        Ok(count)
    }

    fn adopt(&mut self, i: usize, key: JobKey, open: &Open) {
        let j = &mut self.jobs[i];
        j.st = St::Queued;
        j.slurm = Some(key);
        j.in_flight = false; // until a poll shows it in the queue
        if let (Some(_), Some(task)) = (open.task, key.array_task) {
            // The earlier controller may have died before linking the log.
            let target = self
                .slurm_dir
                .join("logs")
                .join(format!("{}_{task}.log", key.job_id));
            link_log(&j.log, &target);
        }
    }

    // -------------------------------------------------------------------------------------
    // Submission
    // -------------------------------------------------------------------------------------

    fn queued(&self) -> usize {
        self.jobs.iter().filter(|j| j.st == St::Queued).count()
    }

    fn parent_slot(&self, i: usize) -> Option<usize> {
        match self.plan.parent(self.jobs[i].job) {
            Some(JobRef::Target(t)) => self.target_slot.get(&t).copied(),
            _ => None,
        }
    }

    /// Submits every job that may go now, within the `jobs` budget. Returns whether any went.
    fn submit_ready(&mut self) -> Result<bool, SlurmError> {
        if let Some(t) = self.submit_after {
            if self.cluster.now() < t {
                return Ok(false);
            }
            self.submit_after = None;
        }
        let mut budget = self.opts.jobs.saturating_sub(self.queued());
        // Groups of jobs that go out as one sbatch: same rule, same parent, same resources.
        let mut groups: Vec<(Option<usize>, Vec<usize>)> = Vec::new();
        let mut index: HashMap<(Rule, Option<usize>, String), usize> = HashMap::new();
        for i in 0..self.jobs.len() {
            if budget == 0 {
                break;
            }
            if self.jobs[i].st != St::Waiting {
                continue;
            }
            let parent = self.parent_slot(i);
            let dep = match parent.map(|p| (p, self.jobs[p].st)) {
                None | Some((_, St::Done)) => None,
                Some((_, St::Failed | St::Skipped)) => {
                    self.skip(i, "the job it depends on failed")?;
                    continue;
                }
                Some((p, St::Queued))
                    if self.jobs[p].in_flight && !self.no_dependency.contains(&p) =>
                {
                    Some(p)
                }
                _ => continue,
            };
            let rule = self.jobs[i].job.rule();
            let arrays = self.opts.use_arrays && rule == Rule::RunSampler;
            let res_key = serde_json::to_string(&self.jobs[i].resources).unwrap_or_default();
            let group_key = (rule, parent, res_key);
            match index.get(&group_key) {
                Some(&g) if arrays && groups[g].1.len() < self.opts.max_array_size.max(1) => {
                    groups[g].1.push(i)
                }
                _ => {
                    index.insert(group_key, groups.len());
                    groups.push((dep, vec![i]));
                }
            }
            budget -= 1;
        }
        let mut any = false;
        for (dep, slots) in groups {
            if self.submit_after.is_some() || self.stop_launching {
                break;
            }
            any |= self.submit(&slots, dep)?;
        }
        Ok(any)
    }

    fn token(&mut self) -> String {
        self.serial += 1;
        let seed = format!(
            "{}:{}:{:?}",
            std::process::id(),
            self.serial,
            std::time::SystemTime::now()
        );
        format!("{:08x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) as u32)
    }

    /// One sbatch for `slots` (one job, or an array of run_sampler jobs sharing a parent).
    fn submit(&mut self, slots: &[usize], dep: Option<usize>) -> Result<bool, SlurmError> {
        let rule = self.jobs[slots[0]].job.rule();
        let name = format!("lh-{}-{}", rule.name(), self.token());
        let script_path = self.slurm_dir.join(format!("{name}.sh"));
        let is_array = slots.len() > 1;

        let mut specs = Vec::new();
        for &i in slots {
            let job = self.jobs[i].job;
            let spec = write_spec(self.plan, job)
                .map_err(io_err("spec.json", &self.plan.spec_path(job)))?;
            specs.push(self.abs(&spec));
            self.markers
                .mark(&self.jobs[i].key, &self.plan.output(job))
                .map_err(io_err("the incomplete marker", &self.plan.store_root))?;
        }
        let res = self.jobs[slots[0]].resources.clone();
        let mut flags = if res == self.opts.resources.get(&rule).cloned().unwrap_or_default() {
            self.flags[&rule].clone()
        } else {
            sbatch_flags(rule, &res, &self.opts.slurm_extra)?
        };
        flags.push(("--no-requeue".into(), String::new()));

        let task_list_path = self.slurm_dir.join(format!("{name}.tasks"));
        let array_log = self.slurm_dir.join("logs").join("%A_%a.log");
        let throttle = self
            .opts
            .array_throttle
            .unwrap_or(self.opts.jobs)
            .clamp(1, slots.len());
        let array_spec = format!("0-{}%{throttle}", slots.len() - 1);
        let single_log = self.jobs[slots[0]].log.clone();
        let body = if is_array {
            let list = script::task_list(&specs)?;
            script::save(&task_list_path, &list)
                .map_err(io_err("the array task list", &task_list_path))?;
            Body::Array {
                task_list: &task_list_path,
                array_spec: &array_spec,
            }
        } else {
            // A log (or link) of an earlier attempt would otherwise receive this one's output.
            let _ = std::fs::remove_file(&single_log);
            if let Some(dir) = single_log.parent() {
                std::fs::create_dir_all(dir).map_err(io_err("the log directory", dir))?;
            }
            Body::Single { spec: &specs[0] }
        };
        let text = self.opts.templates.render(&Script {
            job_name: &name,
            log_path: if is_array { &array_log } else { &single_log },
            flags: &flags,
            worker_command: &self.opts.worker_command,
            subcommand: rule.worker_subcommand(),
            body,
        })?;
        script::save(&script_path, &text).map_err(io_err("the sbatch script", &script_path))?;

        let dep_key = dep.and_then(|p| self.jobs[p].slurm);
        for (t, &i) in slots.iter().enumerate() {
            let mut ev = self.event(i, history::SUBMITTING);
            ev.slurm_job_id = None;
            ev.attempt = Some(self.jobs[i].failures + 1);
            ev.detail = Some(serde_json::json!({
                "name": name,
                "task": if is_array { Some(t) } else { None },
                "script": script_path.display().to_string(),
                "resources": self.jobs[i].resources,
                "log": self.jobs[i].log.display().to_string(),
                "dependency": dep_key.map(|k| k.to_string()),
            }));
            self.append(ev)?;
        }
        let args: Vec<String> = dep_key
            .map(|k| vec![format!("--dependency=afterok:{k}")])
            .unwrap_or_default();
        let out = match self.cluster.sbatch(&script_path, &args) {
            Ok(out) => out,
            Err(source) => {
                self.submit_failed(slots, &format!("cannot run sbatch: {source}"))?;
                return Err(SlurmError::Program {
                    program: "sbatch",
                    source,
                });
            }
        };
        let id = if out.success {
            parse_sbatch_parsable(&out.stdout).map_err(|e| e.to_string())
        } else {
            Err(String::new())
        };
        let id = match id {
            Ok(id) => id,
            Err(parse_problem) => {
                let failure = if parse_problem.is_empty() {
                    classify_sbatch_failure(&out.stderr)
                } else {
                    SubmitError::Rejected {
                        message: parse_problem,
                    }
                };
                return self.submit_refused(slots, dep, &script_path, failure);
            }
        };
        self.submit_backoff.succeed();
        for (t, &i) in slots.iter().enumerate() {
            let key = if is_array {
                JobKey::task(id, t as u32)
            } else {
                JobKey::job(id)
            };
            let j = &mut self.jobs[i];
            j.slurm = Some(key);
            j.st = St::Queued;
            j.in_flight = true;
            j.unknown_since = None;
            j.ended = None;
            j.submitted_at = Some(self.cluster.now());
            if is_array {
                // Keep logs/<rule>/<key>.log the place to look, as with the local executor.
                let target = self.slurm_dir.join("logs").join(format!("{id}_{t}.log"));
                link_log(&j.log, &target);
            }
            let mut ev = self.event(i, history::SUBMITTED);
            ev.attempt = Some(self.jobs[i].failures + 1);
            ev.detail = Some(serde_json::json!({"name": name}));
            self.append(ev)?;
            self.progress.started(&format!(
                "{} (SLURM job {key}{})",
                self.describe(i),
                dep_key.map(|k| format!(", after {k}")).unwrap_or_default()
            ));
        }
        Ok(true)
    }

    fn submit_failed(&mut self, slots: &[usize], reason: &str) -> Result<(), SlurmError> {
        for &i in slots {
            let mut ev = self.event(i, history::SUBMIT_FAILED);
            ev.slurm_job_id = None;
            ev.detail = Some(serde_json::json!({ "reason": reason }));
            self.append(ev)?;
            let _ = self.markers.clear(&self.jobs[i].key);
        }
        Ok(())
    }

    fn submit_refused(
        &mut self,
        slots: &[usize],
        dep: Option<usize>,
        script: &Path,
        failure: SubmitError,
    ) -> Result<bool, SlurmError> {
        self.submit_failed(slots, failure.message())?;
        match failure {
            SubmitError::Transient { message } => {
                if self.submit_backoff.failures() >= MAX_SUBMIT_FAILURES {
                    for &i in slots {
                        self.fail(
                            i,
                            format!("sbatch kept failing for about 10 minutes: {message}"),
                            false,
                        )?;
                    }
                    return Ok(false);
                }
                let wait = self.submit_backoff.fail();
                self.progress.message(&format!(
                    "sbatch failed transiently ({}); trying again in {:.1} s",
                    first_line(&message),
                    wait.as_secs_f64()
                ));
                self.submit_after = Some(self.cluster.now() + wait);
            }
            SubmitError::DependencyProblem { message } => {
                // The parent left the queue between our poll and sbatch: wait for the next poll
                // to say how it ended, then submit without a dependency (or skip).
                tracing::info!("dependency refused ({message}); waiting for the next poll");
                if let Some(p) = dep {
                    self.no_dependency.insert(p);
                }
            }
            SubmitError::Rejected { message } => {
                for &i in slots {
                    let why = format!(
                        "sbatch refused the {} job {} (script {}):\n        {}",
                        self.jobs[i].job.rule().name(),
                        self.jobs[i].key,
                        script.display(),
                        message.replace('\n', "\n        ")
                    );
                    self.fail(i, why, false)?;
                }
            }
        }
        Ok(false)
    }

    // -------------------------------------------------------------------------------------
    // Polling
    // -------------------------------------------------------------------------------------

    /// One cycle: one squeue, at most one sacct (or scontrol). Returns whether any job ended.
    fn poll(&mut self) -> Result<bool, SlurmError> {
        let tracked: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|j| j.st == St::Queued)
            .filter_map(|j| j.slurm)
            .collect();
        if tracked.is_empty() {
            return Ok(false);
        }
        let ids: Vec<u64> = tracked
            .iter()
            .map(|k| k.job_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let queue = match self.cluster.squeue(&ids) {
            Ok(out) if out.success => match parse_squeue(&out.stdout) {
                Ok(q) => q,
                Err(e) => return self.query_trouble("squeue", &e.to_string()),
            },
            Ok(out) => match classify_query_failure(&out.stderr) {
                // One purged id makes squeue fail; several just print nothing.
                super::parse::QueryError::NoSuchJob { .. } => Vec::new(),
                e => return self.query_trouble("squeue", &e.to_string()),
            },
            Err(e) => return self.query_trouble("squeue", &e.to_string()),
        };
        let need = needs_accounting(&tracked, &queue);
        let mut acct = Vec::new();
        let mut control = Vec::new();
        // Whether "unknown to SLURM" can be trusted this cycle (sacct answered, or there is none).
        let mut answered = true;
        let sacct_ran = !need.is_empty() && self.accounting;
        if sacct_ran {
            answered = false;
            match self.cluster.sacct(&need) {
                Ok(out) if out.success => match parse_sacct(&out.stdout) {
                    Ok(a) => {
                        acct = a;
                        answered = true;
                    }
                    Err(e) => tracing::warn!("cannot parse sacct output: {e}"),
                },
                Ok(out) if accounting_disabled(&out.stderr) => {
                    tracing::info!("SLURM accounting is disabled; using scontrol show job");
                    self.accounting = false;
                    answered = true;
                }
                Ok(out) => tracing::warn!("sacct failed: {}", out.stderr.trim()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.accounting = false;
                    answered = true;
                }
                Err(e) => tracing::warn!("cannot run sacct: {e}"),
            }
        }
        // scontrol replaces sacct, from the cycle after sacct said it has no accounting (so a
        // cycle never costs more than two queries).
        if !need.is_empty()
            && !self.accounting
            && !sacct_ran
            && let Ok(out) = self.cluster.scontrol_show_jobs()
            && out.success
        {
            control = parse_scontrol_show_job(&out.stdout).unwrap_or_default();
        }
        self.query_backoff.succeed();
        self.no_dependency.clear();
        let seen = merge(&tracked, &queue, &acct, &control);
        let now = self.cluster.now();
        let mut changed = false;
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Queued {
                continue;
            }
            let Some(key) = self.jobs[i].slurm else {
                continue;
            };
            match seen.get(&key).cloned().unwrap_or(Seen::Unknown) {
                Seen::Queued(_) => {
                    self.jobs[i].in_flight = true;
                    self.jobs[i].unknown_since = None;
                }
                Seen::Ended(f) => {
                    self.jobs[i].in_flight = false;
                    self.ended(i, f)?;
                    changed = true;
                }
                Seen::Unknown if !answered => self.jobs[i].in_flight = false,
                Seen::Unknown => {
                    self.jobs[i].in_flight = false;
                    let since = *self.jobs[i].unknown_since.get_or_insert(now);
                    if now.duration_since(since) >= UNKNOWN_GRACE {
                        changed = true;
                        if self.plan.output(self.jobs[i].job).is_file() {
                            self.done(i)?;
                        } else {
                            let why = format!(
                                "SLURM has no record of job {key} any more (neither squeue nor sacct) and its output is missing"
                            );
                            self.fail(i, why, false)?;
                        }
                    }
                }
            }
        }
        Ok(changed)
    }

    fn query_trouble(&mut self, what: &str, message: &str) -> Result<bool, SlurmError> {
        let wait = self.query_backoff.fail();
        self.progress.message(&format!(
            "{what} failed ({}); jobs keep running on SLURM, asking again in {:.0} s",
            first_line(message),
            wait.as_secs_f64()
        ));
        self.cluster.sleep(wait);
        Ok(false)
    }

    /// A job left the queue with final state `f`.
    fn ended(&mut self, i: usize, f: Final) -> Result<(), SlurmError> {
        if f.state == JobState::Completed {
            self.jobs[i].st = St::Verifying;
            self.jobs[i].verify_deadline = Some(self.cluster.now() + self.opts.latency_wait);
            self.jobs[i].ended = Some(f);
            return Ok(());
        }
        let tail = log_tail(&self.jobs[i].log);
        let ending = Ending {
            state: &f.state,
            exit_code: f.exit_code,
            signal: f.signal,
            log_tail: tail.as_deref(),
        };
        let killed = ending.killed();
        self.jobs[i].failures += 1;
        let verdict = decide(
            &ending,
            &self.jobs[i].resources,
            self.jobs[i].failures,
            self.opts.retries,
            self.opts.retry_factor,
        );
        self.jobs[i].ended = Some(f.clone());
        self.attempt_failed(i, verdict, &f, killed)
    }

    fn attempt_failed(
        &mut self,
        i: usize,
        verdict: Verdict,
        f: &Final,
        killed: bool,
    ) -> Result<(), SlurmError> {
        match verdict {
            Verdict::Retry { resources, why } => {
                let mut ev = self.event(i, history::FAILED);
                ev.state = Some(f.state.to_string());
                ev.detail = Some(serde_json::json!({
                    "reason": why,
                    "retry": true,
                    "elapsed_secs": f.elapsed_secs,
                    "max_rss_bytes": f.max_rss_bytes,
                }));
                self.append(ev)?;
                self.progress.message(&format!(
                    "[retry] {} (SLURM job {}): {why}",
                    self.describe(i),
                    self.jobs[i]
                        .slurm
                        .map(|k| k.to_string())
                        .unwrap_or_default()
                ));
                let j = &mut self.jobs[i];
                j.resources = resources;
                j.st = St::Waiting;
                j.slurm = None;
                // Children queued with afterok on this attempt would wait forever.
                self.requeue_children(i);
                Ok(())
            }
            Verdict::Fail { why } => self.fail(i, why, killed),
        }
    }

    /// Children submitted with a dependency on `parent`'s failed attempt: cancel them and let
    /// them wait for the next attempt.
    fn requeue_children(&mut self, parent: usize) {
        for c in 0..self.jobs.len() {
            if self.parent_slot(c) == Some(parent) && self.jobs[c].st == St::Queued {
                self.to_cancel.push(c);
            }
        }
    }

    /// Marks jobs whose outputs exist (and checks the deadline of those whose do not).
    fn verify(&mut self) -> Result<bool, SlurmError> {
        let mut changed = false;
        let now = self.cluster.now();
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Verifying {
                continue;
            }
            if self.plan.output(self.jobs[i].job).is_file() {
                self.done(i)?;
                changed = true;
            } else if self.jobs[i].verify_deadline.is_some_and(|d| now >= d) {
                changed = true;
                let f = self.jobs[i].ended.clone().unwrap_or(Final {
                    state: JobState::Completed,
                    exit_code: 0,
                    signal: 0,
                    elapsed_secs: None,
                    max_rss_bytes: None,
                });
                self.jobs[i].failures += 1;
                let res = self.jobs[i].resources.clone();
                let missing = format!(
                    "SLURM says COMPLETED but {} is missing after --latency-wait {} s",
                    self.plan.output(self.jobs[i].job).display(),
                    self.opts.latency_wait.as_secs()
                );
                let verdict = match decide(
                    &Ending {
                        state: &f.state,
                        exit_code: 0,
                        signal: 0,
                        log_tail: None,
                    },
                    &res,
                    self.jobs[i].failures,
                    self.opts.retries,
                    self.opts.retry_factor,
                ) {
                    Verdict::Retry { resources, .. } => Verdict::Retry {
                        resources,
                        why: format!("{missing}; retrying"),
                    },
                    Verdict::Fail { .. } => Verdict::Fail { why: missing },
                };
                self.attempt_failed(i, verdict, &f, false)?;
            }
        }
        Ok(changed)
    }

    fn done(&mut self, i: usize) -> Result<(), SlurmError> {
        let f = self.jobs[i].ended.clone();
        self.jobs[i].st = St::Done;
        let _ = self.markers.clear(&self.jobs[i].key);
        let mut ev = self.event(i, history::FINISHED);
        ev.state = Some("COMPLETED".into());
        ev.detail = Some(serde_json::json!({
            "elapsed_secs": f.as_ref().and_then(|f| f.elapsed_secs),
            "max_rss_bytes": f.as_ref().and_then(|f| f.max_rss_bytes),
        }));
        self.append(ev)?;
        self.outcome.succeeded += 1;
        let secs = match (f.and_then(|f| f.elapsed_secs), self.jobs[i].submitted_at) {
            (Some(s), _) => s as f64,
            (None, Some(t)) => self.cluster.now().duration_since(t).as_secs_f64(),
            (None, None) => 0.0,
        };
        self.progress.finished(&self.describe(i), secs);
        Ok(())
    }

    /// The job failed for good: report it, keep its marker if it was killed, and take its
    /// children out (cancelling those already queued).
    fn fail(&mut self, i: usize, why: String, killed: bool) -> Result<(), SlurmError> {
        self.jobs[i].st = St::Failed;
        if !killed {
            let _ = self.markers.clear(&self.jobs[i].key);
        }
        let mut ev = self.event(i, history::FAILED);
        ev.state = self.jobs[i].ended.as_ref().map(|f| f.state.to_string());
        ev.detail = Some(serde_json::json!({
            "reason": why,
            "retry": false,
            "elapsed_secs": self.jobs[i].ended.as_ref().and_then(|f| f.elapsed_secs),
            "max_rss_bytes": self.jobs[i].ended.as_ref().and_then(|f| f.max_rss_bytes),
        }));
        self.append(ev)?;
        let log = self.jobs[i].log.clone();
        self.progress.failed(
            &self.describe(i),
            &format!("{why} (log: {})", log.display()),
        );
        self.outcome.failed.push(Failure {
            job: self.jobs[i].job,
            output: self.plan.output(self.jobs[i].job).display().to_string(),
            reason: why,
            log,
        });
        self.stop_launching |= !self.opts.keep_going;
        for c in 0..self.jobs.len() {
            if self.parent_slot(c) != Some(i) {
                continue;
            }
            match self.jobs[c].st {
                St::Queued => self.to_cancel.push(c),
                St::Waiting => self.skip(c, "the job it depends on failed")?,
                _ => {}
            }
        }
        Ok(())
    }

    fn skip(&mut self, i: usize, why: &str) -> Result<(), SlurmError> {
        self.jobs[i].st = St::Skipped;
        self.outcome.skipped += 1;
        let _ = self.markers.clear(&self.jobs[i].key);
        let mut ev = self.event(i, history::SKIPPED);
        ev.detail = Some(serde_json::json!({ "reason": why }));
        self.append(ev)
    }

    /// Cancels the jobs collected in `to_cancel` with one scancel. Children of a parent that
    /// failed for good are skipped; those of a parent being retried wait for the next attempt.
    fn cancel_pending(&mut self) -> Result<(), SlurmError> {
        if self.to_cancel.is_empty() {
            return Ok(());
        }
        let slots = std::mem::take(&mut self.to_cancel);
        let ids: BTreeSet<String> = slots
            .iter()
            .filter_map(|&c| self.jobs[c].slurm.map(|k| k.to_string()))
            .collect();
        self.scancel(&ids.into_iter().collect::<Vec<_>>());
        for c in slots {
            if self.jobs[c].st != St::Queued {
                continue;
            }
            let parent_failed = self
                .parent_slot(c)
                .is_some_and(|p| matches!(self.jobs[p].st, St::Failed | St::Skipped));
            let why = if parent_failed {
                "the job it depends on failed"
            } else {
                "the job it depends on is retried"
            };
            let mut ev = self.event(c, history::CANCELLED);
            ev.detail = Some(serde_json::json!({ "reason": why }));
            self.append(ev)?;
            // It never started (it waited on its parent), so it left no partial files.
            let _ = self.markers.clear(&self.jobs[c].key);
            self.jobs[c].slurm = None;
            if parent_failed {
                self.jobs[c].st = St::Skipped;
                self.outcome.skipped += 1;
            } else {
                self.jobs[c].st = St::Waiting;
            }
        }
        Ok(())
    }

    fn scancel(&mut self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        match self.cluster.scancel(ids) {
            Ok(out) if !out.success => {
                tracing::warn!("scancel {} failed: {}", ids.join(" "), out.stderr.trim())
            }
            Err(e) => tracing::warn!("cannot run scancel: {e}"),
            _ => {}
        }
    }

    /// Ctrl-C: cancel every job of this sweep with one scancel; markers stay.
    fn interrupt(&mut self) -> Result<(), SlurmError> {
        let slots: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| self.jobs[i].st == St::Queued)
            .collect();
        let ids: BTreeSet<String> = slots
            .iter()
            .filter_map(|&i| self.jobs[i].slurm.map(|k| k.job_id.to_string()))
            .collect();
        self.progress.message(&format!(
            "interrupted: cancelling {} SLURM job(s) of this sweep (press Ctrl-C again to exit at once)",
            ids.len()
        ));
        self.scancel(&ids.into_iter().collect::<Vec<_>>());
        for i in slots {
            let mut ev = self.event(i, history::CANCELLED);
            ev.detail = Some(serde_json::json!({ "reason": "interrupted (Ctrl-C)" }));
            self.append(ev)?;
            self.jobs[i].st = St::Skipped;
            self.outcome.skipped += 1;
        }
        self.outcome.interrupted = true;
        self.progress.finish();
        Ok(())
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

/// sacct's complaint on clusters without accounting storage.
fn accounting_disabled(stderr: &str) -> bool {
    let lower = stderr.to_ascii_lowercase();
    lower.contains("accounting storage is disabled") || lower.contains("accounting_storage/none")
}
