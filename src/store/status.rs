//! The store's output status, read from disk once per invocation: which completion markers exist
//! and which jobs have incomplete markers. Implements [`OutputStatus`] for planning.
//!
//! Scanning costs one `read_dir` per existing target directory plus one `stat` per existing run
//! directory, so a million-job sweep on a fresh store is checked in milliseconds. A finished
//! job's files are also checked for being whole (super::integrity: its marker parsed and, when
//! the journal recorded one, matching the hash its `finished` event recorded; the tails of its
//! `.npz` files read): present but damaged, the job is `corrupt`, not done. A finished run
//! whose recorded target arrays differ from the target's now is `outdated`
//! (`record::sampled_another_build`): it sampled another build of its target.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::plan::{JobRef, OutputStatus, Plan};

use super::incomplete::IncompleteMarkers;

/// A target is done when its marker AND its arrays exist and are whole (`clean --keep-plots`
/// removes the arrays but keeps the markers, and such a target must be rebuilt when used again).
/// The runs read only the first two arrays; `teacher.npz` is checked too because README offers
/// it as an output (until 2026-12-06 a missing or cut one went unnoticed, and asking for it
/// said it was present). A target rebuilt for it redoes its runs, as any rebuilt target does
/// (Snakemake's rule: a job whose input job runs runs too).
const TARGET_FILES: &[&str] = &["meta.json", "params.npz", "data.npz", "teacher.npz"];
/// A run is done when its marker and its trace exist.
const RUN_FILES: &[&str] = &["analysis.json", "trace.npz"];

#[derive(Debug, Default)]
pub struct StoreStatus {
    targets_done: Vec<bool>,
    targets_corrupt: Vec<bool>,
    /// `tgt_x/run_y` of every run directory whose files are all present and whole.
    runs_done: HashSet<String>,
    /// `tgt_x/run_y` of every run directory whose files are present but not whole.
    runs_corrupt: HashSet<String>,
    /// `tgt_x/run_y` of every whole run that sampled another build of its target.
    runs_outdated: HashSet<String>,
    incomplete: HashSet<String>,
}

/// The jobs whose last attempt failed (the journal's last `finished`, `failed` or
/// `submit_failed` event for them is not `finished`), each with the reason it recorded.
pub fn last_failures(events: &[super::Event]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in events {
        match e.event.as_str() {
            "finished" => {
                out.remove(&e.job);
            }
            "failed" | "submit_failed" => {
                let reason = e
                    .detail
                    .as_ref()
                    .and_then(|d| d.get("reason"))
                    .and_then(|r| r.as_str())
                    .or(e.state.as_deref())
                    .unwrap_or("failed");
                out.insert(e.job.clone(), reason.to_string());
            }
            _ => {}
        }
    }
    out
}

/// For each run whose latest `finished` event is a `--touch`, the target array hashes it was
/// touched with (super::touch): what it counts as having sampled from then on.
pub fn touched_target_files(
    events: &[super::Event],
) -> HashMap<String, std::collections::BTreeMap<String, String>> {
    let mut out = HashMap::new();
    for e in events.iter().filter(|e| e.event == "finished") {
        match e.detail.as_ref().filter(|d| d.get("touched").is_some()) {
            Some(d) => out.insert(
                e.job.clone(),
                super::integrity::file_hashes(d, super::record::TOUCHED_TARGET_FILES),
            ),
            None => out.remove(&e.job),
        };
    }
    out
}

/// The completion-marker hash each job's latest `finished` journal event recorded.
pub fn output_hashes(events: &[super::Event]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in events {
        if e.event == super::journal::TORN {
            // Perhaps this job's newer finish, cut short: the older hash would call its whole
            // output corrupt. Unknown instead; the files' own checks still apply.
            out.remove(&e.job);
            continue;
        }
        // A new submission removed the job's earlier output (`IncompleteMarkers::mark`, before
        // the event is written), so the hash its earlier finish recorded describes nothing: an
        // output found now is that submission's, and checking it against the old hash called a
        // rerun that finished while detached corrupt, and ran it again.
        if e.event == "submitting" {
            out.remove(&e.job);
            continue;
        }
        if e.event != "finished" {
            continue;
        }
        let hash = e
            .detail
            .as_ref()
            .and_then(|d| d.get(super::integrity::OUTPUT_HASH_KEY))
            .and_then(|h| h.as_str());
        match hash {
            Some(h) => out.insert(e.job.clone(), h.to_string()),
            // A later finish without a hash (an older lambda-hat) voids the earlier one.
            None => out.remove(&e.job),
        };
    }
    out
}

