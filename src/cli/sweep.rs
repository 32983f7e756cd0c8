//! The default command: plan the sweep and dry-run it, summarise it, or run it.
//!
//! Flow: experiments file (+ profile) → [`Plan`] → store status → [`schedule`] → text or executor.
//! Profile values are defaults; command-line flags win. A run that executed jobs closes with
//! the count of jobs done and the health of every finished job of the plan (unhealthy runs,
//! unconverged targets), which informs but never changes the exit code.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use super::args::SweepArgs;
use super::error::CliError;
use crate::config::ConfigError;
use crate::config::experiments::load_sweep_with;
use crate::config::profile::{
    BundleSize, Executor, LoadedProfile, ResourceList, RuleResources, load_profile,
};
use crate::exec::local::{self, LocalOptions};
use crate::exec::resources::{
    self, LayerBuilder, Limits, ResourceLayers, ResourceMap, ResourceValue,
};
use crate::exec::slurm::{self, ReattachStatus, SlurmError, SlurmOptions};
use crate::exec::{Outcome, default_worker_command};
use crate::plan::select::{OutputStatus, schedule};
use crate::plan::{Plan, Request, Rule, Schedule, graph, text};
use crate::store::health::SUMMARY_LINES;
use crate::store::status::modified_string;
use crate::store::{StoreHealth, StoreLock, StoreStatus};

pub const DEFAULT_CONFIGFILE: &str = "config/experiments.yaml";

/// Everything the flags and the profile decide, merged (command line wins).
pub struct Settings {
    pub configfile: PathBuf,
    pub profile: Option<LoadedProfile>,
    pub executor: Executor,
    pub jobs: usize,
    pub limits: Limits,
    pub layers: ResourceLayers,
    pub keep_going: bool,
    pub rerun_incomplete: bool,
    pub quiet: bool,
    pub retries: u32,
    pub latency_wait: u64,
    pub detach: bool,
    /// `--bundle-size`, else the profile's `bundle-size`, else 1.
    pub bundle_size: BundleSize,
    /// `--config KEY=VALUE` assignments laid over the experiments file.
    pub config: Vec<String>,
    /// `-p`, or the profile's `printshellcmds: true`: print each job's worker command.
    pub print_commands: bool,
}

fn resource_list(list: &ResourceList, place: &str) -> Result<ResourceMap, CliError> {
    let mut out = LayerBuilder::default();
    match list {
        ResourceList::Map(m) => {
            for (k, v) in m {
                out.add(k, resources::from_yaml(k, v)?, place)?;
            }
        }
        ResourceList::List(items) => {
            for item in items {
                out.add_text(item, place)?;
            }
        }
    }
    Ok(out.build())
}

fn int_limits(map: &ResourceMap, into: &mut BTreeMap<String, i64>) -> Result<(), CliError> {
    for (k, v) in map {
        match v {
            ResourceValue::Int(i) => {
                into.insert(k.clone(), *i);
            }
            ResourceValue::Text(t) => {
                return Err(CliError::Usage(format!(
                    "--resources {k}={t}: a global limit must be an integer"
                )));
            }
        }
    }
    Ok(())
}

/// A boolean the profile can set and the command line can turn on (`--flag`) or off
/// (`--no-flag`), as ripgrep's flags do: the command line wins, then the profile, else off.
/// (clap keeps only the last of `--flag`/`--no-flag`, so at most one is set.)
fn switch(on: bool, off: bool, profile: Option<bool>) -> bool {
    if on {
        true
    } else if off {
        false
    } else {
        profile.unwrap_or(false)
    }
}

