//! `lambda-hat worker run-sampler SPEC`: load the target (w*, data), sample the localized
//! posterior, and write `trace.npz`, `diagnostics/*.png` and, last, `analysis.json` (the
//! completion marker) next to the spec.
//!
//! The plots (`report::plots`): trace, rank and convergence for every sampler, energy and
//! warmup adaptation for HMC and NUTS. The convergence plot's time axis is the wall time of
//! the sampling call measured here, spread linearly over the draws (no per-draw times are
//! recorded).
//!
//! The target's meta.json is read for its `convergence`: sampling around a w* that is not a
//! minimum gives a number but not an LLC, so such a run carries a warning and `healthy: false`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::error::WorkerError;
use super::files::{
    read_json, read_npz_all, read_npz_matrix, rows_to_matrix, write_json, write_trace_npz,
};
use crate::analysis::{HealthChecks, analyze};
use crate::config::schema::SamplerConfig;
use crate::nn::{Mlp, MlpLoss};
use crate::numeric::{Precision, Real};
use crate::plan::ids::run_id;
use crate::posterior::Posterior;
use crate::report::plots;
use crate::samplers::{self, SamplerRun};
use crate::spec::{RunSpec, TargetSpec, VERSION};
use crate::store::health::TargetHealthFields;
use crate::store::record::{RunRecord, as_record, finite};

pub fn run(spec_path: &Path) -> Result<(), WorkerError> {
    let started = Instant::now();
    let spec: RunSpec = read_json(spec_path)?;
    let actual = run_id(&spec.config);
    if actual != spec.run_id {
        return Err(WorkerError::IdMismatch {
            path: spec_path.to_path_buf(),
            what: "run_id",
            claimed: spec.run_id,
            actual,
        });
    }
    let run_dir = spec_path.parent().unwrap_or(Path::new("."));
    let target_dir = run_dir.parent().unwrap_or(Path::new(".."));
    let meta = target_dir.join("meta.json");
    if !meta.is_file() {
        return Err(WorkerError::TargetMissing {
            target: spec.target_id.clone(),
            missing: meta,
        });
    }
    let target_files = check_target_files(target_dir, &meta)?;
    let target: TargetSpec = read_json(&target_dir.join("spec.json"))?;
    let sampled = Sampled {
        spec: &spec,
        target: &target,
        target_files,
        run_dir,
        target_dir,
        started,
    };
    match spec.config.precision {
        Precision::F32 => sample::<f32>(sampled),
        Precision::F64 => sample::<f64>(sampled),
    }
}

/// What a run samples, and where its files go.
struct Sampled<'a> {
    spec: &'a RunSpec,
    target: &'a TargetSpec,
    /// The hashes of the arrays sampled (analysis.json's `target_files`).
    target_files: BTreeMap<String, String>,
    run_dir: &'a Path,
    target_dir: &'a Path,
    started: Instant,
}

/// Compares the target's arrays with the hashes its meta.json recorded (targets built before
/// hashes were recorded have none and are not checked) and returns the hashes checked, which
/// the run records: a later build of the target with other arrays makes the run outdated
/// (`store::record::sampled_another_build`). On a mismatch the target's meta.json is removed,
/// so the next run of the sweep rebuilds the target.
fn check_target_files(
    target_dir: &Path,
    meta: &Path,
) -> Result<BTreeMap<String, String>, WorkerError> {
    let record: serde_json::Value = read_json(meta)?;
    let mut checked = BTreeMap::new();
    let Some(files) = record.get("files").and_then(|f| f.as_object()) else {
        return Ok(checked);
    };
    for name in crate::store::record::SAMPLED_FILES {
        let Some(expected) = files.get(name).and_then(|h| h.as_str()) else {
            continue;
        };
        let path = target_dir.join(name);
        let actual =
            crate::store::integrity::content_hash(&path).map_err(|source| WorkerError::Read {
                path: path.clone(),
                source,
            })?;
        if actual != expected {
            // The target, not this run, is broken: un-finish it so the next plan rebuilds it
            // (and, its input being new, redoes its runs) instead of failing them again.
            let _ = std::fs::remove_file(meta);
            return Err(WorkerError::TargetDamaged {
                path,
                meta: meta.to_path_buf(),
            });
        }
        checked.insert(name.to_string(), actual);
    }
    Ok(checked)
}

