//! A read-only walk over a store that sorts every sampler run directory into *finished* (its
//! `analysis.json` marker exists and parses) or *not finished* (with the reason).
//!
//! Data enters from disk: `<root>/targets/tgt_*/meta.json`, `…/run_*/analysis.json`, and the
//! incomplete markers in `<root>/.lambda-hat/incomplete/` (JSON with an `"output"` path).
//! It leaves as a [`Scan`]: finished runs with the fields the reports need, and the rest as
//! [`Unfinished`] entries, so that no run is ever silently dropped from a report.
//!
//! The files are read as the worker's own record types (`crate::store::record`), which accept
//! older stores (missing fields) and newer ones (unknown fields).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ReportError;
use crate::store::record::{RunRecord, TargetRecord};

pub const META_JSON: &str = "meta.json";
pub const ANALYSIS_JSON: &str = "analysis.json";
pub const TRACE_NPZ: &str = "trace.npz";

/// A finished run's health with its target's: healthy, and not on a target known to be
/// unconverged (unknown convergence, from older stores, does not count against it).
pub fn healthy_on_converged(run: &FinishedRun) -> bool {
    run.analysis.health.is_healthy() && run.meta.health.converged() != Some(false)
}

/// A sampler run whose `analysis.json` exists and parses, with its target's metadata.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub meta: TargetRecord,
    pub analysis: RunRecord,
    /// `<root>/targets/tgt_…/run_…`, as reached from the root the caller passed.
    pub run_dir: PathBuf,
    /// `run_<sampler>_<8hex>`.
    pub run_name: String,
    pub sampler: String,
    /// The target's and the sampler's settings as `results` columns (report::config_columns);
    /// the sampler's are missing when the run has no readable spec.json.
    pub config: Vec<(String, serde_json::Value)>,
}

/// Why a run (or a whole target, when `run_name` is `None`) has no usable result.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// An incomplete marker names it: a job started and died (`--rerun-incomplete` redoes it).
    Incomplete,
    /// No result yet and no incomplete marker: queued, running, or never started.
    NotFinished,
    /// No result, and its last attempt failed, for the reason the journal recorded.
    Failed(String),
    /// Its marker exists but cannot be used (unreadable JSON, missing target metadata, ...).
    Broken(String),
    /// Finished, but on another build of its target than the one in the store now (its
    /// recorded array hashes differ from the target's): the next sweep redoes it.
    Outdated,
}

impl Status {
    pub fn describe(&self) -> String {
        match self {
            Status::Incomplete => "incomplete (job died; rerun with --rerun-incomplete)".into(),
            Status::NotFinished => "not finished (queued, running, or not started)".into(),
            Status::Failed(why) => format!("failed: {why} (its log says more)"),
            Status::Broken(why) => format!("unusable: {why}"),
            Status::Outdated => "outdated: its target was rebuilt into other arrays after it ran \
                                 (the next sweep redoes it)"
                .into(),
        }
    }
}

/// A target or run directory without a usable result.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub target_id: String,
    /// `None` when the target itself is not built (its runs are then listed too).
    pub run_name: Option<String>,
    pub path: PathBuf,
    pub status: Status,
}

/// The runs of one sweep: `(target_id, run_name)` pairs. Reports read only these by default,
/// so one store shared by several experiments files reports each sweep on its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub runs: std::collections::HashSet<(String, String)>,
    pub targets: std::collections::HashSet<String>,
}

impl Scope {
    /// Keeps the finished and unfinished entries of the sweep, adds the sweep's runs (and
    /// targets) that have no directory under `root` yet as not finished, and returns how many
    /// finished runs of other sweeps it left out.
    pub fn apply(&self, scan: &mut Scan, root: &Path) -> usize {
        let before = scan.finished.len();
        scan.finished.retain(|r| {
            self.runs
                .contains(&(r.meta.target_id.clone(), r.run_name.clone()))
        });
        scan.unfinished.retain(|u| match &u.run_name {
            Some(run) => self.runs.contains(&(u.target_id.clone(), run.clone())),
            None => self.targets.contains(&u.target_id),
        });
        let outside = before - scan.finished.len();
        let seen: std::collections::HashSet<(&str, Option<&str>)> = scan
            .finished
            .iter()
            .map(|r| (r.meta.target_id.as_str(), Some(r.run_name.as_str())))
            .chain(
                scan.unfinished
                    .iter()
                    .map(|u| (u.target_id.as_str(), u.run_name.as_deref())),
            )
            .collect();
        let targets_dir = root.join("targets");
        let mut not_started: Vec<Unfinished> = self
            .targets
            .iter()
            .filter(|t| !targets_dir.join(t).is_dir())
            .map(|t| (t.clone(), None))
            .chain(self.runs.iter().map(|(t, r)| (t.clone(), Some(r.clone()))))
            .filter(|(t, r)| match r {
                Some(r) => !seen.contains(&(t.as_str(), Some(r.as_str()))),
                None => !seen.contains(&(t.as_str(), None)),
            })
            .map(|(target_id, run_name)| Unfinished {
                path: match &run_name {
                    Some(r) => targets_dir.join(&target_id).join(r),
                    None => targets_dir.join(&target_id),
                },
                target_id,
                run_name,
                status: Status::NotFinished,
            })
            .collect();
        not_started.sort_by(|a, b| (&a.target_id, &a.run_name).cmp(&(&b.target_id, &b.run_name)));
        scan.unfinished.extend(not_started);
        outside
    }
}

