//! Running sweeps locally with the real binary and the real worker: incremental runs, reruns of
//! missing or incomplete jobs, a SIGKILLed worker, bit-identical outputs, and the pandas script
//! users already have.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{BIN, TINY_SWEEP, Test};
use lambda_hat::exit_code;

/// Every file under `root`.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn files_named(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files_under(root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect();
    out.sort();
    out
}

#[test]
fn sweep_runs_then_does_nothing_then_runs_only_what_is_new_or_missing() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    assert_eq!(files_named(&t.store(), "meta.json").len(), 2);
    let analyses = files_named(&t.store(), "analysis.json");
    assert_eq!(analyses.len(), 2);
    for a in &analyses {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(a).unwrap()).unwrap();
        for key in [
            "target_id",
            "run_id",
            "sampler",
            "sampler_cfg",
            "llc_mean",
            "llc_std",
            "llc_sem",
            "llc_chain_means",
            "ess",
            "ess_bulk",
            "ess_tail",
            "r_hat",
            "walltime_sec",
            "grad_evals",
            "acceptance_rate",
            "divergences",
            "warnings",
        ] {
            assert!(v.get(key).is_some(), "{} lacks {key}", a.display());
        }
        assert!(v["llc_mean"].as_f64().unwrap().is_finite());
    }

    t.run_with(&["-j", "2"])
        .success()
        .stdout_has("Nothing to be done");

    // A new sampler: only its two runs are planned.
    let more = format!(
        "{TINY_SWEEP}  - {{ name: sgld, overrides: {{ chains: 2, warmup: 50, steps: 100, eval_every: 10, batch_size: 16 }} }}\n"
    );
    std::fs::write(t.path().join("config/experiments.yaml"), &more).unwrap();
    let dry = t.run_with(&["-n"]).success();
    assert_eq!(dry.total_jobs(), 2);
    assert!(!dry.stdout().contains("rule build_target"));
    t.run_with(&["-j", "2"]).success();
    assert_eq!(files_named(&t.store(), "analysis.json").len(), 4);

    // Deleting one analysis.json reruns exactly that job.
    std::fs::remove_file(&analyses[0]).unwrap();
    let dry = t.run_with(&["-n"]).success();
    assert_eq!(dry.total_jobs(), 1);
    assert!(
        dry.stdout().contains(
            analyses[0]
                .strip_prefix(t.path())
                .unwrap()
                .to_str()
                .unwrap()
        )
    );
    t.run_with(&["-j", "2"]).success();
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");

    // --forcerun build_target also redoes everything downstream.
    assert_eq!(
        t.run_with(&["-n", "-q", "-R", "build_target"])
            .success()
            .total_jobs(),
        6
    );
}

#[test]
fn outputs_are_bit_identical_whatever_the_parallelism() {
    let a = Test::new().experiments(TINY_SWEEP);
    let b = Test::new().experiments(TINY_SWEEP);
    a.run_with(&["-j", "1"]).success();
    b.run_with(&["-j", "2"]).success();
    for name in ["trace.npz", "params.npz", "data.npz"] {
        let fa = files_named(&a.store(), name);
        let fb = files_named(&b.store(), name);
        assert_eq!(fa.len(), fb.len());
        assert!(!fa.is_empty());
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(
                x.strip_prefix(a.path()).unwrap(),
                y.strip_prefix(b.path()).unwrap()
            );
            assert!(
                std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
                "{} differs between -j 1 and -j 2",
                x.display()
            );
        }
    }
}

/// PIDs of worker processes running in directory `cwd`.
fn worker_pids(cwd: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let here = std::fs::read_link(e.path().join("cwd")).ok();
        if cmd.contains(" worker ") && here.as_deref() == Some(cwd) {
            pids.push(pid);
        }
    }
    pids
}

/// Starts `lambda-hat -j JOBS` in the background with every worker sleeping 30 s first.
/// The controller's stderr goes to `controller.err` in the test directory.
fn start_slow_sweep(t: &Test, jobs: &str) -> (std::process::Child, PathBuf) {
    start_sweep(t, jobs, "30", false)
}

/// Starts the sweep in the background with `-j jobs`, each worker sleeping `sleep_sec` first,
/// stderr in `controller.err`; with `own_group`, in a process group of its own (as a shell
/// starts a foreground job, so a terminal's Ctrl-C reaches it and its workers alike).
fn start_sweep(
    t: &Test,
    jobs: &str,
    sleep_sec: &str,
    own_group: bool,
) -> (std::process::Child, PathBuf) {
    use std::os::unix::process::CommandExt;
    let stderr = std::fs::File::create(t.path().join("controller.err")).unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .args(["-j", jobs])
        .current_dir(t.path())
        .env("LAMBDA_HAT_TEST_SLEEP_SEC", sleep_sec)
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    if own_group {
        command.process_group(0);
    }
    (command.spawn().unwrap(), t.path().canonicalize().unwrap())
}

/// Waits (at most 20 s) until `n` workers run in `dir`; returns their PIDs.
fn wait_for_workers(dir: &Path, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids = worker_pids(dir);
        if pids.len() >= n || Instant::now() > deadline {
            return pids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_controller_on_a_live_store_is_refused_and_a_killed_ones_lock_is_released() {
    let t = Test::new().experiments(TINY_SWEEP);
    let (mut first, dir) = start_slow_sweep(&t, "1");
    assert_eq!(
        wait_for_workers(&dir, 1).len(),
        1,
        "the first sweep is running"
    );
    // The second would otherwise take the first one's live job for a killed one.
    t.run_with(&["-j", "1"])
        .failure(exit_code::USAGE)
        .clear_error(&[
            "another lambda-hat is running",
            &format!("pid {}", first.id()),
            "lambda-hat status",
        ]);
    t.run_with(&["-j", "1", "--ri"])
        .failure(exit_code::USAGE)
        .stderr_has("another lambda-hat is running");
    // Read-only views need no lock.
    t.run_with(&["-n"]).success();
    t.run_with(&["--summary"]).success();
    // `cancel` has no SLURM job to stop, and says how a local run is stopped.
    t.run_with(&["cancel"])
        .success()
        .stdout_has(&format!("pid {}", first.id()))
        .stdout_has("stop a local run with Ctrl-C");
    // SIGKILL leaves no stale lock (the kernel drops it with the process), and the orphaned
    // worker stops by itself instead of finishing its job beside the next run's.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        wait_until_no_workers(&dir),
        "workers outlived their SIGKILLed controller: {:?}",
        worker_pids(&dir)
    );
    t.run_with(&["-j", "2", "--ri"]).success();
    assert_eq!(
        llc_means(&t),
        uninterrupted_llc_means(),
        "as if never killed"
    );
    t.run_with(&["cancel"])
        .success()
        .stdout_has("No SLURM job of this sweep is queued or running.")
        .stdout_lacks("holds its store");
}

/// Waits (at most 5 s) until no worker runs in `dir`.
fn wait_until_no_workers(dir: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker_pids(dir).is_empty() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn sigterm_and_sighup_stop_the_workers_and_keep_their_markers_like_ctrl_c() {
    // Exit codes as a shell reports a signal: 128 + its number.
    for (signal, code) in [("-TERM", 143), ("-HUP", 129)] {
        let t = Test::new().experiments(TINY_SWEEP);
        // Another sweep's marker in the same store: not this run's to report.
        let other = t.store().join(".lambda-hat/incomplete/tgt_0123456789ab");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, "").unwrap();
        let (mut controller, dir) = start_slow_sweep(&t, "2");
        assert!(
            !wait_for_workers(&dir, 1).is_empty(),
            "{signal}: a worker runs"
        );
        std::process::Command::new("kill")
            .args([signal, &controller.id().to_string()])
            .status()
            .unwrap();
        let status = controller.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{signal}: exits as interrupted");
        assert!(
            wait_until_no_workers(&dir),
            "{signal}: workers outlived the controller"
        );
        // It says how many markers it kept: the jobs that were running (two at -j 2).
        let err = std::fs::read_to_string(t.path().join("controller.err")).unwrap();
        assert!(
            err.contains("2 incomplete markers were kept"),
            "{signal}: {err}"
        );
        // The interrupted job's marker stays, so the next run asks for --ri; with it the sweep
        // finishes with the numbers of a run never interrupted.
        t.run_with(&["-j", "2"])
            .failure(exit_code::USAGE)
            .stderr_has("--rerun-incomplete");
        t.run_with(&["-j", "2", "--ri"]).success();
        assert_eq!(llc_means(&t), uninterrupted_llc_means(), "{signal}");
    }
}

/// `llc_mean` of every run of `t`'s store, by run directory name.
fn llc_means(t: &Test) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = files_named(&t.store(), "analysis.json")
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            (
                v["run_id"].as_str().unwrap().to_string(),
                v["llc_mean"].as_f64().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// TINY_SWEEP's `llc_mean`s when nothing interrupts it.
fn uninterrupted_llc_means() -> Vec<(String, f64)> {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    llc_means(&t)
}

/// Two controllers started at the same instant on one store: exactly one runs the sweep, the
/// other stops naming it, and no job starts twice.
#[test]
fn two_controllers_started_together_run_each_job_once() {
    let t = Test::new().experiments(TINY_SWEEP);
    let spawn = || {
        std::process::Command::new(BIN)
            .args(["-j", "1"])
            .current_dir(t.path())
            .env("LAMBDA_HAT_TEST_SLEEP_SEC", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(exit_code::SUCCESS), Some(exit_code::USAGE)],
        "exactly one runs"
    );
    let loser = if a.status.code() == Some(exit_code::USAGE) {
        &a
    } else {
        &b
    };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("another lambda-hat is running") && err.contains("pid "),
        "{err}"
    );
    let journal = std::fs::read_to_string(t.store().join(".lambda-hat/journal.jsonl")).unwrap();
    let mut started: Vec<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "started")
        .map(|e| e["job"].as_str().unwrap().to_string())
        .collect();
    let all = started.len();
    started.sort();
    started.dedup();
    assert_eq!(all, started.len(), "a job started twice: {journal}");
    assert_eq!(llc_means(&t), uninterrupted_llc_means());
}