impl Settings {
    pub fn from_args(args: &SweepArgs) -> Result<Settings, CliError> {
        let profile = args.profile.as_deref().map(load_profile).transpose()?;
        let p = profile
            .as_ref()
            .map(|l| l.profile.clone())
            .unwrap_or_default();

        let mut layers = ResourceLayers::default();
        if let Some(list) = &p.default_resources {
            let place = "the profile's default-resources";
            layers.default_resources.push(resource_list(list, place)?);
        }
        let mut cli_defaults = LayerBuilder::default();
        for item in &args.default_resources {
            cli_defaults.add_text(item, "--default-resources")?;
        }
        layers.default_resources.push(cli_defaults.build());
        if let Some(set) = &p.set_resources {
            let place = "the profile's set-resources";
            let layer = match set {
                RuleResources::Map(set) => {
                    let mut layer = BTreeMap::new();
                    for (rule, values) in set {
                        let rule = Rule::parse(rule)?;
                        let place = format!("{place} ({})", rule.name());
                        let mut m = LayerBuilder::default();
                        for (k, v) in values {
                            m.add(k, resources::from_yaml(k, v)?, &place)?;
                        }
                        layer.insert(rule, m.build());
                    }
                    layer
                }
                // Snakemake profiles write it as the flag's words: `- run_sampler:mem_mb=4000`.
                RuleResources::List(items) => resources::rule_layer(items, place)?,
            };
            layers.set_resources.push(layer);
        }
        layers.set_resources.push(resources::rule_layer(
            &args.set_resources,
            "--set-resources",
        )?);

        let mut limits = Limits::default();
        if let Some(list) = &p.resources {
            let place = "the profile's resources";
            int_limits(&resource_list(list, place)?, &mut limits.resources)?;
        }
        let mut cli_limits = LayerBuilder::default();
        for item in &args.resources {
            cli_limits.add_text(item, "--resources")?;
        }
        int_limits(&cli_limits.build(), &mut limits.resources)?;
        limits.cores = args.cores.or(p.cores).map(|c| c as i64);

        let executor = args.executor.or(p.executor).unwrap_or_default();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let jobs = args.jobs.or(p.jobs).unwrap_or(cpus);
        if jobs == 0 {
            return Err(CliError::Usage("-j/--jobs must be at least 1".into()));
        }
        // Flags of the SLURM executor, given on the command line of a local sweep: --detach
        // would otherwise run the whole sweep in the foreground, the opposite of what it asks.
        if executor == Executor::Local && args.detach {
            return Err(CliError::Usage(
                "--detach leaves SLURM jobs queued and returns, but this sweep runs locally, in \
                 this process: use --executor slurm or a SLURM --profile, or keep a local sweep \
                 running with nohup or tmux"
                    .into(),
            ));
        }
        if executor == Executor::Local && args.bundle_size.is_some() {
            crate::terminal::note!(
                "note: --bundle-size bundles SLURM jobs; this local sweep runs its jobs one by \
                 one (-j at a time) and ignores it"
            );
        }
        Ok(Settings {
            configfile: args
                .configfile
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIGFILE)),
            executor,
            jobs,
            limits,
            layers,
            keep_going: switch(args.keep_going, args.no_keep_going, p.keep_going),
            rerun_incomplete: switch(
                args.rerun_incomplete,
                args.no_rerun_incomplete,
                p.rerun_incomplete,
            ),
            quiet: switch(args.quiet, args.no_quiet, p.quiet),
            retries: args.retries.or(p.retries).unwrap_or(0),
            latency_wait: args.latency_wait.or(p.latency_wait).unwrap_or(5),
            detach: args.detach,
            bundle_size: args.bundle_size.or(p.bundle_size).unwrap_or_default(),
            config: args.config.clone(),
            print_commands: args.printshellcmds || p.printshellcmds.unwrap_or(false),
            profile,
        })
    }

    pub fn rule_resources(&self) -> BTreeMap<Rule, ResourceMap> {
        Rule::ALL
            .into_iter()
            .map(|r| (r, self.layers.for_rule(r)))
            .collect()
    }
}

/// Loads the experiments file (with `--config`'s assignments) and builds the plan.
pub fn load_plan(settings: &Settings) -> Result<Plan, CliError> {
    let sweep = load_sweep_with(&settings.configfile, &settings.config)?;
    Ok(Plan::build(&sweep)?)
}

/// A missing experiments file, when a word on the command line is a slip away from a
/// subcommand (`lambda-hat statsu` outside a project folder): the subcommand meant is the likelier
/// mistake, so the hint names it too.
fn with_subcommand_hint(e: CliError, words: &[String]) -> CliError {
    let CliError::Config(ConfigError::Read { path, source, hint }) = e else {
        return e;
    };
    let slip: String = words
        .iter()
        .map(|w| crate::plan::dag::subcommand_hint(w))
        .find(|h| !h.is_empty())
        .unwrap_or_default();
    CliError::Config(ConfigError::Read {
        path,
        source,
        hint: format!("{hint}{slip}"),
    })
}

/// Keys of the jobs whose SLURM submission is still open (`open`) but whose files are there:
/// they finished while no controller followed them (after `--detach`).
fn finished_while_detached(
    plan: &Plan,
    status: &StoreStatus,
    open: &std::collections::HashSet<String>,
) -> std::collections::HashSet<String> {
    if open.is_empty() {
        return Default::default();
    }
    plan.jobs()
        .filter(|&j| status.done(plan, j) || status.corrupt(plan, j))
        .map(|j| plan.job_key(j))
        .filter(|key| open.contains(key))
        .collect()
}

