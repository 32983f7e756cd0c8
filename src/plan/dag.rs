//! The job DAG of a sweep: one `build_target` per distinct target, one `run_sampler` per distinct
//! (target, sampler run); each `run_sampler` depends on its target's `build_target`.
//!
//! Input: a resolved [`Sweep`]. Output: a [`Plan`] that stores each job compactly (a million runs
//! cost a few bytes each) and renders IDs and paths on demand. Duplicate entries collapse into one
//! job; two different configs that hash to the same ID are a [`PlanError::Collision`].

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::path::{Path, PathBuf};

use crate::config::schema::{PosteriorConfig, RunConfig, SamplerConfig, TargetConfig};
use crate::config::{ResolvedTarget, Sweep};
use crate::numeric::Precision;

use super::ids::{RunHasher, canonical_json, format_run_id, target_id};

/// The two rules of the workflow, named as Snakemake users know them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    BuildTarget,
    RunSampler,
}

impl Rule {
    pub const ALL: [Rule; 2] = [Rule::BuildTarget, Rule::RunSampler];

    pub fn name(self) -> &'static str {
        match self {
            Rule::BuildTarget => "build_target",
            Rule::RunSampler => "run_sampler",
        }
    }

    /// What a job of this rule makes (for `--list`).
    pub fn description(self) -> &'static str {
        match self {
            Rule::BuildTarget => {
                "Generate the data, train the network to its minimum w*: data.npz, params.npz, teacher.npz, meta.json"
            }
            Rule::RunSampler => {
                "Sample the localized posterior around w*: trace.npz, diagnostics/*.png, analysis.json"
            }
        }
    }

    /// The rules whose outputs a job of this rule reads.
    pub fn upstream(self) -> &'static [Rule] {
        match self {
            Rule::BuildTarget => &[],
            Rule::RunSampler => &[Rule::BuildTarget],
        }
    }

    /// The worker subcommand that runs a job of this rule.
    pub fn worker_subcommand(self) -> &'static str {
        match self {
            Rule::BuildTarget => "build-target",
            Rule::RunSampler => "run-sampler",
        }
    }

    pub fn parse(s: &str) -> Result<Rule, PlanError> {
        Rule::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| PlanError::UnknownRule(s.to_string()))
    }
}

/// A job of the plan: a target to build or a sampler run (indices into [`Plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobRef {
    Target(u32),
    Run(u32),
}

impl JobRef {
    pub fn rule(self) -> Rule {
        match self {
            JobRef::Target(_) => Rule::BuildTarget,
            JobRef::Run(_) => Rule::RunSampler,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlannedTarget {
    pub id: String,
    pub config: TargetConfig,
    /// The first experiments-file entry that produced it, for messages.
    pub label: String,
}

/// One target entry of the experiments file: which target it resolved to and its posterior.
#[derive(Debug, Clone)]
pub struct PlannedEntry {
    pub target: u32,
    pub posterior: PosteriorConfig,
}

/// One sampler run, stored compactly: its ID is `run_<sampler name>_<hash as 8 hex>`.
#[derive(Debug, Clone, Copy)]
pub struct PlannedRun {
    pub entry: u32,
    pub sampler: u32,
    pub hash: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "ID collision: {first} and {second} are different configs but both hash to {id}.\n  Change a seed in one of them; please also report this (it should practically never happen)."
    )]
    Collision {
        id: String,
        first: String,
        second: String,
    },
    #[error("unknown rule `{rule}`; the rules are build_target, run_sampler{hint}", rule = .0, hint = path_hint(.0))]
    UnknownRule(String),
    #[error("invalid target glob `{glob}`: {message}")]
    BadGlob { glob: String, message: String },
    #[error(
        "`{glob}` matches no output of this sweep.\n  Outputs look like {example_target} and {example_run}; check the store_root and the IDs (`lambda-hat --summary` lists every output).{}{}", yaml_hint(.glob), subcommand_hint(.glob)
    )]
    GlobNoMatch {
        glob: String,
        example_target: String,
        example_run: String,
    },
    #[error("{}", incomplete_message(.0))]
    Incomplete(Vec<String>),
}

fn incomplete_message(outputs: &[String]) -> String {
    let mut s = String::from(
        "these jobs were left incomplete by an earlier run that was killed or interrupted:\n",
    );
    for o in outputs.iter().take(20) {
        s.push_str(&format!("    {o}\n"));
    }
    if outputs.len() > 20 {
        s.push_str(&format!("    ... and {} more\n", outputs.len() - 20));
    }
    s.push_str("  Run again with --rerun-incomplete (--ri) to redo them.");
    s
}

