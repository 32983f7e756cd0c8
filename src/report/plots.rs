//! The PNG plots of a sweep, as pure functions: data and an output path in, one PNG file out
//! (written atomically; nothing else is read or written).
//!
//! Per sampler run (the worker calls these after sampling, into `run_…/diagnostics/`):
//! * [`plot_trace`] → [`TRACE_PNG`]: LLC per chain over draws, the mean line, R-hat and ESS.
//! * [`plot_llc_convergence`] → [`CONVERGENCE_PNG`]: running mean ± 1.96·SEM against gradient
//!   evaluations, to see whether more sampling would still move the estimate.
//! * [`plot_adaptation`] → [`ADAPTATION_PNG`] (HMC): acceptance and step size during warmup.
//!
//! Per target: [`plot_training_loss`] → [`TRAINING_LOSS_PNG`] (log-scale loss against step).
//! Per sweep: [`plot_llc_vs`], used by `results --plot`.
//!
//! Input conventions: per-chain data is `&[Vec<f64>]`, one inner vector per chain (the
//! `[chain, draw]` layout of trace.npz). NaN values are skipped, not drawn. No input panics;
//! empty or all-NaN data is a [`PlotError::NoData`].

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::PlotError;
use super::style::{
    AXIS_DESC_PX, DrawResult, LEGEND_PX, SIZE, TICK_PX, color, fmt_tick, font, log_range,
    padded_range, render,
};

/// File names in `run_…/diagnostics/` (and, for the training loss, the target directory).
pub const TRACE_PNG: &str = "trace.png";
pub const CONVERGENCE_PNG: &str = "llc_convergence.png";
pub const ADAPTATION_PNG: &str = "adaptation.png";
pub const TRAINING_LOSS_PNG: &str = "training_loss.png";

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
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(AXIS_DESC_PX))
        .label_style(font(TICK_PX))
        .x_label_formatter(&fmt_tick)
        .y_label_formatter(&fmt_tick)
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