/// `lambda-hat [TARGETS] [flags]`.
pub async fn run(args: &SweepArgs) -> Result<(), CliError> {
    // The rules are fixed: listing them needs no experiments file.
    if args.list || args.rulegraph {
        let text = if args.list {
            graph::rule_list()
        } else {
            graph::rulegraph_dot()
        };
        return write_stdout(&text);
    }
    let settings = Settings::from_args(args)?;
    let plan = load_plan(&settings).map_err(|e| with_subcommand_hint(e, &args.targets))?;
    if args.unlock && args.dry_run {
        // -n promises that nothing changes, --unlock included: say what would go.
        use crate::store::lock::{Unlocked, lock_path, unlock_preview};
        let store = plan.store_root.display();
        let file = lock_path(&plan.store_root);
        let file = file.display();
        match unlock_preview(&plan.store_root)? {
            Unlocked::Removed => crate::terminal::note!(
                "Would unlock the store {store} (remove {file}); nothing removed (dry run)."
            ),
            Unlocked::RemovedHeld(holder) => crate::terminal::note!(
                "Would unlock the store {store} (remove {file}); its lock is held by {holder}, which is not running on this host. Nothing removed (dry run)."
            ),
            Unlocked::NoLock => crate::terminal::note!("The store {store} has no lock to remove."),
        }
        return Ok(());
    }
    if args.unlock {
        use crate::store::lock::{Unlocked, unlock};
        let store = plan.store_root.display();
        match unlock(&plan.store_root)? {
            Unlocked::Removed => crate::terminal::note!("Unlocked the store {store}."),
            Unlocked::RemovedHeld(holder) => crate::terminal::note!(
                "Unlocked the store {store}; its lock was held by {holder}, which is not running on this host: make sure no lambda-hat runs there."
            ),
            Unlocked::NoLock => crate::terminal::note!("The store {store} has no lock to remove."),
        }
        return Ok(());
    }
    // The request's own mistakes (a target that names no output of the sweep, an unknown rule)
    // are refused before the store is locked or the sweep recorded: a typo (`lambda-hat
    // statsu`) must leave no store behind. The checks read the plan only.
    let forcerun = args
        .forcerun
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let until = args
        .until
        .iter()
        .map(|r| Rule::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    crate::plan::select::wanted_jobs(&plan, &args.targets)?;
    // Dry runs and summaries only read, and need no lock (below) and no cluster.
    let read_only = args.dry_run || args.summary || args.detailed_summary || args.dag;
    // A machine without SLURM's commands, under the SLURM executor, is refused before the
    // store is locked for the same reason: the sweep could neither submit nor follow its jobs.
    if settings.executor == Executor::Slurm && !read_only && !args.touch {
        slurm::preflight().map_err(CliError::from)?;
    }
    // One controller per store (src/store/lock.rs), taken before the store is read, so the
    // status below cannot mistake another controller's live jobs for killed ones. Dry runs
    // and summaries only read, and need no lock.
    let _lock = if read_only {
        None
    } else {
        Some(StoreLock::acquire(&plan.store_root)?)
    };
    // So that `clean` with another experiments file keeps this sweep's results.
    if _lock.is_some()
        && let Err(e) =
            crate::store::sweeps::record(&plan.store_root, &settings.configfile, &settings.config)
    {
        crate::terminal::note!(
            "warning: cannot record this sweep in {}: {e} (`lambda-hat clean` run with another \
             experiments file would not know these results are this sweep's)",
            crate::store::private_dir(&plan.store_root).display()
        );
    }
    // A read-only view of a store another controller is running: its live jobs carry
    // incomplete markers, which must not read as killed jobs (nor refuse the view).
    let other = match _lock {
        None => crate::store::lock::holder(&plan.store_root),
        Some(_) => None,
    };
    if let Some(holder) = &other {
        crate::terminal::note!(
            "Note: another lambda-hat is running a sweep in this store ({holder}); the jobs it is running are listed as incomplete."
        );
    }
    let mut status = StoreStatus::scan(&plan);
    let request = Request {
        globs: args.targets.clone(),
        forcerun,
        forceall: args.forceall,
        until,
        rerun_incomplete: settings.rerun_incomplete || other.is_some(),
    };
    if args.dag {
        // A picture of the plan: it reads the store and never refuses over incomplete jobs.
        let request = Request {
            rerun_incomplete: true,
            ..request
        };
        let sched = schedule(&plan, &status, &request)?;
        return write_stdout(&graph::dag_dot(&plan, &sched));
    }
    if args.touch {
        return touch_outputs(&plan, &status, request, args.dry_run);
    }
    let rule_resources = settings.rule_resources();

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io_err = |e| CliError::io("cannot write to stdout", e);

    if args.summary || args.detailed_summary {
        // After `--detach`, jobs that finished while no controller followed them keep their
        // markers until the next run collects them (below); the summary reads them as that
        // run will, done, and writes nothing.
        let open = slurm::open_submissions(&plan);
        let finished = finished_while_detached(&plan, &status, &open);
        status.forget_incomplete(&finished);
        // A summary lists every requested output, including incomplete ones, so it never refuses.
        let request = Request {
            rerun_incomplete: true,
            ..request
        };
        let sched = schedule(&plan, &status, &request)?;
        let worker = crate::plan::shell_words(&default_worker_command());
        let input = text::SummaryInput {
            status: &status,
            wanted: &|j| sched.selected[job_index(&plan, j)],
            modified: &|j| modified_string(&plan.output(j)),
            worker_command: &worker,
            detailed: args.detailed_summary,
        };
        text::summary(&mut out, &plan, &sched, &input).map_err(io_err)?;
        return out.flush().map_err(io_err);
    }

    // SLURM: jobs of an earlier invocation still queued or running are reattached to, so
    // their incomplete markers do not block planning; those that finished meanwhile are
    // collected first.
    let on_slurm = settings.executor == Executor::Slurm;
    let slurm_opts = on_slurm
        .then(|| slurm_options(&settings, &rule_resources, settings.print_commands))
        .transpose()?;
    if let Some(opts) = &slurm_opts {
        slurm::validate(opts).map_err(CliError::from)?;
    }
    // Read whatever the executor: after a detached SLURM sweep, a local run (or `-n` without
    // the profile) must not call the jobs that finished incomplete, nor run the others twice.
    let mut open = slurm::open_submissions(&plan);
    if !open.is_empty() && !args.dry_run {
        // The jobs that finished are those the scan above found with their files: collected
        // from that one snapshot, a job finishing now is either collected (its files were
        // there) or scheduled and followed (they were not). Collecting first and scanning after
        // let a job that finished in between read as done while its submission stayed open
        // and its incomplete marker stayed, until the next run.
        let finished = finished_while_detached(&plan, &status, &open);
        let n = slurm::collect_finished(&plan, &finished)
            .map_err(|e| CliError::io("cannot update the journal", e))?;
        if n > 0 {
            crate::terminal::note!(
                "{n} job(s) finished on SLURM while no lambda-hat was following them."
            );
            status.forget_incomplete(&finished);
            open = slurm::open_submissions(&plan);
        }
    }
    if !on_slurm && !open.is_empty() {
        // Run locally, a submission still open is not followed: those with their output are
        // done (as `collect_finished` records in a real run), the others stay incomplete, so
        // nothing runs twice unless the user says `--ri`.
        let submitted = open.len();
        open = plan
            .jobs()
            .map(|j| (plan.job_key(j), j))
            .filter(|(key, j)| open.contains(key) && plan.output(*j).is_file())
            .map(|(key, _)| key)
            .collect();
        let on_cluster = submitted - open.len();
        // Refused whatever the flags: run here too, each such job would be computed twice, the
        // two copies writing the same files with no lock between the hosts, and the later one
        // would make the journal's hashes of the earlier one call it corrupt. Not where SLURM
        // is absent (a store copied off the cluster): no job of it can be running here, and
        // the unfinished ones are incomplete (`--ri` redoes them).
        if on_cluster > 0 && !args.dry_run && slurm::on_path("squeue") {
            return Err(CliError::Usage(format!(
                "{on_cluster} job(s) of this sweep were submitted to SLURM by an earlier run and \
                 are not known to have ended, so this local run would compute them a second \
                 time (`--ri` too). Follow them with the profile that submitted them \
                 (`--profile NAME`), see their state with `lambda-hat status`, or stop them with \
                 `lambda-hat cancel` and run again."
            )));
        }
        if on_cluster > 0 {
            crate::terminal::note!(
                "{on_cluster} job(s) of this sweep were submitted to SLURM and are not known to \
                 have ended (`lambda-hat status` asks SLURM): follow them with the profile that \
                 submitted them (`--profile NAME`), or stop them with `lambda-hat cancel`; a \
                 local run refuses to start while they may still run."
            );
        }
    }
    let sched = schedule(
        &plan,
        &ReattachStatus {
            inner: &status,
            open: &open,
        },
        &request,
    )?;
    // Memory preflight (crate::plan::memory): a job that cannot fit is refused now, with its
    // estimate, instead of aborting in the worker ("memory allocation of 8 TB failed").
    let machine = if on_slurm {
        None
    } else {
        resources::machine_memory_bytes()
    };
    for (job, _) in &sched.jobs {
        let name = plan.output(*job).display().to_string();
        let res = &rule_resources[&job.rule()];
        settings.limits.check_job(&name, job.rule(), res)?;
        let estimate = job_memory(&plan, *job);
        resources::check_memory(&name, job.rule(), res, &estimate, machine)?;
    }

    if args.dry_run {
        if on_slurm {
            // A real run follows these instead of submitting them again; the listing cannot
            // tell them apart from jobs it would submit, so say how many there are.
            let queued = sched
                .jobs
                .iter()
                .filter(|(j, _)| open.contains(&plan.job_key(*j)))
                .count();
            if queued > 0 {
                crate::terminal::note!(
                    "{queued} of the jobs below were submitted to SLURM by an earlier run and \
                     are not known to have ended: a run with this profile follows them instead \
                     of submitting them again (`lambda-hat status` shows their SLURM state)."
                );
            }
        }
        let describe = |j: crate::plan::JobRef| resources::describe(&rule_resources[&j.rule()]);
        let worker = crate::plan::shell_words(&worker_command(&settings));
        let commands = settings.print_commands.then_some(worker.as_str());
        // What a user deleted or a full disk left: the reason names those files, not the
        // marker that may still be there.
        let damaged = |j: crate::plan::JobRef| -> Vec<String> {
            crate::store::status::damaged_files(&plan, j)
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        let submissions = match &slurm_opts {
            Some(opts) if !settings.quiet => submissions_listing(&plan, &sched, opts, &open),
            _ => Vec::new(),
        };
        let input = text::DryRunInput {
            resources: &describe,
            damaged: &damaged,
            quiet: settings.quiet,
            worker_command: commands,
            submissions: &submissions,
        };
        text::dry_run(&mut out, &plan, &sched, &input).map_err(io_err)?;
        return out.flush().map_err(io_err);
    }
    if sched.jobs.is_empty() {
        writeln!(out, "{}", text::NOTHING_TO_DO).map_err(io_err)?;
        return out.flush().map_err(io_err);
    }
    if !settings.quiet {
        text::job_stats(&mut out, &sched).map_err(io_err)?;
    }
    out.flush().map_err(io_err)?;
    drop(out);

    let outcome = match slurm_opts {
        Some(opts) => {
            let result = run_slurm(&plan, &sched, &opts).await?;
            if let Some((queued, waiting)) = result.detached {
                report_failures(&sched, &result.outcome)?;
                crate::terminal::note!(
                    "Detached: {queued} job(s) queued on SLURM{}. Run the same command again to follow them (it reattaches), or `lambda-hat status`.",
                    if waiting > 0 {
                        format!(", {waiting} more wait for them or for room under -j")
                    } else {
                        String::new()
                    }
                );
                return Ok(());
            }
            result.outcome
        }
        None => {
            let opts = LocalOptions {
                jobs: settings.jobs,
                limits: settings.limits.clone(),
                resources: rule_resources,
                keep_going: settings.keep_going,
                retries: settings.retries,
                quiet: settings.quiet,
                worker_command: worker_command(&settings),
                print_commands: settings.print_commands,
            };
            local::run(&plan, &sched, &opts).await?
        }
    };
    report(&plan, &sched, &outcome)
}

/// Prints `text` to stdout (DOT, the rule list).
fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::io("cannot write to stdout", e))
}

