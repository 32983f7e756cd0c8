//! A simulated SLURM for the controller's unit tests: it implements [`Cluster`] by keeping jobs
//! in memory and printing the same text formats as the real commands, so the controller's
//! parsing path is exercised too. Time advances only when the controller sleeps.
//!
//! Each job is PENDING for one tick (longer while its `afterok` parent has not completed),
//! RUNNING for one tick, then ends with the state the test's `outcome` closure chose; a
//! COMPLETED job writes its completion marker next to its spec. A bundle (a script with a
//! bundle list) writes the marker of each member the test's `member_fails` lets succeed, and
//! ends FAILED when any member failed; as the bundle script does, a build member that fails
//! skips the members after it up to the next build. Ended jobs are purged from squeue two ticks later, so
//! sacct has to be asked.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, CmdOutput};
use super::parse::{JobKey, JobState};

/// What a job does when it runs: final state, signal, text appended to its log.
pub type OutcomeFn = Box<dyn FnMut(&FakeJob) -> (JobState, u32, String)>;

#[derive(Debug, Clone)]
pub struct FakeJob {
    pub key: JobKey,
    /// Its `--job-name` (what `squeue --name` finds it by).
    pub name: String,
    pub spec: PathBuf,
    pub log: PathBuf,
    pub mem: Option<i64>,
    pub dependency: Option<JobKey>,
    pub state: JobState,
    pub signal: u32,
    /// Ticks since it started (running) or ended.
    pub ticks: u32,
    /// The members when it runs a bundle (`spec` is the first's), else empty.
    pub members: Vec<FakeMember>,
    /// Members finished while it runs ([`Fake::member_per_tick`]).
    pub members_done: usize,
    /// A member that ran while it ran failed (its state at the end), and whether the last
    /// build among them did (the members after it, up to the next build, are skipped).
    pub member_failed: bool,
    pub build_failed: bool,
}

/// One member of a fake bundle: its spec, and whether it builds a target (a failed build skips
/// the members after it).
#[derive(Debug, Clone)]
pub struct FakeMember {
    pub spec: PathBuf,
    pub build: bool,
    /// The member's own log, where the bundle script notes its failure.
    pub log: PathBuf,
    /// Where its worker writes what it used, last (after its output).
    pub benchmark: PathBuf,
}

/// Something done to the cluster from outside the controller, at a given sleep.
pub type SleepHook = Box<dyn FnOnce(&mut Fake)>;

pub struct Fake {
    next_id: u64,
    pub jobs: BTreeMap<JobKey, FakeJob>,
    now: Instant,
    /// Every command run, in order ("sbatch", "squeue", "sacct", "scontrol", "scancel", "sleep").
    pub calls: Vec<String>,
    /// stderr of the next sbatch calls that fail.
    pub sbatch_failures: VecDeque<String>,
    pub outcome: OutcomeFn,
    /// Ctrl-C after this many sleeps.
    pub interrupt_after_sleeps: Option<usize>,
    /// Ctrl-C once this many sbatch calls were made (during submission).
    pub interrupt_after_sbatch: Option<usize>,
    /// At this many sleeps, someone `scancel`s every pending job from outside.
    pub cancel_pending_at_sleep: Option<usize>,
    /// At this many sleeps, this runs with the cluster (e.g. `lambda-hat cancel` from another
    /// terminal, which calls scancel and writes the journal while the controller runs).
    pub at_sleep: Option<(usize, SleepHook)>,
    sleeps: usize,
    /// Most jobs pending or running at once.
    pub max_queued: usize,
    /// A COMPLETED job writes its completion marker (false: simulate a lost output).
    pub write_markers: bool,
    /// stderr of the next squeue calls that fail.
    pub squeue_failures: VecDeque<String>,
    /// sacct fails like on a cluster without accounting storage.
    pub no_accounting: bool,
    /// The N-th sbatch call (1-based) fails with this stderr.
    pub fail_sbatch_number: Option<(usize, String)>,
    /// The reason squeue gives for pending jobs (`None` prints SLURM's "None").
    pub pending_reason: Option<String>,
    /// stderr of scancel when it refuses (e.g. someone else's job).
    pub scancel_failure: Option<String>,
    /// Whether a failed bundle member's log gets the bundle script's failure line (true; false
    /// as if the line were lost, e.g. not yet visible on a shared file system).
    pub member_failure_lines: bool,
    /// Which bundle members fail (write no marker) when their bundle runs.
    pub member_fails: Box<dyn FnMut(&Path) -> bool>,
    /// A running bundle finishes one member per tick (its output, then its benchmark, as the
    /// worker writes them; a failed member its benchmark, then the bundle script's line in its
    /// log) and ends a tick after its last; false: all members at its end.
    pub member_per_tick: bool,
}

