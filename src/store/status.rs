//! The store's output status, read from disk once per invocation: which completion markers exist
//! and which jobs have incomplete markers. Implements [`OutputStatus`] for planning.
//!
//! Scanning costs one `read_dir` per existing target directory plus one `stat` per existing run
//! directory, so a million-job sweep on a fresh store is checked in milliseconds. A finished
//! job's files are also checked for being whole (super::integrity: its marker parsed and, when
//! the journal recorded one, matching the hash its `finished` event recorded; the tails of its
//! `.npz` files read): present but damaged, the job is `corrupt`, not done.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::plan::{JobRef, OutputStatus, Plan};

use super::incomplete::IncompleteMarkers;

/// A target is done when its marker AND the files its runs read exist (`clean --keep-plots`
/// removes the arrays but keeps the markers, and such a target must be rebuilt when used again).
const TARGET_FILES: &[&str] = &["meta.json", "params.npz", "data.npz"];
/// A run is done when its marker and its trace exist.
const RUN_FILES: &[&str] = &["analysis.json", "trace.npz"];

#[derive(Debug, Default)]
pub struct StoreStatus {
    targets_done: Vec<bool>,
    targets_corrupt: Vec<bool>,
    /// `tgt_x/run_y` of every run directory whose files are all present and whole.
    runs_done: HashSet<String>,
    /// `tgt_x/run_y` of every run directory whose files are present but not whole.
    runs_corrupt: HashSet<String>,
    incomplete: HashSet<String>,
}

/// The completion-marker hash each job's latest `finished` journal event recorded.
fn recorded_output_hashes(store_root: &Path) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in super::Journal::read_all(store_root).unwrap_or_default() {
        if e.event != "finished" {
            continue;
        }
        let hash = e
            .detail
            .as_ref()
            .and_then(|d| d.get(super::integrity::OUTPUT_HASH_KEY))
            .and_then(|h| h.as_str());
        match hash {
            Some(h) => out.insert(e.job, h.to_string()),
            // A later finish without a hash (an older lambda-hat) voids the earlier one.
            None => out.remove(&e.job),
        };
    }
    out
}

/// Whether a job's present files are whole (super::integrity): the marker names the job (and
/// has the hash the journal recorded for it, if any) and every `.npz` ends as a zip archive
/// should.
fn files_whole(
    dir: &Path,
    files: &[&str],
    id_key: &str,
    id: &str,
    recorded: Option<&String>,
) -> bool {
    files.iter().all(|f| {
        let path = dir.join(f);
        if f.ends_with(".json") {
            super::integrity::marker_is_whole(&path, id_key, id, recorded.map(String::as_str))
        } else {
            super::integrity::npz_is_whole(&path)
        }
    })
}

/// Whether all of a job's files are present and whole as files (markers name the job, archives
/// end as they should), whatever the journal recorded about them: what `--touch` accepts.
pub fn job_files_whole(plan: &Plan, job: JobRef) -> bool {
    let dir = plan.job_dir(job);
    let (files, id_key, id) = match job {
        JobRef::Target(t) => (
            TARGET_FILES,
            "target_id",
            plan.targets[t as usize].id.clone(),
        ),
        JobRef::Run(r) => (RUN_FILES, "run_id", plan.run_id(r)),
    };
    files.iter().all(|f| dir.join(f).is_file()) && files_whole(&dir, files, id_key, &id, None)
}

impl StoreStatus {
    pub fn scan(plan: &Plan) -> Self {
        let mut runs_done = HashSet::new();
        let mut runs_corrupt = HashSet::new();
        let mut targets_done = Vec::with_capacity(plan.targets.len());
        let mut targets_corrupt = Vec::with_capacity(plan.targets.len());
        let recorded = recorded_output_hashes(&plan.store_root);
        for t in 0..plan.targets.len() as u32 {
            let dir = plan.target_dir(t);
            let id = &plan.targets[t as usize].id;
            let present = TARGET_FILES.iter().all(|f| dir.join(f).is_file());
            let whole =
                present && files_whole(&dir, TARGET_FILES, "target_id", id, recorded.get(id));
            targets_done.push(whole);
            targets_corrupt.push(present && !whole);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("run_")
                    && RUN_FILES.iter().all(|f| entry.path().join(f).is_file())
                {
                    let key = format!("{id}/{name}");
                    let recorded = recorded.get(&format!("{id}.{name}"));
                    if files_whole(&entry.path(), RUN_FILES, "run_id", &name, recorded) {
                        runs_done.insert(key);
                    } else {
                        runs_corrupt.insert(key);
                    }
                }
            }
        }
        StoreStatus {
            targets_done,
            targets_corrupt,
            runs_done,
            runs_corrupt,
            incomplete: IncompleteMarkers::new(&plan.store_root)
                .list()
                .into_iter()
                .collect(),
        }
    }
}

impl OutputStatus for StoreStatus {
    fn done(&self, plan: &Plan, job: JobRef) -> bool {
        match job {
            JobRef::Target(t) => self.targets_done[t as usize],
            JobRef::Run(r) => {
                let tid = &plan.targets[plan.run_target(r) as usize].id;
                self.runs_done
                    .contains(&format!("{tid}/{}", plan.run_id(r)))
            }
        }
    }

    fn incomplete(&self, plan: &Plan, job: JobRef) -> bool {
        !self.incomplete.is_empty() && self.incomplete.contains(&plan.job_key(job))
    }

    fn corrupt(&self, plan: &Plan, job: JobRef) -> bool {
        match job {
            JobRef::Target(t) => self.targets_corrupt[t as usize],
            JobRef::Run(r) => {
                !self.runs_corrupt.is_empty() && {
                    let tid = &plan.targets[plan.run_target(r) as usize].id;
                    self.runs_corrupt
                        .contains(&format!("{tid}/{}", plan.run_id(r)))
                }
            }
        }
    }
}

/// Modification time of a file as `YYYY-MM-DD HH:MM:SS` (local time), for summaries.
pub fn modified_string(path: &Path) -> Option<String> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    let dt: chrono::DateTime<chrono::Local> = time.into();
    Some(dt.format("%Y-%m-%d %H:%M:%S").to_string())
}