/// `--touch`: every job the request would run is marked up to date if its files are whole;
/// the rest are named, and the command fails (exit 1) so scripts notice.
fn touch_outputs(
    plan: &Plan,
    status: &StoreStatus,
    request: Request,
    dry_run: bool,
) -> Result<(), CliError> {
    let request = Request {
        rerun_incomplete: true,
        ..request
    };
    let sched = schedule(plan, status, &request)?;
    let jobs: Vec<_> = sched.jobs.iter().map(|(j, _)| *j).collect();
    let done = crate::store::touch::touch(plan, &jobs, dry_run)
        .map_err(|e| CliError::io("cannot record touched outputs in the store", e))?;
    let verb = if dry_run { "Would touch" } else { "Touched" };
    let mut out = std::io::stdout().lock();
    let io_err = |e| CliError::io("cannot write to stdout", e);
    for output in &done.touched {
        writeln!(out, "{verb} {output}").map_err(io_err)?;
    }
    if done.refused.is_empty() {
        if done.touched.is_empty() {
            writeln!(out, "{}", text::NOTHING_TO_DO).map_err(io_err)?;
        }
        return Ok(());
    }
    let mut msg = format!(
        "{} output(s) could not be touched because they are missing or not whole (touching \
         never creates results); run their jobs instead:\n",
        done.refused.len()
    );
    for output in &done.refused {
        msg.push_str(&format!("  {output}\n"));
    }
    Err(CliError::JobsFailed(msg.trim_end().to_string()))
}

