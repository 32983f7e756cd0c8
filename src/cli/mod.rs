//! The command line: clap definitions ([`args`]) and dispatch to the parts that do the work.

pub mod args;
pub mod error;
pub mod sweep;

pub use args::{Cli, Command, WorkerCommand};
pub use error::CliError;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Worker(w)) => crate::worker::run(w),
        None => runtime()?.block_on(sweep::run(&cli.sweep)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::io("cannot start the async runtime", e))
}
