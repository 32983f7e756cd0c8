//! Outcomes: what an ended attempt means for the job and the jobs depending on it.
//!
//! Input: a job slot and a verdict (from [`decide`](crate::exec::slurm::retry::decide)) or a
//! reason. Output: the job `Done`, back to `Waiting` with new resources, `Failed` or `Skipped`;
//! the journal line, the progress line and the count in the [`Outcome`](crate::exec::Outcome);
//! markers cleared unless a killed job may have left partial files; children to cancel queued
//! in `to_cancel`.

use super::{Controller, St};
use crate::exec::Failure;
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::cluster::Cluster;
use crate::exec::slurm::history;
use crate::exec::slurm::poll::Final;
use crate::exec::slurm::retry::RetryVerdict;

impl<'a, C: Cluster> Controller<'a, C> {
    pub(super) fn attempt_failed(
        &mut self,
        i: usize,
        verdict: RetryVerdict,
        f: &Final,
        killed: bool,
    ) -> Result<(), SlurmError> {
        match verdict {
            RetryVerdict::Retry { resources, why } => {
                let mut ev = self.event(i, history::FAILED);
                ev.state = Some(f.state.to_string());
                let mut detail = serde_json::json!({
                    "reason": why,
                    "retry": true,
                    "elapsed_secs": f.elapsed_secs,
                    "max_rss_bytes": f.max_rss_bytes,
                });
                self.worker_usage(i, &mut detail);
                ev.detail = Some(detail);
                self.append(ev)?;
                let slurm = self.jobs[i]
                    .slurm
                    .map(|k| k.to_string())
                    .unwrap_or_default();
                self.progress
                    .retrying(&format!("{} (SLURM job {slurm})", self.describe(i)), &why);
                let j = &mut self.jobs[i];
                j.resources = resources;
                j.st = St::Waiting;
                j.slurm = None;
                // Children queued with afterok on this attempt would wait forever.
                self.requeue_children(i);
                Ok(())
            }
            RetryVerdict::Fail { why } => self.fail(i, why, killed),
        }
    }

    /// Children submitted with a dependency on `parent`'s failed attempt: cancel them and let
    /// them wait for the next attempt.
    fn requeue_children(&mut self, parent: usize) {
        for c in 0..self.jobs.len() {
            if self.parent_slot(c) == Some(parent) && self.jobs[c].st == St::Queued {
                self.to_cancel.push(c);
            }
        }
    }

    /// The usage the job's worker measured into its benchmark file (removed before each
    /// submission, so present only when this attempt's worker wrote it) replaces sacct's in a
    /// journal event's `detail`: it is the member's own in a bundle (sacct only knows the bundle
    /// as a whole), and it carries CPU time. Returns the worker's wall time.
    fn worker_usage(&self, i: usize, detail: &mut serde_json::Value) -> Option<f64> {
        let bench = crate::store::benchmark::read(&self.benchmark_path(i))?;
        if let Some(d) = detail.as_object_mut() {
            d.remove("max_rss_bytes");
            d.extend(bench.journal_fields());
        }
        Some(bench.wall.as_secs_f64())
    }

    /// The job's benchmark TSV from what sacct reported (crate::store::benchmark), for a worker
    /// that could not write its own (killed, or a custom template that does not pass the path):
    /// wall time and MaxRSS. Nothing when sacct gave no elapsed time, or for a bundle member
    /// (sacct's figures are the whole bundle's). A report, so errors are ignored.
    fn write_benchmark(&self, i: usize) {
        use crate::store::benchmark::{self, Benchmark};
        let path = self.benchmark_path(i);
        if self.jobs[i].bundle_log.is_some() || path.is_file() {
            return;
        }
        let Some(f) = self.jobs[i].ended.as_ref() else {
            return;
        };
        let Some(elapsed) = f.elapsed_secs else {
            return;
        };
        let bench = Benchmark {
            wall: std::time::Duration::from_secs(elapsed),
            max_rss_bytes: f.max_rss_bytes,
            ..Default::default()
        };
        let _ = benchmark::write(&path, &bench);
    }