/// The estimated memory of one job of `plan`.
fn job_memory(plan: &Plan, job: crate::plan::JobRef) -> crate::plan::memory::MemoryEstimate {
    use crate::plan::{JobRef, memory};
    match job {
        JobRef::Target(t) => memory::target_job(&plan.targets[t as usize].config),
        JobRef::Run(r) => {
            let run = &plan.runs[r as usize];
            let target = &plan.targets[plan.run_target(r) as usize].config;
            memory::run_job(target, &plan.samplers[run.sampler as usize])
        }
    }
}

/// The SLURM executor's options: the profile's SLURM keys, with built-in defaults.
fn slurm_options(
    settings: &Settings,
    rule_resources: &BTreeMap<Rule, ResourceMap>,
    print_commands: bool,
) -> Result<SlurmOptions, CliError> {
    let p = settings
        .profile
        .as_ref()
        .map(|l| l.profile.clone())
        .unwrap_or_default();
    let dir = settings.profile.as_ref().map(|l| l.dir.as_path());
    let templates = slurm::script::Templates::load(
        dir,
        p.sbatch_template.as_deref(),
        p.sbatch_array_template.as_deref(),
        p.sbatch_bundle_template.as_deref(),
    )
    .map_err(SlurmError::from)?;
    let slurm_extra = match &p.slurm_extra {
        Some(text) => slurm::flags::parse_extra(text).map_err(SlurmError::from)?,
        None => Vec::new(),
    };
    let seconds =
        |name: &str, v: Option<f64>, default: f64| -> Result<std::time::Duration, CliError> {
            let v = v.unwrap_or(default);
            if !(v.is_finite() && v > 0.0) {
                return Err(CliError::Usage(format!(
                    "profile key {name}: {v} is not a positive number of seconds"
                )));
            }
            Ok(std::time::Duration::from_secs_f64(v))
        };
    let poll_min = seconds("poll-min-interval", p.poll_min_interval, 2.0)?;
    let poll_max = seconds("poll-max-interval", p.poll_max_interval, 60.0)?;
    let retry_factor = p.retry_factor.unwrap_or(2.0);
    // Above 10 a retry's time and memory run past any partition's limits within two retries
    // (a factor of 1e308 asked SLURM for an unlimited time limit).
    if !(retry_factor.is_finite() && retry_factor > 1.0 && retry_factor <= 10.0) {
        return Err(CliError::Usage(format!(
            "profile key retry-factor: {retry_factor} must be a number above 1 and at most 10 \
             (memory and time grow by it on retry)"
        )));
    }
    // 0 would quietly mean something else (no arrays; a throttle of 1): say what does.
    for (key, value, instead) in [
        (
            "max-array-size",
            p.max_array_size,
            "`use-arrays: false` submits no arrays",
        ),
        (
            "array-throttle",
            p.array_throttle,
            "leave it out to throttle arrays at -j",
        ),
    ] {
        if value == Some(0) {
            return Err(CliError::Usage(format!(
                "profile key {key}: must be at least 1 ({instead})"
            )));
        }
    }
    Ok(SlurmOptions {
        jobs: settings.jobs,
        resources: rule_resources.clone(),
        slurm_extra,
        keep_going: settings.keep_going,
        quiet: settings.quiet,
        retries: settings.retries,
        retry_factor,
        latency_wait: std::time::Duration::from_secs(settings.latency_wait),
        worker_command: worker_command(settings),
        templates,
        use_arrays: p.use_arrays.unwrap_or(true),
        max_array_size: p.max_array_size.unwrap_or(1000),
        array_throttle: p.array_throttle,
        poll_min,
        poll_max,
        detach: settings.detach,
        print_commands,
        bundle_size: settings.bundle_size,
    })
}

