//! The SLURM executor against a REAL SLURM (the single-node cluster of scripts/slurm-local.sh):
//! the real `lambda-hat` binary submits real jobs that run the real worker.
//!
//! Without SLURM these tests print why and return, unless LAMBDA_HAT_REQUIRE_SLURM=1 (CI sets
//! it): then they fail. Tests that use the cluster take one lock, so they run one after another
//! (timing-sensitive steps such as killing the controller mid-sweep stay predictable); only the
//! TIMEOUT test, which mostly waits for SLURM's time limit, runs beside them.
//!
//! Wrappers put first on PATH stand in for `squeue`/`sacct`/`sbatch` where a test must count
//! calls or make sbatch fail; they log and then exec the real command.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{BIN, Test};
use lambda_hat::exit_code;

const LOCAL_SLURM: &str = include_str!("../profiles/local-slurm/config.yaml");

static CLUSTER: Mutex<()> = Mutex::new(());

/// Whether a SLURM controller answers here.
fn slurm_answers() -> Result<(), String> {
    match Command::new("scontrol").arg("ping").output() {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("UP") => Ok(()),
        Ok(o) => Err(format!(
            "`scontrol ping` says: {}{}",
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run scontrol: {e}")),
    }
}

/// `Some(())` when the tests may use SLURM; panics when it is required and absent.
fn slurm_or_skip(test: &str) -> Option<()> {
    match slurm_answers() {
        Ok(()) => Some(()),
        Err(why) if std::env::var("LAMBDA_HAT_REQUIRE_SLURM").as_deref() == Ok("1") => {
            panic!(
                "{test}: SLURM is required (LAMBDA_HAT_REQUIRE_SLURM=1) but not usable: {why}.\n  Start it with: sudo scripts/slurm-local.sh start"
            )
        }
        Err(why) => {
            eprintln!(
                "{test}: SKIPPED, no SLURM here ({why}). Start one with scripts/slurm-local.sh start; set LAMBDA_HAT_REQUIRE_SLURM=1 to make this a failure."
            );
            None
        }
    }
}

/// The cluster lock (and the skip decision) for a test.
fn cluster(test: &str) -> Option<MutexGuard<'static, ()>> {
    slurm_or_skip(test)?;
    Some(CLUSTER.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Tiny sweep: `targets` small targets × 3 tiny samplers; each job takes seconds.
fn sweep(targets: usize) -> String {
    let mut s = String::from("store_root: runs\ntargets:\n");
    for seed in 1..=targets {
        s.push_str(&format!(
            "  - {{ model: small, data: small, seed: {seed}, overrides: {{ data: {{ n_data: 200 }}, training: {{ steps: 50 }} }} }}\n"
        ));
    }
    s.push_str(
        "samplers:\n\
         \x20 - { name: sgld, overrides: { chains: 2, warmup: 50, steps: 200, eval_every: 10, batch_size: 32 } }\n\
         \x20 - { name: hmc, overrides: { chains: 2, warmup: 50, draws: 100, num_integration_steps: 5 } }\n\
         \x20 - { name: mclmc, overrides: { chains: 2, draws: 100, num_tuning_steps: 100 } }\n",
    );
    s
}

fn slurm_test(targets: usize) -> Test {
    Test::new()
        .experiments(&sweep(targets))
        .file("profiles/local-slurm/config.yaml", LOCAL_SLURM)
}

fn journal(store: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(store.join(".lambda-hat/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
        .collect()
}

fn events<'a>(j: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    j.iter().filter(|e| e["event"] == name).collect()
}

/// Waits until the journal of `t`'s store has `n` `submitted` lines (a controller started in
/// the background has submitted that much), failing the test after `limit`.
fn wait_for_submissions(t: &Test, n: usize, limit: Duration) {
    let start = Instant::now();
    while events(&journal(&t.store()), "submitted").len() < n {
        assert!(
            start.elapsed() < limit,
            "fewer than {n} jobs submitted after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sacct -X -P -n --format=FIELDS -j IDS` rows, split at '|'.
fn sacct(ids: &BTreeSet<String>, fields: &str) -> Vec<Vec<String>> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = Command::new("sacct")
        .args([
            "-X",
            "-P",
            "-n",
            &format!("--format={fields}"),
            "-j",
            &ids.join(","),
        ])
        .output()
        .expect("sacct");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(String::from).collect())
        .collect()
}

/// The SLURM job ids (array ids for tasks) the journal says were submitted.
fn submitted_ids(j: &[serde_json::Value]) -> BTreeSet<String> {
    events(j, "submitted")
        .iter()
        .map(|e| {
            let id = e["slurm_job_id"].as_str().unwrap();
            id.split('_').next().unwrap().to_string()
        })
        .collect()
}

/// Sacct lags the controller by a second or two: retry until `ok` holds or 20 s pass.
fn sacct_until(
    ids: &BTreeSet<String>,
    fields: &str,
    ok: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let start = Instant::now();
    loop {
        let rows = sacct(ids, fields);
        if ok(&rows) || start.elapsed() > Duration::from_secs(20) {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A wrapper for `program` in `bin/`: appends "program ARGS" to `calls.log`, then runs the real one.
fn wrap(t: &Test, program: &str, before: &str) -> String {
    let real = which(program);
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = t.path().join("calls.log");
    let script = format!(
        "#!/usr/bin/env bash\necho \"{program} $*\" >> '{}'\n{before}\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    let path = bin.join(program);
    std::fs::write(&path, script).unwrap();
    make_executable(&path);
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn calls(t: &Test) -> Vec<String> {
    std::fs::read_to_string(t.path().join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Every file under `runs/targets`, JSON with timings (`*time*`, `*_sec`) removed, for comparing
/// two stores. The
/// convergence plot draws the run's measured wall time (its right panel), so only its presence
/// is compared.
fn outputs(store: &Path) -> BTreeMap<String, Vec<u8>> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    !(k.contains("time")
                        || k.ends_with("_sec")
                        || k.contains("created_at")
                        || k.contains("version"))
                });
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mut bytes = std::fs::read(&p).unwrap();
            if rel.ends_with("llc_convergence.png") {
                bytes.clear();
            }
            if rel.ends_with(".json") {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                strip(&mut v);
                bytes = serde_json::to_vec(&v).unwrap();
            }
            out.insert(rel, bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(&store.join("targets"), store, &mut out);
    out
}

#[test]
fn demo_sweep_on_slurm_matches_a_local_run() {
    let Some(_lock) = cluster("demo_sweep_on_slurm_matches_a_local_run") else {
        return;
    };
    let t = slurm_test(3);
    t.run_with(&["--profile", "local-slurm", "-j", "10"])
        .success()
        .stderr_has("12 of 12 jobs done.");
    // Nothing left to do, and nothing reported incomplete.
    t.run_with(&["--profile", "local-slurm", "-j", "10"])
        .success()
        .stdout_has("Nothing to be done");

    // The same sweep run locally gives the same outputs, apart from timings.
    let local = Test::new().experiments(&sweep(3));
    local.run_with(&["-j", "2"]).success();
    let (a, b) = (outputs(&t.store()), outputs(&local.store()));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between SLURM and local runs"
        );
    }

    // sacct: 3 build jobs and 3 sampler arrays of 3 tasks, all COMPLETED; each task started
    // after its target ended (afterok).
    let j = journal(&t.store());
    let ids = submitted_ids(&j);
    // 3 build jobs and the arrays (-j 10 < 12 jobs may split one array in two).
    assert!((6..=8).contains(&ids.len()), "{ids:?}");
    let rows = sacct_until(&ids, "JobID,JobName,State,Start,End", |r| {
        r.len() == 12 && r.iter().all(|row| row[2] == "COMPLETED")
    });
    assert_eq!(rows.len(), 12, "{rows:?}");
    assert!(rows.iter().all(|r| r[2] == "COMPLETED"), "{rows:?}");
    let build_ids: BTreeSet<&str> = events(&j, "submitted")
        .iter()
        .filter(|e| e["rule"] == "build_target")
        .map(|e| e["slurm_job_id"].as_str().unwrap())
        .collect();
    let builds: Vec<_> = rows
        .iter()
        .filter(|r| build_ids.contains(r[0].as_str()))
        .collect();
    let tasks: Vec<_> = rows
        .iter()
        .filter(|r| !build_ids.contains(r[0].as_str()))
        .collect();
    assert_eq!((builds.len(), tasks.len()), (3, 9), "{rows:?}");
    assert!(
        tasks.iter().filter(|r| r[0].contains('_')).count() >= 6,
        "samplers go out as arrays: {rows:?}"
    );
    let end_of: BTreeMap<&str, &str> = builds
        .iter()
        .map(|r| (r[0].as_str(), r[4].as_str()))
        .collect();
    // A sampler goes out with afterok on its target while the target is in flight, or
    // without a dependency once the target is done.
    let mut with_afterok = 0;
    for (pos, e) in j.iter().enumerate() {
        if e["event"] != "submitting" || e["rule"] != "run_sampler" {
            continue;
        }
        match e["detail"]["dependency"].as_str() {
            Some(dep) => {
                assert!(end_of.contains_key(dep), "depends on a build job: {e}");
                with_afterok += 1;
            }
            None => {
                let target = e["job"].as_str().unwrap().split('.').next().unwrap();
                assert!(
                    j[..pos]
                        .iter()
                        .any(|f| f["event"] == "finished" && f["job"] == target),
                    "submitted without afterok before its target finished: {e}"
                );
            }
        }
    }
    assert!(
        with_afterok >= 6,
        "samplers wait on their targets via afterok"
    );
    for task in &tasks {
        let dep = events(&j, "submitted")
            .iter()
            .find(|e| e["slurm_job_id"] == task[0].as_str())
            .map(|e| {
                e["job"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .unwrap();
        let parent_id = events(&j, "submitted")
            .iter()
            .find(|e| e["job"] == dep.as_str())
            .map(|e| e["slurm_job_id"].as_str().unwrap().to_string())
            .unwrap();
        assert!(
            task[3].as_str() >= end_of[parent_id.as_str()],
            "task {} started {} before its target {} ended {}",
            task[0],
            task[3],
            parent_id,
            end_of[parent_id.as_str()]
        );
    }

    // status: everything done, with SLURM ids per job.
    t.run_with(&["status"]).success().stdout_has("total");
    let st = t.run_with(&["status", "--json"]).success().stdout();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["rules"]["run_sampler"]["done"], 9);
    assert_eq!(st["rules"]["build_target"]["done"], 3);
    assert!(
        st["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["slurm_job_id"].is_string())
    );
    // Every job's benchmark in Snakemake's TSV layout, measured by its worker on the node (so
    // with CPU time, which sacct's fallback lacks), whatever sacct had recorded by then.
    for (rule, jobs) in [("run_sampler", 9), ("build_target", 3)] {
        let bench = t.store().join("benchmarks").join(rule);
        let tsvs: Vec<_> = std::fs::read_dir(&bench)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        assert_eq!(tsvs.len(), jobs, "benchmarks in {}", bench.display());
        for tsv in tsvs {
            let text = std::fs::read_to_string(&tsv).unwrap();
            assert!(text.starts_with("s\th:m:s\tmax_rss\t"), "{text}");
            let row: Vec<&str> = text.lines().nth(1).unwrap().split('\t').collect();
            let seconds: f64 = row[0].parse().unwrap();
            assert!(seconds >= 0.0, "{text}");
            assert!(row[9].parse::<f64>().is_ok(), "no CPU time: {text}");
        }
    }
}

#[test]
fn one_squeue_and_at_most_one_sacct_per_poll_cycle() {
    let Some(_lock) = cluster("one_squeue_and_at_most_one_sacct_per_poll_cycle") else {
        return;
    };
    let t = slurm_test(4);
    let path = wrap(&t, "squeue", "");
    wrap(&t, "sacct", "");
    let t = t.env("PATH", &path);
    let run = t
        .run_with(&["--profile", "local-slurm", "-j", "16", "-p"])
        .success()
        .stderr_has("16 of 16 jobs done.");
    // -p prints every job's worker command as it is submitted, as it does locally.
    let printed = run.stderr().matches(" worker run-sampler ").count()
        + run.stderr().matches(" worker build-target ").count();
    assert_eq!(printed, 16, "{}", run.stderr());
    let calls = calls(&t);
    let squeues = calls.iter().filter(|c| c.starts_with("squeue")).count();
    assert!(squeues >= 2, "{calls:?}");
    // A cycle is one squeue (for every job of the sweep at once) and at most one sacct.
    let mut sacct_in_cycle = 0;
    for c in &calls {
        if c.starts_with("squeue") {
            sacct_in_cycle = 0;
            assert!(c.contains(" -j "), "one squeue for the sweep's ids: {c}");
        } else {
            sacct_in_cycle += 1;
            assert!(
                sacct_in_cycle <= 1,
                "two sacct calls in one cycle: {calls:#?}"
            );
        }
    }
    assert!(
        squeues < 60,
        "{squeues} squeue calls for 16 jobs: polling is per cycle, not per job"
    );
}

#[test]
fn killed_controller_restarts_without_submitting_twice() {
    let Some(_lock) = cluster("killed_controller_restarts_without_submitting_twice") else {
        return;
    };
    let t = slurm_test(3);
    // Jobs sleep 4 s first so that the sweep is mid-way when the controller is killed.
    let mut child = Command::new(BIN)
        .args(["--profile", "local-slurm", "-j", "10", "-q"])
        .current_dir(t.path())
        .env("LAMBDA_HAT_TEST_SLEEP_SEC", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let j = journal(&t.store());
        if !events(&j, "submitted").is_empty() && events(&j, "finished").is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no submission seen"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = journal(&t.store());
    assert!(
        events(&before, "finished").len() < 12,
        "the controller was killed before the end"
    );

    t.run_with(&["--profile", "local-slurm", "-j", "10"])
        .success()
        .stderr_has("jobs done.");
    let j = journal(&t.store());
    // Every job was submitted exactly once: by the first controller or the second.
    let mut per_job: BTreeMap<String, usize> = BTreeMap::new();
    for e in events(&j, "submitted") {
        *per_job
            .entry(e["job"].as_str().unwrap().into())
            .or_default() += 1;
    }
    assert_eq!(per_job.len(), 12, "{per_job:?}");
    assert!(
        per_job.values().all(|n| *n == 1),
        "submitted twice: {per_job:?}"
    );
    // sacct agrees: exactly the journal's jobs exist under the submissions' names.
    let names: BTreeSet<&str> = events(&j, "submitting")
        .iter()
        .map(|e| e["detail"]["name"].as_str().unwrap())
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let in_journal: BTreeSet<String> = events(&j, "submitted")
        .iter()
        .map(|e| e["slurm_job_id"].as_str().unwrap().to_string())
        .collect();
    // sacct shows a just-ended job under a wrong name for a moment: ask until it settles.
    let start = Instant::now();
    let (rows, in_sacct) = loop {
        let out = Command::new("sacct")
            .args(["-X", "-P", "-n", "--format=JobID,State", "-S", "now-1hours"])
            .arg(format!("--name={}", names.join(",")))
            .output()
            .unwrap();
        let rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        let in_sacct: BTreeSet<String> = rows
            .iter()
            .map(|r| r.split('|').next().unwrap().to_string())
            .collect();
        if in_sacct == in_journal || start.elapsed() > Duration::from_secs(20) {
            break (rows, in_sacct);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(in_sacct, in_journal, "sacct rows: {rows:?}");
    assert_eq!(
        outputs(&t.store())
            .keys()
            .filter(|k| k.ends_with("analysis.json"))
            .count(),
        9
    );
}

#[test]
fn out_of_memory_is_recognised_and_retried_with_double_memory() {
    let Some(_lock) = cluster("out_of_memory_is_recognised_and_retried_with_double_memory") else {
        return;
    };
    // Only the target; it allocates 200 MiB against a 150 MB limit, then gets 300 MB.
    let t = slurm_test(1).env("LAMBDA_HAT_TEST_ALLOCATE_MB", "200");
    t.run_with(&[
        "runs/targets/*/meta.json",
        "--profile",
        "local-slurm",
        "--set-resources",
        "build_target:mem_mb=150",
        "-T",
        "2",
    ])
    .success()
    .stderr_has("1 of 1 jobs done.");
    let j = journal(&t.store());
    let failed = events(&j, "failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let why = failed[0]["detail"]["reason"].as_str().unwrap();
    assert!(
        why.contains("out of memory") && why.contains("mem_mb=300"),
        "{why}"
    );
    let mems: Vec<i64> = events(&j, "submitting")
        .iter()
        .map(|e| e["detail"]["resources"]["mem_mb"].as_i64().unwrap())
        .collect();
    assert_eq!(mems, vec![150, 300]);
    // SLURM itself says how the first attempt ended and what each asked for.
    let first = failed[0]["slurm_job_id"].as_str().unwrap().to_string();
    let rows = sacct_until(&BTreeSet::from([first]), "JobID,State,ReqMem", |r| {
        r.first()
            .is_some_and(|row| row[1] != "RUNNING" && row[1] != "PENDING")
    });
    assert!(
        rows[0][1] == "FAILED" || rows[0][1] == "OUT_OF_MEMORY",
        "{rows:?}"
    );
    assert_eq!(rows[0][2], "150M");
}

#[test]
fn transient_sbatch_failures_do_not_fail_the_sweep() {
    let Some(_lock) = cluster("transient_sbatch_failures_do_not_fail_the_sweep") else {
        return;
    };
    let t = Test::new()
        .experiments(&sweep(1))
        .file("profiles/local-slurm/config.yaml", LOCAL_SLURM);
    let counter = t.path().join("sbatch-count");
    let fail_first_3 = format!(
        "n=$(( $(cat '{c}' 2>/dev/null || echo 0) + 1 )); echo $n > '{c}'\n\
         if [ $n -le 3 ]; then echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2; exit 1; fi",
        c = counter.display()
    );
    let path = wrap(&t, "sbatch", &fail_first_3);
    let t = t.env("PATH", &path);
    t.run_with(&["--profile", "local-slurm", "-j", "10"])
        .success()
        .stderr_has("4 of 4 jobs done.");
    let sbatches = calls(&t).iter().filter(|c| c.starts_with("sbatch")).count();
    assert_eq!(sbatches, 3 + 2, "3 failures, then 1 build job + 1 array");
    let j = journal(&t.store());
    assert_eq!(events(&j, "submit_failed").len(), 3);
}

/// The journal of `store` records no submission, and every intent to submit is closed.
fn nothing_submitted_in(store: &Path) {
    let j = journal(store);
    assert!(events(&j, "submitted").is_empty(), "{j:?}");
    assert_eq!(
        events(&j, "submitting").len(),
        events(&j, "submit_failed").len(),
        "{j:?}"
    );
}

#[test]
fn bad_input_gives_one_clear_message_and_submits_nothing() {
    let Some(_lock) = cluster("bad_input_gives_one_clear_message_and_submits_nothing") else {
        return;
    };
    let nothing_submitted = |t: &Test| nothing_submitted_in(&t.store());

    // sbatch not on PATH.
    let t = slurm_test(1);
    let empty = t.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let t = t.env("PATH", &empty.display().to_string());
    t.run_with(&["--profile", "local-slurm"])
        .failure(exit_code::ENVIRONMENT)
        .clear_error(&["`sbatch`", "not on PATH", "--profile slurm"]);
    nothing_submitted(&t);
    // Refused before the store is locked or the sweep recorded: nothing on disk.
    assert!(!t.store().exists(), "{} was written", t.store().display());

    // Unknown partition: sbatch's own words, with the rule and the job.
    let t = slurm_test(1);
    let out = t.run_with(&[
        "--profile",
        "local-slurm",
        "--default-resources",
        "slurm_partition=nosuchpart",
    ]);
    assert_ne!(out.code(), Some(exit_code::SUCCESS));
    let err = out.stderr();
    assert!(
        err.contains("invalid partition specified: nosuchpart")
            && err.contains("build_target")
            && err.contains("tgt_"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    nothing_submitted(&t);

    // A shell injection in a partition name and a non-number memory are refused at plan time.
    let t = slurm_test(1).file(
        "profiles/evil/config.yaml",
        "executor: slurm\ndefault-resources:\n  slurm_partition: \"debug; rm -rf ~\"\n",
    );
    t.run_with(&["--profile", "evil"])
        .failure(exit_code::USAGE)
        .clear_error(&["slurm_partition", "debug; rm -rf ~"]);
    assert!(!t.store().join(".lambda-hat/journal.jsonl").exists());
    let t = slurm_test(1).file(
        "profiles/lots/config.yaml",
        "executor: slurm\ndefault-resources:\n  mem_mb: lots\n",
    );
    t.run_with(&["--profile", "lots"])
        .failure(exit_code::USAGE)
        .clear_error(&["mem_mb", "lots"]);
    assert!(!t.store().join(".lambda-hat/journal.jsonl").exists());
    t.run_with(&[
        "--profile",
        "local-slurm",
        "--set-resources",
        "run_sampler:mem_mb=lots",
    ])
    .failure(exit_code::USAGE)
    .clear_error(&["mem_mb", "lots"]);

    // A store_root that would close the `#SBATCH --output` line early and run a command on
    // the compute node (backslash, quote, newline) is refused before anything is submitted.
    let owned = t.path().join("owned");
    let evil_store = format!("x\\\\'\\ntouch {} #", owned.display());
    let t = Test::new()
        .experiments(
            &sweep(1).replace("store_root: runs", &format!("store_root: \"{evil_store}\"")),
        )
        .file("profiles/local-slurm/config.yaml", LOCAL_SLURM);
    t.run_with(&["--profile", "local-slurm", "-j", "10"])
        .failure(exit_code::USAGE)
        .clear_error(&["SLURM log directory", "store_root", "'\\\\'"]);
    assert!(!owned.exists(), "the injected command ran");
    let store = t.path().join(format!("x\\'\ntouch {} #", owned.display()));
    if store.exists() {
        nothing_submitted_in(&store);
    }

    // Unknown profile: where it looked.
    t.run_with(&["--profile", "nosuchprofile"])
        .failure(exit_code::USAGE)
        .clear_error(&[
            "unknown profile",
            "profiles/nosuchprofile",
            ".config/lambda-hat/nosuchprofile",
        ]);
}

#[test]
fn detach_then_reattach_and_cancel() {
    let Some(_lock) = cluster("detach_then_reattach_and_cancel") else {
        return;
    };
    let t = slurm_test(1).env("LAMBDA_HAT_TEST_SLEEP_SEC", "2");
    t.run_with(&["--profile", "local-slurm", "--detach"])
        .success()
        .stderr_has("Detached: 4 job(s) queued on SLURM");
    let st = t.run_with(&["status", "--json"]).success().stdout();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    let active = |rule: &str| {
        st["rules"][rule]["pending"].as_u64().unwrap()
            + st["rules"][rule]["running"].as_u64().unwrap()
            + st["rules"][rule]["done"].as_u64().unwrap()
    };
    assert_eq!(
        (active("build_target"), active("run_sampler")),
        (1, 3),
        "{st}"
    );
    // A second invocation follows the detached jobs instead of submitting them again.
    t.run_with(&["--profile", "local-slurm"])
        .success()
        .stderr_has("jobs done.");
    assert_eq!(events(&journal(&t.store()), "submitted").len(), 4);

    // cancel: one scancel for what is queued.
    let t = slurm_test(1).env("LAMBDA_HAT_TEST_SLEEP_SEC", "30");
    t.run_with(&["--profile", "local-slurm", "--detach"])
        .success();
    // A dry run with the profile lists them, and says a run would follow, not resubmit, them.
    t.run_with(&["-n", "--profile", "local-slurm"])
        .success()
        .stderr_has(
            "4 of the jobs below were submitted to SLURM by an earlier run and are not known",
        );
    t.run_with(&["cancel"])
        .success()
        .stdout_has("Cancelled 2 SLURM job(s) (4 lambda-hat jobs; 0 of them had finished");
    let ids = submitted_ids(&journal(&t.store()));
    let rows = sacct_until(&ids, "JobID,State", |r| {
        !r.is_empty() && r.iter().all(|row| row[1].starts_with("CANCELLED"))
    });
    assert!(
        rows.iter().all(|r| r[1].starts_with("CANCELLED")),
        "{rows:?}"
    );
    // The samplers never started (they waited on the build): no incomplete markers, so the
    // next sweep needs no --rerun-incomplete for them.
    let markers = std::fs::read_dir(t.store().join(".lambda-hat/incomplete"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(markers <= 1, "only the build may have started: {markers}");

    // cancel after the build finished while no controller watched: the build is kept.
    let t = slurm_test(1).env("LAMBDA_HAT_TEST_SLEEP_SEC", "2");
    t.run_with(&["--profile", "local-slurm", "--detach"])
        .success();
    let start = Instant::now();
    let meta = || {
        std::fs::read_dir(t.store().join("targets"))
            .ok()
            .and_then(|mut d| {
                d.next()
                    .map(|e| e.unwrap().path().join("meta.json"))
                    .filter(|m| m.is_file())
            })
    };
    while meta().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the build did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    t.run_with(&["cancel"])
        .success()
        .stdout_has("of them had finished and are kept");
    let j = journal(&t.store());
    let build = events(&j, "submitted")
        .iter()
        .find(|e| e["rule"] == "build_target")
        .map(|e| e["job"].as_str().unwrap().to_string())
        .unwrap();
    let last = j.iter().rev().find(|e| e["job"] == build.as_str()).unwrap();
    assert_eq!(last["event"], "finished", "{last}");
    assert!(
        !t.store()
            .join(".lambda-hat/incomplete")
            .join(&build)
            .exists()
    );
}

/// `lambda-hat cancel` from another terminal while a controller runs the sweep: the controller
/// stops (nothing more is submitted, nothing retried), exits 1 saying the sweep was cancelled,
/// and writes no `failed` line over the command's `cancelled` ones, so `status` counts no job
/// as failed.
#[test]
fn lambda_hat_cancel_stops_a_running_controller_without_failures() {
    let Some(_lock) = cluster("lambda_hat_cancel_stops_a_running_controller_without_failures")
    else {
        return;
    };
    let t = slurm_test(3).env("LAMBDA_HAT_TEST_SLEEP_SEC", "20");
    // -j 2 keeps most jobs waiting in the controller, and --retries 2 -k would have gone on
    // submitting them after a failure.
    let child = Command::new(BIN)
        .args([
            "--profile",
            "local-slurm",
            "-j",
            "2",
            "--retries",
            "2",
            "-k",
        ])
        .current_dir(t.path())
        .env("LAMBDA_HAT_TEST_SLEEP_SEC", "20")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_submissions(&t, 2, Duration::from_secs(60));
    t.run_with(&["cancel"])
        .success()
        .stdout_has("Cancelled 2 SLURM job(s)");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`lambda-hat cancel` cancelled this sweep"),
        "{stderr}"
    );
    let j = journal(&t.store());
    assert_eq!(
        events(&j, "submitted").len(),
        2,
        "submitted after the cancel"
    );
    assert!(
        events(&j, "failed").is_empty(),
        "{:?}",
        events(&j, "failed")
    );
    let st = t.run_with(&["status", "--json"]).success().stdout();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    for rule in ["build_target", "run_sampler"] {
        assert_eq!(st["rules"][rule]["failed"].as_u64(), Some(0), "{st}");
    }
}

/// Jobs that all finished while no controller followed them are collected by the next run:
/// each gets its `finished` event and loses its incomplete marker, and nothing is submitted
/// again.
#[test]
fn jobs_that_finished_while_detached_are_collected_once() {
    let Some(_lock) = cluster("jobs_that_finished_while_detached_are_collected_once") else {
        return;
    };
    let t = slurm_test(1);
    t.run_with(&["--profile", "local-slurm", "--detach"])
        .success()
        .stderr_has("Detached: 4 job(s) queued on SLURM");
    let start = Instant::now();
    let runs_done = || {
        std::fs::read_dir(t.store().join("targets"))
            .into_iter()
            .flatten()
            .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
            .filter(|e| e.as_ref().unwrap().path().join("analysis.json").is_file())
            .count()
    };
    while runs_done() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the detached jobs did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Before any controller collects them, the summary reads them as done, not incomplete.
    let summary = t.run_with(&["--summary"]).success().stdout();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{summary}");
    assert!(
        rows.iter().all(|r| r.contains("\tok\tno update")),
        "{summary}"
    );
    t.run_with(&["--profile", "local-slurm"])
        .success()
        .stderr_has("4 job(s) finished on SLURM while no lambda-hat was following them.");
    let j = journal(&t.store());
    assert_eq!(events(&j, "submitted").len(), 4, "nothing submitted again");
    assert_eq!(events(&j, "finished").len(), 4);
    let markers = std::fs::read_dir(t.store().join(".lambda-hat/incomplete"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(markers, 0);

    // Rerun the samplers, detached: their new outputs are judged as this submission's, not
    // against the hashes of their first finish (which called them corrupt and ran them again).
    t.run_with(&["--profile", "local-slurm", "-R", "run_sampler", "--detach"])
        .success()
        .stderr_has("Detached: 3 job(s) queued on SLURM");
    let start = Instant::now();
    while runs_done() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the rerun did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    t.run_with(&["--profile", "local-slurm"])
        .success()
        .stderr_has("3 job(s) finished on SLURM while no lambda-hat was following them.");
    let j = journal(&t.store());
    assert_eq!(
        events(&j, "submitted").len(),
        7,
        "nothing submitted a third time"
    );
    assert_eq!(events(&j, "finished").len(), 7);
}

/// Costs 2–3 minutes (SLURM's minimum limit is 1 minute and it notices overruns late), so it
/// does not hold the cluster lock: it mostly waits, on one of the two CPUs.
#[test]
fn timeout_is_retried_with_more_time() {
    if slurm_or_skip("timeout_is_retried_with_more_time").is_none() {
        return;
    }
    // Only the target: it sleeps 75 s under a 1-minute limit, then gets 2 minutes.
    let t = slurm_test(1).env("LAMBDA_HAT_TEST_SLEEP_SEC", "75");
    t.run_with(&[
        "runs/targets/*/meta.json",
        "--profile",
        "local-slurm",
        "--set-resources",
        "build_target:runtime=1",
        "-T",
        "1",
    ])
    .success()
    .stderr_has("1 of 1 jobs done.");
    let j = journal(&t.store());
    let failed = events(&j, "failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["state"], "TIMEOUT");
    let why = failed[0]["detail"]["reason"].as_str().unwrap();
    assert!(why.contains("runtime=2"), "{why}");
    let runtimes: Vec<i64> = events(&j, "submitting")
        .iter()
        .map(|e| e["detail"]["resources"]["runtime"].as_i64().unwrap())
        .collect();
    assert_eq!(runtimes, vec![1, 2]);
}

#[test]
fn ctrl_c_cancels_the_sweeps_jobs_with_one_scancel() {
    let Some(_lock) = cluster("ctrl_c_cancels_the_sweeps_jobs_with_one_scancel") else {
        return;
    };
    let t = slurm_test(2);
    let path = wrap(&t, "scancel", "");
    let child = Command::new(BIN)
        .args(["--profile", "local-slurm", "-j", "10", "-q"])
        .current_dir(t.path())
        .env("PATH", &path)
        .env("LAMBDA_HAT_TEST_SLEEP_SEC", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    wait_for_submissions(&t, 8, Duration::from_secs(30));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(exit_code::SIGINT),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "Ctrl-C was acted on at once"
    );
    let scancels: Vec<String> = calls(&t)
        .into_iter()
        .filter(|c| c.starts_with("scancel"))
        .collect();
    assert_eq!(scancels.len(), 1, "{scancels:?}");
    let ids = submitted_ids(&journal(&t.store()));
    let rows = sacct_until(&ids, "JobID,State", |r| {
        !r.is_empty() && r.iter().all(|row| row[1].starts_with("CANCELLED"))
    });
    assert!(
        rows.iter().all(|r| r[1].starts_with("CANCELLED")),
        "{rows:?}"
    );
}

/// A build that fails inside a bundle on the real cluster: the bundle script skips that
/// target's samplers (they would fail for want of the target), they are not counted as
/// failures, and they go out again with the build's retry; the other target's jobs in the same
/// bundle are done and run once.
#[test]
fn a_build_that_fails_in_a_bundle_takes_its_samplers_to_its_retry() {
    let Some(_lock) = cluster("a_build_that_fails_in_a_bundle_takes_its_samplers_to_its_retry")
    else {
        return;
    };
    let t = slurm_test(2);
    // The first target's build spec, as `-n -p` prints it: `… worker build-target PATH`.
    let dry = t.run_with(&["-n", "-p"]).success();
    let failing = dry
        .stdout()
        .lines()
        .find_map(|l| {
            l.split_once(" worker build-target ")?
                .1
                .split("targets/")
                .nth(1)
        })
        .expect("a build_target command")
        .to_string();
    let tid = failing.split('/').next().unwrap().to_string();
    let t = t.env("LAMBDA_HAT_TEST_FAIL_ONCE", &failing);
    let run = t
        .run_with(&[
            "--profile",
            "local-slurm",
            "--bundle-size",
            "auto",
            "--retries",
            "1",
        ])
        .success()
        .stderr_has("8 of 8 jobs done.");
    assert!(run.stderr().contains("bundle of 8"), "{}", run.stderr());

    let j = journal(&t.store());
    let of = |job: &str, event: &str| {
        j.iter()
            .filter(|e| e["event"] == event && e["job"].as_str().unwrap().starts_with(job))
            .count()
    };
    // The build failed once and was retried; its 3 samplers waited for it, uncounted.
    assert_eq!(of(&tid, "failed"), 1, "only the build failed");
    assert_eq!(of(&format!("{tid}."), "cancelled"), 3);
    assert_eq!(
        of(&tid, "submitted"),
        8,
        "build and samplers went out twice"
    );
    assert_eq!(of(&tid, "finished"), 4);
    for e in events(&j, "finished") {
        let job = &e["job"];
        let times = events(&j, "finished")
            .iter()
            .filter(|f| f["job"] == *job)
            .count();
        assert_eq!(times, 1, "{job}");
    }
    // The other target ran once, in the first bundle.
    let others: Vec<_> = events(&j, "submitted")
        .into_iter()
        .filter(|e| !e["job"].as_str().unwrap().starts_with(&tid))
        .collect();
    assert_eq!(others.len(), 4, "{others:?}");
    assert!(others.iter().all(|e| e["attempt"] == 1));
}

/// Bundles on the real cluster: `--bundle-size auto` packs the tiny targets, each its build and
/// its three samplers, into one SLURM job (at most one SLURM job per target and rule), each
/// member with its own log, benchmark and journal lines. Every hmc member fails the first time
/// it runs (LAMBDA_HAT_TEST_FAIL_ONCE): it alone is resubmitted and succeeds, while the builds
/// and the sgld and mclmc members of the bundle keep their results and run once.
#[test]
fn bundled_sweep_packs_tiny_targets_and_retries_a_failed_member_alone() {
    let Some(_lock) = cluster("bundled_sweep_packs_tiny_targets_and_retries_a_failed_member_alone")
    else {
        return;
    };
    let targets = 3;
    let t = slurm_test(targets).env("LAMBDA_HAT_TEST_FAIL_ONCE", "run_hmc_");
    // The dry run says what the run below does on its first attempts: one SLURM job.
    t.run_with(&[
        "-n",
        "--profile",
        "local-slurm",
        "-j",
        "10",
        "--bundle-size",
        "auto",
    ])
    .success()
    .stdout_has("1 sbatch call(s), 1 SLURM job(s) or array task(s):")
    .stdout_has("sbatch 1: one bundle: jobids 0 3 4 5 1 6 7 8 2 9 10 11\n");
    let run = t
        .run_with(&[
            "--profile",
            "local-slurm",
            "-j",
            "10",
            "--bundle-size",
            "auto",
            "--retries",
            "1",
        ])
        .success()
        .stderr_has("12 of 12 jobs done.");
    assert!(run.stderr().contains("bundle of 12"), "{}", run.stderr());

    let j = journal(&t.store());
    let submitted = events(&j, "submitted");
    let runs: Vec<&serde_json::Value> = submitted
        .iter()
        .copied()
        .filter(|e| e["rule"] == "run_sampler")
        .collect();
    let first: Vec<_> = runs.iter().filter(|e| e["attempt"] == 1).collect();
    assert_eq!(first.len(), 3 * targets, "{first:?}");
    // First attempts: the 3 builds and 9 sampler runs in one SLURM job.
    let bundle_ids: BTreeSet<&str> = submitted
        .iter()
        .filter(|e| e["attempt"] == 1)
        .map(|e| e["slurm_job_id"].as_str().unwrap())
        .collect();
    assert_eq!(bundle_ids.len(), 1, "{bundle_ids:?}");
    // The hmc runs failed inside the bundle and were resubmitted alone; nothing else was.
    let retries: Vec<_> = runs.iter().filter(|e| e["attempt"] == 2).collect();
    assert_eq!(retries.len(), targets, "{retries:?}");
    for e in &retries {
        let key = e["job"].as_str().unwrap();
        assert!(key.contains("run_hmc_"), "{e}");
        let id = e["slurm_job_id"].as_str().unwrap();
        let sharing = runs.iter().filter(|r| r["slurm_job_id"] == id).count();
        assert_eq!(
            sharing, 1,
            "the retry of {key} runs alone in SLURM job {id}"
        );
    }
    for e in events(&j, "failed") {
        assert!(e["job"].as_str().unwrap().contains("run_hmc_"), "{e}");
        assert_eq!(e["detail"]["retry"], true, "{e}");
    }
    for e in events(&j, "finished") {
        assert_eq!(
            events(&j, "finished")
                .iter()
                .filter(|f| f["job"] == e["job"])
                .count(),
            1,
            "{e}"
        );
    }
    // SLURM saw the bundle fail (its hmc members), yet its other members are done.
    let ids: BTreeSet<String> = bundle_ids
        .iter()
        .map(|id| id.split('_').next().unwrap().to_string())
        .collect();
    let rows = sacct_until(&ids, "JobID,State", |r| {
        r.len() >= bundle_ids.len() && r.iter().all(|row| row[1] == "FAILED")
    });
    assert!(
        rows.len() >= bundle_ids.len() && rows.iter().all(|r| r[1] == "FAILED"),
        "{rows:?}"
    );

    // Every output, and every member's own log and benchmark.
    let store = t.store();
    let mut analyses = 0;
    for target in std::fs::read_dir(store.join("targets")).unwrap() {
        for run_dir in std::fs::read_dir(target.unwrap().path()).unwrap() {
            let run_dir = run_dir.unwrap().path();
            if run_dir.is_dir()
                && run_dir
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("run_")
            {
                assert!(
                    run_dir.join("analysis.json").is_file(),
                    "{}",
                    run_dir.display()
                );
                analyses += 1;
            }
        }
    }
    assert_eq!(analyses, 3 * targets);
    for e in &first {
        let key = e["job"].as_str().unwrap();
        let log = store.join("logs/run_sampler").join(format!("{key}.log"));
        let meta = std::fs::symlink_metadata(&log).unwrap_or_else(|_| panic!("{}", log.display()));
        assert!(
            meta.file_type().is_file(),
            "a member's own log, not a link: {}",
            log.display()
        );
        let bench = store
            .join("benchmarks/run_sampler")
            .join(format!("{key}.tsv"));
        let text =
            std::fs::read_to_string(&bench).unwrap_or_else(|_| panic!("{}", bench.display()));
        assert!(text.starts_with("s\th:m:s\tmax_rss\t"), "{text}");
        // The worker measured itself (sacct has no CPU time), the retried hmc runs alone too.
        let cpu_time = text.lines().nth(1).and_then(|row| row.split('\t').nth(9));
        assert!(
            cpu_time.is_some_and(|c| c.parse::<f64>().is_ok()),
            "{}: {text}",
            bench.display()
        );
    }
    // The bundle's own log says which members ran: target after target, each build first.
    let bundle_logs = std::fs::read_dir(store.join(".lambda-hat/slurm/logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .filter(|text| text.contains("a bundle"))
        .collect::<Vec<_>>();
    assert_eq!(bundle_logs.len(), 1);
    let ran: Vec<&str> = bundle_logs[0]
        .lines()
        .filter_map(|l| {
            l.split_once(": member ")?
                .1
                .split_once(": ")?
                .1
                .split(' ')
                .next()
        })
        .collect();
    assert_eq!(ran.len(), 12, "{}", bundle_logs[0]);
    // Which member ran when.
    assert_eq!(
        bundle_logs[0].matches(", started 20").count(),
        12,
        "{}",
        bundle_logs[0]
    );
    for chunk in ran.chunks(4) {
        assert_eq!(chunk[0], "build-target", "{ran:?}");
        assert!(chunk[1..].iter().all(|s| *s == "run-sampler"), "{ran:?}");
    }
    assert!(
        bundle_logs[0].contains("3 of 12 member(s) failed"),
        "{}",
        bundle_logs[0]
    );

    // Nothing is left to do.
    t.run_with(&[
        "--profile",
        "local-slurm",
        "-j",
        "10",
        "--bundle-size",
        "auto",
    ])
    .success()
    .stdout_has("Nothing to be done");
}