fn sample<F: Real>(sampled: Sampled<'_>) -> Result<(), WorkerError> {
    let Sampled {
        spec,
        target,
        target_files,
        run_dir,
        target_dir,
        started,
    } = sampled;
    let data = target_dir.join("data.npz");
    let x = read_npz_matrix::<F>(&data, "X")?;
    let y = read_npz_matrix::<F>(&data, "Y")?;
    let mlp = Mlp::new(&target.config.model)?;
    let w_star = mlp
        .layout()
        .from_named(&read_npz_all::<F>(&target_dir.join("params.npz"))?)?;
    let loss = MlpLoss::new(mlp, x, y)?;
    let post = Posterior::new(&loss, w_star, &spec.config.posterior);
    let sampler = &spec.config.sampler;
    crate::terminal::note!(
        "run_sampler {}: {} on {} (p = {}, n = {}, nβ = {:.4}, L0 = {:.6e}, {})",
        spec.run_id,
        sampler.name(),
        spec.target_id,
        post.dim(),
        crate::posterior::LossModel::<F>::n_data(&loss),
        post.n_beta.f64(),
        post.l0.f64(),
        F::NAME
    );

    // The sampling call alone (not loading or writing): the time axis of the convergence plot.
    let sampling_started = Instant::now();
    let mut run = samplers::run(sampler, &post, &spec.run_id)?;
    let sampling_secs = sampling_started.elapsed().as_secs_f64();
    run.warnings
        .extend(target_health(target_dir).run_warning(&spec.target_id));
    let analysis = analyze(&run, &HealthChecks::default());
    for w in &analysis.warnings {
        crate::terminal::note!("warning: {w}");
    }
    write_trace(&run_dir.join("trace.npz"), &run)?;
    write_plots(spec, sampler, &run, &analysis, sampling_secs, run_dir)?;

    let record = RunRecord {
        target_id: spec.target_id.clone(),
        run_id: spec.run_id.clone(),
        sampler: sampler.name().to_string(),
        sampler_cfg: as_record("sampler_cfg", sampler)?,
        posterior_cfg: as_record("posterior_cfg", &spec.config.posterior)?,
        n_beta: finite(post.n_beta.f64()),
        l0: finite(post.l0.f64()),
        precision: Some(spec.config.precision.as_str().to_string()),
        walltime_sec: Some(started.elapsed().as_secs_f64()),
        sampling_sec: Some(sampling_secs),
        created_at: Some(chrono::Utc::now().to_rfc3339()),
        version: Some(VERSION.to_string()),
        target_files,
        ..RunRecord::from_analysis(&analysis)
    };
    crate::terminal::note!(
        "llc = {:.4} ± {:.4} (ESS {:.0}, R-hat {:.4}) in {:.1} s",
        analysis.llc_mean,
        analysis.llc_sem,
        analysis.ess,
        analysis.r_hat,
        started.elapsed().as_secs_f64()
    );
    // analysis.json last: its presence means the trace and plots are complete.
    write_json(&run_dir.join("analysis.json"), &record)
}

/// The health fields of the target's meta.json. Unreadable ones count as unknown convergence:
/// the target was built, and a health field must not cost the run (reports flag the file).
fn target_health(target_dir: &Path) -> TargetHealthFields {
    read_json(&target_dir.join("meta.json")).unwrap_or_else(|e| {
        crate::terminal::note!("warning: the target's convergence is unknown: {e}");
        TargetHealthFields::default()
    })
}

