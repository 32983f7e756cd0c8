//! Reports on a finished (or half-finished) store: what people read after a sweep.
//!
//! Data enters from the store on disk (`meta.json`, `analysis.json`, `trace.npz`, incomplete
//! markers; see ARCHITECTURE.md §3), or, for the plot functions, as plain slices the worker
//! already holds in memory. It leaves as text on the writers the caller hands in (tables, CSV,
//! JSON, listings), as PNG files, as a Markdown gallery snippet, and as deleted directories
//! (`clean`, only with `--yes`).
//!
//! The store is only ever read here, except by `clean --yes` and by the files `promote` and
//! `results --out/--plot` and `report -o` are asked to write.
//!
//! * [`results`]: one row per finished sampler run; group-by statistics; CSV/JSON/plot.
//! * [`promote`]: copy a representative plot per sampler into a gallery plus a Markdown snippet.
//! * [`clean`]: list and delete directories the current experiments file no longer references.
//! * [`html`]: `lambda-hat report`, one self-contained HTML page about a sweep.
//! * [`plots`]: the PNG plots (trace, rank, energy, convergence, adaptation, training loss,
//!   LLC against a column).

pub mod clean;
mod config_columns;
mod error;
mod files;
mod group;
pub mod html;
pub mod plots;
pub mod promote;
pub mod results;
mod row;
mod scan;
mod snippet;
mod style;
mod table;
pub mod trace_npz;

#[cfg(test)]
mod testutil;

pub use error::{PlotError, ReportError};
pub use scan::Scope;