/// `trace.png`: the LLC of every chain against the draw index, with the overall mean as a
/// dashed line, and R-hat and ESS in the title. `label` names the run (e.g. its directory name).
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
    let title = format!("LLC trace: {label}");
    let colours = if llc.len() <= MAX_CHAINS_IN_SUBTITLE {
        " (one colour per chain)"
    } else {
        ""
    };
    let subtitle = format!(
        "mean {} (dashed)   R-hat {}   ESS {}   {} chains × {draws} draws{colours}",
        fmt_stat(mean, 3),
        fmt_stat(r_hat, 3),
        fmt_stat(ess, 0),
        llc.len(),
    );
    render(path, SIZE, &title, &subtitle, |area| {
        let x1 = (draws.max(2) - 1) as f64;
        let mut chart = chart_builder(area).build_cartesian_2d(0.0..x1, y0..y1)?;
        style_mesh(&mut chart, "draw (after warmup)", "LLC = nβ (L(w) − L(w*))")?;
        for (c, chain) in llc.iter().enumerate() {
            let points = finite_points((0..chain.len()).map(|t| t as f64), chain);
            chart.draw_series(LineSeries::new(points, color(c).mix(0.75).stroke_width(1)))?;
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

/// Running mean over all chains after the first `t` draws of each, with its Monte Carlo
/// standard error (`diagnostics::mcse_mean`, the same SEM as analysis.json's llc_sem), at
/// about 100 evenly spaced values of `t`.
fn running_estimate(llc: &[Vec<f64>]) -> Vec<(usize, f64, f64)> {
    const POINTS: usize = 100;
    // ESS needs at least 4 draws per chain.
    const MIN_DRAWS: usize = 4;
    let draws = llc.iter().map(Vec::len).min().unwrap_or(0);
    if draws < MIN_DRAWS {
        return Vec::new();
    }
    let step = (draws / POINTS).max(1);
    let mut ts: Vec<usize> = (MIN_DRAWS..=draws).step_by(step).collect();
    if ts.last() != Some(&draws) {
        ts.push(draws);
    }
    ts.into_iter()
        .filter_map(|t| {
            let prefix: Vec<Vec<f64>> = llc.iter().map(|c| c[..t].to_vec()).collect();
            let mean = finite_mean(&prefix)?;
            let sem = crate::diagnostics::mcse_mean(&prefix);
            Some((t, mean, sem))
        })
        .collect()
}

/// `llc_convergence.png`: the running LLC mean over all chains against the gradient
/// evaluations spent, with a ±1.96·SEM band. `grad_evals_per_draw` is the sampling cost of one
/// draw of one chain (e.g. HMC: the leapfrog steps per draw); the x axis counts all chains and
/// leaves warmup out.
pub fn plot_llc_convergence(
    path: &Path,
    label: &str,
    llc: &[Vec<f64>],
    grad_evals_per_draw: f64,
) -> Result<(), PlotError> {
    if !(grad_evals_per_draw.is_finite() && grad_evals_per_draw > 0.0) {
        return Err(no_data(
            path,
            format!("gradient evaluations per draw must be positive, got {grad_evals_per_draw}"),
        ));
    }
    let estimate = running_estimate(llc);
    if estimate.is_empty() {
        return Err(no_data(
            path,
            "every chain needs at least 4 finite draws for a running SEM",
        ));
    }
    let cost = grad_evals_per_draw * llc.len() as f64;
    let x = |t: usize| t as f64 * cost;
    let band: Vec<(f64, f64, f64)> = estimate
        .iter()
        .filter(|(_, _, sem)| sem.is_finite())
        .map(|&(t, m, sem)| (x(t), m - 1.96 * sem, m + 1.96 * sem))
        .collect();
    let ys = estimate
        .iter()
        .map(|e| e.1)
        .chain(band.iter().flat_map(|b| [b.1, b.2]));
    let (y0, y1) = padded_range(ys).ok_or_else(|| no_data(path, "no finite running mean"))?;
    let &(t_last, final_mean, final_sem) = estimate.last().expect("checked non-empty");
    let (x0, x1) = (x(estimate[0].0), x(t_last));
    let title = format!("LLC running mean: {label}");
    let subtitle = format!(
        "line: running mean, band: ±1.96·SEM   final {} ± {}   {} chains × {t_last} draws",
        fmt_stat(final_mean, 3),
        fmt_stat(1.96 * final_sem, 3),
        llc.len()
    );
    render(path, SIZE, &title, &subtitle, |area| {
        let mut chart = chart_builder(area).build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1)?;
        style_mesh(
            &mut chart,
            "gradient evaluations (all chains, after warmup)",
            "running mean of LLC",
        )?;
        let blue = color(0);
        if !band.is_empty() {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|b| (b.0, b.2))
                .chain(band.iter().rev().map(|b| (b.0, b.1)))
                .collect();
            chart.draw_series([Polygon::new(outline, blue.mix(0.2).filled())])?;
        }
        chart.draw_series(LineSeries::new(
            estimate.iter().map(|&(t, m, _)| (x(t), m)),
            blue.stroke_width(3),
        ))?;
        Ok(())
    })
}

/// Centered moving average with window `w` (shorter at the ends), NaN values skipped.
fn moving_average(xs: &[f64], w: usize) -> Vec<f64> {
    let half = w / 2;
    (0..xs.len())
        .map(|i| {
            let window = &xs[i.saturating_sub(half)..(i + half + 1).min(xs.len())];
            let finite: Vec<f64> = window.iter().copied().filter(|v| v.is_finite()).collect();
            if finite.is_empty() {
                f64::NAN
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            }
        })
        .collect()
}

/// `adaptation.png` (HMC): acceptance probability (top) and step size (bottom, log scale) per
/// chain over the warmup steps. Acceptance is drawn as a centered moving average over about
/// 2 % of the warmup, since single-step acceptance jumps between 0 and 1 and hides the trend;
/// `target_acceptance` (e.g. 0.8) is drawn as a dashed line. Either input may be empty (that panel then says so).
pub fn plot_adaptation(
    path: &Path,
    label: &str,
    acceptance: &[Vec<f64>],
    step_size: &[Vec<f64>],
    target_acceptance: Option<f64>,
) -> Result<(), PlotError> {
    let step_range = log_range(step_size.iter().flatten().copied());
    let has_acceptance = acceptance.iter().flatten().any(|v| v.is_finite());
    if step_range.is_none() && !has_acceptance {
        return Err(no_data(
            path,
            "neither warmup acceptance nor a positive warmup step size was recorded",
        ));
    }
    let steps = acceptance
        .iter()
        .chain(step_size)
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    let x1 = (steps.max(2) - 1) as f64;
    let window = (steps / 50).max(1) | 1;
    let title = format!("HMC warmup adaptation: {label}");
    let target = target_acceptance
        .map(|t| format!(", dashed: target {t}"))
        .unwrap_or_default();
    let subtitle = format!(
        "{} chains × {steps} warmup steps, one colour per chain   acceptance: mean of {window} steps{target}",
        acceptance.len().max(step_size.len())
    );
    render(path, (SIZE.0, 800), &title, &subtitle, |area| {
        let (top, bottom) = area.split_vertically(360);
        if has_acceptance {
            let mut chart = chart_builder(&top).build_cartesian_2d(0.0..x1, 0.0..1.05)?;
            style_mesh(&mut chart, "", "acceptance (moving avg.)")?;
            for (c, chain) in acceptance.iter().enumerate() {
                let xs = (0..chain.len()).map(|t| t as f64);
                let smooth = finite_points(xs, &moving_average(chain, window));
                chart.draw_series(LineSeries::new(smooth, color(c).stroke_width(2)))?;
            }
            if let Some(target) = target_acceptance {
                chart.draw_series(DashedLineSeries::new(
                    [(0.0, target), (x1, target)],
                    12,
                    6,
                    BLACK.stroke_width(2),
                ))?;
            }
        } else {
            not_recorded(&top, "warmup acceptance was not recorded")?;
        }
        if let Some((lo, hi)) = step_range {
            let mut chart =
                chart_builder(&bottom).build_cartesian_2d(0.0..x1, (lo..hi).log_scale())?;
            style_mesh(&mut chart, "warmup step", "step size (log scale)")?;
            for (c, chain) in step_size.iter().enumerate() {
                let points: Vec<(f64, f64)> =
                    finite_points((0..chain.len()).map(|t| t as f64), chain)
                        .into_iter()
                        .filter(|p| p.1 > 0.0)
                        .collect();
                chart.draw_series(LineSeries::new(points, color(c).stroke_width(2)))?;
            }
        } else {
            not_recorded(&bottom, "warmup step size was not recorded")?;
        }
        Ok(())
    })
}

fn not_recorded(area: &DrawingArea<BitMapBackend<'_>, Shift>, text: &str) -> DrawResult {
    let (w, h) = area.dim_in_pixel();
    let style = font(AXIS_DESC_PX).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(text, &style, (w as i32 / 2, h as i32 / 2))?;
    Ok(())
}

/// `training_loss.png`: the training loss of a target against the optimizer step, log scale.
/// `step` and `loss` are meta.json's `training_loss.step` and `training_loss.loss`.
pub fn plot_training_loss(
    path: &Path,
    label: &str,
    step: &[f64],
    loss: &[f64],
) -> Result<(), PlotError> {
    if step.len() != loss.len() {
        return Err(no_data(
            path,
            format!(
                "training_loss has {} steps but {} losses",
                step.len(),
                loss.len()
            ),
        ));
    }
    let points: Vec<(f64, f64)> = finite_points(step.iter().copied(), loss)
        .into_iter()
        .filter(|p| p.1 > 0.0)
        .collect();
    let (y0, y1) = log_range(points.iter().map(|p| p.1)).ok_or_else(|| {
        no_data(
            path,
            "no positive finite training loss to draw on a log scale",
        )
    })?;
    let (x0, x1) = padded_range(points.iter().map(|p| p.0)).expect("points are finite");
    let &(last_step, last_loss) = points.last().expect("log_range found a point");
    let title = format!("Training loss: {label}");
    let subtitle = format!("final loss {last_loss:.4e} at step {last_step}");
    render(path, SIZE, &title, &subtitle, |area| {
        let mut chart =
            chart_builder(area).build_cartesian_2d(x0.max(0.0)..x1, (y0..y1).log_scale())?;
        style_mesh(&mut chart, "optimizer step", "training loss (log scale)")?;
        chart.draw_series(LineSeries::new(points, color(0).stroke_width(2)))?;
        Ok(())
    })
}

/// One point of [`plot_llc_vs`]: an LLC estimate at `x`, with its standard error if known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlcPoint {
    pub x: f64,
    pub llc_mean: f64,
    pub sem: Option<f64>,
}

