//! `lambda-hat status` and `lambda-hat cancel`: what the sweep's jobs are doing, and stopping
//! the SLURM ones.
//!
//! Input: the experiments file (→ plan), the store (outputs, incomplete markers, journal) and,
//! when the journal has SLURM jobs in flight, ONE `squeue` (live state) and at most ONE `sacct`
//! (final state, elapsed, MaxRSS). Output: a per-rule table and a health line counting the
//! unhealthy runs and unconverged targets among finished jobs (or one line per job with `-v`,
//! or JSON with `--json`) on stdout. `cancel` runs one `scancel` for every open submission and
//! records it in the journal. Works for local sweeps too: then there is nothing to ask SLURM.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use serde::Serialize;

use super::args::SweepArgs;
use super::error::CliError;
use super::sweep::{Settings, load_plan};
use crate::exec::slurm::history::{self, JobHistory};
use crate::exec::slurm::parse::{JobKey, JobState, parse_sacct, parse_squeue};
use crate::exec::slurm::{Cluster, SlurmCli, on_path};
use crate::plan::{OutputStatus, Plan, Rule};
use crate::store::{Event, Journal, StoreHealth, StoreStatus};

const STATES: [&str; 7] = [
    "done",
    "running",
    "pending",
    "failed",
    "incomplete",
    "corrupt",
    "missing",
];

#[derive(Debug, Serialize)]
struct JobRow {
    rule: &'static str,
    job: String,
    output: String,
    state: &'static str,
    slurm_job_id: Option<String>,
    slurm_state: Option<String>,
    attempts: u32,
    elapsed_secs: Option<u64>,
    max_rss_bytes: Option<u64>,
    log: String,
    /// A pending job's reason that waiting will not clear, with what to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    stuck: Option<String>,
}

/// Health of the finished jobs, for `--json`.
#[derive(Debug, Serialize)]
struct HealthCounts {
    healthy_runs: usize,
    unhealthy_runs: usize,
    targets: usize,
    unconverged_targets: usize,
    convergence_unknown: usize,
    unreadable: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    store_root: String,
    rules: BTreeMap<&'static str, BTreeMap<&'static str, usize>>,
    health: HealthCounts,
    /// The health line of the table output.
    #[serde(skip)]
    health_line: String,
    jobs: Vec<JobRow>,
}

/// What SLURM says about the jobs the journal knows: live state and accounting.
#[derive(Default)]
struct Live {
    queue: HashMap<JobKey, JobState>,
    acct: HashMap<JobKey, crate::exec::slurm::parse::AccountingRecord>,
}

fn ask_slurm(ids: &BTreeSet<u64>, with_accounting: bool) -> Live {
    let mut live = Live::default();
    if ids.is_empty() || !on_path("squeue") {
        return live;
    }
    let ids: Vec<u64> = ids.iter().copied().collect();
    let mut cli = SlurmCli::new(Arc::new(AtomicUsize::new(0)));
    if let Ok(out) = cli.squeue(&ids)
        && out.success
    {
        for e in parse_squeue(&out.stdout).unwrap_or_default() {
            live.queue.insert(e.job, e.state);
        }
    }
    if with_accounting
        && on_path("sacct")
        && let Ok(out) = cli.sacct(&ids)
        && out.success
    {
        for r in parse_sacct(&out.stdout).unwrap_or_default() {
            live.acct.insert(r.job, r);
        }
    }
    live
}

/// Whether the process that wrote a local incomplete marker still runs (a local sweep in progress).
fn marker_owner_alive(plan: &Plan, key: &str) -> bool {
    let path = plan
        .store_root
        .join(".lambda-hat")
        .join("incomplete")
        .join(key);
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("pid")?.as_u64())
        .is_some_and(crate::store::process_alive)
}

fn classify(
    done: bool,
    corrupt: bool,
    incomplete: bool,
    h: Option<&JobHistory>,
    slurm: Option<(&Option<JobState>, bool)>,
    local_alive: bool,
) -> &'static str {
    if done {
        return "done";
    }
    if let Some((state, open)) = slurm
        && open
    {
        return match state {
            Some(JobState::Pending | JobState::Requeued) => "pending",
            Some(s) if !s.is_terminal() => "running",
            Some(JobState::Completed) => "running", // ended; output not seen yet
            Some(_) => "failed",
            None => "pending",
        };
    }
    if incomplete {
        return if local_alive { "running" } else { "incomplete" };
    }
    if corrupt {
        return "corrupt";
    }
    match h.and_then(|h| h.last_end.as_deref()) {
        Some(history::FAILED | history::SUBMIT_FAILED) => "failed",
        _ => "missing",
    }
}

