//! Executors: they take the jobs a [`Schedule`](crate::plan::Schedule) says must run and run them
//! as `lambda-hat worker ...` processes — [`local`] as a pool of subprocesses on this machine,
//! `slurm` as SLURM jobs. Both write each job's spec.json first, keep incomplete markers and the
//! journal, and report an [`Outcome`].

pub mod local;
pub mod progress;
pub mod resources;
pub mod signals;
pub mod slurm;
pub mod status;

use std::path::PathBuf;

use crate::plan::JobRef;

/// How a whole execution ended.
#[derive(Debug, Default)]
pub struct Outcome {
    pub succeeded: usize,
    /// Failed jobs with the reason and the log to read.
    pub failed: Vec<Failure>,
    /// Jobs not run because a job they depend on failed (or the run stopped after a failure).
    pub skipped: usize,
    /// Ctrl-C (or, locally, SIGTERM or SIGHUP) stopped the run.
    pub interrupted: bool,
    /// Which signal did, when known ("SIGINT", "SIGTERM", "SIGHUP"): sets the exit code.
    pub interrupted_by: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub job: JobRef,
    pub output: String,
    pub reason: String,
    pub log: PathBuf,
    /// Killed by a signal (or the cluster): it may have left partial files, so its incomplete
    /// marker stays and the next sweep asks for `--rerun-incomplete`.
    pub left_incomplete: bool,
}

/// The command that starts a worker: the running binary unless a profile or test says otherwise.
pub fn default_worker_command() -> Vec<String> {
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "lambda-hat".into());
    vec![exe]
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot write {what} at {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot start the worker `{command}`: {source}\n  hint: check `worker-command` in the profile, or reinstall lambda-hat"
    )]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("cannot install the handlers of SIGINT, SIGTERM and SIGHUP: {0}")]
    Signals(std::io::Error),
}
