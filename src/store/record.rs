//! The two completion markers as one type each: [`TargetRecord`] is `meta.json` (written by
//! `build_target`), [`RunRecord`] is `analysis.json` (written by `run_sampler`). The worker
//! serializes them and the reports deserialize the same types, so a field cannot be renamed on
//! one side only (ARCHITECTURE.md §3 lists the fields).
//!
//! Reading is forgiving, writing is not: every field has a default, so stores written before a
//! field existed still read, and unknown fields are ignored, so newer stores do too. Numbers a
//! run could not compute (R-hat of one chain) are `None`, written as JSON `null`, because JSON
//! has no NaN. Settings the reports only show (the training, teacher and sampler configs) stay
//! JSON values here: a report must read an old store even after a setting was renamed; the
//! typed settings of a job are in its spec.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::health::{RunHealthFields, TargetHealthFields};
use crate::analysis::Analysis;

/// `meta.json`: a built target. The ID, seed, architecture, data size and dims are required (a
/// meta.json without them is damaged); the rest may be missing in older stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetRecord {
    pub target_id: String,
    /// Content hash of each array file (crate::store::integrity), by file name.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub seed: u64,
    pub model_cfg: ModelRecord,
    pub data_cfg: DataRecord,
    #[serde(default)]
    pub training_cfg: serde_json::Value,
    #[serde(default)]
    pub teacher_cfg: serde_json::Value,
    pub dims: TargetDims,
    #[serde(default)]
    pub metrics: TargetMetrics,
    /// `convergence` and `warnings` (absent in older stores: convergence unknown).
    #[serde(flatten)]
    pub health: TargetHealthFields,
    #[serde(default)]
    pub training_loss: LossCurve,
    #[serde(default)]
    pub precision: Option<String>,
    #[serde(default)]
    pub walltime_sec: Option<f64>,
    /// RFC 3339.
    #[serde(default)]
    pub created_at: Option<String>,
    /// lambda-hat version that wrote it.
    #[serde(default)]
    pub version: Option<String>,
}

/// The resolved model settings: the architecture the reports show, and every other setting as
/// written (plus `n_params`, = `dims.p`, which readers expect next to the architecture).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub depth: u64,
    pub widths: Vec<u64>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The data settings: the size the reports show, and every other setting as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    pub n_data: u64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The sizes of a target (only `p` is required: older stores lack the others).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDims {
    /// Data points.
    #[serde(default)]
    pub n: u64,
    /// Input dimension.
    #[serde(default)]
    pub d: u64,
    /// Student parameters.
    pub p: u64,
}

/// How training went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetMetrics {
    /// L_n(w*).
    #[serde(rename = "L0")]
    pub l0: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub steps_run: Option<u64>,
    pub stopped_early: Option<bool>,
    /// Seconds in the optimizer and L-BFGS alone (no data generation, no file writing): what
    /// training-speed comparisons divide `steps_run` by. Absent in older stores.
    pub training_sec: Option<f64>,
}

/// The training loss curve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossCurve {
    /// Optimizer steps: written as JSON integers, so that pandas reads `100`, not `100.0`
    /// (older stores wrote floats, which read back the same).
    #[serde(serialize_with = "whole_numbers")]
    pub step: Vec<f64>,
    pub loss: Vec<f64>,
}

/// Writes whole numbers below 2^53 as JSON integers and anything else as a float.
fn whole_numbers<S: serde::Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(xs.len()))?;
    for &x in xs {
        match crate::analysis::whole_number(x) {
            Some(n) => seq.serialize_element(&n)?,
            None => seq.serialize_element(&x)?,
        }
    }
    seq.end()
}

