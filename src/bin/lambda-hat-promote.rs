//! `lambda-hat-promote`: the standalone promote command the users' scripts already call
//! (`lambda-hat-promote gallery --runs-root runs --samplers hmc,sgld,mclmc ...`).
//!
//! It is `lambda-hat promote` under its old name: the arguments are parsed as
//! `lambda-hat promote ARGS` and dispatched the same way, so both read the same experiments file
//! (`--configfile`, `--config`) to pick the sweep's runs and can never drift apart. Until
//! 2026-12-05 this binary had its own parser, read no experiments file, and so promoted the newest
//! runs of the whole store where `lambda-hat promote` took the sweep's. Progress goes to stdout,
//! an error to stderr with the exit code `lambda-hat promote` gives ([`lambda_hat::exit_code`]).

use clap::Parser;

fn main() {
    let args = ["lambda-hat".into(), "promote".into()]
        .into_iter()
        .chain(std::env::args_os().skip(1));
    let cli = lambda_hat::cli::Cli::parse_from(args);
    if let Err(e) = lambda_hat::cli::dispatch(cli) {
        e.exit();
    }
}
