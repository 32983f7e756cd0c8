//! The local executor: a tokio pool of `lambda-hat worker ...` subprocesses.
//!
//! Input: the plan, the schedule (jobs in topological order) and [`LocalOptions`]. Each job gets
//! its spec.json, an incomplete marker and a log file (`<store>/logs/<rule>/<key>.log`, the
//! worker's stdout and stderr), then runs as a separate process so a crashing job cannot take the
//! sweep down. At most `jobs` run at once and the sum of every resource stays within the limits.
//! A failed job stops new launches unless `keep_going`; jobs depending on a failed one are
//! skipped. Ctrl-C, SIGTERM and SIGHUP kill the workers, keep their incomplete markers and report
//! `interrupted` (super::signals).
//! Output: an [`Outcome`].

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use tokio::process::Command;
use tokio::task::JoinSet;

use super::progress::Progress;
use super::resources::{Limits, ResourceMap, ResourceValue, account};
use super::{ExecError, Failure, Outcome};
use crate::plan::{JobRef, Plan, Rule, Schedule, shell_words};
use crate::spec::write_spec;
use crate::store::{Event, IncompleteMarkers, Journal, benchmark};

pub struct LocalOptions {
    /// `-j`: most jobs running at once.
    pub jobs: usize,
    pub limits: Limits,
    /// Resources of each rule's jobs.
    pub resources: BTreeMap<Rule, ResourceMap>,
    pub keep_going: bool,
    /// `-T`: how many times a failed job is started again before it counts as failed.
    pub retries: u32,
    pub quiet: bool,
    /// Program (and leading arguments) that runs a worker.
    pub worker_command: Vec<String>,
    /// `-p`: print each job's command as it starts.
    pub print_commands: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

/// Runs `schedule` on this machine.
pub async fn run(
    plan: &Plan,
    schedule: &Schedule,
    opts: &LocalOptions,
) -> Result<Outcome, ExecError> {
    let markers = IncompleteMarkers::new(&plan.store_root);
    let mut journal = Journal::open(&plan.store_root).map_err(|source| ExecError::Io {
        what: "the journal",
        path: Journal::path_in(&plan.store_root),
        source,
    })?;
    let jobs: Vec<JobRef> = schedule.jobs.iter().map(|(j, _)| *j).collect();
    // Index of each scheduled target's job, so a run can find whether its parent is pending.
    let mut target_slot: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        if let JobRef::Target(t) = job {
            target_slot.insert(*t, i);
        }
    }
    let mut state = vec![State::Waiting; jobs.len()];
    let mut retried = vec![0u32; jobs.len()];
    let mut in_use: BTreeMap<String, i64> = BTreeMap::new();
    let mut running: JoinSet<(usize, std::io::Result<ExitStatus>, f64)> = JoinSet::new();
    let mut outcome = Outcome::default();
    let mut progress = Progress::new(jobs.len(), opts.quiet);
    let mut stop_launching = false;
    // The store cannot be written (a full disk, a journal made read-only): the sweep stops
    // launching, lets the running jobs end, and returns this (exit code 3). Counting it as a
    // job failure said exit 1, and a finished job whose journal line was lost was later called
    // corrupt and computed again.
    let mut unwritable: Option<ExecError> = None;
    let mut next_waiting = 0; // every job before this index has left `Waiting`

    let mut interrupts = super::signals::Interrupts::install().map_err(ExecError::Signals)?;
    // Set on an interrupt: every running worker's task kills it and reports its exit status.
    let (stop_workers, _) = tokio::sync::watch::channel(false);