/// `analysis.json`: a finished sampler run, its LLC estimate and its health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    pub target_id: String,
    pub run_id: String,
    /// The sampler's name (`hmc`, …).
    pub sampler: String,
    pub sampler_cfg: serde_json::Value,
    pub posterior_cfg: serde_json::Value,
    pub n_beta: Option<f64>,
    /// L_n(w*) as the posterior computed it.
    #[serde(rename = "L0")]
    pub l0: Option<f64>,
    pub precision: Option<String>,
    pub llc_mean: Option<f64>,
    pub llc_std: Option<f64>,
    pub llc_sem: Option<f64>,
    pub llc_chain_means: Vec<Option<f64>>,
    /// The ESS behind `llc_sem`: `ess_bulk`.
    pub ess: Option<f64>,
    pub ess_bulk: Option<f64>,
    pub ess_tail: Option<f64>,
    pub r_hat: Option<f64>,
    pub mcse_mean: Option<f64>,
    pub chains: u64,
    /// Recorded draws per chain.
    pub draws: u64,
    /// Gradient evaluations of all chains (full-data equivalents).
    pub grad_evals: Option<u64>,
    pub ess_per_grad_eval: Option<f64>,
    /// Mean acceptance (HMC, NUTS) or SGLD's MALA diagnostic; `None` for MCLMC.
    pub acceptance_rate: Option<f64>,
    pub divergences: u64,
    /// What adaptation chose (step size, L, …), one entry per chain; counts written as integers.
    #[serde(serialize_with = "crate::analysis::serialize_tuned")]
    pub tuned: BTreeMap<String, Vec<Option<f64>>>,
    /// `healthy` and `warnings` (older stores have no `healthy`: it is derived).
    #[serde(flatten)]
    pub health: RunHealthFields,
    pub walltime_sec: Option<f64>,
    /// Seconds in the sampler alone (warmup or tuning and sampling, all chains; no loading,
    /// trace or plots): what sampler-speed comparisons divide `grad_evals` by. Absent in older
    /// stores.
    pub sampling_sec: Option<f64>,
    /// RFC 3339; promote picks the newest run by it.
    pub created_at: Option<String>,
    pub version: Option<String>,
    /// The content hashes of the target's arrays this run sampled (`data.npz`, `params.npz`,
    /// as its meta.json's `files` recorded them). Empty in older stores.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target_files: BTreeMap<String, String>,
}

/// The target arrays a run samples, whose hashes it records (`RunRecord::target_files`).
pub const SAMPLED_FILES: [&str; 2] = ["data.npz", "params.npz"];

/// The journal detail key of the target array hashes a `--touch`ed run was accepted with.
pub const TOUCHED_TARGET_FILES: &str = "target_files";

/// Whether a run sampled another build of its target than the one now in the store: some array
/// both records hash differs. Snakemake reruns a job whose input is newer than its output;
/// here the content decides, so rebuilding a target into the same bits (builds are
/// deterministic) keeps its runs, and a target rebuilt differently (a new lambda-hat, or an
/// interrupted `-R build_target` that left runs of the old build) has them redone. A record
/// without hashes (older stores) is never called outdated.
pub fn sampled_another_build(
    run_target_files: &BTreeMap<String, String>,
    target_files: &BTreeMap<String, String>,
) -> bool {
    run_target_files
        .iter()
        .any(|(file, hash)| target_files.get(file).is_some_and(|now| now != hash))
}

impl RunRecord {
    /// The estimate and health fields of `analysis`, non-finite numbers as `None`; the caller
    /// fills in the IDs, settings and times.
    pub fn from_analysis(analysis: &Analysis) -> RunRecord {
        let all = |v: &[f64]| v.iter().map(|x| finite(*x)).collect::<Vec<_>>();
        RunRecord {
            llc_mean: finite(analysis.llc_mean),
            llc_std: finite(analysis.llc_std),
            llc_sem: finite(analysis.llc_sem),
            llc_chain_means: all(&analysis.llc_chain_means),
            ess: finite(analysis.ess),
            ess_bulk: finite(analysis.ess_bulk),
            ess_tail: finite(analysis.ess_tail),
            r_hat: finite(analysis.r_hat),
            mcse_mean: finite(analysis.mcse_mean),
            chains: analysis.chains as u64,
            draws: analysis.draws as u64,
            grad_evals: Some(analysis.grad_evals),
            ess_per_grad_eval: finite(analysis.ess_per_grad_eval),
            acceptance_rate: analysis.acceptance_rate.and_then(finite),
            divergences: analysis.divergences,
            tuned: analysis
                .tuned
                .iter()
                .map(|(k, v)| (k.clone(), all(v)))
                .collect(),
            health: RunHealthFields {
                healthy: Some(analysis.healthy),
                warnings: analysis.warnings.clone(),
            },
            ..RunRecord::default()
        }
    }
}

/// `value` (a typed setting or result) as the record field `R` it is written as: the same JSON,
/// read back into the record's looser type. Fails only if `value` cannot be JSON at all.
pub fn as_record<T: Serialize, R: serde::de::DeserializeOwned>(
    what: &'static str,
    value: &T,
) -> Result<R, RecordError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| RecordError {
            what,
            message: e.to_string(),
        })
}

