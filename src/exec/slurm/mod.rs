//! The SLURM executor: runs a schedule's jobs as SLURM jobs (`sbatch`), follows them (`squeue`,
//! `sacct`, `scontrol`), retries what failed for a reason more resources or another node can fix,
//! and keeps the journal so a later invocation reattaches instead of submitting twice.
//!
//! Input: the plan, the schedule and [`SlurmOptions`] (merged from the profile and the command
//! line by `cli::sweep`). Output: a [`SlurmOutcome`]. The parts, each with one job:
//!
//! | module         | what                                                                  |
//! |----------------|-----------------------------------------------------------------------|
//! | [`flags`]      | resources → validated, quoted `#SBATCH` flags (plan time)             |
//! | [`script`]     | Tera templates → scripts and array task lists under `.lambda-hat/slurm/` |
//! | [`bundle`]     | which run_sampler jobs share one SLURM job (`bundle-size`), its resources |
//! | [`cluster`]    | the [`Cluster`] trait: the only place SLURM commands run               |
//! | [`parse`]      | SLURM's text → typed states and records                               |
//! | [`poll`]       | one cycle's squeue + sacct merged; the adaptive polling interval      |
//! | [`retry`]      | out of memory / timeout / node failure → what to resubmit             |
//! | [`history`]    | the journal folded per job (reattach, `status`)                       |
//! | [`controller`] | the state machine tying them together                                 |

pub mod bundle;
pub mod cluster;
pub mod controller;
pub mod flags;
pub mod grouping;
pub mod history;
pub mod parse;
pub mod poll;
pub mod retry;
pub mod script;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

pub use cluster::{Cluster, CmdOutput, SlurmCli};
pub use controller::{Controller, SlurmOutcome};
use flags::FlagError;
use script::{ScriptError, Templates};

use crate::exec::resources::ResourceMap;
use crate::plan::{JobRef, OutputStatus, Plan, Rule, Schedule};
use crate::store::{Event, IncompleteMarkers, Journal};

/// Everything the SLURM executor is told by the profile and the command line.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// `-j`: most SLURM jobs (array tasks counted one by one) queued or running at once.
    pub jobs: usize,
    /// Resources of each rule's jobs.
    pub resources: BTreeMap<Rule, ResourceMap>,
    /// The profile's `slurm-extra`, already split and validated.
    pub slurm_extra: Vec<String>,
    pub keep_going: bool,
    pub quiet: bool,
    /// `--retries`: resubmissions allowed per job.
    pub retries: u32,
    /// Memory (out of memory) or runtime (TIMEOUT) multiply by this on retry.
    pub retry_factor: f64,
    pub latency_wait: Duration,
    /// The program (and leading arguments) that runs a worker on the compute node.
    pub worker_command: Vec<String>,
    pub templates: Templates,
    /// Submit run_sampler jobs sharing a parent and resources as one array.
    pub use_arrays: bool,
    pub max_array_size: usize,
    /// `%` throttle of arrays; default `jobs`.
    pub array_throttle: Option<usize>,
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// Submit what can go and exit; a later invocation reattaches.
    pub detach: bool,
    /// `-p`: print each job's worker command as it is submitted (what its script runs).
    pub print_commands: bool,
    /// `--bundle-size`: most run_sampler jobs of one target per SLURM job or array task.
    pub bundle_size: crate::config::profile::BundleSize,
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("cannot write {what} at {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", program_message(program, source))]
    Program {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Refused { command: String, stderr: String },
}

fn program_message(program: &str, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::NotFound {
        format!(
            "cannot run `{program}`: it is not on PATH.\n  The SLURM executor needs SLURM's commands (sbatch, squeue, sacct, scancel): run lambda-hat on a login node of the cluster, or run locally without --profile slurm / --executor slurm."
        )
    } else {
        format!("cannot run `{program}`: {source}")
    }
}

/// Checks every rule's resources and the templates: called at plan time, before anything is
/// submitted, so a bad partition name or a broken template stops the sweep with nothing queued.
pub fn validate(opts: &SlurmOptions) -> Result<(), SlurmError> {
    for rule in Rule::ALL {
        let res = opts.resources.get(&rule).cloned().unwrap_or_default();
        flags::sbatch_flags(rule, &res, &opts.slurm_extra)?;
    }
    opts.templates.check()?;
    Ok(())
}

/// Looks for `program` on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            p.is_file()
        })
    })
}

