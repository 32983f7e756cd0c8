//! The store's output status, read from disk once per invocation: which completion markers exist
//! and which jobs have incomplete markers. Implements [`OutputStatus`] for planning.
//!
//! Scanning costs one `read_dir` per existing target directory plus one `stat` per existing run
//! directory, so a million-job sweep on a fresh store is checked in milliseconds.

use std::collections::HashSet;
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
    /// `tgt_x/run_y` of every run directory that holds analysis.json.
    runs_done: HashSet<String>,
    incomplete: HashSet<String>,
}

impl StoreStatus {
    pub fn scan(plan: &Plan) -> Self {
        let mut runs_done = HashSet::new();
        let mut targets_done = Vec::with_capacity(plan.targets.len());
        for t in 0..plan.targets.len() as u32 {
            let dir = plan.target_dir(t);
            targets_done.push(TARGET_FILES.iter().all(|f| dir.join(f).is_file()));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("run_")
                    && RUN_FILES.iter().all(|f| entry.path().join(f).is_file())
                {
                    runs_done.insert(format!("{}/{name}", plan.targets[t as usize].id));
                }
            }
        }
        StoreStatus {
            targets_done,
            runs_done,
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
}

/// Modification time of a file as `YYYY-MM-DD HH:MM:SS` (local time), for summaries.
pub fn modified_string(path: &Path) -> Option<String> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    let dt: chrono::DateTime<chrono::Local> = time.into();
    Some(dt.format("%Y-%m-%d %H:%M:%S").to_string())
}