/// Runs the SLURM controller on a blocking thread; Ctrl-C is counted by a signal task: the
/// first makes the controller cancel the sweep's jobs, a second exits at once.
async fn run_slurm(
    plan: &Plan,
    sched: &Schedule,
    opts: &SlurmOptions,
) -> Result<slurm::SlurmOutcome, CliError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let interrupts = Arc::new(AtomicUsize::new(0));
    let counter = interrupts.clone();
    // Only Ctrl-C cancels: a lost SSH session (SIGHUP) or a `kill` (SIGTERM) detaches, leaving
    // the sweep's jobs to SLURM; the next run reattaches to them (the journal has every
    // submission, and an intent without its outcome is reconciled).
    let mut detach_signals = crate::exec::signals::Interrupts::install_detaching()
        .map_err(crate::exec::ExecError::Signals)?;
    let detacher = tokio::spawn(async move {
        let signal = detach_signals.recv().await;
        crate::terminal::note!(
            "{signal}: detaching; the sweep's SLURM jobs stay queued. Run the same command again to follow them (it reattaches), or `lambda-hat status`."
        );
        std::process::exit(crate::exec::signals::exit_code(signal));
    });
    let listener = tokio::spawn(async move {
        let mut first = None;
        while tokio::signal::ctrl_c().await.is_ok() {
            let now = std::time::Instant::now();
            match first {
                None => {
                    first = Some(now);
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Some(at) if !is_second_ctrl_c(at, now) => {}
                Some(_) => {
                    crate::terminal::note!(
                        "interrupted twice: exiting now; SLURM jobs may still be queued (`lambda-hat cancel` cancels them)"
                    );
                    std::process::exit(crate::exit_code::SIGINT);
                }
            }
        }
    });
    let mut cluster = slurm::SlurmCli::new(interrupts);
    let result = tokio::task::block_in_place(|| slurm::run(plan, sched, opts, &mut cluster));
    listener.abort();
    detacher.abort();
    Ok(result?)
}

