//! `lambda-hat clean`: which directories of the store no sweep plans, and deleting them.
//!
//! In: the sweep's flags (its plan), the store's sweep records, journal and lock. Out: the
//! listing on stdout, and with `--yes` the deletions (`report::clean` lists and deletes; this
//! module decides what must be kept).

use std::io::Write;
use std::path::Path;

use super::args;
use super::error::CliError;
use super::sweep;
use super::{DEFAULT_STORE, referenced_by};
use crate::report::clean::{CleanArgs, Referenced};

/// `lambda-hat clean`: lists (and with `--yes` deletes) what no sweep of the store plans.
///
/// Deleting is the one thing here that cannot be undone, so it keeps, besides what this
/// experiments file plans: what every other recorded sweep plans ([`other_sweeps`]), and the
/// jobs submitted to SLURM that are not known to have ended (their directories are being
/// written). It refuses to delete while another controller holds the store's lock (its jobs
/// are being written too), or while a sweep record cannot be read or a recorded experiments
/// file cannot be planned (either may be the only thing keeping another sweep's results).
pub(super) fn clean(sweep_args: &args::SweepArgs, args: &mut CleanArgs) -> Result<(), CliError> {
    let settings = sweep::Settings::from_args(sweep_args)?;
    let plan = sweep::load_plan(&settings)?;
    if args.runs_root == Path::new(DEFAULT_STORE) {
        args.runs_root = plan.store_root.clone();
    }
    // Held until the deletions are done, so no sweep starts writing in between.
    let _lock = if args.yes && crate::store::private_dir(&args.runs_root).is_dir() {
        Some(crate::store::StoreLock::acquire(&args.runs_root)?)
    } else {
        None
    };
    let mut referenced = referenced_by(&plan);
    let others = other_sweeps(sweep_args, &settings, &args.runs_root);
    for (_, other) in &others.kept {
        referenced.targets.extend(other.targets.iter().cloned());
        referenced.runs.extend(other.runs.iter().cloned());
    }
    let in_flight = keep_in_flight(&args.runs_root, &mut referenced);
    let mut out = std::io::stdout().lock();
    let mut say = |text: String| {
        writeln!(out, "{text}").map_err(|e| CliError::io("cannot write to stdout", e))
    };
    if !others.kept.is_empty() {
        let files: Vec<String> = others.kept.iter().map(|(f, _)| f.clone()).collect();
        say(format!(
            "Kept what the other sweeps that write into this store still plan: {}",
            files.join(", ")
        ))?;
    }
    if in_flight > 0 {
        say(format!(
            "Kept {in_flight} job(s) submitted to SLURM that are not known to have ended (see \
             `lambda-hat status`; `lambda-hat cancel` stops them)."
        ))?;
    }
    if !others.problems.is_empty() {
        let list = others.problems.join("\n  ");
        if args.yes {
            return Err(CliError::Usage(format!(
                "nothing was deleted: what these sweeps of the store plan is unknown, and \
                 their results may be among what this experiments file does not plan:\n  \
                 {list}\n  Fix the file, or, if that sweep's results may go, delete its record \
                 (the .json file named) and run clean again."
            )));
        }
        say(format!(
            "warning: with --yes, clean will refuse to delete until these are fixed:\n  {list}"
        ))?;
    }
    crate::report::clean::run(args, &referenced, &mut out)?;
    Ok(())
}

/// Adds to `referenced` the jobs of the store whose SLURM submission the journal leaves open
/// (queued, running, or ended while no controller followed them); returns how many.
fn keep_in_flight(store: &Path, referenced: &mut Referenced) -> usize {
    let open = crate::exec::slurm::open_submissions_in(store);
    for key in &open {
        // Job keys are `tgt_…` (build_target) or `tgt_….run_…` (run_sampler).
        let (target, run) = match key.split_once('.') {
            Some((t, r)) => (t, Some(r)),
            None => (key.as_str(), None),
        };
        referenced.targets.insert(target.to_string());
        if let Some(run) = run {
            referenced.runs.insert(run.to_string());
        }
    }
    open.len()
}

/// The other sweeps recorded in the store ([`other_sweeps`]).
struct OtherSweeps {
    /// By experiments file: what each still plans.
    kept: Vec<(String, Referenced)>,
    /// Records that cannot be read, and recorded files that exist but do not plan.
    problems: Vec<String>,
}

/// What the other sweeps recorded in the store (crate::store::sweeps) still plan, by
/// experiments file: those whose file still exists. A recorded file that no longer exists is a
/// finished trial (README: delete the file to let `clean` drop its results); one that exists
/// but no longer plans (an edit with a mistake) is a problem, not a leftover. IDs do not
/// depend on where a sweep ran, so each file is planned from here.
fn other_sweeps(
    sweep_args: &args::SweepArgs,
    current: &sweep::Settings,
    store: &Path,
) -> OtherSweeps {
    let this = std::path::absolute(&current.configfile).ok();
    let recorded = crate::store::sweeps::list(store);
    let mut problems: Vec<String> = recorded
        .unreadable
        .iter()
        .map(|p| format!("{}: the sweep record is not readable JSON", p.display()))
        .collect();
    let mut kept = Vec::new();
    for r in recorded.sweeps {
        if !r.configfile.is_file()
            || (Some(&r.configfile) == this.as_ref() && r.config == current.config)
        {
            continue;
        }
        let mut other = sweep_args.clone();
        other.configfile = Some(r.configfile.clone());
        other.config = r.config.clone();
        // The file with its `--config` keys: a trial of the same file is another sweep.
        let mut label = r.configfile.display().to_string();
        if !r.config.is_empty() {
            label = format!("{label} (--config {})", r.config.join(" "));
        }
        match sweep::Settings::from_args(&other).and_then(|s| sweep::load_plan(&s)) {
            Ok(plan) => kept.push((label, referenced_by(&plan))),
            Err(e) => problems.push(format!("{label} no longer plans: {e}")),
        }
    }
    OtherSweeps { kept, problems }
}
