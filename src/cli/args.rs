//! Command-line flags (clap). They follow Snakemake's names and meanings, because lambda-hat's
//! users come from Snakemake: `-n`, `-j`, `--profile`, `--configfile`, `--resources`,
//! `--set-resources`, `--default-resources`, `-S`, `-D`, `--ri`, `-R`, `-F`, `--until`, `-t`,
//! `--config`, `-p`, `-l`, `--dag`, `--rulegraph`, `-T`, `-k`, `-q`.
//! Positional arguments are output-path globs selecting which jobs to bring up to date.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::profile::parse_count;

#[derive(Debug, Parser)]
#[command(
    name = "lambda-hat",
    version,
    // Snakemake accepts a flag given twice (`-n --dryrun`, a profile's flag repeated by hand):
    // a repeated switch stays on and a repeated single-value option keeps its last value.
    // Append options (--config, --set-resources, targets) still collect every value.
    args_override_self = true,
    about = "Local learning coefficient (LLC) sweeps with MCMC, run locally or on SLURM",
    after_help = "Examples:\n  lambda-hat -n                      preview the whole DAG\n  lambda-hat -j 4                    run the sweep locally, 4 jobs at a time\n  lambda-hat --profile slurm -j 100  run it on SLURM\n  lambda-hat \"runs/targets/*/meta.json\" -j 4   only build targets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub sweep: SweepArgs,

    /// More log output (-v, -vv); RUST_LOG overrides.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Output files (globs) to bring up to date, with everything they need upstream,
    /// e.g. "runs/targets/*/meta.json". Default: every output of the sweep.
    #[arg(value_name = "TARGETS")]
    pub targets: Vec<String>,

    /// Experiments file.
    #[arg(
        long = "configfile",
        visible_alias = "configfiles",
        value_name = "FILE",
        global = true
    )]
    pub configfile: Option<PathBuf>,

    /// Profile: a directory with config.yaml (profiles/NAME, ~/.config/lambda-hat/NAME, or a path).
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,

    /// Do not run anything; show what would run and why.
    #[arg(short = 'n', long = "dry-run", visible_alias = "dryrun")]
    pub dry_run: bool,

    /// Most jobs running (local) or queued and running (SLURM) at once; `all` (or no value) is
    /// the CPU count, as in Snakemake. Default: CPU count locally.
    #[arg(short = 'j', long = "jobs", value_name = "N", num_args = 0..=1,
          default_missing_value = "all", value_parser = parse_count)]
    pub jobs: Option<usize>,

    /// Most CPU cores used by running local jobs (sum of their cpus_per_task); `all` (or no
    /// value) is the CPU count, as in Snakemake.
    #[arg(short = 'c', long = "cores", value_name = "N", num_args = 0..=1,
          default_missing_value = "all", value_parser = parse_count)]
    pub cores: Option<usize>,

    /// Global limits on the sum of a resource over running jobs, e.g. mem_mb=16000.
    #[arg(long, value_name = "NAME=INT", num_args = 1.., action = clap::ArgAction::Append)]
    pub resources: Vec<String>,

    /// Resources of one rule's jobs, e.g. run_sampler:runtime=360 build_target:mem_mb=4000.
    #[arg(long = "set-resources", value_name = "RULE:NAME=VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub set_resources: Vec<String>,

    /// Resources of every job unless set per rule, e.g. mem_mb=2000 slurm_partition=short.
    #[arg(long = "default-resources", value_name = "NAME=VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub default_resources: Vec<String>,

    /// One row per output: date, rule, status and whether it would be updated.
    #[arg(short = 'S', long)]
    pub summary: bool,

    /// Like --summary, plus each job's input and worker command.
    #[arg(short = 'D', long = "detailed-summary")]
    pub detailed_summary: bool,

    /// Remove the store's lock when no process holds it (a lock a crashed host left on a shared
    /// file system), then exit.
    #[arg(long)]
    pub unlock: bool,

    /// Redo jobs that an earlier, killed run left incomplete.
    #[arg(
        long = "rerun-incomplete",
        visible_alias = "ri",
        overrides_with = "no_rerun_incomplete"
    )]
    pub rerun_incomplete: bool,

    /// Do not redo incomplete jobs, even if the profile says `rerun-incomplete: true`.
    #[arg(long = "no-rerun-incomplete", overrides_with = "rerun_incomplete")]
    pub no_rerun_incomplete: bool,

    /// Rerun every job of these rules (build_target, run_sampler) and what depends on them.
    #[arg(short = 'R', long = "forcerun", value_name = "RULE", num_args = 1.., action = clap::ArgAction::Append)]
    pub forcerun: Vec<String>,

    /// Rerun every job the requested outputs need, done or not (Snakemake's --forceall).
    #[arg(short = 'F', long = "forceall")]
    pub forceall: bool,

    /// Run only the jobs of these rules and what they need upstream, e.g. `--until build_target`
    /// builds the targets and samples nothing.
    #[arg(long, value_name = "RULE", num_args = 1.., action = clap::ArgAction::Append)]
    pub until: Vec<String>,

    /// Mark the requested outputs as up to date without running anything: clears incomplete
    /// markers and records the outputs as they are now. Outputs that are missing or not whole
    /// are not touched (the command names them and exits 1).
    #[arg(short = 't', long)]
    pub touch: bool,

    /// Snakemake's `--report FILE`: write the sweep's HTML report (as `lambda-hat report -o
    /// FILE`; default report.html) instead of running anything.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "report.html")]
    pub report: Option<PathBuf>,

    /// Set experiments-file keys, e.g. `--config store_root=runs_b posterior.gamma=10`: dotted
    /// keys reach into mappings, values are YAML (a mapping merges into the section key by key,
    /// as in Snakemake), and the file is validated as if it said so. Also after `status`, `cancel`, `results`, `report`, `promote` and `clean`, so they read
    /// the same sweep (put it after the subcommand: it takes every word up to the next flag).
    #[arg(
        long,
        value_name = "KEY=VALUE",
        num_args = 1..,
        action = clap::ArgAction::Append,
        global = true
    )]
    pub config: Vec<String>,

    /// Print each job's worker command (the command that runs it, locally or in the SLURM
    /// script), in dry runs too.
    #[arg(short = 'p', long = "printshellcmds")]
    pub printshellcmds: bool,

    /// Print the rules (build_target, run_sampler) with what each makes, then exit.
    #[arg(short = 'l', long = "list", visible_alias = "list-rules")]
    pub list: bool,

    /// Print the DAG of the requested jobs in Graphviz DOT (`| dot -Tsvg > dag.svg`); jobs
    /// with nothing to do are dashed. Runs nothing.
    #[arg(long)]
    pub dag: bool,

    /// Print the graph of rules in Graphviz DOT. Runs nothing.
    #[arg(long)]
    pub rulegraph: bool,

    /// Go on with independent jobs when a job fails.
    #[arg(short = 'k', long = "keep-going", overrides_with = "no_keep_going")]
    pub keep_going: bool,

    /// Stop launching jobs after a failure, even if the profile says `keep-going: true`.
    #[arg(long = "no-keep-going", overrides_with = "keep_going")]
    pub no_keep_going: bool,

    /// Start a failed job again up to this many times (locally and on SLURM).
    #[arg(
        short = 'T',
        long = "retries",
        visible_alias = "restart-times",
        value_name = "N"
    )]
    pub retries: Option<u32>,

    /// Print less: no progress lines, only warnings, errors and the closing counts.
    #[arg(short = 'q', long, global = true, overrides_with = "no_quiet")]
    pub quiet: bool,

    /// Print progress lines, even if the profile says `quiet: true`.
    #[arg(long = "no-quiet", global = true, overrides_with = "quiet")]
    pub no_quiet: bool,

    /// Where jobs run (default: the profile's, else local).
    #[arg(long, value_name = "NAME", value_enum)]
    pub executor: Option<crate::config::profile::Executor>,

    /// SLURM: submit the jobs and exit; a later invocation reattaches to them.
    #[arg(long)]
    pub detach: bool,

    /// Seconds to wait for output files of finished jobs to appear (shared file systems).
    #[arg(
        long = "latency-wait",
        visible_alias = "output-wait",
        value_name = "SECONDS"
    )]
    pub latency_wait: Option<u64>,

    /// SLURM: run up to K run_sampler jobs of one target inside one SLURM job or array task, one
    /// after another (like Snakemake's job groups); `auto` picks K so a bundle lasts about a
    /// minute. Default 1: one SLURM job or array task per job.
    #[arg(long = "bundle-size", value_name = "K|auto")]
    pub bundle_size: Option<crate::config::profile::BundleSize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one job (used by the executors on this machine and on compute nodes).
    #[command(subcommand)]
    Worker(crate::worker::WorkerCommand),
    /// One row per finished sampler run (table, CSV or JSON), group-by summaries and a plot.
    Results(crate::report::results::ResultsArgs),
    /// Write one self-contained HTML report of the sweep (config, sortable results, every
    /// run's plots and warnings, benchmarks), like `snakemake --report`.
    Report(crate::report::html::ReportArgs),
    /// Copy representative plots into a gallery with a Markdown snippet.
    Promote(crate::report::promote::PromoteArgs),
    /// List (and with --yes delete) store directories the experiments file no longer references.
    Clean(crate::report::clean::CleanArgs),
    /// Job status of the sweep (local or SLURM): per rule, how many jobs are done, outdated,
    /// running, pending, failed, incomplete, corrupt or missing; -v adds one line per job.
    Status {
        /// Machine-readable output (per-rule counts and every job).
        #[arg(long)]
        json: bool,
    },
    /// Cancel the sweep's SLURM jobs that are queued or running (one scancel).
    Cancel,
    /// Check samplers against networks whose LLC is known; exit 1 when an estimate is off.
    Validate(ValidateArgs),
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Each sampler runs with its default preset (sampler/NAME.yaml next to --configfile, else ./config/sampler/NAME.yaml, else built in) on each case:\n  regular  linear regression, d = 40: truth ½ tr(nβH(nβH+γI)⁻¹), exact at its nβ\n  dln432   deep linear network [4,3,2], full-rank teacher: λ = 4.0 (Aoyagi)\n  dln333   deep linear network [3,3,3], full-rank teacher: λ = 4.5 (Aoyagi)\n  trained_regular  6-parameter regression, n = 5,000, default training and posterior\n  trained_dln432, trained_dln333  the deep linear networks at n = 10,000, default training and posterior\n  trained_dln3333, trained_dln43332  deep linear [3,3,3,3] (3 layers, λ = 4.5) and [4,3,3,3,2] (4 layers, λ = 4.0), the same way\n  trained_dln323_r0, trained_dln5346_r1  rank-deficient teachers: [3,2,3] with a zero teacher (r = 0, λ = 2.5) and [5,3,4,6] with a rank-1 teacher (λ = 8), the same way\n  (trained deep linear cases are not run unless named: NUTS takes about a minute on each)\nTolerances: HMC and NUTS 3 % (regular) and 10 % (deep linear), MCLMC and SGLD 15 %; their acceptance within 0.05 of the target. Trained cases: HMC and NUTS 5 %, MCLMC and SGLD 10 %, and healthy (R-hat <= 1.01, bulk ESS >= 400, divergences <= 0.1 % of draws).\nExit code: 0 all pass, 1 any check fails, 2 bad input."
)]
pub struct ValidateArgs {
    /// Samplers to check, comma-separated.
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        default_values = crate::config::schema::SamplerConfig::NAMES,
        value_parser = clap::builder::PossibleValuesParser::new(crate::config::schema::SamplerConfig::NAMES)
    )]
    pub samplers: Vec<String>,

    /// Cases to check them on, comma-separated.
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        default_values = crate::validate::Case::DEFAULT_NAMES,
        value_parser = clap::builder::PossibleValuesParser::new(crate::validate::Case::NAMES)
    )]
    pub cases: Vec<String>,

    /// Fewer recorded draws (for CI; warmup and tuning unchanged), same tolerances.
    #[arg(long)]
    pub quick: bool,

    /// Floating-point precision of training and sampling.
    #[arg(long, value_name = "PRECISION", default_value = "f64", value_parser = ["f32", "f64"])]
    pub precision: String,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Sets every sampler's `seed` (a replicate: other random numbers in every chain).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the flag definitions (names, `overrides_with` targets, globals) only when a
    /// command is built; this builds every subcommand, so a broken definition fails here and
    /// not in a user's (or a worker's) hands.
    #[test]
    fn every_flag_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Snakemake's `--cores all`, a bare `--cores` or `-j`, and plain counts; 0 and words are
    /// refused with what to give instead.
    #[test]
    fn counts_are_numbers_or_all_as_in_snakemake() {
        use clap::Parser;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parse = |args: &[&str]| {
            let argv = std::iter::once("lambda-hat").chain(args.iter().copied());
            super::Cli::try_parse_from(argv).map(|c| (c.sweep.jobs, c.sweep.cores))
        };
        assert_eq!(parse(&["--cores", "all"]).unwrap(), (None, Some(cpus)));
        assert_eq!(parse(&["--cores"]).unwrap(), (None, Some(cpus)));
        assert_eq!(parse(&["-j"]).unwrap(), (Some(cpus), None));
        assert_eq!(parse(&["-j", "3", "-c", "2"]).unwrap(), (Some(3), Some(2)));
        assert_eq!(parse(&["-j", "all", "-n"]).unwrap(), (Some(cpus), None));
        for bad in ["0", "many", "2.5"] {
            let err = parse(&["-j", bad]).unwrap_err().to_string();
            assert!(err.contains("at least 1"), "{bad}: {err}");
        }
    }

    /// Repeats are accepted as in Snakemake; lists still collect every value.
    #[test]
    fn repeated_flags_are_accepted_and_lists_still_append() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let argv = std::iter::once("lambda-hat").chain(args.iter().copied());
            super::Cli::try_parse_from(argv)
        };
        for args in [
            &["-n", "--dryrun"][..],
            &["-n", "-n"],
            &["-F", "-F", "-n"],
            &["--dry-run", "--dry-run", "-p", "-p"],
        ] {
            let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(cli.sweep.dry_run, "{args:?}");
        }
        let cli = parse(&[
            "-j",
            "2",
            "-j",
            "3",
            "--configfile",
            "a.yaml",
            "--configfile",
            "b.yaml",
        ])
        .unwrap();
        assert_eq!(cli.sweep.jobs, Some(3));
        assert_eq!(
            cli.sweep.configfile.as_deref(),
            Some(std::path::Path::new("b.yaml"))
        );
        let cli = parse(&[
            "--config",
            "a=1",
            "b=2",
            "--config",
            "c=3",
            "--set-resources",
            "run_sampler:mem_mb=100",
            "--set-resources",
            "build_target:mem_mb=200",
            "x/*",
            "y/*",
        ])
        .unwrap();
        assert_eq!(cli.sweep.config, ["a=1", "b=2", "c=3"]);
        // The words after the last --set-resources are its values (num_args 1..); none is lost.
        let all: Vec<_> = cli
            .sweep
            .set_resources
            .iter()
            .chain(&cli.sweep.targets)
            .collect();
        assert_eq!(all.len(), 4, "{all:?}");
        let cli = parse(&["results", "--plot", "a.png", "--plot", "b.png"]).unwrap();
        let Some(super::Command::Results(r)) = cli.command else {
            panic!("not results")
        };
        assert_eq!(r.plot.as_deref(), Some(std::path::Path::new("b.png")));
    }

    /// plan's list of subcommands (for "did you mean `status`?") is clap's.
    #[test]
    fn the_plan_knows_every_subcommand() {
        let mut clap: Vec<_> = super::Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        let mut ours: Vec<_> = crate::plan::dag::SUBCOMMANDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        clap.sort();
        ours.sort();
        assert_eq!(clap, ours);
    }

    /// Snakemake flags lambda-hat lacks get a hint of their own, not clap's nearest spelling.
    #[test]
    fn snakemake_only_flags_get_their_own_hint() {
        use clap::Parser;
        let hint = |args: &[&str]| {
            let argv = std::iter::once("lambda-hat").chain(args.iter().copied());
            let err = super::Cli::try_parse_from(argv).unwrap_err();
            crate::cli::snakemake_hint(&err)
        };
        for args in [
            &["--slurm"][..],
            &["--cluster", "sbatch"],
            &["--executor", "cluster-generic"],
        ] {
            let h = hint(args).unwrap_or_else(|| panic!("{args:?}: no hint"));
            assert!(
                h.contains("--executor slurm") && h.contains("--profile slurm"),
                "{h}"
            );
        }
        let h = hint(&["--nolock"]).unwrap();
        assert!(
            h.contains("two controllers") && !h.starts_with("--unlock"),
            "{h}"
        );
        assert!(hint(&["--reason"]).unwrap().contains("-n"));
        assert!(
            hint(&["--rerun-triggers", "mtime"])
                .unwrap()
                .contains("IDs")
        );
        // Other mistakes keep clap's own message.
        assert_eq!(hint(&["--dryrn"]), None);
        assert_eq!(hint(&["--executor", "pbs"]), None);
    }
}
