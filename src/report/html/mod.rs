//! `lambda-hat report`: one self-contained HTML file about a sweep, as `snakemake --report`
//! makes one: the experiments file, the results table (sortable, unhealthy runs marked), every
//! run's plots and warnings, the targets' training curves and warnings, and the per-job
//! benchmarks.
//!
//! Data enters from the store, read the way `results` reads it (`results::collect_in`, the same
//! `--runs-root`, sweep scope and `--all`), plus the PNG files in each run's `diagnostics/`,
//! each target's `diagnostics/training_loss.png` and `meta.json` warnings, the benchmark TSVs
//! (`<store>/benchmarks/<rule>/<job>.tsv`, `store::benchmark`) and the experiments file's text.
//! It leaves as one HTML file (written atomically) with the images inlined as base64 `data:`
//! URLs, and one line on `out` naming it. Building the page is `page.rs` (pure); escaping and
//! base64 are `escape.rs` and `base64.rs`.

mod base64;
mod escape;
mod page;

use std::io::Write;
use std::path::{Path, PathBuf};

use super::plots::{RUN_PLOTS, TRAINING_LOSS_PNG};
use super::results::{self, RunRow};
use super::scan::{Scope, Unfinished};
use super::{ReportError, files};
use crate::store::benchmark;
use crate::store::health::TargetHealthFields;
use page::{BenchmarkRow, Image, Page, RunSection, TargetSection};

/// `lambda-hat report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The store to read [default: the `store_root` of the experiments file (`--configfile`,
    /// else ./config/experiments.yaml), else `runs`].
    #[arg(
        long,
        value_name = "DIR",
        default_value = "runs",
        hide_default_value = true
    )]
    pub runs_root: PathBuf,

    /// The HTML file to write.
    #[arg(short = 'o', long, value_name = "PATH", default_value = "report.html")]
    pub output: PathBuf,

    /// Report every run in the store, not only those of the sweep the experiments file
    /// (`--configfile`) names.
    #[arg(long)]
    pub all: bool,

    /// The sweep's runs (set from the experiments file unless `--all`); `None`: the whole store.
    #[arg(skip)]
    pub scope: Option<Scope>,

    /// The experiments file whose text the report shows (set from `--configfile`).
    #[arg(skip)]
    pub configfile: Option<PathBuf>,
}

/// Writes the report; returns its path.
pub fn run(args: &ReportArgs, out: &mut dyn Write) -> Result<PathBuf, ReportError> {
    let (rows, unfinished, outside) = results::collect_in(&args.runs_root, args.scope.as_ref())?;
    let mut notes = Vec::new();
    if outside > 0 {
        notes.push(format!(
            "{outside} finished run(s) in the store belong to other sweeps (another experiments \
             file); --all includes them."
        ));
    }
    let page = Page {
        store: args.runs_root.display().to_string(),
        sweep: match (&args.scope, &args.configfile) {
            (Some(_), Some(file)) => Some(file.display().to_string()),
            _ => None,
        },
        generated: format!(
            "Written {} by lambda-hat {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            env!("CARGO_PKG_VERSION")
        ),
        config: args.configfile.as_ref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            Some((path.display().to_string(), text))
        }),
        table: results::rows_table(&rows, true),
        runs: rows.iter().map(run_section).collect(),
        targets: target_sections(&rows),
        benchmarks: benchmark_rows(&args.runs_root, &rows),
        unfinished: unfinished.iter().map(unfinished_line).collect(),
        notes,
    };
    let html = page::render(&page);
    files::write_atomic(&args.output, html.as_bytes())?;
    let images = page.runs.iter().map(|r| r.images.len()).sum::<usize>()
        + page.targets.iter().map(|t| t.images.len()).sum::<usize>();
    writeln!(
        out,
        "Wrote {} ({} finished run(s), {images} plot(s), {} KiB)",
        args.output.display(),
        rows.len(),
        html.len() / 1024
    )
    .map_err(|source| ReportError::Write {
        path: PathBuf::from("<standard output>"),
        source,
    })?;
    Ok(args.output.clone())
}

/// `tgt_…/run_…` of a run directory.
fn run_name(row: &RunRow) -> String {
    let run = row
        .run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}/{run}", row.target_id)
}

fn number(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "n/a".into(),
    }
}

fn run_section(row: &RunRow) -> RunSection {
    let mut warnings = row.warnings.clone();
    if row.target_converged == Some(false) && warnings.is_empty() {
        warnings.push(format!("target {} is not converged", row.target_id));
    }
    RunSection {
        name: run_name(row),
        healthy: row.healthy && row.target_converged != Some(false),
        figures: vec![
            ("sampler".into(), row.sampler.clone()),
            (
                "LLC".into(),
                format!("{} ± {}", number(row.llc_mean, 3), number(row.llc_sem, 3)),
            ),
            ("R-hat".into(), number(row.r_hat, 3)),
            ("ESS".into(), number(row.ess, 0)),
            (
                "wall time".into(),
                format!("{} s", number(row.walltime_sec, 1)),
            ),
            (
                "gradient evaluations".into(),
                row.grad_evals.map_or("n/a".into(), |g| g.to_string()),
            ),
        ],
        warnings,
        images: run_images(&row.run_dir.join("diagnostics")),
    }
}