/// The job's marker (its first file) when all its files are whole (super::integrity): the
/// marker names the job (and has the hash the journal recorded for it, if any) and every `.npz`
/// ends as a zip archive should. Returned for the fields planning needs from it, read once.
fn whole_marker(
    dir: &Path,
    files: &[&str],
    id_key: &str,
    id: &str,
    recorded: Option<&String>,
) -> Option<serde_json::Value> {
    let (marker, arrays) = files.split_first()?;
    let json = super::integrity::whole_marker(
        &dir.join(marker),
        id_key,
        id,
        recorded.map(String::as_str),
    )?;
    arrays
        .iter()
        .all(|f| super::integrity::npz_is_whole(&dir.join(f)))
        .then_some(json)
}

/// What is wrong with a target's files, all present: see [`target_damage`].
#[derive(Debug, Clone, PartialEq)]
pub enum TargetDamage {
    /// An archive is empty or cut short: its runs sampled arrays that are gone.
    CutShort(String),
    /// meta.json does not name the target or is not the file its job wrote (edited, or
    /// rewritten by a worker run by hand): its runs stand, but the next sweep redoes them.
    Rewritten(String),
}

/// What is wrong with a target's files, all present (`None` when they are whole, or when one
/// is missing, which is not damage: `clean --keep-plots` removes the arrays); `recorded` is the
/// meta.json hash the journal recorded. Either way `-n` rebuilds the target and redoes its runs,
/// so `status` counts them outdated; reports list the runs of a cut-short target apart and
/// show those of a rewritten one unhealthy, as they do a run rewritten by hand.
pub fn target_damage(
    dir: &Path,
    target_id: &str,
    recorded: Option<&String>,
) -> Option<TargetDamage> {
    // The files the runs read must be there; a missing teacher.npz is not damage to them (the
    // target is rebuilt for it, `StoreStatus::scan`), and must not hide damage to the others.
    let present: Vec<&str> = TARGET_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).is_file())
        .collect();
    if !TARGET_FILES[..3].iter().all(|f| present.contains(f)) {
        return None;
    }
    if whole_marker(dir, &present, "target_id", target_id, recorded).is_some() {
        return None;
    }
    let cut_short: Vec<&str> = present[1..]
        .iter()
        .copied()
        .filter(|f| !super::integrity::npz_is_whole(&dir.join(f)))
        .collect();
    Some(if cut_short.is_empty() {
        TargetDamage::Rewritten(format!(
            "{} is not the file its job wrote in the sweep (edited, or rewritten by a worker run \
             by hand)",
            dir.join(TARGET_FILES[0]).display()
        ))
    } else {
        TargetDamage::CutShort(format!(
            "{} in {} {} empty or cut short",
            cut_short.join(" and "),
            dir.display(),
            if cut_short.len() == 1 { "is" } else { "are" }
        ))
    })
}

/// The job's files that are absent or, for archives, cut short (no end-of-central-directory
/// record, super::integrity): what a dry run names as the reason a job is redone.
pub fn damaged_files(plan: &Plan, job: JobRef) -> Vec<std::path::PathBuf> {
    plan.outputs(job)
        .into_iter()
        .filter(|p| {
            !p.is_file()
                || (p.extension().is_some_and(|e| e == "npz") && !super::integrity::npz_is_whole(p))
        })
        .collect()
}

/// Whether all of a job's files are present and whole as files (markers name the job, archives
/// end as they should), whatever the journal recorded about them: what `--touch` accepts.
pub fn job_files_whole(plan: &Plan, job: JobRef) -> bool {
    let dir = plan.job_dir(job);
    let (files, id_key, id) = match job {
        JobRef::Target(t) => (
            TARGET_FILES,
            "target_id",
            plan.targets[t as usize].id.clone(),
        ),
        JobRef::Run(r) => (RUN_FILES, "run_id", plan.run_id(r)),
    };
    files.iter().all(|f| dir.join(f).is_file())
        && whole_marker(&dir, files, id_key, &id, None).is_some()
}

