//! The command line: clap definitions ([`args`]) and dispatch to the parts that do the work.

pub mod args;
mod clean;
pub mod error;
pub mod status;
pub mod sweep;
pub mod validate;

pub use args::{Cli, Command};
pub use error::CliError;

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
        Some(Command::Clean(mut args)) => clean::clean(&cli.sweep, &mut args),
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
pub(super) fn referenced_by(plan: &crate::plan::Plan) -> crate::report::clean::Referenced {
    crate::report::clean::Referenced {
        targets: plan.targets.iter().map(|t| t.id.clone()).collect(),
        runs: (0..plan.runs.len() as u32)
            .map(|r| plan.run_id(r))
            .collect(),
    }
}

/// The default `--runs-root` (clap's default value).
pub(super) const DEFAULT_STORE: &str = "runs";

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
