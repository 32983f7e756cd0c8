//! Incomplete markers: `<store>/.lambda-hat/incomplete/<job key>`, created before a job starts
//! and removed only when it finished cleanly. A marker that survives means the job was killed
//! (or the controller was), so its directory may hold partial files; planning then refuses to go
//! on until `--rerun-incomplete`, as Snakemake does.

use std::io;
use std::path::{Path, PathBuf};

pub struct IncompleteMarkers {
    dir: PathBuf,
}

impl IncompleteMarkers {
    pub fn new(store_root: &Path) -> Self {
        IncompleteMarkers {
            dir: super::private_dir(store_root).join("incomplete"),
        }
    }

    /// The marker of the job `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The directory holding every marker.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process that wrote `key`'s marker still runs on this host (a local sweep in
    /// progress, not a killed one). A missing or unreadable marker has no live owner.
    pub fn owner_alive(&self, key: &str) -> bool {
        std::fs::read_to_string(self.path(key))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("pid")?.as_u64())
            .is_some_and(super::process_alive)
    }

    /// Marks `key` as started and removes its completion marker `output` left by an earlier
    /// run (a forced rerun), as Snakemake removes a job's outputs before it runs: from then
    /// on a completion marker means *this* attempt finished, which is what a controller that
    /// was interrupted, or `cancel`, goes by to keep the jobs that did (and `status` shows the
    /// rerun as running, not as the old result).
    pub fn mark(&self, key: &str, output: &Path) -> io::Result<()> {
        let record = serde_json::json!({
            "output": output.to_string_lossy(),
            "pid": std::process::id(),
            "started_at": chrono::Utc::now().to_rfc3339(),
        });
        super::atomic::write_json_atomic(&self.path(key), &record)?;
        match std::fs::remove_file(output) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn clear(&self, key: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Keys of every job with a marker.
    pub fn list(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}