/// One sampler's points.
#[derive(Debug, Clone, PartialEq)]
pub struct LlcSeries {
    pub name: String,
    pub points: Vec<LlcPoint>,
}

/// `results --plot`: LLC ± SEM against a numeric column, one colour per series, the legend in
/// a column of its own so it never covers points. The x axis is logarithmic when x is positive
/// and spans more than a factor of 20 (parameter counts usually do). Series are nudged sideways
/// a little so error bars at the same x do not hide each other; a thin line joins each
/// series' mean at every x.
pub fn plot_llc_vs(path: &Path, x_label: &str, series: &[LlcSeries]) -> Result<(), PlotError> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let xs: Vec<f64> = points().map(|p| p.x).filter(|x| x.is_finite()).collect();
    let ys = points().flat_map(|p| {
        let sem = p.sem.filter(|s| s.is_finite()).unwrap_or(0.0);
        [p.llc_mean - sem, p.llc_mean + sem]
    });
    let (y0, y1) = padded_range(ys).ok_or_else(|| no_data(path, "no finite LLC estimate"))?;
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if lo > hi {
        return Err(no_data(path, "no finite x value"));
    }
    let title = format!("LLC estimate against {x_label}");
    let subtitle = "points: one sampler run each, bars: ±1 SEM, line: mean per x";
    let log_x = lo > 0.0 && hi / lo > 20.0;
    // All series together spread over less than the axis padding, so none is clipped.
    let step = 1.0 / (series.len().max(2) - 1) as f64;
    render(path, SIZE, &title, subtitle, |area| {
        let (width, _) = area.dim_in_pixel();
        let (chart_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        let builder = chart_builder(&chart_area);
        if log_x {
            let (l, h) = log_range(xs.iter().copied()).expect("x is positive");
            // Dodge in log space: at most 0.08 of a decade in all (the axis pads 0.1).
            let dodge = move |x: f64, i: f64| x * 10f64.powf(0.08 * step * i);
            draw_llc_points(builder, (l..h).log_scale(), y0..y1, x_label, series, dodge)?;
        } else {
            let (l, h) = padded_range(xs.iter().copied()).expect("x is finite");
            // At most 4 % of the axis in all (it pads 5 % on each side).
            let dodge = move |x: f64, i: f64| x + 0.04 * step * (h - l) * i;
            draw_llc_points(builder, l..h, y0..y1, x_label, series, dodge)?;
        }
        draw_legend_column(&legend_area, series)
    })
}

