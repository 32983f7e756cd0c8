//! `lambda-hat status` and `lambda-hat cancel` on the terminal: the flags in, the table (or
//! JSON, or one line per job with `-v`) out. What the jobs are doing and the cancelling itself
//! are `crate::exec::status`, which asks SLURM through the `Cluster` trait; here the real
//! cluster is plugged in and the answer printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::args::SweepArgs;
use super::error::CliError;
use super::sweep::{Settings, load_plan};
use crate::exec::slurm::SlurmCli;
use crate::exec::status::{self, JobStatus, SweepStatus};

/// The real SLURM (its commands are only run when the journal has SLURM jobs).
fn slurm() -> SlurmCli {
    SlurmCli::new(Arc::new(AtomicUsize::new(0)))
}

fn hms(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `lambda-hat status [-v] [--json]`.
pub fn status(args: &SweepArgs, verbose: bool, json: bool) -> Result<(), CliError> {
    let settings = Settings::from_args(args)?;
    let plan = load_plan(&settings)?;
    let report = SweepStatus::observe(&plan, verbose || json, &mut slurm())
        .map_err(|e| CliError::io("cannot read the journal", e))?;
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
    for s in JobStatus::ALL {
        write!(out, "{:>11}", s.name()).map_err(io_err)?;
    }
    writeln!(out).map_err(io_err)?;
    let mut total: BTreeMap<JobStatus, usize> = BTreeMap::new();
    for (rule, counts) in &report.rules {
        write!(out, "{rule:<14}").map_err(io_err)?;
        for s in JobStatus::ALL {
            write!(out, "{:>11}", counts[&s]).map_err(io_err)?;
            *total.entry(s).or_default() += counts[&s];
        }
        writeln!(out).map_err(io_err)?;
    }
    write!(out, "{:<14}", "total").map_err(io_err)?;
    for s in JobStatus::ALL {
        write!(out, "{:>11}", total[&s]).map_err(io_err)?;
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
                j.state.name(),
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
    let done = status::cancel(&plan, &mut slurm())?;
    let mut out = std::io::stdout().lock();
    let written = if done.jobs == 0 {
        // A local sweep holds the store's lock too, and has no SLURM job to cancel: say how it
        // is stopped rather than only that nothing is queued.
        match crate::store::lock::holder(&plan.store_root) {
            Some(holder) => writeln!(
                out,
                "No SLURM job of this sweep is queued or running, but a lambda-hat holds its \
                 store ({holder}). `cancel` stops SLURM jobs only: stop a local run with Ctrl-C \
                 in its terminal, or `kill` its pid (its workers stop with it, and their \
                 incomplete markers are kept for --rerun-incomplete)."
            ),
            None => writeln!(out, "No SLURM job of this sweep is queued or running."),
        }
    } else if done.slurm_ids.is_empty() {
        writeln!(
            out,
            "No SLURM job left to cancel ({} lambda-hat jobs; {} of them had finished and are \
             kept).",
            done.jobs, done.kept
        )
    } else {
        writeln!(
            out,
            "Cancelled {} SLURM job(s) ({} lambda-hat jobs; {} of them had finished and are \
             kept): scancel {}",
            done.slurm_ids.len(),
            done.jobs,
            done.kept,
            done.slurm_ids.join(" ")
        )
    };
    written.map_err(|e| CliError::io("cannot write to stdout", e))
}
