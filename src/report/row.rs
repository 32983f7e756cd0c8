//! One finished sampler run as a row of `results` ([`RunRow`]) and the columns it has
//! ([`Column`], plus the target's and sampler's settings as [`Key::Config`] columns). Pure: a
//! [`FinishedRun`] from the store scan in, typed cell [`Value`]s out; `results` (printing,
//! CSV/JSON, plots) and `group` (summaries) both build on it, and neither on the other.

use std::path::PathBuf;

use serde::Serialize;

use super::scan::FinishedRun;
use super::table::Value;

/// A column of the results table, usable in `--group-by` and `--plot-x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    TargetId,
    Depth,
    Widths,
    TargetParams,
    NData,
    Seed,
    Sampler,
    LlcMean,
    LlcStd,
    LlcSem,
    Ess,
    RHat,
    WalltimeSec,
    GradEvals,
    Healthy,
    TargetConverged,
    NWarnings,
    Warnings,
    RunDir,
}

/// Separates the warnings of a run in its CSV cell (no warning contains it).
pub const WARNING_SEPARATOR: &str = " | ";

impl Column {
    /// In table order.
    pub const ALL: [Column; 19] = [
        Column::TargetId,
        Column::Depth,
        Column::Widths,
        Column::TargetParams,
        Column::NData,
        Column::Seed,
        Column::Sampler,
        Column::LlcMean,
        Column::LlcStd,
        Column::LlcSem,
        Column::Ess,
        Column::RHat,
        Column::WalltimeSec,
        Column::GradEvals,
        Column::Healthy,
        Column::TargetConverged,
        Column::NWarnings,
        Column::Warnings,
        Column::RunDir,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::TargetId => "target_id",
            Column::Depth => "depth",
            Column::Widths => "widths",
            Column::TargetParams => "target_params",
            Column::NData => "n_data",
            Column::Seed => "seed",
            Column::Sampler => "sampler",
            Column::LlcMean => "llc_mean",
            Column::LlcStd => "llc_std",
            Column::LlcSem => "llc_sem",
            Column::Ess => "ess",
            Column::RHat => "r_hat",
            Column::WalltimeSec => "walltime_sec",
            Column::GradEvals => "grad_evals",
            Column::Healthy => "healthy",
            Column::TargetConverged => "target_converged",
            Column::NWarnings => "n_warnings",
            Column::Warnings => "warnings",
            Column::RunDir => "run_dir",
        }
    }

    pub fn parse(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Axis label for plots.
    fn axis_label(self) -> String {
        match self {
            Column::TargetParams => "number of parameters p (target_params)".into(),
            Column::NData => "training set size n (n_data)".into(),
            Column::Depth => "hidden layers (depth)".into(),
            other => other.name().into(),
        }
    }
}

/// A column `--group-by` and `--plot-x` can name: a fixed one, or a configuration column some
/// run has (report::config_columns).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Column(Column),
    Config(String),
}

impl Key {
    pub fn name(&self) -> &str {
        match self {
            Key::Column(c) => c.name(),
            Key::Config(name) => name,
        }
    }

    pub fn value(&self, row: &RunRow) -> Value {
        match self {
            Key::Column(c) => row.value(*c),
            Key::Config(name) => row.config_value(name),
        }
    }

    pub fn axis_label(&self) -> String {
        match self {
            Key::Column(c) => c.axis_label(),
            Key::Config(name) => name.clone(),
        }
    }
}

