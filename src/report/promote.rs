//! `lambda-hat promote gallery|single` (also the `lambda-hat-promote` binary): copy one
//! representative plot per sampler out of the store into a gallery folder, and write a Markdown
//! snippet showing them with their LLC estimates.
//!
//! Data enters from the store: finished runs (via `scan`), their `analysis.json`
//! numbers and their plot files (`run_…/diagnostics/<plot-name>`). It leaves as
//! `OUTDIR/<sampler>.png` files and a snippet between the `snippet::BEGIN`/`END`
//! markers, spliced into `--snippet-out` (replacing an earlier one in place) or printed.
//!
//! The representative run of a sampler is its newest *healthy* run (healthy, on a target not
//! known to be unconverged) by `analysis.json`'s `created_at`, or its newest finished run when
//! none is healthy (ties and unparseable dates: the larger run directory name wins, so the
//! choice is deterministic). An unhealthy run shown is marked `"⚠ unhealthy: <first warning>"` in
//! the snippet's table, caption and image label, so a gallery never passes it off as sound.
//!
//! A gallery shows one target, so its samplers are compared on the same posterior: `--target`,
//! else the target with runs of the most of the requested samplers (all samplers when none is
//! requested), then with healthy runs of the most of them, the newest run breaking ties. When a run has no
//! `diagnostics/trace.png` but has its `trace.npz`, the trace plot is drawn from it, so stores
//! from before the worker drew plots still promote.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, FixedOffset};

use super::plots::{TRACE_PNG, plot_trace};
use super::scan::{self, ANALYSIS_JSON, TRACE_NPZ, healthy_on_converged};
use super::{ReportError, files, snippet, trace_npz};
use crate::store::health::TargetHealthFields;
use crate::store::record::RunRecord;

/// Flags shared by both subcommands: where the gallery goes.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Folder for the promoted images (`<sampler>.png`).
    #[arg(long, value_name = "DIR", default_value = "runs/promotion")]
    pub outdir: PathBuf,

    /// Which plot of each run to promote, a file name in its `diagnostics/` folder.
    #[arg(long, value_name = "NAME", default_value = TRACE_PNG)]
    pub plot_name: String,

    /// Markdown file to put the gallery snippet in (replacing an earlier one in place);
    /// without it the snippet is printed.
    #[arg(long, value_name = "FILE")]
    pub snippet_out: Option<PathBuf>,
}

/// `promote gallery`: one representative run per sampler.
#[derive(Debug, Clone, clap::Args)]
pub struct GalleryArgs {
    /// The store to read. `lambda-hat promote` defaults to the experiments file's
    /// `store_root`; `lambda-hat-promote` reads no experiments file and defaults to `runs`.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_root: PathBuf,

    /// Samplers to promote, comma-separated (default: every sampler with a finished run).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub samplers: Vec<String>,

    /// The target whose runs are shown (e.g. `tgt_0123456789ab`); default: the target with runs
    /// of the most requested samplers, the newest run breaking ties.
    #[arg(long, value_name = "ID")]
    pub target: Option<String>,

    /// Choose among every run in the store, not only those of the sweep the experiments file
    /// (`--configfile`) names.
    #[arg(long)]
    pub all: bool,

