//! Which sweeps write into a store: `<store>/.lambda-hat/sweeps/<hash>.json`, one file per
//! experiments file (with its `--config` keys) that ever ran a sweep there.
//!
//! Why: several experiments files may share one store (the guide's examples all write to
//! `runs/`), and `lambda-hat clean` deletes what *its* experiments file does not plan. Without
//! this record it deleted the other sweeps' results too. With it, `clean` also keeps what every
//! other recorded sweep whose experiments file still exists still plans.
//!
//! In: the store root, an experiments file and its `--config` assignments (a sweep that runs).
//! Out: the recorded sweeps, for `clean`. Writing is atomic and idempotent: the file's name is
//! a hash of its content, so a sweep run again rewrites the same file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One sweep that wrote into the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// The experiments file, absolute (a later `clean` may run from another directory).
    pub configfile: PathBuf,
    /// Its `--config KEY=VALUE` assignments, in order.
    #[serde(default)]
    pub config: Vec<String>,
}

fn dir(store_root: &Path) -> PathBuf {
    super::private_dir(store_root).join("sweeps")
}

/// Records that the sweep of `configfile` (with `config`) runs in this store.
pub fn record(store_root: &Path, configfile: &Path, config: &[String]) -> std::io::Result<()> {
    let configfile = std::path::absolute(configfile)?;
    let rec = SweepRecord {
        configfile,
        config: config.to_vec(),
    };
    let text = serde_json::to_string(&rec).map_err(std::io::Error::other)?;
    let name = format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    let path = dir(store_root).join(name);
    if path.is_file() {
        return Ok(());
    }
    super::write_json_atomic(&path, &rec)
}

/// The sweeps recorded in the store, and the records that could not be read.
#[derive(Debug, Default)]
pub struct Recorded {
    pub sweeps: Vec<SweepRecord>,
    /// Record files that are not the JSON [`record`] writes (cut short, edited). `clean` must
    /// not delete on their account: each may be the only thing keeping another sweep's results.
    pub unreadable: Vec<PathBuf>,
}

/// Every sweep recorded in the store.
pub fn list(store_root: &Path) -> Recorded {
    let mut out = Recorded::default();
    let Ok(entries) = std::fs::read_dir(dir(store_root)) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // A temporary file of an atomic write in progress is not a record.
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<SweepRecord>(&bytes).ok())
        {
            Some(rec) => out.sweeps.push(rec),
            None => out.unreadable.push(path),
        }
    }
    out.sweeps
        .sort_by(|a, b| (&a.configfile, &a.config).cmp(&(&b.configfile, &b.config)));
    out.unreadable.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sweep_is_recorded_once_and_read_back() {
        let store = tempfile::tempdir().unwrap();
        assert!(list(store.path()).sweeps.is_empty());
        let a = store.path().join("a.yaml");
        record(store.path(), &a, &[]).unwrap();
        record(store.path(), &a, &[]).unwrap();
        record(store.path(), &a, &["store_root=x".into()]).unwrap();
        let got = list(store.path());
        assert!(got.unreadable.is_empty());
        let got = got.sweeps;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|r| r.configfile == a));
        assert_eq!(got[1].config, vec!["store_root=x".to_string()]);
    }

    #[test]
    fn a_damaged_record_is_listed_as_unreadable_not_dropped() {
        let store = tempfile::tempdir().unwrap();
        record(store.path(), &store.path().join("a.yaml"), &[]).unwrap();
        let recorded = std::fs::read_dir(dir(store.path()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&recorded, "{\"configfile\": \"/x").unwrap();
        let got = list(store.path());
        assert!(got.sweeps.is_empty());
        assert_eq!(got.unreadable, vec![recorded]);
    }
}
