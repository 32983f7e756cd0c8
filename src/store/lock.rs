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
//! stale lock behind. The file's text (pid, host, command, start time) only tells the next user
//! who holds it; the lock itself is the `flock`.
//!
//! The lock's file descriptor is inherited by the processes the controller starts (its workers),
//! so a worker still running after its controller died keeps the store locked until it exits
//! (within 0.2 s: `worker::orphan`), and no second controller can run its job beside it.
//!
//! On a shared file system (NFS) `flock` is emulated with POSIX locks through the lock manager:
//! controllers on different hosts exclude each other, but a host that crashes can leave the lock
//! held until the server notices; `lambda-hat --unlock` removes a lock no live process holds.

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
    super::private_dir(store_root).join("lock")
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
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "started_at": chrono::Utc::now().to_rfc3339(),
        });
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{record}").map_err(io_err)?;
        inherit_across_exec(&file).map_err(io_err)?;
        Ok(StoreLock { _file: file })
    }
}

/// Lets child processes inherit `file`'s descriptor (std opens files close-on-exec), so they
/// share the lock's open file description and hold the lock while they live.
fn inherit_across_exec(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows open; F_GETFD/F_SETFD only read and
    // set its close-on-exec flag.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What `--unlock` did.
#[derive(Debug, PartialEq)]
pub enum Unlocked {
    Removed,
    /// The lock was held, but not by a live process of this host (a crashed host's lock on a
    /// shared file system): removed anyway, as Snakemake's `--unlock` does.
    RemovedHeld(String),
    NoLock,
}

/// Removes the lock file of `store_root`, unless a live process of this host holds it.
pub fn unlock(store_root: &Path) -> Result<Unlocked, LockError> {
    let path = lock_path(store_root);
    if !path.exists() {
        return Ok(Unlocked::NoLock);
    }
    let remove = || {
        std::fs::remove_file(&path).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })
    };
    match StoreLock::acquire(store_root) {
        Ok(lock) => {
            remove()?;
            drop(lock);
            Ok(Unlocked::Removed)
        }
        Err(LockError::Held { store, holder }) => {
            let record = std::fs::read_to_string(&path).unwrap_or_default();
            if holder_is_alive_here(&record) {
                return Err(LockError::Held { store, holder });
            }
            remove()?;
            Ok(Unlocked::RemovedHeld(holder))
        }
        Err(e) => Err(e),
    }
}

/// What [`unlock`] would do, changing nothing (`--unlock -n`): the lock is only looked at, not
/// taken, since taking it rewrites the holder record.
pub fn unlock_preview(store_root: &Path) -> Result<Unlocked, LockError> {
    let path = lock_path(store_root);
    if !path.exists() {
        return Ok(Unlocked::NoLock);
    }
    match holder(store_root) {
        None => Ok(Unlocked::Removed),
        Some(holder) => {
            let record = std::fs::read_to_string(&path).unwrap_or_default();
            if holder_is_alive_here(&record) {
                Err(LockError::Held {
                    store: store_root.display().to_string(),
                    holder,
                })
            } else {
                Ok(Unlocked::RemovedHeld(holder))
            }
        }
    }
}

/// Whether the record names a process of this host that is still running. A record without
/// pid or host counts as alive: nothing is removed on a guess.
fn holder_is_alive_here(record: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(record.trim()) else {
        return true;
    };
    match (v["pid"].as_u64(), v["host"].as_str()) {
        (Some(pid), Some(host)) if host == hostname() => super::process_alive(pid),
        (Some(_), Some(_)) => false,
        _ => true,
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
        (Some(pid), Some(host), Some(at)) => {
            let command = field("command")
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default();
            format!("pid {pid}{command} on {host}, since {at}, or a worker it started")
        }
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

    /// Takes the lock, retrying for up to 10 s: other tests of this process spawn children
    /// (bash, sleep, stand-ins for SLURM's commands), and a child spawned while a lock of ours
    /// was open inherits it and holds it for its life, usually milliseconds. CI once saw a
    /// child hold it across a lock check of the test below that did not retry.
    fn acquire_soon(dir: &Path) -> StoreLock {
        soon(|| StoreLock::acquire(dir))
    }

    /// Retries `f` while it fails (the lock held by a child of another test), up to 10 s.
    fn soon<T>(f: impl Fn() -> Result<T, LockError>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match f() {
                Ok(x) => return x,
                Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    #[test]
    fn a_second_lock_on_the_same_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire_soon(dir.path());
        let e = StoreLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("lambda-hat status"),
            "{e}"
        );
        assert!(holder(dir.path()).is_some_and(|h| h.starts_with("pid ")));
        assert!(
            unlock(dir.path()).is_err(),
            "a lock this live process holds is not removed"
        );
        assert!(unlock_preview(dir.path()).is_err());
        drop(first);
        drop(acquire_soon(dir.path()));
        // `--unlock -n` says what would go and removes nothing.
        let record = std::fs::read(lock_path(dir.path())).unwrap();
        assert_eq!(soon(|| unlock_preview(dir.path())), Unlocked::Removed);
        assert_eq!(std::fs::read(lock_path(dir.path())).unwrap(), record);
        assert_eq!(soon(|| unlock(dir.path())), Unlocked::Removed);
        assert!(!lock_path(dir.path()).exists());
        assert_eq!(unlock(dir.path()).unwrap(), Unlocked::NoLock);
    }

    #[test]
    fn a_child_process_keeps_the_store_locked_after_the_controller_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let lock = acquire_soon(dir.path());
        // A stand-in for a worker: it inherits the lock's descriptor and outlives our handle.
        let mut child = std::process::Command::new("sleep")
            .arg("2")
            .spawn()
            .unwrap();
        drop(lock);
        assert!(
            StoreLock::acquire(dir.path()).is_err(),
            "the running child must keep the store locked"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        drop(acquire_soon(dir.path()));
    }

    #[test]
    fn a_lock_held_by_a_process_of_another_host_or_a_dead_one_counts_as_stale() {
        let here = hostname();
        let me = std::process::id();
        assert!(holder_is_alive_here(&format!(
            r#"{{"pid": {me}, "host": "{here}"}}"#
        )));
        assert!(!holder_is_alive_here(&format!(
            r#"{{"pid": {me}, "host": "{here}-elsewhere"}}"#
        )));
        // Beyond any pid Linux hands out (pid_max ≤ 2^22).
        assert!(!holder_is_alive_here(&format!(
            r#"{{"pid": 99999999, "host": "{here}"}}"#
        )));
        assert!(holder_is_alive_here("not a record"));
    }

    #[test]
    fn the_holder_is_described_from_its_record_and_control_characters_are_escaped() {
        assert_eq!(
            describe_holder(r#"{"pid": 7, "host": "n1", "started_at": "T"}"#),
            "pid 7 on n1, since T, or a worker it started"
        );
        assert_eq!(
            describe_holder(
                r#"{"pid": 7, "host": "n1", "command": "lambda-hat -j 2", "started_at": "T"}"#
            ),
            "pid 7 `lambda-hat -j 2` on n1, since T, or a worker it started"
        );
        assert_eq!(describe_holder(""), "its pid is not recorded");
        assert!(!describe_holder(r#"{"pid": "\u001b[2J"}"#).contains('\u{1b}'));
    }
}
