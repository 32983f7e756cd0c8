//! The store lock: one controller per store at a time, as Snakemake locks its working directory.
//!
//! Without it, two `lambda-hat` started together run every job twice, and a second one started
//! mid-run takes the first one's live jobs for jobs "left incomplete by a killed run" and
//! advises `--rerun-incomplete`, which would then run them twice at once.
//!
//! In: the store root. Out: a [`StoreLock`] held until it is dropped (the sweep's end), or a
//! [`LockError`] naming who holds it. The lock is an advisory `flock` on
//! `<store>/.lambda-hat/lock` (std's `File::try_lock`): the kernel releases it when its holder
//! exits for any reason, SIGKILL and the OOM killer included, so a dead controller never leaves a
//! stale lock behind and no `--unlock` is needed. The file's text (pid, host, start time) only
//! tells the next user who holds it; the lock itself is the `flock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another lambda-hat is running a sweep in the store {store} ({holder}).\n  Wait for it to finish, or follow it with `lambda-hat status`; two controllers on one store would run the same jobs twice."
    )]
    Held { store: String, holder: String },
    #[error("cannot lock the store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Holds the store's lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// `<store>/.lambda-hat/lock`.
pub fn lock_path(store_root: &Path) -> PathBuf {
    store_root.join(".lambda-hat").join("lock")
}

impl StoreLock {
    /// Takes the lock of `store_root` without waiting, creating the store's `.lambda-hat`
    /// directory if needed.
    pub fn acquire(store_root: &Path) -> Result<StoreLock, LockError> {
        let path = lock_path(store_root);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        // Not truncated on open: the holder's record must survive a failed attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The record is for people; an unreadable one still means "held".
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    store: store_root.display().to_string(),
                    holder: describe_holder(&text),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let record = serde_json::json!({
            "pid": std::process::id(),
            "host": hostname(),
            "started_at": chrono::Utc::now().to_rfc3339(),
        });
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{record}").map_err(io_err)?;
        Ok(StoreLock { _file: file })
    }
}

/// Who holds the lock of `store_root` when another process does (None when it is free or the
/// store has no lock file). Read-only commands use it to tell a live controller's jobs from
/// killed ones without taking the lock for longer than the check.
pub fn holder(store_root: &Path) -> Option<String> {
    let mut file = File::open(lock_path(store_root)).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(describe_holder(&text))
        }
        _ => None,
    }
}

/// "pid 123 on node1, since 2026-12-02T05:40:00Z" from the holder's record, or a generic
/// phrase when the record is missing or not ours.
pub fn describe_holder(record: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(record.trim()) else {
        return "its pid is not recorded".into();
    };
    let field = |k: &str| {
        v.get(k)
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            // The record is a file anyone may edit: keep control characters off the terminal.
            .map(|s| s.escape_debug().to_string())
    };
    match (field("pid"), field("host"), field("started_at")) {
        (Some(pid), Some(host), Some(at)) => format!("pid {pid} on {host}, since {at}"),
        (Some(pid), _, _) => format!("pid {pid}"),
        _ => "its pid is not recorded".into(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = StoreLock::acquire(dir.path()).expect("free store");
        let e = StoreLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("lambda-hat status"),
            "{e}"
        );
        assert!(holder(dir.path()).is_some_and(|h| h.starts_with("pid ")));
        drop(first);
        assert_eq!(holder(dir.path()), None);
        StoreLock::acquire(dir.path()).expect("released on drop");
    }

    #[test]
    fn the_holder_is_described_from_its_record_and_control_characters_are_escaped() {
        assert_eq!(
            describe_holder(r#"{"pid": 7, "host": "n1", "started_at": "T"}"#),
            "pid 7 on n1, since T"
        );
        assert_eq!(describe_holder(""), "its pid is not recorded");
        assert!(!describe_holder(r#"{"pid": "\u001b[2J"}"#).contains('\u{1b}'));
    }
}
