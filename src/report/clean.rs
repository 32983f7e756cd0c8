//! `lambda-hat clean`: find the target and run directories the current experiments file no
//! longer references, show their sizes, and delete them only when asked (`--yes`).
//!
//! Data enters as the store root and the [`Referenced`] set the caller derives from the plan
//! of the experiments file (target IDs and run directory names). It leaves as a listing on the
//! `out` writer and, with `--yes`, as deleted directories (or, with `--keep-plots`, deleted
//! `.npz` files only: traces, parameters and data, which are the bulk of a store).
//!
//! Nothing outside `<root>/targets/tgt_*` is touched, symlinks are never followed, and a run
//! of a referenced target is judged on its own, so a sampler dropped from the experiments file
//! frees its runs while the target stays. A directory is deleted only if it is lambda-hat's:
//! its `spec.json` or `meta.json` names it (`target_id`, or `run_id` for a run), or the store's
//! journal has a job of that name. Anything else under `targets/` that merely looks like
//! `tgt_*` (a user's own folder, another tool's) is listed as not lambda-hat's and kept.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ReportError;
use super::scan::{child_dirs, targets_dir};

/// `lambda-hat clean`.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanArgs {
    /// The store to clean [default: the `store_root` of the experiments file (`--configfile`,
    /// else ./config/experiments.yaml), else `runs`].
    #[arg(
        long,
        value_name = "DIR",
        default_value = "runs",
        hide_default_value = true
    )]
    pub runs_root: PathBuf,

    /// Really delete; without it, only list what would be deleted.
    #[arg(long)]
    pub yes: bool,

    /// Keep `diagnostics/`, `analysis.json` and `meta.json` (and the other small files) of
    /// unreferenced directories; delete only their traces, parameters and data (`*.npz`).
    #[arg(long)]
    pub keep_plots: bool,
}

/// What the current experiments file references (the lead derives it from the plan).
#[derive(Debug, Clone, Default)]
pub struct Referenced {
    /// Target IDs, `tgt_<12hex>`.
    pub targets: BTreeSet<String>,
    /// Run directory names, `run_<sampler>_<8hex>`.
    pub runs: BTreeSet<String>,
}

/// An unreferenced directory and the bytes removing it frees.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreferenced {
    pub path: PathBuf,
    /// `true` for a whole target (with its runs), `false` for one run of a kept target.
    pub is_target: bool,
    /// Bytes that go: the whole directory, or its `.npz` files with `--keep-plots`.
    pub bytes: u64,
}

/// What `clean` found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanReport {
    pub unreferenced: Vec<Unreferenced>,
    pub deleted: bool,
}

/// Runs `lambda-hat clean`: lists unreferenced directories and, with `--yes`, deletes them.
pub fn run(
    args: &CleanArgs,
    referenced: &Referenced,
    out: &mut dyn Write,
) -> Result<CleanReport, ReportError> {
    let targets = targets_dir(&args.runs_root)?;
    // An empty reference set means every directory goes: far more likely a bug or a wrong
    // --configfile than a wish, and not undoable.
    if referenced.targets.is_empty() {
        return Err(ReportError::NothingReferenced {
            root: args.runs_root.clone(),
        });
    }
    let unreferenced = find_unreferenced(&targets, referenced, args.keep_plots)?;
    write_listing(out, args, &unreferenced).map_err(output_error)?;
    if args.yes {
        for u in &unreferenced {
            if args.keep_plots {
                remove_npz_files(&u.path)?;
            } else {
                fs::remove_dir_all(&u.path).map_err(|source| ReportError::Delete {
                    path: u.path.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(CleanReport {
        deleted: args.yes && !unreferenced.is_empty(),
        unreferenced,
    })
}

fn find_unreferenced(
    targets: &Path,
    referenced: &Referenced,
    keep_plots: bool,
) -> Result<Vec<Unreferenced>, ReportError> {
    let mut found = Vec::new();
    let journal_keys = journal_job_keys(targets);
    for (target_id, target_dir) in child_dirs(targets, "tgt_")? {
        if !is_lambda_hats(&target_dir, "target_id", &target_id, &journal_keys) {
            continue;
        }
        if !referenced.targets.contains(&target_id) {
            found.push(Unreferenced {
                bytes: freed_bytes(&target_dir, keep_plots)?,
                path: target_dir,
                is_target: true,
            });
            continue;
        }
        for (run_name, run_dir) in child_dirs(&target_dir, "run_")? {
            let key = format!("{target_id}.{run_name}");
            if !is_lambda_hats(&run_dir, "run_id", &run_name, &journal_keys)
                && !journal_keys.contains(&key)
            {
                continue;
            }
            if !referenced.runs.contains(&run_name) {
                found.push(Unreferenced {
                    bytes: freed_bytes(&run_dir, keep_plots)?,
                    path: run_dir,
                    is_target: false,
                });
            }
        }
    }
    // With --keep-plots a directory already cleaned frees nothing; do not list it again.
    if keep_plots {
        found.retain(|u| has_npz(&u.path));
    }
    Ok(found)
}

/// The job keys (`tgt_…`, `tgt_….run_…`) of the store's journal, `targets` being
/// `<store>/targets`.
fn journal_job_keys(targets: &Path) -> BTreeSet<String> {
    let store = targets.parent().unwrap_or(targets);
    crate::store::Journal::read_all(store)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.job)
        .collect()
}

/// Whether `dir` (named `name`) is a directory lambda-hat made: its spec.json or meta.json
/// records `name` under `id_key`, or the journal knows it.
fn is_lambda_hats(dir: &Path, id_key: &str, name: &str, journal_keys: &BTreeSet<String>) -> bool {
    if journal_keys.contains(name) {
        return true;
    }
    ["spec.json", "meta.json"].iter().any(|file| {
        fs::read(dir.join(file))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v[id_key] == name)
    })
}

fn is_npz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "npz")
}

/// Files under `dir` (not following symlinks), with their sizes.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, u64)>, ReportError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|source| ReportError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| ReportError::Read {
                path: d.clone(),
                source,
            })?;
            let meta = entry.metadata().map_err(|source| ReportError::Read {
                path: entry.path(),
                source,
            })?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files.push((entry.path(), meta.len()));
            }
        }
    }
    Ok(files)
}