/// A finished job whose files are emptied or truncated is not done: the plan, `--summary` and
/// `status` call it corrupt, and the next run redoes it (a damaged target with its runs), with
/// the same numbers as before.
#[test]
fn emptied_or_truncated_outputs_are_corrupt_and_redone() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let analyses = files_named(&t.store(), "analysis.json");
    let read_llc = |p: &Path| -> f64 {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["llc_mean"].as_f64().unwrap()
    };
    let before = read_llc(&analyses[0]);
    std::fs::write(&analyses[0], "").unwrap();
    let params = files_named(&t.store(), "params.npz");
    let other_target = params
        .iter()
        .find(|p| !analyses[0].starts_with(p.parent().unwrap()))
        .expect("two targets")
        .clone();
    let bytes = std::fs::read(&other_target).unwrap();
    std::fs::write(&other_target, &bytes[..bytes.len() / 2]).unwrap();

    let dry = t.run_with(&["-n"]).success();
    assert_eq!(
        dry.stdout().matches("reason: Corrupt output files").count(),
        2,
        "{}",
        dry.stdout()
    );
    t.run_with(&["--summary"]).success().stdout_has("corrupt");
    t.run_with(&["status"]).success().stdout_has("corrupt");
    // The damaged target's runs are no results either: redone with its rebuild, so `status`
    // counts them outdated and `results` lists them apart, saying why.
    let status = t.run_with(&["status"]).success().stdout();
    assert!(status.contains("outdated"), "{status}");
    // Nor does the health line count them healthy (the other run is corrupt: not counted either).
    assert!(
        status.contains("health: 0 healthy, 0 unhealthy runs")
            && status.contains("1 outdated run(s) not counted"),
        "{status}"
    );
    let results = t
        .run_with(&["results", "--format", "json"])
        .success()
        .stdout();
    let doc: serde_json::Value = serde_json::from_str(&results).unwrap();
    let damaged_dir = other_target.parent().unwrap();
    assert!(
        doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !damaged_dir.ends_with(r["target_id"].as_str().unwrap())),
        "{results}"
    );
    assert!(
        doc["not_finished"]
            .to_string()
            .contains("its target's files are damaged"),
        "{results}"
    );
    t.run_with(&["-j", "2"]).success();
    assert_eq!(read_llc(&analyses[0]), before, "redone bit for bit");
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");

    // A marker that parses and names its job but is not what the job wrote (edited by hand)
    // does not match the hash the journal recorded when the job finished.
    let mut edited: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&analyses[0]).unwrap()).unwrap();
    edited["llc_mean"] = serde_json::json!(before + 1.0);
    std::fs::write(&analyses[0], serde_json::to_vec(&edited).unwrap()).unwrap();
    t.run_with(&["-n"])
        .success()
        .stdout_has("reason: Corrupt output files");
    // Nor is it a healthy result: `results` shows it unhealthy, saying the next sweep redoes it.
    let results = t
        .run_with(&["results", "--format", "json"])
        .success()
        .stdout();
    let doc: serde_json::Value = serde_json::from_str(&results).unwrap();
    let edited_row = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["llc_mean"].as_f64() == Some(before + 1.0))
        .expect("the edited run is listed");
    assert_eq!(edited_row["healthy"], false, "{results}");
    assert!(
        edited_row["warnings"]
            .to_string()
            .contains("the next sweep redoes it"),
        "{results}"
    );
    t.run_with(&["-j", "2"]).success();
    assert_eq!(
        read_llc(&analyses[0]),
        before,
        "the job's own numbers are back"
    );
}

/// A target file swapped for another target's (whole, same shape) is caught by the hash its
/// meta.json recorded: the run fails blaming the target, and the next run rebuilds the target and
/// redoes its runs.
#[test]
fn a_swapped_data_file_is_caught_and_its_target_rebuilt() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let data = files_named(&t.store(), "data.npz");
    assert_eq!(data.len(), 2);
    let original = std::fs::read(&data[0]).unwrap();
    std::fs::copy(&data[1], &data[0]).unwrap();
    let out = t.run_with(&["-j", "2", "-R", "run_sampler"]);
    assert_eq!(
        out.code(),
        Some(exit_code::FAILED),
        "the runs on the damaged target fail"
    );
    let err = out.stderr();
    let log_text: String = files_under(&t.store().join("logs"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(
        log_text.contains("The target is damaged, not this run"),
        "{err}\n{log_text}"
    );
    t.run_with(&["-j", "2"]).success();
    assert_eq!(
        std::fs::read(&data[0]).unwrap(),
        original,
        "rebuilt as before"
    );
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Makes target `to` another build of itself: `from`'s w* (same shapes) with `to`'s meta.json
/// recording it, and the target touched so the store accepts it as it is (as a target rebuilt by
/// another lambda-hat would be).
fn rebuild_with_params_of(t: &Test, from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let meta_path = to.parent().unwrap().join("meta.json");
    let mut meta = read_json(&meta_path);
    meta["files"]["params.npz"] =
        read_json(&from.parent().unwrap().join("meta.json"))["files"]["params.npz"].clone();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    touch(t, &meta_path);
}

/// `lambda-hat --touch` of one output, given by its absolute path.
fn touch(t: &Test, output: &Path) {
    let rel = output.strip_prefix(t.path()).unwrap().to_string_lossy();
    t.run_with(&["--touch", &rel]).success();
}

/// A run of an earlier build of its target (a target rebuilt by another lambda-hat, or by an
/// interrupted `-R build_target` that left the old runs) is outdated: `-n`, `--summary`,
/// `status` and `results` say so, the next sweep redoes it and only it, and `--touch` accepts it
/// as it is, as Snakemake's does.
#[test]
fn a_run_of_an_earlier_build_of_its_target_is_outdated_and_redone() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let params = files_named(&t.store(), "params.npz");
    let original = std::fs::read(&params[0]).unwrap();
    let original_meta = std::fs::read(params[0].parent().unwrap().join("meta.json")).unwrap();
    rebuild_with_params_of(&t, &params[1], &params[0]);

    let dry = t.run_with(&["-n"]).success().stdout();
    assert_eq!(
        dry.matches("reason: Updated input files").count(),
        1,
        "{dry}"
    );
    assert!(dry.contains("rule run_sampler:") && !dry.contains("rule build_target:"));
    t.run_with(&["--summary"])
        .success()
        .stdout_has("updated input files");
    let outdated = |t: &Test| -> u64 {
        let status = t.run_with(&["status", "--json"]).success().stdout();
        let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
        doc["rules"]["run_sampler"]["outdated"].as_u64().unwrap()
    };
    assert_eq!(outdated(&t), 1);
    let results = t
        .run_with(&["results", "--format", "json"])
        .success()
        .stdout();
    let doc: serde_json::Value = serde_json::from_str(&results).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 1, "{results}");
    assert_eq!(doc["not_finished"][0]["status"], "outdated", "{results}");

    let out = t.run_with(&["-j", "2"]).success();
    out.stderr_has("1 of 1 jobs done");
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");

    // Back to the first build: the run just redone is now the outdated one, and `--touch`
    // accepts it as it is.
    std::fs::write(&params[0], &original).unwrap();
    let meta_path = params[0].parent().unwrap().join("meta.json");
    std::fs::write(&meta_path, &original_meta).unwrap();
    touch(&t, &meta_path);
    t.run_with(&["-n"])
        .success()
        .stdout_has("reason: Updated input files");
    t.run_with(&["--touch"]).success();
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
    assert_eq!(outdated(&t), 0);
}

