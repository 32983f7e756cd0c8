//! `training_loss.png` of a target: meta.json's `training_loss` (step, loss) in, one PNG out.

use std::path::Path;

use plotters::prelude::*;

use super::{chart_builder, finite_points, no_data, style_mesh};
use crate::report::PlotError;
use crate::report::style::{SIZE, color, log_range, padded_range, render};

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