impl Fake {
    pub fn new(outcome: OutcomeFn) -> Self {
        Fake {
            next_id: 100,
            jobs: BTreeMap::new(),
            now: Instant::now(),
            calls: Vec::new(),
            sbatch_failures: VecDeque::new(),
            outcome,
            interrupt_after_sleeps: None,
            cancel_pending_at_sleep: None,
            at_sleep: None,
            interrupt_after_sbatch: None,
            sleeps: 0,
            max_queued: 0,
            write_markers: true,
            squeue_failures: VecDeque::new(),
            pending_reason: None,
            no_accounting: false,
            fail_sbatch_number: None,
            scancel_failure: None,
            member_fails: Box::new(|_| false),
            member_failure_lines: true,
            member_per_tick: false,
        }
    }

    pub fn count(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| c.as_str() == call).count()
    }

    fn tick(&mut self) {
        let states: BTreeMap<JobKey, JobState> = self
            .jobs
            .iter()
            .map(|(k, j)| (*k, j.state.clone()))
            .collect();
        let keys: Vec<JobKey> = self.jobs.keys().copied().collect();
        for k in keys {
            let job = self.jobs.get(&k).cloned().unwrap();
            match job.state {
                JobState::Pending => {
                    let ready = match job.dependency {
                        None => true,
                        // A parent the fake no longer knows counts as satisfied, as on SLURM.
                        Some(d) => states.get(&d).is_none_or(|s| *s == JobState::Completed),
                    };
                    if ready {
                        self.jobs.get_mut(&k).unwrap().state = JobState::Running;
                        // As SLURM, which creates the job's output file when it starts.
                        let _ = std::fs::create_dir_all(job.log.parent().unwrap());
                        let _ = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&job.log);
                    }
                }
                JobState::Running
                    if self.member_per_tick && job.members_done < job.members.len() =>
                {
                    let m = job.members[job.members_done].clone();
                    let fails = (self.member_fails)(&m.spec);
                    let j = self.jobs.get_mut(&k).unwrap();
                    j.members_done += 1;
                    j.build_failed &= !m.build;
                    let _ = std::fs::create_dir_all(m.log.parent().unwrap());
                    if j.build_failed {
                        let _ = std::fs::write(&m.log, super::script::MEMBER_NOT_RUN);
                        continue;
                    }
                    if fails {
                        j.member_failed = true;
                        j.build_failed = m.build;
                    } else {
                        write_marker(&m.spec);
                    }
                    let bench = crate::store::benchmark::Benchmark {
                        wall: Duration::from_secs(1),
                        ..Default::default()
                    };
                    crate::store::benchmark::write(&m.benchmark, &bench).unwrap();
                    if fails {
                        let line = format!("{}1\n", super::script::MEMBER_FAILED);
                        let _ = std::fs::write(&m.log, line);
                    }
                }
                JobState::Running => {
                    let (mut state, signal, log) = (self.outcome)(&job);
                    if job.member_failed {
                        state = JobState::Failed;
                    }
                    if !log.is_empty() {
                        let _ = std::fs::create_dir_all(job.log.parent().unwrap());
                        let _ = std::fs::write(&job.log, log);
                    }
                    if state == JobState::Completed && self.write_markers {
                        if job.members.is_empty() {
                            write_marker(&job.spec);
                        }
                        // As the bundle script: a failed build skips its target's runs, the
                        // members up to the next build.
                        let mut build_failed = false;
                        for m in &job.members[job.members_done..] {
                            build_failed &= !m.build;
                            if build_failed {
                                if self.member_failure_lines {
                                    let _ = std::fs::create_dir_all(m.log.parent().unwrap());
                                    let _ = std::fs::write(&m.log, super::script::MEMBER_NOT_RUN);
                                }
                                continue;
                            }
                            if (self.member_fails)(&m.spec) {
                                state = JobState::Failed;
                                build_failed = m.build;
                                if self.member_failure_lines {
                                    let line = format!("{}1\n", super::script::MEMBER_FAILED);
                                    let _ = std::fs::create_dir_all(m.log.parent().unwrap());
                                    let _ = std::fs::write(&m.log, line);
                                }
                            } else {
                                write_marker(&m.spec);
                            }
                        }
                    }
                    let j = self.jobs.get_mut(&k).unwrap();
                    j.state = state;
                    j.signal = signal;
                    j.ticks = 0;
                }
                _ => self.jobs.get_mut(&k).unwrap().ticks += 1,
            }
        }
        let queued = self
            .jobs
            .values()
            .filter(|j| !j.state.is_terminal())
            .count();
        self.max_queued = self.max_queued.max(queued);
    }
}

