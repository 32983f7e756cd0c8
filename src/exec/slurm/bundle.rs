//! Bundles: several jobs of one target run inside one SLURM job (or array task), one after
//! another, so a sweep of jobs that take seconds does not pay SLURM's per-job cost (queue,
//! scheduling cycle, job start, accounting) for each of them (ARCHITECTURE.md §6, glossary).
//! A bundle holds run_sampler jobs of one target and, when the target is not built yet, its
//! build_target job first (runs of targets already built wait for no build and share bundles
//! across targets; `auto` packs several whole targets too): as Snakemake's job groups span rules, a target that is built and
//! sampled in one bundle costs one SLURM job instead of two, and its runs do not wait a
//! scheduling cycle for the build's `afterok`.
//!
//! Input: the `bundle-size` setting, each job's expected duration ([`expected_secs`],
//! [`expected_build_secs`]) and the members' resources. Output: which jobs share a bundle
//! ([`is_full`], [`plan`]) and the resources the bundle's SLURM job asks for ([`resources`]).
//! Pure functions: the controller (`controller/submit.rs`) calls them while it groups the jobs
//! that may go now.
//!
//! The members run one after another (not side by side): the allocation's CPUs all go to the
//! running member's threads, and a bundle's runtime is simply the sum of its members'.
//!
//! Why the build joins its runs: on the local 2-CPU cluster every SLURM job or array task holds
//! its CPU for about a second whatever it runs (10 jobs of `sleep 0.3` take 5.0 s, as an array
//! or as single jobs), so a sweep of tiny jobs costs about half a second per SLURM job. Bundling
//! only the runs left 10 build jobs and 10 bundles (40 → 20); with the builds inside, 10.

use crate::config::experiments::param_count;
use crate::config::profile::BundleSize;
use crate::config::schema::{SamplerConfig, TargetConfig};
use crate::exec::resources::{ResourceMap, ResourceValue};

/// `auto` closes a bundle once its members are expected to take this long together: a minute
/// dwarfs SLURM's per-job cost (seconds) without making a retry or a lost node cost much.
pub const AUTO_TARGET_SECS: f64 = 60.0;

/// `auto` packs another target into a bundle only while the bundle's `runtime` (the sum of its
/// members', in minutes) stays within a day, the time limit of most clusters' general
/// partitions: members' runtimes are generous limits, so tiny jobs can add up to more than
/// sbatch accepts long before they add up to a minute of expected work.
pub const AUTO_MAX_RUNTIME_MIN: i64 = 24 * 60;

/// Whether the bundle of `members` asks for a runtime `auto` still packs
/// ([`AUTO_MAX_RUNTIME_MIN`]); a bundle without a runtime always does.
pub fn within_auto_runtime(members: &[&ResourceMap]) -> bool {
    match resources(members).get("runtime") {
        Some(ResourceValue::Int(minutes)) => *minutes <= AUTO_MAX_RUNTIME_MIN,
        _ => true,
    }
}

/// Whether a bundle with `members` jobs expected to take `expected_secs` together is full.
pub fn is_full(size: BundleSize, members: usize, expected_secs: f64) -> bool {
    match size {
        BundleSize::Fixed(k) => members >= k.get(),
        // A NaN estimate (it cannot come from `expected_secs`) closes the bundle at once.
        BundleSize::Auto => expected_secs >= AUTO_TARGET_SECS || expected_secs.is_nan(),
    }
}

/// Splits jobs (in order, each with its expected duration in seconds) into bundles: each takes
/// the next jobs until it [`is_full`]. A job never waits for a later one, so the bundles are runs
/// of consecutive jobs; with `auto` a bundle is bounded by the jobs there are.
pub fn plan(expected_secs: &[f64], size: BundleSize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open_secs = 0.0;
    for (i, &secs) in expected_secs.iter().enumerate() {
        match out.last_mut() {
            Some(last) if !is_full(size, last.len(), open_secs) => last.push(i),
            _ => {
                out.push(vec![i]);
                open_secs = 0.0;
            }
        }
        open_secs += secs;
    }
    out
}

