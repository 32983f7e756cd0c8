//! Grouping: which waiting jobs may go to SLURM now, and how they are packed into as few `sbatch`
//! calls as possible (arrays of run_sampler jobs sharing a parent; with `bundle-size`, bundles of
//! jobs in one SLURM job or array task, a target not built yet with its build first).
//!
//! Input: every job of the schedule as a [`Job`] (its rule, its parent's slot, where it stands,
//! its resources and expected duration), the [`Options`] and the `jobs` budget (SLURM jobs or
//! array tasks that may still be queued). Output: a [`Grouping`]: the `sbatch` calls to make, in
//! order, and the jobs to skip because their parent failed. Pure: the controller
//! (`controller/submit.rs`) calls [`group_ready`] once per submission pass and does what it says;
//! the dry run (`-n`) calls [`dry_run`] to show the submissions a run would make.

use super::bundle;
use crate::config::profile::BundleSize;
use crate::exec::resources::ResourceMap;
use crate::plan::Rule;
use std::collections::{BTreeSet, HashMap};

/// Where a job stands, as far as grouping is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not submitted yet: a candidate.
    Waiting,
    /// Its output is there: its children go with no dependency.
    Done,
    /// Failed for good, or skipped: its waiting children are skipped.
    Gone,
    /// Queued on its own (not in a bundle of several jobs), and the last poll (or our own sbatch
    /// a moment ago) saw it in the queue: its children may go with `afterok` on it. SLURM treats
    /// a dependency on a purged job as satisfied, and a bundle's exit status is not one
    /// member's own (any member's failure fails it), so no other queued job is depended on.
    Dependable,
    /// Anything else (queued in a bundle, not seen yet, waiting for its output): its children
    /// wait until it is done.
    Busy,
}

/// One job of the schedule, by slot (its index in the schedule).
#[derive(Debug, Clone)]
pub struct Job<'a> {
    pub rule: Rule,
    /// The slot of the build it depends on, when that build is in the schedule.
    pub parent: Option<usize>,
    pub state: State,
    pub resources: &'a ResourceMap,
    /// Expected seconds (`bundle::expected_secs`), for `bundle-size: auto`.
    pub expected_secs: f64,
}

/// The schedule's jobs by slot, as grouping sees them: a slice of [`Job`]s (the dry run), or the
/// controller's own state read in place (a schedule can hold a million jobs, and grouping runs
/// at every poll, so the controller does not copy them).
pub trait Jobs {
    /// How many slots there are.
    fn count(&self) -> usize;
    /// The job in `slot` (< [`Jobs::count`]).
    fn get(&self, slot: usize) -> Job<'_>;
}

impl Jobs for [Job<'_>] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, slot: usize) -> Job<'_> {
        self[slot].clone()
    }
}

/// The profile's and command line's settings grouping depends on.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub bundle_size: BundleSize,
    pub use_arrays: bool,
    pub max_array_size: usize,
}

/// One `sbatch` call: the slot it depends on (`afterok`) and its bundles, each one SLURM job or
/// array task (a bundle of one job is an ordinary job).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub dependency: Option<usize>,
    pub bundles: Vec<Vec<usize>>,
}

impl Group {
    /// Whether the call runs bundles (some SLURM job holds several jobs), not plain jobs.
    pub fn bundled(&self) -> bool {
        self.bundles.iter().any(|b| b.len() > 1)
    }
}

/// What to do in one submission pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grouping {
    /// The `sbatch` calls, in the order to make them.
    pub groups: Vec<Group>,
    /// Waiting jobs whose parent failed: skipped, not submitted.
    pub skip: Vec<usize>,
}

