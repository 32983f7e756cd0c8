//! The exit codes of both binaries (`lambda-hat`, `lambda-hat-promote`), in one place so that
//! the binaries, the tests and README's table agree. Scripts and SLURM test them:
//! 0 done, 1 work failed, 2 the user's input is wrong, 3 the machine is (I/O, missing program),
//! 128 + signal when interrupted.

/// Everything asked for was done (or nothing was needed).
pub const SUCCESS: i32 = 0;
/// A job failed, or a `validate` check did: the input was fine, the work was not.
pub const FAILED: i32 = 1;
/// The user's input is wrong: config, flags, profile, globs, or a store another controller holds.
/// (clap's own usage errors also exit 2.)
pub const USAGE: i32 = 2;
/// The environment is wrong: a file or stdout cannot be written or read, a program such as
/// `sbatch` is missing or fails to start. Fixing the input will not help; fixing the machine will.
pub const ENVIRONMENT: i32 = 3;
/// Interrupted by SIGHUP, SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number, as shells do.
pub const SIGHUP: i32 = 129;
pub const SIGINT: i32 = 130;
pub const SIGTERM: i32 = 143;