    pub(super) fn done(&mut self, i: usize) -> Result<(), SlurmError> {
        let f = self.jobs[i].ended.clone();
        self.jobs[i].st = St::Done;
        let _ = self.markers.clear(&self.jobs[i].key);
        let mut ev = self.event(i, history::FINISHED);
        ev.state = Some("COMPLETED".into());
        let output = self.plan.output(self.jobs[i].job);
        let mut detail = serde_json::json!({
            "elapsed_secs": f.as_ref().and_then(|f| f.elapsed_secs),
            "max_rss_bytes": f.as_ref().and_then(|f| f.max_rss_bytes),
            crate::store::integrity::OUTPUT_HASH_KEY: crate::store::integrity::output_hash(&output),
        });
        let worker_secs = self.worker_usage(i, &mut detail);
        self.write_benchmark(i);
        ev.detail = Some(detail);
        self.append(ev)?;
        self.outcome.succeeded += 1;
        let secs = match (
            worker_secs,
            f.and_then(|f| f.elapsed_secs),
            self.jobs[i].submitted_at,
        ) {
            (Some(s), _, _) => s,
            (None, Some(s), _) => s as f64,
            (None, None, Some(t)) => self.cluster.now().duration_since(t).as_secs_f64(),
            (None, None, None) => 0.0,
        };
        self.progress.finished(&self.describe(i), secs);
        Ok(())
    }

    /// The job failed for good: report it, keep its marker if it was killed, and take its
    /// children out (cancelling those already queued).
    pub(super) fn fail(&mut self, i: usize, why: String, killed: bool) -> Result<(), SlurmError> {
        // A job the cluster killed wrote no error line of its own; one in the log would be an
        // earlier attempt's.
        let why = if killed {
            why
        } else {
            crate::exec::with_worker_error(why, &self.jobs[i].log)
        };
        self.jobs[i].st = St::Failed;
        if !killed {
            let _ = self.markers.clear(&self.jobs[i].key);
        }
        let mut ev = self.event(i, history::FAILED);
        ev.state = self.jobs[i].ended.as_ref().map(|f| f.state.to_string());
        let mut detail = serde_json::json!({
            "reason": why,
            "retry": false,
            "elapsed_secs": self.jobs[i].ended.as_ref().and_then(|f| f.elapsed_secs),
            "max_rss_bytes": self.jobs[i].ended.as_ref().and_then(|f| f.max_rss_bytes),
        });
        self.worker_usage(i, &mut detail);
        self.write_benchmark(i);
        ev.detail = Some(detail);
        self.append(ev)?;
        let log = self.jobs[i].log.clone();
        self.progress.failed(
            &self.describe(i),
            &if !crate::exec::slurm::script::never_started(&log) {
                format!("{why} (log: {})", log.display())
            } else {
                format!("{why} (it never started: no log)")
            },
        );
        self.outcome.failed.push(Failure {
            job: self.jobs[i].job,
            output: self.plan.output(self.jobs[i].job).display().to_string(),
            reason: why,
            log,
            left_incomplete: killed,
        });
        self.stop_launching |= !self.opts.keep_going;
        for c in 0..self.jobs.len() {
            if self.parent_slot(c) != Some(i) {
                continue;
            }
            match self.jobs[c].st {
                St::Queued => self.to_cancel.push(c),
                St::Waiting => self.skip(c, "the job it depends on failed")?,
                _ => {}
            }
        }
        Ok(())
    }

    pub(super) fn skip(&mut self, i: usize, why: &str) -> Result<(), SlurmError> {
        self.jobs[i].st = St::Skipped;
        self.outcome.skipped += 1;
        let _ = self.markers.clear(&self.jobs[i].key);
        let mut ev = self.event(i, history::SKIPPED);
        ev.detail = Some(serde_json::json!({ "reason": why }));
        self.append(ev)
    }
}
