//! Writing report outputs safely: every file goes to a temporary name in its destination folder
//! and is renamed into place, so an interrupted report never leaves a half-written CSV, PNG or
//! README behind (the same rule the store follows, ARCHITECTURE.md §3).
//!
//! The destination is what the user named, not the name itself: a symlink is followed (renaming
//! over it would cut the link they made), and a path that is neither a regular file nor a folder
//! (`/dev/stdout`, a named pipe, `/dev/null`) is written through in place, because renaming over
//! a device node replaces the node, which, run as root on `/dev/full`, broke the machine's
//! `/dev/full` for every other program.
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

pub fn create_parent(path: &Path) -> Result<(), ReportError> {
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

/// Where a write to a user's path lands (see the module doc).
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// A regular file, or nothing yet: written beside it and renamed over it.
    File(PathBuf),
    /// A device, pipe or socket: written through in place.
    Special(PathBuf),
}

/// Resolves `path` to its [`Destination`]: symlinks followed (also a dangling one, to the file it
/// names), then the kind of what is there.
pub fn destination(path: &Path) -> Destination {
    let resolved = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).unwrap_or_else(|_| {
            // Dangling: the link's own target, relative to the link's folder.
            let target = fs::read_link(path).unwrap_or_else(|_| path.to_path_buf());
            path.parent().unwrap_or(Path::new("")).join(target)
        }),
        _ => path.to_path_buf(),
    };
    match fs::metadata(&resolved) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Destination::Special(resolved),
        _ => Destination::File(resolved),
    }
}

/// The temporary file a write to `dest` goes through before [`place`]: beside a regular file, so
/// that the rename stays on one file system; for a device or pipe, `lambda-hat-<pid>-<name>` in
/// the system's temporary folder (a device's folder, such as /dev, is no place for one). `name`
/// keeps its extension, which the PNG encoder picks the format from.
pub fn temp_for(dest: &Destination, name: &str) -> PathBuf {
    match dest {
        Destination::File(file) => temp_sibling(file),
        Destination::Special(_) => {
            std::env::temp_dir().join(format!("lambda-hat-{}-{name}", std::process::id()))
        }
    }
}

/// Moves the finished temporary file `tmp` to `dest`: a rename for a regular file, a copy of its
/// bytes into a device or pipe (then `tmp` is removed).
pub fn place(tmp: &Path, dest: &Destination) -> std::io::Result<()> {
    match dest {
        Destination::File(path) => fs::rename(tmp, path),
        Destination::Special(path) => {
            let copied = fs::read(tmp).and_then(|bytes| write_through(path, &bytes));
            let _ = fs::remove_file(tmp);
            copied
        }
    }
}

/// Writes into an existing device or pipe without creating or replacing anything.
fn write_through(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// Writes `bytes` to `path` atomically (a device or pipe: in place).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let error = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    match destination(path) {
        Destination::Special(device) => write_through(&device, bytes).map_err(error),
        Destination::File(file) => {
            create_parent(&file)?;
            let tmp = temp_sibling(&file);
            fs::write(&tmp, bytes)
                .and_then(|()| fs::rename(&tmp, &file))
                .map_err(|source| {
                    let _ = fs::remove_file(&tmp);
                    error(source)
                })
        }
    }
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

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let tmp = TempDir::new("files-link");
        let real = tmp.path().join("real.csv");
        let link = tmp.path().join("link.csv");
        fs::write(&real, "old\n").unwrap();
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        write_atomic(&link, b"new\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
        // A dangling link gets its target created, and stays a link too.
        let dangling = tmp.path().join("dangling.csv");
        std::os::unix::fs::symlink("made.csv", &dangling).unwrap();
        write_atomic(&dangling, b"made\n").unwrap();
        assert!(
            fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("made.csv")).unwrap(),
            "made\n"
        );
    }

    #[test]
    fn devices_and_pipes_are_written_in_place_not_replaced() {
        // Classification only, for a device: writing to /dev/null in a test run as root would,
        // were this wrong, replace the machine's /dev/null.
        assert_eq!(
            destination(Path::new("/dev/null")),
            Destination::Special(PathBuf::from("/dev/null"))
        );
        let tmp = TempDir::new("files-fifo");
        let fifo = tmp.path().join("out.csv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        write_atomic(&fifo, b"x,y\n").unwrap();
        assert_eq!(reader.join().unwrap(), "x,y\n");
        assert!(
            !fs::metadata(&fifo).unwrap().is_file(),
            "the pipe was replaced by a file"
        );
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left beside the pipe");
    }
}
