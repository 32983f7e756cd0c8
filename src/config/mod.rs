//! Configuration: experiments file, presets, overrides and profiles → a validated, resolved sweep.

pub mod schema;
