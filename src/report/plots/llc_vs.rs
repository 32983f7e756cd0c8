//! `results --plot`: the LLC estimate (± SEM) of every run against one column, one colour per
//! sampler, the legend in a column of its own so it never covers points.
//!
//! In: one [`LlcSeries`] per sampler and an [`XScale`] saying whether x is a number or a
//! category (the caller, `results`, decides from the column; README documents the rule). Out:
//! one PNG.
//!
//! * Numeric x: points at their x, and a line through each sampler's mean at every x. The axis
//!   is logarithmic when x is positive and spans more than a factor of 20 (parameter counts
//!   usually do); series are nudged sideways a little so error bars at one x do not hide each
//!   other.
//! * Categorical x: a strip plot. Categories are evenly spaced with their names as ticks; within
//!   a category each sampler has its own slot, its runs spread sideways by a deterministic
//!   [`jitter`] so that runs with equal x never stack into one vertical smear, and a short bar
//!   marks the sampler's mean in that category.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{TickedAxis, chart_builder, no_data, style_mesh, style_mesh_with};
use crate::report::PlotError;
use crate::report::style::{
    DrawResult, LEGEND_PX, SIZE, color, fmt_tick, font, log_range, padded_range, render,
};

/// One point of [`plot_llc_vs`]: an LLC estimate at `x` (for categorical x, the index of its
/// category), with its standard error if known.
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

/// What x is.
#[derive(Debug, Clone, PartialEq)]
pub enum XScale {
    /// A quantity: points sit at their value.
    Numeric,
    /// Categories, in axis order; a point's `x` is the index of its category.
    Categorical(Vec<String>),
}

/// A deterministic sideways offset in [−0.5, 0.5) for the `i`-th point of a strip: the base-2
/// van der Corput sequence shifted so the first point sits in the middle (0, −0.25, 0.25,
/// −0.375, 0.125, …). Any prefix is spread evenly, so few points do not clump the way
/// pseudo-random jitter can, and the plot is the same on every run.
pub fn jitter(i: usize) -> f64 {
    let (mut n, mut denom, mut v) = (i + 1, 1.0, 0.0);
    while n > 0 {
        denom *= 2.0;
        v += (n % 2) as f64 / denom;
        n /= 2;
    }
    v - 0.5
}

/// Sideways offsets in (−0.5, 0.5) for `n` points of one strip: the first `n` [`jitter`]
/// values, shifted so that their span is centred (two points sit at ±0.125, not at 0 and
/// −0.25).
pub fn strip_offsets(n: usize) -> Vec<f64> {
    let offsets: Vec<f64> = (0..n).map(jitter).collect();
    let (lo, hi) = offsets
        .iter()
        .fold((0.0f64, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    let mid = (lo + hi) / 2.0;
    offsets.into_iter().map(|x| x - mid).collect()
}

/// `results --plot`: LLC ± SEM against x, one colour per series.
pub fn plot_llc_vs(
    path: &Path,
    x_label: &str,
    scale: &XScale,
    series: &[LlcSeries],
) -> Result<(), PlotError> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let ys = points().flat_map(|p| {
        let sem = p.sem.filter(|s| s.is_finite()).unwrap_or(0.0);
        [p.llc_mean - sem, p.llc_mean + sem]
    });
    let (y0, y1) = padded_range(ys).ok_or_else(|| no_data(path, "no finite LLC estimate"))?;
    let xs: Vec<f64> = points().map(|p| p.x).filter(|x| x.is_finite()).collect();
    if xs.is_empty() {
        return Err(no_data(path, "no finite x value"));
    }
    let title = format!("LLC estimate against {x_label}");
    match scale {
        XScale::Numeric => {
            let subtitle = "points: one sampler run each, bars: ±1 SEM, line: mean per x";
            render(path, SIZE, &title, subtitle, |area| {
                with_legend(area, series, |chart_area| {
                    draw_numeric(chart_area, &xs, y0..y1, x_label, series)
                })
            })
        }
        XScale::Categorical(labels) => {
            let subtitle = "points: one sampler run each (spread sideways), bars: ±1 SEM, \
                            dash: mean per category";
            render(path, SIZE, &title, subtitle, |area| {
                with_legend(area, series, |chart_area| {
                    draw_categorical(chart_area, labels, y0..y1, x_label, series)
                })
            })
        }
    }
}

/// Width of the legend column of [`plot_llc_vs`].
const LEGEND_WIDTH: u32 = 150;

/// Splits off the legend column, draws the chart into the rest, then the legend.
fn with_legend(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[LlcSeries],
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
) -> DrawResult {
    let (width, _) = area.dim_in_pixel();
    let (chart_area, legend_area) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    draw(&chart_area)?;
    let centred = font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center));
    legend_area.draw_text("sampler", &centred, (8, 28))?;
    for (i, s) in series.iter().enumerate() {
        let y = 64 + 30 * i as i32;
        legend_area.draw(&Circle::new((16, y), 6, color(i).filled()))?;
        legend_area.draw_text(&s.name, &centred, (30, y))?;
    }
    Ok(())
}