    /// The sweep's runs (set from the experiments file unless `--all`); `None`: the whole store.
    #[arg(skip)]
    pub scope: Option<super::Scope>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `promote single`: one given run directory.
#[derive(Debug, Clone, clap::Args)]
pub struct SingleArgs {
    /// The run directory, e.g. `runs/targets/tgt_0123456789ab/run_hmc_0123abcd`.
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum PromoteCommand {
    /// Promote the newest finished run of each sampler into a gallery.
    Gallery(GalleryArgs),
    /// Promote one run directory.
    Single(SingleArgs),
}

/// `lambda-hat promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    #[command(subcommand)]
    pub command: PromoteCommand,
}

/// A run chosen for the gallery and where its image went.
#[derive(Debug, Clone)]
pub struct Promoted {
    pub sampler: String,
    pub target_id: String,
    pub run_name: String,
    pub run_dir: PathBuf,
    pub analysis: RunRecord,
    /// Why the run is not sound (its first warning), or `None` when it is healthy.
    pub unhealthy: Option<String>,
    /// `OUTDIR/<sampler>.png`.
    pub image: PathBuf,
}

/// Runs `lambda-hat promote`; progress lines (and the snippet, without `--snippet-out`) go to
/// `out`.
pub fn run(args: &PromoteArgs, out: &mut dyn Write) -> Result<Vec<Promoted>, ReportError> {
    match &args.command {
        PromoteCommand::Gallery(g) => gallery(g, out),
        PromoteCommand::Single(s) => single(s, out),
    }
}

/// A run before its plot is copied.
struct Candidate {
    sampler: String,
    target_id: String,
    run_name: String,
    run_dir: PathBuf,
    analysis: RunRecord,
    unhealthy: Option<String>,
}

fn created_at(a: &RunRecord) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(a.created_at.as_deref()?).ok()
}

fn join_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// `promote gallery`.
pub fn gallery(args: &GalleryArgs, out: &mut dyn Write) -> Result<Vec<Promoted>, ReportError> {
    check_plot_name(&args.output.plot_name)?;
    let mut scan = scan::scan(&args.runs_root)?;
    if let Some(scope) = &args.scope {
        scope.apply(&mut scan, &args.runs_root);
    }
    let mut runs = scan.finished;
    if runs.is_empty() {
        return Err(ReportError::NoFinishedRuns {
            root: args.runs_root.clone(),
        });
    }
    let requested: Vec<&str> = args
        .samplers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let target = match &args.target {
        Some(t) => t.clone(),
        None => default_target(&runs, &requested),
    };
    let mut with_runs: Vec<String> = runs.iter().map(|r| r.meta.target_id.clone()).collect();
    with_runs.dedup();
    runs.retain(|r| r.meta.target_id == target);
    if runs.is_empty() {
        return Err(ReportError::UnknownTarget {
            target: target.clone(),
            root: args.runs_root.clone(),
            available: join_names(&with_runs),
        });
    }

    let mut available: Vec<String> = runs.iter().map(|r| r.sampler.clone()).collect();
    available.sort();
    available.dedup();
    let mut wanted: Vec<String> = Vec::new();
    for name in args
        .samplers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if !wanted.iter().any(|w| w == name) {
            wanted.push(name.to_string());
        }
    }
    if wanted.is_empty() {
        wanted = available.clone();
    }
    let missing: Vec<&String> = wanted.iter().filter(|w| !available.contains(w)).collect();
    if !missing.is_empty() {
        return Err(ReportError::UnknownSampler {
            missing: join_names(missing),
            root: args.runs_root.clone(),
            scope: format!(" for target {target}"),
            available: join_names(&available),
        });
    }

    let chosen: Vec<Candidate> = wanted
        .iter()
        .map(|sampler| {
            // Healthy first, then newest: `false < true` in the key.
            let newest = runs
                .iter()
                .filter(|r| &r.sampler == sampler)
                .max_by(|a, b| {
                    (
                        healthy_on_converged(a),
                        created_at(&a.analysis),
                        &a.run_name,
                    )
                        .cmp(&(
                            healthy_on_converged(b),
                            created_at(&b.analysis),
                            &b.run_name,
                        ))
                })
                .expect("every wanted sampler has a run");
            Candidate {
                sampler: sampler.clone(),
                target_id: newest.meta.target_id.clone(),
                run_name: newest.run_name.clone(),
                run_dir: newest.run_dir.clone(),
                analysis: newest.analysis.clone(),
                unhealthy: unhealthy_reason(
                    &newest.analysis,
                    newest.meta.health.not_converged_reason(),
                ),
            }
        })
        .collect();
    let source = format!(
        "Newest healthy run of each sampler in `{}`, target `{target}` (the newest finished one, \
         marked, where none is healthy).",
        args.runs_root.display(),
    );
    publish(chosen, &args.output, &source, out)
}

