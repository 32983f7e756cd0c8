//! Cancelling: children queued on a parent that failed or is retried, the whole sweep on
//! Ctrl-C, and the end of a run whose jobs `lambda-hat cancel` cancelled from elsewhere.
//!
//! Input: the slots collected in `to_cancel`, or every queued job on an interrupt. Output: one
//! `scancel` for all of them (a failure is only logged), `cancelled` journal lines, and the jobs
//! set to `Waiting` (parent retried) or `Skipped`. An interrupt keeps the jobs that finished
//! since the last poll (their outputs are whole), clears the incomplete markers of those that
//! never started, and settles the jobs still waiting for their outputs after SLURM said they
//! completed.
//!
//! `lambda-hat cancel` (another terminal, while this controller runs) scancels the sweep's jobs
//! and writes their `cancelled` journal lines itself. A poll that sees such a job end CANCELLED
//! finds its line (same key, same SLURM id) and takes the sweep as cancelled: no `failed` line
//! on top of the `cancelled` one (which made `status` count the jobs as failed), no retry, and
//! the run stops as after Ctrl-C, cancelling what it submitted after the command looked.
//! The command runs scancel before it writes its lines, so a job seen ending CANCELLED without
//! one is judged on the next poll, after the journal is read again (`reconcile.rs`); only then
//! is an unexplained cancel a failure (a plain `scancel` from outside).

use std::collections::{BTreeSet, HashSet};

use super::{Controller, St};
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::cluster::Cluster;
use crate::exec::slurm::history;

impl<'a, C: Cluster> Controller<'a, C> {
    /// Cancels the jobs collected in `to_cancel` with one scancel. Children of a parent that
    /// failed for good are skipped; those of a parent being retried wait for the next attempt.
    pub(super) fn cancel_pending(&mut self) -> Result<(), SlurmError> {
        if self.to_cancel.is_empty() {
            return Ok(());
        }
        let slots = std::mem::take(&mut self.to_cancel);
        let ids: BTreeSet<String> = slots
            .iter()
            .filter_map(|&c| self.jobs[c].slurm.map(|k| k.to_string()))
            .collect();
        self.scancel(&ids.into_iter().collect::<Vec<_>>());
        for c in slots {
            if self.jobs[c].st != St::Queued {
                continue;
            }
            let parent_failed = self
                .parent_slot(c)
                .is_some_and(|p| matches!(self.jobs[p].st, St::Failed | St::Skipped));
            let why = if parent_failed {
                "the job it depends on failed"
            } else {
                "the job it depends on is retried"
            };
            let mut ev = self.event(c, history::CANCELLED);
            ev.detail = Some(serde_json::json!({ "reason": why }));
            self.append(ev)?;
            // It never started (it waited on its parent), so it left no partial files.
            let _ = self.markers.clear(&self.jobs[c].key);
            self.jobs[c].slurm = None;
            if parent_failed {
                self.jobs[c].st = St::Skipped;
                self.outcome.skipped += 1;
            } else {
                self.jobs[c].st = St::Waiting;
            }
        }
        Ok(())
    }

    fn scancel(&mut self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        match self.cluster.scancel(ids) {
            Ok(out) if !out.success => {
                tracing::warn!("scancel {} failed: {}", ids.join(" "), out.stderr.trim())
            }
            Err(e) => tracing::warn!("cannot run scancel: {e}"),
            _ => {}
        }
    }

    /// Ctrl-C: cancel every job of this sweep with one scancel; markers stay.
    pub(super) fn interrupt(&mut self) -> Result<(), SlurmError> {
        self.interrupt_with("interrupted (Ctrl-C)", true)?;
        self.outcome.interrupted = true;
        Ok(())
    }