#[test]
fn a_sigkilled_worker_leaves_no_marker_and_needs_rerun_incomplete() {
    let t = Test::new().experiments(TINY_SWEEP);
    // Build the targets first, then make the sampler jobs slow enough to be killed mid-job.
    t.run_with(&["-j", "2", "runs/targets/*/meta.json"])
        .success();
    let (mut controller, dir) = start_slow_sweep(&t, "1");
    let pids = wait_for_workers(&dir, 1);
    assert_eq!(pids.len(), 1, "expected one running worker");
    std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    let status = controller.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(exit_code::FAILED),
        "the controller reports the killed job as failed"
    );
    // Its closing advice is the command that works next: the same one with --ri.
    let advice = std::fs::read_to_string(t.path().join("controller.err")).unwrap();
    assert!(
        advice.contains("run the same command again with --ri"),
        "{advice}"
    );

    assert_eq!(
        files_named(&t.store(), "analysis.json").len(),
        0,
        "a killed job leaves no marker"
    );
    let refused = t.run_with(&["-j", "2"]).failure(exit_code::USAGE);
    refused
        .stderr_has("incomplete")
        .stderr_has("--rerun-incomplete");
    let dry = t.run_with(&["-n", "--ri"]).success();
    // The killed job is redone as incomplete; the job never started is simply missing.
    assert_eq!(
        dry.stdout().matches("reason: Incomplete").count(),
        1,
        "{}",
        dry.stdout()
    );
    t.run_with(&["-j", "2", "--rerun-incomplete"]).success();
    assert_eq!(files_named(&t.store(), "analysis.json").len(), 2);
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
}

#[test]
fn a_failing_job_stops_new_launches_and_names_its_log() {
    // A target whose training diverges: learning rate far too large.
    let yaml = "targets:\n  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 100 }, training: { steps: 200, learning_rate: 1.0e6, optimizer: sgd } } }\nsamplers:\n  - { name: sgld }\n";
    let out = Test::new()
        .experiments(yaml)
        .args(["-j", "2"])
        .run()
        .failure(exit_code::FAILED);
    out.stderr_has("1 of 2 jobs failed")
        .stderr_has("log: runs/logs/build_target/tgt_");
}

#[test]
fn the_pandas_script_users_have_reads_the_store() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let csv = t
        .run_with(&["results", "--format", "csv"])
        .success()
        .stdout();
    let csv_path = t.path().join("results.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/analyze_sweep.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(t.store())
        .arg(&csv_path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "analyze_sweep.py failed (numpy and pandas are installed by scripts/test.sh):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// README's ArviZ recipe, run with the real `arviz` package on every sampler's trace:
/// `az.summary` must give analysis.json's mean, ESS, R-hat and MCSE, and `diverging` must be a
/// boolean array whose count is analysis.json's `divergences`.
#[test]
fn arviz_reads_every_trace_and_agrees_with_analysis_json() {
    let yaml = r#"
store_root: runs
targets:
  - { model: small, data: small, seed: 1, overrides: { data: { n_data: 200 }, training: { steps: 300 } } }
samplers:
  - { name: hmc, overrides: { chains: 2, warmup: 100, draws: 200, num_integration_steps: 5 } }
  - { name: nuts, overrides: { chains: 2, warmup: 100, draws: 200 } }
  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 400, eval_every: 10, batch_size: 32 } }
  - { name: mclmc, overrides: { chains: 2, num_tuning_steps: 300, draws: 400 } }
"#;
    let t = Test::new().experiments(yaml);
    t.run_with(&["-j", "2", "-q"]).success();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/arviz_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(t.store())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "arviz_check.py failed (arviz is installed by scripts/test.sh):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 runs checked (2 with sample_stats.diverging), 0 differences"),
        "{stdout}"
    );
}

#[test]
fn a_float32_sweep_runs_in_f32_end_to_end() {
    let yaml = TINY_SWEEP.replace(
        "store_root: runs",
        "store_root: runs\njax_enable_x64: false",
    );
    let t = Test::new().experiments(&yaml);
    t.run_with(&["-j", "2"]).success();
    let meta = files_named(&t.store(), "meta.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta[0]).unwrap()).unwrap();
    assert_eq!(v["precision"], "f32");
    // numpy dtype of the stored parameters: little-endian float32 ("<f4") in the .npy header.
    let params = std::fs::read(meta[0].with_file_name("params.npz")).unwrap();
    let text = String::from_utf8_lossy(&params);
    assert!(
        text.contains("'descr': '<f4'"),
        "params.npz should hold float32 arrays"
    );
    let analysis = files_named(&t.store(), "analysis.json");
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&analysis[0]).unwrap()).unwrap();
    assert_eq!(a["precision"], "f32");
    assert!(a["llc_mean"].as_f64().unwrap().is_finite());
}

#[test]
fn ctrl_c_stops_the_workers_keeps_markers_and_exits_130() {
    let t = Test::new().experiments(TINY_SWEEP);
    let (mut controller, dir) = start_slow_sweep(&t, "2");
    wait_for_workers(&dir, 2);
    assert_eq!(worker_pids(&dir).len(), 2, "two workers should be running");
    std::process::Command::new("kill")
        .args(["-INT", &controller.id().to_string()])
        .status()
        .unwrap();
    let status = controller.wait().unwrap();
    assert_eq!(status.code(), Some(exit_code::SIGINT));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !worker_pids(&dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worker_pids(&dir).is_empty(), "workers must be stopped");
    t.run_with(&["-n"])
        .failure(exit_code::USAGE)
        .stderr_has("--rerun-incomplete");
}

/// A terminal's Ctrl-C reaches the controller and its workers at once (one process group). A
/// worker that dies of it first is not a failed job: the run is interrupted, exit 130. Before,
/// about 1 try in 8 exited 1 with "FAILED … killed by signal 2". Three tries, as the race is.
#[test]
fn ctrl_c_to_the_process_group_is_an_interrupt_not_a_failure() {
    for _ in 0..3 {
        let t = Test::new().experiments(TINY_SWEEP);
        let (mut controller, dir) = start_sweep(&t, "2", "30", true);
        assert!(!wait_for_workers(&dir, 2).is_empty(), "workers started");
        std::process::Command::new("kill")
            .args(["-INT", "--", &format!("-{}", controller.id())])
            .status()
            .unwrap();
        let status = controller.wait().unwrap();
        let err = std::fs::read_to_string(t.path().join("controller.err")).unwrap();
        assert_eq!(status.code(), Some(exit_code::SIGINT), "{err}");
        assert!(!err.contains("FAILED"), "{err}");
    }
}

