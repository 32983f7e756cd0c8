//! `adaptation.png` (HMC, NUTS): how warmup found its step size, from the per-step warmup
//! statistics the sampler recorded (`warmup_acceptance`, `warmup_step_size`, one vector per
//! chain). Out: one PNG.

use std::path::Path;

use plotters::prelude::*;

use super::{chart_builder, finite_points, no_data, not_recorded, style_mesh};
use crate::report::PlotError;
use crate::report::style::{SIZE, color, log_range, render};

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

/// `adaptation.png` (HMC, NUTS): acceptance probability (top) and step size (bottom, log scale) per
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
    let title = format!("Warmup adaptation: {label}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::ADAPTATION_PNG;
    use crate::report::testutil::{TempDir, assert_png};

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
}
