//! Atomic file writes: write to a temporary name in the same directory, flush, then rename into
//! place. A job killed at any moment leaves either the old file, no file, or a `.tmp` file that
//! nothing reads, never a half-written output under its real name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary sibling of `path` used while writing it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes JSON (pretty, with a trailing newline) to `path` atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Lets `fill` write the file's content into a temporary file, then renames it to `path`.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        fill(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_without_leaving_temp_files() {
        let dir = std::env::temp_dir().join(format!("lh-atomic-{}", std::process::id()));
        let path = dir.join("a/b.json");
        write_json_atomic(&path, &serde_json::json!({"x": 1})).unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.json")]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("lh-atomic-fail-{}", std::process::id()));
        let path = dir.join("c.json");
        let err = write_atomic_with(&path, |_| Err(io::Error::other("boom")));
        assert!(err.is_err());
        assert!(!path.exists() && !temp_path(&path).exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
