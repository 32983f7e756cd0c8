//! Reconciliation: what SLURM says about the queued jobs, and whether finished jobs left their
//! outputs.
//!
//! Input: one `squeue` per cycle, at most one `sacct` (or `scontrol show job` on clusters
//! without accounting), the log's tail of a job that failed, and the output files. Output: each
//! queued job marked in flight, ended (to be verified, retried or failed) or, when SLURM forgot
//! it, judged by its output; jobs whose output appeared are passed on as done. Members of a
//! bundle that still runs are judged as their workers end (`judge_inside_its_bundle`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Controller, St, first_line};
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::cluster::Cluster;
use crate::exec::slurm::history;
use crate::exec::slurm::parse::{
    JobKey, JobState, QueryError, classify_query_failure, parse_sacct, parse_scontrol_show_job,
    parse_squeue, stuck_pending_advice,
};
use crate::exec::slurm::poll::{Final, Seen, merge, needs_accounting};
use crate::exec::slurm::retry::{Ending, RetryVerdict, decide};
use crate::exec::slurm::script;

/// A job SLURM has not heard of for this long (neither squeue nor sacct) is judged by its
/// output file alone; sacct's lag is 1-2 s, so this only matters without accounting.
const UNKNOWN_GRACE: Duration = Duration::from_secs(30);

impl<'a, C: Cluster> Controller<'a, C> {
    /// Says once per job what to change when SLURM keeps it pending for a reason waiting will
    /// not clear (a 4-CPU request on a partition of 2-CPU nodes pends forever with
    /// `PartitionConfig`, and nothing else would tell the user).
    fn report_stuck_pending(
        &mut self,
        queue: &[crate::exec::slurm::parse::QueueEntry],
    ) -> Result<(), SlurmError> {
        for entry in queue {
            let (JobState::Pending, Some(reason)) = (&entry.state, &entry.reason) else {
                continue;
            };
            let Some(advice) = stuck_pending_advice(reason) else {
                continue;
            };
            if self
                .reported_stuck
                .insert((entry.job.job_id, reason.clone()))
            {
                self.progress.warn(&format!(
                    "SLURM job {} pends with reason {reason}, which waiting will not clear: {advice}",
                    entry.job.job_id
                ));
                if let Some(c) = self.jobs.iter().position(|j| j.slurm == Some(entry.job)) {
                    let mut ev = self.event(c, history::PENDING_STUCK);
                    ev.detail = Some(serde_json::json!({ "reason": reason, "advice": advice }));
                    self.append(ev)?;
                }
            }
        }
        Ok(())
    }

