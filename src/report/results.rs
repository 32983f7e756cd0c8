//! `lambda-hat results`: one row per finished sampler run, as a table, CSV or JSON, optionally
//! summarized per group and plotted.
//!
//! Data enters from the store (via `scan`): each finished run's `analysis.json` joined
//! with its target's `meta.json`. It leaves on the `out` writer (the table, CSV or JSON), on the
//! `err` writer (notes that must not mix into CSV), in the `--out` CSV file and the `--plot`
//! PNG. Runs that are not finished are always listed apart from the rows, never dropped.
//!
//! The columns follow the seed's pandas script ("Results Aggregation") with two renames that
//! say what the value is: `model_depth` is `depth`, `walltime` is `walltime_sec`. Health
//! columns follow: `healthy` (from analysis.json, derived as "no warnings" for older files),
//! `target_converged` (meta.json's `convergence.converged`, empty when unknown), and the
//! warnings: their count on the terminal; `n_warnings` and the full list (joined with " | " in
//! CSV, an array in JSON) for pandas. `--healthy-only` keeps healthy runs on targets not known
//! to be unconverged.
//!
//! `--plot-x` may name any column; [`is_categorical`] decides whether `--plot` draws a quantity
//! (points and the mean per x) or categories (a strip plot).

use std::io::Write;
use std::path::{Path, PathBuf};

pub use super::row::{Column, Key, RunRow, WARNING_SEPARATOR, config_names};

use super::group::{group_by, group_table};
use super::plots::{self, LlcPoint, LlcSeries, XScale};
use super::scan::{self, Scope, Status, Unfinished};
use super::table::{self, Table, Value};
use super::{ReportError, files};

/// How `results` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for the terminal, numbers rounded to 3 decimals.
    Table,
    /// RFC 4180 CSV at full precision; missing numbers are empty (pandas reads NaN).
    Csv,
    /// `{"runs": [...], "not_finished": [...]}` (`"groups"` instead of `"runs"` with --group-by).
    Json,
}

/// `lambda-hat results`: one row per finished sampler run.
#[derive(Debug, Clone, clap::Args)]
pub struct ResultsArgs {
    /// The store to read [default: the `store_root` of the experiments file (`--configfile`,
    /// else ./config/experiments.yaml), else `runs`].
    #[arg(
        long,
        value_name = "DIR",
        default_value = "runs",
        hide_default_value = true
    )]
    pub runs_root: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Summarize per group of these columns: n runs, mean and std of llc_mean, mean ess and
    /// walltime (e.g. `--group-by sampler,target_params`).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub group_by: Vec<String>,

    /// Also write the rows (or groups) as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Plot llc_mean ± sem against --plot-x, one series per sampler, to FILE (PNG): points and
    /// the mean per x for a quantity, a strip plot for categories (text columns, seeds and
    /// `*_id` columns, and any column with a single value).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,

    /// Column for the x axis of --plot (any column of the table). Default: target_params.
    // No clap default: a --plot-x given without --plot must be seen, to be refused.
    #[arg(long, value_name = "COLUMN")]
    pub plot_x: Option<String>,

    /// Keep only healthy runs on targets not known to be unconverged (the rest are counted in
    /// a note).
    #[arg(long)]
    pub healthy_only: bool,

    /// Read every run in the store, not only those of the sweep the experiments file
    /// (`--configfile`) names.
    #[arg(long)]
    pub all: bool,

    /// The sweep's runs (set from the experiments file unless `--all`); `None`: the whole store.
    #[arg(skip)]
    pub scope: Option<Scope>,
}

impl ResultsArgs {
    /// The defaults of the command line, reading `runs_root`.
    pub fn new(runs_root: impl Into<PathBuf>) -> ResultsArgs {
        ResultsArgs {
            runs_root: runs_root.into(),
            format: Format::Table,
            group_by: Vec::new(),
            out: None,
            plot: None,
            plot_x: None,
            healthy_only: false,
            all: false,
            scope: None,
        }
    }
}

