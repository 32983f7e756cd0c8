//! Test helpers: a self-deleting temporary directory and a builder that writes realistic store
//! files (meta.json, spec.json, analysis.json, trace.npz, incomplete markers) the way the
//! sweep engine lays them out (ARCHITECTURE.md §3).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::Array2;
use ndarray_npy::NpzWriter;
use serde_json::json;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "lambda-hat-report-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes store files under a root.
pub struct StoreBuilder {
    root: PathBuf,
}

fn write_json(path: &Path, value: &serde_json::Value) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

impl StoreBuilder {
    pub fn new(root: &Path) -> Self {
        fs::create_dir_all(root.join("targets")).unwrap();
        StoreBuilder {
            root: root.to_path_buf(),
        }
    }

    /// A built target: spec.json, data/params npz and meta.json (written last, like the worker).
    pub fn target(
        &self,
        id: &str,
        depth: u64,
        widths: &[u64],
        p: u64,
        n_data: u64,
        seed: u64,
    ) -> PathBuf {
        let dir = self.unbuilt_target(id);
        write_json(&dir.join("spec.json"), &json!({"target_id": id}));
        write_npz(&dir.join("data.npz"), &[("X", vec![vec![0.5; 4]; 16])]);
        write_npz(&dir.join("params.npz"), &[("W0", vec![vec![0.1; 4]; 8])]);
        let meta = json!({
            "target_id": id,
            "seed": seed,
            "model_cfg": {
                "in_dim": 4, "out_dim": 1, "depth": depth, "widths": widths,
                "target_params": p, "activation": "relu", "bias": true,
                "skip_connections": false, "init": "he"
            },
            "data_cfg": {"n_data": n_data, "x_dist": "gauss_iso", "noise_scale": 0.1},
            "training_cfg": {"optimizer": "adam", "learning_rate": 0.001, "steps": 1000},
            "teacher_cfg": null,
            "dims": {"n": n_data, "d": 4, "p": p},
            "metrics": {"L0": 0.0123},
            "precision": "f64",
            "walltime_sec": 12.5,
            "created_at": "2026-01-01T00:00:00Z",
            "version": "0.1.0",
            "training_loss": {"step": [0, 100, 200], "loss": [1.0, 0.1, 0.01]}
        });
        write_json(&dir.join("meta.json"), &meta);
        dir
    }

    /// Merges `fields` into a built target's meta.json (e.g. its `convergence`).
    pub fn merge_meta(&self, target_dir: &Path, fields: serde_json::Value) {
        let path = target_dir.join("meta.json");
        let mut meta: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for (k, v) in fields.as_object().unwrap() {
            meta[k] = v.clone();
        }
        write_json(&path, &meta);
    }

    /// A target directory with no meta.json (its build never finished).
    pub fn unbuilt_target(&self, id: &str) -> PathBuf {
        let dir = self.root.join("targets").join(id);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A run with spec.json only (planned or started, not finished).
    pub fn started_run(&self, target_dir: &Path, name: &str) -> PathBuf {
        let dir = target_dir.join(name);
        write_json(&dir.join("spec.json"), &json!({"run_id": name}));
        dir
    }

    /// A finished run whose analysis.json has the given llc_mean; other numbers derive from it.
    pub fn finished_run(
        &self,
        target_dir: &Path,
        name: &str,
        llc_mean: f64,
        created_at: &str,
    ) -> PathBuf {
        let llc: Vec<Vec<f64>> = (0..2)
            .map(|c| {
                (0..50)
                    .map(|t| llc_mean + 0.3 * ((t * 7 + c * 3) % 11) as f64 - 1.5)
                    .collect()
            })
            .collect();
        self.finished_run_with(
            target_dir,
            name,
            json!({
                "llc_mean": llc_mean,
                "llc_std": 0.1 * llc_mean,
                "llc_sem": 0.01 * llc_mean,
                "ess": 100.0 + llc_mean,
                "r_hat": 1.01,
                "walltime_sec": 2.0 * llc_mean,
                "grad_evals": 1000,
                "created_at": created_at,
            }),
            &llc,
        )
    }

    /// A finished run with the given analysis fields (merged over defaults) and llc trace.
    pub fn finished_run_with(
        &self,
        target_dir: &Path,
        name: &str,
        fields: serde_json::Value,
        llc: &[Vec<f64>],
    ) -> PathBuf {
        let dir = self.started_run(target_dir, name);
        write_npz(
            &dir.join("trace.npz"),
            &[("llc", llc.to_vec()), ("loss", llc.to_vec())],
        );
        fs::create_dir_all(dir.join("diagnostics")).unwrap();
        // Not a real PNG: promote copies bytes and never decodes them.
        fs::write(
            dir.join("diagnostics").join("trace.png"),
            format!("png of {name}"),
        )
        .unwrap();
        let target_id = target_dir.file_name().unwrap().to_string_lossy();
        let sampler = name.split('_').nth(1).unwrap();
        let mut analysis = json!({
            "target_id": target_id,
            "run_id": name,
            "sampler": sampler,
            "sampler_cfg": {"name": sampler, "chains": 2, "draws": 50},
            "llc_mean": 1.0, "llc_std": 0.1, "llc_sem": 0.01,
            "llc_chain_means": [1.0, 1.0],
            "ess": 100.0, "ess_bulk": 100.0, "ess_tail": 90.0, "r_hat": 1.0,
            "walltime_sec": 1.0, "grad_evals": 1000, "ess_per_grad_eval": 0.1,
            "acceptance_rate": null, "divergences": 0, "warnings": [],
            "created_at": "2026-01-01T00:00:00Z"
        });
        for (k, v) in fields.as_object().unwrap() {
            analysis[k] = v.clone();
        }
        write_json(&dir.join("analysis.json"), &analysis);
        dir
    }

    /// An incomplete marker whose `"output"` names `output`.
    pub fn incomplete_marker(&self, key: &str, output: &Path) {
        write_json(
            &self.root.join(".lambda-hat").join("incomplete").join(key),
            &json!({"output": output.to_string_lossy()}),
        );
    }
}

/// Writes 2-D f64 arrays into an npz file, as numpy's `np.savez` would.
pub fn write_npz(path: &Path, arrays: &[(&str, Vec<Vec<f64>>)]) {
    let mut npz = NpzWriter::new(fs::File::create(path).unwrap());
    for (name, rows) in arrays {
        let cols = rows.first().map_or(0, Vec::len);
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let array = Array2::from_shape_vec((rows.len(), cols), flat).unwrap();
        npz.add_array(*name, &array).unwrap();
    }
    npz.finish().unwrap();
}

/// The file is a PNG of the expected size that is not blank and not a single flat colour.
pub fn assert_png(path: &Path, size: (u32, u32)) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{} is not a readable PNG: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let share = non_white as f64 / (size.0 * size.1) as f64;
    // Axes, text and lines cover a few percent; a blank or filled canvas fails.
    assert!((0.005..0.6).contains(&share), "{}: {share}", path.display());
}

/// `n_chains` deterministic AR(1)-like chains of `draws` values wiggling around 12.
pub fn chains(n_chains: usize, draws: usize) -> Vec<Vec<f64>> {
    (0..n_chains)
        .map(|c| {
            let mut x = 10.0 + c as f64;
            (0..draws)
                .map(|t| {
                    let noise = (((t * 7919 + c * 104729) % 1000) as f64 / 1000.0) - 0.5;
                    x = 12.0 + 0.8 * (x - 12.0) + 1.5 * noise;
                    x
                })
                .collect()
        })
        .collect()
}