    /// One cycle: one squeue, at most one sacct (or scontrol). Returns whether any job ended.
    pub(super) fn poll(&mut self) -> Result<bool, SlurmError> {
        let tracked: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|j| j.st == St::Queued)
            .filter_map(|j| j.slurm)
            .collect();
        if tracked.is_empty() {
            return Ok(false);
        }
        let ids: Vec<u64> = tracked
            .iter()
            .map(|k| k.job_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let queue = match self.cluster.squeue(&ids) {
            Ok(out) if out.success => match parse_squeue(&out.stdout) {
                Ok(q) => q,
                Err(e) => return self.query_trouble("squeue", &e.to_string()),
            },
            Ok(out) => match classify_query_failure(&out.stderr) {
                // One purged id makes squeue fail; several just print nothing.
                QueryError::NoSuchJob { .. } => Vec::new(),
                e => return self.query_trouble("squeue", &e.to_string()),
            },
            Err(e) => return self.query_trouble("squeue", &e.to_string()),
        };
        self.report_stuck_pending(&queue)?;
        let need = needs_accounting(&tracked, &queue);
        let mut acct = Vec::new();
        let mut control = Vec::new();
        // Whether "unknown to SLURM" can be trusted this cycle (sacct answered, or there is none).
        let mut answered = true;
        let sacct_ran = !need.is_empty() && self.accounting;
        if sacct_ran {
            answered = false;
            match self.cluster.sacct(&need) {
                Ok(out) if out.success => match parse_sacct(&out.stdout) {
                    Ok(a) => {
                        acct = a;
                        answered = true;
                    }
                    Err(e) => tracing::warn!("cannot parse sacct output: {e}"),
                },
                Ok(out) if accounting_disabled(&out.stderr) => {
                    tracing::info!("SLURM accounting is disabled; using scontrol show job");
                    self.accounting = false;
                    answered = true;
                }
                Ok(out) => tracing::warn!("sacct failed: {}", out.stderr.trim()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.accounting = false;
                    answered = true;
                }
                Err(e) => tracing::warn!("cannot run sacct: {e}"),
            }
        }
        // scontrol replaces sacct, from the cycle after sacct said it has no accounting (so a
        // cycle never costs more than two queries).
        if !need.is_empty()
            && !self.accounting
            && !sacct_ran
            && let Ok(out) = self.cluster.scontrol_show_jobs()
            && out.success
        {
            control = parse_scontrol_show_job(&out.stdout).unwrap_or_default();
        }
        self.query_backoff.succeed();
        self.no_dependency.clear();
        // `lambda-hat cancel` may have run since the last poll: this forgets the last read of
        // the journal, and judges the jobs the last poll saw end CANCELLED with no line of it,
        // whatever SLURM says of them now.
        let mut changed = self.settle_unexplained_cancels()?;
        let seen = merge(&tracked, &queue, &acct, &control);
        let now = self.cluster.now();
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Queued {
                continue;
            }
            let Some(key) = self.jobs[i].slurm else {
                continue;
            };
            match seen.get(&key).cloned().unwrap_or(Seen::Unknown) {
                Seen::Queued(state) => {
                    self.jobs[i].in_flight = true;
                    self.jobs[i].unknown_since = None;
                    if state != JobState::Pending {
                        changed |= self.judge_inside_its_bundle(i)?;
                    }
                }
                Seen::Ended(f) => {
                    self.jobs[i].in_flight = false;
                    self.jobs[i].unknown_since = None;
                    if f.state != JobState::Cancelled {
                        self.ended(i, f)?;
                    } else if let Some(recorded) = self.cancelled_by_command(i) {
                        self.ended_by_cancel_command(i, recorded)?;
                    } else {
                        // Perhaps `lambda-hat cancel` between its scancel and its journal
                        // lines: judged on the next poll, after the journal is read again.
                        // `changed` makes that poll come after the shortest wait.
                        self.jobs[i].cancel_unexplained = Some(f);
                    }
                    changed = true;
                }
                Seen::Unknown if !answered => self.jobs[i].in_flight = false,
                Seen::Unknown => {
                    self.jobs[i].in_flight = false;
                    let since = *self.jobs[i].unknown_since.get_or_insert(now);
                    if now.duration_since(since) >= UNKNOWN_GRACE {
                        changed = true;
                        if self.plan.output(self.jobs[i].job).is_file() {
                            self.done(i)?;
                        } else {
                            let why = format!(
                                "SLURM has no record of job {key} any more (neither squeue nor sacct) and its output is missing"
                            );
                            self.fail(i, why, false)?;
                        }
                    }
                }
            }
        }
        Ok(changed)
    }

    fn query_trouble(&mut self, what: &str, message: &str) -> Result<bool, SlurmError> {
        let wait = self.query_backoff.fail();
        self.progress.message(&format!(
            "{what} failed ({}); jobs keep running on SLURM, asking again in {:.0} s",
            first_line(message),
            wait.as_secs_f64()
        ));
        self.cluster.sleep(wait);
        Ok(false)
    }

    /// Judges the jobs a poll saw end CANCELLED with no `lambda-hat cancel` line for them
    /// (`cancel_unexplained`), reading the journal again: cancelled by the command if its line
    /// is there now (or its SLURM job's), otherwise by someone else, which is a failure.
    /// Returns whether there were any.
    pub(super) fn settle_unexplained_cancels(&mut self) -> Result<bool, SlurmError> {
        self.command_cancels = None;
        let mut any = false;
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Queued {
                continue;
            }
            let Some(f) = self.jobs[i].cancel_unexplained.take() else {
                continue;
            };
            any = true;
            match self.cancelled_by_command(i) {
                Some(recorded) => self.ended_by_cancel_command(i, recorded)?,
                None => self.ended(i, f)?,
            }
        }
        Ok(any)
    }

    /// A job left the queue with final state `f`. A bundle member is judged by its own output
    /// whatever the bundle's state (a bundle fails when any member does): it waits for its
    /// marker like a completed job, and only a member without one counts as failed (`verify`).
    /// A member whose own log ends with the bundle script's line for a member that failed or
    /// was not run will have no output, so `verify` judges it at once: waiting --latency-wait
    /// (60 s in the `slurm` profile) for an output that cannot come let new launches go on
    /// meanwhile, although a failure stops them without `--keep-going`.
    fn ended(&mut self, i: usize, f: Final) -> Result<(), SlurmError> {
        if f.state == JobState::Completed || self.jobs[i].bundle_log.is_some() {
            let now = self.cluster.now();
            let failed_for_certain = f.state != JobState::Completed
                && self.jobs[i].bundle_log.is_some()
                && script::log_tail(&self.jobs[i].log)
                    .is_some_and(|t| script::bundle_member_ended_without_output(&t));
            let wait = if failed_for_certain {
                Duration::ZERO
            } else {
                self.opts.latency_wait
            };
            self.jobs[i].st = St::Verifying;
            self.jobs[i].verify_deadline = Some(now + wait);
            self.jobs[i].ended = Some(f);
            return Ok(());
        }
        self.attempt_ended_badly(i, f)
    }

    /// The attempt ended in state `f` (not COMPLETED) without the job's output: retried as the
    /// state and the log say, or failed for good.
    fn attempt_ended_badly(&mut self, i: usize, f: Final) -> Result<(), SlurmError> {
        // SLURM writes why it killed a job into the job's own log: the bundle's for a member.
        let tail = script::log_tail(
            self.jobs[i]
                .bundle_log
                .as_ref()
                .unwrap_or(&self.jobs[i].log),
        );
        let ending = Ending {
            state: &f.state,
            exit_code: f.exit_code,
            signal: f.signal,
            log_tail: tail.as_deref(),
        };
        // Killed, and it had started: SLURM creates a job's log when it starts (the controller
        // removed any earlier one at submission). A job cancelled while it was pending (an
        // outside `scancel`) never ran, so it left no partial files and is not incomplete.
        let killed = ending.killed() && !script::never_started(&self.jobs[i].log);
        self.jobs[i].failures += 1;
        let verdict = decide(
            &ending,
            &self.jobs[i].resources,
            self.jobs[i].failures,
            self.opts.retries,
            self.opts.retry_factor,
        );
        self.jobs[i].ended = Some(f.clone());
        self.attempt_failed(i, verdict, &f, killed)
    }

    /// Marks jobs whose outputs exist (and checks the deadline of those whose do not).
    pub(super) fn verify(&mut self) -> Result<bool, SlurmError> {
        let mut changed = false;
        let now = self.cluster.now();
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Verifying {
                continue;
            }
            if self.plan.output(self.jobs[i].job).is_file() {
                self.done(i)?;
                changed = true;
            } else if self.jobs[i].verify_deadline.is_some_and(|d| now >= d) {
                changed = true;
                if self.ran_without_its_target(i) {
                    self.back_to_its_build(i)?;
                    continue;
                }
                // A member of a bundle that did not complete: this member is the one that
                // failed (or never ran); judged by the bundle's state, alone.
                if let Some(f) = self.jobs[i].ended.clone()
                    && f.state != JobState::Completed
                {
                    self.attempt_ended_badly(i, f)?;
                    continue;
                }
                let f = self.jobs[i].ended.clone().unwrap_or(Final {
                    state: JobState::Completed,
                    exit_code: 0,
                    signal: 0,
                    elapsed_secs: None,
                    max_rss_bytes: None,
                });
                self.jobs[i].failures += 1;
                let res = self.jobs[i].resources.clone();
                let missing = format!(
                    "SLURM says COMPLETED but {} is missing after --latency-wait {} s",
                    self.plan.output(self.jobs[i].job).display(),
                    self.opts.latency_wait.as_secs()
                );
                let verdict = match decide(
                    &Ending {
                        state: &f.state,
                        exit_code: 0,
                        signal: 0,
                        log_tail: None,
                    },
                    &res,
                    self.jobs[i].failures,
                    self.opts.retries,
                    self.opts.retry_factor,
                ) {
                    RetryVerdict::Retry { resources, .. } => RetryVerdict::Retry {
                        resources,
                        why: format!("{missing}; retrying"),
                    },
                    RetryVerdict::Fail { .. } => RetryVerdict::Fail { why: missing },
                };
                self.attempt_failed(i, verdict, &f, false)?;
            }
        }
        Ok(changed)
    }
}