fn draw_numeric(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    xs: &[f64],
    y_range: std::ops::Range<f64>,
    x_label: &str,
    series: &[LlcSeries],
) -> DrawResult {
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    let log_x = lo > 0.0 && hi / lo > 20.0;
    // All series together spread over less than the axis padding, so none is clipped.
    let step = 1.0 / (series.len().max(2) - 1) as f64;
    let builder = chart_builder(area);
    if log_x {
        let (l, h) = log_range(xs.iter().copied()).ok_or("x is positive")?;
        // Dodge in log space: at most 0.08 of a decade in all (the axis pads 0.1).
        let dodge = move |x: f64, i: f64| x * 10f64.powf(0.08 * step * i);
        draw_numeric_points(builder, (l..h).log_scale(), y_range, x_label, series, dodge)
    } else {
        let (l, h) = padded_range(xs.iter().copied()).ok_or("x is finite")?;
        // At most 4 % of the axis in all (it pads 5 % on each side).
        let dodge = move |x: f64, i: f64| x + 0.04 * step * (h - l) * i;
        draw_numeric_points(builder, l..h, y_range, x_label, series, dodge)
    }
}

fn draw_numeric_points<XR>(
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
        chart.draw_series(
            pts.iter()
                .filter_map(|p| error_bar(dodge(p.x, offset), p, c)),
        )?;
        let means = mean_per_x(&pts);
        chart.draw_series(LineSeries::new(
            means.iter().map(|&(x, m)| (dodge(x, offset), m)),
            c.stroke_width(2),
        ))?;
        // The means as open diamonds, so a mean between two runs is visible as such.
        chart.draw_series(means.iter().map(|&(x, m)| {
            EmptyElement::at((dodge(x, offset), m))
                + PathElement::new(
                    vec![(-8, 0), (0, -8), (8, 0), (0, 8), (-8, 0)],
                    c.stroke_width(2),
                )
        }))?;
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((dodge(p.x, offset), p.llc_mean), 5, c.filled())),
        )?;
    }
    Ok(())
}

fn error_bar(
    x: f64,
    p: &LlcPoint,
    c: RGBColor,
) -> Option<ErrorBar<f64, f64, plotters::element::ErrorBarOrientV<f64, f64>>> {
    let sem = p.sem.filter(|s| s.is_finite())?;
    Some(ErrorBar::new_vertical(
        x,
        p.llc_mean - sem,
        p.llc_mean,
        p.llc_mean + sem,
        c.stroke_width(2),
        10,
    ))
}

/// The mean LLC at each distinct x of points sorted by x.
fn mean_per_x(pts: &[LlcPoint]) -> Vec<(f64, f64)> {
    pts.chunk_by(|a, b| a.x == b.x)
        .map(|same_x| {
            let mean = same_x.iter().map(|p| p.llc_mean).sum::<f64>() / same_x.len() as f64;
            (same_x[0].x, mean)
        })
        .collect()
}

/// Share of a category's width that its samplers' slots fill together.
const CATEGORY_FILL: f64 = 0.8;

/// Tick labels that fit: every `every`-th category is named, each cut to `chars` characters.
fn label_layout(labels: &[String], axis_px: u32) -> (usize, usize) {
    // About 10 px per character at TICK_PX; a label needs a little air on both sides.
    let per_category = axis_px as f64 / labels.len().max(1) as f64;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let chars = ((per_category / 10.0).floor() as usize).max(4);
    let shown = longest.min(chars as f64);
    let every = ((shown * 10.0 + 12.0) / per_category).ceil().max(1.0) as usize;
    (every, chars)
}

