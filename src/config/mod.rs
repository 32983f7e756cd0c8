//! Configuration: experiments file, presets, overrides and profiles → a validated, resolved sweep.
//!
//! Entry point: [`load_sweep`]. Everything downstream (planning, workers) sees only the typed,
//! resolved structs of [`schema`].

pub mod error;
pub mod experiments;
pub mod merge;
pub mod presets;
pub mod schema;

pub use error::ConfigError;
pub use experiments::{ResolvedTarget, Sweep, load_sweep, param_count, parse_sweep, solve_width};
pub mod profile;
