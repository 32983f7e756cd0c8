//! `lambda-hat-promote`: the standalone promote command the users' scripts already call
//! (`lambda-hat-promote gallery --runs-root runs --samplers hmc,sgld,mclmc ...`).
//!
//! Arguments come from the command line; everything else is `lambda-hat promote`
//! ([`lambda_hat::report::promote::run`]), so the two can never drift apart. Progress goes to
//! stdout, an error to stderr with the exit code `lambda-hat promote` would give
//! ([`lambda_hat::exit_code`]).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use lambda_hat::cli::CliError;
use lambda_hat::report::promote::{self, PromoteArgs, PromoteCommand};
use lambda_hat::terminal::terminal_safe;

/// Promote representative plots of a lambda-hat store into a gallery with a Markdown snippet.
#[derive(Debug, Parser)]
#[command(name = "lambda-hat-promote", version)]
struct Cli {
    #[command(subcommand)]
    command: PromoteCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = PromoteArgs {
        command: cli.command,
    };
    match promote::run(&args, &mut std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let e = CliError::from(e);
            // Not `eprintln!`, which panics when stderr is a closed pipe.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                terminal_safe(&e.to_string())
            );
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