/// Groups the jobs that may go now within `budget` SLURM jobs (a bundle or an array task counts
/// once): a waiting job goes when its parent is done, or queued and dependable; jobs of one rule
/// with the same parent and resources share a call (an array for run_sampler jobs). With
/// bundles, a target not built yet goes in one bundle with its first waiting runs (with `auto`,
/// several small targets in one), and all such bundles with equal resources in one array.
pub fn group_ready<J: Jobs + ?Sized>(jobs: &J, opts: &Options, mut budget: usize) -> Grouping {
    let mut out = Grouping::default();
    let bundling = opts.bundle_size != BundleSize::default();
    // Without bundles nothing can go once the budget is spent (and the scan of a million-job
    // schedule stops here).
    if budget == 0 && !bundling {
        return out;
    }
    let mut index: HashMap<(Rule, Option<usize>, String), usize> = HashMap::new();
    let children = if bundling {
        waiting_children(jobs)
    } else {
        HashMap::new()
    };
    // Groups of build bundles by the build's resources; `in_build_bundle` holds the runs placed
    // in one, which the scan then passes over.
    let mut build_groups: HashMap<String, usize> = HashMap::new();
    let mut in_build_bundle: BTreeSet<usize> = BTreeSet::new();
    for i in 0..jobs.count() {
        if budget == 0 && !bundling {
            break;
        }
        let job = jobs.get(i);
        if job.state != State::Waiting || in_build_bundle.contains(&i) {
            continue;
        }
        let dep = match job.parent.map(|p| (p, jobs.get(p).state)) {
            None | Some((_, State::Done)) => None,
            Some((_, State::Gone)) => {
                out.skip.push(i);
                continue;
            }
            Some((p, State::Dependable)) => Some(p),
            Some((_, State::Waiting | State::Busy)) => continue,
        };
        if let Some(runs) = children.get(&i) {
            let bundle = build_bundle(jobs, opts, i, runs);
            if bundle.len() > 1 {
                let res_key = serde_json::to_string(job.resources).unwrap_or_default();
                let group = build_groups.get(&res_key).copied();
                // `auto` packs whole targets (a build and its runs) into one bundle until it is
                // expected to last a minute (or would ask for more than a day): a sweep of many
                // tiny targets then costs a few SLURM jobs, not one per target.
                if let Some(g) = group
                    && opts.bundle_size == BundleSize::Auto
                {
                    let open = out.groups[g]
                        .bundles
                        .last_mut()
                        .expect("a group has a bundle");
                    let secs = open.iter().map(|&m| jobs.get(m).expected_secs).sum();
                    let packed: Vec<&ResourceMap> = open
                        .iter()
                        .chain(&bundle)
                        .map(|&m| jobs.get(m).resources)
                        .collect();
                    if !bundle::is_full(BundleSize::Auto, open.len(), secs)
                        && bundle::within_auto_runtime(&packed)
                    {
                        in_build_bundle.extend(&bundle[1..]);
                        open.extend(bundle);
                        continue;
                    }
                }
                if budget == 0 {
                    break;
                }
                budget -= 1;
                in_build_bundle.extend(&bundle[1..]);
                match group {
                    Some(g)
                        if opts.use_arrays
                            && out.groups[g].bundles.len() < opts.max_array_size.max(1) =>
                    {
                        out.groups[g].bundles.push(bundle)
                    }
                    _ => {
                        build_groups.insert(res_key, out.groups.len());
                        out.groups.push(Group {
                            dependency: None,
                            bundles: vec![bundle],
                        });
                    }
                }
                continue;
            }
        }
        let arrays = opts.use_arrays && job.rule == Rule::RunSampler;
        let size = match job.rule {
            Rule::RunSampler => opts.bundle_size,
            Rule::BuildTarget => BundleSize::default(),
        };
        let res_key = serde_json::to_string(job.resources).unwrap_or_default();
        let group_key = (job.rule, job.parent, res_key);
        if let Some(&g) = index.get(&group_key) {
            // Joins the group's open bundle while it has room: no new SLURM job.
            let open = out.groups[g]
                .bundles
                .last_mut()
                .expect("a group has a bundle");
            let secs = open.iter().map(|&m| jobs.get(m).expected_secs).sum();
            if !bundle::is_full(size, open.len(), secs) && stays_within_a_day(jobs, opts, open, i) {
                open.push(i);
                continue;
            }
        }
        if budget == 0 {
            // The schedule lists a target's runs together (entry by entry), so the jobs after
            // this one would need new SLURM jobs too; stopping keeps the scan short.
            break;
        }
        budget -= 1;
        match index.get(&group_key) {
            Some(&g) if arrays && out.groups[g].bundles.len() < opts.max_array_size.max(1) => {
                out.groups[g].bundles.push(vec![i])
            }
            _ => {
                index.insert(group_key, out.groups.len());
                out.groups.push(Group {
                    dependency: dep,
                    bundles: vec![vec![i]],
                });
            }
        }
    }
    out
}

