//! The command line: clap definitions ([`args`]) and dispatch to the parts that do the work.

pub mod args;
pub mod error;
pub mod sweep;
pub mod validate;

pub use args::{Cli, Command, WorkerCommand};
pub use error::CliError;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Worker(w)) => crate::worker::run(w),
        Some(Command::Results(args)) => {
            crate::report::results::run(
                &args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )?;
            Ok(())
        }
        Some(Command::Promote(args)) => {
            crate::report::promote::run(&args, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Some(Command::Clean(args)) => {
            let settings = sweep::Settings::from_args(&cli.sweep)?;
            let plan = sweep::load_plan(&settings)?;
            let referenced = crate::report::clean::Referenced {
                targets: plan.targets.iter().map(|t| t.id.clone()).collect(),
                runs: (0..plan.runs.len() as u32)
                    .map(|r| plan.run_id(r))
                    .collect(),
            };
            crate::report::clean::run(&args, &referenced, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Some(Command::Validate(args)) => validate::run(
            &args,
            cli.sweep.configfile.as_deref(),
            cli.sweep.quiet,
            &mut std::io::stdout().lock(),
        ),
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