fn build_report(plan: &Plan, detailed: bool) -> Result<Report, CliError> {
    let status = StoreStatus::scan(plan);
    let events = Journal::read_all(&plan.store_root)
        .map_err(|e| CliError::io("cannot read the journal", e))?;
    let hist = history::histories(&events);
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
        ask_slurm(&ids, true)
    } else {
        Live::default()
    };
    let mut rules: BTreeMap<&'static str, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for rule in Rule::ALL {
        rules.insert(rule.name(), STATES.iter().map(|s| (*s, 0)).collect());
    }
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
        let state = classify(
            status.done(plan, job),
            status.corrupt(plan, job),
            incomplete,
            h,
            slurm_key.map(|_| (&slurm_state, open.is_some())),
            incomplete && marker_owner_alive(plan, &key),
        );
        *rules
            .get_mut(job.rule().name())
            .and_then(|m| m.get_mut(state))
            .expect("every rule and state is in the table") += 1;
        jobs.push(JobRow {
            rule: job.rule().name(),
            output: plan.output(job).display().to_string(),
            state,
            slurm_job_id: slurm_key.map(|k| k.to_string()),
            slurm_state: slurm_state
                .map(|s| s.to_string())
                .or_else(|| h.and_then(|h| h.state.clone())),
            attempts: h.map_or(0, |h| h.attempts),
            elapsed_secs: acct
                .map(|a| a.elapsed_secs)
                .or_else(|| h.and_then(|h| h.elapsed_secs)),
            max_rss_bytes: acct
                .and_then(|a| a.max_rss_bytes)
                .or_else(|| h.and_then(|h| h.max_rss_bytes)),
            log: plan.log_path(job).display().to_string(),
            stuck: h
                .and_then(|h| h.stuck.as_ref())
                .filter(|_| state == "pending")
                .map(|(reason, advice)| format!("{reason}: {advice}")),
            job: key,
        });
    }
    let health = StoreHealth::scan(plan, &status);
    Ok(Report {
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

fn hms(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `lambda-hat status [-v] [--json]`.
pub fn status(args: &SweepArgs, verbose: bool, json: bool) -> Result<(), CliError> {
    let settings = Settings::from_args(args)?;
    let plan = load_plan(&settings)?;
    let report = build_report(&plan, verbose || json)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io_err = |e| CliError::io("cannot write to stdout", e);
    if json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(|e| CliError::io("cannot write to stdout", e.into()))?;
        writeln!(out).map_err(io_err)?;
        return out.flush().map_err(io_err);
    }
    writeln!(
        out,
        "Status of the sweep in {} ({} jobs):",
        report.store_root,
        report.jobs.len()
    )
    .map_err(io_err)?;
    write!(out, "{:<14}", "rule").map_err(io_err)?;
    for s in STATES {
        write!(out, "{s:>11}").map_err(io_err)?;
    }
    writeln!(out).map_err(io_err)?;
    let mut total: BTreeMap<&str, usize> = BTreeMap::new();
    for (rule, counts) in &report.rules {
        write!(out, "{rule:<14}").map_err(io_err)?;
        for s in STATES {
            write!(out, "{:>11}", counts[s]).map_err(io_err)?;
            *total.entry(s).or_default() += counts[s];
        }
        writeln!(out).map_err(io_err)?;
    }
    write!(out, "{:<14}", "total").map_err(io_err)?;
    for s in STATES {
        write!(out, "{:>11}", total[s]).map_err(io_err)?;
    }
    writeln!(out).map_err(io_err)?;
    writeln!(out, "{}", report.health_line).map_err(io_err)?;
    // Jobs SLURM will never start as asked: said even without -v.
    for j in report.jobs.iter().filter(|j| j.stuck.is_some()) {
        writeln!(
            out,
            "stuck: {} pends with {}",
            j.job,
            j.stuck.as_deref().unwrap_or_default()
        )
        .map_err(io_err)?;
    }
    if verbose {
        writeln!(out).map_err(io_err)?;
        for j in &report.jobs {
            writeln!(
                out,
                "{:<12} {:<36} {:<10} slurm={} ({}) attempts={} elapsed={} maxrss={} log={}",
                j.rule,
                j.job,
                j.state,
                j.slurm_job_id.as_deref().unwrap_or("-"),
                j.slurm_state.as_deref().unwrap_or("-"),
                j.attempts,
                j.elapsed_secs.map(hms).unwrap_or_else(|| "-".into()),
                j.max_rss_bytes
                    .map(|b| format!("{:.1}MiB", b as f64 / 1048576.0))
                    .unwrap_or_else(|| "-".into()),
                j.log
            )
            .map_err(io_err)?;
        }
    }
    out.flush().map_err(io_err)
}

/// `lambda-hat cancel`: one scancel for every SLURM job of the sweep still queued or running.
pub fn cancel(args: &SweepArgs) -> Result<(), CliError> {
    let settings = Settings::from_args(args)?;
    let plan = load_plan(&settings)?;
    let events = Journal::read_all(&plan.store_root)
        .map_err(|e| CliError::io("cannot read the journal", e))?;
    let hist = history::histories(&events);
    let mut open: Vec<(String, &'static str, JobKey)> = Vec::new();
    for job in plan.jobs() {
        let key = plan.job_key(job);
        if let Some(k) = hist
            .get(&key)
            .and_then(|h| h.open.as_ref())
            .and_then(|o| o.slurm)
        {
            open.push((key, job.rule().name(), k));
        }
    }
    if open.is_empty() {
        println!("No SLURM job of this sweep is queued or running.");
        return Ok(());
    }
    let ids: BTreeSet<String> = open.iter().map(|(_, _, k)| k.job_id.to_string()).collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let mut cli = SlurmCli::new(Arc::new(AtomicUsize::new(0)));
    let out = cli
        .scancel(&ids)
        .map_err(|source| crate::exec::slurm::SlurmError::Program {
            program: "scancel",
            source,
        })?;
    if !out.success {
        return Err(CliError::Usage(format!(
            "scancel {} failed: {}",
            ids.join(" "),
            out.stderr.trim()
        )));
    }
    let mut journal =
        Journal::open(&plan.store_root).map_err(|e| CliError::io("cannot open the journal", e))?;
    for (key, rule, k) in &open {
        journal
            .append(&Event {
                executor: Some("slurm".into()),
                slurm_job_id: Some(k.to_string()),
                detail: Some(serde_json::json!({"reason": "lambda-hat cancel"})),
                ..Event::new(history::CANCELLED, key, rule)
            })
            .map_err(|e| CliError::io("cannot write the journal", e))?;
    }
    println!(
        "Cancelled {} SLURM job(s) ({} lambda-hat jobs): scancel {}",
        ids.len(),
        open.len(),
        ids.join(" ")
    );
    Ok(())
}