/// The fixed columns, then the configuration columns of `rows`.
fn valid_columns(rows: &[RunRow]) -> String {
    let fixed = Column::ALL.iter().map(|c| c.name().to_string());
    fixed
        .chain(config_names(rows))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `--group-by` names against the fixed columns and the runs' configuration columns;
/// an unknown name is an error listing the valid ones.
pub fn parse_columns(names: &[String], rows: &[RunRow]) -> Result<Vec<Key>, ReportError> {
    let config = config_names(rows);
    let mut keys = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let key = match Column::parse(name) {
            Some(c) => Key::Column(c),
            None if config.iter().any(|c| c == name) => Key::Config(name.to_string()),
            None => {
                return Err(ReportError::UnknownColumn {
                    flag: "--group-by",
                    column: name.to_string(),
                    valid: valid_columns(rows),
                });
            }
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// The x axis of `--plot` when `--plot-x` is not given.
const DEFAULT_PLOT_X: &str = "target_params";

/// `--plot-x` without `--plot`, and a `--plot` file that is not PNG, are refused before the
/// store is read: the first did nothing and said nothing, the second failed only after the
/// table was printed, with the PNG encoder's debug text (which named the temporary file).
fn check_plot_flags(args: &ResultsArgs) -> Result<(), ReportError> {
    match &args.plot {
        None if args.plot_x.is_some() => Err(ReportError::PlotXWithoutPlot),
        Some(path) => check_png_path("--plot", path),
        None => Ok(()),
    }
}

/// Plots are only written as PNG, and the encoder picks the format from the extension, so a
/// file named otherwise (`x.svg`, `x`) is refused by name. A device or pipe (`/dev/stdout`)
/// gets PNG bytes whatever its name.
pub fn check_png_path(flag: &'static str, path: &Path) -> Result<(), ReportError> {
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    match files::destination(path) {
        files::Destination::File(_) if !png => Err(ReportError::PlotFormat {
            flag,
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// `--plot-x`: a fixed column, or a configuration column some run has. Without runs only the
/// fixed columns can be checked (the store is read after the flags).
fn parse_plot_x(name: &str, rows: Option<&[RunRow]>) -> Result<Option<Key>, ReportError> {
    let name = name.trim();
    match (Column::parse(name), rows) {
        (Some(c), _) => Ok(Some(Key::Column(c))),
        (None, None) => Ok(None),
        (None, Some(rows)) if config_names(rows).iter().any(|c| c == name) => {
            Ok(Some(Key::Config(name.to_string())))
        }
        (None, Some(rows)) => Err(ReportError::UnknownColumn {
            flag: "--plot-x",
            column: name.to_string(),
            valid: valid_columns(rows),
        }),
    }
}

/// Whether `--plot` treats the column `name` with these values (one per run) as categories
/// rather than as a quantity. Categorical when
/// 1. some value is not a number (text such as `sampler`, `activation`, `widths`; booleans), or
/// 2. the column names an identity, not an amount: `seed`, `*_seed`, `*_id` (seed 42 is not
///    "more" than seed 7, and a numeric axis would suggest a trend), or
/// 3. it holds a single distinct value (a numeric axis would squeeze every run into one
///    vertical smear; as one category they spread out side by side).
///
/// Missing values (`Null`) are ignored: those runs are left out of the plot.
pub fn is_categorical(name: &str, values: &[Value]) -> bool {
    let present: Vec<&Value> = values.iter().filter(|v| **v != Value::Null).collect();
    let text = present.iter().any(|v| v.as_f64().is_none());
    let identity = name == "seed" || name.ends_with("_seed") || name.ends_with("_id");
    let mut distinct: Vec<f64> = present.iter().filter_map(|v| v.as_f64()).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    text || identity || distinct.len() == 1
}

/// A category's tick label: text as it is, numbers and booleans as CSV writes them.
fn category_label(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => other.csv(),
    }
}

/// The finished runs under `runs_root` as rows, and what is not finished.
pub fn collect(runs_root: &Path) -> Result<(Vec<RunRow>, Vec<Unfinished>), ReportError> {
    let (rows, unfinished, _) = collect_in(runs_root, None)?;
    Ok((rows, unfinished))
}

/// [`collect`] limited to `scope` (when given), with the number of other sweeps' runs left out.
pub(crate) fn collect_in(
    runs_root: &Path,
    scope: Option<&Scope>,
) -> Result<(Vec<RunRow>, Vec<Unfinished>, usize), ReportError> {
    let mut scan = scan::scan(runs_root)?;
    let outside = scope.map_or(0, |s| s.apply(&mut scan, runs_root));
    let rows = scan.finished.iter().map(RunRow::from_run).collect();
    Ok((rows, scan.unfinished, outside))
}

/// Keeps the healthy runs on targets not known to be unconverged; returns how many it dropped.
pub fn keep_healthy(rows: &mut Vec<RunRow>) -> usize {
    let before = rows.len();
    rows.retain(|r| r.healthy && r.target_converged != Some(false));
    before - rows.len()
}

/// All rows as a table. `terminal` shows only the run directory's name (the target is already
/// its own column), the number of warnings under `warnings` (their text would not fit) and
/// `-` for an unknown `target_converged`.
///
/// The configuration columns follow `sampler`: all of them in CSV, and on the terminal only
/// those that tell apart two runs of the same sampler (variants, or targets that differ); the
/// rest would repeat one value, or one sampler's setting, down the screen.
pub fn rows_table(rows: &[RunRow], terminal: bool) -> Table {
    // One pass per column: the first value seen for each sampler, compared with the rest.
    let distinguishes = |k: &Key| {
        let mut first: std::collections::HashMap<&str, Value> = Default::default();
        rows.iter().any(|r| {
            let v = k.value(r);
            match first.get(r.sampler.as_str()) {
                Some(seen) => *seen != v,
                None => {
                    first.insert(&r.sampler, v);
                    false
                }
            }
        })
    };
    let config: Vec<Key> = config_names(rows)
        .into_iter()
        .map(Key::Config)
        .filter(|k| !terminal || distinguishes(k))
        .collect();
    let mut columns: Vec<Key> = Vec::new();
    for c in Column::ALL {
        if terminal && c == Column::NWarnings {
            continue;
        }
        columns.push(Key::Column(c));
        if c == Column::Sampler {
            columns.extend(config.iter().cloned());
        }
    }
    let mut header: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
    if terminal {
        *header.last_mut().expect("ALL is not empty") = "run".into();
    }
    let rows = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match (c, terminal) {
                    (Key::Column(Column::RunDir), true) => Value::Text(
                        r.run_dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    (Key::Column(Column::Warnings), true) => Value::Int(r.n_warnings),
                    (Key::Column(Column::TargetConverged), true)
                        if r.target_converged.is_none() =>
                    {
                        Value::Text("-".into())
                    }
                    // A setting the run does not have (MCLMC's num_integration_steps) is not a
                    // failed computation: `-`, as for an unknown convergence, not `NaN`.
                    (Key::Config(_), true) => match c.value(r) {
                        Value::Null => Value::Text("-".into()),
                        v => v,
                    },
                    _ => c.value(r),
                })
                .collect()
        })
        .collect();
    Table { header, rows }
}

fn output_error(source: std::io::Error) -> ReportError {
    ReportError::Write {
        path: PathBuf::from("<standard output>"),
        source,
    }
}

/// Runs `lambda-hat results`. Rows, CSV and JSON go to `out`. Notes (runs not finished, files
/// written) follow the table on `out`; with `--format csv|json` they go to `err`, so that the
/// CSV or JSON document stays clean (JSON lists the unfinished runs itself).
pub fn run(
    args: &ResultsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ReportError> {
    // Validate what can be validated before reading the store, so a typo in a fixed column
    // fails fast; configuration columns are known once the runs are read.
    check_plot_flags(args)?;
    let plot_x_name = args.plot_x.as_deref().unwrap_or(DEFAULT_PLOT_X);
    if args.plot.is_some() {
        parse_plot_x(plot_x_name, None)?;
    }
    let (mut rows, unfinished, outside) = collect_in(&args.runs_root, args.scope.as_ref())?;
    let group_columns = parse_columns(&args.group_by, &rows)?;
    let plot_x = match args.plot {
        Some(_) => parse_plot_x(plot_x_name, Some(&rows))?,
        None => None,
    };
    let mut notes = Vec::new();
    if outside > 0 {
        writeln!(
            notes,
            "{outside} finished run(s) in the store belong to other sweeps (another experiments file, or other --config keys); --all includes them"
        )
        .map_err(output_error)?;
    }
    if args.healthy_only {
        let dropped = keep_healthy(&mut rows);
        if dropped > 0 {
            writeln!(
                notes,
                "--healthy-only: left out {dropped} unhealthy run(s) or run(s) on unconverged targets"
            )
            .map_err(output_error)?;
        }
    }
    let grouped = (!group_columns.is_empty())
        .then(|| group_table(&group_columns, &group_by(&rows, &group_columns)));
    let table = |short_run| match &grouped {
        Some(groups) => groups.clone(),
        None => rows_table(&rows, short_run),
    };

    match args.format {
        Format::Table => {
            if rows.is_empty() {
                let root = args.runs_root.display();
                let which = if args.healthy_only { "healthy " } else { "" };
                writeln!(out, "No {which}finished sampler runs under `{root}`.")
            } else {
                write!(out, "{}", table(true).text())
            }
            .map_err(output_error)?;
            write_unfinished(&mut notes, &unfinished).map_err(output_error)?;
        }
        Format::Csv => {
            write!(out, "{}", table(false).csv()).map_err(output_error)?;
            write_unfinished(&mut notes, &unfinished).map_err(output_error)?;
        }
        Format::Json => {
            let key = if grouped.is_some() { "groups" } else { "runs" };
            let records = match &grouped {
                Some(groups) => groups.json(),
                None => serde_json::Value::Array(rows.iter().map(RunRow::to_json).collect()),
            };
            let doc = serde_json::json!({
                key: records,
                "not_finished": unfinished_json(&unfinished),
            });
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            writeln!(out, "{text}").map_err(output_error)?;
        }
    }

    if let Some(path) = &args.out {
        files::write_atomic(path, table(false).csv().as_bytes())?;
        writeln!(notes, "Wrote {}", path.display()).map_err(output_error)?;
    }
    if let (Some(path), Some(x)) = (&args.plot, plot_x) {
        plot(path, &rows, x)?;
        writeln!(notes, "Wrote {}", path.display()).map_err(output_error)?;
    }
    // JSON already carries the unfinished runs; only "Wrote" lines are left, and they must not
    // break the document on stdout.
    match args.format {
        Format::Table => out.write_all(&notes),
        Format::Csv | Format::Json => err.write_all(&notes),
    }
    .map_err(output_error)
}

fn unfinished_label(u: &Unfinished) -> String {
    match &u.run_name {
        Some(run) => format!("{}/{run}", u.target_id),
        None => format!("{} (target)", u.target_id),
    }
}

fn write_unfinished(out: &mut impl Write, unfinished: &[Unfinished]) -> std::io::Result<()> {
    if unfinished.is_empty() {
        return Ok(());
    }
    let runs = unfinished.iter().filter(|u| u.run_name.is_some()).count();
    let targets = unfinished.len() - runs;
    writeln!(out)?;
    writeln!(
        out,
        "Not finished, so not in the results: {runs} run(s), {targets} target(s)"
    )?;
    let width = unfinished
        .iter()
        .map(|u| unfinished_label(u).len())
        .max()
        .unwrap_or(0);
    for u in unfinished {
        writeln!(
            out,
            "  {:<width$}  {}",
            unfinished_label(u),
            u.status.describe()
        )?;
    }
    Ok(())
}

fn unfinished_json(unfinished: &[Unfinished]) -> serde_json::Value {
    unfinished
        .iter()
        .map(|u| {
            let (status, reason) = match &u.status {
                Status::Incomplete => ("incomplete", None),
                Status::NotFinished => ("not_finished", None),
                Status::Broken(why) => ("broken", Some(why.clone())),
                Status::Failed(why) => ("failed", Some(why.clone())),
                Status::Outdated => ("outdated", None),
            };
            serde_json::json!({
                "target_id": u.target_id,
                "run": u.run_name,
                "path": u.path,
                "status": status,
                "reason": reason,
            })
        })
        .collect()
}

/// `--plot`: llc_mean ± sem against `x`, one series per sampler (in name order); a strip
/// plot when [`is_categorical`] says x names categories.
fn plot(path: &Path, rows: &[RunRow], x: Key) -> Result<(), ReportError> {
    let values: Vec<Value> = rows.iter().map(|r| x.value(r)).collect();
    let (scale, xs): (XScale, Vec<Option<f64>>) = if is_categorical(x.name(), &values) {
        let mut categories: Vec<Value> = values
            .iter()
            .filter(|v| **v != Value::Null)
            .cloned()
            .collect();
        categories.sort_by(table::compare);
        categories.dedup();
        let index = values
            .iter()
            .map(|v| categories.iter().position(|c| c == v).map(|i| i as f64))
            .collect();
        let labels = categories.iter().map(category_label).collect();
        (XScale::Categorical(labels), index)
    } else {
        (XScale::Numeric, values.iter().map(Value::as_f64).collect())
    };
    let mut series: Vec<LlcSeries> = Vec::new();
    for (row, xv) in rows.iter().zip(xs) {
        let (Some(xv), Some(llc)) = (xv, row.llc_mean) else {
            continue;
        };
        let point = LlcPoint {
            x: xv,
            llc_mean: llc,
            sem: row.llc_sem,
        };
        match series.iter_mut().find(|s| s.name == row.sampler) {
            Some(s) => s.points.push(point),
            None => series.push(LlcSeries {
                name: row.sampler.clone(),
                points: vec![point],
            }),
        }
    }
    if series.is_empty() {
        return Err(ReportError::NothingToPlot {
            path: path.to_path_buf(),
            reason: format!("no finished run has both llc_mean and {}", x.name()),
        });
    }
    series.sort_by(|a, b| a.name.cmp(&b.name));
    plots::plot_llc_vs(path, &x.axis_label(), &scale, &series)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::PlotError;
    use crate::report::testutil::{StoreBuilder, TempDir};

    /// Two targets, three samplers, one unfinished and one incomplete run.
    fn half_finished_store(tmp: &TempDir) {
        let s = StoreBuilder::new(tmp.path());
        let a = s.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        let b = s.target("tgt_bbbbbbbbbbbb", 3, &[16, 16, 16], 600, 20000, 43);
        s.finished_run(&a, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        s.finished_run(&a, "run_hmc_00000002", 5.0, "2026-01-02T00:00:00Z");
        s.finished_run(&a, "run_sgld_00000003", 4.0, "2026-01-01T00:00:00Z");
        s.finished_run(&b, "run_hmc_00000004", 11.0, "2026-01-01T00:00:00Z");
        s.finished_run(&b, "run_sgld_00000005", 10.0, "2026-01-01T00:00:00Z");
        s.finished_run_with(
            &b,
            "run_sgld_00000006",
            serde_json::json!({"llc_mean": 13.0, "ess": null, "r_hat": null}),
            &[vec![13.0; 10]],
        );
        s.started_run(&b, "run_mclmc_00000007");
        s.started_run(&a, "run_mclmc_00000008");
        s.incomplete_marker("run_sampler-x", &a.join("run_mclmc_00000008"));
    }

    /// `half_finished_store` plus health: one unhealthy run (old-style, no `healthy` key), one
    /// healthy run on an unconverged target, one on a converged target.
    fn store_with_health(tmp: &TempDir) {
        half_finished_store(tmp);
        let s = StoreBuilder::new(tmp.path());
        let a = tmp.path().join("targets").join("tgt_aaaaaaaaaaaa");
        s.finished_run_with(
            &a,
            "run_hmc_00000009",
            serde_json::json!({"llc_mean": 6.0, "warnings": [
                "R-hat 1.230 > 1.01: the chains disagree", "bulk ESS 40 < 100: too few, \"really\""
            ]}),
            &[vec![6.0; 10]],
        );
        s.merge_meta(
            &a,
            serde_json::json!({"convergence": {"converged": true, "grad_norm": 1e-9, "grad_tol": 1e-6}}),
        );
        let c = s.target("tgt_cccccccccccc", 1, &[4], 20, 100, 7);
        s.merge_meta(
            &c,
            serde_json::json!({
                "convergence": {"converged": false, "grad_norm": 0.3, "grad_tol": 1e-6},
                "warnings": ["target not converged: gradient norm 0.3"]
            }),
        );
        s.finished_run_with(
            &c,
            "run_sgld_0000000a",
            serde_json::json!({"llc_mean": 2.0, "healthy": true}),
            &[vec![2.0; 10]],
        );
    }

    #[test]
    fn health_columns_in_csv_json_and_table() {
        let tmp = TempDir::new("results-health");
        store_with_health(&tmp);
        let (rows, _) = collect(tmp.path()).unwrap();
        let row = |name: &str| {
            rows.iter()
                .find(|r| r.run_dir.ends_with(name))
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let sick = row("run_hmc_00000009");
        assert!(!sick.healthy);
        assert_eq!(sick.target_converged, Some(true));
        assert_eq!(sick.n_warnings, 2);
        assert!(row("run_hmc_00000001").healthy);
        assert_eq!(row("run_hmc_00000004").target_converged, None);
        assert_eq!(row("run_sgld_0000000a").target_converged, Some(false));

        let mut args = ResultsArgs::new(tmp.path());
        args.format = Format::Csv;
        let (csv, _) = run_to_strings(&args).unwrap();
        let parsed = parse_csv(&csv);
        let col = |name: &str| parsed[0].iter().position(|h| h == name).unwrap();
        let line = parsed
            .iter()
            .find(|f| f[col("run_dir")].ends_with("run_hmc_00000009"))
            .unwrap();
        assert_eq!(line[col("healthy")], "false");
        assert_eq!(line[col("target_converged")], "true");
        assert_eq!(line[col("n_warnings")], "2");
        assert_eq!(
            line[col("warnings")],
            "R-hat 1.230 > 1.01: the chains disagree | bulk ESS 40 < 100: too few, \"really\""
        );

        args.format = Format::Json;
        let (json, _) = run_to_strings(&args).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let runs = doc["runs"].as_array().unwrap();
        let sick = runs
            .iter()
            .find(|r| r["run_dir"].as_str().unwrap().ends_with("run_hmc_00000009"))
            .unwrap();
        assert_eq!(sick["healthy"], false);
        assert_eq!(
            sick["warnings"][1],
            "bulk ESS 40 < 100: too few, \"really\""
        );
        let old = runs
            .iter()
            .find(|r| r["run_dir"].as_str().unwrap().ends_with("run_hmc_00000004"))
            .unwrap();
        assert_eq!(old["target_converged"], serde_json::Value::Null);

        // The terminal shows the count and `-` for an unknown convergence.
        let (text, _) = run_to_strings(&ResultsArgs::new(tmp.path())).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.contains("healthy") && header.contains("warnings"),
            "{header}"
        );
        assert!(!header.contains("n_warnings"), "{header}");
        let tail = |run: &str| -> Vec<String> {
            let line = text.lines().find(|l| l.contains(run)).unwrap();
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            words[words.len() - 4..].to_vec()
        };
        assert_eq!(
            tail("run_hmc_00000009"),
            ["false", "true", "2", "run_hmc_00000009"]
        );
        assert_eq!(
            tail("run_hmc_00000004"),
            ["true", "-", "0", "run_hmc_00000004"]
        );
    }

    #[test]
    fn a_setting_a_run_does_not_have_is_a_dash_in_the_table_and_empty_in_csv() {
        let tmp = TempDir::new("results-missing-setting");
        let s = StoreBuilder::new(tmp.path());
        let t = s.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        let hmc = s.finished_run(&t, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        let mclmc = s.finished_run(&t, "run_mclmc_00000002", 3.1, "2026-01-01T00:00:00Z");
        // Two HMC variants, so the table shows the setting that tells them apart.
        let hmc20 = s.finished_run(&t, "run_hmc_00000003", 3.0, "2026-01-01T00:00:00Z");
        for (dir, sampler) in [
            (
                &hmc,
                serde_json::json!({"name": "hmc", "num_integration_steps": 10}),
            ),
            (
                &hmc20,
                serde_json::json!({"name": "hmc", "num_integration_steps": 20}),
            ),
            (&mclmc, serde_json::json!({"name": "mclmc"})),
        ] {
            let spec = serde_json::json!({"config": {"sampler": sampler}});
            std::fs::write(dir.join("spec.json"), spec.to_string()).unwrap();
        }
        let (text, _) = run_to_strings(&ResultsArgs::new(tmp.path())).unwrap();
        assert!(text.contains("num_integration_steps"), "{text}");
        let line = text.lines().find(|l| l.contains("run_mclmc")).unwrap();
        assert!(!line.contains("NaN") && line.contains(" - "), "{line}");
        let mut args = ResultsArgs::new(tmp.path());
        args.format = Format::Csv;
        let (csv, _) = run_to_strings(&args).unwrap();
        assert!(!csv.contains("NaN") && !csv.contains(",-,"), "{csv}");
    }

    #[test]
    fn healthy_only_drops_unhealthy_runs_and_unconverged_targets() {
        let tmp = TempDir::new("results-healthy-only");
        store_with_health(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        args.format = Format::Csv;
        let (all, _) = run_to_strings(&args).unwrap();
        args.healthy_only = true;
        let (kept, err) = run_to_strings(&args).unwrap();
        assert_eq!(parse_csv(&all).len() - 1, 8);
        assert_eq!(parse_csv(&kept).len() - 1, 6, "{kept}");
        assert!(!kept.contains("run_hmc_00000009"));
        assert!(!kept.contains("run_sgld_0000000a"));
        assert!(err.contains("left out 2 unhealthy run(s)"), "{err}");
    }

    fn run_to_strings(args: &ResultsArgs) -> Result<(String, String), ReportError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(args, &mut out, &mut err)?;
        Ok((
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        ))
    }

    #[test]
    fn table_lists_finished_rows_and_the_rest_apart() {
        let tmp = TempDir::new("results-table");
        half_finished_store(&tmp);
        let (out, err) = run_to_strings(&ResultsArgs::new(tmp.path())).unwrap();
        assert!(err.is_empty());
        let (table, rest) = out.split_once("Not finished").unwrap();
        // Header + 6 finished rows.
        assert_eq!(table.trim_end().lines().count(), 7, "{out}");
        assert!(table.contains("run_sgld_00000006"));
        assert!(!table.contains("mclmc"));
        assert!(rest.contains("2 run(s), 0 target(s)"));
        assert!(
            rest.contains("tgt_aaaaaaaaaaaa/run_mclmc_00000008  incomplete"),
            "{rest}"
        );
        assert!(
            rest.contains("tgt_bbbbbbbbbbbb/run_mclmc_00000007  not finished"),
            "{rest}"
        );
    }

    #[test]
    fn csv_round_trips_every_number() {
        let tmp = TempDir::new("results-csv");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        args.format = Format::Csv;
        let out_file = tmp.path().join("out").join("results.csv");
        args.out = Some(out_file.clone());
        let (out, err) = run_to_strings(&args).unwrap();
        // The unfinished runs are reported on the other stream, so the CSV stays clean.
        assert!(err.contains("run_mclmc_00000007"));
        assert_eq!(std::fs::read_to_string(&out_file).unwrap(), out);

        let (rows, _) = collect(tmp.path()).unwrap();
        let parsed = parse_csv(&out);
        // The fixed columns in order, with every configuration column after `sampler`.
        let config = config_names(&rows);
        assert!(config.contains(&"activation".to_string()), "{config:?}");
        let fixed: Vec<String> = Column::ALL.map(|c| c.name().to_string()).to_vec();
        let mut want = fixed[..7].to_vec();
        want.extend(config.iter().cloned());
        want.extend(fixed[7..].iter().cloned());
        assert_eq!(parsed[0], want);
        let at = |name: &str| parsed[0].iter().position(|h| h == name).unwrap();
        assert_eq!(parsed.len(), rows.len() + 1);
        for (row, fields) in rows.iter().zip(&parsed[1..]) {
            let fixed_fields: Vec<String> = fixed.iter().map(|n| fields[at(n)].clone()).collect();
            let back = RunRow {
                config: row.config.clone(),
                ..row_from_fields(&fixed_fields)
            };
            assert_eq!(&back, row);
            for name in &config {
                assert_eq!(fields[at(name)], row.config_value(name).csv(), "{name}");
            }
        }
    }

    /// A minimal RFC 4180 reader, independent of the writer under test.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = vec![];
        let mut row = vec![];
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => row.push(std::mem::take(&mut field)),
                ('\n', false) => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (c, _) => field.push(c),
            }
        }
        rows
    }

    fn row_from_fields(f: &[String]) -> RunRow {
        let num = |s: &String| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
        let int = |s: &String| s.parse::<u64>().unwrap();
        RunRow {
            target_id: f[0].clone(),
            depth: int(&f[1]),
            widths: serde_json::from_str(&f[2]).unwrap(),
            target_params: int(&f[3]),
            n_data: int(&f[4]),
            seed: int(&f[5]),
            sampler: f[6].clone(),
            llc_mean: num(&f[7]),
            llc_std: num(&f[8]),
            llc_sem: num(&f[9]),
            ess: num(&f[10]),
            r_hat: num(&f[11]),
            walltime_sec: num(&f[12]),
            grad_evals: (!f[13].is_empty()).then(|| int(&f[13])),
            healthy: f[14].parse().unwrap(),
            target_converged: (!f[15].is_empty()).then(|| f[15].parse().unwrap()),
            n_warnings: int(&f[16]),
            warnings: f[17]
                .split(WARNING_SEPARATOR)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
            run_dir: PathBuf::from(&f[18]),
            config: Vec::new(),
        }
    }

    #[test]
    fn group_by_numbers_match_a_hand_computation() {
        let tmp = TempDir::new("results-group");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        args.format = Format::Json;
        args.group_by = vec!["sampler".into(), "target_params".into()];
        let (out, _) = run_to_strings(&args).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let groups = doc["groups"].as_array().unwrap();
        let keys: Vec<(String, u64)> = groups
            .iter()
            .map(|g| {
                (
                    g["sampler"].as_str().unwrap().to_string(),
                    g["target_params"].as_u64().unwrap(),
                )
            })
            .collect();
        let expect_keys = [("hmc", 120), ("hmc", 600), ("sgld", 120), ("sgld", 600)];
        assert_eq!(keys, expect_keys.map(|(s, p)| (s.to_string(), p)).to_vec());

        // hmc on p = 120: llc 3 and 5 → mean 4, sample std √2; ess 103 and 105; walltime 6, 10.
        let g = &groups[0];
        assert_eq!(g["n_runs"], 2);
        assert!((g["llc_mean_mean"].as_f64().unwrap() - 4.0).abs() < 1e-12);
        assert!((g["llc_mean_std"].as_f64().unwrap() - 2f64.sqrt()).abs() < 1e-12);
        assert!((g["ess_mean"].as_f64().unwrap() - 104.0).abs() < 1e-12);
        assert!((g["walltime_sec_mean"].as_f64().unwrap() - 8.0).abs() < 1e-12);
        // A single run has no sample std (pandas: NaN).
        assert_eq!(groups[1]["llc_mean_std"], serde_json::Value::Null);
        // sgld on p = 600: llc 10 and 13 → std √4.5; ess 110 and null → 110 (NaN skipped).
        let g = &groups[3];
        assert!((g["llc_mean_std"].as_f64().unwrap() - 4.5f64.sqrt()).abs() < 1e-12);
        assert!((g["ess_mean"].as_f64().unwrap() - 110.0).abs() < 1e-12);
        assert_eq!(doc["not_finished"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn unknown_group_column_lists_the_valid_ones() {
        let tmp = TempDir::new("results-badcol");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        args.group_by = vec!["sampler".into(), "model_depth".into()];
        let err = run_to_strings(&args).unwrap_err().to_string();
        assert!(err.contains("unknown column `model_depth`"), "{err}");
        assert!(err.contains("target_id, depth, widths"), "{err}");
    }

    #[test]
    fn plot_x_may_be_a_category_but_must_exist() {
        let tmp = TempDir::new("results-plotx");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        let png = tmp.path().join("p.png");
        args.plot = Some(png.clone());
        args.plot_x = Some("colour".into());
        let err = run_to_strings(&args).unwrap_err();
        assert!(matches!(err, ReportError::UnknownColumn { .. }), "{err}");
        assert!(!png.exists());
        for x in ["sampler", "activation", "seed", "n_data"] {
            args.plot_x = Some(x.into());
            run_to_strings(&args).unwrap();
            crate::report::testutil::assert_png(&png, (1000, 600));
        }
    }

    #[test]
    fn categories_are_text_identities_or_a_single_value() {
        let ints = |xs: &[u64]| xs.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>();
        assert!(!is_categorical("target_params", &ints(&[120, 600, 120])));
        assert!(!is_categorical(
            "step_size",
            &[Value::Float(1e-4), Value::Float(1e-5)]
        ));
        // Text and booleans.
        assert!(is_categorical("activation", &[Value::Text("tanh".into())]));
        assert!(is_categorical(
            "healthy",
            &[Value::Bool(true), Value::Bool(false)]
        ));
        // Identities, however numeric.
        assert!(is_categorical("seed", &ints(&[1, 2, 3])));
        assert!(is_categorical("sampler_seed", &ints(&[1, 2])));
        assert!(is_categorical("teacher_id", &ints(&[1, 2])));
        assert!(!is_categorical("seeds_per_run", &ints(&[1, 2])));
        // One value: one category, not a vertical smear; missing values do not count.
        assert!(is_categorical("n_data", &ints(&[2000, 2000])));
        assert!(is_categorical("gamma", &[Value::Float(100.0), Value::Null]));
        assert!(!is_categorical(
            "gamma",
            &[Value::Float(1.0), Value::Null, Value::Float(10.0)]
        ));
    }

    #[test]
    fn command_line_parses_like_the_docs_say() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ResultsArgs,
        }
        let cli = Cli::try_parse_from([
            "results",
            "--format",
            "csv",
            "--group-by",
            "sampler,target_params",
            "--plot",
            "p.png",
        ])
        .unwrap();
        assert_eq!(cli.args.format, Format::Csv);
        assert_eq!(cli.args.group_by, ["sampler", "target_params"]);
        assert_eq!(cli.args.runs_root, PathBuf::from("runs"));
        assert_eq!(cli.args.plot_x, None);
    }

    /// Checked before the store is read, so even a missing store gives these messages.
    #[test]
    fn plot_must_be_png_and_plot_x_needs_plot() {
        let tmp = TempDir::new("results-plot-format");
        let mut args = ResultsArgs::new(tmp.path().join("runs"));
        for name in ["x.svg", "x.pdf", "x"] {
            args.plot = Some(tmp.path().join(name));
            let err = run_to_strings(&args).unwrap_err();
            assert!(matches!(err, ReportError::PlotFormat { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(".png"), "{msg}");
            assert!(!msg.contains("partial"), "{msg}");
        }
        for name in ["x.png", "x.PNG"] {
            args.plot = Some(tmp.path().join(name));
            let err = run_to_strings(&args).unwrap_err();
            assert!(matches!(err, ReportError::StoreMissing { .. }), "{err}");
        }
        args.plot = None;
        args.plot_x = Some("gamma".into());
        let err = run_to_strings(&args).unwrap_err();
        assert!(matches!(err, ReportError::PlotXWithoutPlot), "{err}");
        assert!(err.to_string().contains("--plot"), "{err}");
    }

    #[test]
    fn missing_runs_root_is_a_clear_error() {
        let tmp = TempDir::new("results-missing");
        let err = run_to_strings(&ResultsArgs::new(tmp.path().join("runs"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn plot_writes_a_png() {
        let tmp = TempDir::new("results-plot");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        let png = tmp.path().join("llc_vs_p.png");
        args.plot = Some(png.clone());
        run_to_strings(&args).unwrap();
        crate::report::testutil::assert_png(&png, (1000, 600));
    }

    #[test]
    fn plot_makes_its_folder_and_names_the_system_reason_when_it_cannot_write() {
        let tmp = TempDir::new("results-plot-folder");
        half_finished_store(&tmp);
        let mut args = ResultsArgs::new(tmp.path());
        // A folder that does not exist yet is made, as --out makes its own.
        let png = tmp.path().join("figures/sweep/llc.png");
        args.plot = Some(png.clone());
        run_to_strings(&args).unwrap();
        crate::report::testutil::assert_png(&png, (1000, 600));
        // A folder that cannot be made: one line with the system's reason, no debug text.
        let blocker = tmp.path().join("a-file");
        std::fs::write(&blocker, "").unwrap();
        args.plot = Some(blocker.join("llc.png"));
        let err = run_to_strings(&args).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ReportError::Plot(PlotError::Draw { .. })),
            "{text}"
        );
        assert!(
            text.contains("Not a directory") || text.contains("File exists"),
            "{text}"
        );
        assert!(
            !text.contains("Os {") && !text.contains("backend"),
            "{text}"
        );
    }
}