/// Width of the legend column of [`plot_llc_vs`].
const LEGEND_WIDTH: u32 = 150;

/// A marker and the name of every series, stacked from the top.
fn draw_legend_column(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[LlcSeries],
) -> DrawResult {
    let centred = font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw_text("sampler", &centred, (8, 28))?;
    for (i, s) in series.iter().enumerate() {
        let y = 64 + 30 * i as i32;
        area.draw(&Circle::new((16, y), 6, color(i).filled()))?;
        area.draw_text(&s.name, &centred, (30, y))?;
    }
    Ok(())
}

fn draw_llc_points<XR>(
    mut builder: ChartBuilder<'_, '_, BitMapBackend<'_>>,
    x_range: XR,
    y_range: std::ops::Range<f64>,
    x_label: &str,
    series: &[LlcSeries],
    dodge: impl Fn(f64, f64) -> f64,
) -> DrawResult
where
    XR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = builder.build_cartesian_2d(x_range, y_range)?;
    style_mesh(&mut chart, x_label, "LLC estimate (llc_mean ± SEM)")?;
    let centre = (series.len() as f64 - 1.0) / 2.0;
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let offset = i as f64 - centre;
        let mut pts: Vec<LlcPoint> = s
            .points
            .iter()
            .copied()
            .filter(|p| p.x.is_finite() && p.llc_mean.is_finite())
            .collect();
        pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        chart.draw_series(pts.iter().filter_map(|p| {
            let sem = p.sem.filter(|s| s.is_finite())?;
            let x = dodge(p.x, offset);
            Some(ErrorBar::new_vertical(
                x,
                p.llc_mean - sem,
                p.llc_mean,
                p.llc_mean + sem,
                c.stroke_width(2),
                10,
            ))
        }))?;
        chart.draw_series(LineSeries::new(
            mean_per_x(&pts, &dodge, offset),
            c.mix(0.6),
        ))?;
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((dodge(p.x, offset), p.llc_mean), 5, c.filled())),
        )?;
    }
    Ok(())
}