/// The SLURM commands the executor cannot work without are installed.
pub fn preflight() -> Result<(), SlurmError> {
    for program in ["sbatch", "squeue", "scancel"] {
        if !on_path(program) {
            return Err(SlurmError::Program {
                program,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
    }
    Ok(())
}

/// Keys of jobs whose SLURM submission the journal leaves open.
pub fn open_submissions(plan: &Plan) -> HashSet<String> {
    open_submissions_in(&plan.store_root)
}

/// [`open_submissions`] of every job the store's journal names, whatever sweep planned it
/// (`clean` keeps them all).
pub fn open_submissions_in(store_root: &std::path::Path) -> HashSet<String> {
    let events = Journal::read_all(store_root).unwrap_or_default();
    history::histories(&events)
        .into_iter()
        .filter(|(_, h)| h.open.is_some())
        .map(|(k, _)| k)
        .collect()
}

/// The store's status, except that a job with an open SLURM submission is not "incomplete":
/// its marker is there because it is still queued or running, and the executor reattaches.
pub struct ReattachStatus<'a, S: OutputStatus> {
    pub inner: &'a S,
    pub open: &'a HashSet<String>,
}

impl<S: OutputStatus> OutputStatus for ReattachStatus<'_, S> {
    fn done(&self, plan: &Plan, job: JobRef) -> bool {
        self.inner.done(plan, job)
    }

    fn incomplete(&self, plan: &Plan, job: JobRef) -> bool {
        self.inner.incomplete(plan, job)
            && (self.open.is_empty() || !self.open.contains(&plan.job_key(job)))
    }

    fn corrupt(&self, plan: &Plan, job: JobRef) -> bool {
        self.inner.corrupt(plan, job)
    }

    fn outdated(&self, plan: &Plan, job: JobRef) -> bool {
        self.inner.outdated(plan, job)
    }
}

/// Jobs that finished while no controller ran: their output exists and their submission is
/// still open in the journal. Clears their markers and closes them in the journal.
pub fn collect_finished(plan: &Plan, open: &HashSet<String>) -> std::io::Result<usize> {
    if open.is_empty() {
        return Ok(0);
    }
    let markers = IncompleteMarkers::new(&plan.store_root);
    let mut journal = Journal::open(&plan.store_root)?;
    let events = Journal::read_all(&plan.store_root)?;
    let hist = history::histories(&events);
    let mut n = 0;
    for job in plan.jobs() {
        let key = plan.job_key(job);
        if !open.contains(&key) || !plan.output(job).is_file() {
            continue;
        }
        markers.clear(&key)?;
        journal.append(&Event {
            executor: Some("slurm".into()),
            slurm_job_id: hist.get(&key).and_then(|h| h.slurm_id.clone()),
            state: Some("COMPLETED".into()),
            detail: Some(serde_json::json!({
                "reason": "finished while no controller ran",
                crate::store::integrity::OUTPUT_HASH_KEY: crate::store::integrity::output_hash(&plan.output(job)),
            })),
            ..Event::new(history::FINISHED, &key, job.rule().name())
        })?;
        n += 1;
    }
    Ok(n)
}

/// The `sbatch` calls a run with `opts` would make for `schedule` if every job succeeded and
/// `-j` left room for all, for `-n` ([`grouping::dry_run`]; groups name jobs by their index in `schedule`, the dry run's
/// `jobid`). Jobs an earlier run submitted (`open`) are followed, not submitted: their children
/// wait for them.
pub fn planned_submissions(
    plan: &Plan,
    schedule: &Schedule,
    opts: &SlurmOptions,
    open: &HashSet<String>,
) -> Vec<grouping::Group> {
    let slot_of_target: std::collections::HashMap<u32, usize> = schedule
        .jobs
        .iter()
        .enumerate()
        .filter_map(|(i, (job, _))| match job {
            JobRef::Target(t) => Some((*t, i)),
            JobRef::Run(_) => None,
        })
        .collect();
    let jobs = schedule
        .jobs
        .iter()
        .map(|(job, _)| grouping::Job {
            rule: job.rule(),
            parent: match plan.parent(*job) {
                Some(JobRef::Target(t)) => slot_of_target.get(&t).copied(),
                _ => None,
            },
            state: if open.contains(&plan.job_key(*job)) {
                grouping::State::Busy
            } else {
                grouping::State::Waiting
            },
            resources: opts.resources.get(&job.rule()).unwrap_or(&EMPTY_RESOURCES),
            expected_secs: bundle::expected_job_secs(plan, *job),
        })
        .collect();
    grouping::dry_run(jobs, &opts.grouping())
}

impl SlurmOptions {
    /// The settings [`grouping`] packs jobs by.
    pub fn grouping(&self) -> grouping::Options {
        grouping::Options {
            bundle_size: self.bundle_size,
            use_arrays: self.use_arrays,
            max_array_size: self.max_array_size,
        }
    }
}

/// Resources of a rule the options do not name.
static EMPTY_RESOURCES: ResourceMap = ResourceMap::new();

/// Runs `schedule` on `cluster`.
pub fn run<C: Cluster>(
    plan: &Plan,
    schedule: &Schedule,
    opts: &SlurmOptions,
    cluster: &mut C,
) -> Result<SlurmOutcome, SlurmError> {
    Controller::new(plan, schedule, opts, cluster)?.run()
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