/// Every configuration column of `rows`, in the order the runs list them (target settings,
/// then sampler settings).
pub fn config_names(rows: &[RunRow]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        for (k, _) in &row.config {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    names
}

/// One finished sampler run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub target_id: String,
    pub depth: u64,
    pub widths: Vec<u64>,
    /// `dims.p` of the target: the number of parameters actually built.
    pub target_params: u64,
    pub n_data: u64,
    pub seed: u64,
    pub sampler: String,
    pub llc_mean: Option<f64>,
    pub llc_std: Option<f64>,
    pub llc_sem: Option<f64>,
    pub ess: Option<f64>,
    pub r_hat: Option<f64>,
    pub walltime_sec: Option<f64>,
    pub grad_evals: Option<u64>,
    /// The run passed every health check (its own `healthy`; see `target_converged` too).
    pub healthy: bool,
    /// The target's `convergence.converged`; `None` when its meta.json does not say.
    pub target_converged: Option<bool>,
    pub n_warnings: u64,
    /// Why the run is unhealthy, in analysis.json's order.
    pub warnings: Vec<String>,
    pub run_dir: PathBuf,
    /// The target's and sampler's settings (report::config_columns), in scan order. JSON
    /// output adds them to the run's object ([`RunRow::to_json`]).
    #[serde(skip)]
    pub config: Vec<(String, serde_json::Value)>,
}

impl RunRow {
    pub fn from_run(run: &FinishedRun) -> RunRow {
        let (m, a) = (&run.meta, &run.analysis);
        RunRow {
            target_id: m.target_id.clone(),
            depth: m.model_cfg.depth,
            widths: m.model_cfg.widths.clone(),
            target_params: m.dims.p,
            n_data: m.data_cfg.n_data,
            seed: m.seed,
            sampler: run.sampler.clone(),
            llc_mean: a.llc_mean,
            llc_std: a.llc_std,
            llc_sem: a.llc_sem,
            ess: a.ess,
            r_hat: a.r_hat,
            walltime_sec: a.walltime_sec,
            grad_evals: a.grad_evals,
            healthy: a.health.is_healthy(),
            target_converged: m.health.converged(),
            n_warnings: a.health.warnings.len() as u64,
            warnings: a.health.warnings.clone(),
            run_dir: run.run_dir.clone(),
            config: run.config.clone(),
        }
    }

    /// The value of configuration column `name` (`Null` when this run has no such setting):
    /// numbers and booleans as such (so groups sort by value, as pandas sorts them), lists and
    /// mappings as their JSON text (`[8,8]`).
    pub fn config_value(&self, name: &str) -> Value {
        use serde_json::Value as J;
        match self.config.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
            None | Some(J::Null) => Value::Null,
            Some(J::Bool(b)) => Value::Bool(*b),
            Some(J::Number(n)) => match n.as_u64() {
                Some(i) => Value::Int(i),
                None => Value::float(n.as_f64()),
            },
            Some(J::String(s)) => Value::Text(s.clone()),
            Some(other) => Value::Text(other.to_string()),
        }
    }

    /// The row as JSON: the fixed columns, then every configuration column with its JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            for (k, value) in &self.config {
                map.entry(k.clone()).or_insert_with(|| value.clone());
            }
        }
        v
    }

    pub fn value(&self, column: Column) -> Value {
        match column {
            Column::TargetId => Value::Text(self.target_id.clone()),
            Column::Depth => Value::Int(self.depth),
            // JSON spelling, so `json.loads` reads it back from the CSV.
            Column::Widths => Value::Text(format!(
                "[{}]",
                self.widths
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )),
            Column::TargetParams => Value::Int(self.target_params),
            Column::NData => Value::Int(self.n_data),
            Column::Seed => Value::Int(self.seed),
            Column::Sampler => Value::Text(self.sampler.clone()),
            Column::LlcMean => Value::float(self.llc_mean),
            Column::LlcStd => Value::float(self.llc_std),
            Column::LlcSem => Value::float(self.llc_sem),
            Column::Ess => Value::float(self.ess),
            Column::RHat => Value::float(self.r_hat),
            Column::WalltimeSec => Value::float(self.walltime_sec),
            Column::GradEvals => self.grad_evals.map_or(Value::Null, Value::Int),
            Column::Healthy => Value::Bool(self.healthy),
            Column::TargetConverged => self.target_converged.map_or(Value::Null, Value::Bool),
            Column::NWarnings => Value::Int(self.n_warnings),
            Column::Warnings => Value::Text(self.warnings.join(WARNING_SEPARATOR)),
            Column::RunDir => Value::Text(self.run_dir.to_string_lossy().into_owned()),
        }
    }
}