/// Everything found under a store root.
#[derive(Debug, Default)]
pub struct Scan {
    pub finished: Vec<FinishedRun>,
    pub unfinished: Vec<Unfinished>,
}

/// Checks that `root` is a store and returns its `targets/` directory.
pub fn targets_dir(root: &Path) -> Result<PathBuf, ReportError> {
    if !root.exists() {
        return Err(ReportError::StoreMissing {
            path: root.to_path_buf(),
        });
    }
    let targets = root.join("targets");
    if !targets.is_dir() {
        return Err(ReportError::NotAStore {
            path: root.to_path_buf(),
        });
    }
    Ok(targets)
}

/// The sampler name of a run directory name `run_<sampler>_<8hex>`.
pub fn sampler_of(run_name: &str) -> Option<&str> {
    let rest = run_name.strip_prefix("run_")?;
    let (sampler, _hash) = rest.rsplit_once('_')?;
    (!sampler.is_empty()).then_some(sampler)
}

/// Subdirectories of `dir` whose names start with `prefix`, sorted by name.
pub fn child_dirs(dir: &Path, prefix: &str) -> Result<Vec<(String, PathBuf)>, ReportError> {
    let entries = fs::read_dir(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReportError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // file_type() does not follow symlinks: a symlinked run is not ours to report on.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && name.starts_with(prefix) {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::BadJson {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Walks the whole store under `root`.
pub fn scan(root: &Path) -> Result<Scan, ReportError> {
    let targets = targets_dir(root)?;
    let events = crate::store::Journal::read_all(root).unwrap_or_default();
    let known = Known {
        incomplete: incomplete_markers(root),
        hashes: crate::store::output_hashes(&events),
        failures: crate::store::last_failures(&events),
        touched: crate::store::status::touched_target_files(&events),
    };
    let mut scan = Scan::default();
    for (target_id, target_dir) in child_dirs(&targets, "tgt_")? {
        scan_target(&target_id, &target_dir, &known, &mut scan)?;
    }
    Ok(scan)
}

/// What the store's private directory says about its jobs: the incomplete markers, the hash
/// of each completion marker as its job wrote it (the journal's `finished` events) and the jobs
/// whose last attempt failed, by job key (`tgt_x` or `tgt_x.run_y`). Planning reads the same
/// markers and hashes, so a run `-n` would redo is never reported as a result.
struct Known {
    incomplete: BTreeSet<(String, Option<String>)>,
    hashes: std::collections::HashMap<String, String>,
    failures: std::collections::HashMap<String, String>,
    /// The target array hashes runs were `--touch`ed with.
    touched: std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
}

impl Known {
    /// Why the marker at `path` is not the one its job wrote in the sweep, if the journal says
    /// so: edited by hand, or rewritten by a worker run by hand (README's "Worker mode"). Such
    /// a run stays in the reports, unhealthy with this warning, since `-n` plans to redo it.
    fn edited(&self, job_key: &str, path: &Path, bytes: &[u8]) -> Option<String> {
        let recorded = self.hashes.get(job_key)?;
        let now = crate::store::integrity::hash_hex(bytes);
        (&now != recorded).then(|| {
            format!(
                "{} is not the file its job wrote in the sweep (the journal recorded another \
                 hash): edited, or rewritten by a worker run by hand; the next sweep redoes it \
                 (`--touch` accepts it as it is)",
                path.display()
            )
        })
    }
}

fn scan_target(
    target_id: &str,
    target_dir: &Path,
    known: &Known,
    scan: &mut Scan,
) -> Result<(), ReportError> {
    let incomplete = &known.incomplete;
    let meta_path = target_dir.join(META_JSON);
    let meta_json: Result<serde_json::Value, String> = if meta_path.exists() {
        read_json(&meta_path).map_err(|e| e.to_string())
    } else {
        Err(format!("target {target_id} has no meta.json"))
    };
    let meta: Result<TargetRecord, String> =
        meta_json.as_ref().map_err(Clone::clone).and_then(|v| {
            serde_json::from_value(v.clone()).map_err(|e| format!("{}: {e}", meta_path.display()))
        });
    let target_config = meta_json
        .as_ref()
        .map(super::config_columns::target_columns)
        .unwrap_or_default();
    if !meta_path.exists() {
        let status = if incomplete.contains(&(target_id.to_string(), None)) {
            Status::Incomplete
        } else if let Some(why) = known.failures.get(target_id) {
            Status::Failed(why.clone())
        } else {
            Status::NotFinished
        };
        scan.unfinished.push(Unfinished {
            target_id: target_id.to_string(),
            run_name: None,
            path: target_dir.to_path_buf(),
            status,
        });
    }

    // Damaged target files: the next sweep rebuilds the target and redoes its runs (as `-n` and
    // `status` say). With an archive cut short none of them is a result; with a rewritten
    // meta.json they stand, unhealthy, as a run rewritten by hand does.
    use crate::store::status::TargetDamage;
    let damage =
        crate::store::status::target_damage(target_dir, target_id, known.hashes.get(target_id));
    let (cut_short, rewritten) = match &damage {
        Some(TargetDamage::CutShort(why)) => (Some(why.as_str()), None),
        Some(TargetDamage::Rewritten(why)) => (None, Some(why.as_str())),
        None => (None, None),
    };
    if let Some(why) = cut_short {
        scan.unfinished.push(Unfinished {
            target_id: target_id.to_string(),
            run_name: None,
            path: target_dir.to_path_buf(),
            status: Status::Broken(format!("{why} (the next sweep rebuilds the target)")),
        });
    }

    for (run_name, run_dir) in child_dirs(target_dir, "run_")? {
        let marker = (target_id.to_string(), Some(run_name.clone()));
        let analysis_path = run_dir.join(ANALYSIS_JSON);
        let status = if incomplete.contains(&marker) {
            // Even over an analysis.json: a later attempt died while rewriting the run's files.
            Status::Incomplete
        } else if !analysis_path.exists() {
            match known.failures.get(&format!("{target_id}.{run_name}")) {
                Some(why) => Status::Failed(why.clone()),
                None => Status::NotFinished,
            }
        } else {
            // Read once: parsed for the record, hashed against the journal.
            let bytes = fs::read(&analysis_path).map_err(|source| ReportError::Read {
                path: analysis_path.clone(),
                source,
            });
            let analysis = bytes.as_ref().map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<RunRecord>(b)
                    .map_err(|e| format!("{}: {e}", analysis_path.display()))
            });
            match (&meta, analysis, sampler_of(&run_name)) {
                (Ok(_), Ok(_), Some(_)) if cut_short.is_some() => Status::Broken(format!(
                    "its target's files are damaged ({}); the next sweep rebuilds the target and \
                     redoes this run",
                    cut_short.unwrap_or_default()
                )),
                (Ok(meta), Ok(analysis), Some(_))
                    if crate::store::record::sampled_another_build(
                        known
                            .touched
                            .get(&format!("{target_id}.{run_name}"))
                            .unwrap_or(&analysis.target_files),
                        &meta.files,
                    ) =>
                {
                    Status::Outdated
                }
                // A trace that is there but cut short (a full disk, a copy interrupted) is not
                // a result to read; one that is absent is (`clean --keep-plots` removes the
                // arrays of other sweeps' runs and keeps their numbers).
                (Ok(_), Ok(_), Some(_))
                    if run_dir.join(crate::plan::dag::RUN_TRACE).exists()
                        && !crate::store::integrity::npz_is_whole(
                            &run_dir.join(crate::plan::dag::RUN_TRACE),
                        ) =>
                {
                    Status::Broken(format!(
                        "{} is empty or cut short (the next sweep redoes the run)",
                        run_dir.join(crate::plan::dag::RUN_TRACE).display()
                    ))
                }
                (Ok(meta), Ok(mut analysis), Some(sampler)) => {
                    let bytes = bytes.as_deref().unwrap_or_default();
                    if let Some(why) =
                        known.edited(&format!("{target_id}.{run_name}"), &analysis_path, bytes)
                    {
                        analysis.health.healthy = Some(false);
                        analysis.health.warnings.push(why);
                    }
                    if let Some(why) = rewritten {
                        analysis.health.healthy = Some(false);
                        analysis.health.warnings.push(format!(
                            "its target's {why}; the next sweep rebuilds the target and redoes \
                             this run (`--touch` accepts it as it is)"
                        ));
                    }
                    let mut config = target_config.clone();
                    if let Ok(spec) = read_json::<serde_json::Value>(&run_dir.join("spec.json")) {
                        config.extend(super::config_columns::run_columns(&spec));
                    }
                    scan.finished.push(FinishedRun {
                        meta: meta.clone(),
                        analysis,
                        sampler: sampler.to_string(),
                        run_dir,
                        run_name,
                        config,
                    });
                    continue;
                }
                (Err(why), _, _) => Status::Broken(why.clone()),
                (_, Err(e), _) => Status::Broken(e.to_string()),
                (_, _, None) => {
                    Status::Broken(format!("`{run_name}` is not named run_<sampler>_<hash>"))
                }
            }
        };
        scan.unfinished.push(Unfinished {
            target_id: target_id.to_string(),
            run_name: Some(run_name),
            path: run_dir,
            status,
        });
    }
    Ok(())
}

