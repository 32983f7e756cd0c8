//! The SLURM executor (in progress): parsing of SLURM command output.

pub mod parse;
