//! The journal: `<store>/.lambda-hat/journal.jsonl`, one JSON object per line, append-only and
//! flushed to disk before the controller acts on what it records. It is the controller's memory
//! across invocations (which SLURM jobs were submitted, how each job ended).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 time of writing.
    pub time: String,
    /// `started`, `submitted`, `finished`, `failed`, `cancelled`, ...
    pub event: String,
    /// The job key (see `Plan::job_key`).
    pub job: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Event {
    pub fn new(event: &str, job: &str, rule: &str) -> Self {
        Event {
            time: chrono::Utc::now().to_rfc3339(),
            event: event.into(),
            job: job.into(),
            rule: rule.into(),
            executor: None,
            slurm_job_id: None,
            attempt: None,
            state: None,
            detail: None,
        }
    }
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

/// Whether the file at `path` is empty or its last byte is a newline.
fn ends_with_newline_or_empty(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Journal {
    pub fn path_in(store_root: &Path) -> PathBuf {
        super::private_dir(store_root).join("journal.jsonl")
    }

    pub fn open(store_root: &Path) -> io::Result<Self> {
        let path = Self::path_in(store_root);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A torn last line (a crash mid-write) is ended first: the next event must start a
        // line of its own, or it would be lost in the torn one.
        if !ends_with_newline_or_empty(&path)? {
            file.write_all(b"\n")?;
        }
        Ok(Journal { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` and syncs it to disk before returning.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }

    /// Every event of the journal at `store_root`. A line that is not an event (a torn last
    /// line after a crash mid-write, bytes that are not UTF-8, a hand edit) is skipped and
    /// counted in a warning, never fatal: the journal is a record, and one bad line must not
    /// stop `status` or a reattach.
    pub fn read_all(store_root: &Path) -> io::Result<Vec<Event>> {
        let mut events = Vec::new();
        Self::for_each(store_root, |e| events.push(e))?;
        Ok(events)
    }

    /// Calls `f` with every event of the journal at `store_root`, in order, as
    /// [`read_all`](Self::read_all) reads them, but one line at a time: a reader that wants a
    /// few events (`cancelled` lines) need not hold a million-job sweep's journal, gigabytes of
    /// it, in memory.
    pub fn for_each(store_root: &Path, mut f: impl FnMut(Event)) -> io::Result<()> {
        use std::io::BufRead;
        let path = Self::path_in(store_root);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut reader = io::BufReader::new(file);
        let mut line = Vec::new();
        let mut skipped = 0;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            match parse_line(&line) {
                Line::Blank => {}
                Line::Event(e) => f(e),
                Line::Bad(torn) => {
                    skipped += 1;
                    torn.into_iter().for_each(&mut f);
                }
            }
        }
        if skipped > 0 && first_warning(&path, skipped) {
            tracing::warn!(
                "{}: skipped {skipped} line(s) that are not journal events",
                path.display()
            );
        }
        Ok(())
    }
}

/// Whether this process has not yet warned about `skipped` bad lines in the journal at `path`:
/// one command reads the journal several times (planning, status, health), and the same
/// warning was printed two to four times.
fn first_warning(path: &Path, skipped: usize) -> bool {
    static WARNED: std::sync::Mutex<Vec<(PathBuf, usize)>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let key = (path.to_path_buf(), skipped);
    if warned.contains(&key) {
        return false;
    }
    warned.push(key);
    true
}

/// The event name given to a line that is not an event but still names its job: a write cut
/// short (a full disk, a crash). Readers that know the event names pass over it; the output
/// hashes take it as "this job's last record is unknown" (`store::status`), so a whole output
/// whose `finished` line was cut is not called corrupt by the hash of an older finish.
pub const TORN: &str = "torn";

/// The events of a journal's bytes, and how many non-empty lines were not events. A line that
/// is not an event but names a job (`"job":"…"`, the third field of every event) gives a
/// [`TORN`] event for that job.
pub fn parse_lines(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in bytes.split(|&b| b == b'\n') {
        match parse_line(line) {
            Line::Blank => {}
            Line::Event(e) => events.push(e),
            Line::Bad(torn) => {
                skipped += 1;
                events.extend(torn);
            }
        }
    }
    (events, skipped)
}

/// One journal line, read.
enum Line {
    Blank,
    Event(Event),
    /// Not an event; a [`TORN`] event when it still names its job.
    Bad(Option<Event>),
}

fn parse_line(line: &[u8]) -> Line {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match serde_json::from_slice::<Event>(line) {
        Ok(event) => Line::Event(event),
        Err(_) => Line::Bad(torn_job(line).map(|job| Event::new(TORN, job, ""))),
    }
}

/// The job key a torn line names, if its `"job":"…"` field survived whole and is a key
/// (letters, digits, `_`, `.`, `-`).
fn torn_job(line: &[u8]) -> Option<&str> {
    const FIELD: &[u8] = b"\"job\":\"";
    let start = line.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = line[start..].iter().position(|&b| b == b'"')?;
    let key = std::str::from_utf8(&line[start..start + len]).ok()?;
    (!key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    .then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_warning_is_given_once_per_path_and_count() {
        let a = Path::new("/tmp/first-warning-test/a/journal.jsonl");
        assert!(first_warning(a, 3));
        assert!(!first_warning(a, 3));
        // More bad lines since (a crash in between): worth saying again.
        assert!(first_warning(a, 4));
        assert!(first_warning(
            Path::new("/tmp/first-warning-test/b/journal.jsonl"),
            3
        ));
    }

    #[test]
    fn lines_that_are_not_events_are_skipped_and_counted_whatever_their_bytes() {
        let good = serde_json::to_string(&Event::new("started", "tgt_1", "build_target")).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(good.as_bytes());
        bytes.extend_from_slice(b"\n\xff\xfe not utf-8\n\n{\"torn\": \n");
        bytes.extend_from_slice(good.as_bytes());
        bytes.extend_from_slice(b"\n{\"event\": \"start");
        let (events, skipped) = parse_lines(&bytes);
        assert_eq!(events.len(), 2);
        assert_eq!(skipped, 3);
    }

    #[test]
    fn a_torn_line_that_names_its_job_is_a_torn_event() {
        let mut line =
            serde_json::to_string(&Event::new("finished", "tgt_1.run_hmc_2", "r")).unwrap();
        line.truncate(line.len() - 5);
        let (events, skipped) = parse_lines(format!("{line}\n").as_bytes());
        assert_eq!(skipped, 1);
        assert_eq!(
            (events[0].event.as_str(), events[0].job.as_str()),
            (TORN, "tgt_1.run_hmc_2")
        );
        // Cut inside the key, or no key at all: nothing to name.
        let (events, _) = parse_lines(b"{\"time\":\"x\",\"event\":\"finished\",\"job\":\"tgt_1.ru");
        assert!(events.is_empty());
        let (events, _) = parse_lines(b"{\"job\":\"a b\"");
        assert!(events.is_empty());
    }

    #[test]
    fn a_journal_with_invalid_utf8_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&Event::new("started", "tgt_1", "build_target"))
            .unwrap();
        drop(j);
        let path = Journal::path_in(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"\x80\n");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Journal::read_all(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn an_event_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_in(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"time\":\"x\",\"event\":\"submit").unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&Event::new("started", "tgt_1", "build_target"))
            .unwrap();
        let events = Journal::read_all(dir.path()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].job, "tgt_1");
    }
}
