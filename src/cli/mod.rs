//! The command line: clap definitions ([`args`]) and dispatch to the parts that do the work.

pub mod args;
pub mod error;
pub mod status;
pub mod sweep;
pub mod validate;

pub use args::{Cli, Command};
pub use error::CliError;

use std::io::Write;

use crate::report::promote::PromoteCommand;

/// Parses the command line; on an error, exits as clap does (code 2), except that a Snakemake
/// flag lambda-hat does not have gets a hint of its own (see [`snakemake_hint`]).
pub fn parse() -> Cli {
    use clap::Parser;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match snakemake_hint(&e) {
            Some(message) => {
                crate::terminal::note!("error: {message}");
                std::process::exit(crate::exit_code::USAGE)
            }
            None => e.exit(),
        },
    }
}

/// The message for a Snakemake flag lambda-hat has no counterpart of. clap's own tip names the
/// nearest spelling, which misleads here: `--slurm` suggested `--summary`, `--cluster` `--list`,
/// and `--nolock` `--unlock`, its opposite.
pub fn snakemake_hint(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    const CLUSTER: &str = "lambda-hat submits to SLURM itself: use `--executor slurm` or \
                           `--profile slurm` (README: SLURM)";
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg)?;
            let flag = arg.split('=').next().unwrap_or(arg);
            let why = match flag {
                "--slurm" | "--cluster" | "--cluster-generic" | "--cluster-config"
                | "--cluster-status" | "--cluster-cancel" | "--drmaa" => CLUSTER,
                "--nolock" => {
                    "the store lock is what keeps two controllers from running the same jobs \
                     twice, so it cannot be turned off; if a crashed run left it behind, \
                     `lambda-hat --unlock` removes it"
                }
                "--reason" | "-r" => "`-n` always shows why each job would run",
                "--rerun-triggers" => {
                    "a job reruns when its output is missing or its target was rebuilt; a \
                     changed config gives new IDs, so new jobs; force reruns with -R RULE or -F"
                }
                _ => return None,
            };
            Some(format!("lambda-hat has no `{flag}`: {why}"))
        }
        ErrorKind::InvalidValue => {
            let arg = context(ContextKind::InvalidArg)?;
            let value = context(ContextKind::InvalidValue)?;
            (arg.starts_with("--executor") && value.starts_with("cluster"))
                .then(|| format!("lambda-hat has no executor `{value}`: {CLUSTER}"))
        }
        _ => None,
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Worker(w)) => crate::worker::run(w).map_err(CliError::from),
        Some(Command::Results(mut args)) => {
            let plan = sweep_plan(&cli.sweep, args.all)?;
            args.runs_root = store_root_default(&cli.sweep, plan.as_ref(), args.runs_root);
            if !args.all {
                args.scope = sweep_scope(plan.as_ref(), &args.runs_root);
            }
            crate::report::results::run(
                &args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )?;
            Ok(())
        }
        Some(Command::Report(args)) => report(&cli.sweep, args),
        Some(Command::Promote(mut args)) => {
            if let PromoteCommand::Gallery(g) = &mut args.command {
                let plan = sweep_plan(&cli.sweep, g.all)?;
                g.runs_root = store_root_default(&cli.sweep, plan.as_ref(), g.runs_root.clone());
                if !g.all {
                    g.scope = sweep_scope(plan.as_ref(), &g.runs_root);
                }
            }
            crate::report::promote::run(&args, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Some(Command::Clean(mut args)) => clean(&cli.sweep, &mut args),
        Some(Command::Status { json }) => status::status(&cli.sweep, cli.verbose > 0, json),
        Some(Command::Cancel) => status::cancel(&cli.sweep),
        Some(Command::Validate(args)) => {
            // Global flags clap accepts after any subcommand: validate runs its own cases, so
            // an experiments-file key or a profile would be silently ignored there.
            let ignored = match (&cli.sweep.config[..], &cli.sweep.profile) {
                ([], None) => None,
                ([first, ..], _) => Some(format!("--config {first}")),
                (_, Some(p)) => Some(format!("--profile {p}")),
            };
            if let Some(flag) = ignored {
                return Err(CliError::Usage(format!(
                    "validate does not take `{flag}`: it runs its own cases (their data, \
                     training and posterior are fixed so the known LLCs hold) on this machine; \
                     it reads only the sampler presets, next to --configfile \
                     (see `lambda-hat validate --help`)"
                )));
            }
            validate::run(
                &args,
                cli.sweep.configfile.as_deref(),
                cli.sweep.quiet,
                &mut std::io::stdout().lock(),
            )
        }
        None => match cli.sweep.report.clone() {
            Some(output) => report(
                &cli.sweep,
                crate::report::html::ReportArgs {
                    runs_root: DEFAULT_STORE.into(),
                    output,
                    all: false,
                    scope: None,
                    configfile: None,
                },
            ),
            None => runtime()?.block_on(sweep::run(&cli.sweep)),
        },
    }
}

