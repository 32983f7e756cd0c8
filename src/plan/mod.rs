//! Planning: PURE functions from a resolved sweep and the store's output status to the job DAG,
//! the jobs to run and the text of dry runs and summaries. No file system access here.

pub mod dag;
pub mod graph;
pub mod ids;
pub mod memory;
pub mod select;
pub mod text;

pub use dag::{JobRef, Plan, PlanError, Rule, shell_word, shell_words};
pub use select::{OutputStatus, Reason, Request, Schedule};