/// The bundle's resources: its members run one after another, so its `runtime` is the sum of
/// theirs and its memory (`mem_mb`, `mem_mb_per_cpu`) the largest of theirs; every other
/// resource is the first member's (the controller only bundles [`compatible`] jobs). One
/// member: its resources unchanged, so the sbatch flags are those of an unbundled job.
pub fn resources(members: &[&ResourceMap]) -> ResourceMap {
    let Some((first, rest)) = members.split_first() else {
        return ResourceMap::new();
    };
    let mut out = (*first).clone();
    for m in rest {
        for (name, value) in m.iter() {
            let ResourceValue::Int(v) = value else {
                continue;
            };
            let combined = match (name.as_str(), out.get(name)) {
                ("runtime", Some(ResourceValue::Int(acc))) => acc.saturating_add(*v),
                ("mem_mb" | "mem_mb_per_cpu", Some(ResourceValue::Int(acc))) => (*acc).max(*v),
                _ => continue,
            };
            out.insert(name.clone(), ResourceValue::Int(combined));
        }
    }
    out
}

/// The resources a bundle combines instead of requiring them equal: its runtime is the sum of its
/// members', its memory the largest.
const COMBINED: [&str; 3] = ["runtime", "mem_mb", "mem_mb_per_cpu"];

