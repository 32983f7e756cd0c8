//! The zip report, as `snakemake --report report.zip` writes one: a folder named after the
//! archive, holding the page (`report.html`) and the plots it links as files under `plots/`,
//! one folder per target and run (`plots/tgt_…/run_…/trace.png`).
//!
//! In: the output path, then each plot file as the page is built ([`Archive::add`], which gives
//! the page its link), then the page's HTML ([`write()`]). Out: the archive, written to a
//! temporary sibling and renamed into place (a device or pipe is written through, as
//! `report::files` does for every report output), and its size in bytes.
//!
//! Every part of a member's path comes from the store (target and run folders, plot file
//! names), which may have been written by someone else: each is reduced to `[A-Za-z0-9._-]` with
//! no leading dot ([`safe_name`]), so no member can leave the folder when unzipped, and no link
//! needs URL encoding. Two names that reduce to the same one get `-2`, `-3`, … before the
//! extension. The plots are stored as they are (PNG is compressed already); the page is deflated.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::report::ReportError;
use crate::report::files::{self, Destination};

/// The page's name in the archive's folder.
pub const PAGE: &str = "report.html";

/// The members of a zip report, listed as the page links them.
#[derive(Debug)]
pub struct Archive {
    /// The folder everything is in: the output's file name without its extension.
    pub folder: String,
    /// (path below `folder`, the file to copy there), in the order the page shows them.
    members: Vec<(String, PathBuf)>,
    taken: HashSet<String>,
}

impl Archive {
    /// An empty archive to be written at `output`.
    pub fn new(output: &Path) -> Archive {
        let stem = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Archive {
            folder: safe_name(&stem),
            members: Vec::new(),
            taken: HashSet::new(),
        }
    }

    /// Lists `file` as the plot `name` of `owner` (`tgt_…/run_…`, or `tgt_…` for a target's
    /// plots) and returns the page's link to it, relative to the page.
    pub fn add(&mut self, owner: &str, name: &str, file: &Path) -> String {
        let folders: Vec<String> = owner.split('/').map(safe_name).collect();
        let (stem, extension) = match safe_name(name).rsplit_once('.') {
            Some((stem, ext)) => (stem.to_string(), format!(".{ext}")),
            None => (safe_name(name), String::new()),
        };
        let dir = format!("plots/{}", folders.join("/"));
        let mut href = format!("{dir}/{stem}{extension}");
        let mut k = 2;
        while !self.taken.insert(href.clone()) {
            href = format!("{dir}/{stem}-{k}{extension}");
            k += 1;
        }
        self.members.push((href.clone(), file.to_path_buf()));
        href
    }
}

/// `s` with every character outside `[A-Za-z0-9._-]` replaced by `_`, and a leading `.` too, so
/// that no part of a member's path is empty, `.`, `..` or hidden, or needs URL encoding.
fn safe_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        return "_".into();
    }
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    out
}

/// Writes the archive of `html` and the listed plots to `output`; returns its size in bytes.
/// A plot that can no longer be read is left out (its picture shows its caption), as the
/// single-file report leaves out an unreadable one.
pub fn write(output: &Path, archive: &Archive, html: &str) -> Result<u64, ReportError> {
    let error = |source: io::Error| ReportError::Write {
        path: output.to_path_buf(),
        source,
    };
    let dest = files::destination(output);
    if let Destination::File(path) = &dest {
        files::create_parent(path)?;
    }
    // A zip writer seeks back to finish each member, so even a pipe or device gets the archive
    // through a temporary file.
    let tmp = files::temp_for(&dest, "report.zip");
    let written = fill(&tmp, archive, html).and_then(|size| {
        files::place(&tmp, &dest)?;
        Ok(size)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(error)
}

/// The archive into the file `path`; its size.
fn fill(path: &Path, archive: &Archive, html: &str) -> io::Result<u64> {
    let mut zip = ZipWriter::new(BufWriter::new(File::create(path)?));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    zip.start_file(format!("{}/{PAGE}", archive.folder), deflated)
        .map_err(io::Error::other)?;
    zip.write_all(html.as_bytes())?;
    for (href, file) in &archive.members {
        let Ok(mut source) = File::open(file) else {
            continue;
        };
        zip.start_file(format!("{}/{href}", archive.folder), stored)
            .map_err(io::Error::other)?;
        io::copy(&mut source, &mut zip)?;
    }
    let file = zip
        .finish()
        .map_err(io::Error::other)?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_reduced_to_a_safe_alphabet() {
        assert_eq!(safe_name("tgt_0123abcd4567"), "tgt_0123abcd4567");
        assert_eq!(safe_name("trace.png"), "trace.png");
        assert_eq!(safe_name(".."), "_.");
        assert_eq!(safe_name(".hidden.png"), "_hidden.png");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("a b/c\\d\"<e>"), "a_b_c_d__e_");
        assert_eq!(safe_name("é.png"), "_.png");
    }

    #[test]
    fn clashing_names_get_numbered_before_the_extension() {
        let mut archive = Archive::new(Path::new("out/sweep report.zip"));
        assert_eq!(archive.folder, "sweep_report");
        let a = archive.add("tgt_a/run_hmc_1", "a b.png", Path::new("x"));
        let b = archive.add("tgt_a/run_hmc_1", "a?b.png", Path::new("y"));
        let c = archive.add("tgt_a/run_hmc_1", "a b.png", Path::new("z"));
        assert_eq!(a, "plots/tgt_a/run_hmc_1/a_b.png");
        assert_eq!(b, "plots/tgt_a/run_hmc_1/a_b-2.png");
        assert_eq!(c, "plots/tgt_a/run_hmc_1/a_b-3.png");
        assert_eq!(
            archive.add("tgt_a", "README", Path::new("w")),
            "plots/tgt_a/README"
        );
    }

    proptest! {
        /// Whatever the store's names, a member's path stays inside the archive's folder, and
        /// its link is plain text in an HTML attribute and a URL.
        #[test]
        fn no_name_leaves_the_folder(owner in any::<String>(), name in any::<String>()) {
            let mut archive = Archive::new(Path::new("r.zip"));
            let href = archive.add(&owner, &name, Path::new("f"));
            prop_assert!(href.starts_with("plots/"));
            prop_assert!(href.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)));
            for part in href.split('/') {
                prop_assert!(!part.is_empty() && !part.starts_with('.'), "{}", href);
            }
        }
    }
}
