//! `trace.png`, drawn like ArviZ's `plot_trace`: on the left the LLC's marginal density per
//! chain (Gaussian KDE, `density.rs`), on the right the LLC of each chain against the draw
//! index. Chains that sample the same distribution have overlapping densities and traces
//! that look like the same stationary noise.
//!
//! In: the `[chain, draw]` LLC draws and the run's R-hat and ESS. Out: one PNG.
//!
//! Long traces are thinned to at most [`MAX_TRACE_POINTS`] points per chain (the stride is in
//! the caption) and drawn half-transparent, so four chains of thousands of draws stay four
//! lines rather than one band of ink. The densities use every draw.

use std::path::Path;

use plotters::prelude::*;

use super::density::{density_on, linspace, thin_stride};
use super::{
    chart_builder, colour_note, finite_mean, finite_points, fmt_stat, no_data, not_recorded,
    style_mesh,
};
use crate::report::PlotError;
use crate::report::style::{WIDE, color, padded_range, render};

/// Points drawn per chain in the trace panel.
pub const MAX_TRACE_POINTS: usize = 400;

/// Grid points of each density curve: smooth at any canvas width we draw.
const DENSITY_GRID: usize = 200;

/// Width of the density panel; the trace panel gets the rest.
const DENSITY_PANEL_PX: u32 = 520;

/// `trace.png`: density per chain (left) and trace per chain (right) of the LLC, the overall
/// mean dashed in both, R-hat and ESS in the subtitle. `label` names the run.
pub fn plot_trace(
    path: &Path,
    label: &str,
    llc: &[Vec<f64>],
    r_hat: f64,
    ess: f64,
) -> Result<(), PlotError> {
    let draws = llc.iter().map(Vec::len).max().unwrap_or(0);
    let (y0, y1) = padded_range(llc.iter().flatten().copied())
        .ok_or_else(|| no_data(path, "the LLC trace has no finite values"))?;
    let mean = finite_mean(llc).unwrap_or(f64::NAN);
    let grid = linspace(y0, y1, DENSITY_GRID);
    let densities: Vec<Option<Vec<f64>>> = llc.iter().map(|c| density_on(c, &grid)).collect();
    let d_max = densities
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let stride = thin_stride(draws, MAX_TRACE_POINTS);
    let thinned = if stride > 1 {
        format!("; 1 in {stride} draws drawn")
    } else {
        String::new()
    };
    let title = format!("LLC trace: {label}");
    let subtitle = format!(
        "mean {} (dashed)   R-hat {}   ESS {}   {} chains × {draws} draws, {}{thinned}",
        fmt_stat(mean, 3),
        fmt_stat(r_hat, 3),
        fmt_stat(ess, 0),
        llc.len(),
        colour_note(llc.len()),
    );
    render(path, WIDE, &title, &subtitle, |area| {
        let (left, right) = area.split_horizontally(DENSITY_PANEL_PX);
        if d_max > 0.0 {
            let mut chart = chart_builder(&left).build_cartesian_2d(y0..y1, 0.0..d_max * 1.05)?;
            style_mesh(&mut chart, "LLC", "density (per chain)")?;
            for (c, d) in densities.iter().enumerate() {
                if let Some(d) = d {
                    let points = grid.iter().copied().zip(d.iter().copied());
                    chart.draw_series(LineSeries::new(points, color(c).stroke_width(2)))?;
                }
            }
            if mean.is_finite() {
                chart.draw_series(DashedLineSeries::new(
                    [(mean, 0.0), (mean, d_max * 1.05)],
                    12,
                    6,
                    BLACK.stroke_width(2),
                ))?;
            }
        } else {
            not_recorded(&left, "no spread: no density to draw")?;
        }

        let x1 = (draws.max(2) - 1) as f64;
        let mut chart = chart_builder(&right).build_cartesian_2d(0.0..x1, y0..y1)?;
        style_mesh(&mut chart, "draw (after warmup)", "LLC = nβ (L(w) − L(w*))")?;
        for (c, chain) in llc.iter().enumerate() {
            let ts = (0..chain.len()).step_by(stride);
            let values: Vec<f64> = ts.clone().map(|t| chain[t]).collect();
            let points = finite_points(ts.map(|t| t as f64), &values);
            // Thin lines where they are many, so chains stay apart; short traces get more ink.
            let width = if points.len() > 200 { 1 } else { 2 };
            chart.draw_series(LineSeries::new(
                points,
                color(c).mix(0.6).stroke_width(width),
            ))?;
        }
        // Explained in the subtitle rather than a legend, which would cover draws.
        if mean.is_finite() {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, mean), (x1, mean)],
                12,
                6,
                BLACK.stroke_width(3),
            ))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::TRACE_PNG;
    use crate::report::testutil::{TempDir, assert_png, chains};

    #[test]
    fn trace_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-trace");
        let path = tmp.path().join(TRACE_PNG);
        let mut llc = chains(4, 2500);
        llc[1][10] = f64::NAN;
        plot_trace(&path, "run_hmc_0123abcd", &llc, 1.0032, 812.4).unwrap();
        assert_png(&path, WIDE);
    }

    #[test]
    fn a_constant_trace_still_draws() {
        let tmp = TempDir::new("plot-trace-const");
        let path = tmp.path().join(TRACE_PNG);
        plot_trace(&path, "r", &[vec![3.0; 20]], f64::NAN, f64::NAN).unwrap();
        assert_png(&path, WIDE);
    }
}