fn has_npz(dir: &Path) -> bool {
    files_under(dir)
        .map(|f| f.iter().any(|(p, _)| is_npz(p)))
        .unwrap_or(false)
}

fn freed_bytes(dir: &Path, keep_plots: bool) -> Result<u64, ReportError> {
    Ok(files_under(dir)?
        .iter()
        .filter(|(p, _)| !keep_plots || is_npz(p))
        .map(|(_, len)| len)
        .sum())
}

fn remove_npz_files(dir: &Path) -> Result<(), ReportError> {
    for (path, _) in files_under(dir)? {
        if is_npz(&path) {
            fs::remove_file(&path).map_err(|source| ReportError::Delete {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// `1.5 KiB`, `12.0 MiB`: binary units, as `du -h` and `ls -lh` print them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

fn output_error(source: std::io::Error) -> ReportError {
    ReportError::Write {
        path: PathBuf::from("<standard output>"),
        source,
    }
}

fn write_listing(
    out: &mut dyn Write,
    args: &CleanArgs,
    unreferenced: &[Unreferenced],
) -> std::io::Result<()> {
    let root = args.runs_root.display();
    if unreferenced.is_empty() {
        return writeln!(
            out,
            "Nothing to clean: every directory under `{root}/targets` is referenced."
        );
    }
    let what = if args.keep_plots {
        "traces, parameters and data (*.npz) of directories"
    } else {
        "directories"
    };
    writeln!(
        out,
        "Unreferenced by the current experiments file ({what}):"
    )?;
    let width = unreferenced
        .iter()
        .map(|u| u.path.display().to_string().len())
        .max()
        .unwrap_or(0);
    for u in unreferenced {
        let kind = if u.is_target { "target" } else { "run   " };
        let path = u.path.display().to_string();
        writeln!(out, "  {kind}  {path:<width$}  {:>10}", human_size(u.bytes))?;
    }
    let total: u64 = unreferenced.iter().map(|u| u.bytes).sum();
    let targets = unreferenced.iter().filter(|u| u.is_target).count();
    let runs = unreferenced.len() - targets;
    writeln!(
        out,
        "Total: {} in {targets} target and {runs} run directories.",
        human_size(total)
    )?;
    if args.yes {
        writeln!(out, "Deleted.")
    } else {
        writeln!(
            out,
            "Nothing deleted. Rerun with --yes to delete{}.",
            if args.keep_plots {
                " (--keep-plots keeps diagnostics/, analysis.json and meta.json)"
            } else {
                ", or add --keep-plots to keep plots and summaries"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{StoreBuilder, TempDir};

    /// Target A is referenced with one of its two runs; target B is not referenced at all.
    fn store(tmp: &TempDir) -> (Referenced, PathBuf, PathBuf) {
        let s = StoreBuilder::new(tmp.path());
        let a = s.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        let b = s.target("tgt_bbbbbbbbbbbb", 1, &[4], 20, 100, 2);
        s.finished_run(&a, "run_hmc_00000001", 1.0, "2026-01-01T00:00:00Z");
        s.finished_run(&a, "run_sgld_00000002", 1.0, "2026-01-01T00:00:00Z");
        s.finished_run(&b, "run_hmc_00000003", 1.0, "2026-01-01T00:00:00Z");
        fs::create_dir_all(tmp.path().join(".lambda-hat")).unwrap();
        let referenced = Referenced {
            targets: ["tgt_aaaaaaaaaaaa".to_string()].into(),
            runs: ["run_hmc_00000001".to_string()].into(),
        };
        (referenced, a, b)
    }

    fn args(tmp: &TempDir, yes: bool, keep_plots: bool) -> CleanArgs {
        CleanArgs {
            runs_root: tmp.path().to_path_buf(),
            yes,
            keep_plots,
        }
    }

    /// Every file under `dir`, relative, sorted: a snapshot to compare before and after.
    fn snapshot(dir: &Path) -> Vec<String> {
        let mut files: Vec<String> = files_under(dir)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn without_yes_nothing_is_deleted() {
        let tmp = TempDir::new("clean-dry");
        let (referenced, a, b) = store(&tmp);
        let before = snapshot(tmp.path());
        let mut out = Vec::new();
        let report = run(&args(&tmp, false, false), &referenced, &mut out).unwrap();
        assert_eq!(snapshot(tmp.path()), before);
        assert!(!report.deleted);
        let paths: Vec<&Path> = report
            .unreferenced
            .iter()
            .map(|u| u.path.as_path())
            .collect();
        assert_eq!(paths, [a.join("run_sgld_00000002").as_path(), b.as_path()]);
        assert!(report.unreferenced.iter().all(|u| u.bytes > 0));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Nothing deleted"), "{text}");
        assert!(text.contains("KiB") || text.contains(" B"), "{text}");
    }

    #[test]
    fn with_yes_only_unreferenced_directories_go() {
        let tmp = TempDir::new("clean-yes");
        let (referenced, a, b) = store(&tmp);
        run(&args(&tmp, true, false), &referenced, &mut Vec::new()).unwrap();
        assert!(!b.exists());
        assert!(!a.join("run_sgld_00000002").exists());
        assert!(a.join("run_hmc_00000001/trace.npz").exists());
        assert!(a.join("params.npz").exists() && a.join("meta.json").exists());
        assert!(tmp.path().join(".lambda-hat").exists());
        // Running again finds nothing.
        let report = run(&args(&tmp, true, false), &referenced, &mut Vec::new()).unwrap();
        assert!(report.unreferenced.is_empty());
    }

    #[test]
    fn folders_lambda_hat_did_not_make_are_never_deleted() {
        let tmp = TempDir::new("clean-foreign");
        let (referenced, _, b) = store(&tmp);
        // A user's folder that only looks like a target, and one whose spec names another ID.
        let foreign = tmp.path().join("targets/tgt_myownfolder");
        fs::create_dir_all(&foreign).unwrap();
        fs::write(foreign.join("thesis.tex"), "precious").unwrap();
        let lying = tmp.path().join("targets/tgt_cccccccccccc");
        fs::create_dir_all(&lying).unwrap();
        fs::write(
            lying.join("spec.json"),
            r#"{"target_id": "tgt_dddddddddddd"}"#,
        )
        .unwrap();
        let report = run(&args(&tmp, true, false), &referenced, &mut Vec::new()).unwrap();
        assert!(foreign.join("thesis.tex").exists() && lying.exists());
        assert!(
            !b.exists(),
            "lambda-hat's own unreferenced target still goes"
        );
        assert!(
            report
                .unreferenced
                .iter()
                .all(|u| u.path != foreign && u.path != lying)
        );
    }

    #[test]
    fn keep_plots_removes_only_npz_files() {
        let tmp = TempDir::new("clean-keep");
        let (referenced, a, b) = store(&tmp);
        let report = run(&args(&tmp, true, true), &referenced, &mut Vec::new()).unwrap();
        assert_eq!(report.unreferenced.len(), 2);
        assert_eq!(
            snapshot(&b),
            [
                "meta.json",
                "run_hmc_00000003/analysis.json",
                "run_hmc_00000003/diagnostics/trace.png",
                "run_hmc_00000003/spec.json",
                "spec.json",
            ]
        );
        let sgld = a.join("run_sgld_00000002");
        assert!(sgld.join("analysis.json").exists() && !sgld.join("trace.npz").exists());
        assert!(a.join("run_hmc_00000001/trace.npz").exists());
        // Nothing left to free: a second run lists nothing.
        let again = run(&args(&tmp, false, true), &referenced, &mut Vec::new()).unwrap();
        assert!(again.unreferenced.is_empty());
    }

    #[test]
    fn an_empty_reference_set_is_refused() {
        let tmp = TempDir::new("clean-empty");
        store(&tmp);
        let err = run(
            &args(&tmp, true, false),
            &Referenced::default(),
            &mut Vec::new(),
        );
        assert!(matches!(err, Err(ReportError::NothingReferenced { .. })));
        assert!(tmp.path().join("targets/tgt_bbbbbbbbbbbb").exists());
    }

    #[test]
    fn command_line_defaults_to_a_dry_run() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: CleanArgs,
        }
        let cli = Cli::try_parse_from(["clean"]).unwrap();
        assert!(!cli.args.yes && !cli.args.keep_plots);
        let cli = Cli::try_parse_from(["clean", "--yes", "--keep-plots"]).unwrap();
        assert!(cli.args.yes && cli.args.keep_plots);
    }

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