/// `lambda-hat report` (and Snakemake's `--report FILE`): the sweep's HTML report.
fn report(
    sweep_args: &args::SweepArgs,
    mut args: crate::report::html::ReportArgs,
) -> Result<(), CliError> {
    let plan = sweep_plan(sweep_args, args.all)?;
    args.runs_root = store_root_default(sweep_args, plan.as_ref(), args.runs_root);
    if !args.all {
        args.scope = sweep_scope(plan.as_ref(), &args.runs_root);
    }
    args.configfile = Some(
        sweep_args
            .configfile
            .clone()
            .unwrap_or_else(|| sweep::DEFAULT_CONFIGFILE.into()),
    );
    crate::report::html::run(&args, &mut std::io::stdout().lock())?;
    Ok(())
}

/// The target IDs and run directory names `plan` references.
fn referenced_by(plan: &crate::plan::Plan) -> crate::report::clean::Referenced {
    crate::report::clean::Referenced {
        targets: plan.targets.iter().map(|t| t.id.clone()).collect(),
        runs: (0..plan.runs.len() as u32)
            .map(|r| plan.run_id(r))
            .collect(),
    }
}

/// `lambda-hat clean`: lists (and with `--yes` deletes) what no sweep of the store plans.
///
/// Deleting is the one thing here that cannot be undone, so it keeps, besides what this
/// experiments file plans: what every other recorded sweep plans ([`other_sweeps`]), and the
/// jobs submitted to SLURM that are not known to have ended (their directories are being
/// written). It refuses to delete while another controller holds the store's lock (its jobs
/// are being written too), or while a sweep record cannot be read or a recorded experiments
/// file cannot be planned (either may be the only thing keeping another sweep's results).
fn clean(
    sweep_args: &args::SweepArgs,
    args: &mut crate::report::clean::CleanArgs,
) -> Result<(), CliError> {
    let settings = sweep::Settings::from_args(sweep_args)?;
    let plan = sweep::load_plan(&settings)?;
    if args.runs_root == std::path::Path::new(DEFAULT_STORE) {
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
fn keep_in_flight(
    store: &std::path::Path,
    referenced: &mut crate::report::clean::Referenced,
) -> usize {
    let events = crate::store::Journal::read_all(store).unwrap_or_default();
    let mut n = 0;
    for (key, history) in crate::exec::slurm::history::histories(&events) {
        if history.open.is_none() {
            continue;
        }
        n += 1;
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
    n
}

/// The other sweeps recorded in the store ([`other_sweeps`]).
struct OtherSweeps {
    /// By experiments file: what each still plans.
    kept: Vec<(String, crate::report::clean::Referenced)>,
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
    store: &std::path::Path,
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

/// The default `--runs-root` (clap's default value).
const DEFAULT_STORE: &str = "runs";

/// `--runs-root` left at its default means "the store of the experiments file" (with its
/// `--config` keys), when that file exists and names one; reading it is best effort (a report
/// never fails over the sweep file).
fn store_root_default(
    sweep: &args::SweepArgs,
    plan: Option<&crate::plan::Plan>,
    given: std::path::PathBuf,
) -> std::path::PathBuf {
    if given != std::path::Path::new(DEFAULT_STORE) {
        return given;
    }
    if let Some(plan) = plan {
        return plan.store_root.clone();
    }
    let file = sweep
        .configfile
        .clone()
        .unwrap_or_else(|| sweep::DEFAULT_CONFIGFILE.into());
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok())
        .and_then(|v| {
            v.get("store_root")
                .and_then(|s| s.as_str())
                .map(std::path::PathBuf::from)
        })
        .unwrap_or(given)
}

/// The plan of the sweep the experiments file (with its `--config` keys) describes: reports read
/// that sweep. A file the user named (`--configfile`, `--config`) or the default one that exists
/// must plan, or the command stops with the planner's message, as `status` and `clean` do (until
/// 2026-12-05 a report then quietly read the whole store, which looked like the sweep's results).
/// With no file at all, or `--all` and no file named, there is no sweep: `None`, the whole store.
fn sweep_plan(sweep: &args::SweepArgs, all: bool) -> Result<Option<crate::plan::Plan>, CliError> {
    let named = sweep.configfile.is_some() || !sweep.config.is_empty();
    if !named && (all || !std::path::Path::new(sweep::DEFAULT_CONFIGFILE).is_file()) {
        return Ok(None);
    }
    let settings = sweep::Settings::from_args(sweep)?;
    Ok(Some(sweep::load_plan(&settings)?))
}

/// The runs of the sweep `plan`, when its store is the one being read (`None` otherwise: then a
/// report reads the whole store).
fn sweep_scope(
    plan: Option<&crate::plan::Plan>,
    runs_root: &std::path::Path,
) -> Option<crate::report::Scope> {
    let plan = plan?;
    let same = |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize())
    {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if !same(&plan.store_root, runs_root) {
        return None;
    }
    let targets = plan.targets.iter().map(|t| t.id.clone()).collect();
    let runs = (0..plan.runs.len() as u32)
        .map(|r| {
            let target = &plan.targets[plan.run_target(r) as usize].id;
            (target.clone(), plan.run_id(r))
        })
        .collect();
    Some(crate::report::Scope { runs, targets })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::io("cannot start the async runtime", e))
}
