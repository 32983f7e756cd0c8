//! SLURM job ids (`123`, `123_4`, ranges `123_[4-7%2]`) as [`JobKey`]s.

use std::fmt;
use std::str::FromStr;

use super::error::ParseError;

/// One schedulable unit: a plain job (`123`) or one task of an array (`123_4`).
///
/// Array tasks are keyed by the array's id (what `sbatch --parsable` returned) and the task
/// index, never by the per-task numeric job id SLURM allocates internally (`JobIDRaw`), because
/// that is what the executor knows and what every command prints in the JobID column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    pub job_id: u64,
    pub array_task: Option<u32>,
}

impl JobKey {
    pub fn job(job_id: u64) -> Self {
        JobKey {
            job_id,
            array_task: None,
        }
    }

    pub fn task(array_job_id: u64, task: u32) -> Self {
        JobKey {
            job_id: array_job_id,
            array_task: Some(task),
        }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.array_task {
            None => write!(f, "{}", self.job_id),
            Some(t) => write!(f, "{}_{}", self.job_id, t),
        }
    }
}

impl FromStr for JobKey {
    type Err = ParseError;

    /// `123` or `123_4`. A range (`123_[4-7]`) is several keys: use [`parse_job_ids`].
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let keys = parse_job_ids(s)?;
        match keys.as_slice() {
            [one] if !s.contains('[') => Ok(*one),
            _ => Err(ParseError::BadJobId(s.to_string())),
        }
    }
}

/// Parse a JobID column value into the job(s) it names: `123`, `123_4`, or a pending array range
/// `123_[4-7%2]` / `123_[1,3,5-9:2]`, which expands to one key per task (the `%throttle` is
/// dropped; `:step` is honoured).
pub fn parse_job_ids(s: &str) -> Result<Vec<JobKey>, ParseError> {
    let bad = || ParseError::BadJobId(s.to_string());
    let s = s.trim();
    let (job, task) = match s.split_once('_') {
        None => (s, None),
        Some((job, task)) => (job, Some(task)),
    };
    let job_id = parse_u64_digits(job).ok_or_else(bad)?;
    match task {
        None => Ok(vec![JobKey::job(job_id)]),
        Some(t) if t.starts_with('[') && t.ends_with(']') && t.len() >= 2 => {
            let tasks = parse_array_indices(&t[1..t.len() - 1])?;
            Ok(tasks.into_iter().map(|i| JobKey::task(job_id, i)).collect())
        }
        Some(t) => {
            let idx = parse_u64_digits(t)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(bad)?;
            Ok(vec![JobKey::task(job_id, idx)])
        }
    }
}

/// Array index expression as in `--array` and in `[..]` ranges: comma-separated `N`, `A-B` or
/// `A-B:STEP`, optionally followed by `%THROTTLE`. Returns the indices in order.
pub fn parse_array_indices(expr: &str) -> Result<Vec<u32>, ParseError> {
    let bad = || ParseError::BadArrayRange(expr.to_string());
    // The throttle limits concurrency, not membership.
    let list = match expr.split_once('%') {
        Some((list, throttle)) => {
            parse_u64_digits(throttle).ok_or_else(bad)?;
            list
        }
        None => expr,
    };
    let num = |t: &str| {
        parse_u64_digits(t)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(bad)
    };
    let mut out = Vec::new();
    for item in list.split(',') {
        let (range, step) = match item.split_once(':') {
            Some((r, st)) => (r, num(st)?),
            None => (item, 1),
        };
        if step == 0 {
            return Err(bad());
        }
        match range.split_once('-') {
            None => out.push(num(range)?),
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad());
                }
                out.extend((a..=b).step_by(step as usize));
            }
        }
    }
    Ok(out)
}

/// Strict decimal: digits only (no sign, no spaces), fits in u64.
pub(super) fn parse_u64_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