impl<'a, C: Cluster> Controller<'a, C> {
    /// A member of a bundle that still runs may have ended; judged at once rather than when the
    /// bundle ends, so progress and the journal follow the members, runs that wait for a build
    /// inside a bundle go as soon as it is done, and a failed run is retried (or stops new
    /// launches) while its bundle runs on. Returns whether it was judged.
    ///
    /// - Done: its output is there (submission removed any earlier one,
    ///   `IncompleteMarkers::mark`) and so is its benchmark, which the worker writes after the
    ///   output (submission removed that too).
    /// - Failed: a run_sampler member whose worker wrote its benchmark but no output, and whose
    ///   log ends with the bundle script's line for a member that exited non-zero (written after
    ///   the benchmark: until it is there, the next poll looks again). A build is left to the
    ///   bundle's end: the bundle skips its runs, which are queued in the same SLURM job, so
    ///   they cannot be cancelled or requeued on their own while it runs.
    ///
    /// A template that passes no benchmark path leaves its members to be judged at the end.
    fn judge_inside_its_bundle(&mut self, i: usize) -> Result<bool, SlurmError> {
        if self.jobs[i].bundle_log.is_none() || !self.abs(&self.benchmark_path(i)).is_file() {
            return Ok(false);
        }
        if self.plan.output(self.jobs[i].job).is_file() {
            self.done(i)?;
            return Ok(true);
        }
        if self.jobs[i].job.rule() != crate::plan::Rule::RunSampler {
            return Ok(false);
        }
        let Some(status) =
            script::log_tail(&self.jobs[i].log).and_then(|t| script::bundle_member_exit_status(&t))
        else {
            return Ok(false);
        };
        self.jobs[i].in_flight = false;
        self.attempt_ended_badly(
            i,
            Final {
                state: JobState::Failed,
                exit_code: status,
                signal: 0,
                elapsed_secs: None,
                max_rss_bytes: None,
            },
        )?;
        Ok(true)
    }

