//! A small builder for integration tests that run the real `lambda-hat` binary in a temporary
//! directory: write files, run with arguments, then assert on the exit code and output.
//!
//! ```ignore
//! Test::new().file("config/experiments.yaml", YAML).args(["-n"]).run().success().stdout_has("total");
//! ```

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_lambda-hat");

/// A tiny, fast sweep: two small targets, one job per sampler; seconds on one core.
pub const TINY_SWEEP: &str = r#"
store_root: runs
targets:
  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }
  - { model: small, data: small, seed: 2, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }
samplers:
  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }
"#;

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `rel` inside the test directory.
    pub fn file(self, rel: &str, content: &str) -> Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn experiments(self, content: &str) -> Self {
        self.file("config/experiments.yaml", content)
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs the binary with the current arguments (they stay set for the next call).
    pub fn run(&self) -> Outcome {
        self.run_with(&self.args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    pub fn run_with(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run lambda-hat");
        Outcome {
            output,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("runs")
    }
}

pub struct Outcome {
    pub output: Output,
    args: Vec<String>,
}

impl Outcome {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn context(&self) -> String {
        format!(
            "lambda-hat {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        )
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn success(self) -> Self {
        assert!(
            self.output.status.success(),
            "expected success: {}",
            self.context()
        );
        self
    }

    pub fn failure(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}: {}",
            self.context()
        );
        self
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}: {}",
            self.context()
        );
        self
    }

    pub fn stdout_lacks(self, needle: &str) -> Self {
        assert!(
            !self.stdout().contains(needle),
            "stdout has {needle:?}: {}",
            self.context()
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}: {}",
            self.context()
        );
        self
    }

    /// Every needle appears in stderr, and nothing looks like a panic or backtrace.
    pub fn clear_error(self, needles: &[&str]) -> Self {
        let err = self.stderr();
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}: {}", self.context());
        }
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "panic: {}",
            self.context()
        );
        assert_eq!(
            err.matches("error:").count(),
            1,
            "expected one error message: {}",
            self.context()
        );
        self
    }

    /// The count in the "total" row of the job stats.
    pub fn total_jobs(&self) -> usize {
        self.stdout()
            .lines()
            .find_map(|l| {
                l.strip_prefix("total")
                    .map(|n| n.trim().parse::<usize>().unwrap())
            })
            .unwrap_or_else(|| panic!("no job stats total: {}", self.context()))
    }
}
