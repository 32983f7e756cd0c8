//! `scontrol show job` output as a [`ControlRecord`], and failed-query classification.

use std::collections::HashMap;

use super::error::ParseError;
use super::job_id::{JobKey, parse_array_indices, parse_u64_digits};
use super::state::{JobState, parse_state};
use super::values::{parse_duration_secs, parse_exit_code};

/// What `scontrol show job` says about one job or array task: the fallback when accounting
/// (sacct) is disabled. Only available until the controller purges the job (`MinJobAge`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    pub job: JobKey,
    pub state: JobState,
    pub reason: Option<String>,
    pub exit_code: u32,
    pub signal: u32,
    pub run_time_secs: Option<u64>,
}

/// Parse `scontrol show job ID` output (multi-line records separated by blank lines; one per
/// array task, pending tasks as one `ArrayTaskId=1-9%2` record) or `scontrol -o show job ID`
/// (one line per record). Every record starts with `JobId=`.
///
/// Fields are whitespace-separated `Key=Value` pairs; the first occurrence of a key wins.
/// `JobName` can contain spaces and `=`, so its value is skipped: a job name like
/// `x JobState=COMPLETED` cannot fake a state. (Later free-text fields such as `Command=` or
/// `StdOut=` paths come after every field read here, so first-wins makes them harmless.)
pub fn parse_scontrol_show_job(text: &str) -> Result<Vec<ControlRecord>, ParseError> {
    // Split into records at each "JobId=" that starts a line.
    let mut raw_records: Vec<String> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("JobId=") {
            raw_records.push(String::new());
        }
        if let Some(cur) = raw_records.last_mut() {
            cur.push_str(t);
            cur.push('\n');
        }
    }
    let mut out = Vec::new();
    for rec in raw_records {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for (n, line) in rec.lines().enumerate() {
            // The first line is "JobId=.. [ArrayJobId=.. ArrayTaskId=..] JobName=NAME"; NAME may
            // contain spaces and '=', so it is skipped. In -o mode the rest of the record follows
            // NAME on the same line, from " UserId=" (the field after JobName) on. A name that
            // itself contains " UserId=" would confuse -o mode only; the executor's names do not.
            if n == 0
                && let Some(i) = line.find(" JobName=")
            {
                let (head, tail) = line.split_at(i);
                fields_from(head, &mut fields);
                if let Some(j) = tail.find(" UserId=") {
                    fields_from(&tail[j..], &mut fields);
                }
            } else {
                fields_from(line, &mut fields);
            }
        }
        let missing = |field| ParseError::MissingField {
            field,
            record: rec.trim().to_string(),
        };
        let job_id = fields.get("JobId").ok_or_else(|| missing("JobId"))?;
        let jobs = match (fields.get("ArrayJobId"), fields.get("ArrayTaskId")) {
            (Some(array), Some(tasks)) => {
                let array = parse_u64_digits(array)
                    .ok_or_else(|| ParseError::BadJobId(array.to_string()))?;
                parse_array_indices(tasks)?
                    .into_iter()
                    .map(|t| JobKey::task(array, t))
                    .collect()
            }
            _ => vec![job_id.parse::<JobKey>()?],
        };
        let (state, _) = parse_state(fields.get("JobState").ok_or_else(|| missing("JobState"))?);
        let (exit_code, signal) =
            parse_exit_code(fields.get("ExitCode").ok_or_else(|| missing("ExitCode"))?)?;
        let reason = fields
            .get("Reason")
            .filter(|r| **r != "None")
            .map(|r| r.to_string());
        let run_time_secs = fields
            .get("RunTime")
            .map(|r| parse_duration_secs(r))
            .transpose()?;
        for job in jobs {
            out.push(ControlRecord {
                job,
                state: state.clone(),
                reason: reason.clone(),
                exit_code,
                signal,
                run_time_secs,
            });
        }
    }
    Ok(out)
}

/// Add the `Key=Value` tokens of `s` to `fields`; the first occurrence of a key wins.
fn fields_from<'a>(s: &'a str, fields: &mut HashMap<&'a str, &'a str>) {
    for tok in s.split_whitespace() {
        if let Some((k, v)) = tok.split_once('=') {
            fields.entry(k).or_insert(v);
        }
    }
}
