//! `--touch`: mark jobs as up to date without running them, as Snakemake's `--touch` does.
//!
//! In: the plan and the jobs that would run. Out: which were touched and which could not be.
//! Side effects, all in the store: a touched job's incomplete marker is removed and a `finished`
//! journal event records its completion marker's hash as it is now, so planning counts it as
//! done (src/store/status.rs); a touched run's event also records the hashes of its target's
//! arrays now, so a run of an earlier build of its target, once touched, is no longer outdated
//! (as a touched output is newer than its input in Snakemake). Only jobs whose files are all present and whole are touched: an
//! empty `analysis.json` is not a result, so a missing or truncated output is refused, never
//! created.

use std::io;

use super::integrity::{OUTPUT_HASH_KEY, output_hash};
use super::status::job_files_whole;
use super::{Event, IncompleteMarkers, Journal};
use crate::plan::{JobRef, Plan};

/// What `--touch` did.
#[derive(Debug, Default)]
pub struct Touched {
    /// Output paths marked up to date.
    pub touched: Vec<String>,
    /// Output paths left alone: missing or not whole, so they must run.
    pub refused: Vec<String>,
}

/// The hashes of the arrays a run samples, as the target's meta.json records them now.
fn target_files_now(plan: &Plan, target: JobRef) -> std::collections::BTreeMap<String, String> {
    let meta = std::fs::read(plan.output(target))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let mut files = meta
        .map(|m| super::integrity::file_hashes(&m, "files"))
        .unwrap_or_default();
    files.retain(|name, _| super::record::SAMPLED_FILES.contains(&name.as_str()));
    files
}

/// Touches each of `jobs` whose files are whole; with `dry_run`, only says which it would.
pub fn touch(plan: &Plan, jobs: &[JobRef], dry_run: bool) -> io::Result<Touched> {
    let mut out = Touched::default();
    let mut whole = Vec::new();
    for &job in jobs {
        let output = plan.output(job).display().to_string();
        if job_files_whole(plan, job) {
            out.touched.push(output);
            whole.push(job);
        } else {
            // Name the files that are missing or cut short, when it is those (the marker may be
            // whole and an archive beside it not); else the marker itself is what is wrong.
            let damaged = super::status::damaged_files(plan, job);
            match damaged.is_empty() {
                true => out.refused.push(output),
                false => out
                    .refused
                    .extend(damaged.iter().map(|p| p.display().to_string())),
            }
        }
    }
    if dry_run {
        return Ok(out);
    }
    let markers = IncompleteMarkers::new(&plan.store_root);
    let mut journal = Journal::open(&plan.store_root)?;
    for job in whole {
        let key = plan.job_key(job);
        markers.clear(&key)?;
        let mut detail = serde_json::json!({
            OUTPUT_HASH_KEY: output_hash(&plan.output(job)),
            "touched": true,
        });
        if let Some(target) = plan.parent(job) {
            detail[super::record::TOUCHED_TARGET_FILES] =
                serde_json::json!(target_files_now(plan, target));
        }
        journal.append(&Event {
            state: Some("TOUCHED".into()),
            detail: Some(detail),
            ..Event::new("finished", &key, job.rule().name())
        })?;
    }
    Ok(out)
}