    loop {
        if !stop_launching {
            for i in next_waiting..jobs.len() {
                if running.len() >= opts.jobs {
                    break;
                }
                if state[i] != State::Waiting {
                    continue;
                }
                let job = jobs[i];
                let parent_state = plan.parent(job).and_then(|p| match p {
                    JobRef::Target(t) => target_slot.get(&t).map(|&s| state[s]),
                    JobRef::Run(_) => None,
                });
                match parent_state {
                    Some(State::Failed | State::Skipped) => {
                        state[i] = State::Skipped;
                        outcome.skipped += 1;
                        continue;
                    }
                    Some(State::Waiting | State::Running) => continue,
                    _ => {}
                }
                let res = &opts.resources[&job.rule()];
                if !opts.limits.fits(&in_use, res) {
                    continue;
                }
                match launch(plan, job, res, opts, &markers, &mut journal) {
                    Ok((mut child, started)) => {
                        account(&mut in_use, res, 1);
                        state[i] = State::Running;
                        progress.started(&describe(plan, job));
                        if opts.print_commands {
                            progress.command(
                                &plan.worker_command_line(job, &shell_words(&opts.worker_command)),
                            );
                        }
                        let mut stop = stop_workers.subscribe();
                        running.spawn(async move {
                            let status = tokio::select! {
                                status = child.wait() => status,
                                // Stopping: kill the worker and still collect its status, so a
                                // worker that had already exited (unreaped) reports how.
                                Ok(()) = async { stop.wait_for(|&stop| stop).await.map(drop) } => {
                                    let _ = child.start_kill();
                                    child.wait().await
                                }
                            };
                            (i, status, started.elapsed().as_secs_f64())
                        });
                    }
                    Err(e @ ExecError::Io { .. }) => {
                        // It never started, so it left no partial files: no marker either.
                        let _ = markers.clear(&plan.job_key(job));
                        state[i] = State::Skipped;
                        outcome.skipped += 1;
                        progress.message(&format!("stopping (the running jobs finish first): {e}"));
                        unwritable.get_or_insert(e);
                        stop_launching = true;
                        break;
                    }
                    Err(e) => {
                        state[i] = State::Failed;
                        // It never started, so it left no partial files: no marker either.
                        let _ = markers.clear(&plan.job_key(job));
                        let failure = failure(plan, job, e.to_string(), false);
                        progress.failed(&describe(plan, job), &failure.reason);
                        outcome.failed.push(failure);
                        stop_launching |= !opts.keep_going;
                    }
                }
            }
            while next_waiting < jobs.len() && state[next_waiting] != State::Waiting {
                next_waiting += 1;
            }
        }
        if running.is_empty() {
            break;
        }
        let interrupted_by = tokio::select! {
            joined = running.join_next() => {
                let Some(Ok((i, status, secs))) = joined else { continue };
                let job = jobs[i];
                account(&mut in_use, &opts.resources[&job.rule()], -1);
                let key = plan.job_key(job);
                let interrupt_kill = killed_by_interrupt(&status);
                let verdict = judge(plan, job, status);
                // Ctrl-C in a terminal reaches the whole process group: a worker may die of it
                // before the controller's own handler runs. Then this is the interrupt, not a
                // failure: wait briefly for the controller's signal and stop as it would.
                if interrupt_kill
                    && let Ok(signal) =
                        tokio::time::timeout(INTERRUPT_GRACE, interrupts.recv()).await
                {
                    Some(signal)
                } else {
                    match verdict {
                        Ok(()) => {
                            if let Err(e) = record_finished(plan, job, secs, &markers, &mut journal) {
                                unwritable.get_or_insert(e);
                                stop_launching = true;
                            }
                            state[i] = State::Done;
                            outcome.succeeded += 1;
                            progress.finished(&describe(plan, job), secs);
                        }
                        Err((why, _)) if retried[i] < opts.retries => {
                            retried[i] += 1;
                            let _ = markers.clear(&key);
                            if let Err(e) = journal.append(&Event { attempt: Some(retried[i] + 1), detail: Some(serde_json::json!(why)), ..Event::new("retry", &key, job.rule().name()) }) {
                                unwritable.get_or_insert(journal_error(&journal, e));
                                stop_launching = true;
                            }
                            progress.retrying(&format!("{} (attempt {} of {})", describe(plan, job), retried[i] + 1, opts.retries + 1), &why);
                            state[i] = State::Waiting;
                            next_waiting = next_waiting.min(i);
                        }
                        Err((why, killed_by_signal)) => {
                            // A worker that exited with an error cleaned up after itself; one killed by a
                            // signal may have left partial files, so its marker stays (→ --rerun-incomplete).
                            if !killed_by_signal {
                                let _ = markers.clear(&key);
                            }
                            let mut detail = usage_fields(plan, job, secs);
                            detail.insert("reason".into(), why.clone().into());
                            if let Err(e) = journal.append(&Event { state: Some("FAILED".into()), detail: Some(detail.into()), ..Event::new("failed", &key, job.rule().name()) }) {
                                unwritable.get_or_insert(journal_error(&journal, e));
                                stop_launching = true;
                            }
                            state[i] = State::Failed;
                            let f = failure(plan, job, why, killed_by_signal);
                            progress.failed(&describe(plan, job), &format!("{} (log: {})", f.reason, f.log.display()));
                            outcome.failed.push(f);
                            stop_launching |= !opts.keep_going;
                        }
                    }
                    None
                }
            }
            signal = interrupts.recv() => Some(signal),
        };
        if let Some(signal) = interrupted_by {
            progress.message(&format!("interrupted ({signal}): stopping workers"));
            // Each task kills its worker and returns the worker's exit status. Aborting the
            // tasks instead (their children are killed on drop) lost the status of a worker that
            // had exited while the controller was busy: such a finished job was left
            // incomplete, to be computed again (`a_job_that_finished_as_ctrl_c_came_is_kept`
            // failed 8 of 20 runs alone before, 0 of 50 after).
            stop_workers.send_replace(true);
            // Jobs that finished in the meantime are kept as done, as on SLURM.
            while let Some(joined) = running.join_next().await {
                keep_if_finished(plan, &jobs, joined, &markers, &mut journal, &mut outcome);
            }
            outcome.interrupted = true;
            outcome.interrupted_by = Some(signal);
            break;
        }
    }
    outcome.skipped += state.iter().filter(|s| **s == State::Waiting).count();
    progress.finish();
    match unwritable {
        // An interrupt says more about how the sweep ended (and sets its exit code).
        Some(e) if !outcome.interrupted => Err(e),
        _ => Ok(outcome),
    }
}