/// `llc` and `loss` as chains × draws, every per-step statistic as chains × steps (float64,
/// flags as bool).
fn write_trace(path: &Path, run: &SamplerRun) -> Result<(), WorkerError> {
    let column = |f: &dyn Fn(&samplers::ChainTrace) -> Vec<f64>| {
        rows_to_matrix(&run.chains.iter().map(f).collect::<Vec<_>>())
    };
    let mut floats = vec![
        ("llc".to_string(), column(&|c| c.llc.clone())),
        ("loss".to_string(), column(&|c| c.loss.clone())),
    ];
    let mut flags = Vec::new();
    let mut names: Vec<&String> = run.chains.iter().flat_map(|c| c.stats.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let values = column(&|c| c.stats.get(name).cloned().unwrap_or_default());
        // Flags are stored as numpy booleans, which ArviZ expects for `diverging`
        // (`az.from_dict(sample_stats=…)`, its divergence counts and plots).
        if samplers::stat::FLAGS.contains(&name.as_str()) {
            // Padding (NaN) and 0 are false; any other value is a flagged step.
            flags.push((name.clone(), values.mapv(|v| v != 0.0 && !v.is_nan())));
        } else {
            floats.push((name.clone(), values));
        }
    }
    write_trace_npz(path, &floats, &flags)
}

/// The per-run plots (report::plots) into `run_dir/diagnostics/`: trace, rank and convergence
/// for every sampler; energy and warmup adaptation for HMC and NUTS, which record them.
fn write_plots(
    spec: &RunSpec,
    sampler: &SamplerConfig,
    run: &SamplerRun,
    analysis: &crate::analysis::Analysis,
    sampling_secs: f64,
    run_dir: &Path,
) -> Result<(), WorkerError> {
    let dir = run_dir.join("diagnostics");
    std::fs::create_dir_all(&dir).map_err(|source| WorkerError::Write {
        path: dir.clone(),
        source,
    })?;
    let llc: Vec<Vec<f64>> = run.chains.iter().map(|c| c.llc.clone()).collect();
    let label = format!("{} on {}", spec.run_id, spec.target_id);
    let draws = (analysis.chains * analysis.draws).max(1) as f64;
    // Cost per recorded draw, warmup and tuning amortized: the x axis of the convergence plot.
    let per_draw = analysis.grad_evals as f64 / draws;
    let stat = |k: &str| {
        run.chains
            .iter()
            .map(|c| c.stats.get(k).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let mut results = vec![
        plots::plot_trace(
            &dir.join(plots::TRACE_PNG),
            &label,
            &llc,
            analysis.r_hat,
            analysis.ess,
        ),
        plots::plot_rank(&dir.join(plots::RANK_PNG), &label, &llc),
        plots::plot_llc_convergence(
            &dir.join(plots::CONVERGENCE_PNG),
            &label,
            &llc,
            per_draw,
            Some(sampling_secs),
        ),
    ];
    let energy = stat(samplers::stat::ENERGY);
    if energy.iter().any(|c| !c.is_empty()) {
        results.push(plots::plot_energy(
            &dir.join(plots::ENERGY_PNG),
            &label,
            &energy,
        ));
    }
    if let Some(target) = sampler.target_acceptance() {
        results.push(plots::plot_adaptation(
            &dir.join(plots::ADAPTATION_PNG),
            &label,
            &stat(samplers::stat::WARMUP_ACCEPTANCE),
            &stat(samplers::stat::WARMUP_STEP_SIZE),
            Some(target),
        ));
    }
    for r in results {
        match r {
            Ok(()) => {}
            // Nothing to draw (e.g. no finite draw): a warning, the numbers say why.
            Err(e @ crate::report::PlotError::NoData { .. }) => {
                crate::terminal::note!("warning: plot not written: {e}")
            }
            // The file could not be written: the job fails before its analysis.json, whose
            // presence means the trace and plots are complete, and the next run redoes it
            // (until 2026-12-06 a full disk left a run done without its plot for good).
            Err(e) => return Err(WorkerError::Plot(e)),
        }
    }
    Ok(())
}
