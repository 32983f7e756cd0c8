//! The journal: `<store>/.lambda-hat/journal.jsonl`, one JSON object per line, append-only and
//! flushed to disk before the controller acts on what it records. It is the controller's memory
//! across invocations (which SLURM jobs were submitted, how each job ended).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 time of writing.
    pub time: String,
    /// `started`, `submitted`, `finished`, `failed`, `cancelled`, ...
    pub event: String,
    /// The job key (see `Plan::job_key`).
    pub job: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Event {
    pub fn new(event: &str, job: &str, rule: &str) -> Self {
        Event {
            time: chrono::Utc::now().to_rfc3339(),
            event: event.into(),
            job: job.into(),
            rule: rule.into(),
            executor: None,
            slurm_job_id: None,
            attempt: None,
            state: None,
            detail: None,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    pub fn path_in(store_root: &Path) -> PathBuf {
        store_root.join(".lambda-hat").join("journal.jsonl")
    }

    pub fn open(store_root: &Path) -> io::Result<Self> {
        let path = Self::path_in(store_root);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Journal { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` and syncs it to disk before returning.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// Every event of the journal at `store_root`; a torn last line (crash mid-write) is skipped.
    pub fn read_all(store_root: &Path) -> io::Result<Vec<Event>> {
        let path = Self::path_in(store_root);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut events = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Ok(event) = serde_json::from_str::<Event>(&line?) {
                events.push(event);
            }
        }
        Ok(events)
    }
}
