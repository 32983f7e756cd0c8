//! Taking over an earlier run's submissions, and leaving SLURM to finish this one (`--detach`).
//!
//! Input: the journal's open submissions (folded by [`history`]); for submissions whose `sbatch`
//! was cut off, squeue/sacct looked up by the jobs' unique names. Output: those jobs set to
//! `Queued` with their SLURM ids, `submitted` or `submit_failed` lines in the journal, and for
//! `--detach` a [`SlurmOutcome`] counting what was left queued and what waits.

use std::collections::{BTreeSet, HashMap};

use super::{Controller, SlurmOutcome, St, io_err, link_log};
use crate::exec::slurm::SlurmError;
use crate::exec::slurm::cluster::{Cluster, record_jobs_by_name};
use crate::exec::slurm::history::{self, Open};
use crate::exec::slurm::parse::JobKey;
use crate::store::Journal;

/// `sacct -S` wants local time without zone; go back a minute for clock skew.
fn sacct_since(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            (t.with_timezone(&chrono::Local) - chrono::Duration::minutes(1))
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| "now-7days".into())
}

impl<'a, C: Cluster> Controller<'a, C> {
    pub(super) fn detach(mut self) -> Result<SlurmOutcome, SlurmError> {
        // A job the last poll saw end CANCELLED without a `lambda-hat cancel` line is judged
        // now, after reading the journal again: left queued, the next run would see the same
        // and leave it again.
        self.settle_unexplained_cancels()?;
        let queued = self.jobs.iter().filter(|j| j.st == St::Queued).count();
        let waiting = self
            .jobs
            .iter()
            .filter(|j| matches!(j.st, St::Waiting | St::Verifying))
            .count();
        self.progress.finish();
        Ok(SlurmOutcome {
            outcome: self.outcome,
            detached: Some((queued, waiting)),
        })
    }

    /// Takes over the submissions the journal leaves open; returns how many.
    pub(super) fn reattach(&mut self) -> Result<usize, SlurmError> {
        let events = Journal::read_all(&self.plan.store_root).map_err(io_err(
            "the journal",
            &Journal::path_in(&self.plan.store_root),
        ))?;
        let hist = history::histories(&events);
        let mut dangling: Vec<(usize, Open)> = Vec::new();
        let mut count = 0;
        for i in 0..self.jobs.len() {
            let Some(open) = hist.get(&self.jobs[i].key).and_then(|h| h.open.clone()) else {
                continue;
            };
            if let Some(res) = &open.resources {
                self.jobs[i].resources = res.clone();
            }
            // A retry taken over is still a retry: its earlier attempts count against
            // `--retries` (without this, each takeover granted the job its retries again).
            if let Some(attempt) = open.attempt {
                self.jobs[i].failures = attempt.saturating_sub(1);
            }
            match open.slurm {
                Some(k) => {
                    self.adopt(i, k, &open);
                    count += 1;
                }
                None => dangling.push((i, open)),
            }
        }
        if dangling.is_empty() {
            return Ok(count);
        }
        // The controller died while sbatch ran: find the submissions by their unique names.
        let names: Vec<String> = dangling
            .iter()
            .map(|(_, o)| o.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found: HashMap<(String, Option<u32>), JobKey> = HashMap::new();
        if let Ok(out) = self.cluster.squeue_names(&names)
            && out.success
        {
            record_jobs_by_name(&out.stdout, &mut found);
        }
        let since = dangling
            .iter()
            .map(|(_, o)| o.since.clone())
            .min()
            .unwrap_or_default();
        if dangling
            .iter()
            .any(|(_, o)| !found.contains_key(&(o.name.clone(), o.task)))
            && let Ok(out) = self.cluster.sacct_names(&names, &sacct_since(&since))
            && out.success
        {
            record_jobs_by_name(&out.stdout, &mut found);
        }
        for (i, open) in dangling {
            match found.get(&(open.name.clone(), open.task)) {
                Some(k) => {
                    self.jobs[i].slurm = Some(*k);
                    let mut ev = self.event(i, history::SUBMITTED);
                    ev.detail = Some(serde_json::json!({"name": open.name, "recovered": true}));
                    self.append(ev)?;
                    self.adopt(i, *k, &open);
                    count += 1;
                }
                None => {
                    let mut ev = self.event(i, history::SUBMIT_FAILED);
                    ev.detail = Some(serde_json::json!({
                        "reason": "not found on SLURM: the controller stopped before sbatch ran",
                        "name": open.name,
                    }));
                    self.append(ev)?;
                }
            }
        }
        Ok(count)
    }

    fn adopt(&mut self, i: usize, key: JobKey, open: &Open) {
        let j = &mut self.jobs[i];
        j.st = St::Queued;
        j.slurm = Some(key);
        j.in_flight = false; // until a poll shows it in the queue
        if open.bundled {
            // The bundle's own log (`<id>.log`, `<id>_<task>.log`), as submit_bundles names it.
            j.bundle_log = Some(self.slurm_dir.join("logs").join(format!("{key}.log")));
        } else if let (Some(_), Some(task)) = (open.task, key.array_task) {
            // The earlier controller may have died before linking the log.
            let target = self
                .slurm_dir
                .join("logs")
                .join(format!("{}_{task}.log", key.job_id));
            link_log(&j.log, &target);
        }
    }
}