    /// A bundle member whose target is not built: its build ran in the same bundle and left no
    /// target, so the bundle script did not run it (or it failed for want of the target).
    fn ran_without_its_target(&self, i: usize) -> bool {
        self.jobs[i].bundle_log.is_some()
            && self
                .parent_slot(i)
                .is_some_and(|p| !self.plan.output(self.jobs[p].job).is_file())
    }

    /// A member that [`ran_without_its_target`](Self::ran_without_its_target): not a failure of
    /// its own, so no retry is counted. It waits for the build's next attempt, or is skipped
    /// when the build failed for good.
    fn back_to_its_build(&mut self, i: usize) -> Result<(), SlurmError> {
        let build_failed = self
            .parent_slot(i)
            .is_some_and(|p| matches!(self.jobs[p].st, St::Failed | St::Skipped));
        if build_failed {
            return self.skip(i, "the job it depends on failed");
        }
        let mut ev = self.event(i, history::CANCELLED);
        ev.detail = Some(serde_json::json!({
            "reason": "its target's build in the same bundle failed; it runs after the build's next attempt"
        }));
        self.append(ev)?;
        // It never started (the bundle skips the members after a failed build), so it left
        // no partial files.
        let _ = self.markers.clear(&self.jobs[i].key);
        let j = &mut self.jobs[i];
        j.st = St::Waiting;
        j.slurm = None;
        j.ended = None;
        j.verify_deadline = None;
        Ok(())
    }
}

/// sacct's complaint on clusters without accounting storage.
fn accounting_disabled(stderr: &str) -> bool {
    let lower = stderr.to_ascii_lowercase();
    lower.contains("accounting storage is disabled") || lower.contains("accounting_storage/none")
}
