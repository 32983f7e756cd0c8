//! Progress reporting of an execution: a live bar on a terminal, plain lines otherwise (logs,
//! CI, `nohup`). Executors call it; it never decides anything.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    quiet: bool,
}

impl Progress {
    pub fn new(total: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} jobs ({eta} left) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            quiet,
        }
    }

    fn line(&self, text: &str) {
        let text = &*crate::cli::error::terminal_safe(text);
        match &self.bar {
            Some(bar) => bar.println(text),
            None if !self.quiet => eprintln!("{text}"),
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
            "[{}] done   {what} ({secs:.1} s) — {} of {} jobs",
            now(),
            self.done,
            self.total
        ));
    }

    pub fn failed(&mut self, what: &str, why: &str) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        // Failures are printed even with -q: the user must know.
        let text = crate::cli::error::terminal_safe(&format!("[{}] FAILED {what}: {why}", now()))
            .into_owned();
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A warning line, printed even with -q (like failures): the user must act on it.
    pub fn warn(&self, text: &str) {
        let text = format!("[{}] WARN   {text}", now());
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
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

fn now() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}