/// A SIGINT this long after the first is a second Ctrl-C; sooner, it is the same one delivered
/// twice: `timeout -s INT` and a terminal signal the process *and* its process group, and one
/// SIGINT taken for two exited without cancelling the sweep's jobs (seen once in 30 tries). A
/// person pressing Ctrl-C again, after reading that the jobs are being cancelled, takes longer.
const SECOND_CTRL_C_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

fn is_second_ctrl_c(first: std::time::Instant, now: std::time::Instant) -> bool {
    now.duration_since(first) >= SECOND_CTRL_C_AFTER
}

pub fn worker_command(settings: &Settings) -> Vec<String> {
    match settings
        .profile
        .as_ref()
        .and_then(|p| p.profile.worker_command.clone())
    {
        Some(cmd) => cmd.split_whitespace().map(String::from).collect(),
        None => default_worker_command(),
    }
}

/// The closing lines of a run, and its error (→ exit code) when anything failed.
fn report(plan: &Plan, sched: &Schedule, outcome: &Outcome) -> Result<(), CliError> {
    if outcome.interrupted {
        let signal = outcome.interrupted_by.unwrap_or("SIGINT");
        return Err(CliError::Interrupted {
            code: crate::exec::signals::exit_code(signal),
            markers: incomplete_markers(plan),
        });
    }
    if outcome.cancelled_by_command {
        // Work not done, so exit code 1 (not a signal's: no signal reached this process).
        let rerun = match incomplete_markers(plan) {
            0 => "run the same command to go on".to_string(),
            n => format!(
                "{n} job(s) were stopped while running and left incomplete markers: run the same \
                 command with --rerun-incomplete to go on"
            ),
        };
        let mut msg = format!(
            "`lambda-hat cancel` cancelled this sweep ({} of {} jobs done, {} not run); {rerun}. \
             Finished jobs are kept.",
            outcome.succeeded,
            sched.jobs.len(),
            outcome.skipped
        );
        if let Err(CliError::JobsFailed(failures)) = report_failures(sched, outcome) {
            msg.push_str("\nBefore that, ");
            msg.push_str(&failures);
        }
        return Err(CliError::JobsFailed(msg));
    }
    if outcome.failed.is_empty() {
        crate::terminal::note!("{} of {} jobs done.", outcome.succeeded, sched.jobs.len());
        report_health(plan);
        return Ok(());
    }
    report_health(plan);
    report_failures(sched, outcome)
}

