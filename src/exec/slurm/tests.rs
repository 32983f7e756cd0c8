//! The controller's state machine against the simulated cluster of [`super::fake`]: submission
//! shape (singles, arrays, afterok), the `-j` budget, retries, cancellation of children,
//! transient errors, reattaching and Ctrl-C. The real SLURM is exercised by `tests/slurm.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cluster::Cluster;
use super::fake::{Fake, OutcomeFn};
use super::parse::JobState;
use super::script::Templates;
use super::{ReattachStatus, SlurmOptions, SlurmOutcome, open_submissions};
use crate::config::parse_sweep;
use crate::config::presets::PresetDirs;
use crate::exec::resources::{ResourceValue, rule_defaults};
use crate::plan::select::schedule;
use crate::plan::{Plan, Request, Rule};
use crate::store::{Journal, StoreStatus};

struct Store {
    dir: PathBuf,
}

impl Store {
    fn new(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("lh-slurm-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Store { dir }
    }

    fn plan(&self, targets: usize, samplers: &[&str]) -> Plan {
        let samplers: Vec<String> = samplers.iter().map(|s| format!("name: {s}")).collect();
        let samplers: Vec<&str> = samplers.iter().map(String::as_str).collect();
        self.plan_with(targets, "", &samplers)
    }

    /// `targets` small targets with `overrides` (YAML flow mapping content, may be empty) and
    /// one sampler per entry of `samplers` (YAML flow mapping content).
    fn plan_with(&self, targets: usize, overrides: &str, samplers: &[&str]) -> Plan {
        let mut yaml = format!("store_root: \"{}\"\ntargets:\n", self.dir.display());
        for t in 0..targets {
            yaml.push_str(&format!(
                "  - {{ model: small, data: small, seed: {t}, overrides: {{ {overrides} }} }}\n"
            ));
        }
        yaml.push_str("samplers:\n");
        for s in samplers {
            yaml.push_str(&format!("  - {{ {s} }}\n"));
        }
        let path = Path::new("/nonexistent/experiments.yaml");
        let sweep = parse_sweep(path, &yaml, &PresetDirs::for_experiments_file(path)).unwrap();
        Plan::build(&sweep).unwrap()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn opts(jobs: usize) -> SlurmOptions {
    SlurmOptions {
        jobs,
        resources: Rule::ALL
            .into_iter()
            .map(|r| (r, rule_defaults(r)))
            .collect(),
        slurm_extra: Vec::new(),
        keep_going: false,
        quiet: true,
        retries: 0,
        retry_factor: 2.0,
        latency_wait: Duration::from_secs(3),
        worker_command: vec!["lh".into()],
        templates: Templates::default(),
        use_arrays: true,
        max_array_size: 1000,
        array_throttle: None,
        poll_min: Duration::from_secs(1),
        poll_max: Duration::from_secs(5),
        detach: false,
        print_commands: false,
        bundle_size: Default::default(),
    }
}

fn all_complete() -> OutcomeFn {
    Box::new(|_| (JobState::Completed, 0, String::new()))
}

fn run(plan: &Plan, opts: &SlurmOptions, fake: &mut Fake) -> SlurmOutcome {
    let status = StoreStatus::scan(plan);
    let open = open_submissions(plan);
    let sched = schedule(
        plan,
        &ReattachStatus {
            inner: &status,
            open: &open,
        },
        &Request::default(),
    )
    .unwrap();
    super::run(plan, &sched, opts, fake).unwrap()
}

/// squeue + sacct calls between two sleeps, at most.
fn max_queries_per_cycle(fake: &Fake) -> usize {
    fake.calls
        .split(|c| c == "sleep")
        .map(|cycle| {
            cycle
                .iter()
                .filter(|c| matches!(c.as_str(), "squeue" | "sacct" | "scontrol"))
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn events(plan: &Plan) -> Vec<crate::store::Event> {
    Journal::read_all(&plan.store_root).unwrap()
}

#[test]
fn builds_go_alone_and_samplers_as_arrays_after_their_target() {
    let store = Store::new("shape");
    let plan = store.plan(2, &["hmc", "sgld", "mclmc"]);
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &opts(20), &mut fake);
    assert_eq!(out.outcome.succeeded, 8, "{:?}", out.outcome.failed);
    assert!(out.outcome.failed.is_empty());
    // 2 build jobs + 2 arrays of 3.
    assert_eq!(fake.count("sbatch"), 4);
    let arrays: Vec<_> = fake
        .jobs
        .values()
        .filter(|j| j.key.array_task.is_some())
        .collect();
    assert_eq!(arrays.len(), 6);
    for task in arrays {
        let parent = task.dependency.expect("sampler tasks wait on their target");
        assert!(parent.array_task.is_none() && parent.job_id < task.key.job_id);
    }
    assert!(max_queries_per_cycle(&fake) <= 2, "{:?}", fake.calls);
    // The intent is journaled before the id, for every job.
    let ev = events(&plan);
    for key in plan.jobs().map(|j| plan.job_key(j)) {
        let pos = |name: &str| ev.iter().position(|e| e.job == key && e.event == name);
        assert!(pos("submitting").unwrap() < pos("submitted").unwrap());
        assert!(pos("submitted").unwrap() < pos("finished").unwrap());
    }
    // Scripts are on disk for a human to read and resubmit.
    let scripts = std::fs::read_dir(store.dir.join(".lambda-hat/slurm"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sh")
        })
        .count();
    assert_eq!(scripts, 4);
}

/// A job pending for a reason waiting will not clear is reported once per job (journal event
/// with SLURM's reason and what to change), and one that will clear is not reported.
#[test]
fn pending_reasons_that_waiting_will_not_clear_are_reported_once() {
    let store = Store::new("stuck");
    let plan = store.plan(1, &["hmc"]);
    let mut fake = Fake::new(all_complete());
    fake.pending_reason = Some("PartitionConfig".into());
    run(&plan, &opts(4), &mut fake);
    let stuck: Vec<_> = events(&plan)
        .into_iter()
        .filter(|e| e.event == super::history::PENDING_STUCK)
        .collect();
    assert!(!stuck.is_empty(), "a PartitionConfig job was not reported");
    let jobs: std::collections::BTreeSet<_> = stuck.iter().map(|e| &e.job).collect();
    assert_eq!(
        jobs.len(),
        stuck.len(),
        "each job is reported once: {stuck:?}"
    );
    let detail = stuck[0].detail.as_ref().unwrap();
    assert_eq!(detail["reason"], "PartitionConfig");
    assert!(detail["advice"].as_str().unwrap().contains("cpus_per_task"));

    let store = Store::new("waiting");
    let plan = store.plan(1, &["hmc"]);
    let mut fake = Fake::new(all_complete());
    fake.pending_reason = Some("Priority".into());
    run(&plan, &opts(4), &mut fake);
    assert!(
        events(&plan)
            .iter()
            .all(|e| e.event != super::history::PENDING_STUCK)
    );
}

#[test]
fn jobs_limit_counts_array_tasks() {
    let store = Store::new("budget");
    let plan = store.plan(3, &["hmc", "sgld", "mclmc"]);
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &opts(2), &mut fake);
    assert_eq!(out.outcome.succeeded, 12);
    assert!(fake.max_queued <= 2, "max queued {}", fake.max_queued);
}

#[test]
fn out_of_memory_is_retried_with_double_memory() {
    let store = Store::new("oom");
    let plan = store.plan(1, &["hmc"]);
    let mut o = opts(4);
    o.retries = 2;
    for r in o.resources.values_mut() {
        r.insert("mem_mb".into(), ResourceValue::Int(100));
    }
    let mut fake = Fake::new(Box::new(|job| match job.mem {
        Some(m) if m < 200 => (
            JobState::Failed,
            9,
            "slurmstepd-vm: error: Exceeded job memory limit\n".into(),
        ),
        _ => (JobState::Completed, 0, String::new()),
    }));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 2, "{:?}", out.outcome.failed);
    // The sampler first went out with afterok on the failed build attempt: it was cancelled
    // and resubmitted after the retried build.
    let mems: Vec<_> = fake
        .jobs
        .values()
        .filter(|j| j.state != JobState::Cancelled)
        .map(|j| j.mem)
        .collect();
    assert_eq!(mems, vec![Some(100), Some(200), Some(100), Some(200)]);
    let retried = events(&plan)
        .into_iter()
        .filter(|e| e.event == "failed")
        .map(|e| e.detail.unwrap()["reason"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(
        retried[0].contains("out of memory") && retried[0].contains("mem_mb=200"),
        "{retried:?}"
    );
}

#[test]
fn failed_parent_cancels_children_and_keep_going_finishes_the_rest() {
    let store = Store::new("parentfail");
    let plan = store.plan(2, &["hmc", "sgld", "mclmc"]);
    let mut o = opts(20);
    o.keep_going = true;
    // The first build job fails; everything else works.
    let mut fake = Fake::new(Box::new(|job| {
        if job.key.job_id == 100 {
            (JobState::Failed, 0, "boom\n".into())
        } else {
            (JobState::Completed, 0, String::new())
        }
    }));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.failed.len(), 1);
    assert!(
        out.outcome.failed[0].reason.contains("FAILED"),
        "{:?}",
        out.outcome.failed
    );
    assert_eq!(out.outcome.skipped, 3);
    assert_eq!(out.outcome.succeeded, 4);
    assert_eq!(fake.count("scancel"), 1, "one scancel for all children");
    let cancelled = fake
        .jobs
        .values()
        .filter(|j| j.state == JobState::Cancelled)
        .count();
    assert_eq!(cancelled, 3);
}

#[test]
fn transient_sbatch_errors_are_retried_with_backoff() {
    let store = Store::new("transient");
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    for _ in 0..3 {
        fake.sbatch_failures.push_back(
            "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"
                .into(),
        );
    }
    let out = run(&plan, &opts(10), &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    assert_eq!(fake.count("sbatch"), 5);
}

#[test]
fn refused_submission_fails_with_sbatchs_words_rule_and_job() {
    let store = Store::new("refused");
    let plan = store.plan(2, &["hmc"]);
    let mut fake = Fake::new(all_complete());
    fake.sbatch_failures.push_back(
        "sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified".into(),
    );
    let out = run(&plan, &opts(10), &mut fake);
    assert_eq!(out.outcome.failed.len(), 1);
    let why = &out.outcome.failed[0].reason;
    assert!(
        why.contains("invalid partition specified: nosuch")
            && why.contains("build_target")
            && why.contains(&plan.job_key(crate::plan::JobRef::Target(0))),
        "{why}"
    );
    // Without -k nothing else is submitted; the refused jobs are closed in the journal.
    assert_eq!(fake.count("sbatch"), 1);
    assert!(events(&plan).iter().any(|e| e.event == "submit_failed"));
}

#[test]
fn a_second_invocation_reattaches_instead_of_submitting_again() {
    let store = Store::new("reattach");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    let mut o = opts(20);
    o.detach = true;
    let first = run(&plan, &o, &mut fake);
    assert_eq!(first.detached, Some((6, 0)));
    let submitted = fake.count("sbatch");
    assert_eq!(submitted, 4);
    o.detach = false;
    let second = run(&plan, &o, &mut fake);
    assert_eq!(second.outcome.succeeded, 6, "{:?}", second.outcome.failed);
    assert_eq!(fake.count("sbatch"), submitted, "nothing submitted twice");
    assert!(
        std::fs::read_dir(store.dir.join(".lambda-hat/incomplete"))
            .unwrap()
            .next()
            .is_none()
    );
}

/// A retry that a controller takes over (here its `sbatch` was cut off) still counts the
/// attempts before it: with `--retries 1`, attempt 2 failing is the end, not one more retry.
#[test]
fn a_retry_taken_over_counts_the_attempts_before_it() {
    let store = Store::new("reattach-retry");
    let plan = store.plan(1, &[]);
    let key = plan.job_key(crate::plan::JobRef::Target(0));
    let mut j = Journal::open(&plan.store_root).unwrap();
    j.append(&crate::store::Event {
        detail: Some(serde_json::json!({"name": "lh-build_target-deadbeef"})),
        attempt: Some(2),
        ..crate::store::Event::new("submitting", &key, "build_target")
    })
    .unwrap();
    let mut fake = Fake::new(Box::new(|_| (JobState::Failed, 0, String::new())));
    let mut o = opts(4);
    o.retries = 1;
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.failed.len(), 1);
    assert_eq!(fake.count("sbatch"), 1, "attempt 2 of 2 was retried again");
    let attempts: Vec<u32> = events(&plan)
        .iter()
        .filter(|e| e.event == "submitting")
        .filter_map(|e| e.attempt)
        .collect();
    assert_eq!(attempts, vec![2, 2]);
}

#[test]
fn dangling_intent_is_looked_up_by_name_then_resubmitted() {
    let store = Store::new("dangling");
    let plan = store.plan(1, &["hmc"]);
    let key = plan.job_key(crate::plan::JobRef::Target(0));
    let mut j = Journal::open(&plan.store_root).unwrap();
    j.append(&crate::store::Event {
        detail: Some(serde_json::json!({"name": "lh-build_target-deadbeef"})),
        ..crate::store::Event::new("submitting", &key, "build_target")
    })
    .unwrap();
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &opts(4), &mut fake);
    assert_eq!(out.outcome.succeeded, 2);
    assert_eq!(fake.count("squeue-names"), 1);
}

#[test]
fn completed_job_without_output_fails_after_latency_wait() {
    let store = Store::new("nooutput");
    let plan = store.plan(1, &["hmc"]);
    // "Completes" but writes no marker: RUNNING → COMPLETED without the fake's file.
    let mut fake = Fake::new(Box::new(|_| (JobState::Completed, 0, String::new())));
    fake.write_markers = false;
    let out = run(&plan, &opts(4), &mut fake);
    let f = &out.outcome.failed[0];
    assert_eq!(f.job, crate::plan::JobRef::Target(0));
    assert!(
        f.reason.contains("missing after --latency-wait 3 s"),
        "{}",
        f.reason
    );
    assert!(
        f.log
            .ends_with(format!("logs/build_target/{}.log", plan.job_key(f.job)))
    );
    assert_eq!(out.outcome.succeeded, 0);
}

#[test]
fn ctrl_c_cancels_everything_with_one_scancel() {
    let store = Store::new("ctrlc");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    fake.interrupt_after_sleeps = Some(1);
    let out = run(&plan, &opts(20), &mut fake);
    assert!(out.outcome.interrupted);
    assert_eq!(fake.count("scancel"), 1);
    assert!(
        fake.jobs
            .values()
            .all(|j| j.state == JobState::Cancelled || j.state == JobState::Completed)
    );
}

#[test]
fn ctrl_c_at_any_moment_accounts_for_every_job() {
    // Outputs never appear, so finished jobs sit in the latency wait: Ctrl-C must count them
    // (as skipped: their outputs are not there) along with the queued and waiting ones.
    // Late interrupts find the run over (every job failed its latency wait): the count must
    // hold then too, and the early ones must really interrupt.
    let mut interrupted = 0;
    for sleeps in 1..10 {
        let store = Store::new(&format!("ctrlc-count-{sleeps}"));
        let plan = store.plan(2, &["hmc"]);
        let mut fake = Fake::new(all_complete());
        fake.write_markers = false;
        fake.interrupt_after_sleeps = Some(sleeps);
        let out = run(&plan, &opts(20), &mut fake).outcome;
        interrupted += usize::from(out.interrupted);
        assert_eq!(
            out.succeeded + out.failed.len() + out.skipped,
            plan.n_jobs(),
            "interrupt after {sleeps} sleeps: {out:?}"
        );
    }
    assert!(interrupted >= 3, "only {interrupted} runs were interrupted");
}

/// Ctrl-C while jobs are being submitted stops submitting at once (each sbatch can take seconds)
/// and cancels what went out, also with `--detach`.
#[test]
fn ctrl_c_during_submission_submits_nothing_more() {
    for detach in [false, true] {
        let store = Store::new(&format!("ctrlc-submit-{detach}"));
        let plan = store.plan(3, &["hmc"]);
        let mut fake = Fake::new(all_complete());
        fake.interrupt_after_sbatch = Some(1);
        let mut o = opts(20);
        o.detach = detach;
        let out = run(&plan, &o, &mut fake);
        assert_eq!(fake.count("sbatch"), 1, "detach {detach}");
        assert!(out.outcome.interrupted, "detach {detach}");
        assert_eq!(fake.count("scancel"), 1, "detach {detach}");
        assert!(fake.jobs.values().all(|j| j.state == JobState::Cancelled));
    }
}

/// Jobs cancelled from outside while they were pending never ran: they fail (as cancelled), but
/// leave no incomplete marker, so the next run redoes them without `--rerun-incomplete`.
#[test]
fn jobs_cancelled_outside_before_they_started_are_not_incomplete() {
    let store = Store::new("outside-cancel-pending");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    fake.cancel_pending_at_sleep = Some(1);
    let out = run(&plan, &opts(20), &mut fake).outcome;
    let markers = crate::store::IncompleteMarkers::new(&plan.store_root);
    let mut never_started = 0;
    for job in plan.jobs() {
        if !plan.log_path(job).is_file() && !plan.output(job).is_file() {
            never_started += 1;
            assert!(
                !markers.path(&plan.job_key(job)).exists(),
                "{}",
                plan.job_key(job)
            );
        }
    }
    assert!(never_started > 0, "no job was cancelled while pending");
    assert!(!out.failed.is_empty());
    assert!(out.failed.iter().all(|f| !f.left_incomplete));
}

/// Ctrl-C keeps the jobs that finished since the last poll (their outputs are there: not
/// incomplete, recorded as finished) and forgets the ones that never started (no log: no partial
/// files, so not incomplete either); only a job killed while running stays incomplete.
#[test]
fn ctrl_c_keeps_what_finished_unseen_and_forgets_what_never_started() {
    let mut kept_unseen = 0;
    for sleeps in 1..10 {
        let store = Store::new(&format!("ctrlc-keep-{sleeps}"));
        let plan = store.plan(2, &["hmc"]);
        let mut fake = Fake::new(all_complete());
        fake.interrupt_after_sleeps = Some(sleeps);
        let out = run(&plan, &opts(20), &mut fake).outcome;
        let markers = crate::store::IncompleteMarkers::new(&plan.store_root);
        let journal = events(&plan);
        for job in plan.jobs() {
            let key = plan.job_key(job);
            let marked = markers.path(&key).exists();
            let last = journal.iter().rev().find(|e| e.job == key);
            if plan.output(job).is_file() {
                assert!(!marked, "{sleeps}: {key} finished but is marked incomplete");
                assert_eq!(
                    last.map(|e| e.event.as_str()),
                    Some("finished"),
                    "{sleeps}: {key}"
                );
                kept_unseen += usize::from(
                    last.and_then(|e| e.detail.as_ref())
                        .is_some_and(|d| d["elapsed_secs"].is_null()),
                );
            } else if !plan.log_path(job).is_file() {
                assert!(
                    !marked,
                    "{sleeps}: {key} never started but is marked incomplete"
                );
            }
        }
        assert_eq!(
            out.succeeded + out.failed.len() + out.skipped,
            plan.n_jobs()
        );
    }
    assert!(
        kept_unseen > 0,
        "no interrupt fell between a job's end and its poll"
    );
}

#[test]
fn squeue_outage_is_waited_out_without_losing_jobs() {
    let store = Store::new("squeue-outage");
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    for _ in 0..4 {
        fake.squeue_failures.push_back(
            "slurm_load_jobs error: Unable to contact slurm controller (connect failure)".into(),
        );
    }
    let out = run(&plan, &opts(10), &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    assert_eq!(fake.count("sbatch"), 2, "nothing resubmitted");
}

#[test]
fn node_failure_is_resubmitted_as_is() {
    let store = Store::new("nodefail");
    let plan = store.plan(1, &["hmc"]);
    let mut o = opts(10);
    o.retries = 1;
    let mut fake = Fake::new(Box::new(|job| {
        if job.key.job_id == 100 {
            (JobState::NodeFail, 0, String::new())
        } else {
            (JobState::Completed, 0, String::new())
        }
    }));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 2, "{:?}", out.outcome.failed);
    let failed: Vec<_> = events(&plan)
        .into_iter()
        .filter(|e| e.event == "failed")
        .collect();
    assert_eq!(failed[0].state.as_deref(), Some("NODE_FAIL"));
    assert!(
        failed[0].detail.as_ref().unwrap()["reason"]
            .as_str()
            .unwrap()
            .contains("retrying as is")
    );
}

#[test]
fn dependency_problem_waits_for_the_parent_then_submits_without_dependency() {
    let store = Store::new("depproblem");
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    // The build job goes out; the array with afterok on it hits the race.
    fake.fail_sbatch_number = Some((
        2,
        "sbatch: error: Batch job submission failed: Job dependency problem".into(),
    ));
    let out = run(&plan, &opts(10), &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    let arrays: Vec<_> = fake
        .jobs
        .values()
        .filter(|j| j.key.array_task.is_some())
        .collect();
    assert_eq!(arrays.len(), 2);
    // Resubmitted only after a poll: with afterok if the parent was still queued then.
    let build = fake.jobs.keys().next().copied();
    assert!(
        arrays
            .iter()
            .all(|j| j.dependency.is_none() || j.dependency == build)
    );
    assert!(events(&plan).iter().any(|e| e.event == "submit_failed"));
    let sbatches: Vec<usize> = (0..fake.calls.len())
        .filter(|&i| fake.calls[i] == "sbatch")
        .collect();
    assert!(
        fake.calls[sbatches[1]..sbatches[2]].contains(&"squeue".to_string()),
        "a poll between the refused and the next submission: {:?}",
        fake.calls
    );
}

#[test]
fn without_accounting_scontrol_is_the_fallback() {
    let store = Store::new("noacct");
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    fake.no_accounting = true;
    let out = run(&plan, &opts(10), &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    assert_eq!(
        fake.count("sacct"),
        1,
        "sacct is not asked again once it said it is disabled"
    );
    assert!(fake.count("scontrol") >= 1);
    assert!(max_queries_per_cycle(&fake) <= 2);
}

/// `lambda-hat cancel` from another terminal while a controller runs writes the jobs'
/// `cancelled` lines and scancels them. The controller finds those lines when it sees the jobs
/// end: it writes no `failed` line over them (status counted them as failed), retries nothing,
/// submits nothing more even with --keep-going, and ends saying the sweep was cancelled.
#[test]
fn lambda_hat_cancel_while_the_controller_runs_stops_it_without_failures() {
    use std::{cell::Cell, rc::Rc};
    let store = Store::new("cancel-command-live");
    let plan = store.plan(3, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    let submitted_at_cancel = Rc::new(Cell::new(0));
    let (seen, for_cancel) = (submitted_at_cancel.clone(), plan.clone());
    fake.at_sleep = Some((
        2,
        Box::new(move |fake: &mut Fake| {
            let done = crate::exec::status::cancel(&for_cancel, fake).unwrap();
            assert!(
                !done.slurm_ids.is_empty(),
                "nothing was in flight to cancel"
            );
            seen.set(fake.count("sbatch"));
        }),
    ));
    let mut o = opts(1);
    (o.retries, o.keep_going) = (2, true);
    let out = run(&plan, &o, &mut fake).outcome;
    assert!(!out.interrupted);
    assert_eq!(
        fake.count("sbatch"),
        submitted_at_cancel.get(),
        "submitted after the cancel"
    );
    assert!(
        out.succeeded + out.skipped == plan.jobs().count(),
        "{out:?}"
    );
    assert!(out.skipped > 0);
    cancelled_by_command_without_failures(&out, &plan, &mut fake);
}

/// `lambda-hat cancel` runs scancel and then writes its journal lines; a poll in between sees
/// the jobs end CANCELLED with no line for them yet. The controller looks again on the next
/// poll, finds the lines, and records no failure.
#[test]
fn a_poll_between_the_cancel_commands_scancel_and_its_journal_lines_is_not_a_failure() {
    let store = Store::new("cancel-command-race");
    let plan = store.plan(3, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    let for_cancel = plan.clone();
    fake.at_sleep = Some((
        2,
        Box::new(move |fake: &mut Fake| {
            // The command's scancel happens now; its journal lines reach the file only after
            // the controller's next poll (written here, then held back and put back at sleep 3).
            let journal = crate::store::Journal::path_in(&for_cancel.store_root);
            let before = std::fs::read(&journal).unwrap();
            let done = crate::exec::status::cancel(&for_cancel, fake).unwrap();
            assert!(
                !done.slurm_ids.is_empty(),
                "nothing was in flight to cancel"
            );
            let after = std::fs::read(&journal).unwrap();
            assert!(after.len() > before.len(), "cancel wrote no journal lines");
            std::fs::write(&journal, &before).unwrap();
            let held = after[before.len()..].to_vec();
            fake.at_sleep = Some((
                3,
                Box::new(move |_: &mut Fake| {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .append(true)
                        .open(&journal)
                        .unwrap();
                    f.write_all(&held).unwrap();
                }),
            ));
        }),
    ));
    let out = run(&plan, &opts(2), &mut fake).outcome;
    cancelled_by_command_without_failures(&out, &plan, &mut fake);
}

/// `lambda-hat cancel` planned a smaller sweep than the running controller (another
/// `--configfile` on the same store): its scancel of the runs' array killed a run it did not
/// record. The controller takes that run as cancelled by the command too and records it so,
/// instead of counting it as failed.
#[test]
fn a_job_killed_with_its_array_by_a_narrower_cancel_is_not_a_failure() {
    let store = Store::new("cancel-command-narrower");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
    let narrower = store.plan(1, &["hmc", "sgld"]);
    assert_eq!(
        plan.job_key(plan.jobs().next().unwrap()),
        narrower.job_key(narrower.jobs().next().unwrap())
    );
    let mut fake = Fake::new(all_complete());
    fake.at_sleep = Some((
        2,
        Box::new(move |fake: &mut Fake| {
            let done = crate::exec::status::cancel(&narrower, fake).unwrap();
            // The build (running) and two of the three runs (queued on it as one array).
            assert_eq!(done.jobs, 3, "{done:?}");
        }),
    ));
    let out = run(&plan, &opts(20), &mut fake).outcome;
    let journal = cancelled_by_command_without_failures(&out, &plan, &mut fake);
    let cancelled = journal
        .iter()
        .filter(|e| e.event == super::history::CANCELLED)
        .count();
    assert_eq!(
        cancelled, 4,
        "three by the command, the third run by the controller"
    );
}

/// Checks a run that `lambda-hat cancel` stopped: its outcome says so, and neither the outcome,
/// the journal nor `status` counts a job as failed. Returns the journal.
fn cancelled_by_command_without_failures(
    out: &crate::exec::Outcome,
    plan: &Plan,
    fake: &mut Fake,
) -> Vec<crate::store::Event> {
    use crate::exec::status::{JobStatus, SweepStatus};
    assert!(out.cancelled_by_command, "{out:?}");
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    let journal = events(plan);
    assert!(
        journal.iter().all(|e| e.event != super::history::FAILED),
        "{journal:#?}"
    );
    let report = SweepStatus::observe(plan, false, fake).unwrap();
    assert!(
        !states(&report).contains(&JobStatus::Failed),
        "{:?}",
        states(&report)
    );
    journal
}

/// The state of every job of `plan` per `status`, in plan order.
fn states(report: &crate::exec::status::SweepStatus) -> Vec<crate::exec::status::JobStatus> {
    report.jobs.iter().map(|j| j.state).collect()
}

/// A sweep of one target with two samplers submitted with `--detach` (the store must outlive
/// the plan).
fn submit_detached(name: &str) -> (Store, Plan, Fake) {
    let store = Store::new(name);
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    let mut o = opts(20);
    o.detach = true;
    run(&plan, &o, &mut fake);
    (store, plan, fake)
}

/// A plain scancel from outside, then `--detach` again: its one poll sees the jobs end
/// CANCELLED with no `lambda-hat cancel` line. They are judged before it exits (failed), not
/// left open for the next run, which would see the same and leave them again.
#[test]
fn a_detached_reattach_judges_jobs_cancelled_outside_instead_of_leaving_them_open() {
    let (_store, plan, mut fake) = submit_detached("detach-outside-scancel");
    let ids: Vec<String> = events(&plan)
        .iter()
        .filter(|e| e.event == super::history::SUBMITTED)
        .filter_map(|e| e.slurm_job_id.clone())
        .collect();
    assert!(!ids.is_empty());
    fake.scancel(&ids).unwrap();
    let mut o = opts(20);
    o.detach = true;
    let out = run(&plan, &o, &mut fake);
    assert!(!out.outcome.failed.is_empty(), "{:?}", out.outcome);
    assert!(!out.outcome.cancelled_by_command);
    assert_eq!(out.detached.map(|d| d.0), Some(0), "left queued: {out:?}");
    assert!(
        events(&plan)
            .iter()
            .any(|e| e.event == super::history::FAILED)
    );
}

/// `lambda-hat cancel` writes its lines one by one: the poll that finds the first may miss
/// those of another SLURM job it cancelled. When the run stops, those jobs are the command's
/// too: not failed, not listed as missed, not cancelled again.
#[test]
fn a_cancel_commands_lines_read_half_written_still_stop_the_run_cleanly() {
    let store = Store::new("cancel-command-half-read");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut fake = Fake::new(all_complete());
    let for_cancel = plan.clone();
    fake.at_sleep = Some((
        1,
        Box::new(move |fake: &mut Fake| {
            let journal = crate::store::Journal::path_in(&for_cancel.store_root);
            let before = std::fs::read_to_string(&journal).unwrap();
            let done = crate::exec::status::cancel(&for_cancel, fake).unwrap();
            assert!(done.slurm_ids.len() >= 2, "{done:?}");
            // Hold back the lines of the last SLURM job the command cancelled.
            let after = std::fs::read_to_string(&journal).unwrap();
            let new: Vec<&str> = after[before.len()..].lines().collect();
            let last_id = done.slurm_ids.last().unwrap().clone();
            let (held, kept): (Vec<&str>, Vec<&str>) = new.iter().partition(|l| {
                serde_json::from_str::<crate::store::Event>(l)
                    .unwrap()
                    .slurm_job_id
                    .is_some_and(|k| k.split(['_', '.']).next() == Some(last_id.as_str()))
            });
            assert!(!held.is_empty() && !kept.is_empty(), "{new:#?}");
            let mut text = before;
            for l in kept {
                text.push_str(l);
                text.push('\n');
            }
            std::fs::write(&journal, text).unwrap();
        }),
    ));
    let out = run(&plan, &opts(20), &mut fake).outcome;
    cancelled_by_command_without_failures(&out, &plan, &mut fake);
    assert_eq!(fake.count("scancel"), 1, "only the command's own scancel");
}

#[test]
fn status_asks_the_cluster_about_the_jobs_in_flight_and_cancel_stops_them() {
    use crate::exec::status::{JobStatus, SweepStatus, cancel};
    let (_store, plan, mut fake) = submit_detached("status-cancel");
    let sbatch = fake.count("sbatch");
    assert_eq!(sbatch, 2, "the target's job, then one array of its runs");

    // Everything is queued: one squeue (and one sacct) says so.
    let before = (fake.count("squeue"), fake.count("sacct"));
    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    assert_eq!(fake.count("squeue"), before.0 + 1);
    assert_eq!(fake.count("sacct"), before.1 + 1);
    assert_eq!(states(&report), vec![JobStatus::Pending; 3]);
    assert_eq!(report.rules["run_sampler"][&JobStatus::Pending], 2);
    assert!(report.jobs.iter().all(|j| j.slurm_job_id.is_some()));

    // The target's job starts: status shows it running while its runs wait.
    fake.sleep(Duration::from_secs(1));
    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    assert_eq!(
        states(&report),
        vec![JobStatus::Running, JobStatus::Pending, JobStatus::Pending]
    );

    // cancel: one scancel naming each SLURM job once, recorded in the journal.
    let done = cancel(&plan, &mut fake).unwrap();
    assert_eq!(fake.count("scancel"), 1);
    assert_eq!(done.slurm_ids.len(), 2, "{done:?}");
    assert_eq!(done.jobs, 3);
    assert!(fake.jobs.values().all(|j| j.state == JobState::Cancelled));
    let cancelled = events(&plan)
        .iter()
        .filter(|e| e.event == super::history::CANCELLED)
        .count();
    assert_eq!(cancelled, 3);

    // Nothing is in flight any more: status does not ask SLURM, and a second cancel has
    // nothing to do.
    let asked = fake.count("squeue");
    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    assert_eq!(fake.count("squeue"), asked);
    assert!(states(&report).iter().all(|s| *s != JobStatus::Pending));
    assert_eq!(cancel(&plan, &mut fake).unwrap().jobs, 0);
    assert_eq!(fake.count("scancel"), 1);
}

/// After `--detach` no controller polls, so no journal line says a job is stuck pending: status
/// reads SLURM's reason itself and names the job with what to change.
#[test]
fn status_names_a_job_stuck_pending_after_detach() {
    use crate::exec::status::SweepStatus;
    let (_store, plan, mut fake) = submit_detached("stuck-detached");
    fake.pending_reason = Some("PartitionConfig".into());
    assert!(
        events(&plan)
            .iter()
            .all(|e| e.event != super::history::PENDING_STUCK)
    );
    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    let stuck: Vec<&str> = report
        .jobs
        .iter()
        .filter_map(|j| j.stuck.as_deref())
        .collect();
    assert_eq!(stuck.len(), 3, "{:?}", report.jobs);
    assert!(
        stuck[0].starts_with("PartitionConfig: ") && stuck[0].contains("cpus_per_task"),
        "{stuck:?}"
    );
    // A reason that clears by itself is not called stuck.
    fake.pending_reason = Some("Priority".into());
    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    assert!(report.jobs.iter().all(|j| j.stuck.is_none()));
}

/// A submission whose `sbatch` was cut off (the controller died: `submitting` without
/// `submitted` in the journal) is on SLURM all the same: `status` finds it by its name and shows
/// it, and `cancel` stops it.
#[test]
fn status_and_cancel_find_a_submission_whose_sbatch_was_cut_off() {
    use crate::exec::status::{JobStatus, SweepStatus, cancel};
    let (_store, plan, mut fake) = submit_detached("cut-off");
    let build = plan.job_key(plan.jobs().next().unwrap());
    // Forget the build's `submitted` line, as if the controller died while sbatch ran.
    let path = Journal::path_in(&plan.store_root);
    let kept: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !(l.contains("\"submitted\"") && l.contains(&format!("\"{build}\""))))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).unwrap();

    let report = SweepStatus::observe(&plan, false, &mut fake).unwrap();
    assert_eq!(
        states(&report)[0],
        JobStatus::Pending,
        "{:?}",
        states(&report)
    );
    let done = cancel(&plan, &mut fake).unwrap();
    assert_eq!(done.jobs, 3, "{done:?}");
    assert!(fake.jobs.values().all(|j| j.state == JobState::Cancelled));
}

/// `cancel` after `--detach`: a job that finished while no controller watched is kept (recorded
/// as finished, no incomplete marker), and the jobs that never started leave no marker either,
/// so the next sweep runs only those, without `--rerun-incomplete`.
#[test]
fn cancel_keeps_what_finished_while_detached_and_forgets_what_never_started() {
    use crate::exec::status::cancel;
    let (_store, plan, mut fake) = submit_detached("cancel-keep");
    fake.sleep(Duration::from_secs(1)); // the build starts
    fake.sleep(Duration::from_secs(1)); // and ends; its samplers are still queued
    let target = plan.jobs().next().unwrap();
    assert!(plan.output(target).is_file());

    let build_id = fake
        .jobs
        .values()
        .find(|j| {
            j.members.is_empty()
                && plan.output(target).is_file()
                && j.spec.parent() == plan.output(target).parent()
        })
        .map(|j| j.key.job_id.to_string());
    let done = cancel(&plan, &mut fake).unwrap();
    assert_eq!((done.jobs, done.kept), (3, 1), "{done:?}");
    // The build's SLURM job had ended: it is not among the cancelled.
    let build_id = build_id.expect("the build's fake job");
    assert!(!done.slurm_ids.contains(&build_id), "{done:?}");
    assert!(!done.slurm_ids.is_empty(), "{done:?}");
    let markers = crate::store::IncompleteMarkers::new(&plan.store_root);
    assert!(markers.list().is_empty(), "{:?}", markers.list());
    let journal = events(&plan);
    let last = |key: &str| {
        journal
            .iter()
            .rev()
            .find(|e| e.job == key)
            .unwrap()
            .event
            .clone()
    };
    assert_eq!(last(&plan.job_key(target)), super::history::FINISHED);
    for run in plan.jobs().skip(1) {
        assert_eq!(last(&plan.job_key(run)), super::history::CANCELLED);
    }
}

/// `cancel` when every detached job has finished: nothing goes to scancel, and all are kept.
#[test]
fn cancel_after_everything_finished_cancels_nothing() {
    use crate::exec::status::cancel;
    let (_store, plan, mut fake) = submit_detached("cancel-nothing");
    for _ in 0..10 {
        fake.sleep(Duration::from_secs(1));
    }
    assert!(plan.jobs().all(|j| plan.output(j).is_file()));
    let scancels = fake.count("scancel");
    let done = cancel(&plan, &mut fake).unwrap();
    assert_eq!(fake.count("scancel"), scancels, "no scancel");
    assert!(done.slurm_ids.is_empty(), "{done:?}");
    assert_eq!((done.jobs, done.kept), (3, 3), "{done:?}");
}

#[test]
fn cancel_reports_what_scancel_refused() {
    let store = Store::new("cancel-refused");
    let plan = store.plan(1, &["hmc"]);
    let mut fake = Fake::new(all_complete());
    let mut o = opts(20);
    o.detach = true;
    run(&plan, &o, &mut fake);
    fake.scancel_failure = Some("scancel: error: Access/permission denied".into());
    let err = crate::exec::status::cancel(&plan, &mut fake).unwrap_err();
    assert!(
        err.to_string().contains("Access/permission denied"),
        "{err}"
    );
    // Nothing recorded as cancelled: the jobs still run.
    assert!(
        !events(&plan)
            .iter()
            .any(|e| e.event == super::history::CANCELLED)
    );
}

/// A [`Fake::member_fails`] under which each member whose spec path passes `pick` fails the
/// first time it runs and succeeds after.
fn fails_once_where(pick: impl Fn(&str) -> bool + 'static) -> Box<dyn FnMut(&Path) -> bool> {
    let mut failed_once = std::collections::BTreeSet::new();
    Box::new(move |spec: &Path| {
        pick(&spec.to_string_lossy()) && failed_once.insert(spec.to_path_buf())
    })
}

fn bundled(jobs: usize, size: usize) -> SlurmOptions {
    SlurmOptions {
        bundle_size: crate::config::profile::BundleSize::Fixed(
            std::num::NonZeroUsize::new(size).unwrap(),
        ),
        ..opts(jobs)
    }
}

/// The fake jobs that ran bundles, with how many members each had.
fn bundle_sizes(fake: &Fake) -> Vec<usize> {
    fake.jobs
        .values()
        .filter(|j| !j.members.is_empty())
        .map(|j| j.members.len())
        .collect()
}

/// The scripts lambda-hat wrote for bundles.
fn bundle_scripts(store: &Store) -> Vec<String> {
    std::fs::read_dir(store.dir.join(".lambda-hat/slurm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|text| text.contains("bundle_list="))
        .collect()
}

#[test]
fn a_target_not_built_yet_goes_out_with_its_samplers_in_one_bundle() {
    let store = Store::new("bundle-shape");
    let plan = store.plan(2, &["hmc", "sgld", "mclmc"]);
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &bundled(20, 3), &mut fake);
    assert_eq!(out.outcome.succeeded, 8, "{:?}", out.outcome.failed);
    // One sbatch: an array with one task per target, each its build and its 3 samplers.
    assert_eq!(fake.count("sbatch"), 1);
    assert_eq!(bundle_sizes(&fake), vec![4, 4]);
    for j in fake.jobs.values() {
        assert!(j.key.array_task.is_some(), "one array of bundles");
        assert!(
            j.dependency.is_none(),
            "nothing to wait for: the build is inside"
        );
        assert!(j.members[0].build && j.members[1..].iter().all(|m| !m.build));
    }
    // Every member has its own journal lines, sharing the bundle's SLURM id.
    let ev = events(&plan);
    let jobs = (0..plan.targets.len() as u32)
        .map(crate::plan::JobRef::Target)
        .chain((0..plan.runs.len() as u32).map(crate::plan::JobRef::Run));
    for job in jobs {
        let key = plan.job_key(job);
        let of = |name: &str| {
            ev.iter()
                .filter(|e| e.job == key && e.event == name)
                .count()
        };
        assert_eq!(
            (of("submitting"), of("submitted"), of("finished")),
            (1, 1, 1),
            "{key}"
        );
        let sub = ev
            .iter()
            .find(|e| e.job == key && e.event == "submitting")
            .unwrap();
        assert_eq!(
            sub.detail.as_ref().unwrap()["bundle"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }
    // The bundle asks for the sum of its members' runtimes (60 min for the build, 3 × 120 for
    // the samplers) and the largest memory.
    let scripts = bundle_scripts(&store);
    assert_eq!(scripts.len(), 1);
    assert!(scripts[0].contains("#SBATCH -t '420'"), "{}", scripts[0]);
    assert!(
        scripts[0].contains("#SBATCH --mem '1000'"),
        "{}",
        scripts[0]
    );
}

#[test]
fn samplers_that_do_not_fit_the_builds_bundle_go_once_it_is_done() {
    let store = Store::new("bundle-array");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc", "nuts"]);
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &bundled(20, 3), &mut fake);
    assert_eq!(out.outcome.succeeded, 5, "{:?}", out.outcome.failed);
    // The build with 3 samplers, then the 4th sampler alone: a bundle's exit status is not
    // the build's own, so nothing depends on it with afterok; the sampler waits for the build.
    assert_eq!(fake.count("sbatch"), 2);
    assert_eq!(bundle_sizes(&fake), vec![4]);
    assert!(fake.jobs.values().all(|j| j.dependency.is_none()));
}

#[test]
fn members_that_finish_inside_a_running_bundle_are_passed_on_at_once() {
    let store = Store::new("bundle-progress");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc", "nuts"]);
    let mut fake = Fake::new(all_complete());
    fake.member_per_tick = true;
    let out = run(&plan, &bundled(20, 3), &mut fake);
    assert_eq!(out.outcome.succeeded, 5, "{:?}", out.outcome.failed);
    assert_eq!(bundle_sizes(&fake), vec![4]);
    // Each member's `finished` line is written while its bundle still runs, so the 4th sampler
    // (no room in the build's bundle) goes as soon as the build is done, before the bundle's
    // last member finishes; before, it waited for the whole bundle to end.
    let ev = events(&plan);
    let run_keys: Vec<String> = (0..plan.runs.len() as u32)
        .map(|r| plan.job_key(crate::plan::JobRef::Run(r)))
        .collect();
    let submitted_runs: std::collections::BTreeSet<&str> = ev
        .iter()
        .filter(|e| e.event == "submitting")
        .map(|e| e.job.as_str())
        .collect();
    let alone = run_keys
        .iter()
        .find(|k| {
            let first = ev
                .iter()
                .find(|e| &e.job == *k && e.event == "submitting")
                .unwrap();
            first.detail.as_ref().unwrap()["bundle"].is_null()
        })
        .expect("one sampler outside the bundle");
    assert!(submitted_runs.contains(alone.as_str()));
    let position = |job: &str, event: &str| {
        ev.iter()
            .position(|e| e.job == job && e.event == event)
            .unwrap_or_else(|| panic!("no {event} for {job}"))
    };
    let build = plan.job_key(crate::plan::JobRef::Target(0));
    let last_member_finished = run_keys
        .iter()
        .filter(|k| *k != alone)
        .map(|k| position(k, "finished"))
        .max()
        .unwrap();
    assert!(position(&build, "finished") < position(alone, "submitting"));
    assert!(
        position(alone, "submitting") < last_member_finished,
        "the 4th sampler waited for the bundle to end: {ev:#?}"
    );
    // The members finished one per poll, each with the benchmark its worker wrote.
    let finished: Vec<&crate::store::Event> = ev.iter().filter(|e| e.event == "finished").collect();
    assert_eq!(finished.len(), 5);
    for e in finished {
        assert_eq!(e.state.as_deref(), Some("COMPLETED"), "{e:?}");
    }
    // Nothing was judged twice when the bundle ended.
    assert_eq!(
        ev.iter().filter(|e| e.event == "failed").count(),
        0,
        "{ev:#?}"
    );
}

#[test]
fn a_run_that_fails_inside_a_running_bundle_is_retried_while_the_bundle_runs_on() {
    let store = Store::new("bundle-progress-fail");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
    let mut o = bundled(20, 4);
    o.retries = 1;
    let mut fake = Fake::new(all_complete());
    fake.member_per_tick = true;
    // The first sampler of the bundle (after the build) fails the first time it runs.
    fake.member_fails = fails_once_where(|spec| spec.contains("run_hmc_"));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 4, "{:?}", out.outcome.failed);
    assert_eq!(bundle_sizes(&fake), vec![4]);
    let ev = events(&plan);
    let hmc = plan.job_key(crate::plan::JobRef::Run(0));
    assert!(hmc.contains("run_hmc_"), "{hmc}");
    let nth = |job: &str, event: &str, n: usize| {
        ev.iter()
            .enumerate()
            .filter(|(_, e)| e.job == job && e.event == event)
            .nth(n)
            .map(|(at, _)| at)
            .unwrap_or_else(|| panic!("no {event} #{n} for {job}: {ev:#?}"))
    };
    // Judged failed from its own log (exit status 1, retried) and submitted again before the
    // bundle's last member finished; the retry alone, and it succeeded.
    let failed = &ev[nth(&hmc, "failed", 0)];
    assert_eq!(failed.state.as_deref(), Some("FAILED"));
    let detail = failed.detail.as_ref().unwrap();
    assert_eq!(detail["retry"], true, "{detail}");
    let last_member = plan.job_key(crate::plan::JobRef::Run(2));
    assert!(nth(&hmc, "submitting", 1) < nth(&last_member, "finished", 0));
    assert!(nth(&hmc, "submitting", 1) < nth(&hmc, "finished", 0));
    assert_eq!(
        ev.iter()
            .filter(|e| e.job == hmc && e.event == "submitting")
            .count(),
        2
    );
    // The bundle's end (FAILED, for its hmc member) judged nothing again.
    assert_eq!(
        ev.iter().filter(|e| e.event == "failed").count(),
        1,
        "{ev:#?}"
    );
}

/// A build that fails inside a running bundle is judged when the bundle ends, as before: its
/// runs are queued in the same SLURM job, so they could not be requeued alone while it runs.
#[test]
fn a_build_that_fails_inside_a_running_bundle_waits_for_the_bundles_end() {
    let store = Store::new("bundle-progress-build-fail");
    let plan = store.plan(1, &["hmc", "sgld"]);
    let mut o = bundled(20, 3);
    o.retries = 1;
    let mut fake = Fake::new(all_complete());
    fake.member_per_tick = true;
    fake.member_fails = fails_once_where(|spec| !spec.contains("run_"));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    assert_eq!(
        fake.count("scancel"),
        0,
        "nothing cancelled the running bundle"
    );
    // The build retried once; its runs went again after it, with no failure of their own.
    let ev = events(&plan);
    let failed: Vec<&str> = ev
        .iter()
        .filter(|e| e.event == "failed")
        .map(|e| e.job.as_str())
        .collect();
    assert_eq!(failed, [plan.job_key(crate::plan::JobRef::Target(0))]);
}

#[test]
fn a_bundle_counts_once_against_the_jobs_limit() {
    let store = Store::new("bundle-budget");
    let plan = store.plan(3, &["hmc", "sgld", "mclmc"]);
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &bundled(1, 3), &mut fake);
    assert_eq!(out.outcome.succeeded, 12, "{:?}", out.outcome.failed);
    assert!(fake.max_queued <= 1, "max queued {}", fake.max_queued);
    // -j 1 still fills each bundle: one per target, its build and its 3 samplers.
    assert_eq!(bundle_sizes(&fake), vec![4, 4, 4]);
}

#[test]
fn auto_bundles_a_targets_tiny_jobs_together() {
    let store = Store::new("bundle-auto");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut o = opts(20);
    o.bundle_size = crate::config::profile::BundleSize::Auto;
    // Make the jobs tiny for the estimate, as in the SLURM tests' sweep.
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 6, "{:?}", out.outcome.failed);
    // What auto chose agrees with the pure planner on each target's jobs, its build first.
    let per_target: Vec<usize> = (0..2u32)
        .map(|t| {
            let config = &plan.targets[t as usize].config;
            let secs: Vec<f64> = std::iter::once(super::bundle::expected_build_secs(config))
                .chain(
                    (0..plan.runs.len() as u32)
                        .filter(|&r| plan.run_target(r) == t)
                        .map(|r| super::bundle::expected_secs(config, plan.run_sampler(r))),
                )
                .collect();
            super::bundle::plan(&secs, o.bundle_size).len()
        })
        .collect();
    assert_eq!(fake.jobs.len(), per_target.iter().sum::<usize>());
}

/// With `auto`, tiny targets share a bundle: their builds and runs, target after target, in
/// one SLURM job until it is expected to last a minute.
#[test]
fn auto_packs_tiny_targets_into_one_bundle() {
    let store = Store::new("bundle-auto-pack");
    // The budgets of the SLURM integration tests: each job takes well under a second.
    let plan = store.plan_with(
        4,
        "data: { n_data: 200 }, training: { steps: 50 }",
        &[
            "name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 }",
            "name: mclmc, overrides: { chains: 2, draws: 100, num_tuning_steps: 100 }",
        ],
    );
    let mut o = opts(20);
    o.bundle_size = crate::config::profile::BundleSize::Auto;
    let mut fake = Fake::new(all_complete());
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 12, "{:?}", out.outcome.failed);
    assert_eq!(fake.count("sbatch"), 1);
    assert_eq!(bundle_sizes(&fake), vec![12]);
    // Target after target: each build is followed by its own runs.
    let members = &fake.jobs.values().next().unwrap().members;
    let builds: Vec<usize> = (0..12).filter(|&m| members[m].build).collect();
    assert_eq!(builds, vec![0, 3, 6, 9]);
    for &b in &builds {
        let target_dir = members[b].spec.parent().unwrap();
        assert!(
            members[b + 1..b + 3]
                .iter()
                .all(|m| m.spec.starts_with(target_dir))
        );
    }
}

/// `auto` never asks for more than a day, even for one target's build and runs: jobs expected
/// to take seconds that each ask for 10 h go out one per SLURM job rather than as one 25-hour
/// bundle (which a 24-hour partition would keep pending forever).
#[test]
fn auto_keeps_a_bundles_runtime_within_a_day() {
    let store = Store::new("bundle-auto-day");
    let plan = store.plan_with(
        2,
        "data: { n_data: 200 }, training: { steps: 50 }",
        &[
            "name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 }",
            "name: mclmc, overrides: { chains: 2, draws: 100, num_tuning_steps: 100 }",
            "name: sgld, overrides: { chains: 2, steps: 200 }",
        ],
    );
    for (run_minutes, most) in [(600, 600 + 600), (120, 2 * (60 + 3 * 120))] {
        let mut o = opts(20);
        o.bundle_size = crate::config::profile::BundleSize::Auto;
        o.resources.insert(
            Rule::RunSampler,
            std::collections::BTreeMap::from([("runtime".into(), ResourceValue::Int(run_minutes))]),
        );
        o.resources.insert(
            Rule::BuildTarget,
            std::collections::BTreeMap::from([(
                "runtime".into(),
                ResourceValue::Int(run_minutes / 2),
            )]),
        );
        let mut fake = Fake::new(all_complete());
        let out = run(&plan, &o, &mut fake);
        assert_eq!(out.outcome.succeeded, 8, "{:?}", out.outcome.failed);
        let asked: Vec<i64> = bundle_scripts(&store)
            .iter()
            .map(|s| {
                let line = s.lines().find(|l| l.starts_with("#SBATCH -t ")).unwrap();
                line.trim_start_matches("#SBATCH -t ")
                    .trim_matches('\'')
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            asked.iter().all(|&m| m <= 24 * 60),
            "runs of {run_minutes} min: bundles ask for {asked:?} min"
        );
        // The tiny jobs are still bundled as far as a day allows.
        assert_eq!(asked.iter().max(), Some(&most), "{asked:?}");
        std::fs::remove_dir_all(store.dir.join(".lambda-hat/slurm")).unwrap();
        std::fs::remove_dir_all(store.dir.join("targets")).unwrap();
    }
}

/// A failed build in a bundle of several targets costs only its own target's runs.
#[test]
fn a_failed_build_in_a_packed_bundle_leaves_the_other_targets_done() {
    let store = Store::new("bundle-auto-pack-fail");
    let plan = store.plan_with(
        3,
        "data: { n_data: 200 }, training: { steps: 50 }",
        &["name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 }"],
    );
    let mut o = opts(20);
    o.bundle_size = crate::config::profile::BundleSize::Auto;
    o.keep_going = true;
    let mut fake = Fake::new(all_complete());
    let middle = plan.targets[1].id.clone();
    fake.member_fails = Box::new(move |spec: &Path| {
        let s = spec.to_string_lossy();
        !s.contains("run_") && s.contains(&middle)
    });
    let out = run(&plan, &o, &mut fake);
    assert_eq!(bundle_sizes(&fake), vec![6]);
    assert_eq!(out.outcome.failed.len(), 1, "{:?}", out.outcome.failed);
    assert_eq!(out.outcome.skipped, 1);
    assert_eq!(out.outcome.succeeded, 4);
}

/// One member of each bundle fails: it alone is retried (as a bundle of one), counts its own
/// attempt, and the members that succeeded keep their results and are not run again.
#[test]
fn a_member_that_fails_is_retried_alone_and_the_others_keep_their_results() {
    let store = Store::new("bundle-retry");
    let plan = store.plan(2, &["hmc", "sgld", "mclmc"]);
    let mut o = bundled(20, 3);
    o.retries = 1;
    let mut fake = Fake::new(all_complete());
    // Each sgld member fails the first time it runs.
    fake.member_fails = fails_once_where(|spec| spec.contains("run_sgld_"));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 8, "{:?}", out.outcome.failed);
    assert!(out.outcome.failed.is_empty());
    // 2 bundles of a build and 3 samplers (FAILED: one member each), then 2 retries of the
    // sgld runs on their own.
    assert_eq!(bundle_sizes(&fake), vec![4, 4]);
    let bundles_failed = fake
        .jobs
        .values()
        .filter(|j| j.members.len() == 4 && j.state == JobState::Failed)
        .count();
    assert_eq!(bundles_failed, 2);
    let retries: Vec<_> = fake
        .jobs
        .values()
        .filter(|j| j.members.is_empty() && j.spec.to_string_lossy().contains("run_"))
        .collect();
    assert_eq!(retries.len(), 2, "{:?}", fake.jobs.keys());
    assert!(
        retries
            .iter()
            .all(|j| j.spec.to_string_lossy().contains("run_sgld_"))
    );
    // Attempts per job, from the journal: 2 for each sgld run, 1 for the others.
    let ev = events(&plan);
    for r in 0..plan.runs.len() as u32 {
        let key = plan.job_key(crate::plan::JobRef::Run(r));
        let attempts = ev
            .iter()
            .filter(|e| e.job == key && e.event == "submitted")
            .count();
        let retried = ev
            .iter()
            .filter(|e| e.job == key && e.event == "failed")
            .count();
        let sgld = key.contains("run_sgld_");
        assert_eq!(attempts, if sgld { 2 } else { 1 }, "{key}");
        assert_eq!(retried, usize::from(sgld), "{key}");
        assert_eq!(
            ev.iter()
                .filter(|e| e.job == key && e.event == "finished")
                .count(),
            1
        );
    }
}

/// Without retries left, the failed member fails for good and the rest of its bundle is done.
#[test]
fn a_member_that_fails_for_good_does_not_take_its_bundle_down() {
    let store = Store::new("bundle-fail");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
    let mut o = bundled(20, 3);
    o.keep_going = true;
    let mut fake = Fake::new(all_complete());
    fake.member_fails = Box::new(|spec: &Path| spec.to_string_lossy().contains("run_hmc_"));
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
    assert_eq!(out.outcome.failed.len(), 1);
    let f = &out.outcome.failed[0];
    assert!(f.output.contains("run_hmc_"), "{f:?}");
    assert!(f.reason.contains("FAILED"), "{}", f.reason);
    for r in 0..plan.runs.len() as u32 {
        let job = crate::plan::JobRef::Run(r);
        let key = plan.job_key(job);
        assert_eq!(
            plan.output(job).is_file(),
            !key.contains("run_hmc_"),
            "{key}"
        );
    }
}

/// A member whose own log says it failed is judged when its bundle ends, not after
/// --latency-wait: without the line (a log not yet visible on a shared file system) the
/// controller waits the whole latency-wait for the member's output, as before.
#[test]
fn a_member_whose_log_says_it_failed_is_judged_without_the_latency_wait() {
    for lines in [true, false] {
        let store = Store::new(if lines {
            "bundle-fail-now"
        } else {
            "bundle-fail-wait"
        });
        let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
        let mut o = bundled(20, 3);
        o.keep_going = true;
        o.latency_wait = Duration::from_secs(600);
        let mut fake = Fake::new(all_complete());
        fake.member_fails = Box::new(|spec: &Path| spec.to_string_lossy().contains("run_hmc_"));
        fake.member_failure_lines = lines;
        let start = fake.now();
        let out = run(&plan, &o, &mut fake);
        assert_eq!(out.outcome.succeeded, 3, "{:?}", out.outcome.failed);
        assert_eq!(out.outcome.failed.len(), 1);
        let took = fake.now().duration_since(start);
        assert_eq!(
            took < o.latency_wait,
            lines,
            "took {took:?} (failure line: {lines})"
        );
    }
}

/// A later invocation that reattaches to a bundle still judges its members one by one: the
/// member that failed fails, the others are done (the journal says they ran in a bundle).
#[test]
fn reattached_bundle_members_are_judged_by_their_own_outputs() {
    let store = Store::new("bundle-reattach");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
    let mut fake = Fake::new(all_complete());
    fake.member_fails = Box::new(|spec: &Path| spec.to_string_lossy().contains("run_hmc_"));
    let mut o = bundled(20, 3);
    o.keep_going = true;
    o.detach = true;
    let first = run(&plan, &o, &mut fake);
    assert_eq!(first.detached, Some((4, 0)));
    let submitted = fake.count("sbatch");
    o.detach = false;
    let second = run(&plan, &o, &mut fake);
    assert_eq!(fake.count("sbatch"), submitted, "nothing submitted twice");
    assert_eq!(second.outcome.succeeded, 3, "{:?}", second.outcome.failed);
    assert_eq!(second.outcome.failed.len(), 1);
    assert!(second.outcome.failed[0].output.contains("run_hmc_"));
}

/// A build that fails inside its bundle: the samplers after it are not run and not counted as
/// failures; they go out again with the build's next attempt.
#[test]
fn a_build_that_fails_in_its_bundle_takes_its_samplers_to_its_next_attempt() {
    let store = Store::new("bundle-build-retry");
    let plan = store.plan(1, &["hmc", "sgld", "mclmc"]);
    let mut o = bundled(20, 3);
    o.retries = 1;
    let mut fake = Fake::new(all_complete());
    let mut failed_once = false;
    fake.member_fails = Box::new(move |spec: &Path| {
        let build = !spec.to_string_lossy().contains("run_");
        let fail = build && !failed_once;
        failed_once |= fail;
        fail
    });
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.succeeded, 4, "{:?}", out.outcome.failed);
    assert_eq!(
        bundle_sizes(&fake),
        vec![4, 4],
        "both attempts bundle all four"
    );
    let ev = events(&plan);
    let count = |key: &str, name: &str| {
        ev.iter()
            .filter(|e| e.job == key && e.event == name)
            .count()
    };
    let build = plan.job_key(crate::plan::JobRef::Target(0));
    assert_eq!(count(&build, "failed"), 1);
    assert_eq!(count(&build, "submitted"), 2);
    for r in 0..plan.runs.len() as u32 {
        let key = plan.job_key(crate::plan::JobRef::Run(r));
        assert_eq!(count(&key, "failed"), 0, "{key}: not its failure");
        assert_eq!(count(&key, "cancelled"), 1, "{key}");
        assert_eq!(count(&key, "submitted"), 2, "{key}");
        assert_eq!(count(&key, "finished"), 1, "{key}");
    }
}

/// A build that fails for good inside its bundle: its samplers are skipped, not failed.
#[test]
fn a_build_that_fails_for_good_in_its_bundle_skips_its_samplers() {
    let store = Store::new("bundle-build-fail");
    let plan = store.plan(2, &["hmc", "sgld"]);
    let mut o = bundled(20, 3);
    o.keep_going = true;
    let mut fake = Fake::new(all_complete());
    let first_target = plan.targets[0].id.clone();
    fake.member_fails = Box::new(move |spec: &Path| {
        let s = spec.to_string_lossy();
        !s.contains("run_") && s.contains(&first_target)
    });
    let out = run(&plan, &o, &mut fake);
    assert_eq!(out.outcome.failed.len(), 1, "{:?}", out.outcome.failed);
    assert!(out.outcome.failed[0].output.contains(&plan.targets[0].id));
    assert_eq!(out.outcome.skipped, 2);
    assert_eq!(
        out.outcome.succeeded, 3,
        "the other target and its samplers"
    );
}
