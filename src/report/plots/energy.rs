//! `energy.png` (HMC and NUTS, the samplers that record the Hamiltonian per draw), ArviZ's
//! `plot_energy` (Betancourt 2016): the marginal energy distribution (energy minus its mean)
//! and the energy transition distribution (differences of consecutive energies within a chain),
//! as two overlaid densities. When the transition density is much narrower than the marginal
//! one, resampling the momentum moves the chain between energy levels too slowly to explore the
//! posterior's tails; the BFMI in the subtitle measures the same thing per chain.
//!
//! In: the `[chain, draw]` `energy` statistic of trace.npz. Out: one PNG. [`bfmi`] is a pure
//! function.

use std::path::Path;

use plotters::prelude::*;

use super::density::{density_on, linspace};
use super::{chart_builder, no_data, style_mesh};
use crate::report::PlotError;
use crate::report::style::{LEGEND_PX, SIZE, color, font, padded_range, render};

/// Below this BFMI the energy is explored poorly (Betancourt's and ArviZ's threshold).
pub const BFMI_LOW: f64 = 0.3;

/// The Bayesian fraction of missing information of one chain's energies E_t:
/// Σ_t (E_t − E_{t−1})² / Σ_t (E_t − Ē)² (Betancourt 2016, eq. 7; ArviZ's `bfmi` divides means
/// instead of sums, which is larger by n/(n − 1)). Non-finite energies are left out; NaN when
/// fewer than 2 remain or they do not vary.
pub fn bfmi(energy: &[f64]) -> f64 {
    let e: Vec<f64> = energy.iter().copied().filter(|v| v.is_finite()).collect();
    if e.len() < 2 {
        return f64::NAN;
    }
    let mean = e.iter().sum::<f64>() / e.len() as f64;
    let spread: f64 = e.iter().map(|v| (v - mean).powi(2)).sum();
    let steps: f64 = e.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum();
    if spread > 0.0 {
        steps / spread
    } else {
        f64::NAN
    }
}

/// Energy minus its mean over all chains, and the within-chain energy differences, pooled.
fn marginal_and_transition(energy: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let finite =
        |c: &Vec<f64>| -> Vec<f64> { c.iter().copied().filter(|v| v.is_finite()).collect() };
    let chains: Vec<Vec<f64>> = energy.iter().map(finite).collect();
    let n: usize = chains.iter().map(Vec::len).sum();
    let mean = chains.iter().flatten().sum::<f64>() / n.max(1) as f64;
    let marginal = chains.iter().flatten().map(|v| v - mean).collect();
    let transition = chains
        .iter()
        .flat_map(|c| c.windows(2).map(|w| w[1] - w[0]))
        .collect();
    (marginal, transition)
}

/// `energy.png`: the two energy densities overlaid, the BFMI of every chain in the subtitle.
pub fn plot_energy(path: &Path, label: &str, energy: &[Vec<f64>]) -> Result<(), PlotError> {
    let (marginal, transition) = marginal_and_transition(energy);
    let (x0, x1) = padded_range(marginal.iter().chain(&transition).copied())
        .ok_or_else(|| no_data(path, "no finite energy was recorded"))?;
    let grid = linspace(x0, x1, 300);
    let curves: Vec<(&str, Vec<f64>)> = [
        ("marginal energy E − mean(E)", density_on(&marginal, &grid)),
        ("energy transition ΔE", density_on(&transition, &grid)),
    ]
    .into_iter()
    .filter_map(|(name, d)| Some((name, d?)))
    .collect();
    if curves.is_empty() {
        return Err(no_data(
            path,
            "the energy does not vary: no density to draw",
        ));
    }
    let d_max = curves
        .iter()
        .flat_map(|c| c.1.iter())
        .fold(0.0, |m: f64, &v| m.max(v));
    let bfmis: Vec<f64> = energy.iter().map(|c| bfmi(c)).collect();
    let low = bfmis.iter().filter(|b| **b < BFMI_LOW).count();
    let listed: Vec<String> = bfmis
        .iter()
        .map(|b| {
            if b.is_finite() {
                format!("{b:.2}")
            } else {
                "n/a".into()
            }
        })
        .collect();
    let verdict = if low > 0 {
        format!("   {low} chain(s) below {BFMI_LOW}: energy explored poorly")
    } else {
        format!("   (below {BFMI_LOW}: energy explored poorly)")
    };
    let title = format!("Energy: {label}");
    let subtitle = format!("BFMI per chain: {}{verdict}", listed.join(", "));
    render(path, SIZE, &title, &subtitle, |area| {
        let mut chart = chart_builder(area).build_cartesian_2d(x0..x1, 0.0..d_max * 1.1)?;
        style_mesh(&mut chart, "energy (centred) and energy change", "density")?;
        for (i, (name, d)) in curves.iter().enumerate() {
            let c = color(i);
            let outline: Vec<(f64, f64)> = grid.iter().copied().zip(d.iter().copied()).collect();
            let mut filled = outline.clone();
            filled.extend([(x1, 0.0), (x0, 0.0)]);
            // Light fills, so the overlap of the two stays readable as two curves.
            chart.draw_series([Polygon::new(filled, c.mix(0.12).filled())])?;
            chart
                .draw_series(LineSeries::new(outline, c.stroke_width(3)))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 24, y + 6)], c.mix(0.6).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(LEGEND_PX))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plots::ENERGY_PNG;
    use crate::report::testutil::{TempDir, assert_png, chains};

    #[test]
    fn bfmi_matches_a_hand_computation() {
        // E = 1, 3, 2, 4: mean 2.5; squared steps 4 + 1 + 4 = 9; squared deviations
        // 2.25 + 0.25 + 0.25 + 2.25 = 5. BFMI = 9 / 5.
        assert!((bfmi(&[1.0, 3.0, 2.0, 4.0]) - 1.8).abs() < 1e-12);
        // A non-finite energy is left out: the same chain.
        assert!((bfmi(&[1.0, 3.0, f64::INFINITY, 2.0, 4.0]) - 1.8).abs() < 1e-12);
        // A slow drift has small steps against its spread: low BFMI.
        let drift: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(bfmi(&drift) < 0.01, "{}", bfmi(&drift));
        assert!(bfmi(&[2.0, 2.0, 2.0]).is_nan());
        assert!(bfmi(&[2.0]).is_nan());
    }

    #[test]
    fn independent_energies_have_bfmi_near_two() {
        // For independent draws E[(E_t − E_{t−1})²] = 2 Var(E): BFMI → 2. A deterministic,
        // well-mixed sequence (a full-period LCG) stands in for independent draws.
        let mut x: u64 = 1;
        let e: Vec<f64> = (0..4096)
            .map(|_| {
                x = (x * 1_103_515_245 + 12_345) % (1 << 31);
                x as f64 / (1u64 << 31) as f64
            })
            .collect();
        let b = bfmi(&e);
        assert!((b - 2.0).abs() < 0.15, "{b}");
    }

    #[test]
    fn energy_plot_is_a_real_png() {
        let tmp = TempDir::new("plot-energy");
        let path = tmp.path().join(ENERGY_PNG);
        plot_energy(&path, "run_nuts_0123abcd", &chains(4, 1000)).unwrap();
        assert_png(&path, SIZE);
    }
}
