//! `lambda-hat`: parse the command line, run it, map errors to one message and an exit code.

fn main() {
    let cli = lambda_hat::cli::parse();
    init_logging(cli.verbose);
    if let Err(e) = lambda_hat::cli::dispatch(cli) {
        e.exit();
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in a SLURM log or `2>file` they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
