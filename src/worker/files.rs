//! Reading and writing the worker's files: specs, JSON and numpy `.npz` archives, all written
//! atomically (see `store::atomic`). numpy reads the archives with `np.load(path)`.

use std::fs::File;
use std::path::Path;

use ndarray::{Array2, ArrayD};
use ndarray_npy::{NpzReader, NpzWriter, ReadableElement, WritableElement};
use serde::de::DeserializeOwned;

use super::error::WorkerError;
use crate::store::atomic::write_atomic_with;

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, WorkerError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| WorkerError::Spec {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), WorkerError> {
    crate::store::write_json_atomic(path, value).map_err(|source| WorkerError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `arrays` as an uncompressed `.npz` archive (compression costs time and saves little
/// on float noise).
pub fn write_npz<A: WritableElement>(
    path: &Path,
    arrays: &[(String, ArrayD<A>)],
) -> Result<(), WorkerError> {
    write_trace_npz::<A>(path, arrays, &[])
}

/// Writes `arrays` and then the boolean `flags` (numpy `|b1`) in one `.npz` archive.
pub fn write_trace_npz<A: WritableElement>(
    path: &Path,
    arrays: &[(String, ArrayD<A>)],
    flags: &[(String, ArrayD<bool>)],
) -> Result<(), WorkerError> {
    write_atomic_with(path, |file| {
        let mut npz = NpzWriter::new(file);
        add_arrays(&mut npz, arrays)?;
        add_arrays(&mut npz, flags)?;
        npz.finish().map_err(npz_io_error)?;
        Ok(())
    })
    .map_err(|source| WorkerError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The I/O error under an npz writer's error, with its kind and the system's words ("No space
/// left on device"): the writer's own message stops at "zip file error: i/o error".
fn npz_io_error(e: ndarray_npy::WriteNpzError) -> std::io::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return std::io::Error::new(io.kind(), io.to_string());
        }
        source = err.source();
    }
    std::io::Error::other(e.to_string())
}

fn add_arrays<W: std::io::Write + std::io::Seek, A: WritableElement>(
    npz: &mut NpzWriter<W>,
    arrays: &[(String, ArrayD<A>)],
) -> std::io::Result<()> {
    for (name, array) in arrays {
        npz.add_array(name.as_str(), array).map_err(npz_io_error)?;
    }
    Ok(())
}

fn open_npz(path: &Path) -> Result<NpzReader<File>, WorkerError> {
    let file = File::open(path).map_err(|source| WorkerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    NpzReader::new(file).map_err(|e| WorkerError::Npz {
        path: path.to_path_buf(),
        name: "*".into(),
        message: e.to_string(),
    })
}

pub fn read_npz_array<A: ReadableElement>(
    path: &Path,
    name: &str,
) -> Result<ArrayD<A>, WorkerError> {
    open_npz(path)?
        .by_name(&format!("{name}.npy"))
        .map_err(|e| WorkerError::Npz {
            path: path.to_path_buf(),
            name: name.to_string(),
            message: e.to_string(),
        })
}

pub fn read_npz_matrix<A: ReadableElement>(
    path: &Path,
    name: &str,
) -> Result<Array2<A>, WorkerError> {
    read_npz_array::<A>(path, name)?
        .into_dimensionality()
        .map_err(|e| WorkerError::Npz {
            path: path.to_path_buf(),
            name: name.to_string(),
            message: format!("expected a matrix: {e}"),
        })
}

/// Every array of an archive, by name (without `.npy`).
pub fn read_npz_all<A: ReadableElement>(
    path: &Path,
) -> Result<Vec<(String, ArrayD<A>)>, WorkerError> {
    let npz_err = |message: String| WorkerError::Npz {
        path: path.to_path_buf(),
        name: "*".into(),
        message,
    };
    let mut npz = open_npz(path)?;
    let names = npz.names().map_err(|e| npz_err(e.to_string()))?;
    names
        .into_iter()
        .map(|n| {
            let array = npz.by_name(&n).map_err(|e| npz_err(e.to_string()))?;
            Ok((n.trim_end_matches(".npy").to_string(), array))
        })
        .collect()
}

/// Rows of possibly different lengths as a chains × len matrix, padding with NaN.
pub fn rows_to_matrix(rows: &[Vec<f64>]) -> ArrayD<f64> {
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut m = Array2::<f64>::from_elem((rows.len(), len), f64::NAN);
    for (i, row) in rows.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            m[[i, j]] = *v;
        }
    }
    m.into_dyn()
}

#[cfg(test)]
mod npz_error_tests {
    use super::*;

    #[test]
    fn a_full_disk_under_the_npz_writer_keeps_its_reason() {
        let full = std::io::Error::from_raw_os_error(28);
        let words = full.to_string();
        let e = ndarray_npy::WriteNpzError::Npy(ndarray_npy::WriteNpyError::Io(full));
        let io = npz_io_error(e);
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert!(
            io.to_string().contains("No space left on device"),
            "{io} ({words})"
        );
    }
}