impl StoreStatus {
    pub fn scan(plan: &Plan) -> Self {
        let mut runs_done = HashSet::new();
        let mut runs_corrupt = HashSet::new();
        let mut runs_outdated = HashSet::new();
        let mut targets_done = Vec::with_capacity(plan.targets.len());
        let mut targets_corrupt = Vec::with_capacity(plan.targets.len());
        let events = super::Journal::read_all(&plan.store_root).unwrap_or_default();
        let recorded = output_hashes(&events);
        let touched = touched_target_files(&events);
        for t in 0..plan.targets.len() as u32 {
            let dir = plan.target_dir(t);
            let id = &plan.targets[t as usize].id;
            let present = TARGET_FILES.iter().all(|f| dir.join(f).is_file());
            let meta = present
                .then(|| whole_marker(&dir, TARGET_FILES, "target_id", id, recorded.get(id)))
                .flatten();
            let whole = meta.is_some();
            let target_files = meta
                .map(|m| super::integrity::file_hashes(&m, "files"))
                .unwrap_or_default();
            targets_done.push(whole);
            targets_corrupt.push(present && !whole);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("run_")
                    && RUN_FILES.iter().all(|f| entry.path().join(f).is_file())
                {
                    let key = format!("{id}/{name}");
                    let recorded = recorded.get(&format!("{id}.{name}"));
                    match whole_marker(&entry.path(), RUN_FILES, "run_id", &name, recorded) {
                        Some(analysis) => {
                            let sampled = match touched.get(&format!("{id}.{name}")) {
                                Some(files) => files.clone(),
                                None => super::integrity::file_hashes(&analysis, "target_files"),
                            };
                            // A run of a damaged target is redone with its rebuild.
                            if (present && !whole)
                                || super::record::sampled_another_build(&sampled, &target_files)
                            {
                                runs_outdated.insert(key.clone());
                            }
                            runs_done.insert(key);
                        }
                        None => {
                            runs_corrupt.insert(key);
                        }
                    }
                }
            }
        }
        StoreStatus {
            targets_done,
            targets_corrupt,
            runs_done,
            runs_corrupt,
            runs_outdated,
            incomplete: IncompleteMarkers::new(&plan.store_root)
                .list()
                .into_iter()
                .collect(),
        }
    }
}

impl StoreStatus {
    /// Drops the incomplete markers of `keys` from this snapshot, after the caller removed them
    /// from the store (`exec::slurm::collect_finished`), so that it need not scan again.
    pub fn forget_incomplete(&mut self, keys: &HashSet<String>) {
        self.incomplete.retain(|k| !keys.contains(k));
    }
}

/// Whether run `r` of `plan` is in `runs` (keys `tgt_x/run_y`); an empty set costs no key.
fn has_run(runs: &HashSet<String>, plan: &Plan, r: u32) -> bool {
    !runs.is_empty() && {
        let tid = &plan.targets[plan.run_target(r) as usize].id;
        runs.contains(&format!("{tid}/{}", plan.run_id(r)))
    }
}

impl OutputStatus for StoreStatus {
    fn done(&self, plan: &Plan, job: JobRef) -> bool {
        match job {
            JobRef::Target(t) => self.targets_done[t as usize],
            JobRef::Run(r) => has_run(&self.runs_done, plan, r),
        }
    }

    fn incomplete(&self, plan: &Plan, job: JobRef) -> bool {
        !self.incomplete.is_empty() && self.incomplete.contains(&plan.job_key(job))
    }

    fn outdated(&self, plan: &Plan, job: JobRef) -> bool {
        match job {
            JobRef::Target(_) => false,
            JobRef::Run(r) => has_run(&self.runs_outdated, plan, r),
        }
    }

    fn corrupt(&self, plan: &Plan, job: JobRef) -> bool {
        match job {
            JobRef::Target(t) => self.targets_corrupt[t as usize],
            JobRef::Run(r) => has_run(&self.runs_corrupt, plan, r),
        }
    }
}

/// Modification time of a file as `YYYY-MM-DD HH:MM:SS` (local time), for summaries.
pub fn modified_string(path: &Path) -> Option<String> {
    let time = std::fs::metadata(path).ok()?.modified().ok()?;
    let dt: chrono::DateTime<chrono::Local> = time.into();
    Some(dt.format("%Y-%m-%d %H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Event;

    fn finished(job: &str, hash: &str) -> Event {
        Event {
            detail: Some(serde_json::json!({ super::super::integrity::OUTPUT_HASH_KEY: hash })),
            ..Event::new("finished", job, "run_sampler")
        }
    }

    #[test]
    fn a_torn_line_for_a_job_makes_its_hash_unknown_not_the_older_one() {
        let events = vec![
            finished("a", "h1"),
            finished("b", "h2"),
            Event::new(super::super::journal::TORN, "a", ""),
        ];
        let hashes = output_hashes(&events);
        assert_eq!(hashes.get("a"), None);
        assert_eq!(hashes.get("b").map(String::as_str), Some("h2"));
        // A later whole finish records its hash again.
        let mut later = events;
        later.push(finished("a", "h3"));
        assert_eq!(
            output_hashes(&later).get("a").map(String::as_str),
            Some("h3")
        );
    }

    #[test]
    fn a_new_submission_voids_the_hash_of_the_earlier_finish() {
        let mut events = vec![finished("a", "h1"), finished("b", "h2")];
        events.push(Event::new("submitting", "a", "run_sampler"));
        let hashes = output_hashes(&events);
        assert_eq!(hashes.get("a"), None, "a rerun's output is not the old one");
        assert_eq!(hashes.get("b").map(String::as_str), Some("h2"));
        events.push(finished("a", "h3"));
        assert_eq!(
            output_hashes(&events).get("a").map(String::as_str),
            Some("h3")
        );
    }
}
