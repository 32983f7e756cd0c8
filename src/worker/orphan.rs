//! A local worker stops when its controller is gone.
//!
//! SIGKILL and the OOM killer cannot be caught, so a controller killed that way cannot stop its
//! workers; before this, they kept running and writing outputs, and the resumed sweep (which
//! sees their incomplete markers) ran their jobs a second time. The local executor therefore
//! sets [`WATCH_PARENT_ENV`] for its workers, and such a worker checks every
//! [`POLL`] whether its parent process changed (a dead parent's children are re-parented to
//! init or a subreaper); if so it exits at once with [`ORPHAN_EXIT_CODE`]. It writes nothing
//! more: its marker stays, and the next run redoes the job with `--rerun-incomplete`.
//!
//! SLURM workers are not watched (their parent is slurmstepd, and SLURM cancels its own jobs),
//! nor are workers started by hand.
//!
//! In: the environment. Out: a background thread, or nothing.

use std::time::Duration;

use crate::spec::WATCH_PARENT_ENV;

/// How often the parent is checked: a dead controller's workers stop within this.
pub const POLL: Duration = Duration::from_millis(200);
/// Nobody waits for an orphan's exit code; 128 + 15 (SIGTERM) reads as "terminated".
pub const ORPHAN_EXIT_CODE: i32 = crate::exit_code::SIGTERM;

/// Starts the watch when the local executor asked for it.
pub fn watch_parent_if_asked() {
    if std::env::var_os(WATCH_PARENT_ENV).is_none() {
        return;
    }
    let parent = std::os::unix::process::parent_id();
    let spawned = std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(POLL);
                if parent_gone(parent, std::os::unix::process::parent_id()) {
                    crate::terminal::note!(
                        "lambda-hat worker: the controller (pid {parent}) is gone; stopping. The job's incomplete marker stays: the next run redoes it with --rerun-incomplete."
                    );
                    std::process::exit(ORPHAN_EXIT_CODE);
                }
            }
        });
    if let Err(e) = spawned {
        // Not fatal: the job can still finish; only the clean-up after a killed controller is lost.
        crate::terminal::note!(
            "lambda-hat worker: cannot watch the controller ({e}); continuing without"
        );
    }
}

/// Whether the process that started us is gone: our parent changed.
fn parent_gone(original: u32, now: u32) -> bool {
    original != now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_parent_means_the_controller_is_gone() {
        assert!(!parent_gone(4242, 4242));
        assert!(parent_gone(4242, 1));
    }
}
