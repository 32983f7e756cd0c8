//! Worker mode: the compute-node entry points `lambda-hat worker build-target SPEC` and
//! `lambda-hat worker run-sampler SPEC`. Each reads a spec.json, does the numerical work and writes
//! its artifacts next to the spec, the completion marker (meta.json / analysis.json) last.
//! The local and the SLURM executors run exactly these commands as separate processes.

pub mod build_target;
pub mod error;
pub mod files;
pub mod orphan;
pub mod run_sampler;

pub use error::WorkerError;

use std::path::PathBuf;

/// The worker's command line (`lambda-hat worker …`), parsed by the CLI and run by [`run`].
#[derive(Debug, clap::Subcommand)]
pub enum WorkerCommand {
    /// Generate data, train the network, write data.npz, params.npz and meta.json.
    BuildTarget {
        /// The job's spec.json.
        spec: PathBuf,
    },
    /// Sample the posterior, write trace.npz, plots and analysis.json.
    RunSampler {
        /// The job's spec.json.
        spec: PathBuf,
    },
}

/// A worker job that failed: which spec, and why.
#[derive(Debug, thiserror::Error)]
#[error("job {} failed: {source}", spec.display())]
pub struct JobFailed {
    pub spec: PathBuf,
    #[source]
    pub source: WorkerError,
}

/// Runs one worker command with as many threads as the job was given.
pub fn run(cmd: WorkerCommand) -> Result<(), JobFailed> {
    let started = std::time::Instant::now();
    orphan::watch_parent_if_asked();
    apply_test_hooks(
        match &cmd {
            WorkerCommand::BuildTarget { spec } | WorkerCommand::RunSampler { spec } => spec,
        },
        started,
    );
    // The global pool can only be built once per process; a worker process runs one job.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(job_threads())
        .build_global();
    let (spec, result) = match cmd {
        WorkerCommand::BuildTarget { spec } => {
            let r = build_target::run(&spec);
            (spec, r)
        }
        WorkerCommand::RunSampler { spec } => {
            let r = run_sampler::run(&spec);
            (spec, r)
        }
    };
    write_benchmark(started.elapsed());
    result.map_err(|source| JobFailed { spec, source })
}

/// Records what this job used where the executor asked (crate::store::benchmark), whether it
/// succeeded or failed. A benchmark is a report, not an output: failing to write it only warns.
fn write_benchmark(wall: std::time::Duration) {
    use crate::store::benchmark;
    let Some(path) = std::env::var_os(benchmark::BENCHMARK_ENV) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    if let Err(e) = benchmark::write(&path, &benchmark::measure_self(wall)) {
        crate::terminal::note!("warning: benchmark not written to {}: {e}", path.display());
    }
}

/// Threads for this job: [`crate::spec::THREADS_ENV`] (set by the local executor from cpus_per_task),
/// else `SLURM_CPUS_PER_TASK`, else every core.
fn job_threads() -> usize {
    [crate::spec::THREADS_ENV, "SLURM_CPUS_PER_TASK"]
        .iter()
        .find_map(|k| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0)
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Test-only behaviour switched on by environment variables, so executor tests can make real
/// jobs exceed their memory or time limits: `LAMBDA_HAT_TEST_ALLOCATE_MB=N` allocates and
/// touches N MiB before working, `LAMBDA_HAT_TEST_SLEEP_SEC=S` sleeps S seconds first, and
/// `LAMBDA_HAT_TEST_FAIL_ONCE=TEXT` makes a job whose spec path contains TEXT fail (exit 1) the
/// first time it runs, leaving `test-failed-once` beside its spec, and work when run again; like
/// every worker that fails, it writes its benchmark before it exits. Unset (as for every user),
/// they do nothing.
fn apply_test_hooks(spec: &std::path::Path, started: std::time::Instant) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(mb) = var("LAMBDA_HAT_TEST_ALLOCATE_MB") {
        let mut block = vec![0u8; (mb as usize) << 20];
        // Touch every page so the memory is resident (what SLURM's accounting measures).
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        std::hint::black_box(&block);
        std::thread::sleep(std::time::Duration::from_secs(3));
        std::mem::forget(block);
    }
    if let Some(secs) = var("LAMBDA_HAT_TEST_SLEEP_SEC") {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    if let Ok(text) = std::env::var("LAMBDA_HAT_TEST_FAIL_ONCE")
        && !text.is_empty()
        && spec.to_string_lossy().contains(&text)
    {
        let flag = spec.with_file_name("test-failed-once");
        if !flag.exists() {
            let _ = std::fs::write(&flag, "");
            crate::terminal::note!(
                "LAMBDA_HAT_TEST_FAIL_ONCE: {} fails this once",
                spec.display()
            );
            write_benchmark(started.elapsed());
            std::process::exit(1);
        }
    }
}