    /// Cancels every queued job of this sweep with one scancel, recording `reason` (and saying
    /// so when `announce`); markers stay.
    fn interrupt_with(&mut self, reason: &str, announce: bool) -> Result<(), SlurmError> {
        let slots: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| self.jobs[i].st == St::Queued)
            .collect();
        let ids: BTreeSet<String> = slots
            .iter()
            .filter_map(|&i| self.jobs[i].slurm.map(|k| k.job_id.to_string()))
            .collect();
        // Counted as the user sees them: lambda-hat jobs, and the sbatch submissions (an array
        // or a bundle is one) that scancel gets.
        if announce {
            self.progress.message(&format!(
                "interrupted: cancelling {} job(s) of this sweep in {} SLURM submission(s) (press Ctrl-C again to exit at once)",
                slots.len(),
                ids.len()
            ));
        }
        self.scancel(&ids.into_iter().collect::<Vec<_>>());
        for i in slots {
            let job = self.jobs[i].job;
            // Finished since the last poll (a bundle's earlier members, a job that ended just
            // now): its completion marker is this attempt's (`IncompleteMarkers::mark` removed
            // any earlier one), so it is kept, not redone; if it is damaged, planning says so.
            if self.plan.output(job).is_file() {
                self.done(i)?;
                continue;
            }
            let mut ev = self.event(i, history::CANCELLED);
            ev.detail = Some(serde_json::json!({ "reason": reason }));
            self.append(ev)?;
            // Never started: no partial files, so not incomplete either.
            if crate::exec::slurm::script::never_started(&self.jobs[i].log) {
                let _ = self.markers.clear(&self.jobs[i].key);
            }
            self.jobs[i].st = St::Skipped;
            self.outcome.skipped += 1;
        }
        // Jobs SLURM reported finished whose outputs were still awaited: done if the output
        // is there now, otherwise skipped. No journal line for the latter, so the next run
        // reattaches them and looks again.
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Verifying {
                continue;
            }
            if self.plan.output(self.jobs[i].job).is_file() {
                self.done(i)?;
            } else {
                self.jobs[i].st = St::Skipped;
                self.outcome.skipped += 1;
            }
        }
        self.progress.finish();
        Ok(())
    }

    /// Whether `lambda-hat cancel` cancelled job `i`'s current submission: it recorded the job,
    /// or it recorded other jobs of the same SLURM job (an array or a bundle), which its
    /// `scancel` killed with them. The latter happens when the command plans a smaller sweep than
    /// this run (another `--configfile` on the same store): `Some(false)` then, as the journal
    /// has no line for the job yet.
    pub(super) fn cancelled_by_command(&mut self, i: usize) -> Option<bool> {
        let slurm = self.jobs[i].slurm?;
        let (store, since) = (&self.plan.store_root, self.started_at);
        let cancels = self
            .command_cancels
            .get_or_insert_with(|| CommandCancels::read(store, since));
        if cancels
            .jobs
            .contains(&(self.jobs[i].key.clone(), slurm.to_string()))
        {
            Some(true)
        } else {
            cancels.slurm_jobs.contains(&slurm.job_id).then_some(false)
        }
    }

    /// Job `i` ended CANCELLED by `lambda-hat cancel`, which wrote its journal line when it
    /// `recorded` it (and cleared its marker if it never started; otherwise this does both).
    /// Done if its output is there after all (it finished as the command ran); otherwise not
    /// run. Either way the sweep stops.
    pub(super) fn ended_by_cancel_command(
        &mut self,
        i: usize,
        recorded: bool,
    ) -> Result<(), SlurmError> {
        if !self.outcome.cancelled_by_command {
            self.progress.message(
                "`lambda-hat cancel` cancelled this sweep's SLURM jobs: stopping (nothing more is submitted)",
            );
        }
        self.outcome.cancelled_by_command = true;
        self.stop_launching = true;
        if self.plan.output(self.jobs[i].job).is_file() {
            return self.done(i);
        }
        if !recorded {
            let mut ev = self.event(i, history::CANCELLED);
            ev.detail = Some(serde_json::json!({
                "reason": history::CANCEL_COMMAND_REASON,
                "note": "ended CANCELLED while `lambda-hat cancel` ran, which wrote no line for it: killed with its SLURM job (an array or a bundle) by a cancel that planned a smaller sweep, or before the cancel's own line",
            }));
            self.append(ev)?;
            if crate::exec::slurm::script::never_started(&self.jobs[i].log) {
                let _ = self.markers.clear(&self.jobs[i].key);
            }
        }
        self.jobs[i].st = St::Skipped;
        self.outcome.skipped += 1;
        Ok(())
    }

    /// After `lambda-hat cancel`: the jobs it cancelled are let go without a journal line of
    /// ours (it wrote theirs); any job this run submitted after the command read the journal
    /// is cancelled as on Ctrl-C. Jobs awaiting their outputs are settled as on Ctrl-C.
    pub(super) fn stop_after_cancel_command(&mut self) -> Result<(), SlurmError> {
        // Read again: the command writes its lines one by one, and may have written more since
        // the poll that found the first. A job this run submitted after the command read the
        // journal is cancelled below whether or not the command named it.
        self.command_cancels = None;
        let cancels = CommandCancels::read(&self.plan.store_root, self.started_at).jobs;
        let mut missed = Vec::new();
        for i in 0..self.jobs.len() {
            if self.jobs[i].st != St::Queued {
                continue;
            }
            let slurm = self.jobs[i]
                .slurm
                .map(|k| k.to_string())
                .unwrap_or_default();
            let listed = cancels.contains(&(self.jobs[i].key.clone(), slurm));
            if self.jobs[i].cancel_unexplained.take().is_some() {
                // It ended CANCELLED while the command ran, with no line of its own when the
                // poll looked: the command's, not a failure (and not cancelled again).
                self.ended_by_cancel_command(i, listed)?;
            } else if !listed {
                missed.push(i);
            } else if self.plan.output(self.jobs[i].job).is_file() {
                self.done(i)?;
            } else {
                self.jobs[i].st = St::Skipped;
                self.outcome.skipped += 1;
            }
        }
        if !missed.is_empty() {
            self.progress.message(&format!(
                "`lambda-hat cancel` did not list {} job(s) of this run (submitted after it read the journal, or outside the sweep it planned): cancelling them too",
                missed.len()
            ));
        }
        // What is still queued now is exactly `missed`.
        self.interrupt_with(history::CANCEL_COMMAND_REASON, false)
    }
}