/// The whole DAG of one sweep.
#[derive(Debug, Clone)]
pub struct Plan {
    pub store_root: PathBuf,
    pub precision: Precision,
    pub targets: Vec<PlannedTarget>,
    pub entries: Vec<PlannedEntry>,
    pub samplers: Vec<SamplerConfig>,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// Builds the DAG of `sweep`, collapsing duplicates and refusing ID collisions.
    pub fn build(sweep: &Sweep) -> Result<Plan, PlanError> {
        let mut targets: Vec<PlannedTarget> = Vec::new();
        let mut by_id: HashMap<String, u32> = HashMap::new();
        let mut entries = Vec::with_capacity(sweep.targets.len());
        for ResolvedTarget {
            config,
            posterior,
            label,
        } in &sweep.targets
        {
            let id = target_id(config);
            let index = match by_id.entry(id.clone()) {
                MapEntry::Occupied(o) => {
                    let existing = &targets[*o.get() as usize];
                    if existing.config != *config {
                        return Err(PlanError::Collision {
                            id,
                            first: existing.label.clone(),
                            second: label.clone(),
                        });
                    }
                    *o.get()
                }
                MapEntry::Vacant(v) => {
                    targets.push(PlannedTarget {
                        id,
                        config: config.clone(),
                        label: label.clone(),
                    });
                    *v.insert(targets.len() as u32 - 1)
                }
            };
            entries.push(PlannedEntry {
                target: index,
                posterior: posterior.clone(),
            });
        }

        let sampler_json: Vec<String> = sweep.samplers.iter().map(canonical_json).collect();
        let mut runs = Vec::with_capacity(entries.len() * sweep.samplers.len());
        // (target, sampler name, hash) → the first run with that ID.
        let mut seen: HashMap<(u32, &'static str, u32), PlannedRun> =
            HashMap::with_capacity(runs.capacity());
        for (e, entry) in entries.iter().enumerate() {
            let hasher =
                RunHasher::new(&canonical_json(&entry.posterior), sweep.precision.as_str());
            let tid = &targets[entry.target as usize].id;
            for (s, sampler) in sweep.samplers.iter().enumerate() {
                let run = PlannedRun {
                    entry: e as u32,
                    sampler: s as u32,
                    hash: hasher.hash(&sampler_json[s], tid),
                };
                match seen.entry((entry.target, sampler.name(), run.hash)) {
                    MapEntry::Vacant(v) => {
                        v.insert(run);
                        runs.push(run);
                    }
                    MapEntry::Occupied(o) => {
                        let first = *o.get();
                        let same = entries[first.entry as usize].posterior == entry.posterior
                            && sweep.samplers[first.sampler as usize] == *sampler;
                        if !same {
                            return Err(PlanError::Collision {
                                id: format_run_id(sampler.name(), run.hash),
                                first: format!(
                                    "samplers[{}] on {}",
                                    first.sampler, sweep.targets[first.entry as usize].label
                                ),
                                second: format!("samplers[{s}] on {}", sweep.targets[e].label),
                            });
                        }
                    }
                }
            }
        }

        Ok(Plan {
            store_root: sweep.store_root.clone(),
            precision: sweep.precision,
            targets,
            entries,
            samplers: sweep.samplers.clone(),
            runs,
        })
    }

    pub fn n_jobs(&self) -> usize {
        self.targets.len() + self.runs.len()
    }

    /// Every job: targets first, then runs (a topological order).
    pub fn jobs(&self) -> impl Iterator<Item = JobRef> + '_ {
        (0..self.targets.len() as u32)
            .map(JobRef::Target)
            .chain((0..self.runs.len() as u32).map(JobRef::Run))
    }

    pub fn run_target(&self, r: u32) -> u32 {
        self.entries[self.runs[r as usize].entry as usize].target
    }

    pub fn run_sampler(&self, r: u32) -> &SamplerConfig {
        &self.samplers[self.runs[r as usize].sampler as usize]
    }

    pub fn run_id(&self, r: u32) -> String {
        format_run_id(self.run_sampler(r).name(), self.runs[r as usize].hash)
    }

    pub fn run_config(&self, r: u32) -> RunConfig {
        let run = self.runs[r as usize];
        let entry = &self.entries[run.entry as usize];
        RunConfig {
            target_id: self.targets[entry.target as usize].id.clone(),
            sampler: self.samplers[run.sampler as usize].clone(),
            posterior: entry.posterior.clone(),
            precision: self.precision,
        }
    }

    /// The job a job depends on (a run's target), if any.
    pub fn parent(&self, job: JobRef) -> Option<JobRef> {
        match job {
            JobRef::Target(_) => None,
            JobRef::Run(r) => Some(JobRef::Target(self.run_target(r))),
        }
    }

    pub fn target_dir(&self, t: u32) -> PathBuf {
        target_dir(&self.store_root, &self.targets[t as usize].id)
    }

    /// The directory a job writes into.
    pub fn job_dir(&self, job: JobRef) -> PathBuf {
        match job {
            JobRef::Target(t) => self.target_dir(t),
            JobRef::Run(r) => self.target_dir(self.run_target(r)).join(self.run_id(r)),
        }
    }

    /// The file whose presence means the job is done (written last by the worker).
    pub fn output(&self, job: JobRef) -> PathBuf {
        self.job_dir(job).join(marker_name(job.rule()))
    }