/// Whether jobs with resources `a` and `b` may share a bundle: equal in everything but what a
/// bundle combines ([`COMBINED`]), so a build (an hour by default) and its runs (two) can.
pub fn compatible(a: &ResourceMap, b: &ResourceMap) -> bool {
    let rest = |m: &ResourceMap| {
        m.iter()
            .filter(|(name, _)| !COMBINED.contains(&name.as_str()))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    rest(a) == rest(b)
}

/// What every task of an array of bundles asks for: the largest runtime and memory of the
/// bundles' own resources (from [`resources`]), everything else the first's.
pub fn widest(bundles: &[ResourceMap]) -> ResourceMap {
    let Some((first, rest)) = bundles.split_first() else {
        return ResourceMap::new();
    };
    let mut out = first.clone();
    for m in rest {
        for name in COMBINED {
            if let (Some(ResourceValue::Int(v)), Some(ResourceValue::Int(acc))) =
                (m.get(name), out.get(name))
            {
                let wider = (*acc).max(*v);
                out.insert(name.to_string(), ResourceValue::Int(wider));
            }
        }
    }
    out
}

/// Seconds a job costs besides its gradients: starting the process, reading the target,
/// writing trace.npz and drawing the diagnostic plots. Measured: the run_sampler jobs of the
/// SLURM tests' tiny sweep (200 rows, p = 79, a few thousand gradients) take 0.3–0.6 s each.
const FIXED_SECS: f64 = 0.5;

/// Seconds per row × parameter of one full-batch gradient (forward and backward pass, about
/// 6 flops per row and parameter at roughly 1 GFLOP/s on one core of a cluster node). An
/// order of magnitude is all `auto` needs: it decides between bundling a few jobs or none.
const SECS_PER_ROW_PARAM: f64 = 6e-9;

/// The expected wall time of a run_sampler job in seconds, from its gradient budget: full-batch
/// gradient equivalents of every chain × rows × parameters, plus [`FIXED_SECS`]. A rough
/// estimate that only `bundle-size: auto` uses; it never limits a job (`runtime` does).
pub fn expected_secs(target: &TargetConfig, sampler: &SamplerConfig) -> f64 {
    let m = &target.model;
    let p = param_count(m.in_dim, m.out_dim, m.hidden_widths(), m.bias) as f64;
    let n = target.data.n_data as f64;
    // Each sampler says what its budget costs (`Sampler::gradients_per_chain`).
    let per_chain = sampler.gradients_per_chain(n);
    FIXED_SECS + sampler.chains() as f64 * per_chain * n * p * SECS_PER_ROW_PARAM
}

/// The expected wall time of a build_target job in seconds: every training step counted as a
/// full-batch gradient (an upper bound: minibatch steps cost less), plus [`FIXED_SECS`]. Like
/// [`expected_secs`], only for `bundle-size: auto`.
pub fn expected_build_secs(target: &TargetConfig) -> f64 {
    let m = &target.model;
    let p = param_count(m.in_dim, m.out_dim, m.hidden_widths(), m.bias) as f64;
    let n = target.data.n_data as f64;
    FIXED_SECS + target.training.steps as f64 * n * p * SECS_PER_ROW_PARAM
}

/// The expected wall time of `job` of `plan` in seconds: [`expected_secs`] or
/// [`expected_build_secs`].
pub fn expected_job_secs(plan: &crate::plan::Plan, job: crate::plan::JobRef) -> f64 {
    match job {
        crate::plan::JobRef::Run(r) => expected_secs(
            &plan.targets[plan.run_target(r) as usize].config,
            plan.run_sampler(r),
        ),
        crate::plan::JobRef::Target(t) => expected_build_secs(&plan.targets[t as usize].config),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    fn k(n: usize) -> BundleSize {
        BundleSize::Fixed(NonZeroUsize::new(n).unwrap())
    }

    #[test]
    fn fixed_size_bundles_take_k_consecutive_jobs() {
        let secs = [1.0; 7];
        assert_eq!(
            plan(&secs, k(3)),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
        );
        assert_eq!(plan(&secs[..3], k(3)), vec![vec![0, 1, 2]]);
        assert_eq!(plan(&secs[..2], k(5)), vec![vec![0, 1]]);
        assert_eq!(plan(&[], k(3)), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn size_one_is_one_job_per_bundle() {
        assert_eq!(
            plan(&[500.0, 0.1, 3.0], BundleSize::default()),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn auto_fills_a_bundle_until_it_lasts_a_minute() {
        // 25 s each: 25, 50, 75 → the third job closes the bundle at 75 s ≥ 60 s.
        assert_eq!(
            plan(&[25.0; 7], BundleSize::Auto),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
        );
        // Jobs of a minute or more go alone.
        assert_eq!(
            plan(&[60.0, 90.0, 10.0], BundleSize::Auto),
            vec![vec![0], vec![1], vec![2]]
        );
        // Tiny jobs: all of the target's jobs, however few, in one bundle.
        assert_eq!(plan(&[0.5; 3], BundleSize::Auto), vec![vec![0, 1, 2]]);
        // Mixed: 10 + 55 reaches a minute; the next bundle starts afresh.
        assert_eq!(
            plan(&[10.0, 55.0, 59.0, 0.5, 30.0], BundleSize::Auto),
            vec![vec![0, 1], vec![2, 3, 4]]
        );
        assert!(is_full(BundleSize::Auto, 1, f64::NAN));
        assert!(!is_full(BundleSize::Auto, 40, AUTO_TARGET_SECS - 1.0));
        assert!(is_full(k(2), 2, 0.0) && !is_full(k(2), 1, 1e9));
    }

    fn res(pairs: &[(&str, i64)]) -> ResourceMap {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), ResourceValue::Int(*v)))
            .collect()
    }

    #[test]
    fn a_bundle_asks_for_the_sum_of_runtimes_and_the_largest_memory() {
        let mut a = res(&[("runtime", 10), ("mem_mb", 500), ("cpus_per_task", 2)]);
        a.insert(
            "slurm_partition".into(),
            ResourceValue::Text("debug".into()),
        );
        let b = res(&[("runtime", 20), ("mem_mb", 800), ("cpus_per_task", 2)]);
        let c = res(&[("runtime", 5), ("mem_mb", 300), ("cpus_per_task", 2)]);
        let out = resources(&[&a, &b, &c]);
        assert_eq!(out["runtime"], ResourceValue::Int(35));
        assert_eq!(out["mem_mb"], ResourceValue::Int(800));
        assert_eq!(out["cpus_per_task"], ResourceValue::Int(2));
        assert_eq!(out["slurm_partition"], ResourceValue::Text("debug".into()));
        assert_eq!(resources(&[&a]), a, "one member: unchanged");
        assert!(resources(&[]).is_empty());
    }

    #[test]
    fn a_build_and_its_runs_are_compatible_when_only_time_and_memory_differ() {
        let build = res(&[("runtime", 60), ("mem_mb", 1000), ("cpus_per_task", 1)]);
        let run = res(&[("runtime", 120), ("mem_mb", 500), ("cpus_per_task", 1)]);
        assert!(compatible(&build, &run) && compatible(&run, &build));
        let wide = res(&[("runtime", 120), ("mem_mb", 500), ("cpus_per_task", 4)]);
        assert!(!compatible(&build, &wide), "CPUs must agree");
        let mut gpu = run.clone();
        gpu.insert("slurm_partition".into(), ResourceValue::Text("gpu".into()));
        assert!(!compatible(&run, &gpu), "so must the partition");
    }

    #[test]
    fn auto_packs_only_while_the_runtime_stays_within_a_day() {
        let job = res(&[("runtime", 120), ("mem_mb", 500)]);
        let twelve = vec![&job; 12];
        assert!(within_auto_runtime(&twelve), "12 × 2 h = 24 h");
        let thirteen = vec![&job; 13];
        assert!(!within_auto_runtime(&thirteen));
        let untimed = res(&[("mem_mb", 500)]);
        assert!(within_auto_runtime(&vec![&untimed; 100]));
    }

    #[test]
    fn an_array_of_bundles_asks_for_the_longest_and_largest() {
        let a = res(&[("runtime", 180), ("mem_mb", 1000), ("cpus_per_task", 2)]);
        let b = res(&[("runtime", 300), ("mem_mb", 800), ("cpus_per_task", 2)]);
        let out = widest(&[a.clone(), b]);
        assert_eq!(out["runtime"], ResourceValue::Int(300));
        assert_eq!(out["mem_mb"], ResourceValue::Int(1000));
        assert_eq!(out["cpus_per_task"], ResourceValue::Int(2));
        assert_eq!(widest(std::slice::from_ref(&a)), a);
        assert!(widest(&[]).is_empty());
    }

    #[test]
    fn expected_duration_grows_with_the_gradient_budget() {
        use crate::config::parse_sweep;
        use crate::config::presets::PresetDirs;
        let yaml = "store_root: r\ntargets:\n  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 200 } } }\n  - { model: small, data: small, seed: 1 }\nsamplers:\n  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 } }\n  - { name: hmc }\n  - { name: sgld }\n  - { name: mclmc }\n  - { name: nuts }\n";
        let path = std::path::Path::new("/nonexistent/experiments.yaml");
        let sweep = parse_sweep(path, yaml, &PresetDirs::for_experiments_file(path)).unwrap();
        let (tiny_t, big_t) = (&sweep.targets[0].config, &sweep.targets[1].config);
        let tiny = expected_secs(tiny_t, &sweep.samplers[0]);
        // The tiny budget of the SLURM tests is bundled whole by `auto`...
        assert!(tiny < AUTO_TARGET_SECS / 3.0, "{tiny}");
        assert!(tiny >= FIXED_SECS);
        // ...and more rows or a larger budget cost more.
        assert!(expected_secs(big_t, &sweep.samplers[0]) > tiny);
        assert!(expected_secs(tiny_t, &sweep.samplers[1]) > tiny);
        for s in &sweep.samplers {
            let secs = expected_secs(big_t, s);
            assert!(
                secs.is_finite() && secs > FIXED_SECS,
                "{}: {secs}",
                s.name()
            );
        }
        // A build: the preset's training on 200 rows is bundled whole by `auto`, on 2,000
        // rows it costs more, and both are finite.
        let (tiny_build, big_build) = (expected_build_secs(tiny_t), expected_build_secs(big_t));
        assert!((FIXED_SECS..AUTO_TARGET_SECS / 3.0).contains(&tiny_build));
        assert!(
            big_build.is_finite() && big_build > tiny_build,
            "{big_build}"
        );
    }
}
