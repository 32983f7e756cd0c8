//! `llc_convergence.png`: the running LLC mean over all chains with a ±1.96·SEM band, against
//! the gradient evaluations spent (left) and against the wall time spent (right). A curve that
//! is still moving at the right edge says more sampling would still change the estimate; the two
//! x axes say what more would cost.
//!
//! In: the `[chain, draw]` LLC draws, the gradient evaluations per draw and the run's sampling
//! wall time. Out: one PNG.
//!
//! Per-draw times are not recorded, so the time axis maps draw t linearly onto the measured
//! wall time of the whole sampling call (t/draws × seconds; warmup and tuning are spread over
//! the draws the same way as on the gradient axis). The caption says so.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;

use super::{chart_builder, finite_mean, fmt_stat, no_data, not_recorded, style_mesh};
use crate::report::PlotError;
use crate::report::style::{DrawResult, WIDE, color, padded_range, render};

/// Running mean over all chains after the first `t` draws of each, with its Monte Carlo
/// standard error (`diagnostics::mcse_mean`, the same SEM as analysis.json's llc_sem), at
/// about 100 evenly spaced values of `t`.
///
/// Each SEM is an ESS, FFTs of every chain's prefix, so the 100 of them cost about 50 times
/// the run's own ESS: 1.4 s for 4 chains × 200,000 draws on one thread, where sampling them
/// (a deep linear network, HMC) took 2.0 s. They are independent, so they run on the job's
/// threads, and rayon keeps their order: with 2 threads that job took 2.98 s in all.
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
    ts.into_par_iter()
        .filter_map(|t| {
            let prefix: Vec<Vec<f64>> = llc.iter().map(|c| c[..t].to_vec()).collect();
            let mean = finite_mean(&prefix)?;
            let sem = crate::diagnostics::mcse_mean(&prefix);
            Some((t, mean, sem))
        })
        .collect()
}

/// `llc_convergence.png`. `grad_evals_per_draw` is the cost of one draw of one chain, warmup
/// amortized (the left x axis counts all chains); `sampling_secs` is the wall time of the whole
/// sampling call, mapped linearly onto the draws for the right panel (`None`, or not positive:
/// that panel says the time was not recorded).
pub fn plot_llc_convergence(
    path: &Path,
    label: &str,
    llc: &[Vec<f64>],
    grad_evals_per_draw: f64,
    sampling_secs: Option<f64>,
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
    let &(t_last, final_mean, final_sem) = estimate.last().expect("checked non-empty");
    let (ys, band_ys): (Vec<f64>, Vec<f64>) = (
        estimate.iter().map(|e| e.1).collect(),
        estimate
            .iter()
            .filter(|e| e.2.is_finite())
            .flat_map(|&(_, m, s)| [m - 1.96 * s, m + 1.96 * s])
            .collect(),
    );
    let (y0, y1) = padded_range(ys.into_iter().chain(band_ys))
        .ok_or_else(|| no_data(path, "no finite running mean"))?;
    let cost = grad_evals_per_draw * llc.len() as f64;
    let secs = sampling_secs.filter(|s| s.is_finite() && *s > 0.0);
    let title = format!("LLC running mean: {label}");
    let time_note = match secs {
        Some(s) => format!("   time: {s:.1} s of sampling spread evenly over the draws"),
        None => String::new(),
    };
    let subtitle = format!(
        "line: running mean, band: ±1.96·SEM   final {} ± {}   {} chains × {t_last} draws{time_note}",
        fmt_stat(final_mean, 3),
        fmt_stat(1.96 * final_sem, 3),
        llc.len()
    );
    render(path, WIDE, &title, &subtitle, |area| {
        let (w, _) = area.dim_in_pixel();
        let (left, right) = area.split_horizontally(w / 2);
        let grads = |t: usize| t as f64 * cost;
        draw_panel(
            &left,
            &estimate,
            &grads,
            (y0, y1),
            "gradient evaluations (all chains, warmup included)",
        )?;
        match secs {
            Some(s) => {
                let time = |t: usize| s * t as f64 / t_last as f64;
                draw_panel(
                    &right,
                    &estimate,
                    &time,
                    (y0, y1),
                    "wall time of sampling (s, linear in draws)",
                )
            }
            None => not_recorded(&right, "sampling wall time was not recorded"),
        }
    })
}

/// One panel: the band and the running mean against `x(t)`.
fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    estimate: &[(usize, f64, f64)],
    x: &dyn Fn(usize) -> f64,
    (y0, y1): (f64, f64),
    x_desc: &str,
) -> DrawResult {
    let (x0, x1) = (x(estimate[0].0), x(estimate[estimate.len() - 1].0));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut chart = chart_builder(area).build_cartesian_2d(x0..x1, y0..y1)?;
    style_mesh(&mut chart, x_desc, "running mean of LLC")?;
    let blue = color(0);
    let band: Vec<(f64, f64, f64)> = estimate
        .iter()
        .filter(|(_, _, sem)| sem.is_finite())
        .map(|&(t, m, sem)| (x(t), m - 1.96 * sem, m + 1.96 * sem))
        .collect();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::CONVERGENCE_PNG;
    use crate::report::testutil::{TempDir, assert_png, chains};

    #[test]
    fn convergence_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-conv");
        let path = tmp.path().join(CONVERGENCE_PNG);
        plot_llc_convergence(&path, "run_hmc_0123abcd", &chains(4, 400), 10.0, Some(3.5)).unwrap();
        assert_png(&path, WIDE);
        // Without a wall time the right panel says so; the plot is still drawn.
        plot_llc_convergence(&path, "run_hmc_0123abcd", &chains(4, 400), 10.0, None).unwrap();
        assert_png(&path, WIDE);
    }

    #[test]
    fn running_estimate_ends_at_the_full_mean() {
        let llc = chains(3, 250);
        let est = running_estimate(&llc);
        let &(t, mean, sem) = est.last().unwrap();
        assert_eq!(t, 250);
        // In order of t, whatever order the threads computed them in.
        assert!(est.windows(2).all(|w| w[0].0 < w[1].0));
        assert!((mean - finite_mean(&llc).unwrap()).abs() < 1e-12);
        assert!((sem - crate::diagnostics::mcse_mean(&llc)).abs() < 1e-12);
    }
}