/// The target a gallery shows by default: the one with runs of the most `requested` samplers
/// (of the most samplers when none is requested); among those, the one with a healthy run of
/// the most of them (a gallery of a target whose runs are all unhealthy, when another has
/// healthy ones, shows the worst of the store), then the one with the newest run (then the
/// larger ID, so the choice is deterministic).
fn default_target(runs: &[scan::FinishedRun], requested: &[&str]) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    #[derive(Default)]
    struct Target<'a> {
        samplers: BTreeSet<&'a str>,
        healthy: BTreeSet<&'a str>,
        newest: Option<DateTime<FixedOffset>>,
    }
    let mut per_target: BTreeMap<&str, Target> = BTreeMap::new();
    for r in runs {
        let entry = per_target.entry(&r.meta.target_id).or_default();
        if requested.is_empty() || requested.contains(&r.sampler.as_str()) {
            entry.samplers.insert(&r.sampler);
            if healthy_on_converged(r) {
                entry.healthy.insert(&r.sampler);
            }
        }
        entry.newest = entry.newest.max(created_at(&r.analysis));
    }
    per_target
        .into_iter()
        .max_by_key(|(id, t)| (t.samplers.len(), t.healthy.len(), t.newest, *id))
        .map(|(id, _)| id.to_string())
        .unwrap_or_default()
}

/// `promote single`.
pub fn single(args: &SingleArgs, out: &mut dyn Write) -> Result<Vec<Promoted>, ReportError> {
    check_plot_name(&args.output.plot_name)?;
    let dir = &args.run_dir;
    let not_a_run = |reason: &str| ReportError::NotARunDir {
        path: dir.clone(),
        reason: reason.to_string(),
    };
    if !dir.is_dir() {
        return Err(not_a_run("it does not exist or is not a directory"));
    }
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    // Canonical, so that `.` or a trailing `..` still yield the real names.
    let real = dir.canonicalize().map_err(|source| ReportError::Read {
        path: dir.clone(),
        source,
    })?;
    let run_name = name_of(&real).unwrap_or_default();
    let sampler = scan::sampler_of(&run_name)
        .ok_or_else(|| not_a_run("its name is not run_<sampler>_<hash>"))?
        .to_string();
    let analysis_path = dir.join(ANALYSIS_JSON);
    if !analysis_path.exists() {
        return Err(not_a_run(
            "it has no analysis.json (the run has not finished)",
        ));
    }
    let analysis: RunRecord = scan::read_json(&analysis_path)?;
    // The target's meta.json is read only for its convergence: an unreadable one is not this
    // run's problem to report here.
    let target_reason = real
        .parent()
        .and_then(|t| scan::read_json::<TargetHealthFields>(&t.join(scan::META_JSON)).ok())
        .and_then(|m| m.not_converged_reason());
    let candidate = Candidate {
        sampler,
        target_id: real.parent().and_then(name_of).unwrap_or_default(),
        run_name,
        run_dir: dir.clone(),
        unhealthy: unhealthy_reason(&analysis, target_reason),
        analysis,
    };
    let source = format!("Run `{}`.", dir.display());
    publish(vec![candidate], &args.output, &source, out)
}

/// The run's first warning, else its target's not-converged reason; `None` when healthy.
fn unhealthy_reason(analysis: &RunRecord, target_reason: Option<String>) -> Option<String> {
    analysis.health.first_warning().or(target_reason)
}

/// `--plot-name` is joined to a run directory, so it must be a plain file name.
fn check_plot_name(name: &str) -> Result<(), ReportError> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(ReportError::PlotMissing {
            path: PathBuf::from(name),
            available: "--plot-name must be a file name such as trace.png, not a path".into(),
        }),
    }
}