/// The PNGs of a run's `diagnostics/`: the known plots in reading order, then any others by
/// name. Unreadable files are left out (a report never fails over one picture).
fn run_images(dir: &Path) -> Vec<Image> {
    let mut names = super::promote::plots_in(dir);
    let rank = |n: &String| {
        RUN_PLOTS
            .iter()
            .position(|p| p == n)
            .unwrap_or(RUN_PLOTS.len())
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names.iter().filter_map(|n| image(&dir.join(n))).collect()
}

fn image(path: &Path) -> Option<Image> {
    Some(Image {
        name: path.file_name()?.to_string_lossy().into_owned(),
        png: std::fs::read(path).ok()?,
    })
}

/// One section per target with runs in the report, in the order of the rows.
fn target_sections(rows: &[RunRow]) -> Vec<TargetSection> {
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for row in rows {
        if let Some(dir) = row.run_dir.parent()
            && !dirs.iter().any(|(id, _)| *id == row.target_id)
        {
            dirs.push((row.target_id.clone(), dir.to_path_buf()));
        }
    }
    dirs.into_iter()
        .map(|(id, dir)| {
            let health: TargetHealthFields =
                super::scan::read_json(&dir.join(super::scan::META_JSON)).unwrap_or_default();
            TargetSection {
                id,
                warnings: health.warnings,
                images: image(&dir.join("diagnostics").join(TRAINING_LOSS_PNG))
                    .into_iter()
                    .collect(),
            }
        })
        .collect()
}

/// The benchmark files of the report's targets and runs that exist and parse.
fn benchmark_rows(store: &Path, rows: &[RunRow]) -> Vec<BenchmarkRow> {
    let mut jobs: Vec<(&str, String)> = Vec::new();
    for row in rows {
        let target = ("build_target", row.target_id.clone());
        if !jobs.contains(&target) {
            jobs.push(target);
        }
    }
    for row in rows {
        let run = run_name(row).replacen('/', ".", 1);
        jobs.push(("run_sampler", run));
    }
    jobs.into_iter()
        .filter_map(|(rule, key)| {
            let bench = benchmark::read(&benchmark::path(store, rule, &key))?;
            Some(BenchmarkRow {
                rule: rule.into(),
                job: key,
                bench,
            })
        })
        .collect()
}

fn unfinished_line(u: &Unfinished) -> String {
    let what = match &u.run_name {
        Some(run) => format!("{}/{run}", u.target_id),
        None => format!("{} (target)", u.target_id),
    };
    format!("{what}: {}", u.status.describe())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{StoreBuilder, TempDir};

    #[test]
    fn report_has_a_row_and_a_section_per_run_and_inlines_the_plots() {
        let tmp = TempDir::new("html-report");
        let s = StoreBuilder::new(tmp.path());
        let a = s.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        s.finished_run(&a, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        s.finished_run_with(
            &a,
            "run_sgld_00000002",
            serde_json::json!({"llc_mean": 6.0, "warnings": ["R-hat 1.3 > 1.01: <b>chains</b> disagree"]}),
            &[vec![6.0; 10]],
        );
        s.started_run(&a, "run_mclmc_00000003");
        std::fs::create_dir_all(a.join("diagnostics")).unwrap();
        std::fs::write(a.join("diagnostics").join(TRAINING_LOSS_PNG), "loss curve").unwrap();
        benchmark::write(
            &benchmark::path(
                tmp.path(),
                "run_sampler",
                "tgt_aaaaaaaaaaaa.run_hmc_00000001",
            ),
            &benchmark::Benchmark {
                wall: std::time::Duration::from_secs(3),
                ..Default::default()
            },
        )
        .unwrap();
        let config = tmp.path().join("experiments.yaml");
        std::fs::write(&config, "store_root: runs # <script>alert(1)</script>\n").unwrap();
        let output = tmp.path().join("out").join("report.html");
        let args = ReportArgs {
            runs_root: tmp.path().to_path_buf(),
            output: output.clone(),
            all: true,
            scope: None,
            configfile: Some(config),
        };
        let mut said = Vec::new();
        run(&args, &mut said).unwrap();
        let html = std::fs::read_to_string(&output).unwrap();
        assert_eq!(html.matches("<tr class=\"run").count(), 2);
        assert_eq!(html.matches("<tr class=\"run unhealthy\">").count(), 1);
        assert_eq!(html.matches("class=\"run-section\"").count(), 2);
        // The test store's trace.png files are stand-ins; their bytes are inlined as they are.
        let stand_in = base64::encode(b"png of run_hmc_00000001");
        assert!(html.contains(&format!("data:image/png;base64,{stand_in}")));
        let loss = base64::encode(b"loss curve");
        assert!(
            html.contains(&format!("data:image/png;base64,{loss}")),
            "training loss"
        );
        assert!(html.contains("&lt;b&gt;chains&lt;/b&gt;") && !html.contains("<b>chains"));
        assert!(html.contains("# &lt;script&gt;alert(1)"));
        assert!(
            html.contains("tgt_aaaaaaaaaaaa.run_hmc_00000001"),
            "benchmark row"
        );
        assert!(html.contains("run_mclmc_00000003: not finished"));
        assert!(String::from_utf8(said).unwrap().contains("report.html"));
    }
}