/// Waiting run_sampler jobs by the slot of their (waiting) build: the candidates to share a
/// bundle with it.
fn waiting_children<J: Jobs + ?Sized>(jobs: &J) -> HashMap<usize, Vec<usize>> {
    let mut out: HashMap<usize, Vec<usize>> = HashMap::new();
    for c in 0..jobs.count() {
        let job = jobs.get(c);
        if job.state != State::Waiting {
            continue;
        }
        if let Some(p) = job.parent
            && jobs.get(p).state == State::Waiting
        {
            out.entry(p).or_default().push(c);
        }
    }
    out
}

/// The bundle of build job `build` and those of its waiting `runs` (in order) whose resources
/// are [`bundle::compatible`] with the build's and that fit: up to `bundle-size` runs after the
/// build, or with `auto` until the bundle is expected to last a minute (the build's own
/// estimate included).
fn build_bundle<J: Jobs + ?Sized>(
    jobs: &J,
    opts: &Options,
    build: usize,
    runs: &[usize],
) -> Vec<usize> {
    let mut out = vec![build];
    let mut secs = jobs.get(build).expected_secs;
    for &c in runs {
        if bundle::is_full(opts.bundle_size, out.len() - 1, secs) {
            break;
        }
        if bundle::compatible(jobs.get(c).resources, jobs.get(build).resources)
            && stays_within_a_day(jobs, opts, &out, c)
        {
            out.push(c);
            secs += jobs.get(c).expected_secs;
        }
    }
    out
}

/// Whether `next` may join the bundle `members` as far as its runtime goes: with `auto`, only
/// while the bundle asks for at most a day ([`bundle::AUTO_MAX_RUNTIME_MIN`]). Jobs expected to
/// take seconds can each ask for hours, and a bundle of a build and its runs that asked for 25 h
/// would pend forever on a partition limited to 24 h, where the jobs on their own would run. A
/// fixed `bundle-size` is the user's choice and is kept.
fn stays_within_a_day<J: Jobs + ?Sized>(
    jobs: &J,
    opts: &Options,
    members: &[usize],
    next: usize,
) -> bool {
    if opts.bundle_size != BundleSize::Auto || members.is_empty() {
        return true;
    }
    let with_next: Vec<&ResourceMap> = members
        .iter()
        .chain([&next])
        .map(|&m| jobs.get(m).resources)
        .collect();
    bundle::within_auto_runtime(&with_next)
}

/// The `sbatch` calls a run would make if every job succeeded and `-j` left room for all of
/// them, in order: as the controller does, each pass submits what may go (children of a build
/// queued alone right after it, with `afterok`); when nothing more can go, everything submitted
/// finishes, and the next pass starts. Each [`Group::dependency`] is a slot.
///
/// Without a budget the passes are as many as the DAG is deep (builds, then the runs that did
/// not fit their build's bundle), each one scan of the jobs. With `-j`'s budget they would be
/// one per `-j` SLURM jobs, each a scan of the whole schedule: hours for a million jobs. And
/// what a real run sends under `-j` depends on how many jobs end per poll, which no dry run
/// knows; only its arrays are cut shorter, while bundles are made the same either way.
pub fn dry_run(mut jobs: Vec<Job>, opts: &Options) -> Vec<Group> {
    let mut calls = Vec::new();
    loop {
        let mut left = usize::MAX;
        loop {
            let pass = group_ready(jobs.as_slice(), opts, left);
            for &s in &pass.skip {
                jobs[s].state = State::Gone;
            }
            if pass.groups.is_empty() {
                break;
            }
            for group in &pass.groups {
                left = left.saturating_sub(group.bundles.len());
                for bundle in &group.bundles {
                    let state = if bundle.len() == 1 {
                        State::Dependable
                    } else {
                        State::Busy
                    };
                    for &m in bundle {
                        jobs[m].state = state;
                    }
                }
            }
            calls.extend(pass.groups);
        }
        let mut finished = false;
        for job in &mut jobs {
            if matches!(job.state, State::Dependable | State::Busy) {
                job.state = State::Done;
                finished = true;
            }
        }
        // Nothing was submitted in this pass: what still waits never can (a budget of 0).
        if !finished {
            return calls;
        }
    }
}

