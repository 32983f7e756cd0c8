//! Which jobs run: output globs, `--until`, `--forcerun`, `--forceall`, `--rerun-incomplete` and
//! the store's status.
//!
//! Input: a [`Plan`], an [`OutputStatus`] snapshot of the store and the user's [`Request`].
//! Output: a [`Schedule`] listing, in topological order, each job that must run and why.
//! A job runs when its output is missing, when it is forced, when it was left incomplete (only
//! with `--rerun-incomplete`; otherwise planning stops with a message naming it), when the job it
//! depends on runs, or when its output came from other inputs than those now in the store (a run
//! of an earlier build of its target). Positional globs select jobs by output path; what they need upstream is added.

use glob::{MatchOptions, Pattern};

use super::dag::{JobRef, Plan, PlanError, Rule};

/// What the store says about outputs (implemented over the file system in `store`).
pub trait OutputStatus {
    /// The job's completion marker exists.
    fn done(&self, plan: &Plan, job: JobRef) -> bool;
    /// An incomplete marker says the job started and never finished.
    fn incomplete(&self, plan: &Plan, job: JobRef) -> bool;
    /// The job's files exist but are not whole (an emptied or truncated marker or archive):
    /// not done, and redone with its own reason.
    fn corrupt(&self, _plan: &Plan, _job: JobRef) -> bool {
        false
    }
    /// The job is done, but from other inputs than those now in the store (a run that sampled
    /// another build of its target): redone, as Snakemake redoes a job whose input is newer.
    fn outdated(&self, plan: &Plan, job: JobRef) -> bool;
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Output-path globs; empty = every job.
    pub globs: Vec<String>,
    /// Rules whose jobs run even if done (and so does everything downstream of them).
    pub forcerun: Vec<Rule>,
    /// `--forceall`: every selected job runs, done or not.
    pub forceall: bool,
    /// `--until`: only jobs of these rules and of the rules upstream of them; empty = all.
    pub until: Vec<Rule>,
    pub rerun_incomplete: bool,
}

/// Why a job runs, in Snakemake's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MissingOutput,
    Forced,
    Incomplete,
    UpdatedInput,
    /// Done, but its target was rebuilt into other arrays since (see [`OutputStatus::outdated`]).
    ChangedInput,
    Corrupt,
}

impl Reason {
    pub fn describe(self, output: &str) -> String {
        match self {
            Reason::MissingOutput => format!("Missing output files: {output}"),
            Reason::Forced => "Forced execution".to_string(),
            Reason::Incomplete => {
                format!("Incomplete output files (left by a killed or interrupted run): {output}")
            }
            Reason::Corrupt => {
                format!(
                    "Corrupt output files (emptied, cut short, or not the file its job wrote; \
                     redone): {output}"
                )
            }
            Reason::UpdatedInput => {
                "Input files updated by another job (its target is rebuilt)".to_string()
            }
            Reason::ChangedInput => format!(
                "Updated input files (its target was rebuilt into other arrays after it ran): \
                 {output}"
            ),
        }
    }
}

/// The jobs to run, targets before runs.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub jobs: Vec<(JobRef, Reason)>,
    /// Which jobs the request covers (run or not), by position in [`Plan::jobs`]: the
    /// selection of globs and `--until`, computed once here for `--dag` and `--summary` too.
    pub selected: Vec<bool>,
}

impl Schedule {
    pub fn count(&self, rule: Rule) -> usize {
        self.jobs.iter().filter(|(j, _)| j.rule() == rule).count()
    }
}

/// Output path of a job as the user writes it in a glob: `runs/targets/tgt_x/meta.json`.
pub fn output_string(plan: &Plan, job: JobRef) -> String {
    plan.output(job).to_string_lossy().into_owned()
}