/// The (target, run) pairs the incomplete markers name; a marker for a `build_target` job
/// names the target with run `None`.
///
/// The marker's `"output"` path may be relative or absolute and may end in the marker file
/// (`…/analysis.json`) or the directory, so it is matched by its `tgt_…`/`run_…` components.
/// Unreadable markers are skipped: they can only change a run's label from "not finished" to
/// "incomplete", never hide it.
fn incomplete_markers(root: &Path) -> BTreeSet<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct Marker {
        output: String,
    }
    let mut named = BTreeSet::new();
    let Ok(entries) = fs::read_dir(crate::store::IncompleteMarkers::new(root).dir()) else {
        return named;
    };
    for entry in entries.flatten() {
        let Ok(marker) = read_json::<Marker>(&entry.path()) else {
            continue;
        };
        let parts: Vec<String> = Path::new(&marker.output)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some(t) = parts.iter().rposition(|p| p.starts_with("tgt_")) else {
            continue;
        };
        let run = parts.get(t + 1).filter(|p| p.starts_with("run_")).cloned();
        named.insert((parts[t].clone(), run));
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{StoreBuilder, TempDir};

    #[test]
    fn sampler_name_comes_from_the_directory_name() {
        assert_eq!(sampler_of("run_hmc_0123abcd"), Some("hmc"));
        assert_eq!(sampler_of("run_mclmc_0123abcd"), Some("mclmc"));
        assert_eq!(sampler_of("run__0123abcd"), None);
        assert_eq!(sampler_of("run_hmc"), None);
        assert_eq!(sampler_of("tgt_hmc_1"), None);
    }

    #[test]
    fn half_finished_store_sorts_every_run() {
        let tmp = TempDir::new("scan");
        let store = StoreBuilder::new(tmp.path());
        let t = store.target("tgt_aaaaaaaaaaaa", 2, &[8, 8], 120, 5000, 42);
        store.finished_run(&t, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        store.started_run(&t, "run_sgld_00000002");
        store.started_run(&t, "run_mclmc_00000003");
        store.incomplete_marker("k1", &t.join("run_mclmc_00000003").join("analysis.json"));
        // A target whose build died: its run cannot have finished either.
        let dead = store.unbuilt_target("tgt_bbbbbbbbbbbb");
        store.started_run(&dead, "run_hmc_00000004");
        store.incomplete_marker("k2", &dead.join("meta.json"));

        let scan = scan(tmp.path()).unwrap();
        assert_eq!(scan.finished.len(), 1);
        assert_eq!(scan.finished[0].sampler, "hmc");
        assert_eq!(scan.finished[0].meta.dims.p, 120);

        let status = |run: Option<&str>| {
            scan.unfinished
                .iter()
                .find(|u| u.run_name.as_deref() == run)
                .map(|u| u.status.clone())
        };
        assert_eq!(status(Some("run_sgld_00000002")), Some(Status::NotFinished));
        assert_eq!(status(Some("run_mclmc_00000003")), Some(Status::Incomplete));
        assert_eq!(status(None), Some(Status::Incomplete));
        assert_eq!(status(Some("run_hmc_00000004")), Some(Status::NotFinished));
        assert_eq!(scan.unfinished.len(), 4);
    }

    #[test]
    fn unreadable_analysis_is_reported_not_dropped() {
        let tmp = TempDir::new("scan-broken");
        let store = StoreBuilder::new(tmp.path());
        let t = store.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        let run = store.started_run(&t, "run_hmc_00000001");
        std::fs::write(run.join("analysis.json"), "{ not json").unwrap();
        let scan = scan(tmp.path()).unwrap();
        assert!(scan.finished.is_empty());
        assert!(matches!(scan.unfinished[0].status, Status::Broken(_)));
    }

    #[test]
    fn a_cut_short_trace_is_reported_not_read_and_a_cleaned_one_is_not_missed() {
        let tmp = TempDir::new("scan-trace");
        let store = StoreBuilder::new(tmp.path());
        let t = store.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        let cut = store.finished_run(&t, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        let cleaned = store.finished_run(&t, "run_hmc_00000002", 3.0, "2026-01-01T00:00:00Z");
        let trace = cut.join("trace.npz");
        let bytes = std::fs::read(&trace).unwrap();
        std::fs::write(&trace, &bytes[..bytes.len() / 2]).unwrap();
        // `clean --keep-plots` removes a run's arrays and keeps its numbers.
        std::fs::remove_file(cleaned.join("trace.npz")).unwrap();
        let scan = scan(tmp.path()).unwrap();
        assert_eq!(scan.finished.len(), 1);
        assert_eq!(scan.finished[0].run_name, "run_hmc_00000002");
        match &scan.unfinished[0].status {
            Status::Broken(why) => {
                assert!(why.contains("trace.npz is empty or cut short"), "{why}")
            }
            other => panic!("expected Broken, got {other:?}"),
        }
    }

    #[test]
    fn runs_of_a_damaged_target_are_listed_apart_with_the_target() {
        let tmp = TempDir::new("scan-target-damage");
        let store = StoreBuilder::new(tmp.path());
        let t = store.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        store.finished_run(&t, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        assert_eq!(scan(tmp.path()).unwrap().finished.len(), 1);

        let params = t.join("params.npz");
        let bytes = std::fs::read(&params).unwrap();
        std::fs::write(&params, &bytes[..bytes.len() / 2]).unwrap();
        let scan = scan(tmp.path()).unwrap();
        assert!(
            scan.finished.is_empty(),
            "a run of a damaged target is no result"
        );
        let whys: Vec<String> = scan
            .unfinished
            .iter()
            .map(|u| match &u.status {
                Status::Broken(why) => why.clone(),
                other => panic!("expected Broken, got {other:?}"),
            })
            .collect();
        assert_eq!(whys.len(), 2, "{whys:?}");
        assert!(
            whys[0].contains("params.npz in") && whys[0].contains("cut short"),
            "{whys:?}"
        );
        assert!(
            whys[1].contains("its target's files are damaged"),
            "{whys:?}"
        );

        // A meta.json that is not its job's (here: naming another target; in a sweep, not the
        // hash the journal recorded, as after a worker run by hand): the runs stand, unhealthy.
        let tmp = TempDir::new("scan-target-rewritten");
        let store = StoreBuilder::new(tmp.path());
        let t = store.target("tgt_aaaaaaaaaaaa", 1, &[4], 20, 100, 1);
        store.finished_run(&t, "run_hmc_00000001", 3.0, "2026-01-01T00:00:00Z");
        let meta = t.join("meta.json");
        let text = std::fs::read_to_string(&meta).unwrap();
        std::fs::write(&meta, text.replace("tgt_aaaaaaaaaaaa", "tgt_bbbbbbbbbbbb")).unwrap();
        let rewritten = super::scan(tmp.path()).unwrap();
        assert_eq!(rewritten.finished.len(), 1, "{:?}", rewritten.unfinished);
        let health = &rewritten.finished[0].analysis.health;
        assert_eq!(health.healthy, Some(false));
        assert!(
            health
                .warnings
                .iter()
                .any(|w| w.contains("not the file its job wrote")),
            "{:?}",
            health.warnings
        );
    }

    #[test]
    fn missing_root_and_non_store_are_clear_errors() {
        let tmp = TempDir::new("scan-missing");
        let err = scan(&tmp.path().join("nope")).unwrap_err();
        assert!(matches!(err, ReportError::StoreMissing { .. }), "{err}");
        assert!(err.to_string().contains("--runs-root"));
        let err = scan(tmp.path()).unwrap_err();
        assert!(matches!(err, ReportError::NotAStore { .. }), "{err}");
    }
}
