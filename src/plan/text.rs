//! The text of dry runs (`-n`), job stats and `--summary` / `--detailed-summary`, laid out the
//! way Snakemake users read them. Pure: everything is rendered into a `Write` from the plan, the
//! schedule and a status snapshot.

use std::io::{self, Write};

use super::dag::{JobRef, Plan, Rule};
use super::select::{OutputStatus, Reason, Schedule, output_string};

/// The "Job stats" table: one row per rule with jobs to run, and the total.
pub fn job_stats(out: &mut dyn Write, schedule: &Schedule) -> io::Result<()> {
    writeln!(out, "Job stats:")?;
    writeln!(out, "{:<14}{:>7}", "job", "count")?;
    writeln!(out, "{:-<12}  {:->7}", "", "")?;
    for rule in Rule::ALL {
        let n = schedule.count(rule);
        if n > 0 {
            writeln!(out, "{:<14}{:>7}", rule.name(), n)?;
        }
    }
    writeln!(out, "{:<14}{:>7}", "total", schedule.jobs.len())?;
    writeln!(out)
}

/// What a run prints when there is nothing to do.
pub const NOTHING_TO_DO: &str =
    "Nothing to be done (all requested files are present and up to date).";

/// What a dry run prints besides the plan and schedule.
pub struct DryRunInput<'a> {
    /// A job's resources, as `name=value` pairs.
    pub resources: &'a dyn Fn(JobRef) -> String,
    /// The job's files that are missing or cut short, for the reason of a job that runs because
    /// of them (the marker may be there while the trace is not); empty, the reason names the
    /// marker.
    pub damaged: &'a dyn Fn(JobRef) -> Vec<String>,
    /// `-q`: job stats only.
    pub quiet: bool,
    /// `-p`: each job's command too.
    pub worker_command: Option<&'a str>,
    /// On SLURM: a heading and one line per `sbatch` call a run would make, after the jobs.
    pub submissions: &'a [String],
}

/// A dry run: every job with its output, reason and resources (unless `quiet`), framed by job
/// stats; with a worker command (`-p`), each job's command too; on SLURM, the submissions.
pub fn dry_run(
    out: &mut dyn Write,
    plan: &Plan,
    schedule: &Schedule,
    input: &DryRunInput,
) -> io::Result<()> {
    let DryRunInput {
        resources,
        damaged,
        quiet,
        worker_command,
        submissions,
    } = *input;
    writeln!(out, "Building DAG of jobs...")?;
    if schedule.jobs.is_empty() {
        return writeln!(out, "{NOTHING_TO_DO}");
    }
    job_stats(out, schedule)?;
    if quiet {
        return Ok(());
    }
    for (jobid, (job, reason)) in schedule.jobs.iter().enumerate() {
        let output = output_string(plan, *job);
        writeln!(out, "rule {}:", job.rule().name())?;
        if let Some(parent) = plan.parent(*job) {
            writeln!(out, "    input: {}", output_string(plan, parent))?;
        }
        writeln!(out, "    output: {output}")?;
        writeln!(out, "    log: {}", plan.log_path(*job).display())?;
        writeln!(out, "    jobid: {jobid}")?;
        let named = match reason {
            Reason::MissingOutput | Reason::Corrupt => {
                Some(damaged(*job)).filter(|files| !files.is_empty())
            }
            _ => None,
        };
        let files = named.map_or_else(|| output.clone(), |files| files.join(" "));
        writeln!(out, "    reason: {}", reason.describe(&files))?;
        let res = resources(*job);
        if !res.is_empty() {
            writeln!(out, "    resources: {res}")?;
        }
        // Snakemake's -p: the job's command on its own line, after its block.
        if let Some(worker) = worker_command {
            writeln!(out, "{}", plan.worker_command_line(*job, worker))?;
        }
        writeln!(out)?;
    }
    if let Some((heading, calls)) = submissions.split_first() {
        writeln!(out, "{heading}")?;
        for call in calls {
            writeln!(out, "    {call}")?;
        }
        writeln!(out)?;
    }
    job_stats(out, schedule)?;
    writeln!(
        out,
        "This was a dry-run (flag -n). The order of jobs does not reflect the order of execution."
    )
}

/// What a summary needs besides the plan and schedule.
pub struct SummaryInput<'a> {
    pub status: &'a dyn OutputStatus,
    /// Whether a job is part of the request (positional globs).
    pub wanted: &'a dyn Fn(JobRef) -> bool,
    /// The output's modification time, if it exists.
    pub modified: &'a dyn Fn(JobRef) -> Option<String>,
    pub worker_command: &'a str,
    /// `--detailed-summary`: add inputs and the worker command.
    pub detailed: bool,
}

/// `--summary` (and `--detailed-summary`): one row per output of the request.
pub fn summary(
    out: &mut dyn Write,
    plan: &Plan,
    schedule: &Schedule,
    input: &SummaryInput,
) -> io::Result<()> {
    let SummaryInput {
        status,
        wanted,
        modified,
        worker_command,
        detailed,
    } = *input;
    let pending: std::collections::HashSet<JobRef> =
        schedule.jobs.iter().map(|(j, _)| *j).collect();
    let mut header = vec!["output_file", "date", "rule", "status", "plan"];
    if detailed {
        header.extend(["input_file(s)", "shell command"]);
    }
    writeln!(out, "{}", header.join("\t"))?;
    for job in plan.jobs().filter(|j| wanted(*j)) {
        let state = if status.incomplete(plan, job) {
            "incomplete"
        } else if status.corrupt(plan, job) {
            "corrupt"
        } else if status.done(plan, job) && status.outdated(plan, job) {
            // Snakemake's words for an output older than its input.
            "updated input files"
        } else if status.done(plan, job) {
            "ok"
        } else {
            "missing"
        };
        let plan_text = if pending.contains(&job) {
            "update pending"
        } else {
            "no update"
        };
        let date = modified(job).unwrap_or_else(|| "-".into());
        let mut row = vec![
            output_string(plan, job),
            date,
            job.rule().name().to_string(),
            state.into(),
            plan_text.into(),
        ];
        if detailed {
            row.push(
                plan.parent(job)
                    .map(|p| output_string(plan, p))
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(plan.worker_command_line(job, worker_command));
        }
        writeln!(out, "{}", row.join("\t"))?;
    }
    Ok(())
}