fn journal_error(journal: &Journal, source: std::io::Error) -> ExecError {
    ExecError::Io {
        what: "the journal",
        path: journal.path().to_path_buf(),
        source,
    }
}

/// How long a worker's death by an interrupt signal waits for the controller's own: the
/// same keypress reaches both within microseconds, so this is only ever waited in full when
/// someone signalled the worker alone (then it is a failure like any other).
const INTERRUPT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether a worker was killed by SIGINT, SIGTERM or SIGHUP: what a terminal's Ctrl-C, a
/// `kill` of the process group or a lost session sends to the controller and workers alike.
fn killed_by_interrupt(status: &std::io::Result<ExitStatus>) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        matches!(status, Ok(s) if matches!(s.signal(), Some(libc::SIGINT | libc::SIGTERM | libc::SIGHUP)))
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        false
    }
}

/// A finished job's records: a `finished` event with its output's hash, then its marker
/// cleared. In that order: without the event, the next sweep would take the output for one
/// that is not the job's (corrupt) and compute it again, so when the journal cannot be written
/// the marker stays and the job reads as incomplete, which is what it is to the store.
fn record_finished(
    plan: &Plan,
    job: JobRef,
    secs: f64,
    markers: &IncompleteMarkers,
    journal: &mut Journal,
) -> Result<(), ExecError> {
    let key = plan.job_key(job);
    let hash = crate::store::integrity::output_hash(&plan.output(job));
    let mut detail = usage_fields(plan, job, secs);
    detail.insert(crate::store::integrity::OUTPUT_HASH_KEY.into(), hash.into());
    journal
        .append(&Event {
            state: Some("COMPLETED".into()),
            detail: Some(detail.into()),
            ..Event::new("finished", &key, job.rule().name())
        })
        .map_err(|e| journal_error(journal, e))?;
    let _ = markers.clear(&key);
    Ok(())
}

/// While stopping: a worker that had already exited successfully (its wait returned before the
/// abort) is recorded as finished, not left incomplete to be computed again.
fn keep_if_finished(
    plan: &Plan,
    jobs: &[JobRef],
    joined: Result<(usize, std::io::Result<ExitStatus>, f64), tokio::task::JoinError>,
    markers: &IncompleteMarkers,
    journal: &mut Journal,
    outcome: &mut Outcome,
) {
    if let Ok((i, status, secs)) = joined
        && judge(plan, jobs[i], status).is_ok()
    {
        // Already stopping: a journal that cannot be written leaves the job incomplete (its
        // marker stays), which the interrupt's message counts.
        if record_finished(plan, jobs[i], secs, markers, journal).is_ok() {
            outcome.succeeded += 1;
        }
    }
}

