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
//!
//! Or, when the output's name ends in `.zip` (as `snakemake --report report.zip`), as a zip
//! archive (`archive.rs`): a folder named after the file, holding `report.html` and the plots as
//! files under `plots/`, which the page links and the browser loads as they scroll into view.
//! Why: a single file carries every plot of the sweep in base64, about 680 KiB per run (a sweep
//! of 200 runs made a 132 MiB page, which a browser must parse whole before it shows anything);
//! the archive is a quarter smaller, its page a few hundred KiB, and writing it holds one plot
//! in memory at a time.

mod archive;
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

    /// The HTML file to write; a name ending in `.zip` writes a zip archive of the page and its
    /// plots as files instead (for large sweeps, as `snakemake --report report.zip`).
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
    let mut plots = Plots::new(&args.output);
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
        runs: rows
            .iter()
            .map(|row| run_section(row, &mut plots))
            .collect(),
        targets: target_sections(&rows, &mut plots),
        benchmarks: benchmark_rows(&args.runs_root, &rows),
        unfinished: unfinished.iter().map(unfinished_line).collect(),
        notes,
    };
    let html = page::render(&page);
    let (bytes, opening) = match &plots.zip {
        None => {
            files::write_atomic(&args.output, html.as_bytes())?;
            (html.len() as u64, String::new())
        }
        Some(zipped) => (
            archive::write(&args.output, zipped, &html)?,
            format!("; unzip it and open {}/{}", zipped.folder, archive::PAGE),
        ),
    };
    let images = page.runs.iter().map(|r| r.images.len()).sum::<usize>()
        + page.targets.iter().map(|t| t.images.len()).sum::<usize>();
    writeln!(
        out,
        "Wrote {} ({} finished run(s), {images} plot(s), {} KiB){opening}",
        args.output.display(),
        rows.len(),
        bytes / 1024
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

fn run_section(row: &RunRow, plots: &mut Plots) -> RunSection {
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
        images: run_images(&row.run_dir.join("diagnostics"), &run_name(row), plots),
    }
}

/// The PNGs of a run's `diagnostics/`: the known plots in reading order, then any others by
/// name. Unreadable files are left out (a report never fails over one picture).
fn run_images(dir: &Path, run: &str, plots: &mut Plots) -> Vec<Image> {
    let mut names = super::promote::plots_in(dir);
    let rank = |n: &String| {
        RUN_PLOTS
            .iter()
            .position(|p| p == n)
            .unwrap_or(RUN_PLOTS.len())
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names
        .iter()
        .filter_map(|n| plots.image(&dir.join(n), run))
        .collect()
}

/// Turns plot files into the page's images: inlined, or (for a zip report) listed as members
/// of the archive and linked.
struct Plots {
    zip: Option<archive::Archive>,
}

impl Plots {
    fn new(output: &Path) -> Plots {
        let is_zip = output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        Plots {
            zip: is_zip.then(|| archive::Archive::new(output)),
        }
    }

    /// The plot at `path`, shown in the section of `owner` (`tgt_…/run_…` or `tgt_…`).
    fn image(&mut self, path: &Path, owner: &str) -> Option<Image> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        match &mut self.zip {
            None => Some(Image::inline(name, std::fs::read(path).ok()?)),
            Some(zipped) => {
                let header = png_header(path)?;
                let href = zipped.add(owner, &name, path);
                Some(Image::file(name, href, &header))
            }
        }
    }
}

/// A file's first 24 bytes (a PNG's signature and its header's width and height), or fewer
/// if it is shorter; `None` if it cannot be read.
fn png_header(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut header = Vec::with_capacity(24);
    std::fs::File::open(path)
        .ok()?
        .take(24)
        .read_to_end(&mut header)
        .ok()?;
    Some(header)
}

/// One section per target with runs in the report, in the order of the rows.
fn target_sections(rows: &[RunRow], plots: &mut Plots) -> Vec<TargetSection> {
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
            let images = plots
                .image(&dir.join("diagnostics").join(TRAINING_LOSS_PNG), &id)
                .into_iter()
                .collect();
            TargetSection {
                id,
                warnings: health.warnings,
                images,
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

    /// `report --all` of the store at `store` into `output`.
    fn whole_store(store: &Path, output: &Path, configfile: Option<PathBuf>) -> ReportArgs {
        ReportArgs {
            runs_root: store.to_path_buf(),
            output: output.to_path_buf(),
            all: true,
            scope: None,
            configfile,
        }
    }

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
        let mut said = Vec::new();
        run(&whole_store(tmp.path(), &output, Some(config)), &mut said).unwrap();
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

    #[test]
    fn a_zip_report_links_its_plots_as_files_in_the_archive() {
        let tmp = TempDir::new("html-report-zip");
        let s = StoreBuilder::new(tmp.path());
        let a = s.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        let hmc = s.finished_run(&a, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        s.finished_run(&a, "run_sgld_00000002", 6.0, "2026-01-01T00:00:00Z");
        std::fs::create_dir_all(a.join("diagnostics")).unwrap();
        std::fs::write(a.join("diagnostics").join(TRAINING_LOSS_PNG), "loss curve").unwrap();
        // A plot name from someone else's store: kept, under a name that stays in the folder.
        std::fs::write(hmc.join("diagnostics").join(".. <b>.png"), "odd").unwrap();
        let output = tmp.path().join("out").join("sweep.zip");
        let mut said = Vec::new();
        run(&whole_store(tmp.path(), &output, None), &mut said).unwrap();
        let said = String::from_utf8(said).unwrap();
        assert!(
            said.contains("unzip it and open sweep/report.html"),
            "{said}"
        );

        let mut zip = ::zip::ZipArchive::new(std::fs::File::open(&output).unwrap()).unwrap();
        let mut read = |name: &str| -> Vec<u8> {
            let mut member = zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut member, &mut bytes).unwrap();
            bytes
        };
        let html = String::from_utf8(read("sweep/report.html")).unwrap();
        assert!(!html.contains("data:image"), "nothing inlined");
        let links: Vec<&str> = html
            .split("src=\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        // Per run its stand-in trace.png, the odd file beside one of them, the training loss.
        assert_eq!(links.len(), 4, "{links:?}");
        for link in &links {
            assert!(link.starts_with("plots/") && !link.contains(".."), "{link}");
        }
        assert!(links.contains(&"plots/tgt_aaaaaaaaaaaa/run_hmc_00000001/trace.png"));
        assert!(links.contains(&"plots/tgt_aaaaaaaaaaaa/run_hmc_00000001/_.__b_.png"));
        assert_eq!(
            read("sweep/plots/tgt_aaaaaaaaaaaa/run_hmc_00000001/trace.png"),
            b"png of run_hmc_00000001"
        );
        assert_eq!(
            read("sweep/plots/tgt_aaaaaaaaaaaa/run_hmc_00000001/_.__b_.png"),
            b"odd"
        );
        assert_eq!(
            read(&format!("sweep/plots/tgt_aaaaaaaaaaaa/{TRAINING_LOSS_PNG}")),
            b"loss curve"
        );
        // Every link is a member, and nothing else is.
        let names: Vec<String> = zip.file_names().map(String::from).collect();
        assert_eq!(names.len(), links.len() + 1, "{names:?}");
        for link in links {
            assert!(
                names.contains(&format!("sweep/{link}")),
                "{link} in {names:?}"
            );
        }
    }
}
