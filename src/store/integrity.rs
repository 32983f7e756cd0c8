//! Whether a finished job's files are whole: a completion marker that exists but is empty,
//! truncated or about another job, or an `.npz` cut short, must not count as done.
//!
//! In: file paths and the ID a marker must carry. Out: `true` when the file looks whole. Cheap
//! enough for every planning: a marker is a small JSON file read in full; of an `.npz` (a zip
//! archive) only the last 64 KiB are read, where a whole archive ends with its
//! end-of-central-directory record, which a truncated or emptied file lacks.
//!
//! An `.npz` replaced by another whole one (a `data.npz` copied from another target) passes
//! these checks; for that `build_target` records each file's [`content_hash`] in meta.json
//! (`files`), and `run_sampler` compares before it samples.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The end-of-central-directory record's signature, `PK\x05\x06`.
const EOCD_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
/// The record is 22 bytes plus a comment of at most 65,535.
const EOCD_SEARCH: u64 = 22 + 65_535;

/// A JSON object whose `id_key` is `id` (`meta.json`: `target_id`; `analysis.json`: `run_id`)
/// and, when the journal recorded one, whose bytes have the hash `recorded` (the file is read
/// once for both).
pub fn marker_is_whole(path: &Path, id_key: &str, id: &str, recorded: Option<&str>) -> bool {
    whole_marker(path, id_key, id, recorded).is_some()
}

/// The marker's JSON when it is whole (as [`marker_is_whole`] decides), so that a caller who
/// needs a field of it reads the file once.
pub fn whole_marker(
    path: &Path,
    id_key: &str,
    id: &str,
    recorded: Option<&str>,
) -> Option<serde_json::Value> {
    let bytes = std::fs::read(path).ok()?;
    if recorded.is_some_and(|h| hash_hex(&bytes) != h) {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v.get(id_key).and_then(|x| x.as_str()) == Some(id))
}

/// The `{file: hash}` object under `key` of a marker (meta.json's `files`, analysis.json's
/// `target_files`); empty when there is none.
pub fn file_hashes(marker: &serde_json::Value, key: &str) -> BTreeMap<String, String> {
    marker
        .get(key)
        .and_then(|f| f.as_object())
        .map(|files| {
            files
                .iter()
                .filter_map(|(name, h)| Some((name.clone(), h.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The xxh3-64 hash of `bytes`, as 16 hex digits: [`content_hash`] of a file already read.
pub fn hash_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// The xxh3-64 hash of a file's bytes, as 16 hex digits (meta.json's `files`).
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    Ok(hash_hex(&std::fs::read(path)?))
}

/// The key under which a `finished` journal event records its completion marker's hash.
pub const OUTPUT_HASH_KEY: &str = "output_xxh3";

/// The hash of a finished job's completion marker, for its `finished` journal event (`None`
/// when the marker cannot be read).
pub fn output_hash(marker: &Path) -> Option<String> {
    content_hash(marker).ok()
}

/// A zip archive that ends with its end-of-central-directory record.
pub fn npz_is_whole(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < 22 {
        return false;
    }
    let start = len.saturating_sub(EOCD_SEARCH);
    let mut tail = Vec::with_capacity((len - start) as usize);
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut tail).is_err() {
        return false;
    }
    tail.windows(4).rev().any(|w| w == EOCD_SIGNATURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_must_parse_and_name_their_job() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("analysis.json");
        std::fs::write(&p, r#"{"run_id": "run_hmc_1", "llc_mean": 4.0}"#).unwrap();
        assert!(marker_is_whole(&p, "run_id", "run_hmc_1", None));
        assert!(
            !marker_is_whole(&p, "run_id", "run_hmc_2", None),
            "another job's marker"
        );
        std::fs::write(&p, "").unwrap();
        assert!(!marker_is_whole(&p, "run_id", "run_hmc_1", None), "emptied");
        std::fs::write(&p, r#"{"run_id": "run_hmc_1", "llc"#).unwrap();
        assert!(
            !marker_is_whole(&p, "run_id", "run_hmc_1", None),
            "truncated"
        );
    }

    #[test]
    fn a_truncated_npz_is_not_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trace.npz");
        let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).unwrap());
        npz.add_array("llc", &ndarray::Array1::<f64>::zeros(1000))
            .unwrap();
        npz.finish().unwrap();
        assert!(npz_is_whole(&p));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(!npz_is_whole(&p), "cut in half");
        std::fs::write(&p, b"").unwrap();
        assert!(!npz_is_whole(&p), "emptied");
    }
}