/// One line per `sbatch` call, jobs named by slot (the dry run's `jobid`): `sbatch 2: array of
/// 3 tasks: jobids 2 3 4 (afterok: sbatch 1)`; a bundle's jobs are listed in the order they run,
/// bundles of an array separated by `|`.
pub fn describe(calls: &[Group]) -> Vec<String> {
    let mut call_of: HashMap<usize, usize> = HashMap::new();
    let mut lines = Vec::with_capacity(calls.len());
    for (n, call) in calls.iter().enumerate() {
        let ids = call
            .bundles
            .iter()
            .map(|b| {
                b.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(if call.bundled() { " | " } else { " " });
        let what = match (call.bundles.len(), call.bundled()) {
            (1, false) => format!("jobid {ids}"),
            (1, true) => format!("one bundle: jobids {ids}"),
            (k, false) => format!("array of {k} tasks: jobids {ids}"),
            (k, true) => format!("array of {k} bundles: jobids {ids}"),
        };
        let dep = call
            .dependency
            .and_then(|d| call_of.get(&d))
            .map(|c| format!(" (afterok: sbatch {})", c + 1))
            .unwrap_or_default();
        lines.push(format!("sbatch {}: {what}{dep}", n + 1));
        for slot in call.bundles.iter().flatten() {
            call_of.insert(*slot, n);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::resources::ResourceValue;
    use std::num::NonZeroUsize;

    fn res(mem: i64) -> ResourceMap {
        [("mem_mb".to_string(), ResourceValue::Int(mem))]
            .into_iter()
            .collect()
    }

    /// `targets` builds (slots 0..targets) followed by `runs` runs of each, in schedule order
    /// (target by target), all waiting.
    fn sweep(targets: usize, runs: usize, r: &ResourceMap) -> Vec<Job<'_>> {
        let mut jobs: Vec<Job> = (0..targets)
            .map(|_| Job {
                rule: Rule::BuildTarget,
                parent: None,
                state: State::Waiting,
                resources: r,
                expected_secs: 5.0,
            })
            .collect();
        for t in 0..targets {
            for _ in 0..runs {
                jobs.push(Job {
                    rule: Rule::RunSampler,
                    parent: Some(t),
                    state: State::Waiting,
                    resources: r,
                    expected_secs: 5.0,
                });
            }
        }
        jobs
    }

    fn opts(size: BundleSize) -> Options {
        Options {
            bundle_size: size,
            use_arrays: true,
            max_array_size: 1000,
        }
    }

    fn fixed(k: usize) -> BundleSize {
        BundleSize::Fixed(NonZeroUsize::new(k).unwrap())
    }

    #[test]
    fn without_bundles_builds_go_alone_then_runs_as_arrays_with_afterok() {
        let r = res(500);
        let calls = dry_run(sweep(2, 3, &r), &opts(BundleSize::default()));
        let want = vec![
            Group {
                dependency: None,
                bundles: vec![vec![0]],
            },
            Group {
                dependency: None,
                bundles: vec![vec![1]],
            },
            Group {
                dependency: Some(0),
                bundles: vec![vec![2], vec![3], vec![4]],
            },
            Group {
                dependency: Some(1),
                bundles: vec![vec![5], vec![6], vec![7]],
            },
        ];
        assert_eq!(calls, want);
    }

    #[test]
    fn a_bundle_takes_the_build_and_its_first_runs_and_the_rest_follow() {
        let r = res(500);
        // bundle-size 2: each build with two runs (the size counts the runs after a build),
        // both bundles in one array; the third run of each target goes once its build is done
        // (a build in a bundle is not depended on), one sbatch per target.
        let calls = dry_run(sweep(2, 3, &r), &opts(fixed(2)));
        let want = vec![
            Group {
                dependency: None,
                bundles: vec![vec![0, 2, 3], vec![1, 5, 6]],
            },
            Group {
                dependency: None,
                bundles: vec![vec![4]],
            },
            Group {
                dependency: None,
                bundles: vec![vec![7]],
            },
        ];
        assert_eq!(calls, want);
        assert!(calls[0].bundled() && !calls[1].bundled());
    }

    #[test]
    fn describe_names_jobids_arrays_bundles_and_dependencies() {
        let r = res(500);
        let plain = describe(&dry_run(sweep(2, 3, &r), &opts(BundleSize::default())));
        assert_eq!(
            plain,
            vec![
                "sbatch 1: jobid 0",
                "sbatch 2: jobid 1",
                "sbatch 3: array of 3 tasks: jobids 2 3 4 (afterok: sbatch 1)",
                "sbatch 4: array of 3 tasks: jobids 5 6 7 (afterok: sbatch 2)",
            ]
        );
        let bundled = describe(&dry_run(sweep(1, 3, &r), &opts(fixed(3))));
        assert_eq!(bundled, vec!["sbatch 1: one bundle: jobids 0 1 2 3"]);
    }

    #[test]
    fn the_budget_counts_bundles_and_array_tasks() {
        let r = res(500);
        let jobs = sweep(3, 2, &r);
        let first = group_ready(jobs.as_slice(), &opts(fixed(4)), 2);
        assert_eq!(first.groups.len(), 1);
        assert_eq!(first.groups[0].bundles, vec![vec![0, 3, 4], vec![1, 5, 6]]);
        let none = group_ready(jobs.as_slice(), &opts(BundleSize::default()), 0);
        assert_eq!(none, Grouping::default());
        // Plain jobs: an array is cut at the budget.
        let mut built = sweep(1, 5, &r);
        built[0].state = State::Done;
        let pass = group_ready(built.as_slice(), &opts(BundleSize::default()), 3);
        assert_eq!(pass.groups.len(), 1);
        assert_eq!(pass.groups[0].bundles, vec![vec![1], vec![2], vec![3]]);
        // Every job goes in the end, each once.
        let calls = dry_run(jobs, &opts(fixed(4)));
        let mut all: Vec<usize> = calls
            .iter()
            .flat_map(|g| g.bundles.iter().flatten().copied())
            .collect();
        all.sort();
        assert_eq!(all, (0..9).collect::<Vec<_>>());
    }

    #[test]
    fn children_of_a_failed_build_are_skipped_and_of_a_busy_one_wait() {
        let r = res(500);
        let mut jobs = sweep(2, 2, &r);
        jobs[0].state = State::Gone;
        jobs[1].state = State::Busy;
        let pass = group_ready(jobs.as_slice(), &opts(BundleSize::default()), 10);
        assert_eq!(pass.skip, vec![2, 3]);
        assert!(pass.groups.is_empty());
        jobs[1].state = State::Dependable;
        let pass = group_ready(jobs.as_slice(), &opts(BundleSize::default()), 10);
        assert_eq!(pass.groups[0].dependency, Some(1));
        assert_eq!(pass.groups[0].bundles, vec![vec![4], vec![5]]);
    }

    #[test]
    fn runs_with_other_resources_than_their_build_wait_for_it() {
        // Memory and runtime combine in a bundle; any other resource must be equal.
        let small = res(500);
        let mut gpu = res(500);
        gpu.insert("gres".into(), ResourceValue::Text("gpu:1".into()));
        let mut jobs = sweep(1, 2, &small);
        jobs[2].resources = &gpu;
        let calls = dry_run(jobs, &opts(fixed(4)));
        assert_eq!(calls[0].bundles, vec![vec![0, 1]]);
        assert_eq!(calls[1].bundles, vec![vec![2]]);
    }
}
