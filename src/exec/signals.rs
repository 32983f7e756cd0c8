//! The signals that stop a sweep: SIGINT (Ctrl-C), SIGTERM (`kill PID`, a batch system ending the
//! controller's own job) and SIGHUP (the terminal or SSH session closed).
//!
//! Before, only Ctrl-C was handled: after `kill -TERM` the controller died at once and its
//! workers kept running and writing outputs while their incomplete markers stayed, so the next
//! `--ri` started a second worker on the same spec. Now each of the three is an interruption of
//! the local executor: it kills its workers, keeps their markers and exits 130. (SIGKILL cannot
//! be caught; for that the workers watch their parent, see `worker::orphan`.) On SLURM only
//! Ctrl-C cancels the sweep's jobs; SIGTERM and SIGHUP (a lost session) detach, leaving the
//! jobs queued for the next run to reattach to. Exit codes: 128 + the signal's number.
//!
//! In: nothing. Out: [`Interrupts::recv`] resolves with the signal's name, once per signal;
//! [`exit_code`] maps it to the shell's 128 + signal number.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The exit code of a run a signal interrupted: 128 + its number, as a shell reports it
/// (SIGINT 130, SIGTERM 143, SIGHUP 129).
pub fn exit_code(signal: &str) -> i32 {
    match signal {
        "SIGTERM" => crate::exit_code::SIGTERM,
        "SIGHUP" => crate::exit_code::SIGHUP,
        _ => crate::exit_code::SIGINT,
    }
}

/// Listeners for the three signals, installed once (installing replaces the default action,
/// which for all three is to die).
pub struct Interrupts {
    int: Option<Signal>,
    term: Signal,
    hup: Signal,
}

impl Interrupts {
    /// Installs the handlers. Must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: Some(signal(SignalKind::interrupt())?),
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// SIGTERM and SIGHUP only, for the SLURM controller, whose Ctrl-C is handled apart.
    pub fn install_detaching() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: None,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next interruption's signal name.
    pub async fn recv(&mut self) -> &'static str {
        let int = async {
            match self.int.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = int => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
