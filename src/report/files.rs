//! Writing report outputs safely: every file goes to a temporary name in its destination folder
//! and is renamed into place, so an interrupted report never leaves a half-written CSV, PNG or
//! README behind (the same rule the store follows, ARCHITECTURE.md §3).
//!
//! Data enters as bytes (or a source file to copy) and a destination path; it leaves as that
//! file on disk, its parent folders created as needed.

use std::fs;
use std::path::{Path, PathBuf};

use super::ReportError;

/// A sibling of `path` to write before renaming; keeps the extension, because the PNG encoder
/// picks the format from it.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{}.partial-{name}", std::process::id()))
}

fn create_parent(path: &Path) -> Result<(), ReportError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            fs::create_dir_all(parent).map_err(|source| ReportError::Write {
                path: parent.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    create_parent(path)?;
    let tmp = temp_sibling(path);
    let result = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ReportError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Copies `from` to `to` atomically.
pub fn copy_atomic(from: &Path, to: &Path) -> Result<(), ReportError> {
    let bytes = fs::read(from).map_err(|source| ReportError::Read {
        path: from.to_path_buf(),
        source,
    })?;
    write_atomic(to, &bytes)
}

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::TempDir;

    #[test]
    fn atomic_write_creates_folders_and_leaves_no_temp_file() {
        let tmp = TempDir::new("files");
        let path = tmp.path().join("a").join("b.csv");
        write_atomic(&path, b"x,y\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x,y\n");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