/// What `lambda-hat cancel` recorded in the journal: (job key, SLURM id) of every `cancelled`
/// line it wrote, and the SLURM job ids of those (an array or bundle id once).
#[derive(Debug, Default)]
pub(super) struct CommandCancels {
    jobs: HashSet<(String, String)>,
    slurm_jobs: HashSet<u64>,
}

impl CommandCancels {
    /// Reads the journal one line at a time, keeping the lines written `since` (this run's
    /// start): an older one may name a SLURM id that a cluster whose state was reset gives out
    /// again. A journal that cannot be read gives none: the jobs are then judged as cancelled
    /// by someone else (failed, with SLURM's reason), which is what the run did before this
    /// check existed.
    fn read(store_root: &std::path::Path, since: chrono::DateTime<chrono::Utc>) -> CommandCancels {
        let mut out = CommandCancels::default();
        let read = crate::store::Journal::for_each(store_root, |e| {
            let recent = chrono::DateTime::parse_from_rfc3339(&e.time).is_ok_and(|t| t >= since);
            let by_command = recent
                && e.event == history::CANCELLED
                && e.detail
                    .as_ref()
                    .and_then(|d| d.get("reason"))
                    .and_then(|r| r.as_str())
                    == Some(history::CANCEL_COMMAND_REASON);
            if let (true, Some(id)) = (by_command, e.slurm_job_id) {
                if let Ok(key) = id.parse::<crate::exec::slurm::parse::JobKey>() {
                    out.slurm_jobs.insert(key.job_id);
                }
                out.jobs.insert((e.job, id));
            }
        });
        if let Err(e) = read {
            tracing::warn!("cannot read the journal to tell who cancelled a job: {e}");
            return CommandCancels::default();
        }
        out
    }
}