/// The completion marker next to `spec`, as the worker writes it last.
fn write_marker(spec: &Path) {
    let in_run_dir = spec
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("run_"));
    let marker = if in_run_dir {
        "analysis.json"
    } else {
        "meta.json"
    };
    std::fs::write(spec.with_file_name(marker), "{}").unwrap();
}

fn ok(stdout: String) -> io::Result<CmdOutput> {
    Ok(CmdOutput {
        success: true,
        stdout,
        stderr: String::new(),
    })
}

/// The last '...'-quoted word of `line`.
fn last_quoted(line: &str) -> Option<String> {
    let end = line.rfind('\'')?;
    let start = line[..end].rfind('\'')?;
    Some(line[start + 1..end].to_string())
}

impl Cluster for Fake {
    fn sbatch(&mut self, script: &Path, args: &[String]) -> io::Result<CmdOutput> {
        self.calls.push("sbatch".into());
        let nth = match &self.fail_sbatch_number {
            Some((n, stderr)) if *n == self.count("sbatch") => Some(stderr.clone()),
            _ => None,
        };
        if let Some(stderr) = nth.or_else(|| self.sbatch_failures.pop_front()) {
            return Ok(CmdOutput {
                success: false,
                stdout: String::new(),
                stderr,
            });
        }
        let text = std::fs::read_to_string(script)?;
        let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix));
        let log = line("#SBATCH --output=").and_then(last_quoted).unwrap();
        let name = line("#SBATCH --job-name=")
            .and_then(last_quoted)
            .unwrap_or_default();
        let mem = line("#SBATCH --mem ")
            .and_then(last_quoted)
            .and_then(|m| m.parse().ok());
        let dependency = args
            .iter()
            .find_map(|a| a.strip_prefix("--dependency=afterok:"))
            .map(|d| d.parse::<JobKey>().unwrap());
        let id = self.next_id;
        self.next_id += 1;
        let is_array = line("#SBATCH --array=").is_some();
        let mut specs: Vec<(JobKey, PathBuf, PathBuf, Vec<FakeMember>)> = Vec::new();
        if let Some(list) = line("bundle_list=").and_then(last_quoted) {
            // TASK<TAB>SUBCOMMAND<TAB>LOG<TAB>BENCHMARK<TAB>SPEC: one fake job per task, with
            // its members.
            let mut tasks: BTreeMap<u32, Vec<FakeMember>> = BTreeMap::new();
            for l in std::fs::read_to_string(list)?.lines() {
                let fields: Vec<&str> = l.split('\t').collect();
                tasks
                    .entry(fields[0].parse().unwrap())
                    .or_default()
                    .push(FakeMember {
                        spec: fields[4].into(),
                        build: fields[1] == "build-target",
                        log: fields[2].into(),
                        benchmark: fields[3].into(),
                    });
            }
            for (t, members) in tasks {
                let (key, log) = if is_array {
                    let log = log
                        .replace("%A", &id.to_string())
                        .replace("%a", &t.to_string());
                    (JobKey::task(id, t), log)
                } else {
                    (JobKey::job(id), log.replace("%j", &id.to_string()))
                };
                specs.push((key, members[0].spec.clone(), log.into(), members));
            }
        } else if let Some(list) = line("task_list=").and_then(last_quoted) {
            for (t, spec) in std::fs::read_to_string(list)?.lines().enumerate() {
                let log = log
                    .replace("%A", &id.to_string())
                    .replace("%a", &t.to_string());
                specs.push((
                    JobKey::task(id, t as u32),
                    spec.into(),
                    log.into(),
                    Vec::new(),
                ));
            }
        } else {
            let spec = line("exec ").and_then(last_quoted).unwrap();
            specs.push((JobKey::job(id), spec.into(), log.into(), Vec::new()));
        }
        for (key, spec, log, members) in specs {
            self.jobs.insert(
                key,
                FakeJob {
                    key,
                    name: name.clone(),
                    spec,
                    log,
                    mem,
                    dependency,
                    state: JobState::Pending,
                    signal: 0,
                    ticks: 0,
                    members,
                    members_done: 0,
                    member_failed: false,
                    build_failed: false,
                },
            );
        }
        let queued = self
            .jobs
            .values()
            .filter(|j| !j.state.is_terminal())
            .count();
        self.max_queued = self.max_queued.max(queued);
        ok(format!("{id}\n"))
    }

    fn squeue(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput> {
        self.calls.push("squeue".into());
        if let Some(stderr) = self.squeue_failures.pop_front() {
            return Ok(CmdOutput {
                success: false,
                stdout: String::new(),
                stderr,
            });
        }
        let mut out = String::new();
        for j in self.jobs.values() {
            let purged = j.state.is_terminal() && j.ticks >= 2;
            if job_ids.contains(&j.key.job_id) && !purged {
                let reason = match (&j.state, &self.pending_reason) {
                    (JobState::Pending, Some(r)) => r.as_str(),
                    _ => "None",
                };
                out.push_str(&format!("{}|{}|{reason}\n", j.key, j.state));
            }
        }
        if out.is_empty() && job_ids.len() == 1 {
            return Ok(CmdOutput {
                success: false,
                stdout: String::new(),
                stderr: "slurm_load_jobs error: Invalid job id specified\n".into(),
            });
        }
        ok(out)
    }

    fn sacct(&mut self, job_ids: &[u64]) -> io::Result<CmdOutput> {
        self.calls.push("sacct".into());
        if self.no_accounting {
            return Ok(CmdOutput {
                success: false,
                stdout: String::new(),
                stderr: "sacct: error: Slurm accounting storage is disabled\n".into(),
            });
        }
        let mut out = String::new();
        for j in self.jobs.values() {
            if job_ids.contains(&j.key.job_id) {
                out.push_str(&format!(
                    "{}|{}|0:{}|00:00:02||100M\n{}.batch|{}|0:{}|00:00:02|2097152|\n",
                    j.key, j.state, j.signal, j.key, j.state, j.signal
                ));
            }
        }
        ok(out)
    }

    fn scontrol_show_jobs(&mut self) -> io::Result<CmdOutput> {
        self.calls.push("scontrol".into());
        ok(String::new())
    }

    /// `%i|%j` of the queued and running jobs with one of `names`, as squeue prints them.
    fn squeue_names(&mut self, names: &[String]) -> io::Result<CmdOutput> {
        self.calls.push("squeue-names".into());
        let lines: String = self
            .jobs
            .values()
            .filter(|j| !j.state.is_terminal() && names.contains(&j.name))
            .map(|j| format!("{}|{}\n", j.key, j.name))
            .collect();
        ok(lines)
    }

    fn sacct_names(&mut self, _names: &[String], _since: &str) -> io::Result<CmdOutput> {
        self.calls.push("sacct-names".into());
        ok(String::new())
    }

    fn scancel(&mut self, jobs: &[String]) -> io::Result<CmdOutput> {
        self.calls.push("scancel".into());
        if let Some(stderr) = &self.scancel_failure {
            return Ok(CmdOutput {
                success: false,
                stdout: String::new(),
                stderr: stderr.clone(),
            });
        }
        for j in self.jobs.values_mut() {
            let hit = jobs
                .iter()
                .any(|s| *s == j.key.to_string() || *s == j.key.job_id.to_string());
            if hit && !j.state.is_terminal() {
                j.state = JobState::Cancelled;
                j.ticks = 0;
            }
        }
        ok(String::new())
    }

    fn sleep(&mut self, d: Duration) {
        self.calls.push("sleep".into());
        self.sleeps += 1;
        self.now += d.max(Duration::from_millis(1));
        if let Some((n, hook)) = self.at_sleep.take() {
            if n == self.sleeps {
                hook(self);
            } else {
                self.at_sleep = Some((n, hook));
            }
        }
        if self.cancel_pending_at_sleep == Some(self.sleeps) {
            for job in self.jobs.values_mut() {
                if job.state == JobState::Pending {
                    job.state = JobState::Cancelled;
                }
            }
        }
        self.tick();
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn interrupts(&self) -> usize {
        let after_sbatch = self
            .interrupt_after_sbatch
            .is_some_and(|n| self.count("sbatch") >= n);
        match self.interrupt_after_sleeps {
            Some(n) if self.sleeps >= n => 1,
            _ => usize::from(after_sbatch),
        }
    }
}