/// Copies each candidate's plot into the gallery and writes the snippet.
fn publish(
    chosen: Vec<Candidate>,
    output: &OutputArgs,
    source: &str,
    out: &mut dyn Write,
) -> Result<Vec<Promoted>, ReportError> {
    // Every plot is looked for before the first is copied: a sampler without the plot must not
    // leave a gallery with the others' plots and no snippet.
    for c in &chosen {
        plot_available(c, &output.plot_name)?;
    }
    files::create_dir(&output.outdir)?;
    let extension = Path::new(&output.plot_name)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    let mut promoted = Vec::new();
    for c in chosen {
        let image = output.outdir.join(format!("{}.{extension}", c.sampler));
        let from = copy_plot(&c, &output.plot_name, &image)?;
        writeln!(out, "Promoted {} -> {}", from, image.display()).map_err(output_error)?;
        promoted.push(Promoted {
            sampler: c.sampler,
            target_id: c.target_id,
            run_name: c.run_name,
            run_dir: c.run_dir,
            analysis: c.analysis,
            unhealthy: c.unhealthy,
            image,
        });
    }

    match &output.snippet_out {
        Some(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            files::create_dir(&dir)?;
            let body = snippet_body(&promoted, &dir, &output.plot_name, source);
            let existing = match fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(source) => {
                    return Err(ReportError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            };
            let text = snippet::splice(&existing, &body, path)?;
            files::write_atomic(path, text.as_bytes())?;
            writeln!(out, "Wrote gallery snippet to {}", path.display()).map_err(output_error)?;
        }
        None => {
            let body = snippet_body(&promoted, Path::new("."), &output.plot_name, source);
            write!(out, "\n{}", snippet::wrap(&body)).map_err(output_error)?;
        }
    }
    Ok(promoted)
}

fn output_error(source: std::io::Error) -> ReportError {
    ReportError::Write {
        path: PathBuf::from("<standard output>"),
        source,
    }
}

/// Whether [`copy_plot`] will find the run's plot (a file, or the llc draws a trace plot is
/// drawn from); the error it would give when not.
fn plot_available(c: &Candidate, plot_name: &str) -> Result<(), ReportError> {
    let diagnostics = c.run_dir.join("diagnostics");
    let file = [diagnostics.join(plot_name), c.run_dir.join(plot_name)]
        .iter()
        .any(|p| p.is_file());
    if file || (plot_name == TRACE_PNG && c.run_dir.join(TRACE_NPZ).is_file()) {
        return Ok(());
    }
    Err(ReportError::PlotMissing {
        path: diagnostics.join(plot_name),
        available: join_names(&plots_in(&diagnostics)),
    })
}

/// Copies the run's plot to `image`; returns where it came from, for the progress line.
fn copy_plot(c: &Candidate, plot_name: &str, image: &Path) -> Result<String, ReportError> {
    let diagnostics = c.run_dir.join("diagnostics");
    for from in [diagnostics.join(plot_name), c.run_dir.join(plot_name)] {
        if from.is_file() {
            files::copy_atomic(&from, image)?;
            return Ok(from.display().to_string());
        }
    }
    let trace = c.run_dir.join(TRACE_NPZ);
    if plot_name == TRACE_PNG && trace.is_file() {
        let llc = trace_npz::read_chains(&trace, "llc")?;
        let stat = |x: Option<f64>| x.unwrap_or(f64::NAN);
        plot_trace(
            image,
            &format!("{}/{}", c.target_id, c.run_name),
            &llc,
            stat(c.analysis.r_hat),
            stat(c.analysis.ess),
        )?;
        return Ok(format!("{} (drawn from its llc)", trace.display()));
    }
    Err(ReportError::PlotMissing {
        path: diagnostics.join(plot_name),
        available: join_names(&plots_in(&diagnostics)),
    })
}

/// The names of the PNG files in `dir`, sorted (none when it cannot be read).
pub(super) fn plots_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

/// `to` relative to the folder `from_dir`, both resolved on disk; falls back to `to` as given
/// when either cannot be resolved.
fn relative_path(from_dir: &Path, to: &Path) -> PathBuf {
    let (Ok(from), Ok(to_abs)) = (from_dir.canonicalize(), to.canonicalize()) else {
        return to.to_path_buf();
    };
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to_abs.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for part in &to_parts[common..] {
        rel.push(part);
    }
    rel
}

/// A Markdown link target: forward slashes, and `<…>` when it has spaces.
fn markdown_path(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let joined = parts.join("/");
    if joined.contains(' ') {
        format!("<{joined}>")
    } else {
        joined
    }
}

fn fmt_number(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "n/a".into(),
    }
}

