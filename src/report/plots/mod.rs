//! The PNG plots of a sweep, as pure functions: data and an output path in, one PNG file out
//! (written atomically; nothing else is read or written).
//!
//! Per sampler run (the worker calls these after sampling, into `run_…/diagnostics/`):
//! * [`plot_trace`] → [`TRACE_PNG`] (`trace.rs`): ArviZ's `plot_trace`, the LLC's density per
//!   chain beside its trace per chain, R-hat and ESS in the title.
//! * [`plot_rank`] → [`RANK_PNG`] (`rank.rs`): ArviZ's `plot_rank`, per chain a histogram of the
//!   ranks of its draws among all chains' draws, against the uniform that mixing chains give.
//! * [`plot_energy`] → [`ENERGY_PNG`] (`energy.rs`, HMC and NUTS): ArviZ's `plot_energy`, the
//!   marginal and transition energy distributions and the BFMI per chain.
//! * [`plot_llc_convergence`] → [`CONVERGENCE_PNG`] (`convergence.rs`): running mean ± 1.96·SEM
//!   against gradient evaluations and against wall time, to see whether more sampling would still
//!   move the estimate.
//! * [`plot_adaptation`] → [`ADAPTATION_PNG`] (`adaptation.rs`, HMC and NUTS): acceptance and
//!   step size during warmup.
//!
//! Per target: [`plot_training_loss`] → [`TRAINING_LOSS_PNG`] (`training.rs`).
//! Per sweep: [`plot_llc_vs`] (`llc_vs.rs`), used by `results --plot`.
//!
//! The numerics behind them (kernel density, thinning, ranks, BFMI, jitter) are small pure
//! functions next to the plot that uses them (`density.rs` for the shared ones), each with unit
//! tests.
//!
//! Input conventions: per-chain data is `&[Vec<f64>]`, one inner vector per chain (the
//! `[chain, draw]` layout of trace.npz). NaN values are skipped, not drawn. No input panics;
//! empty or all-NaN data is a [`PlotError::NoData`].

mod adaptation;
mod convergence;
pub(crate) mod density;
mod energy;
mod llc_vs;
mod rank;
mod trace;
mod training;

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::style::{AXIS_DESC_PX, DrawResult, TICK_PX, fmt_tick, font};

pub use adaptation::plot_adaptation;
pub use convergence::plot_llc_convergence;
pub use energy::{bfmi, plot_energy};
pub use llc_vs::{LlcPoint, LlcSeries, XScale, plot_llc_vs};
pub use rank::plot_rank;
pub use trace::plot_trace;
pub use training::plot_training_loss;

/// File names in `run_…/diagnostics/` (and, for the training loss, `tgt_…/diagnostics/`).
pub const TRACE_PNG: &str = "trace.png";
pub const RANK_PNG: &str = "rank.png";
pub const ENERGY_PNG: &str = "energy.png";
pub const CONVERGENCE_PNG: &str = "llc_convergence.png";
pub const ADAPTATION_PNG: &str = "adaptation.png";
pub const TRAINING_LOSS_PNG: &str = "training_loss.png";

/// The per-run plots in reading order (what `report` shows first): mixing, then the estimate.
pub const RUN_PLOTS: [&str; 5] = [
    TRACE_PNG,
    RANK_PNG,
    CONVERGENCE_PNG,
    ENERGY_PNG,
    ADAPTATION_PNG,
];

/// Above this many chains the per-chain colours stop meaning anything; they are still drawn.
const MAX_CHAINS_IN_SUBTITLE: usize = 10;

fn no_data(path: &Path, reason: impl Into<String>) -> PlotError {
    PlotError::NoData {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn fmt_stat(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "n/a".into()
    }
}

/// Mean of the finite values of all chains.
fn finite_mean(chains: &[Vec<f64>]) -> Option<f64> {
    let (sum, n) = chains
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// A mesh with the house style: labelled axes, readable ticks, light grid.
fn style_mesh<X, Y>(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    style_mesh_with(chart, x_desc, y_desc, &fmt_tick, &fmt_tick)
}

/// [`style_mesh`] with tick labels of one's own (category names, chain numbers).
fn style_mesh_with<X, Y>(
    chart: &mut ChartContext<'_, BitMapBackend<'_>, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(AXIS_DESC_PX))
        .label_style(font(TICK_PX))
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .x_labels(8)
        .y_labels(8)
        // Few, faint minor lines: the data should stand out, not the grid.
        .max_light_lines(2)
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    Ok(())
}

fn chart_builder<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(16)
        .margin_right(32)
        .x_label_area_size(60)
        .y_label_area_size(90);
    builder
}

/// Points of one series with NaN values left out.
fn finite_points(xs: impl Iterator<Item = f64>, ys: &[f64]) -> Vec<(f64, f64)> {
    xs.zip(ys.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A linear axis whose ticks sit exactly at the given values (category centres, chain rows),
/// labelled by the formatter handed to [`style_mesh_with`]. plotters' own `with_key_points`
/// wrapper loses the tick formatting its meshes need, hence this small axis of our own.
struct TickedAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let share = if span > 0.0 {
            (value - self.range.start) / span
        } else {
            0.5
        };
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold lines at the ticks only: no light lines between categories.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A sentence in the middle of a panel that has nothing to draw.
fn not_recorded(area: &DrawingArea<BitMapBackend<'_>, Shift>, text: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let style = font(AXIS_DESC_PX).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(text, &style, (w as i32 / 2, h as i32 / 2))?;
    Ok(())
}

/// "one colour per chain", when that still means something.
fn colour_note(chains: usize) -> &'static str {
    if chains <= MAX_CHAINS_IN_SUBTITLE {
        "one colour per chain"
    } else {
        "chains in rotating colours"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::style::SIZE;
    use crate::report::testutil::{TempDir, assert_png, chains};

    #[test]
    fn empty_or_bad_data_is_an_error_not_a_panic() {
        let tmp = TempDir::new("plot-empty");
        let p = tmp.path().join("x.png");
        assert!(plot_trace(&p, "r", &[], f64::NAN, f64::NAN).is_err());
        assert!(plot_trace(&p, "r", &[vec![f64::NAN; 5]], 1.0, 1.0).is_err());
        assert!(plot_rank(&p, "r", &[]).is_err());
        assert!(plot_rank(&p, "r", &[vec![f64::NAN; 5], vec![]]).is_err());
        assert!(plot_energy(&p, "r", &[]).is_err());
        assert!(plot_energy(&p, "r", &[vec![1.0]]).is_err());
        assert!(plot_llc_convergence(&p, "r", &[vec![1.0, 2.0]], 1.0, None).is_err());
        assert!(plot_llc_convergence(&p, "r", &chains(2, 50), 0.0, None).is_err());
        assert!(plot_adaptation(&p, "r", &[], &[], None).is_err());
        assert!(plot_training_loss(&p, "t", &[1.0], &[1.0, 2.0]).is_err());
        assert!(plot_training_loss(&p, "t", &[1.0], &[0.0]).is_err());
        assert!(plot_llc_vs(&p, "p", &XScale::Numeric, &[]).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn training_loss_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-loss");
        let path = tmp.path().join(TRAINING_LOSS_PNG);
        let step: Vec<f64> = (0..200).map(|s| (s * 50) as f64).collect();
        let loss: Vec<f64> = step
            .iter()
            .map(|s| 2.0 * (-s / 2000.0).exp() + 1e-3)
            .collect();
        plot_training_loss(&path, "tgt_0123456789ab", &step, &loss).unwrap();
        assert_png(&path, SIZE);
    }
}