fn short_label(label: &str, chars: usize) -> String {
    if label.chars().count() <= chars {
        label.to_string()
    } else {
        let cut: String = label.chars().take(chars.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn draw_categorical(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    labels: &[String],
    y_range: std::ops::Range<f64>,
    x_label: &str,
    series: &[LlcSeries],
) -> DrawResult {
    let k = labels.len().max(1);
    let x_range = TickedAxis {
        range: -0.5..k as f64 - 0.5,
        ticks: (0..k).map(|i| i as f64).collect(),
    };
    let mut chart = chart_builder(area).build_cartesian_2d(x_range, y_range)?;
    let (every, chars) = label_layout(labels, chart.plotting_area().dim_in_pixel().0);
    let tick = |x: &f64| {
        let i = x.round();
        if i < 0.0 || !(i as usize).is_multiple_of(every) {
            return String::new();
        }
        labels
            .get(i as usize)
            .map(|l| short_label(l, chars))
            .unwrap_or_default()
    };
    style_mesh_with(
        &mut chart,
        x_label,
        "LLC estimate (llc_mean ± SEM)",
        &tick,
        &fmt_tick,
    )?;
    // Points per series and category; a category shares its width among the series that
    // have runs in it (with x = sampler, each category is one sampler's alone).
    let mut cells: Vec<Vec<Vec<&LlcPoint>>> = vec![vec![Vec::new(); series.len()]; k];
    for (i, s) in series.iter().enumerate() {
        for p in &s.points {
            if p.llc_mean.is_finite() && p.x >= 0.0 && (p.x as usize) < k {
                cells[p.x as usize][i].push(p);
            }
        }
    }
    for (cat, by_series) in cells.iter().enumerate() {
        let present: Vec<usize> = (0..series.len())
            .filter(|&i| !by_series[i].is_empty())
            .collect();
        let slot = CATEGORY_FILL / present.len().max(1) as f64;
        let centre = (present.len() as f64 - 1.0) / 2.0;
        for (rank, &i) in present.iter().enumerate() {
            let (c, pts) = (color(i), &by_series[i]);
            let base = cat as f64 + (rank as f64 - centre) * slot;
            // Jitter within 70 % of the slot, so neighbouring samplers never mix.
            let xs: Vec<f64> = strip_offsets(pts.len())
                .into_iter()
                .map(|o| base + 0.7 * slot * o)
                .collect();
            chart.draw_series(pts.iter().zip(&xs).filter_map(|(p, &x)| error_bar(x, p, c)))?;
            chart.draw_series(
                pts.iter()
                    .zip(&xs)
                    .map(|(p, &x)| Circle::new((x, p.llc_mean), 5, c.filled())),
            )?;
            let mean = pts.iter().map(|p| p.llc_mean).sum::<f64>() / pts.len() as f64;
            let half = 0.45 * slot;
            chart.draw_series(LineSeries::new(
                [(base - half, mean), (base + half, mean)],
                c.stroke_width(4),
            ))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testutil::{TempDir, assert_png};

    #[test]
    fn jitter_starts_centred_and_fills_evenly() {
        assert_eq!(jitter(0), 0.0);
        for bits in 1..8 {
            let n = (1usize << bits) - 1;
            let mut xs: Vec<f64> = (0..n).map(jitter).collect();
            assert!(xs.iter().all(|x| (-0.5..0.5).contains(x)), "{xs:?}");
            xs.sort_by(f64::total_cmp);
            // 2^b − 1 points sit exactly 2^−b apart: no two clump, no gap is left.
            let gap = 1.0 / (1usize << bits) as f64;
            for w in xs.windows(2) {
                assert!((w[1] - w[0] - gap).abs() < 1e-12, "{bits}: {xs:?}");
            }
        }
    }

    #[test]
    fn strips_are_centred_and_stay_in_their_slot() {
        assert_eq!(strip_offsets(1), vec![0.0]);
        assert_eq!(strip_offsets(2), vec![0.125, -0.125]);
        for n in 1..40 {
            let xs = strip_offsets(n);
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert!((lo + hi).abs() < 1e-12, "{n}: {xs:?}");
            assert!(hi < 0.5, "{n}: {xs:?}");
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            assert!(sorted.windows(2).all(|w| w[1] > w[0]), "{n}: distinct");
        }
    }

    #[test]
    fn labels_are_cut_and_thinned_to_fit() {
        let few: Vec<String> = ["tanh", "relu"].map(String::from).to_vec();
        assert_eq!(label_layout(&few, 700), (1, 35));
        let many: Vec<String> = (0..60).map(|i| format!("{}", 1000 + i)).collect();
        let (every, chars) = label_layout(&many, 600);
        // 10 px per category: a 4-character label needs 52 px, i.e. every 6th.
        assert_eq!((every, chars), (6, 4));
        assert_eq!(short_label("identity", 4), "ide…");
        assert_eq!(short_label("tanh", 4), "tanh");
    }

    fn series(points: &[(f64, f64)]) -> Vec<LlcSeries> {
        vec![
            LlcSeries {
                name: "hmc".into(),
                points: points
                    .iter()
                    .map(|&(x, y)| LlcPoint {
                        x,
                        llc_mean: y,
                        sem: Some(0.2),
                    })
                    .collect(),
            },
            LlcSeries {
                name: "sgld".into(),
                points: points
                    .iter()
                    .map(|&(x, y)| LlcPoint {
                        x,
                        llc_mean: y + 0.5,
                        sem: None,
                    })
                    .collect(),
            },
        ]
    }

    #[test]
    fn numeric_and_categorical_plots_are_real_pngs() {
        let tmp = TempDir::new("plot-llc-vs");
        let path = tmp.path().join("llc_vs.png");
        let pts = [(10.0, 3.0), (10.0, 3.4), (100.0, 5.0), (1000.0, 9.0)];
        plot_llc_vs(&path, "p", &XScale::Numeric, &series(&pts)).unwrap();
        assert_png(&path, SIZE);
        let cats = XScale::Categorical(vec!["identity".into(), "relu".into(), "tanh".into()]);
        let pts = [(0.0, 3.0), (0.0, 3.4), (0.0, 3.1), (1.0, 5.0), (2.0, 9.0)];
        plot_llc_vs(&path, "activation", &cats, &series(&pts)).unwrap();
        assert_png(&path, SIZE);
    }
}