/// A value that does not fit the record field it is written as.
#[derive(Debug, thiserror::Error)]
#[error("cannot record {what}: {message}")]
pub struct RecordError {
    pub what: &'static str,
    pub message: String,
}

/// `x` if it is a number JSON can hold, else `None` (written as `null`).
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loss_curve_steps_are_written_as_integers_and_read_back() {
        let curve = LossCurve {
            step: vec![0.0, 100.0, 4017.0],
            loss: vec![1.0, 0.5, 0.25],
        };
        let text = serde_json::to_string(&curve).unwrap();
        assert!(text.contains("\"step\":[0,100,4017]"), "{text}");
        assert!(text.contains("\"loss\":[1.0,0.5,0.25]"), "{text}");
        assert_eq!(serde_json::from_str::<LossCurve>(&text).unwrap(), curve);
        // Older stores wrote floats.
        let old: LossCurve =
            serde_json::from_str(r#"{"step":[0.0,100.0],"loss":[1.0,0.5]}"#).unwrap();
        assert_eq!(old.step, [0.0, 100.0]);
    }

    use super::*;

    #[test]
    fn a_record_reads_back_what_was_written_and_nan_becomes_null() {
        let run = RunRecord {
            run_id: "run_hmc_0123abcd".into(),
            llc_mean: finite(4.25),
            r_hat: finite(f64::NAN),
            llc_chain_means: vec![finite(4.0), finite(f64::INFINITY)],
            health: RunHealthFields {
                healthy: Some(false),
                warnings: vec!["R-hat is undefined".into()],
            },
            ..RunRecord::default()
        };
        let text = serde_json::to_string(&run).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(json["r_hat"].is_null());
        assert_eq!(json["llc_chain_means"], serde_json::json!([4.0, null]));
        assert_eq!(json["healthy"], false, "health fields sit at the top level");
        assert_eq!(serde_json::from_str::<RunRecord>(&text).unwrap(), run);
    }

    #[test]
    fn older_and_newer_files_still_read() {
        // An old analysis.json: no `healthy`, fewer fields; a newer one: an unknown field.
        let old: RunRecord =
            serde_json::from_str(r#"{"llc_mean": 3.5, "warnings": [], "unknown_new_field": 1}"#)
                .unwrap();
        assert_eq!(old.llc_mean, Some(3.5));
        assert!(old.health.is_healthy());
        let meta: TargetRecord = serde_json::from_str(
            r#"{"target_id": "tgt_0", "seed": 1, "model_cfg": {"depth": 2, "widths": [6, 6], "activation": "tanh", "n_params": 79},
                "data_cfg": {"n_data": 2000}, "dims": {"n": 2000, "d": 4, "p": 79}}"#,
        )
        .unwrap();
        assert_eq!(meta.model_cfg.widths, vec![6, 6]);
        assert_eq!(meta.model_cfg.other["activation"], "tanh");
        assert_eq!(meta.dims.p, 79);
        assert_eq!(meta.health.converged(), None);
        // Without the architecture it is damaged, not a target with depth 0.
        let damaged = serde_json::from_str::<TargetRecord>(r#"{"target_id": "tgt_0", "seed": 1}"#);
        assert!(damaged.is_err());
        // What is not a known field is kept in `other` and written back.
        let again: serde_json::Value = serde_json::to_value(&meta).unwrap();
        assert_eq!(again["model_cfg"]["n_params"], 79);
    }

    #[test]
    fn a_run_is_outdated_only_when_a_hash_both_records_name_differs() {
        let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(f, h)| (f.to_string(), h.to_string()))
                .collect()
        };
        let target = files(&[
            ("data.npz", "d1"),
            ("params.npz", "p1"),
            ("teacher.npz", "t1"),
        ]);
        let same = files(&[("data.npz", "d1"), ("params.npz", "p1")]);
        assert!(!sampled_another_build(&same, &target), "same bits: keep");
        let old_w = files(&[("data.npz", "d1"), ("params.npz", "p0")]);
        assert!(sampled_another_build(&old_w, &target), "another w*: redo");
        let old_data = files(&[("data.npz", "d0"), ("params.npz", "p1")]);
        assert!(sampled_another_build(&old_data, &target));
        // Older stores: a run or a target without hashes is never called outdated.
        assert!(!sampled_another_build(&BTreeMap::new(), &target));
        assert!(!sampled_another_build(&old_w, &BTreeMap::new()));
    }
}
