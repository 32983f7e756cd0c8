//! Parsers for the text that SLURM's command-line tools print, and nothing else.
//!
//! The SLURM executor runs `sbatch`, `squeue`, `sacct` and `scontrol` as subprocesses; this module
//! turns their captured stdout/stderr into typed values. It runs no process, reads no file and
//! knows no lambda-hat type: text goes in, [`JobKey`]s, [`JobState`]s and records come out, so it can
//! be tested against the exact outputs captured from a real SLURM 22.05 (Debian bookworm's
//! `slurm-wlm`, the cluster of `scripts/slurm-local.sh`); those captures are the test fixtures.
//!
//! | command (args the caller must use)                                   | parser                       |
//! |----------------------------------------------------------------------|------------------------------|
//! | `sbatch --parsable ...` stdout                                        | [`parse_sbatch_parsable`]    |
//! | `sbatch` stderr when it exits non-zero                                | [`classify_sbatch_failure`]  |
//! | `squeue` + [`SQUEUE_ARGS`] + `-j ID,ID,...` stdout                    | [`parse_squeue`]             |
//! | `sacct` + [`SACCT_ARGS`] + `-j ID,ID,...` stdout                      | [`parse_sacct`]              |
//! | `scontrol show job ID` (or `scontrol -o show job ID`) stdout          | [`parse_scontrol_show_job`]  |
//! | stderr of a failed `squeue`/`sacct`/`scontrol`                        | [`classify_query_failure`]   |
//! | (final state, signal, tail of the job's log)                          | [`is_oom_kill`]              |
//!
//! Facts about SLURM these parsers rely on (observed on the real cluster, see the tests):
//! - Array tasks are named `ARRAYID_TASK` (`123_4`). Tasks still pending together are shown as
//!   one row with a range, `123_[4-7%2]`, by `squeue` without `-r` and by `sacct` (also for
//!   tasks cancelled while pending: `35_[1-9%2]|CANCELLED by 0`). Ranges are expanded here, so
//!   callers always see one entry per task.
//! - `sacct`'s MaxRSS is only on the steps (`123.batch`, `123.extern`, `123.0`), never on the
//!   allocation line, so `-X` must not be used; [`parse_sacct`] merges steps into their job.
//! - `sacct` lags the controller by a second or more (a running job may still read PENDING,
//!   a just-submitted one may be missing): use `squeue` for live state and `sacct` only for jobs
//!   that left the queue.
//! - Without cgroups, an over-memory job is killed by `JobAcctGatherParams=OverMemoryKill` and
//!   ends `FAILED` with signal 9, exactly like a job that was `kill -9`ed for another reason; only
//!   the log text ("Exceeded job memory limit") tells them apart.
//! - `sbatch --dependency=afterok:ID` is accepted for any numeric ID; if the controller no
//!   longer knows ID (purged after `MinJobAge`, or never existed) the dependency counts as
//!   satisfied and the job runs, even if ID had failed. While ID is known and failed, the child
//!   stays PENDING with reason `DependencyNeverSatisfied` forever (it is not cancelled unless
//!   the cluster sets `kill_invalid_depend`). Only a malformed dependency gives
//!   "Job dependency problem".

mod error;
mod job_id;
mod oom;
mod sacct;
mod sbatch;
mod scontrol;
mod squeue;
mod state;
mod values;

pub use error::{ParseError, QueryError, SubmitError};
pub use job_id::{JobKey, parse_array_indices, parse_job_ids};
pub use oom::is_oom_kill;
pub use sacct::{AccountingRecord, SACCT_ARGS, parse_sacct};
pub use sbatch::{classify_query_failure, classify_sbatch_failure, parse_sbatch_parsable};
pub use scontrol::{ControlRecord, parse_scontrol_show_job};
pub use squeue::{QueueEntry, SQUEUE_ARGS, parse_squeue, stuck_pending_advice};
pub use state::{JobState, parse_state};
pub use values::{parse_duration_secs, parse_exit_code, parse_mem_bytes};

#[cfg(test)]
mod tests;
