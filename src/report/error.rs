//! The errors of the report commands, each one message saying what went wrong, where, and
//! what to do about it.
//!
//! [`PlotError`] is separate because the worker calls the plot functions too and should not
//! have to know about store-reading errors; it converts into [`ReportError`].

use std::path::PathBuf;

/// Why a report command (`results`, `promote`, `clean`) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "store root `{}` does not exist; pass --runs-root with the store_root of your \
         experiments file (e.g. `--runs-root runs`)",
        path.display()
    )]
    StoreMissing { path: PathBuf },

    #[error(
        "`{}` is not a lambda-hat store: it has no `targets/` directory; pass --runs-root with \
         the store_root of your experiments file (the folder that contains `targets/`)",
        path.display()
    )]
    NotAStore { path: PathBuf },

    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write `{}`: {source}; check that its folder is writable", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot delete `{}`: {source}; nothing after it was deleted", path.display())]
    Delete {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("`{}` is not the JSON lambda-hat expects: {message}", path.display())]
    BadJson { path: PathBuf, message: String },

    #[error("cannot read array `{array}` from `{}`: {message}", path.display())]
    Npz {
        path: PathBuf,
        array: String,
        message: String,
    },

    #[error("unknown column `{column}` in {flag}; valid columns: {valid}")]
    UnknownColumn {
        flag: &'static str,
        column: String,
        valid: String,
    },

    #[error(
        "no finished runs of sampler {missing} under `{}`{scope}; samplers with finished runs: \
         {available}. Fix --samplers, or run those samplers first",
        root.display()
    )]
    UnknownSampler {
        missing: String,
        root: PathBuf,
        scope: String,
        available: String,
    },

    #[error(
        "no finished sampler runs under `{}`; run the sweep first (e.g. `lambda-hat -j 4`) or \
         check --runs-root",
        root.display()
    )]
    NoFinishedRuns { root: PathBuf },

    #[error(
        "target `{target}` has no finished sampler runs under `{}`; targets with finished runs: \
         {available}",
        root.display()
    )]
    UnknownTarget {
        target: String,
        root: PathBuf,
        available: String,
    },

    #[error(
        "plot `{}` not found; plots in that run: {available}. Pick one with --plot-name",
        path.display()
    )]
    PlotMissing { path: PathBuf, available: String },

    #[error("`{}` is not a finished sampler run directory: {reason}", path.display())]
    NotARunDir { path: PathBuf, reason: String },

    #[error(
        "`{}` has a `{marker}` line with no matching `{expected}` line; fix or remove the \
         half snippet by hand, then run promote again",
        path.display()
    )]
    BrokenSnippet {
        path: PathBuf,
        marker: &'static str,
        expected: &'static str,
    },

    #[error(
        "the experiments file references no targets; refusing to call every directory under \
         `{}` unreferenced. Check --configfile",
        root.display()
    )]
    NothingReferenced { root: PathBuf },

    #[error(
        "{flag} `{}`: only PNG plots can be written; name the file with a .png extension",
        path.display()
    )]
    PlotFormat { flag: &'static str, path: PathBuf },

    #[error(
        "--plot-x needs --plot FILE: it picks the x axis of that plot, and without it nothing is drawn"
    )]
    PlotXWithoutPlot,

    #[error("nothing to plot into `{}`: {reason}", path.display())]
    NothingToPlot { path: PathBuf, reason: String },

    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw `{}`: {reason}", path.display())]
    NoData { path: PathBuf, reason: String },

    #[error("cannot draw `{}`: {message}; check that its folder exists and is writable", path.display())]
    Draw { path: PathBuf, message: String },

    #[error("the embedded font could not be loaded; this is a bug in lambda-hat, please report it")]
    Font,
}