/// A job whose worker finished while the controller was busy (here: stopped) is kept as done
/// when the controller then handles Ctrl-C, not left incomplete to be computed again.
#[test]
fn a_job_that_finished_as_ctrl_c_came_is_kept() {
    let t = Test::new().experiments(TINY_SWEEP);
    let (mut controller, dir) = start_sweep(&t, "1", "1", false);
    assert_eq!(wait_for_workers(&dir, 1).len(), 1, "the build started");
    let pid = controller.id().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !worker_pids(&dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worker_pids(&dir).is_empty(), "the build's worker finished");
    signal("-INT");
    signal("-CONT");
    let status = controller.wait().unwrap();
    assert_eq!(status.code(), Some(exit_code::SIGINT));
    let meta = files_named(&t.store(), "meta.json");
    assert_eq!(meta.len(), 1, "the build wrote its output");
    let target = meta[0].parent().unwrap().file_name().unwrap();
    assert!(
        !t.store()
            .join(".lambda-hat/incomplete")
            .join(target)
            .exists(),
        "the build is not left incomplete"
    );
    let journal = std::fs::read_to_string(t.store().join(".lambda-hat/journal.jsonl")).unwrap();
    let build_events: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains(&format!("\"job\":\"{}\"", target.to_string_lossy())))
        .collect();
    assert!(
        build_events
            .last()
            .is_some_and(|l| l.contains("\"event\":\"finished\"")),
        "{journal}"
    );
    // The rerun does not build that target again. (`--ri`: if the controller saw the build end
    // before the signal, it started a sampler run, which the interrupt then left incomplete.)
    let built = meta[0]
        .strip_prefix(t.path())
        .unwrap()
        .display()
        .to_string();
    t.run_with(&["-n", "--ri"])
        .success()
        .stdout_lacks(&format!("output: {built}"));
}

/// A run whose trace.npz was deleted or cut short is redone, and the dry run's reason names
/// that file, not the analysis.json that is still there.
#[test]
fn the_dry_run_reason_names_the_file_that_is_missing_or_cut_short() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2", "-q"]).success();
    let analyses = files_named(&t.store(), "analysis.json");
    let rel = |p: &Path| p.strip_prefix(t.path()).unwrap().display().to_string();
    let deleted = analyses[0].with_file_name("trace.npz");
    std::fs::remove_file(&deleted).unwrap();
    let cut = analyses[1].with_file_name("trace.npz");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let dry = t.run_with(&["-n"]).success();
    let out = dry.stdout();
    assert!(
        out.contains(&format!("Missing output files: {}\n", rel(&deleted))),
        "{out}"
    );
    assert!(out.contains(&format!(": {}\n", rel(&cut))), "{out}");
    assert!(
        !out.contains(&format!("files: {}", rel(&analyses[0]))),
        "{out}"
    );
}

#[test]
fn retries_start_a_failed_job_again() {
    // A worker command that fails the first attempt of every job, then runs the real worker.
    let script = format!(
        "#!/bin/sh\nmark=\"$(echo \"$*\" | tr -c 'a-zA-Z0-9' _).tried\"\nif [ ! -e \"$mark\" ]; then touch \"$mark\"; echo 'flaky first attempt' >&2; exit 3; fi\nexec {BIN} \"$@\"\n"
    );
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("flaky.sh", &script)
        .file(
            "profiles/flaky/config.yaml",
            "worker-command: sh flaky.sh\n",
        );
    t.run_with(&["-j", "2", "--profile", "flaky"])
        .failure(exit_code::FAILED)
        .stderr_has("exited with code 3");
    // The failed targets were not built; with one retry every job succeeds on its second attempt.
    let t2 = Test::new()
        .experiments(TINY_SWEEP)
        .file("flaky.sh", &script)
        .file(
            "profiles/flaky/config.yaml",
            "worker-command: sh flaky.sh\n",
        );
    t2.run_with(&["-j", "2", "--profile", "flaky", "-T", "1"])
        .success();
    assert_eq!(files_named(&t2.store(), "analysis.json").len(), 2);
    let journal = std::fs::read_to_string(t2.store().join(".lambda-hat/journal.jsonl")).unwrap();
    assert_eq!(
        journal.matches("\"event\":\"retry\"").count(),
        4,
        "one retry per job"
    );
}

#[test]
fn reports_read_the_store_the_experiments_file_names() {
    // Without --runs-root, `results` and `promote gallery` read the sweep's store_root.
    let t =
        Test::new().experiments(&TINY_SWEEP.replace("store_root: runs", "store_root: elsewhere"));
    t.run_with(&["-j", "2"]).success();
    assert!(t.path().join("elsewhere/targets").is_dir() && !t.store().exists());
    let table = t.run_with(&["results"]).success().stdout();
    assert_eq!(
        table.lines().filter(|l| l.contains("run_sgld_")).count(),
        2,
        "{table}"
    );
    t.run_with(&["promote", "gallery", "--outdir", "gallery"])
        .success();
    assert!(t.path().join("gallery/sgld.png").is_file());
}

#[test]
fn reports_on_a_finished_store() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();

    let table = t.run_with(&["results"]).success().stdout();
    assert_eq!(
        table.lines().filter(|l| l.contains("run_sgld_")).count(),
        2,
        "{table}"
    );
    let grouped = t
        .run_with(&["results", "--group-by", "sampler", "--format", "csv"])
        .success()
        .stdout();
    assert!(
        grouped.lines().next().unwrap().starts_with("sampler,"),
        "{grouped}"
    );

    t.run_with(&["results", "--runs-root", "nowhere"])
        .failure(exit_code::USAGE)
        .clear_error(&["nowhere"]);
    t.run_with(&["results", "--group-by", "colour"])
        .failure(exit_code::USAGE)
        .clear_error(&["colour", "sampler"]);
    let bad_format = t.run_with(&["results", "--format", "xlsx"]);
    assert_eq!(
        bad_format.code(),
        Some(exit_code::USAGE),
        "{}",
        bad_format.stderr()
    );
    assert!(
        bad_format.stderr().contains("csv"),
        "lists valid formats: {}",
        bad_format.stderr()
    );

    // promote twice into the same README: one snippet.
    std::fs::write(t.path().join("README.md"), "# My sweep\n\nText kept.\n").unwrap();
    for _ in 0..2 {
        t.run_with(&[
            "promote",
            "gallery",
            "--samplers",
            "sgld",
            "--outdir",
            "gallery",
            "--snippet-out",
            "README.md",
        ])
        .success();
    }
    let readme = std::fs::read_to_string(t.path().join("README.md")).unwrap();
    assert_eq!(
        readme.matches("<!-- lambda-hat gallery: begin -->").count(),
        1
    );
    assert!(readme.contains("Text kept.") && t.path().join("gallery/sgld.png").is_file());
    t.run_with(&["promote", "gallery", "--samplers", "hmc"])
        .failure(exit_code::USAGE)
        .clear_error(&["hmc", "sgld"]);

    // clean: with the file unchanged nothing is unreferenced; after dropping a target, only it goes.
    let one_target = TINY_SWEEP.replace("  - { model: small, data: small, seed: 2, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }\n", "");
    std::fs::write(t.path().join("config/experiments.yaml"), &one_target).unwrap();
    t.run_with(&["clean"]).success();
    assert_eq!(
        files_named(&t.store(), "meta.json").len(),
        2,
        "clean without --yes deletes nothing"
    );
    // Not while another controller holds the store: its jobs are being written.
    let lock = std::fs::File::open(t.store().join(".lambda-hat/lock")).unwrap();
    lock.try_lock().unwrap();
    t.run_with(&["clean", "--yes"])
        .failure(exit_code::USAGE)
        .clear_error(&["another lambda-hat is running"]);
    drop(lock);
    assert_eq!(files_named(&t.store(), "meta.json").len(), 2);
    t.run_with(&["clean", "--yes"]).success();
    assert_eq!(files_named(&t.store(), "meta.json").len(), 1);
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
}