    /// Every file `job` writes: its completion marker first, then the others (README "What a
    /// sweep writes"). A user may name any of them as a target, as Snakemake allows.
    pub fn outputs(&self, job: JobRef) -> Vec<PathBuf> {
        let dir = self.job_dir(job);
        let others: &[&str] = match job.rule() {
            Rule::BuildTarget => &TARGET_ARRAYS,
            Rule::RunSampler => &[RUN_TRACE],
        };
        std::iter::once(self.output(job))
            .chain(others.iter().map(|name| dir.join(name)))
            .collect()
    }

    pub fn spec_path(&self, job: JobRef) -> PathBuf {
        self.job_dir(job).join("spec.json")
    }

    /// The command that runs `job` (shown by `-p` and `--detailed-summary`; the executors build
    /// the same argv): `WORKER worker build-target|run-sampler SPEC`.
    /// `worker` is the worker program's words already quoted ([`shell_words`]); the line is one a
    /// POSIX shell runs as is (README: run a job by hand), whatever the store's path holds.
    pub fn worker_command_line(&self, job: JobRef, worker: &str) -> String {
        format!(
            "{worker} worker {} {}",
            job.rule().worker_subcommand(),
            shell_word(&self.spec_path(job).to_string_lossy())
        )
    }

    /// Stable, path-safe name of a job: `tgt_x` or `tgt_x.run_hmc_y` (log and marker file names).
    pub fn job_key(&self, job: JobRef) -> String {
        match job {
            JobRef::Target(t) => self.targets[t as usize].id.clone(),
            JobRef::Run(r) => format!(
                "{}.{}",
                self.targets[self.run_target(r) as usize].id,
                self.run_id(r)
            ),
        }
    }

    /// The per-job log file: `<store>/logs/<rule>/<key>.log`.
    pub fn log_path(&self, job: JobRef) -> PathBuf {
        self.store_root
            .join("logs")
            .join(job.rule().name())
            .join(format!("{}.log", self.job_key(job)))
    }
}

pub fn target_dir(store_root: &Path, target_id: &str) -> PathBuf {
    store_root.join("targets").join(target_id)
}

/// The completion marker a rule writes last.
pub fn marker_name(rule: Rule) -> &'static str {
    match rule {
        Rule::BuildTarget => "meta.json",
        Rule::RunSampler => "analysis.json",
    }
}

/// For a "rule" that looks like a path: flags that take several values (`-R`, `--until`, as in
/// Snakemake) also take the output globs after them.
fn path_hint(word: &str) -> &'static str {
    if word.contains(['/', '*']) {
        "\n  hint: `-R`/`--forcerun` and `--until` take every word after them; put output paths \
         first (`lambda-hat \"runs/targets/*/meta.json\" -R run_sampler`) or end the rules with `--`"
    } else {
        ""
    }
}

/// For a "target" that is a YAML file: `--configfile` takes one file, and the next word is a
/// target (as in Snakemake).
/// The subcommands of `lambda-hat` (cli::args checks this list against clap's).
pub const SUBCOMMANDS: &[&str] = &[
    "worker", "results", "report", "promote", "clean", "status", "cancel", "validate",
];

/// A bare word a slip away from a subcommand (`statsu`, `resutls`) is read as an output glob;
/// name the subcommand meant. Words with `/` or `*` are globs on purpose.
pub(crate) fn subcommand_hint(word: &str) -> String {
    if word.contains(['/', '*']) {
        return String::new();
    }
    SUBCOMMANDS
        .iter()
        .map(|s| (crate::invalid::edit_distance(word, s), s))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, s)| format!("\n  hint: did you mean `{s}`? (`lambda-hat {s}`)"))
        .unwrap_or_default()
}

fn yaml_hint(word: &str) -> &'static str {
    if word.ends_with(".yaml") || word.ends_with(".yml") {
        "\n  hint: `--configfile` takes one experiments file; the words after it are output paths"
    } else {
        ""
    }
}

/// The arrays a build_target job writes next to its meta.json.
pub const TARGET_ARRAYS: [&str; 3] = ["data.npz", "params.npz", "teacher.npz"];
/// The draws a run_sampler job writes next to its analysis.json.
pub const RUN_TRACE: &str = "trace.npz";

/// `s` as one word a POSIX shell reads back unchanged: bare when every character is one no
/// shell treats specially (as Python's `shlex.quote` decides), else in single quotes.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Words joined into a command line a shell splits back into the same words.
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod shell_word_tests {
    use super::*;

    /// What `sh` makes of a printed line is the words it was made from.
    #[test]
    fn printed_words_split_back_into_themselves() {
        let words: Vec<String> = [
            "/opt/lambda hat/bin",
            "my runs/targets/t/spec.json",
            "it's",
            "",
            "a$(b)`c`",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        let line = shell_words(&words);
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s\\n' {line}")])
            .output()
            .unwrap();
        let back: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(back, words);
        assert_eq!(
            shell_word("runs/targets/tgt_1/spec.json"),
            "runs/targets/tgt_1/spec.json"
        );
    }
}