/// A path or glob as the user may write it, in the plan's spelling: `./` and empty components
/// dropped (`runs//targets`), and `name/..` taken out where `name` is a plain folder name, as the
/// file system would resolve it.
fn normalize(glob: &str) -> String {
    let absolute = glob.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in glob.split('/') {
        match part {
            "" | "." => {}
            ".." if parts
                .last()
                .is_some_and(|p| *p != ".." && !p.contains(['*', '?', '[', '{'])) =>
            {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Which jobs the globs select (with their upstream), indexed in `Plan::jobs()` order;
/// `None` = all.
pub fn wanted_jobs(plan: &Plan, globs: &[String]) -> Result<Option<Vec<bool>>, PlanError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let options = MatchOptions {
        require_literal_separator: true,
        ..MatchOptions::new()
    };
    let cwd = std::env::current_dir().ok();
    let mut patterns = Vec::new();
    for g in globs {
        let pattern = Pattern::new(&normalize(g)).map_err(|e| PlanError::BadGlob {
            glob: g.clone(),
            message: e.to_string(),
        })?;
        patterns.push((g, pattern, std::path::Path::new(g).is_absolute()));
    }
    let mut wanted = vec![false; plan.n_jobs()];
    let mut matched = vec![false; patterns.len()];
    for (i, job) in plan.jobs().enumerate() {
        // Any file the job writes names it (the marker, or e.g. a run's trace.npz).
        let outputs: Vec<String> = plan
            .outputs(job)
            .iter()
            .map(|p| normalize(&p.to_string_lossy()))
            .collect();
        for (k, (_, pattern, absolute)) in patterns.iter().enumerate() {
            let hit = outputs.iter().any(|rel| {
                if *absolute {
                    cwd.as_ref().is_some_and(|c| {
                        pattern.matches_with(&normalize(&c.join(rel).to_string_lossy()), options)
                    })
                } else {
                    pattern.matches_with(rel, options)
                }
            });
            if hit {
                matched[k] = true;
                wanted[i] = true;
            }
        }
    }
    if let Some(k) = matched.iter().position(|m| !m) {
        let example_run = if plan.runs.is_empty() {
            "(no sampler runs)".into()
        } else {
            output_string(plan, JobRef::Run(0))
        };
        return Err(PlanError::GlobNoMatch {
            glob: patterns[k].0.clone(),
            example_target: output_string(plan, JobRef::Target(0)),
            example_run,
        });
    }
    // Upstream: a selected run needs its target.
    let n_targets = plan.targets.len();
    for r in 0..plan.runs.len() {
        if wanted[n_targets + r] {
            wanted[plan.run_target(r as u32) as usize] = true;
        }
    }
    Ok(Some(wanted))
}

/// Which jobs the request covers, in `Plan::jobs()` order: those the globs select (with their
/// upstream), minus those `--until` leaves out.
fn selected_jobs(plan: &Plan, request: &Request) -> Result<Vec<bool>, PlanError> {
    let wanted = wanted_jobs(plan, &request.globs)?;
    Ok(plan
        .jobs()
        .enumerate()
        .map(|(i, job)| {
            wanted.as_ref().is_none_or(|w| w[i]) && until_keeps(&request.until, job.rule())
        })
        .collect())
}

/// `--until RULES` keeps a rule that is one of them or upstream of one of them.
fn until_keeps(until: &[Rule], rule: Rule) -> bool {
    until.is_empty()
        || until
            .iter()
            .any(|u| *u == rule || u.upstream().contains(&rule))
}

/// Decides which jobs run for `request`.
pub fn schedule(
    plan: &Plan,
    status: &dyn OutputStatus,
    request: &Request,
) -> Result<Schedule, PlanError> {
    let selected = selected_jobs(plan, request)?;
    let forced = |rule: Rule| request.forceall || request.forcerun.contains(&rule);

    let mut target_runs = vec![false; plan.targets.len()];
    let mut out = Schedule::default();
    let mut incomplete = Vec::new();
    for (i, job) in plan.jobs().enumerate() {
        if !selected[i] {
            continue;
        }
        let parent_runs = plan
            .parent(job)
            .is_some_and(|p| matches!(p, JobRef::Target(t) if target_runs[t as usize]));
        let reason = if status.incomplete(plan, job) {
            if !request.rerun_incomplete {
                incomplete.push(output_string(plan, job));
            }
            Some(Reason::Incomplete)
        } else if forced(job.rule()) {
            Some(Reason::Forced)
        } else if status.corrupt(plan, job) {
            Some(Reason::Corrupt)
        } else if !status.done(plan, job) {
            Some(Reason::MissingOutput)
        } else if parent_runs {
            Some(Reason::UpdatedInput)
        } else if status.outdated(plan, job) {
            Some(Reason::ChangedInput)
        } else {
            None
        };
        if let Some(reason) = reason {
            if let JobRef::Target(t) = job {
                target_runs[t as usize] = true;
            }
            out.jobs.push((job, reason));
        }
    }
    if !incomplete.is_empty() {
        return Err(PlanError::Incomplete(incomplete));
    }
    out.selected = selected;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_as_the_file_system_resolves_them() {
        assert_eq!(
            normalize("./runs//targets/x/meta.json"),
            "runs/targets/x/meta.json"
        );
        assert_eq!(normalize("runs/targets/../targets/x"), "runs/targets/x");
        assert_eq!(normalize("/abs/./a/../b"), "/abs/b");
        // `..` after a glob or at the start stays: it is not a folder name to take out.
        assert_eq!(normalize("runs/*/../x"), "runs/*/../x");
        assert_eq!(normalize("../runs/x"), "../runs/x");
    }

    #[test]
    fn until_keeps_the_named_rules_and_their_upstream() {
        use Rule::*;
        assert!(until_keeps(&[], RunSampler) && until_keeps(&[], BuildTarget));
        assert!(until_keeps(&[BuildTarget], BuildTarget));
        assert!(!until_keeps(&[BuildTarget], RunSampler));
        assert!(until_keeps(&[RunSampler], BuildTarget) && until_keeps(&[RunSampler], RunSampler));
    }
}