/// Two experiments files share one store: `clean` with one keeps what the other still plans
/// (its results are not leftovers), and frees what neither plans any more.
#[test]
fn clean_keeps_the_results_of_the_other_sweeps_in_the_store() {
    let other = |seed: u32| {
        format!(
            "store_root: runs\ntargets:\n  - {{ model: small, data: small, seed: {seed}, overrides: {{ data: {{ n_data: 200 }}, training: {{ steps: 100 }} }} }}\nsamplers:\n  - {{ name: sgld, overrides: {{ chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 }} }}\n"
        )
    };
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("config/other.yaml", &other(7));
    t.run_with(&["-j", "2", "-q"]).success();
    t.run_with(&["-j", "2", "-q", "--configfile", "config/other.yaml"])
        .success();
    assert_eq!(files_named(&t.store(), "meta.json").len(), 3);
    t.run_with(&["clean", "--yes"])
        .success()
        .stdout_has("Kept what the other sweeps that write into this store still plan")
        .stdout_has("other.yaml");
    assert_eq!(
        files_named(&t.store(), "meta.json").len(),
        3,
        "the other sweep's target and run stay"
    );
    // A recorded file that no longer plans (an edit with a mistake), or a record that cannot
    // be read: what that sweep keeps is unknown, so nothing is deleted.
    std::fs::write(t.path().join("config/other.yaml"), "targets: [oops\n").unwrap();
    t.run_with(&["clean"])
        .success()
        .stdout_has("with --yes, clean will refuse");
    t.run_with(&["clean", "--yes"])
        .failure(exit_code::USAGE)
        .clear_error(&["nothing was deleted", "other.yaml no longer plans"]);
    std::fs::write(t.path().join("config/other.yaml"), other(7)).unwrap();
    let records: Vec<_> = std::fs::read_dir(t.store().join(".lambda-hat/sweeps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let other_record = records
        .iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("other.yaml"))
        .expect("the other sweep's record")
        .clone();
    let whole = std::fs::read(&other_record).unwrap();
    std::fs::write(&other_record, &whole[..20]).unwrap();
    t.run_with(&["clean", "--yes"])
        .failure(exit_code::USAGE)
        .clear_error(&["nothing was deleted", "not readable JSON"]);
    assert_eq!(files_named(&t.store(), "meta.json").len(), 3);
    std::fs::write(&other_record, &whole).unwrap();

    // A job submitted to SLURM and not known to have ended is being written: kept, even when
    // no sweep plans it any more. The other sweep ran last, so its target is the last built.
    let journal_path = t.store().join(".lambda-hat/journal.jsonl");
    let journal = std::fs::read_to_string(&journal_path).unwrap();
    let other_target = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|e| e["rule"] == "build_target" && e["event"] == "finished")
        .map(|e| e["job"].as_str().unwrap().to_string())
        .expect("a build_target event");
    let event = |name: &str| {
        format!(
            "{{\"time\":\"2026-12-06T00:00:00+00:00\",\"event\":\"{name}\",\"job\":\"{other_target}\",\"rule\":\"build_target\",\"executor\":\"slurm\",\"detail\":{{\"name\":\"lh-x\"}}}}\n"
        )
    };
    let append = |line: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal_path)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    };
    append(event("submitting"));
    std::fs::write(t.path().join("config/other.yaml"), other(8)).unwrap();
    t.run_with(&["clean", "--yes"])
        .success()
        .stdout_has("Kept 1 job(s) submitted to SLURM");
    assert!(
        t.store()
            .join("targets")
            .join(&other_target)
            .join("meta.json")
            .is_file()
    );
    append(event("cancelled"));

    // The other file now plans another seed: its old target is nobody's, and goes.
    t.run_with(&["clean", "--yes"]).success();
    assert_eq!(files_named(&t.store(), "meta.json").len(), 2);
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
}

#[test]
fn the_closing_summary_names_unhealthy_runs_and_unconverged_targets() {
    // TINY_SWEEP records 20 draws per chain: bulk ESS < 100 (and, here, R-hat > 1.01), so every
    // run is unhealthy.
    let t = Test::new().experiments(TINY_SWEEP);
    let first = t.run_with(&["-j", "2"]).success();
    let err = first.stderr();
    let done = err.find("4 of 4 jobs done.").expect("done line");
    let listed = err
        .find("2 of 2 sampler runs are unhealthy:")
        .expect("health");
    assert!(done < listed, "{err}");
    let listed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("  runs/targets/tgt_") && l.contains("/run_"))
        .collect();
    assert_eq!(listed.len(), 2, "{err}");
    // TINY_SWEEP's 100 training steps do not reach a minimum of these relu networks either:
    // both targets are named, with the criterion that failed.
    assert!(err.contains("2 of 2 targets did not converge:"), "{err}");
    let targets = err
        .lines()
        .filter(|l| l.starts_with("  runs/targets/tgt_") && l.contains("target not converged"))
        .count();
    assert_eq!(targets, 2, "{err}");
    assert!(
        listed
            .iter()
            .all(|l| l.contains("/run_sgld_")
                && (l.contains(" : R-hat ") || l.contains(" : bulk ESS "))),
        "{err}"
    );

    // A target known not to be converged: its rerun sampler run says so, and the summary names
    // the target too.
    let metas = files_named(&t.store(), "meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metas[0]).unwrap()).unwrap();
    meta["convergence"] = serde_json::json!({
        "converged": false, "grad_norm": 0.25, "grad_tol": 1e-6, "criterion": "grad_norm",
        "optimizer_steps": 100, "finish": "none", "finish_steps": 0
    });
    meta["warnings"] = serde_json::json!(["target not converged: gradient norm 0.25 > 1e-6"]);
    std::fs::write(&metas[0], meta.to_string()).unwrap();
    // A hand-edited meta.json no longer matches the hash the journal recorded for it, which
    // would make the target corrupt and rebuilt; without a journal (a store from before hashes
    // were recorded) the edited marker stands, which is what this test needs.
    std::fs::remove_file(t.store().join(".lambda-hat/journal.jsonl")).unwrap();
    let target_dir = metas[0].parent().unwrap();
    let analysis = files_named(target_dir, "analysis.json").remove(0);
    std::fs::remove_file(&analysis).unwrap();

    let second = t.run_with(&["-j", "2"]).success();
    let err = second.stderr();
    assert!(err.contains("1 of 1 jobs done."), "{err}");
    assert!(err.contains("2 of 2 sampler runs are unhealthy:"), "{err}");
    let target_id = target_dir.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("2 of 2 targets did not converge:"), "{err}");
    assert!(
        err.contains(&format!(
            "\n  runs/targets/{target_id} : target not converged: gradient norm 0.25"
        )),
        "{err}"
    );
    let rerun: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&analysis).unwrap()).unwrap();
    assert_eq!(rerun["healthy"], false);
    let last = rerun["warnings"].as_array().unwrap().last().unwrap();
    assert!(
        last.as_str().unwrap().starts_with(&format!(
            "target {target_id} is not a converged minimum (gradient norm 2.500e-1 > tol 1.000e-6)"
        )),
        "{last}"
    );

    t.run_with(&["status"])
        .success()
        .stdout_has("health: 0 healthy, 2 unhealthy runs; 2 of 2 targets not converged");
    let csv = t
        .run_with(&["results", "--format", "csv", "--healthy-only"])
        .success();
    assert_eq!(csv.stdout().lines().count(), 1, "{}", csv.stdout());
    assert!(csv.stderr().contains("left out 2"), "{}", csv.stderr());
}

