//! Submission: which waiting jobs may go now, grouped into as few `sbatch` calls as possible
//! (arrays of run_sampler jobs sharing a parent; with `bundle-size` > 1, bundles of them in one
//! SLURM job or array task, a target not built yet with its build first), and what a refused
//! `sbatch` means.
//!
//! Input: jobs in `Waiting` whose parent is done or in the queue, the `jobs` budget (a bundle
//! counts once), the rendered script. Output: spec.json files, incomplete markers, the script
//! (and array task list or bundle list), `submitting`/`submitted` journal lines for every job,
//! and the jobs set to `Queued` with their SLURM ids (a bundle's members share one); or, when
//! sbatch fails, a back-off, a dependency to drop, or the jobs failed for good.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Controller, St, first_line, io_err, link_log};
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::bundle;
use crate::exec::slurm::cluster::Cluster;
use crate::exec::slurm::flags::sbatch_flags;
use crate::exec::slurm::grouping;
use crate::exec::slurm::history;
use crate::exec::slurm::parse::{
    JobKey, SubmitError, classify_sbatch_failure, parse_sbatch_parsable,
};
use crate::exec::slurm::script::{self, Body, Member, Script};
use crate::plan::{JobRef, shell_words};
use crate::spec::write_spec;

/// Give up submitting after this many transient sbatch failures in a row (~10 minutes).
const MAX_SUBMIT_FAILURES: u32 = 14;