/// The dry run's SLURM section: a heading, then one line per `sbatch` call a run would make
/// if every job succeeded (jobs named by the listing's `jobid`), so that `-n` shows how arrays
/// and `bundle-size` pack the jobs. Empty when nothing would be submitted.
fn submissions_listing(
    plan: &Plan,
    sched: &Schedule,
    opts: &slurm::SlurmOptions,
    open: &std::collections::HashSet<String>,
) -> Vec<String> {
    let calls = slurm::planned_submissions(plan, sched, opts, open);
    if calls.is_empty() {
        return Vec::new();
    }
    let slurm_jobs: usize = calls.iter().map(|c| c.bundles.len()).sum();
    let bundling = match opts.bundle_size {
        crate::config::profile::BundleSize::Fixed(k) if k.get() == 1 => "no bundles".to_string(),
        crate::config::profile::BundleSize::Fixed(k) => format!("bundle-size {k}"),
        crate::config::profile::BundleSize::Auto => "bundle-size auto".into(),
    };
    // Listed as if -j had room for all: what a run sends under -j depends on how many jobs end
    // per poll (`grouping::dry_run`); bundles are the same either way.
    let limit = if slurm_jobs > opts.jobs {
        format!(
            "; -j {} queues at most {} at once, so a run sends the arrays in more, smaller calls as jobs end",
            opts.jobs, opts.jobs
        )
    } else {
        String::new()
    };
    let followed = if open.is_empty() {
        ""
    } else {
        "; jobs an earlier run submitted are followed, not listed"
    };
    let mut lines = vec![format!(
        "SLURM submissions if every job succeeds ({bundling}): {} sbatch call(s), {slurm_jobs} SLURM job(s) or array task(s){limit}{followed}:",
        calls.len(),
    )];
    lines.extend(slurm::grouping::describe(&calls));
    lines
}

/// How many incomplete markers this sweep's jobs left. This sweep's only: the store may hold
/// other sweeps' (a shared store_root), which the user's --rerun-incomplete here would not
/// concern.
fn incomplete_markers(plan: &Plan) -> usize {
    let ours: std::collections::HashSet<String> =
        plan.jobs().map(|job| plan.job_key(job)).collect();
    crate::store::incomplete::IncompleteMarkers::new(&plan.store_root)
        .list()
        .into_iter()
        .filter(|key| ours.contains(key))
        .count()
}

/// The health of every finished job of the plan, this invocation's and earlier ones': the
/// jobs finished, so a problem here is reported but is not a failure.
fn report_health(plan: &Plan) {
    let health = StoreHealth::scan(plan, &StoreStatus::scan(plan));
    for line in health.summary(SUMMARY_LINES) {
        crate::terminal::note!("{line}");
    }
}

/// The error listing failed jobs, if any.
fn report_failures(sched: &Schedule, outcome: &Outcome) -> Result<(), CliError> {
    if outcome.failed.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} of {} jobs failed ({} done, {} not run):\n",
        outcome.failed.len(),
        sched.jobs.len(),
        outcome.succeeded,
        outcome.skipped
    );
    for f in &outcome.failed {
        // A job refused by sbatch or cancelled while it was queued never wrote its log.
        let log = if f.log.is_file() {
            f.log.display().to_string()
        } else {
            "none (the job never started)".into()
        };
        msg.push_str(&format!(
            "  {} {}: {}\n      log: {log}\n",
            f.job.rule().name(),
            f.output,
            f.reason,
        ));
    }
    msg.push_str(&rerun_advice(&outcome.failed));
    Err(CliError::JobsFailed(msg))
}

/// What to run after fixing the cause: the same command, plus `--ri` when a job was killed and
/// left partial files (the next plan refuses to guess whether they are finished).
fn rerun_advice(failed: &[crate::exec::Failure]) -> String {
    let killed = failed.iter().filter(|f| f.left_incomplete).count();
    if killed == 0 {
        "Fix the cause (see the logs) and run the same command again: finished jobs are kept."
            .to_string()
    } else {
        let were = if killed == 1 { "was" } else { "were" };
        format!(
            "Fix the cause (see the logs) and run the same command again with --ri \
             (--rerun-incomplete): {killed} of these jobs {were} killed and may have left \
             partial files. Finished jobs are kept."
        )
    }
}

/// Position of a job in `Plan::jobs()` order (targets, then runs).
fn job_index(plan: &Plan, job: crate::plan::JobRef) -> usize {
    match job {
        crate::plan::JobRef::Target(t) => t as usize,
        crate::plan::JobRef::Run(r) => plan.targets.len() + r as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_second_ctrl_c, switch};

    #[test]
    fn one_ctrl_c_delivered_twice_at_once_is_one() {
        let first = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        assert!(!is_second_ctrl_c(first, first));
        assert!(!is_second_ctrl_c(first, first + ms(5)));
        assert!(is_second_ctrl_c(first, first + ms(800)));
    }

    #[test]
    fn the_command_line_wins_over_the_profile_then_the_profile_over_the_default() {
        for profile in [None, Some(false), Some(true)] {
            assert!(switch(true, false, profile), "--flag wins over {profile:?}");
            assert!(
                !switch(false, true, profile),
                "--no-flag wins over {profile:?}"
            );
            assert_eq!(switch(false, false, profile), profile.unwrap_or(false));
        }
    }
}
