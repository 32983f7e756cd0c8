//! Errors of a worker job: each names the file or step that failed, so the job log says what
//! to look at.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A plot could not be drawn into its file (a full disk, permissions): the job fails, so
    /// that no run is recorded done without the plots its analysis.json promises.
    #[error("{0}")]
    Plot(crate::report::PlotError),
    #[error("{path} is not a valid spec: {message}")]
    Spec { path: PathBuf, message: String },
    #[error(
        "{path} says {what} {claimed} but its config hashes to {actual}: the spec was edited by hand or written by another lambda-hat version.\n  Remove the job's directory and plan again."
    )]
    IdMismatch {
        path: PathBuf,
        what: &'static str,
        claimed: String,
        actual: String,
    },
    #[error(
        "the target {target} of this run is not built ({missing} is missing): build it first (lambda-hat plans it automatically)"
    )]
    TargetMissing { target: String, missing: PathBuf },
    #[error("cannot read array `{name}` from {path}: {message}")]
    Npz {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error(
        "{path} does not match the hash its target's meta.json recorded when the target was built: it was changed or replaced since (another target's file?). The target is damaged, not this run.\n  Its completion marker {meta} was removed, so running the sweep again rebuilds the target and redoes its runs."
    )]
    TargetDamaged { path: PathBuf, meta: PathBuf },
    #[error("training failed: {0}")]
    Train(#[from] crate::train::TrainError),
    #[error("the network does not match the stored parameters: {0}")]
    Nn(#[from] crate::nn::NnError),
    #[error("sampling failed: {0}")]
    Sampler(#[from] crate::samplers::SamplerError),
    #[error(transparent)]
    Record(#[from] crate::store::record::RecordError),
}
