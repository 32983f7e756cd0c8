//! `lambda-hat worker build-target SPEC`: generate the data, train the student to w*, and write
//! `data.npz` (X, Y), `params.npz` (W0, b0, W1, b1, …), `teacher.npz`,
//! `diagnostics/training_loss.png` and, last, `meta.json` (the completion marker) next to the spec.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use super::error::WorkerError;
use super::files::{read_json, write_json, write_npz};
use crate::numeric::{Precision, Real};
use crate::plan::ids::target_id;
use crate::spec::{TargetSpec, VERSION};
use crate::store::health::TargetHealthFields;
use crate::store::record::{
    LossCurve, ModelRecord, TargetDims, TargetMetrics, TargetRecord, as_record, finite,
};
use crate::train::build_target;

/// The arrays a target writes, whose hashes meta.json records under `files`.
pub use crate::plan::dag::TARGET_ARRAYS;

pub fn run(spec_path: &Path) -> Result<(), WorkerError> {
    let started = Instant::now();
    let spec: TargetSpec = read_json(spec_path)?;
    let actual = target_id(&spec.config);
    if actual != spec.target_id {
        return Err(WorkerError::IdMismatch {
            path: spec_path.to_path_buf(),
            what: "target_id",
            claimed: spec.target_id,
            actual,
        });
    }
    let dir = spec_path.parent().unwrap_or(Path::new("."));
    match spec.config.precision {
        Precision::F32 => build::<f32>(&spec, dir, started),
        Precision::F64 => build::<f64>(&spec, dir, started),
    }
}

fn build<F: Real>(spec: &TargetSpec, dir: &Path, started: Instant) -> Result<(), WorkerError> {
    let cfg = &spec.config;
    crate::terminal::note!(
        "build_target {}: n = {}, widths = {:?}, {} training steps ({})",
        spec.target_id,
        cfg.data.n_data,
        cfg.model.hidden_widths(),
        cfg.training.steps,
        F::NAME
    );
    let built = build_target::<F>(cfg)?;
    let conv = &built.convergence;
    crate::terminal::note!(
        "trained {} steps ({} {:?} + {} {}): L0 = {:.6e}, gradient norm {:.3e} ({}), p = {}",
        built.steps_run,
        conv.optimizer_steps,
        cfg.training.optimizer,
        conv.finish_steps,
        conv.finish,
        built.l0,
        conv.grad_norm,
        if conv.converged {
            "converged"
        } else {
            "NOT converged"
        },
        built.dims.p
    );
    let warnings: Vec<String> = conv.warning().into_iter().collect();
    for w in &warnings {
        crate::terminal::note!("warning: {w}");
    }

    write_npz(
        &dir.join("data.npz"),
        &[
            ("X".to_string(), built.x.clone().into_dyn()),
            ("Y".to_string(), built.y.clone().into_dyn()),
        ],
    )?;
    write_npz(&dir.join("params.npz"), &built.params)?;
    let teacher_named = built.teacher.layout().to_named(&built.teacher_params)?;
    write_npz(&dir.join("teacher.npz"), &teacher_named)?;

    let steps: Vec<f64> = built.loss_curve.iter().map(|(s, _)| *s as f64).collect();
    let losses: Vec<f64> = built.loss_curve.iter().map(|(_, l)| *l).collect();
    let plot = dir
        .join("diagnostics")
        .join(crate::report::plots::TRAINING_LOSS_PNG);
    std::fs::create_dir_all(dir.join("diagnostics")).map_err(|source| WorkerError::Write {
        path: dir.join("diagnostics"),
        source,
    })?;
    match crate::report::plots::plot_training_loss(&plot, &spec.target_id, &steps, &losses) {
        Ok(()) => {}
        Err(e @ crate::report::PlotError::NoData { .. }) => {
            crate::terminal::note!("warning: training-loss plot not written: {e}")
        }
        // As for a run's plots (run_sampler.rs): a file that cannot be written fails the job
        // before its meta.json, so the next run makes it.
        Err(e) => return Err(WorkerError::Plot(e)),
    }

    let mut model_cfg: ModelRecord = as_record("model_cfg", &cfg.model)?;
    // Readers expect `p` next to the architecture too.
    model_cfg
        .other
        .insert("n_params".into(), json!(built.dims.p));
    // Content hashes of the arrays, so a run can tell a file changed or swapped since the build
    // (crate::store::integrity).
    let mut files = std::collections::BTreeMap::new();
    for name in TARGET_ARRAYS {
        let path = dir.join(name);
        let hash = crate::store::integrity::content_hash(&path)
            .map_err(|source| WorkerError::Read { path, source })?;
        files.insert(name.to_string(), hash);
    }
    // `finish` and `grad_tol` are left out of the serialized config at their defaults (so that
    // older configs keep their IDs); meta.json holds every key, resolved: the finish by name and
    // the tolerance training used (a `null` grad_tol resolves to 0.1·ln(n)/n).
    let mut training_cfg: serde_json::Value = as_record("training_cfg", &cfg.training)?;
    if let Some(keys) = training_cfg.as_object_mut() {
        keys.entry("finish")
            .or_insert_with(|| json!(cfg.training.finish.as_str()));
        keys.insert("grad_tol".into(), json!(built.convergence.grad_tol));
    }
    let meta = TargetRecord {
        target_id: spec.target_id.clone(),
        files,
        seed: cfg.seed,
        model_cfg,
        data_cfg: as_record("data_cfg", &cfg.data)?,
        training_cfg,
        teacher_cfg: as_record("teacher_cfg", &cfg.teacher)?,
        dims: TargetDims {
            n: built.dims.n as u64,
            d: built.dims.d as u64,
            p: built.dims.p as u64,
        },
        metrics: TargetMetrics {
            l0: finite(built.l0),
            final_train_loss: finite(losses.last().copied().unwrap_or(built.l0)),
            steps_run: Some(built.steps_run as u64),
            stopped_early: Some(built.stopped_early),
            training_sec: Some(built.training_secs),
        },
        health: TargetHealthFields {
            convergence: Some(as_record("convergence", &built.convergence)?),
            warnings,
        },
        training_loss: LossCurve {
            step: steps,
            loss: losses,
        },
        precision: Some(cfg.precision.as_str().to_string()),
        walltime_sec: Some(started.elapsed().as_secs_f64()),
        created_at: Some(chrono::Utc::now().to_rfc3339()),
        version: Some(VERSION.to_string()),
    };
    // meta.json last: its presence means every file above is complete.
    write_json(&dir.join("meta.json"), &meta)
}
