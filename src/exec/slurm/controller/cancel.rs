//! Cancelling: children queued on a parent that failed or is retried, and the whole sweep on
//! Ctrl-C.
//!
//! Input: the slots collected in `to_cancel`, or every queued job on an interrupt. Output: one
//! `scancel` for all of them (a failure is only logged), `cancelled` journal lines, and the jobs
//! set to `Waiting` (parent retried) or `Skipped`. An interrupt keeps the jobs that finished
//! since the last poll (their outputs are whole), clears the incomplete markers of those that
//! never started, and settles the jobs still waiting for their outputs after SLURM said they
//! completed.

use std::collections::BTreeSet;

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
        let slots: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| self.jobs[i].st == St::Queued)
            .collect();
        let ids: BTreeSet<String> = slots
            .iter()
            .filter_map(|&i| self.jobs[i].slurm.map(|k| k.job_id.to_string()))
            .collect();
        // Counted as the user sees them: lambda-hat jobs, and the sbatch submissions (an array
        // or a bundle is one) that scancel gets.
        self.progress.message(&format!(
            "interrupted: cancelling {} job(s) of this sweep in {} SLURM submission(s) (press Ctrl-C again to exit at once)",
            slots.len(),
            ids.len()
        ));
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
            ev.detail = Some(serde_json::json!({ "reason": "interrupted (Ctrl-C)" }));
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
        self.outcome.interrupted = true;
        self.progress.finish();
        Ok(())
    }
}
