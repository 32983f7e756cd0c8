//! The configuration columns of `results`: what each run's target and sampler were, so runs that
//! differ only in a setting (an HMC trajectory length, an SGLD step size, an activation) can be
//! told apart, grouped and plotted.
//!
//! In: a target's `meta.json` and a run's `spec.json`, as JSON. Out: `(column, value)` pairs, in
//! a fixed order. Pure.
//!
//! Names: the model's and data's own keys (`activation`, `bias`, `x_dist`, `noise_scale`, …),
//! `precision`, the teacher's as `teacher_<key>`, the training's as `training_<key>`, the
//! sampler's own keys (`step_size`, `num_integration_steps`, `chains`, …; its `seed` is
//! `sampler_seed`, since `seed` is the target's) and the posterior's (`gamma`, `beta0`,
//! `beta_mode`). Keys that are already fixed columns (`depth`, `widths`, `n_data`,
//! `target_params`) are left out. `teacher_target_params` is the teacher's exact parameter count,
//! as `target_params` is the student's: the configured budget is copied from the student's preset
//! even when widths decide the shape, so `meta.json`'s own value can be a number nothing used.

use serde_json::Value;

/// Keys covered by fixed columns or not configuration (`n_params` is derived).
const SKIP: [&str; 5] = ["depth", "widths", "n_data", "target_params", "n_params"];

fn push_object(out: &mut Vec<(String, Value)>, prefix: &str, object: Option<&Value>) {
    let Some(Value::Object(map)) = object else {
        return;
    };
    for (key, value) in map {
        if prefix.is_empty() && SKIP.contains(&key.as_str()) {
            continue;
        }
        out.push((format!("{prefix}{key}"), value.clone()));
    }
}

/// The target's columns from its `meta.json`.
pub fn target_columns(meta: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    push_object(&mut out, "", meta.get("model_cfg"));
    push_object(&mut out, "", meta.get("data_cfg"));
    if let Some(p) = meta.get("precision") {
        out.push(("precision".into(), p.clone()));
    }
    let teacher = meta.get("teacher_cfg");
    let teacher_model = teacher.and_then(|t| t.get("model"));
    push_object(&mut out, "teacher_", teacher_model);
    out.retain(|(name, _)| name != "teacher_target_params");
    if let Some(p) = teacher_model.and_then(exact_param_count) {
        out.push(("teacher_target_params".into(), p.into()));
    }
    if let Some(scale) = teacher.and_then(|t| t.get("weight_scale")) {
        out.push(("teacher_weight_scale".into(), scale.clone()));
    }
    push_object(&mut out, "training_", meta.get("training_cfg"));
    out
}

/// The parameter count of a resolved model configuration (its `in_dim`, `out_dim`, `widths`
/// and `bias`); None when one is missing.
fn exact_param_count(model: &Value) -> Option<u64> {
    let dim = |key: &str| {
        model
            .get(key)?
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
    };
    let widths: Vec<usize> = model
        .get("widths")?
        .as_array()?
        .iter()
        .map(|w| w.as_u64().and_then(|w| usize::try_from(w).ok()))
        .collect::<Option<_>>()?;
    let bias = model.get("bias")?.as_bool()?;
    let p = crate::config::experiments::param_count(dim("in_dim")?, dim("out_dim")?, &widths, bias);
    u64::try_from(p).ok()
}

/// The run's columns from its `spec.json` (`config.sampler`, `config.posterior`).
pub fn run_columns(spec: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let config = spec.get("config");
    if let Some(Value::Object(sampler)) = config.and_then(|c| c.get("sampler")) {
        for (key, value) in sampler {
            match key.as_str() {
                "name" => {}
                "seed" => out.push(("sampler_seed".into(), value.clone())),
                _ => out.push((key.clone(), value.clone())),
            }
        }
    }
    push_object(&mut out, "", config.and_then(|c| c.get("posterior")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_columns_name_every_setting_once_and_skip_the_fixed_columns() {
        let meta = serde_json::json!({
            "model_cfg": {"activation": "tanh", "bias": true, "depth": 2, "widths": [4, 4],
                          "target_params": 40, "n_params": 41},
            "data_cfg": {"n_data": 100, "x_dist": "gauss_iso", "noise_scale": 0.1},
            "precision": "f32",
            "teacher_cfg": {"model": {"activation": "relu", "widths": [8]}, "weight_scale": 2.0},
            "training_cfg": {"steps": 500, "optimizer": "adam"},
        });
        let cols = target_columns(&meta);
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "activation",
                "bias",
                "noise_scale",
                "x_dist",
                "precision",
                "teacher_activation",
                "teacher_widths",
                "teacher_weight_scale",
                "training_optimizer",
                "training_steps",
            ]
        );
        assert_eq!(cols[4].1, "f32");
        assert_eq!(cols[6].1, serde_json::json!([8]));
    }

    #[test]
    fn the_teachers_parameter_count_is_its_exact_one_not_the_copied_budget() {
        // A teacher that inherits the student's explicit widths also inherits the preset's
        // `target_params: 80`, which nothing used: 3 → [4, 4] → 3 without biases is 12 + 16 + 12.
        let teacher = |widths: serde_json::Value, bias: bool| {
            serde_json::json!({"teacher_cfg": {"model": {
                "in_dim": 3, "out_dim": 3, "bias": bias, "widths": widths, "target_params": 80}}})
        };
        let count = |meta: &Value| {
            target_columns(meta)
                .into_iter()
                .filter(|(n, _)| n == "teacher_target_params")
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        assert_eq!(count(&teacher(serde_json::json!([4, 4]), false)), [40]);
        // With biases: (3·4 + 4) + (4·4 + 4) + (4·3 + 3).
        assert_eq!(count(&teacher(serde_json::json!([4, 4]), true)), [51]);
        // No hidden layer: 3·3.
        assert_eq!(count(&teacher(serde_json::json!([]), false)), [9]);
        // A teacher whose shape is unknown gets no count rather than the budget.
        assert!(count(&teacher(Value::Null, false)).is_empty());
    }

    #[test]
    fn run_columns_are_the_sampler_keys_and_the_posterior() {
        let spec = serde_json::json!({"config": {
            "sampler": {"name": "sgld", "step_size": 1e-5, "seed": 3, "chains": 4},
            "posterior": {"gamma": 10.0, "beta_mode": "1_over_log_n"},
        }});
        let cols = run_columns(&spec);
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["chains", "sampler_seed", "step_size", "beta_mode", "gamma"]
        );
        assert!(run_columns(&serde_json::json!({})).is_empty());
    }
}
