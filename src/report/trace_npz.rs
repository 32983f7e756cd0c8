//! Reading `[chain, draw]` arrays (such as `llc`) out of a run's `trace.npz`.
//!
//! Data enters as the path of an npz archive (numpy's `np.savez` layout, which the worker
//! writes with ndarray-npy) and an array name; it leaves as one `Vec<f64>` per chain, the
//! layout the plot functions take. Arrays stored as f32 (an `f32` sweep) are widened to f64.

use std::fs::File;
use std::path::Path;

use ndarray::Array2;
use ndarray_npy::{NpzReader, ReadNpzError};

use super::ReportError;

/// The `[chain, draw]` array `name` of the npz file at `path`, one vector per chain.
pub fn read_chains(path: &Path, name: &str) -> Result<Vec<Vec<f64>>, ReportError> {
    let npz_error = |e: ReadNpzError| ReportError::Npz {
        path: path.to_path_buf(),
        array: name.to_string(),
        message: e.to_string(),
    };
    let open = || {
        let file = File::open(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        NpzReader::new(file).map_err(npz_error)
    };
    let array: Array2<f64> = match open()?.by_name::<_, ndarray::Ix2>(name) {
        Ok(a) => a,
        // Wrong element type: an f32 sweep. Reopen, since a failed read consumed the entry.
        Err(ReadNpzError::Npy(_)) => open()?
            .by_name::<ndarray::OwnedRepr<f32>, ndarray::Ix2>(name)
            .map_err(npz_error)?
            .mapv(f64::from),
        Err(e) => return Err(npz_error(e)),
    };
    Ok(array.outer_iter().map(|row| row.to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{TempDir, write_npz};

    #[test]
    fn reads_chains_in_order() {
        let tmp = TempDir::new("npz");
        let path = tmp.path().join("trace.npz");
        let llc = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
        write_npz(&path, &[("llc", llc.clone())]);
        assert_eq!(read_chains(&path, "llc").unwrap(), llc);
    }

    #[test]
    fn reads_f32_arrays() {
        let tmp = TempDir::new("npz32");
        let path = tmp.path().join("trace.npz");
        let mut npz = ndarray_npy::NpzWriter::new(File::create(&path).unwrap());
        let a = ndarray::arr2(&[[1.5f32, 2.5], [3.5, 4.5]]);
        npz.add_array("llc", &a).unwrap();
        npz.finish().unwrap();
        assert_eq!(
            read_chains(&path, "llc").unwrap(),
            vec![vec![1.5, 2.5], vec![3.5, 4.5]]
        );
    }

    #[test]
    fn missing_array_names_the_file_and_array() {
        let tmp = TempDir::new("npzmissing");
        let path = tmp.path().join("trace.npz");
        write_npz(&path, &[("loss", vec![vec![1.0]])]);
        let err = read_chains(&path, "llc").unwrap_err().to_string();
        assert!(err.contains("`llc`") && err.contains("trace.npz"), "{err}");
    }
}
