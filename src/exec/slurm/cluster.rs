//! The side effects of the SLURM executor behind one small trait, [`Cluster`]: running `sbatch`,
//! `squeue`, `sacct`, `scontrol` and `scancel`, and waiting between polls.
//!
//! Input: job ids and script paths from the controller. Output: the command's raw
//! [`CmdOutput`] (success, stdout, stderr), which [`super::parse`] turns into typed values.
//! [`SlurmCli`] runs the real programs (found on PATH); tests put a simulated cluster in its
//! place to drive the controller's state machine, and the integration tests run the real one.
//! The argument lists are fixed here, next to the parsers' expectations (`parse::SQUEUE_ARGS`,
//! `parse::SACCT_ARGS`), so what is parsed is always what was asked for.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::parse::{JobKey, SACCT_ARGS, SQUEUE_ARGS, parse_job_ids};

/// What a finished command printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmdOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The executor's view of SLURM. Every method is one command; `Err` means the program could not
/// be started at all (not installed, not on PATH).
pub trait Cluster {
    /// `sbatch --parsable ARGS SCRIPT`.
    fn sbatch(&mut self, script: &Path, args: &[String]) -> io::Result<CmdOutput>;
    /// `squeue -r -t all --noheader --format=%i|%T|%r -j IDS` (array ids select all their tasks).
    fn squeue(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput>;
    /// `sacct --parsable2 --noheader --noconvert --format=... -j IDS`.
    fn sacct(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput>;
    /// `scontrol show job` (every job the controller knows; the fallback without accounting).
    fn scontrol_show_jobs(&mut self) -> io::Result<CmdOutput>;
    /// `squeue -r -t all --noheader --format=%i|%j --name=NAMES`: find submissions by job name.
    fn squeue_names(&mut self, names: &[String]) -> io::Result<CmdOutput>;
    /// `sacct -X --parsable2 --noheader --format=JobID,JobName --name=NAMES -S SINCE`.
    fn sacct_names(&mut self, names: &[String], since: &str) -> io::Result<CmdOutput>;
    /// `scancel JOBS` (one call for all of them).
    fn scancel(&mut self, jobs: &[String]) -> io::Result<CmdOutput>;
    /// Waits up to `d`; returns early when interrupted.
    fn sleep(&mut self, d: Duration);
    fn now(&self) -> Instant;
    /// How many times Ctrl-C was pressed.
    fn interrupts(&self) -> usize;
}

/// The real SLURM, through its command-line tools.
pub struct SlurmCli {
    interrupts: Arc<AtomicUsize>,
}

impl SlurmCli {
    /// `interrupts` is incremented by the Ctrl-C handler.
    pub fn new(interrupts: Arc<AtomicUsize>) -> Self {
        SlurmCli { interrupts }
    }
}

fn join_ids(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `program args`, capturing its output. The child ignores Ctrl-C of the terminal's
/// process group only as much as its parent does; SLURM clients are short-lived, so that is fine.
pub fn run(program: &str, args: &[String]) -> io::Result<CmdOutput> {
    tracing::debug!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok(CmdOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Cluster for SlurmCli {
    fn sbatch(&mut self, script: &Path, args: &[String]) -> io::Result<CmdOutput> {
        let mut a = vec!["--parsable".to_string()];
        a.extend(args.iter().cloned());
        a.push(script.to_string_lossy().into_owned());
        run("sbatch", &a)
    }

    fn squeue(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput> {
        let mut a = strings(SQUEUE_ARGS);
        a.extend(["-j".to_string(), join_ids(job_ids)]);
        run("squeue", &a)
    }

    fn sacct(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput> {
        let mut a = strings(SACCT_ARGS);
        a.extend(["-j".to_string(), join_ids(job_ids)]);
        run("sacct", &a)
    }

    fn scontrol_show_jobs(&mut self) -> io::Result<CmdOutput> {
        run("scontrol", &strings(&["show", "job"]))
    }

    fn squeue_names(&mut self, names: &[String]) -> io::Result<CmdOutput> {
        let mut a = strings(&["-r", "-t", "all", "--noheader", "--format=%i|%j"]);
        a.push(format!("--name={}", names.join(",")));
        run("squeue", &a)
    }

    fn sacct_names(&mut self, names: &[String], since: &str) -> io::Result<CmdOutput> {
        let mut a = strings(&[
            "-X",
            "--parsable2",
            "--noheader",
            "--format=JobID,JobName",
            "-S",
        ]);
        a.push(since.to_string());
        a.push(format!("--name={}", names.join(",")));
        run("sacct", &a)
    }

    fn scancel(&mut self, jobs: &[String]) -> io::Result<CmdOutput> {
        run("scancel", jobs)
    }

    fn sleep(&mut self, d: Duration) {
        // Short slices, so Ctrl-C is acted on within a tenth of a second.
        let end = Instant::now() + d;
        let seen = self.interrupts();
        while Instant::now() < end && self.interrupts() == seen {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn interrupts(&self) -> usize {
        self.interrupts.load(Ordering::SeqCst)
    }
}

/// Parses `%i|%j` lines of [`Cluster::squeue_names`] / `JobID|JobName` of
/// [`Cluster::sacct_names`] into (job id text, name) pairs.
pub fn parse_id_name(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.trim().split_once('|'))
        .map(|(id, name)| (id.trim().to_string(), name.trim().to_string()))
        .collect()
}

/// The jobs of a [`Cluster::squeue_names`] / [`Cluster::sacct_names`] answer by (name, array
/// task), added to `found`: an array line (`123_[0-2]`) gives one entry per task. How a
/// submission whose `sbatch` was cut off is found again (reattach, `status`, `cancel`).
pub fn record_jobs_by_name(stdout: &str, found: &mut HashMap<(String, Option<u32>), JobKey>) {
    for (id, name) in parse_id_name(stdout) {
        for key in parse_job_ids(&id).unwrap_or_default() {
            found.insert((name.clone(), key.array_task), key);
        }
    }
}