impl<'a, C: Cluster> Controller<'a, C> {
    /// SLURM jobs (array tasks counted one by one) queued or running: the members of a bundle
    /// share one.
    fn queued(&self) -> usize {
        self.jobs
            .iter()
            .filter(|j| j.st == St::Queued)
            .map(|j| j.slurm)
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub(super) fn parent_slot(&self, i: usize) -> Option<usize> {
        match self.plan.parent(self.jobs[i].job) {
            Some(JobRef::Target(t)) => self.target_slot.get(&t).copied(),
            _ => None,
        }
    }

    /// Submits every job that may go now, within the `jobs` budget. Returns whether any went.
    pub(super) fn submit_ready(&mut self) -> Result<bool, SlurmError> {
        if let Some(t) = self.submit_after {
            if self.cluster.now() < t {
                return Ok(false);
            }
            self.submit_after = None;
        }
        let budget = self.opts.jobs.saturating_sub(self.queued());
        let opts = self.opts.grouping();
        let pass = grouping::group_ready(&View(self), &opts, budget);
        for i in pass.skip {
            self.skip(i, "the job it depends on failed")?;
        }
        let mut any = false;
        for group in pass.groups {
            // Ctrl-C stops submitting at once: each sbatch can take seconds on a busy cluster,
            // and every job submitted after the interrupt would only be cancelled again.
            if self.submit_after.is_some() || self.stop_launching || self.cluster.interrupts() > 0 {
                break;
            }
            any |= if group.bundled() {
                self.submit_bundles(&group.bundles, group.dependency)?
            } else {
                self.submit(&group.bundles.concat(), group.dependency)?
            };
        }
        Ok(any)
    }

    /// Where job `i` stands for [`grouping::group_ready`].
    fn grouping_state(&self, i: usize) -> grouping::State {
        let j = &self.jobs[i];
        match j.st {
            St::Waiting => grouping::State::Waiting,
            St::Done => grouping::State::Done,
            St::Failed | St::Skipped => grouping::State::Gone,
            St::Queued
                if j.in_flight && !self.no_dependency.contains(&i) && j.bundle_log.is_none() =>
            {
                grouping::State::Dependable
            }
            St::Queued | St::Verifying => grouping::State::Busy,
        }
    }

    fn token(&mut self) -> String {
        self.serial += 1;
        let seed = format!(
            "{}:{}:{:?}",
            std::process::id(),
            self.serial,
            std::time::SystemTime::now()
        );
        format!("{:08x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) as u32)
    }

    /// One sbatch for `slots` (one job, or an array of run_sampler jobs sharing a parent).
    fn submit(&mut self, slots: &[usize], dep: Option<usize>) -> Result<bool, SlurmError> {
        let rule = self.jobs[slots[0]].job.rule();
        let name = format!("lh-{}-{}", rule.name(), self.token());
        let script_path = self.slurm_dir.join(format!("{name}.sh"));
        let is_array = slots.len() > 1;

        let mut specs = Vec::new();
        let mut benchmarks = Vec::new();
        for &i in slots {
            let job = self.jobs[i].job;
            let spec = write_spec(self.plan, job)
                .map_err(io_err("spec.json", &self.plan.spec_path(job)))?;
            specs.push(self.abs(&spec));
            benchmarks.push(self.fresh_benchmark(i));
            self.markers
                .mark(&self.jobs[i].key, &self.plan.output(job))
                .map_err(io_err("the incomplete marker", &self.plan.store_root))?;
        }
        let res = self.jobs[slots[0]].resources.clone();
        let mut flags = if res == self.opts.resources.get(&rule).cloned().unwrap_or_default() {
            self.flags[&rule].clone()
        } else {
            sbatch_flags(rule, &res, &self.opts.slurm_extra)?
        };
        flags.push(("--no-requeue".into(), String::new()));

        let task_list_path = self.slurm_dir.join(format!("{name}.tasks"));
        let benchmark_list_path = self.slurm_dir.join(format!("{name}.benchmarks"));
        let array_log = self.slurm_dir.join("logs").join("%A_%a.log");
        let throttle = self
            .opts
            .array_throttle
            .unwrap_or(self.opts.jobs)
            .clamp(1, slots.len());
        let array_spec = format!("0-{}%{throttle}", slots.len() - 1);
        let single_log = self.jobs[slots[0]].log.clone();
        let body = if is_array {
            let list = script::task_list(&specs)?;
            script::save(&task_list_path, &list)
                .map_err(io_err("the array task list", &task_list_path))?;
            let list = script::task_list(&benchmarks)?;
            script::save(&benchmark_list_path, &list)
                .map_err(io_err("the array benchmark list", &benchmark_list_path))?;
            Body::Array {
                task_list: &task_list_path,
                benchmark_list: &benchmark_list_path,
                array_spec: &array_spec,
            }
        } else {
            // A log (or link) of an earlier attempt would otherwise receive this one's output.
            let _ = std::fs::remove_file(&single_log);
            if let Some(dir) = single_log.parent() {
                std::fs::create_dir_all(dir).map_err(io_err("the log directory", dir))?;
            }
            Body::Single {
                spec: &specs[0],
                benchmark: &benchmarks[0],
            }
        };
        let text = self.opts.templates.render(&Script {
            job_name: &name,
            log_path: if is_array { &array_log } else { &single_log },
            flags: &flags,
            worker_command: &self.opts.worker_command,
            subcommand: rule.worker_subcommand(),
            body,
        })?;
        script::save(&script_path, &text).map_err(io_err("the sbatch script", &script_path))?;

        let dep_key = dep.and_then(|p| self.jobs[p].slurm);
        for (t, &i) in slots.iter().enumerate() {
            let mut ev = self.event(i, history::SUBMITTING);
            ev.slurm_job_id = None;
            ev.attempt = Some(self.jobs[i].failures + 1);
            ev.detail = Some(serde_json::json!({
                "name": name,
                "task": if is_array { Some(t) } else { None },
                "script": script_path.display().to_string(),
                "resources": self.jobs[i].resources,
                "log": self.jobs[i].log.display().to_string(),
                "dependency": dep_key.map(|k| k.to_string()),
            }));
            self.append(ev)?;
        }
        let Some(id) = self.sbatch(slots, dep, &script_path)? else {
            return Ok(false);
        };
        for (t, &i) in slots.iter().enumerate() {
            let key = if is_array {
                JobKey::task(id, t as u32)
            } else {
                JobKey::job(id)
            };
            self.mark_queued(i, key, None);
            if is_array {
                // Keep logs/<rule>/<key>.log the place to look, as with the local executor.
                let target = self.slurm_dir.join("logs").join(format!("{id}_{t}.log"));
                link_log(&self.jobs[i].log, &target);
            }
            let mut ev = self.event(i, history::SUBMITTED);
            ev.attempt = Some(self.jobs[i].failures + 1);
            ev.detail = Some(serde_json::json!({"name": name}));
            self.append(ev)?;
            self.progress.started(&format!(
                "{} (SLURM job {key}{})",
                self.describe(i),
                dep_key.map(|k| format!(", after {k}")).unwrap_or_default()
            ));
            if self.opts.print_commands {
                self.progress.command(&self.plan.worker_command_line(
                    self.jobs[i].job,
                    &shell_words(&self.opts.worker_command),
                ));
            }
        }
        Ok(true)
    }

    /// Runs sbatch for `script` (with afterok on `dep`'s SLURM job) on behalf of `slots`.
    /// Returns the SLURM job id, or `None` when sbatch refused (already handled: back-off,
    /// dependency dropped or the jobs failed).
    fn sbatch(
        &mut self,
        slots: &[usize],
        dep: Option<usize>,
        script_path: &Path,
    ) -> Result<Option<u64>, SlurmError> {
        let dep_key = dep.and_then(|p| self.jobs[p].slurm);
        let args: Vec<String> = dep_key
            .map(|k| vec![format!("--dependency=afterok:{k}")])
            .unwrap_or_default();
        let out = match self.cluster.sbatch(script_path, &args) {
            Ok(out) => out,
            Err(source) => {
                self.submit_failed(slots, &format!("cannot run sbatch: {source}"))?;
                return Err(SlurmError::Program {
                    program: "sbatch",
                    source,
                });
            }
        };
        let id = if out.success {
            parse_sbatch_parsable(&out.stdout).map_err(|e| e.to_string())
        } else {
            Err(String::new())
        };
        match id {
            Ok(id) => {
                self.submit_backoff.succeed();
                Ok(Some(id))
            }
            Err(parse_problem) => {
                let failure = if parse_problem.is_empty() {
                    classify_sbatch_failure(&out.stderr)
                } else {
                    SubmitError::Rejected {
                        message: parse_problem,
                    }
                };
                self.submit_refused(slots, dep, script_path, failure)?;
                Ok(None)
            }
        }
    }

    /// One sbatch for `bundles` of jobs with equal resources: run_sampler jobs sharing a parent,
    /// or per target its build followed by its runs. One SLURM job for one bundle, an array with
    /// one task per bundle for several. Each member keeps its own spec, marker, log, benchmark
    /// and journal lines; the bundle's own SLURM log is `.lambda-hat/slurm/logs/<id>.log`
    /// (`<array id>_<task>.log` in an array).
    fn submit_bundles(
        &mut self,
        bundles: &[Vec<usize>],
        dep: Option<usize>,
    ) -> Result<bool, SlurmError> {
        let slots: Vec<usize> = bundles.concat();
        let rule = self.jobs[slots[0]].job.rule();
        let name = format!("lh-{}-{}", rule.name(), self.token());
        let script_path = self.slurm_dir.join(format!("{name}.sh"));
        let list_path = self.slurm_dir.join(format!("{name}.bundles"));
        let is_array = bundles.len() > 1;

        let mut members = Vec::new();
        for (t, bundle) in bundles.iter().enumerate() {
            for &i in bundle {
                let job = self.jobs[i].job;
                let spec = write_spec(self.plan, job)
                    .map_err(io_err("spec.json", &self.plan.spec_path(job)))?;
                self.markers
                    .mark(&self.jobs[i].key, &self.plan.output(job))
                    .map_err(io_err("the incomplete marker", &self.plan.store_root))?;
                let log = self.jobs[i].log.clone();
                // The worker writes the log itself: an earlier attempt's log (or a link to an
                // array task's file) must not receive this one's output.
                let _ = std::fs::remove_file(&log);
                if let Some(dir) = log.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err("the log directory", dir))?;
                }
                let bench = self.fresh_benchmark(i);
                members.push(Member {
                    task: t,
                    subcommand: job.rule().worker_subcommand(),
                    log,
                    benchmark: bench,
                    spec: self.abs(&spec),
                });
            }
        }
        let list = script::bundle_list(&members)?;
        script::save(&list_path, &list).map_err(io_err("the bundle list", &list_path))?;

        // Every bundle of the array asks for what the longest one needs.
        let res = bundle::widest(
            &bundles
                .iter()
                .map(|b| {
                    bundle::resources(
                        &b.iter()
                            .map(|&i| &self.jobs[i].resources)
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>(),
        );
        let mut flags = sbatch_flags(rule, &res, &self.opts.slurm_extra)?;
        flags.push(("--no-requeue".into(), String::new()));
        let throttle = self
            .opts
            .array_throttle
            .unwrap_or(self.opts.jobs)
            .clamp(1, bundles.len());
        let array_spec = format!("0-{}%{throttle}", bundles.len() - 1);
        let logs = self.slurm_dir.join("logs");
        let log_pattern = logs.join(if is_array { "%A_%a.log" } else { "%j.log" });
        let text = self.opts.templates.render(&Script {
            job_name: &name,
            log_path: &log_pattern,
            flags: &flags,
            worker_command: &self.opts.worker_command,
            subcommand: rule.worker_subcommand(),
            body: Body::Bundle {
                bundle_list: &list_path,
                array_spec: is_array.then_some(array_spec.as_str()),
            },
        })?;
        script::save(&script_path, &text).map_err(io_err("the sbatch script", &script_path))?;

        let dep_key = dep.and_then(|p| self.jobs[p].slurm);
        for (t, bundle) in bundles.iter().enumerate() {
            for &i in bundle {
                let mut ev = self.event(i, history::SUBMITTING);
                ev.slurm_job_id = None;
                ev.attempt = Some(self.jobs[i].failures + 1);
                ev.detail = Some(serde_json::json!({
                    "name": name,
                    "task": if is_array { Some(t) } else { None },
                    "bundle": bundle.iter().map(|&m| self.jobs[m].key.as_str()).collect::<Vec<_>>(),
                    "script": script_path.display().to_string(),
                    "resources": self.jobs[i].resources,
                    "bundle_resources": res,
                    "log": self.jobs[i].log.display().to_string(),
                    "dependency": dep_key.map(|k| k.to_string()),
                }));
                self.append(ev)?;
            }
        }
        let Some(id) = self.sbatch(&slots, dep, &script_path)? else {
            return Ok(false);
        };
        for (t, bundle) in bundles.iter().enumerate() {
            let (key, bundle_log): (JobKey, PathBuf) = if is_array {
                (
                    JobKey::task(id, t as u32),
                    logs.join(format!("{id}_{t}.log")),
                )
            } else {
                (JobKey::job(id), logs.join(format!("{id}.log")))
            };
            for &i in bundle {
                self.mark_queued(i, key, Some(bundle_log.clone()));
                let mut ev = self.event(i, history::SUBMITTED);
                ev.attempt = Some(self.jobs[i].failures + 1);
                ev.detail = Some(serde_json::json!({
                    "name": name,
                    "bundle_log": bundle_log.display().to_string(),
                }));
                self.append(ev)?;
                self.progress.started(&format!(
                    "{} (SLURM job {key}, bundle of {}{})",
                    self.describe(i),
                    bundle.len(),
                    dep_key.map(|k| format!(", after {k}")).unwrap_or_default()
                ));
                if self.opts.print_commands {
                    self.progress.command(&self.plan.worker_command_line(
                        self.jobs[i].job,
                        &shell_words(&self.opts.worker_command),
                    ));
                }
            }
        }
        Ok(true)
    }

    /// Job `i`'s benchmark path (absolute, for the worker), with an earlier attempt's file
    /// removed: a benchmark present when the attempt ends is this attempt's, written by its
    /// worker (crate::store::benchmark).
    fn fresh_benchmark(&self, i: usize) -> PathBuf {
        let bench = self.abs(&self.benchmark_path(i));
        let _ = std::fs::remove_file(&bench);
        bench
    }

    /// Job `i` was just submitted as SLURM job (or task) `key`; `bundle_log` is the log of the
    /// bundle it runs in, if it is a bundle member.
    fn mark_queued(&mut self, i: usize, key: JobKey, bundle_log: Option<PathBuf>) {
        let now = self.cluster.now();
        let j = &mut self.jobs[i];
        j.slurm = Some(key);
        j.st = St::Queued;
        j.in_flight = true;
        j.unknown_since = None;
        j.cancel_unexplained = None;
        j.ended = None;
        j.submitted_at = Some(now);
        j.bundle_log = bundle_log;
    }

    fn submit_failed(&mut self, slots: &[usize], reason: &str) -> Result<(), SlurmError> {
        for &i in slots {
            let mut ev = self.event(i, history::SUBMIT_FAILED);
            ev.slurm_job_id = None;
            ev.detail = Some(serde_json::json!({ "reason": reason }));
            self.append(ev)?;
            let _ = self.markers.clear(&self.jobs[i].key);
        }
        Ok(())
    }

    fn submit_refused(
        &mut self,
        slots: &[usize],
        dep: Option<usize>,
        script: &Path,
        failure: SubmitError,
    ) -> Result<bool, SlurmError> {
        self.submit_failed(slots, failure.message())?;
        match failure {
            SubmitError::Transient { message } => {
                if self.submit_backoff.failures() >= MAX_SUBMIT_FAILURES {
                    for &i in slots {
                        self.fail(
                            i,
                            format!("sbatch kept failing for about 10 minutes: {message}"),
                            false,
                        )?;
                    }
                    return Ok(false);
                }
                let wait = self.submit_backoff.fail();
                self.progress.message(&format!(
                    "sbatch failed transiently ({}); trying again in {:.1} s",
                    first_line(&message),
                    wait.as_secs_f64()
                ));
                self.submit_after = Some(self.cluster.now() + wait);
            }
            SubmitError::DependencyProblem { message } => {
                // The parent left the queue between our poll and sbatch: wait for the next poll
                // to say how it ended, then submit without a dependency (or skip).
                tracing::info!("dependency refused ({message}); waiting for the next poll");
                if let Some(p) = dep {
                    self.no_dependency.insert(p);
                }
            }
            SubmitError::Rejected { message } => {
                for &i in slots {
                    let why = format!(
                        "sbatch refused the {} job {} (script {}):\n        {}",
                        self.jobs[i].job.rule().name(),
                        self.jobs[i].key,
                        script.display(),
                        message.replace('\n', "\n        ")
                    );
                    self.fail(i, why, false)?;
                }
            }
        }
        Ok(false)
    }
}

/// The controller's jobs as [`grouping::group_ready`] sees them, read in place.
struct View<'c, 'a, C: Cluster>(&'c Controller<'a, C>);

impl<C: Cluster> grouping::Jobs for View<'_, '_, C> {
    fn count(&self) -> usize {
        self.0.jobs.len()
    }

    fn get(&self, i: usize) -> grouping::Job<'_> {
        let j = &self.0.jobs[i];
        grouping::Job {
            rule: j.job.rule(),
            parent: self.0.parent_slot(i),
            state: self.0.grouping_state(i),
            resources: &j.resources,
            expected_secs: j.expected_secs,
        }
    }
}
