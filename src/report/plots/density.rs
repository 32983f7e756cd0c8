//! The numerics shared by several plots, as pure functions: a Gaussian kernel density estimate
//! with Silverman's bandwidth, an evenly spaced grid, and the stride that thins a long trace.
//!
//! In: plain slices of values (non-finite ones are ignored). Out: numbers and vectors; nothing
//! is drawn here.

/// Silverman's rule of thumb, h = 0.9 · min(σ, IQR/1.34) · n^(−1/5), over the finite values
/// (σ the sample standard deviation). It is robust to the heavy right tail LLC draws often have,
/// where Scott's 1.06·σ oversmooths the peak. Falls back to σ when the IQR is 0 (many tied
/// values); `None` for fewer than 2 values or when they are all equal (no width to estimate).
pub fn silverman_bandwidth(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n < 2 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    v.sort_by(f64::total_cmp);
    let iqr = quantile(&v, 0.75) - quantile(&v, 0.25);
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    (spread > 0.0).then(|| 0.9 * spread * (n as f64).powf(-0.2))
}

/// The `q` quantile of sorted values, linearly interpolated (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The Gaussian kernel density of the finite `values` with bandwidth `h`, evaluated at each
/// point of `grid`: f(x) = 1/(n h) Σᵢ φ((x − xᵢ)/h), φ the standard normal density. It
/// integrates to 1 over the real line. All zeros when there are no finite values or `h` is not
/// positive.
pub fn gaussian_kde(values: &[f64], grid: &[f64], h: f64) -> Vec<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() || !(h > 0.0 && h.is_finite()) {
        return vec![0.0; grid.len()];
    }
    let norm = 1.0 / (finite.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt());
    grid.iter()
        .map(|&x| {
            norm * finite
                .iter()
                .map(|&xi| (-0.5 * ((x - xi) / h).powi(2)).exp())
                .sum::<f64>()
        })
        .collect()
}

/// `n` evenly spaced points from `lo` to `hi`, both included (`n` ≥ 2).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

/// The stride that keeps at most `max_points` of `len` points: every k-th draw is drawn.
/// Thinning, rather than drawing every draw, keeps 4 × 10,000 draws from becoming a solid
/// band of ink in which no chain can be followed.
pub fn thin_stride(len: usize, max_points: usize) -> usize {
    len.div_ceil(max_points.max(1)).max(1)
}

/// A density of one chain (or pooled draws) on `grid`, with its own bandwidth; `None` when the
/// values have no spread.
pub fn density_on(values: &[f64], grid: &[f64]) -> Option<Vec<f64>> {
    let h = silverman_bandwidth(values)?;
    Some(gaussian_kde(values, grid, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// φ(z), written out independently of the code under test.
    fn phi(z: f64) -> f64 {
        (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    #[test]
    fn kde_matches_a_hand_computation() {
        // Two points at ±1, h = 1: f(0) = (φ(1) + φ(1)) / 2 = φ(1); f(1) = (φ(0) + φ(2)) / 2.
        let f = gaussian_kde(&[-1.0, 1.0], &[0.0, 1.0], 1.0);
        assert!((f[0] - phi(1.0)).abs() < 1e-15, "{f:?}");
        assert!((f[1] - (phi(0.0) + phi(2.0)) / 2.0).abs() < 1e-15, "{f:?}");
        // One point, h = 0.5: a normal density with sd 0.5, f(0.5) = φ(1) / 0.5.
        let g = gaussian_kde(&[0.0, f64::NAN], &[0.5], 0.5);
        assert!((g[0] - phi(1.0) / 0.5).abs() < 1e-15, "{g:?}");
    }

    #[test]
    fn kde_integrates_to_one() {
        let values: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let h = silverman_bandwidth(&values).unwrap();
        let grid = linspace(-10.0, 20.0, 3001);
        let f = gaussian_kde(&values, &grid, h);
        let dx = grid[1] - grid[0];
        // Trapezoid rule on a grid 40 bandwidths wide: the tails beyond are < 1e-9.
        let integral = dx * (f.iter().sum::<f64>() - 0.5 * (f[0] + f[f.len() - 1]));
        assert!((integral - 1.0).abs() < 1e-6, "{integral}");
    }

    #[test]
    fn bandwidth_follows_silverman() {
        // 1..=5: sd = √2.5, IQR = 4 − 2 = 2, IQR/1.34 = 1.4925 < √2.5 = 1.5811.
        let h = silverman_bandwidth(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        let want = 0.9 * (2.0 / 1.34) * 5f64.powf(-0.2);
        assert!((h - want).abs() < 1e-12, "{h} vs {want}");
        // IQR 0 (mostly ties): sd is used, so one outlier still gives a width.
        let ties = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 9.0];
        let mean = 2.0;
        let sd = (ties.iter().map(|x: &f64| (x - mean).powi(2)).sum::<f64>() / 7.0).sqrt();
        let h = silverman_bandwidth(&ties).unwrap();
        assert!((h - 0.9 * sd * 8f64.powf(-0.2)).abs() < 1e-12);
        assert_eq!(silverman_bandwidth(&[2.0, 2.0]), None);
        assert_eq!(silverman_bandwidth(&[2.0, f64::NAN]), None);
    }

    #[test]
    fn thinning_keeps_at_most_the_budget() {
        for len in [0, 1, 499, 500, 501, 2000, 10_001] {
            let k = thin_stride(len, 500);
            assert!(len.div_ceil(k) <= 500, "{len}: stride {k}");
            // …and not fewer than needed: one less would exceed the budget.
            assert!(k == 1 || len.div_ceil(k - 1) > 500, "{len}: stride {k}");
        }
    }
}
