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
    /// `lambda-hat cancel`, run from elsewhere while this controller ran, cancelled its SLURM
    /// jobs (it wrote their journal lines): the sweep stopped, as after Ctrl-C, but with exit
    /// code 1 (the work was not done) rather than a signal's.
    pub cancelled_by_command: bool,
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

/// How much of a worker's log end is searched for its error line: the line is written last.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// The longest error line quoted in a failure's reason (the log has it whole).
const MAX_QUOTED_ERROR: usize = 400;

/// `why` (how the worker ended) followed by the worker's own error line from its log, when it
/// wrote one: the sweep's failure list then says what went wrong, not only an exit code.
pub fn with_worker_error(why: String, log: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return why;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = Vec::new();
    if file
        .seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))
        .and_then(|_| file.read_to_end(&mut tail))
        .is_err()
    {
        return why;
    }
    match last_error_line(&String::from_utf8_lossy(&tail)) {
        Some(error) => format!("{why}: {}", quote_shortened(error)),
        None => why,
    }
}

/// The message of the last `error: ` line a worker printed (main.rs writes a failed worker's
/// error so), without the prefix. Also when another library's unterminated message is glued
/// in front of it (the zip writer's "ZipWriter drop failed: …" on a full disk): then the
/// worker's own `error: job …` is found inside the line.
pub fn last_error_line(log: &str) -> Option<&str> {
    const PREFIX: &str = "error: ";
    log.lines()
        .rev()
        .find_map(|l| {
            let l = l.trim_end();
            l.strip_prefix(PREFIX)
                .or_else(|| l.find("error: job ").map(|i| &l[i + PREFIX.len()..]))
        })
        .filter(|m| !m.is_empty())
}

fn quote_shortened(message: &str) -> String {
    match message.char_indices().nth(MAX_QUOTED_ERROR) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_workers_reason_quotes_its_last_error_line() {
        let log = "run_sampler run_sgld_1: sgld on tgt_1\nerror: first\nnoise\nerror: sgld chain 0 \
                   exploded: lower sgld step_size\n";
        assert_eq!(
            last_error_line(log),
            Some("sgld chain 0 exploded: lower sgld step_size")
        );
        assert_eq!(last_error_line("all fine\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.log");
        std::fs::write(&path, log).unwrap();
        assert_eq!(
            with_worker_error("the worker exited with code 1".into(), &path),
            "the worker exited with code 1: sgld chain 0 exploded: lower sgld step_size"
        );
        // Glued after a library's message that did not end its line.
        std::fs::write(
            &path,
            "ZipWriter drop failed: Io(..)error: job x failed: disk full\n",
        )
        .unwrap();
        assert_eq!(
            with_worker_error("the worker exited with code 1".into(), &path),
            "the worker exited with code 1: job x failed: disk full"
        );
        // No log, or no error line: the reason as it was.
        let missing = dir.path().join("none.log");
        assert_eq!(with_worker_error("killed".into(), &missing), "killed");
        // A long message is cut, at a character boundary.
        std::fs::write(&path, format!("error: {}\n", "é".repeat(1000))).unwrap();
        let long = with_worker_error("x".into(), &path);
        assert!(long.ends_with('…') && long.chars().count() == "x: ".len() + 400 + 1);
    }
}