fn describe(plan: &Plan, job: JobRef) -> String {
    format!("{} {}", job.rule().name(), plan.output(job).display())
}

fn failure(plan: &Plan, job: JobRef, reason: String, left_incomplete: bool) -> Failure {
    Failure {
        job,
        output: plan.output(job).display().to_string(),
        reason,
        log: plan.log_path(job),
        left_incomplete,
    }
}

/// The journal fields of what a finished or failed job used: its worker's benchmark, or only
/// the wall time the controller saw when the worker left none (killed by a signal).
fn usage_fields(plan: &Plan, job: JobRef, secs: f64) -> serde_json::Map<String, serde_json::Value> {
    let path = benchmark::path(&plan.store_root, job.rule().name(), &plan.job_key(job));
    benchmark::read(&path)
        .unwrap_or(benchmark::Benchmark {
            wall: std::time::Duration::from_secs_f64(secs.max(0.0)),
            ..Default::default()
        })
        .journal_fields()
}

/// Writes the spec, the incomplete marker and the journal line, then starts the worker.
fn launch(
    plan: &Plan,
    job: JobRef,
    res: &ResourceMap,
    opts: &LocalOptions,
    markers: &IncompleteMarkers,
    journal: &mut Journal,
) -> Result<(tokio::process::Child, Instant), ExecError> {
    let key = plan.job_key(job);
    let spec = write_spec(plan, job).map_err(|source| ExecError::Io {
        what: "spec.json",
        path: plan.spec_path(job),
        source,
    })?;
    markers
        .mark(&key, &plan.output(job))
        .map_err(|source| ExecError::Io {
            what: "the incomplete marker",
            path: markers.path(&key),
            source,
        })?;
    journal
        .append(&Event {
            executor: Some("local".into()),
            ..Event::new("started", &key, job.rule().name())
        })
        .map_err(|source| ExecError::Io {
            what: "the journal",
            path: journal.path().to_path_buf(),
            source,
        })?;
    let log_path = plan.log_path(job);
    let log = open_log(&log_path).map_err(|source| ExecError::Io {
        what: "the job log",
        path: log_path.clone(),
        source,
    })?;
    let log2 = log.try_clone().map_err(|source| ExecError::Io {
        what: "the job log",
        path: log_path.clone(),
        source,
    })?;
    let threads = match res.get("cpus_per_task") {
        Some(ResourceValue::Int(n)) if *n > 0 => *n,
        _ => 1,
    };
    // A benchmark left by an earlier attempt must not be read as this one's.
    let bench_path = benchmark::path(&plan.store_root, job.rule().name(), &key);
    let _ = std::fs::remove_file(&bench_path);
    let (program, args) = opts
        .worker_command
        .split_first()
        .map(|(p, a)| (p.clone(), a.to_vec()))
        .unwrap_or_default();
    let child = Command::new(&program)
        .args(&args)
        .arg("worker")
        .arg(job.rule().worker_subcommand())
        .arg(&spec)
        .env(crate::spec::THREADS_ENV, threads.to_string())
        // The worker measures itself into this file when it ends (crate::store::benchmark).
        .env(benchmark::BENCHMARK_ENV, &bench_path)
        // The worker stops by itself if this controller dies (crate::worker::orphan).
        .env(crate::spec::WATCH_PARENT_ENV, "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecError::Spawn {
            command: opts.worker_command.join(" "),
            source,
        })?;
    Ok((child, Instant::now()))
}

fn open_log(path: &PathBuf) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path)
}

/// Success is exit code 0 AND the completion marker on disk. Err carries the reason and whether
/// a signal killed the worker.
fn judge(
    plan: &Plan,
    job: JobRef,
    status: std::io::Result<ExitStatus>,
) -> Result<(), (String, bool)> {
    let status = status.map_err(|e| (format!("could not wait for the worker: {e}"), false))?;
    if status.success() {
        let output = plan.output(job);
        return if output.is_file() {
            Ok(())
        } else {
            Err((
                format!("the worker exited 0 but did not write {}", output.display()),
                false,
            ))
        };
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Err((format!("the worker was killed by signal {sig}"), true));
        }
    }
    let why = format!(
        "the worker exited with code {}",
        status.code().unwrap_or(-1)
    );
    Err((super::with_worker_error(why, &plan.log_path(job)), false))
}