#[test]
fn an_exploding_sampler_fails_its_job_and_writes_no_result() {
    // A deep linear target (converges quickly) and an SGLD step ten million times too large:
    // the chain explodes, three restarts at /10 each do not save it, and the job fails naming
    // the setting. No analysis.json may exist, so `results` has nothing to show.
    let yaml = "targets:\n  - { model: small, data: small, teacher: _null, seed: 1, overrides: { model: { depth: 1, target_params: null, widths: [3], activation: identity, bias: false }, data: { n_data: 300 } } }\nsamplers:\n  - { name: sgld, overrides: { step_size: 1.0e4, chains: 2, warmup: 100, steps: 400, eval_every: 10 } }\n";
    let t = Test::new().experiments(yaml);
    let out = t.run_with(&["-j", "2"]).failure(exit_code::FAILED);
    // The failure list quotes the worker's own error, not only its exit code.
    out.stderr_has("1 of 2 jobs failed")
        .stderr_has("log: runs/logs/run_sampler/tgt_")
        .stderr_has("the worker exited with code 1: ")
        .stderr_has("exploded");
    let results = t.run_with(&["results", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&results.stdout()).unwrap();
    assert_eq!(doc["not_finished"][0]["status"], "failed", "{doc}");
    assert!(
        doc["not_finished"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("exploded"),
        "{doc}"
    );
    let log: String = std::fs::read_dir(t.path().join("runs/logs/run_sampler"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        log.contains("exploded") && log.contains("step_size"),
        "{log}"
    );
    assert!(files_named(&t.store(), "analysis.json").is_empty());
}

// ---- Snakemake's verbs: each checked against what Snakemake's flag means ----------------------

/// `--list` (`--list-rules`) prints each rule with what it makes; `--rulegraph` is the rule
/// graph in DOT. Neither needs an experiments file, as Snakemake's need only the Snakefile.
#[test]
fn list_and_rulegraph_describe_the_rules() {
    let t = Test::new();
    for flag in ["--list", "--list-rules", "-l"] {
        let out = t.run_with(&[flag]).success().stdout();
        let rules: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(rules, ["build_target", "run_sampler"], "{out}");
        assert!(out.contains("analysis.json"), "{out}");
    }
    let dot = t.run_with(&["--rulegraph"]).success().stdout();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(
        dot.contains("    0 -> 1\n"),
        "build_target feeds run_sampler:\n{dot}"
    );
    assert_renders_as_svg(&dot);
}

/// Runs Graphviz's `dot -Tsvg` on `dot_text` (scripts/test.sh installs graphviz) and returns
/// the SVG.
fn assert_renders_as_svg(dot_text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz's `dot` (apt-get install graphviz; scripts/test.sh does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot_text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot -Tsvg failed: {}\n{dot_text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    svg
}

/// `--dag`: every job of the request, an edge from each target to its runs, solid for jobs
/// that would run and dashed for those with nothing to do; a glob narrows it.
#[test]
fn dag_is_dot_that_graphviz_renders_and_marks_finished_jobs_dashed() {
    let t = Test::new().experiments(TINY_SWEEP);
    let before = t.run_with(&["--dag"]).success().stdout();
    assert_eq!(before.matches("[label = ").count(), 4, "{before}");
    assert_eq!(before.matches(" -> ").count(), 2, "{before}");
    assert!(!before.contains("dashed"), "nothing is done yet:\n{before}");
    let svg = assert_renders_as_svg(&before);
    assert_eq!(svg.matches("class=\"node\"").count(), 4, "{svg}");

    t.run_with(&["-j", "2", "runs/targets/*/meta.json"])
        .success();
    let after = t.run_with(&["--dag"]).success().stdout();
    let dashed: Vec<&str> = after.lines().filter(|l| l.contains("dashed")).collect();
    assert_eq!(dashed.len(), 2, "the built targets are dashed:\n{after}");
    assert!(dashed.iter().all(|l| l.contains("build_target")), "{after}");
    let one = t
        .run_with(&["--dag", "runs/targets/*/meta.json"])
        .success()
        .stdout();
    assert_eq!(one.matches("[label = ").count(), 2, "{one}");
    assert_renders_as_svg(&one);
}

/// `-F` reruns every job the request needs, done or not (`-R RULE` only that rule's jobs and
/// what depends on them); `--until build_target` runs only the targets.
#[test]
fn forceall_and_until_select_jobs_as_snakemake_does() {
    let t = Test::new().experiments(TINY_SWEEP);
    let until = t
        .run_with(&["-n", "--until", "build_target"])
        .success()
        .stdout();
    assert_eq!(until.matches("rule build_target:").count(), 2, "{until}");
    assert_eq!(until.matches("rule run_sampler:").count(), 0, "{until}");
    t.run_with(&["-j", "2", "--until", "build_target"])
        .success();
    assert_eq!(files_named(&t.store(), "meta.json").len(), 2);
    assert_eq!(files_named(&t.store(), "analysis.json").len(), 0);
    t.run_with(&["-j", "2"]).success();
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");

    let all = t.run_with(&["-n", "-F"]).success().stdout();
    assert_eq!(all.matches("reason: Forced execution").count(), 4, "{all}");
    let targets = t
        .run_with(&["-n", "--forceall", "runs/targets/*/meta.json"])
        .success()
        .stdout();
    assert_eq!(
        targets.matches("reason: Forced execution").count(),
        2,
        "{targets}"
    );
    assert_eq!(targets.matches("rule run_sampler:").count(), 0, "{targets}");
    t.run_with(&["-n", "--until", "all_rules"])
        .failure(exit_code::USAGE)
        .stderr_has("build_target");
}

/// `-p` prints each job's command: in a dry run after its block, in a run as it starts. The
/// printed command is the one that runs the job (here it is run by hand and succeeds).
#[test]
fn printshellcmds_prints_the_command_that_runs_each_job() {
    let t = Test::new().experiments(TINY_SWEEP);
    let dry = t
        .run_with(&["-n", "-p", "--until", "build_target"])
        .success()
        .stdout();
    let commands: Vec<&str> = dry
        .lines()
        .filter(|l| l.contains(" worker build-target "))
        .collect();
    assert_eq!(commands.len(), 2, "{dry}");
    let run = t
        .run_with(&["-j", "1", "--printshellcmds", "--until", "build_target"])
        .success();
    assert_eq!(
        run.stderr().matches(" worker build-target ").count(),
        2,
        "{}",
        run.stderr()
    );
    // The printed command runs the job: rerun one target by hand from its spec.
    let words: Vec<&str> = commands[0].split_whitespace().collect();
    let out = std::process::Command::new(words[0])
        .args(&words[1..])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--config KEY=VALUE` sets experiments-file keys with the file's own validation: a new
/// store root moves every output, a posterior key changes the runs' IDs but not the targets'.
#[test]
fn config_sets_experiments_file_keys_with_the_same_validation() {
    let t = Test::new().experiments(TINY_SWEEP);
    let moved = t
        .run_with(&["-n", "--config", "store_root=elsewhere"])
        .success()
        .stdout();
    assert_eq!(
        moved.matches("output: elsewhere/targets/").count(),
        4,
        "{moved}"
    );
    let default = t.run_with(&["-n"]).success().stdout();
    let gamma = t
        .run_with(&["-n", "--config", "posterior.gamma=10"])
        .success()
        .stdout();
    let outputs = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.trim().strip_prefix("output: "))
            .map(String::from)
            .collect()
    };
    let (d, g) = (outputs(&default), outputs(&gamma));
    assert_eq!(d[..2], g[..2], "the targets are the same");
    assert_ne!(
        d[2..],
        g[2..],
        "the runs' posterior changed, so do their IDs"
    );
    t.run_with(&["-n", "--config", "posterior.gamma=-1"])
        .failure(exit_code::USAGE)
        .stderr_has("gamma");
    t.run_with(&["-n", "--config", "bogus=1"])
        .failure(exit_code::USAGE)
        .stderr_has("bogus");
    t.run_with(&["-n", "--config", "store_root"])
        .failure(exit_code::USAGE)
        .stderr_has("KEY=VALUE");
}

/// `--touch` marks outputs up to date without running them: an incomplete marker or an
/// edited marker is accepted as it is; a missing output is never created (exit 1, named).
#[test]
fn touch_marks_whole_outputs_up_to_date_and_refuses_missing_ones() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let analyses = files_named(&t.store(), "analysis.json");
    // Edited by hand: the journal's hash no longer matches, so the job would run again.
    let text = std::fs::read_to_string(&analyses[0]).unwrap();
    std::fs::write(
        &analyses[0],
        text.replacen('{', "{\"note\": \"checked\", ", 1),
    )
    .unwrap();
    t.run_with(&["-n"])
        .success()
        .stdout_has("rule run_sampler:");
    let dry = t.run_with(&["-n", "--touch"]).success().stdout();
    assert!(dry.contains("Would touch"), "{dry}");
    t.run_with(&["-n"])
        .success()
        .stdout_has("rule run_sampler:");
    t.run_with(&["--touch"]).success().stdout_has("Touched");
    t.run_with(&["-n"])
        .success()
        .stdout_has("Nothing to be done");
    assert!(
        std::fs::read_to_string(&analyses[0])
            .unwrap()
            .contains("checked")
    );

    std::fs::remove_file(&analyses[1]).unwrap();
    t.run_with(&["--touch"])
        .failure(exit_code::FAILED)
        .stderr_has("could not be touched")
        .stderr_has(
            analyses[1]
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
        );
    assert!(!analyses[1].exists(), "touch never creates a result");
}

/// Per-job benchmarks, as Snakemake's `benchmark:` files: a TSV per local job with Snakemake's
/// columns (pandas reads it with `sep="\t"`), and `status -v` shows each job's wall time and
/// max RSS from the journal, so `--resources mem_mb` can be sized from measurements.
#[test]
fn local_jobs_record_benchmarks_and_status_shows_their_max_rss() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2"]).success();
    let tsvs: Vec<PathBuf> = ["build_target", "run_sampler"]
        .iter()
        .flat_map(|rule| {
            std::fs::read_dir(t.store().join("benchmarks").join(rule))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    assert_eq!(tsvs.len(), 4, "{tsvs:?}");
    for tsv in &tsvs {
        let text = std::fs::read_to_string(tsv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time",
            "{}",
            tsv.display()
        );
        let row: Vec<&str> = lines[1].split('\t').collect();
        let max_rss_mib: f64 = row[2].parse().unwrap();
        assert!(max_rss_mib > 1.0, "a worker uses more than 1 MiB: {text}");
        let cpu: f64 = row[9].parse().unwrap();
        assert!(cpu > 0.0, "{text}");
    }
    let status = t.run_with(&["status", "-v"]).success().stdout();
    let job_lines: Vec<&str> = status.lines().filter(|l| l.contains("maxrss=")).collect();
    assert_eq!(job_lines.len(), 4, "{status}");
    for line in job_lines {
        assert!(!line.contains("maxrss=-") && line.contains("MiB"), "{line}");
        assert!(!line.contains("elapsed=-"), "{line}");
    }
    let json = t.run_with(&["status", "--json"]).success().stdout();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    for job in json["jobs"].as_array().unwrap() {
        assert!(job["max_rss_bytes"].as_u64().unwrap() > 1 << 20, "{job}");
    }
}

/// `results` tells sampler variants apart: the guide's sampler_hyperparameters sweep (three
/// HMC trajectory lengths, three SGLD step sizes) at tiny budgets gives one group per variant
/// with `--group-by sampler,step_size` and `--group-by sampler,num_integration_steps`, and the
/// CSV carries the target's and sampler's settings as columns pandas reads.
#[test]
fn results_has_config_columns_that_tell_variants_apart() {
    let yaml = r#"
store_root: runs
targets:
  - { model: small, data: small, seed: 42, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }
samplers:
  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 50 } }
  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 50, num_integration_steps: 5 } }
  - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 50, num_integration_steps: 20 } }
  - { name: sgld, overrides: { chains: 2, warmup: 20, steps: 100, eval_every: 10, step_size: 1e-7 } }
  - { name: sgld, overrides: { chains: 2, warmup: 20, steps: 100, eval_every: 10, step_size: 1e-6 } }
  - { name: sgld, overrides: { chains: 2, warmup: 20, steps: 100, eval_every: 10, step_size: 1e-5 } }
"#;
    let t = Test::new().experiments(yaml);
    t.run_with(&["-j", "2", "-q"]).success();
    let groups = |by: &str| -> Vec<Vec<String>> {
        let csv = t
            .run_with(&["results", "--group-by", by, "--format", "csv"])
            .success()
            .stdout();
        csv.lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let by_step = groups("sampler,step_size");
    assert_eq!(by_step[0][..3], ["sampler", "step_size", "n_runs"]);
    let sgld: Vec<&Vec<String>> = by_step.iter().filter(|r| r[0] == "sgld").collect();
    assert_eq!(sgld.len(), 3, "one group per SGLD step size: {by_step:?}");
    let steps: Vec<f64> = sgld.iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(steps, [1e-7, 1e-6, 1e-5]);
    assert!(sgld.iter().all(|r| r[2] == "1"), "{by_step:?}");
    let by_length = groups("sampler,num_integration_steps");
    let hmc: Vec<&Vec<String>> = by_length.iter().filter(|r| r[0] == "hmc").collect();
    assert_eq!(
        hmc.len(),
        3,
        "one group per trajectory length: {by_length:?}"
    );

    // The rows' CSV has the settings as columns; pandas reads them as numbers and booleans.
    let csv = t
        .run_with(&["results", "--format", "csv"])
        .success()
        .stdout();
    let path = t.path().join("results.csv");
    std::fs::write(&path, csv).unwrap();
    let script = r#"
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
for col in ["activation", "bias", "step_size", "num_integration_steps", "gamma", "sampler_seed"]:
    assert col in df.columns, (col, list(df.columns))
assert df["bias"].dtype == bool, df["bias"].dtype
sgld = df[df["sampler"] == "sgld"]
assert sorted(sgld["step_size"].astype(float)) == [1e-7, 1e-6, 1e-5], sgld["step_size"]
print("ok", len(df))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok 6"),
        "pandas:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `results` and `promote gallery` read the sweep the experiments file names; `--all` reads
/// the whole store. Two experiments files share one store here, as the guide's examples do.
#[test]
fn reports_read_the_sweep_of_the_configfile_and_all_reads_the_store() {
    let other = r#"
store_root: runs
targets:
  - { model: small, data: small, seed: 7, overrides: { data: { n_data: 200 }, training: { steps: 100 } } }
samplers:
  - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }
"#;
    let t = Test::new()
        .experiments(TINY_SWEEP)
        .file("config/other.yaml", other);
    t.run_with(&["-j", "2", "-q"]).success();
    t.run_with(&["-j", "2", "-q", "--configfile", "config/other.yaml"])
        .success();
    let runs = |args: &[&str]| -> usize {
        let mut full = vec!["results", "--format", "csv"];
        full.extend_from_slice(args);
        t.run_with(&full).success().stdout().lines().count() - 1
    };
    assert_eq!(runs(&[]), 2, "the default experiments file's two runs");
    assert_eq!(runs(&["--configfile", "config/other.yaml"]), 1);
    assert_eq!(runs(&["--all"]), 3);
    t.run_with(&["results"])
        .success()
        .stdout_has("1 finished run(s) in the store belong to other sweeps");

    let gallery = t
        .run_with(&[
            "promote",
            "gallery",
            "--configfile",
            "config/other.yaml",
            "--outdir",
            "g",
        ])
        .success()
        .stdout();
    let other_target = t
        .run_with(&["-n", "--configfile", "config/other.yaml", "-F"])
        .success()
        .stdout();
    let id = other_target
        .lines()
        .find_map(|l| l.trim().strip_prefix("output: runs/targets/"))
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    assert!(
        gallery.contains(&id),
        "the other sweep's target {id}:\n{gallery}"
    );
}

/// After a detached SLURM sweep (its submissions open in the journal), a plan without the
/// profile counts the jobs whose outputs are there as done, and keeps the others incomplete
/// (never runs them a second time), saying they are on SLURM; a real run refuses to start.
#[test]
fn a_local_plan_after_a_detached_slurm_sweep_keeps_what_finished_there() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2", "-q"]).success();
    let analyses = files_named(&t.store(), "analysis.json");
    let journal = t.store().join(".lambda-hat/journal.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    // Both runs submitted to SLURM and never seen to end; one has finished, one has not.
    for (i, analysis) in analyses.iter().enumerate() {
        let run = analysis.parent().unwrap();
        let key = format!(
            "{}.{}",
            run.parent().unwrap().file_name().unwrap().to_string_lossy(),
            run.file_name().unwrap().to_string_lossy()
        );
        for (event, id) in [
            ("submitting", ""),
            ("submitted", "\"slurm_job_id\":\"77\","),
        ] {
            text.push_str(&format!(
                "{{\"time\":\"2026-12-05T09:14:07+00:00\",\"event\":\"{event}\",\"job\":\"{key}\",\"rule\":\"run_sampler\",\"executor\":\"slurm\",{id}\"attempt\":1,\"detail\":{{\"name\":\"lh-run_sampler-{i}\"}}}}\n"
            ));
        }
        std::fs::write(
            t.store().join(".lambda-hat/incomplete").join(&key),
            format!("{{\"output\": \"{}\"}}", analysis.display()),
        )
        .unwrap();
    }
    std::fs::write(&journal, text).unwrap();
    std::fs::remove_file(&analyses[1]).unwrap();

    let dry = t
        .run_with(&["-n"])
        .failure(exit_code::USAGE)
        .stderr_has("submitted to SLURM")
        .stderr_has("incomplete");
    let finished = analyses[0]
        .strip_prefix(t.path())
        .unwrap()
        .display()
        .to_string();
    let unfinished = analyses[1]
        .strip_prefix(t.path())
        .unwrap()
        .display()
        .to_string();
    let err = dry.stderr();
    assert!(err.contains(&unfinished), "{err}");
    assert!(
        !err.contains(&finished),
        "the finished one is not incomplete: {err}"
    );
    // Where SLURM is (a stand-in squeue on PATH), a real run, even with --ri, refuses: the job
    // may still run there, and running it here too would compute it twice into the same files.
    let bin = t.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let squeue = bin.join("squeue");
    std::fs::write(&squeue, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&squeue, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let t = t.env("PATH", &path);
    for flags in [&["-j", "2"][..], &["-j", "2", "--ri"]] {
        t.run_with(flags)
            .failure(exit_code::USAGE)
            .stderr_has("would compute them a second time")
            .stderr_has("--profile NAME");
        assert!(!analyses[1].exists(), "nothing ran: {flags:?}");
    }
    // Without SLURM (a store copied off the cluster) nothing can be running: the unfinished job
    // is incomplete, as any killed job, and `--ri` redoes it.
    let t = t.env("PATH", "/nonexistent");
    t.run_with(&["-j", "2"])
        .failure(exit_code::USAGE)
        .stderr_has("--rerun-incomplete");
    t.run_with(&["-j", "2", "--ri", "-q"]).success();
    assert!(analyses[1].exists());
}

/// A sweep started with `--config store_root=...` (README's pattern for a second store) is read
/// by `status`, `results` and `cancel` given the same `--config`; runs it plans that have not
/// started are listed as not finished, not left out.
#[test]
fn status_and_reports_take_the_sweeps_config_keys() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2", "-q", "--config", "store_root=runs_b"])
        .success();
    assert!(t.path().join("runs_b/targets").is_dir());
    let status = t
        .run_with(&["status", "--json", "--config", "store_root=runs_b"])
        .success()
        .stdout();
    let doc: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(doc["rules"]["run_sampler"]["done"], 2, "{status}");
    let rows = t
        .run_with(&[
            "results",
            "--format",
            "csv",
            "--config",
            "store_root=runs_b",
        ])
        .success()
        .stdout();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    t.run_with(&["cancel", "--config", "store_root=runs_b"])
        .success()
        .stdout_has("No SLURM job");

    // One sampler more in the same store, not run yet: listed as not finished.
    let json = t
        .run_with(&[
            "results",
            "--format",
            "json",
            "--config",
            "store_root=runs_b",
            "samplers=[{name: sgld, overrides: {chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32}}, {name: sgld, overrides: {chains: 2, warmup: 50, steps: 300, eval_every: 10, batch_size: 32}}]",
        ])
        .success()
        .stdout();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 2, "{json}");
    let not_started = doc["not_finished"].as_array().unwrap();
    assert_eq!(not_started.len(), 2, "{json}");
    assert!(not_started.iter().all(|u| u["status"] == "not_finished"));
}

/// A store that cannot be written is the machine's problem (exit 3), not a failed job (1): the
/// sweep stops launching, lets the running jobs end, and records nothing as done that it could
/// not record (README, exit codes).
#[test]
fn a_store_that_cannot_be_written_stops_the_sweep_with_exit_code_3() {
    let t = Test::new().experiments(TINY_SWEEP);
    let plan = t.run_with(&["-n"]).success();
    let target = plan
        .stdout()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with("tgt_"))
        .expect("a target in the dry run")
        .to_string();
    // A file where the target's directory must go: its spec.json cannot be written.
    std::fs::create_dir_all(t.store().join("targets")).unwrap();
    std::fs::write(t.store().join("targets").join(&target), "").unwrap();
    t.run_with(&["-j", "1", "-k"])
        .failure(exit_code::ENVIRONMENT)
        .clear_error(&["cannot write spec.json", &target]);
    // The job that could not start left no incomplete marker: once the path is free, the
    // next sweep runs it without asking for --rerun-incomplete.
    std::fs::remove_file(t.store().join("targets").join(&target)).unwrap();
    let again = t.run_with(&["-n"]).success();
    assert!(!again.stdout().contains("ncomplete"), "{}", again.stdout());
    t.run_with(&["-j", "1", "-q"]).success();
}

/// teacher.npz is an output of its target (README): missing or cut short, the target is
/// rebuilt, bit for bit (and its runs with it, as after any rebuild).
#[test]
fn a_damaged_teacher_npz_rebuilds_its_target() {
    let t = Test::new().experiments(TINY_SWEEP);
    t.run_with(&["-j", "2", "-q"]).success();
    let teacher = files_named(&t.store(), "teacher.npz")[0].clone();
    let bytes = std::fs::read(&teacher).unwrap();
    std::fs::write(&teacher, &bytes[..bytes.len() / 2]).unwrap();
    let dry = t.run_with(&["-n"]).success();
    let out = dry.stdout();
    assert!(
        out.contains("reason: Corrupt output files") && out.contains("teacher.npz"),
        "{out}"
    );
    assert!(out.contains("rule build_target"), "{out}");
    // --touch refuses it, naming the damaged archive (not the whole meta.json beside it).
    let touch = t.run_with(&["--touch"]).failure(exit_code::FAILED);
    let err = touch.stderr();
    assert!(
        err.contains("teacher.npz") && !err.contains("meta.json"),
        "{err}"
    );
    t.run_with(&["-j", "2", "-q"]).success();
    assert_eq!(
        std::fs::read(&teacher).unwrap(),
        bytes,
        "rebuilt bit for bit"
    );

    // Asked for by name when missing: planned, not "present and up to date".
    std::fs::remove_file(&teacher).unwrap();
    let rel = teacher
        .strip_prefix(t.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    t.run_with(&["-n", &rel])
        .success()
        .stdout_has("Missing output files");
}

/// A plot that cannot be written fails its job before analysis.json (whose presence means the
/// trace and plots are complete), so the next run makes it; before, the run was done for good
/// without it.
#[test]
fn a_plot_that_cannot_be_written_fails_the_job_and_the_next_run_makes_it() {
    let t = Test::new().experiments(TINY_SWEEP);
    let plan = t.run_with(&["-n"]).success().stdout();
    let run = plan
        .split_whitespace()
        .find(|w| w.contains("/run_sgld_") && w.ends_with("analysis.json"))
        .expect("a run in the dry run");
    let run_dir = t.path().join(run).parent().unwrap().to_path_buf();
    // A directory where the trace plot goes: drawing it fails.
    let blocked = run_dir.join("diagnostics/trace.png");
    std::fs::create_dir_all(&blocked).unwrap();
    t.run_with(&["-j", "1", "-k", "-q"])
        .failure(exit_code::FAILED)
        .clear_error(&["cannot draw", "trace.png"]);
    assert!(!run_dir.join("analysis.json").exists());
    std::fs::remove_dir(&blocked).unwrap();
    t.run_with(&["-j", "1", "-q"]).success();
    assert!(blocked.is_file() && run_dir.join("analysis.json").is_file());
}
