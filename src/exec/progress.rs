//! Progress reporting of an execution: a live bar on a terminal, plain lines otherwise (logs,
//! CI, `nohup`). Executors call it; it never decides anything.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// "3 of 8 jobs done", and how many failed when any did.
fn count_line(done: usize, failed: usize, total: usize) -> String {
    match failed {
        0 => format!("{done} of {total} jobs done"),
        n => format!("{done} of {total} jobs done, {n} failed"),
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    /// Failed so far: counted apart, so "N of M jobs" never counts a failure as done.
    failed: usize,
    quiet: bool,
}

impl Progress {
    pub fn new(total: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs ({time_left}) {msg}",
                )
                .map(|style| {
                    style.with_key(
                        "time_left",
                        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let left = time_left(
                                s.elapsed(),
                                s.pos() as usize,
                                s.len().unwrap_or(0) as usize,
                            );
                            let _ = w.write_str(&left);
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            failed: 0,
            quiet,
        }
    }

    fn line(&self, text: &str) {
        let text = &*crate::terminal::terminal_safe(text);
        match &self.bar {
            Some(bar) => bar.println(text),
            None if !self.quiet => crate::terminal::note!("{text}"),
            None => {}
        }
    }

    pub fn started(&self, what: &str) {
        if self.bar.is_none() {
            self.line(&format!("[{}] start  {what}", now()));
        }
    }

    pub fn finished(&mut self, what: &str, secs: f64) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        self.line(&format!(
            "[{}] done   {what} ({secs:.1} s) — {}",
            now(),
            count_line(self.done, self.failed, self.total)
        ));
    }

    pub fn failed(&mut self, what: &str, why: &str) {
        self.failed += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        // Failures are printed even with -q: the user must know.
        let text = crate::terminal::terminal_safe(&format!("[{}] FAILED {what}: {why}", now()))
            .into_owned();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => crate::terminal::note!("{text}"),
        }
    }

    /// A job that failed and goes again: a time-stamped line, as for its start and end.
    pub fn retrying(&self, what: &str, why: &str) {
        self.line(&format!("[{}] retry  {what}: {why}", now()));
    }

    /// A warning line, printed even with -q (like failures): the user must act on it.
    pub fn warn(&self, text: &str) {
        let text = format!("[{}] WARN   {text}", now());
        match &self.bar {
            Some(bar) => bar.println(text),
            None => crate::terminal::note!("{text}"),
        }
    }

    /// A job's command (`-p`), printed even on a terminal with a bar, unless quiet.
    pub fn command(&self, text: &str) {
        if !self.quiet {
            match &self.bar {
                Some(bar) => bar.println(crate::terminal::terminal_safe(text)),
                None => self.line(text),
            }
        }
    }

    pub fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_string()),
            None => self.line(text),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The bar's estimate of the time left, in time, not jobs: the mean time per finished job so
/// far times the jobs still to finish. Before the first job finishes there is nothing to
/// measure, so it says so instead of printing "0s left".
fn time_left(elapsed: Duration, done: usize, total: usize) -> String {
    if done == 0 {
        return "time left: after the first job".to_string();
    }
    let left = elapsed.as_secs_f64() / done as f64 * total.saturating_sub(done) as f64;
    format!("~{} left", human_secs(left))
}

/// 42s, 3m05s, 2h07m.
fn human_secs(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_never_calls_a_failure_done() {
        assert_eq!(count_line(2, 0, 6), "2 of 6 jobs done");
        assert_eq!(count_line(1, 1, 6), "1 of 6 jobs done, 1 failed");
    }

    #[test]
    fn time_left_is_time_per_finished_job_times_jobs_left() {
        assert_eq!(
            time_left(Duration::from_secs(5), 0, 2),
            "time left: after the first job"
        );
        // 1 of 4 done in 30 s: 3 × 30 s = 90 s.
        assert_eq!(time_left(Duration::from_secs(30), 1, 4), "~1m30s left");
        assert_eq!(time_left(Duration::from_secs(10), 2, 2), "~0s left");
        assert_eq!(time_left(Duration::from_secs(3600), 1, 3), "~2h00m left");
    }
}