/// The mean LLC at each distinct x of sorted points, for the connecting line.
fn mean_per_x(pts: &[LlcPoint], dodge: &impl Fn(f64, f64) -> f64, offset: f64) -> Vec<(f64, f64)> {
    pts.chunk_by(|a, b| a.x == b.x)
        .map(|same_x| {
            let mean = same_x.iter().map(|p| p.llc_mean).sum::<f64>() / same_x.len() as f64;
            (dodge(same_x[0].x, offset), mean)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::testutil::TempDir;

    /// The file is a PNG of the expected size that is not blank and not a single flat colour.
    pub fn assert_png(path: &Path, size: (u32, u32)) {
        let img = image::open(path)
            .unwrap_or_else(|e| panic!("{} is not a readable PNG: {e}", path.display()))
            .to_rgb8();
        assert_eq!(img.dimensions(), size, "{}", path.display());
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        let share = non_white as f64 / (size.0 * size.1) as f64;
        // Axes, text and lines cover a few percent; a blank or filled canvas fails.
        assert!((0.005..0.6).contains(&share), "{}: {share}", path.display());
    }

    fn chains(n_chains: usize, draws: usize) -> Vec<Vec<f64>> {
        (0..n_chains)
            .map(|c| {
                let mut x = 10.0 + c as f64;
                (0..draws)
                    .map(|t| {
                        // A deterministic AR(1)-like wiggle around 12.
                        let noise = (((t * 7919 + c * 104729) % 1000) as f64 / 1000.0) - 0.5;
                        x = 12.0 + 0.8 * (x - 12.0) + 1.5 * noise;
                        x
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn trace_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-trace");
        let path = tmp.path().join(TRACE_PNG);
        let mut llc = chains(4, 500);
        llc[1][10] = f64::NAN;
        plot_trace(&path, "run_hmc_0123abcd", &llc, 1.0032, 812.4).unwrap();
        assert_png(&path, SIZE);
    }

    #[test]
    fn convergence_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-conv");
        let path = tmp.path().join(CONVERGENCE_PNG);
        plot_llc_convergence(&path, "run_hmc_0123abcd", &chains(4, 400), 10.0).unwrap();
        assert_png(&path, SIZE);
    }

    #[test]
    fn adaptation_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-adapt");
        let path = tmp.path().join(ADAPTATION_PNG);
        let acc: Vec<Vec<f64>> = (0..3)
            .map(|c| {
                (0..300)
                    .map(|t| (0.5 + 0.3 * ((t + c * 11) % 7) as f64 / 7.0).min(1.0))
                    .collect()
            })
            .collect();
        let eps: Vec<Vec<f64>> = (0..3)
            .map(|c| {
                (0..300)
                    .map(|t| 0.1 * (-(t as f64) / 80.0).exp() + 1e-3 * (c + 1) as f64)
                    .collect()
            })
            .collect();
        plot_adaptation(&path, "run_hmc_0123abcd", &acc, &eps, Some(0.8)).unwrap();
        assert_png(&path, (SIZE.0, 800));
        // One panel missing still draws, and says so.
        plot_adaptation(&path, "run_hmc_0123abcd", &[], &eps, Some(0.8)).unwrap();
        assert_png(&path, (SIZE.0, 800));
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

    #[test]
    fn empty_or_bad_data_is_an_error_not_a_panic() {
        let tmp = TempDir::new("plot-empty");
        let p = tmp.path().join("x.png");
        assert!(plot_trace(&p, "r", &[], f64::NAN, f64::NAN).is_err());
        assert!(plot_trace(&p, "r", &[vec![f64::NAN; 5]], 1.0, 1.0).is_err());
        assert!(plot_llc_convergence(&p, "r", &[vec![1.0, 2.0]], 1.0).is_err());
        assert!(plot_llc_convergence(&p, "r", &chains(2, 50), 0.0).is_err());
        assert!(plot_adaptation(&p, "r", &[], &[], None).is_err());
        assert!(plot_training_loss(&p, "t", &[1.0], &[1.0, 2.0]).is_err());
        assert!(plot_training_loss(&p, "t", &[1.0], &[0.0]).is_err());
        assert!(plot_llc_vs(&p, "p", &[]).is_err());
        assert!(!p.exists());
    }

    #[test]
    fn running_estimate_ends_at_the_full_mean() {
        let llc = chains(3, 250);
        let est = running_estimate(&llc);
        let &(t, mean, sem) = est.last().unwrap();
        assert_eq!(t, 250);
        assert!((mean - finite_mean(&llc).unwrap()).abs() < 1e-12);
        assert!((sem - crate::diagnostics::mcse_mean(&llc)).abs() < 1e-12);
    }
}
