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

/// Every sweep recorded in the store (unreadable records are skipped: they can only make
/// `clean` keep less, which the listing then shows).
pub fn list(store_root: &Path) -> Vec<SweepRecord> {
    let Ok(entries) = std::fs::read_dir(dir(store_root)) else {
        return Vec::new();
    };
    let mut out: Vec<SweepRecord> = entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    out.sort_by(|a, b| (&a.configfile, &a.config).cmp(&(&b.configfile, &b.config)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sweep_is_recorded_once_and_read_back() {
        let store = tempfile::tempdir().unwrap();
        assert!(list(store.path()).is_empty());
        let a = store.path().join("a.yaml");
        record(store.path(), &a, &[]).unwrap();
        record(store.path(), &a, &[]).unwrap();
        record(store.path(), &a, &["store_root=x".into()]).unwrap();
        let got = list(store.path());
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|r| r.configfile == a));
        assert_eq!(got[1].config, vec!["store_root=x".to_string()]);
    }
}
