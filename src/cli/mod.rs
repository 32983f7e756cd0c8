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
        Some(Command::Clean(mut args)) => {
            let settings = sweep::Settings::from_args(&cli.sweep)?;
            let plan = sweep::load_plan(&settings)?;
            if args.runs_root == std::path::Path::new(DEFAULT_STORE) {
                args.runs_root = plan.store_root.clone();
            }
            let mut referenced = referenced_by(&plan);
            let kept_for = other_sweeps(&cli.sweep, &settings, &args.runs_root);
            for (_, other) in &kept_for {
                referenced.targets.extend(other.targets.iter().cloned());
                referenced.runs.extend(other.runs.iter().cloned());
            }
            let mut out = std::io::stdout().lock();
            if !kept_for.is_empty() {
                let files: Vec<String> = kept_for.iter().map(|(f, _)| f.clone()).collect();
                writeln!(
                    out,
                    "Kept what the other sweeps that write into this store still plan: {}",
                    files.join(", ")
                )
                .map_err(|e| CliError::io("cannot write to stdout", e))?;
            }
            crate::report::clean::run(&args, &referenced, &mut out)?;
            Ok(())
        }
        Some(Command::Status { json }) => status::status(&cli.sweep, cli.verbose > 0, json),
        Some(Command::Cancel) => status::cancel(&cli.sweep),
        Some(Command::Validate(args)) => validate::run(
            &args,
            cli.sweep.configfile.as_deref(),
            cli.sweep.quiet,
            &mut std::io::stdout().lock(),
        ),
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

/// What the other sweeps recorded in the store (crate::store::sweeps) still plan, by
/// experiments file: those whose file still exists and still plans. IDs do not depend on where
/// a sweep ran, so each file is planned from here.
fn other_sweeps(
    sweep_args: &args::SweepArgs,
    current: &sweep::Settings,
    store: &std::path::Path,
) -> Vec<(String, crate::report::clean::Referenced)> {
    let this = std::path::absolute(&current.configfile).ok();
    crate::store::sweeps::list(store)
        .into_iter()
        .filter(|r| {
            r.configfile.is_file()
                && !(Some(&r.configfile) == this.as_ref() && r.config == current.config)
        })
        .filter_map(|r| {
            let mut other = sweep_args.clone();
            other.configfile = Some(r.configfile.clone());
            other.config = r.config.clone();
            let settings = sweep::Settings::from_args(&other).ok()?;
            let plan = sweep::load_plan(&settings).ok()?;
            // The file with its `--config` keys: a trial of the same file is another sweep.
            let mut label = r.configfile.display().to_string();
            if !r.config.is_empty() {
                label = format!("{label} (--config {})", r.config.join(" "));
            }
            Some((label, referenced_by(&plan)))
        })
        .collect()
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