/// The gallery in Markdown: a table of the numbers, then each image with a caption. Image
/// paths are relative to `snippet_dir`, where the snippet will live.
fn snippet_body(
    promoted: &[Promoted],
    snippet_dir: &Path,
    plot_name: &str,
    source: &str,
) -> String {
    let mut md = String::new();
    md.push_str(source);
    md.push_str("\n\n| sampler | LLC (llc_mean) | SEM (llc_sem) | R-hat | health | run |\n");
    md.push_str("|---|---:|---:|---:|---|---|\n");
    for p in promoted {
        let a = &p.analysis;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}/{}` |\n",
            p.sampler,
            fmt_number(a.llc_mean, 3),
            fmt_number(a.llc_sem, 3),
            fmt_number(a.r_hat, 3),
            if p.unhealthy.is_some() {
                UNHEALTHY
            } else {
                "ok"
            },
            p.target_id,
            p.run_name
        ));
    }
    for p in promoted {
        let a = &p.analysis;
        let (mark, label) = match &p.unhealthy {
            Some(why) => (format!("\n\n{UNHEALTHY}: {why}"), format!(" ({UNHEALTHY})")),
            None => (String::new(), String::new()),
        };
        md.push_str(&format!(
            "\n**{}**: LLC {} ± {} (SEM), R-hat {}{mark}\n\n![{} {}{label}]({})\n",
            p.sampler,
            fmt_number(a.llc_mean, 3),
            fmt_number(a.llc_sem, 3),
            fmt_number(a.r_hat, 3),
            p.sampler,
            plot_name,
            markdown_path(&relative_path(snippet_dir, &p.image)),
        ));
    }
    md
}

/// The mark of a run that failed a health check, in the snippet.
const UNHEALTHY: &str = "⚠ unhealthy";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{StoreBuilder, TempDir};

    fn store(tmp: &TempDir) -> (PathBuf, PathBuf) {
        let s = StoreBuilder::new(&tmp.path().join("runs"));
        let a = s.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        let b = s.target("tgt_bbbbbbbbbbbb", 2, &[8, 8], 120, 5000, 43);
        s.finished_run(&a, "run_hmc_00000001", 3.0, "2026-01-01T10:00:00Z");
        // Newest hmc, by created_at (not by name, not by directory order).
        s.finished_run(&b, "run_hmc_00000000", 4.0, "2026-01-03T10:00:00+02:00");
        s.finished_run(&a, "run_sgld_00000003", 5.0, "2026-01-02T10:00:00Z");
        s.started_run(&b, "run_mclmc_00000004");
        (a, b)
    }

    fn gallery_args(tmp: &TempDir, samplers: &[&str]) -> GalleryArgs {
        GalleryArgs {
            runs_root: tmp.path().join("runs"),
            samplers: samplers.iter().map(|s| s.to_string()).collect(),
            target: None,
            all: false,
            scope: None,
            output: OutputArgs {
                outdir: tmp.path().join("results").join("x"),
                plot_name: TRACE_PNG.into(),
                snippet_out: Some(tmp.path().join("results").join("README.md")),
            },
        }
    }

    #[test]
    fn gallery_twice_leaves_one_snippet_and_keeps_the_readme() {
        let tmp = TempDir::new("promote-twice");
        store(&tmp);
        let readme = tmp.path().join("results").join("README.md");
        fs::create_dir_all(readme.parent().unwrap()).unwrap();
        fs::write(&readme, "# Sweep 2024-01\n\nHand-written notes.\n").unwrap();
        let args = gallery_args(&tmp, &["hmc", "sgld"]);

        // Target a is the only one with both samplers: its runs, not b's newer hmc run.
        let promoted = gallery(&args, &mut Vec::new()).unwrap();
        assert_eq!(promoted[0].run_name, "run_hmc_00000001");
        assert_eq!(promoted[1].run_name, "run_sgld_00000003");
        assert!(promoted.iter().all(|p| p.target_id == "tgt_aaaaaaaaaaaa"));
        let hmc_png = tmp.path().join("results/x/hmc.png");
        assert_eq!(
            fs::read_to_string(&hmc_png).unwrap(),
            "png of run_hmc_00000001"
        );
        let first = fs::read_to_string(&readme).unwrap();
        assert!(first.starts_with("# Sweep 2024-01\n\nHand-written notes.\n\n"));
        assert!(first.contains("![hmc trace.png](x/hmc.png)"), "{first}");
        assert!(
            first.contains("| hmc | 3.000 | 0.030 | 1.010 | ok |"),
            "{first}"
        );
        assert!(!first.contains("unhealthy"), "{first}");

        gallery(&args, &mut Vec::new()).unwrap();
        let second = fs::read_to_string(&readme).unwrap();
        assert_eq!(second, first);
        assert_eq!(second.matches(snippet::BEGIN).count(), 1);
        assert_eq!(second.matches(snippet::END).count(), 1);
    }

    #[test]
    fn the_default_target_is_one_with_healthy_runs_when_there_is_one() {
        let tmp = TempDir::new("promote-healthy-target");
        let s = StoreBuilder::new(&tmp.path().join("runs"));
        let a = s.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        let z = s.target("tgt_zzzzzzzzzzzz", 2, &[8, 8], 120, 5000, 43);
        for (sampler, n) in [("hmc", 1), ("sgld", 2)] {
            s.finished_run(
                &a,
                &format!("run_{sampler}_0000000{n}"),
                3.0,
                "2026-01-01T00:00:00Z",
            );
            // Newer, on the larger ID, both samplers: chosen before, though all unhealthy.
            s.finished_run_with(
                &z,
                &format!("run_{sampler}_0000001{n}"),
                serde_json::json!({"created_at": "2026-03-01T00:00:00Z", "healthy": false,
                                   "warnings": ["R-hat 1.230 > 1.01: the chains disagree"]}),
                &[vec![1.0; 10]],
            );
        }
        let promoted = gallery(&gallery_args(&tmp, &["hmc", "sgld"]), &mut Vec::new()).unwrap();
        assert!(
            promoted.iter().all(|p| p.target_id == "tgt_aaaaaaaaaaaa"),
            "{promoted:?}"
        );
        assert!(promoted.iter().all(|p| p.unhealthy.is_none()));
    }

    #[test]
    fn gallery_prefers_the_newest_healthy_run_and_marks_an_unhealthy_one() {
        let tmp = TempDir::new("promote-health");
        let (a, _) = store(&tmp);
        let s = StoreBuilder::new(&tmp.path().join("runs"));
        // Newer than every hmc run, but unhealthy: not chosen.
        s.finished_run_with(
            &a,
            "run_hmc_00000005",
            serde_json::json!({"created_at": "2026-02-01T00:00:00Z", "healthy": false,
                               "warnings": ["R-hat 1.230 > 1.01: the chains disagree"]}),
            &[vec![1.0; 10]],
        );
        // Newer sgld, healthy itself, but its target is not a converged minimum.
        let c = s.target("tgt_cccccccccccc", 2, &[8, 8], 120, 5000, 44);
        s.merge_meta(
            &c,
            serde_json::json!({"convergence": {"converged": false},
                               "warnings": ["target not converged: gradient norm 0.3"]}),
        );
        s.finished_run_with(
            &c,
            "run_sgld_00000006",
            serde_json::json!({"created_at": "2026-02-01T00:00:00Z"}),
            &[vec![1.0; 10]],
        );
        let promoted = gallery(&gallery_args(&tmp, &["hmc", "sgld"]), &mut Vec::new()).unwrap();
        assert_eq!(promoted[0].run_name, "run_hmc_00000001");
        assert_eq!(promoted[1].run_name, "run_sgld_00000003");
        assert!(promoted.iter().all(|p| p.unhealthy.is_none()));

        // Only unhealthy hmc runs on target a: the newest is shown, and marked.
        let mut args = gallery_args(&tmp, &["hmc"]);
        args.target = Some("tgt_aaaaaaaaaaaa".into());
        fs::write(
            a.join("run_hmc_00000001").join("analysis.json"),
            r#"{"llc_mean": 3.0, "warnings": ["bulk ESS 12 < 100: run more draws"]}"#,
        )
        .unwrap();
        let promoted = gallery(&args, &mut Vec::new()).unwrap();
        assert_eq!(promoted[0].run_name, "run_hmc_00000005");
        let md = fs::read_to_string(tmp.path().join("results/README.md")).unwrap();
        assert!(
            md.contains("| 1.000 | ⚠ unhealthy | `tgt_aaaaaaaaaaaa"),
            "{md}"
        );
        assert!(
            md.contains("⚠ unhealthy: R-hat 1.230 > 1.01: the chains disagree"),
            "{md}"
        );
        assert!(md.contains("![hmc trace.png (⚠ unhealthy)]"), "{md}");

        // `single` marks a run on an unconverged target.
        let one = SingleArgs {
            run_dir: c.join("run_sgld_00000006"),
            output: OutputArgs {
                outdir: tmp.path().join("one"),
                plot_name: TRACE_PNG.into(),
                snippet_out: None,
            },
        };
        let mut out = Vec::new();
        let promoted = single(&one, &mut out).unwrap();
        assert_eq!(
            promoted[0].unhealthy.as_deref(),
            Some("target not converged: gradient norm 0.3")
        );
    }

    #[test]
    fn sampler_without_finished_runs_is_an_error_listing_the_others() {
        let tmp = TempDir::new("promote-unknown");
        store(&tmp);
        let err = gallery(&gallery_args(&tmp, &["hmc", "mclmc"]), &mut Vec::new()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ReportError::UnknownSampler { .. }), "{msg}");
        assert!(msg.contains("sampler mclmc"), "{msg}");
        // a and b each have hmc only: b has the newer run.
        assert!(
            msg.contains("for target tgt_bbbbbbbbbbbb; samplers with finished runs: hmc."),
            "{msg}"
        );
        assert!(
            !tmp.path().join("results/x").exists(),
            "nothing written on error"
        );
    }

    #[test]
    fn target_flag_chooses_the_target() {
        let tmp = TempDir::new("promote-target");
        store(&tmp);
        let mut args = gallery_args(&tmp, &["hmc"]);
        args.target = Some("tgt_aaaaaaaaaaaa".into());
        let promoted = gallery(&args, &mut Vec::new()).unwrap();
        assert_eq!(promoted[0].run_name, "run_hmc_00000001");

        args.target = Some("tgt_cccccccccccc".into());
        let err = gallery(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("tgt_aaaaaaaaaaaa, tgt_bbbbbbbbbbbb"), "{err}");
    }

    #[test]
    fn default_samplers_are_those_with_runs_and_snippet_prints_without_file() {
        let tmp = TempDir::new("promote-default");
        store(&tmp);
        let mut args = gallery_args(&tmp, &[]);
        args.output.snippet_out = None;
        let mut out = Vec::new();
        let promoted = gallery(&args, &mut out).unwrap();
        let samplers: Vec<&str> = promoted.iter().map(|p| p.sampler.as_str()).collect();
        assert_eq!(samplers, ["hmc", "sgld"]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(snippet::BEGIN) && text.contains("| sgld | 5.000 |"),
            "{text}"
        );
    }

    #[test]
    fn single_promotes_one_run_and_draws_a_missing_trace_plot() {
        let tmp = TempDir::new("promote-single");
        let (a, _) = store(&tmp);
        let run_dir = a.join("run_sgld_00000003");
        fs::remove_dir_all(run_dir.join("diagnostics")).unwrap();
        let args = SingleArgs {
            run_dir: run_dir.clone(),
            output: OutputArgs {
                outdir: tmp.path().join("one"),
                plot_name: TRACE_PNG.into(),
                snippet_out: Some(tmp.path().join("one").join("README.md")),
            },
        };
        let promoted = single(&args, &mut Vec::new()).unwrap();
        assert_eq!(promoted[0].target_id, "tgt_aaaaaaaaaaaa");
        crate::report::testutil::assert_png(
            &tmp.path().join("one/sgld.png"),
            crate::report::style::WIDE,
        );
        let md = fs::read_to_string(tmp.path().join("one/README.md")).unwrap();
        assert!(md.contains("](sgld.png)"), "{md}");

        let mut bad = args.clone();
        bad.run_dir = a.join("run_mclmc_nope");
        assert!(single(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn missing_plot_lists_the_plots_there() {
        let tmp = TempDir::new("promote-noplot");
        store(&tmp);
        let mut args = gallery_args(&tmp, &["hmc"]);
        args.output.plot_name = "llc_convergence.png".into();
        let err = gallery(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("plots in that run: trace.png"), "{err}");
        args.output.plot_name = "../meta.json".into();
        assert!(gallery(&args, &mut Vec::new()).is_err());
    }

    #[test]
    fn a_plot_missing_for_one_sampler_copies_nothing() {
        let tmp = TempDir::new("promote-partial");
        let (a, _) = store(&tmp);
        // The gallery takes target a (it has both samplers); its hmc run has energy.png, its
        // sgld run does not.
        let diagnostics = a.join("run_hmc_00000001").join("diagnostics");
        fs::create_dir_all(&diagnostics).unwrap();
        fs::write(diagnostics.join("energy.png"), b"png").unwrap();
        let mut args = gallery_args(&tmp, &["hmc", "sgld"]);
        args.output.plot_name = "energy.png".into();
        let err = gallery(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("energy.png"), "{err}");
        assert!(
            !args.output.outdir.join("hmc.png").exists(),
            "a partial gallery was left"
        );
    }

    #[test]
    fn command_line_takes_the_flags_users_already_type() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: PromoteArgs,
        }
        let line = "promote gallery --runs-root runs --samplers hmc,sgld,mclmc \
                    --outdir results/sweep_2024_01 --snippet-out results/sweep_2024_01/README.md";
        let cli = Cli::try_parse_from(line.split_whitespace()).unwrap();
        let PromoteCommand::Gallery(g) = cli.args.command else {
            panic!("not gallery");
        };
        assert_eq!(g.samplers, ["hmc", "sgld", "mclmc"]);
        assert_eq!(g.output.plot_name, "trace.png");
        assert_eq!(
            g.output.snippet_out,
            Some(PathBuf::from("results/sweep_2024_01/README.md"))
        );
        let cli = Cli::try_parse_from(["promote", "single", "runs/targets/t/run_hmc_1"]).unwrap();
        let PromoteCommand::Single(s) = cli.args.command else {
            panic!("not single");
        };
        assert_eq!(s.output.outdir, PathBuf::from("runs/promotion"));
    }

    #[test]
    fn relative_paths_climb_out_of_the_snippet_folder() {
        let tmp = TempDir::new("promote-rel");
        let img = tmp.path().join("a/b/img.png");
        fs::create_dir_all(img.parent().unwrap()).unwrap();
        fs::write(&img, "x").unwrap();
        fs::create_dir_all(tmp.path().join("c")).unwrap();
        let rel = relative_path(&tmp.path().join("c"), &img);
        assert_eq!(markdown_path(&rel), "../a/b/img.png");
    }
}
