//! The signals that stop a sweep: SIGINT (Ctrl-C), SIGTERM (`kill PID`, a batch system ending the
//! controller's own job) and SIGHUP (the terminal or SSH session closed).
//!
//! Before, only Ctrl-C was handled: after `kill -TERM` the controller died at once and its
//! workers kept running and writing outputs while their incomplete markers stayed, so the next
//! `--ri` started a second worker on the same spec. Now each of the three is an interruption of
//! the local executor: it kills its workers, keeps their markers and exits 130. (SIGKILL cannot
//! be caught; for that the workers watch their parent, see `worker::orphan`.) The SLURM
//! executor listens to Ctrl-C only: there a lost session must leave the jobs queued, to be
//! reattached to by the next run.
//!
//! In: nothing. Out: [`Interrupts::recv`] resolves with the signal's name, once per signal.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listeners for the three signals, installed once (installing replaces the default action,
/// which for all three is to die).
pub struct Interrupts {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupts {
    /// Installs the handlers. Must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next interruption's signal name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
