//! Content-hash IDs of targets and sampler runs.
//!
//! `target_id = "tgt_" + 12 hex` of xxh3-64 over the canonical JSON of the resolved
//! [`TargetConfig`]; `run_id = "run_" + sampler + "_" + 8 hex` of xxh3-64 over the canonical JSON
//! of the [`RunConfig`] (target id, resolved sampler config, posterior, precision; the sampler seed
//! is part of the sampler config). Canonical JSON: object keys sorted at every level, no
//! whitespace, numbers as the schema types them (integers as integers, floats as floats).
//! The same config gives the same ID on every machine and every version; `tests` pins known IDs.

use serde::Serialize;
use serde_json::Value;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::config::schema::{RunConfig, TargetConfig};

/// Canonical JSON of any serializable value.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    // Serializing a struct to `Value` cannot fail for our schema types (string keys only).
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = String::new();
    write_canonical(&v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            // Sort explicitly rather than relying on serde_json's map ordering feature flags.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `tgt_` + the first 12 hex digits of the hash of the target config.
pub fn target_id(cfg: &TargetConfig) -> String {
    format!(
        "tgt_{}",
        &hex16(xxh3_64(canonical_json(cfg).as_bytes()))[..12]
    )
}

/// `run_<sampler>_` + the first 8 hex digits of the hash of the run config.
pub fn run_id(cfg: &RunConfig) -> String {
    format_run_id(cfg.sampler.name(), run_hash(cfg))
}

/// The 32-bit hash behind a run ID (the first 8 hex digits of xxh3-64).
pub fn run_hash(cfg: &RunConfig) -> u32 {
    (xxh3_64(canonical_json(cfg).as_bytes()) >> 32) as u32
}

pub fn format_run_id(sampler: &str, hash: u32) -> String {
    format!("run_{sampler}_{hash:08x}")
}

fn hex16(h: u64) -> String {
    format!("{h:016x}")
}

/// Pieces of a run's canonical JSON that do not depend on the target, precomputed once per
/// (posterior, precision) and sampler so that planning a million runs hashes without
/// serializing anything. `hash` must equal [`run_hash`] of the same config (a test checks).
pub struct RunHasher {
    /// `{"posterior":<P>,"precision":"<f>","sampler":`
    prefix: String,
}

impl RunHasher {
    pub fn new(posterior_canonical: &str, precision: &str) -> Self {
        RunHasher {
            prefix: format!(
                "{{\"posterior\":{posterior_canonical},\"precision\":\"{precision}\",\"sampler\":"
            ),
        }
    }

    /// Hash of `{"posterior":..,"precision":..,"sampler":<sampler_canonical>,"target_id":"<tid>"}`.
    pub fn hash(&self, sampler_canonical: &str, target_id: &str) -> u32 {
        let mut h = Xxh3::new();
        h.update(self.prefix.as_bytes());
        h.update(sampler_canonical.as_bytes());
        h.update(b",\"target_id\":\"");
        h.update(target_id.as_bytes());
        h.update(b"\"}");
        (h.digest() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::*;
    use crate::numeric::Precision;

    fn small_model() -> ModelConfig {
        ModelConfig {
            in_dim: 4,
            out_dim: 1,
            depth: 2,
            widths: Some(vec![6, 6]),
            target_params: Some(80),
            activation: Activation::Relu,
            bias: true,
            skip_connections: false,
            init: Init::He,
        }
    }

    fn small_target() -> TargetConfig {
        TargetConfig {
            model: small_model(),
            data: serde_yaml::from_str("n_data: 5000").unwrap(),
            teacher: ResolvedTeacher {
                model: small_model(),
                weight_scale: 1.0,
            },
            training: serde_yaml::from_str("{}").unwrap(),
            seed: 42,
            precision: Precision::F64,
        }
    }

    fn hmc() -> SamplerConfig {
        SamplerConfig::Hmc(
            serde_yaml::from_str(
                "{warmup: 500, draws: 1000, num_integration_steps: 10, step_size: 0.01}",
            )
            .unwrap(),
        )
    }

    #[test]
    fn canonical_json_sorts_keys_and_keeps_number_types() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": 1.0, "c": [2, 1e-6]}}"#).unwrap();
        assert_eq!(canonical_json(&v), r#"{"a":{"c":[2,1e-6],"d":1.0},"b":1}"#);
    }

    /// Pinned IDs: if this test fails, every existing store's IDs would change. Only update the
    /// expected strings for a deliberate, announced schema change.
    #[test]
    fn ids_are_pinned() {
        let t = small_target();
        let tid = target_id(&t);
        assert_eq!(tid, "tgt_09333a1918b2");
        let run = RunConfig {
            target_id: tid,
            sampler: hmc(),
            posterior: PosteriorConfig::default(),
            precision: Precision::F64,
        };
        assert_eq!(run_id(&run), "run_hmc_41c0c28d");
    }

    /// The worker recomputes a job's ID from its spec.json: every float must read back from
    /// JSON as the bits it was written from. Without serde_json's `float_roundtrip`, 1e-30 read
    /// back as 9.999999999999999e-31, and a target with `grad_tol: 1.0e-30` failed every time
    /// ("spec.json says target_id ... but its config hashes to ...").
    #[test]
    fn ids_survive_the_spec_json_round_trip_for_any_float() {
        for tol in [
            "1.0e-30",
            "1e-20",
            "3.3e-17",
            "1.7976931348623157e308",
            "5e-324",
            "0.1",
        ] {
            let mut t = small_target();
            t.training = serde_yaml::from_str(&format!("grad_tol: {tol}")).unwrap();
            let back: TargetConfig =
                serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(target_id(&back), target_id(&t), "grad_tol {tol}");
        }
    }

    /// Keys added later (training's `finish` and `grad_tol`, SGLD's `auto`) leave the IDs of
    /// configs that do not use them as they were, and change them when set.
    #[test]
    fn later_keys_keep_old_ids_and_change_new_ones() {
        let t = small_target();
        let json = canonical_json(&t);
        assert!(
            !json.contains("finish") && !json.contains("grad_tol"),
            "{json}"
        );
        let mut none = t.clone();
        none.training.finish = Finish::None;
        let mut tol = t.clone();
        tol.training.grad_tol = Some(1e-8);
        let ids = [target_id(&t), target_id(&none), target_id(&tol)];
        assert!(ids[0] != ids[1] && ids[0] != ids[2] && ids[1] != ids[2]);

        let sgld = |step: &str| -> SgldConfig {
            serde_yaml::from_str(&format!(
                "{{step_size: {step}, warmup: 10, steps: 100, eval_every: 10}}"
            ))
            .unwrap()
        };
        let fixed = serde_json::to_value(sgld("1.0e-4")).unwrap();
        assert_eq!(fixed["step_size"], serde_json::json!(1e-4));
        let auto = sgld("auto");
        assert_eq!(auto.step_size, StepSize::Auto);
        assert_eq!(serde_json::to_value(&auto).unwrap()["step_size"], "auto");
        let err = serde_yaml::from_str::<SgldConfig>(
            "{step_size: fast, warmup: 10, steps: 100, eval_every: 10}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("positive number or `auto`"), "{err}");
    }

    #[test]
    fn ids_change_with_any_field_and_have_the_documented_shape() {
        let a = small_target();
        let mut b = a.clone();
        b.seed = 43;
        let (ia, ib) = (target_id(&a), target_id(&b));
        assert_ne!(ia, ib);
        assert!(
            ia.starts_with("tgt_")
                && ia.len() == 16
                && ia[4..].chars().all(|c| c.is_ascii_hexdigit())
        );
        let run = RunConfig {
            target_id: ia,
            sampler: hmc(),
            posterior: PosteriorConfig::default(),
            precision: Precision::F64,
        };
        let rid = run_id(&run);
        assert!(rid.starts_with("run_hmc_") && rid.len() == 16);
    }

    #[test]
    fn fast_run_hasher_equals_canonical_hash() {
        let run = RunConfig {
            target_id: target_id(&small_target()),
            sampler: hmc(),
            posterior: PosteriorConfig {
                beta_mode: BetaMode::Fixed,
                beta0: 0.5,
                gamma: 100.0,
            },
            precision: Precision::F32,
        };
        let fast = RunHasher::new(&canonical_json(&run.posterior), run.precision.as_str());
        assert_eq!(
            fast.hash(&canonical_json(&run.sampler), &run.target_id),
            run_hash(&run)
        );
    }
}
