//! Oracle values of the learning coefficient that sampler estimates are checked against.
//!
//! Pure functions of architecture numbers in, one `f64` out; no I/O. Used by the samplers'
//! tests and available to reports that compare estimates with theory (ARCHITECTURE.md §5):
//!
//! * [`aoyagi_deep_linear_llc`]: the learning coefficient of a deep linear network whose true
//!   product matrix has rank r (Aoyagi 2024).
//! * [`regular_expected_llc`]: the exact expectation of the LLC estimator for a regular model
//!   with a quadratic loss at finite nβ and localization γ (tends to d/2 as nβ → ∞), and
//!   [`expected_llc_from_hessian`], the same from the Hessian itself.

use ndarray::{Array2, ArrayView2};

use crate::numeric::linalg::{Cholesky, LinalgError};

/// λ of the deep linear network y = W_L⋯W_1 x with layer widths `widths` = [H_1 (input), …,
/// H_{L+1} (output)] and a true product of rank `rank` (Aoyagi 2024, as stated in ARCHITECTURE.md §5).
///
/// With Δ_j = H_j − r sorted ascending, Σ is the shortest prefix of ℓ+1 ≥ 2 of them with
/// max Δ_Σ < min Δ_rest, S = ΣΔ_Σ ≥ ℓ·max Δ_Σ and S < ℓ·min Δ_rest (the conditions on the
/// rest are dropped when it is empty); with M̄ = ⌈S/ℓ⌉ and a = S − (M̄−1)ℓ,
///
///   λ = (−r² + r(H_1 + H_{L+1}))/2 + a(ℓ−a)/(4ℓ) − (ℓ(ℓ−1)/4)(S/ℓ)² + ½ Σ_{i<j∈Σ} Δ_iΔ_j.
///
/// Returns NaN when the inputs describe no such network (fewer than 2 widths, a zero width, or
/// a rank above the narrowest width), so a bad oracle can never pass for a number.
pub fn aoyagi_deep_linear_llc(widths: &[usize], rank: usize) -> f64 {
    if widths.len() < 2 || widths.contains(&0) || widths.iter().any(|&h| h < rank) {
        return f64::NAN;
    }
    let r = rank as i64;
    let mut delta: Vec<i64> = widths.iter().map(|&h| h as i64 - r).collect();
    delta.sort_unstable();
    for len in 2..=delta.len() {
        let (sigma, rest) = delta.split_at(len);
        let ell = (len - 1) as i64;
        let max_sigma = sigma[len - 1];
        let s: i64 = sigma.iter().sum();
        let fits_rest = match rest.first() {
            Some(&min_rest) => max_sigma < min_rest && s < ell * min_rest,
            None => true,
        };
        if !(fits_rest && s >= ell * max_sigma) {
            continue;
        }
        // M̄ = ⌈S/ℓ⌉ for S ≥ 0, ℓ ≥ 1.
        let m_bar = (s + ell - 1) / ell;
        let a = s - (m_bar - 1) * ell;
        let mut pairs = 0i64;
        for i in 0..len {
            for j in i + 1..len {
                pairs += sigma[i] * sigma[j];
            }
        }
        let (h1, hl) = (widths[0] as f64, widths[widths.len() - 1] as f64);
        let (r, s, ell, a) = (r as f64, s as f64, ell as f64, a as f64);
        return (-r * r + r * (h1 + hl)) / 2.0 + a * (ell - a) / (4.0 * ell)
            - (ell * (ell - 1.0) / 4.0) * (s / ell).powi(2)
            + 0.5 * pairs as f64;
    }
    f64::NAN
}

/// E[LLC estimate] for a regular model with quadratic loss whose Hessian at w* has eigenvalues
/// `hessian_eigs`: ½ Σᵢ nβhᵢ/(nβhᵢ + γ). Exact at any nβ (the localized tempered posterior is
/// then Gaussian with precision nβH + γI); tends to d/2 as nβ → ∞.
pub fn regular_expected_llc(hessian_eigs: &[f64], n_beta: f64, gamma: f64) -> f64 {
    0.5 * hessian_eigs
        .iter()
        .map(|&h| n_beta * h / (n_beta * h + gamma))
        .sum::<f64>()
}

/// E[LLC estimate] = ½ tr(nβH (nβH + γI)⁻¹) for a quadratic loss with Hessian `hessian` at w*:
/// the localized tempered posterior is then Gaussian with precision nβH + γI. Computed as
/// ½(d − γ tr((nβH + γI)⁻¹)), which equals ½ Σᵢ nβhᵢ/(nβhᵢ + γ) over H's eigenvalues
/// ([`regular_expected_llc`]) without an eigensolver.
pub fn expected_llc_from_hessian(
    hessian: ArrayView2<'_, f64>,
    n_beta: f64,
    gamma: f64,
) -> Result<f64, LinalgError> {
    let d = hessian.nrows();
    let precision = hessian.mapv(|h| n_beta * h) + Array2::<f64>::eye(d) * gamma;
    let inverse_trace = Cholesky::factor(precision.view())?.inverse_trace();
    Ok(0.5 * (d as f64 - gamma * inverse_trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The formula's terms are quarters of small integers, exact in f64: the examples must come
    // out exactly, so the tolerance is only a guard against reordering of the additions.
    const EXACT: f64 = 1e-12;

    #[test]
    fn aoyagi_examples_from_the_design() {
        let cases: [(&[usize], usize, f64); 6] = [
            (&[3, 2, 3], 0, 2.5),
            (&[4, 4, 4, 4], 0, 5.5),
            (&[5, 3, 4, 6], 1, 8.0),
            (&[8, 8, 8], 2, 27.5),
            (&[4, 3, 2], 2, 4.0),
            (&[3, 3, 3], 3, 4.5),
        ];
        for (widths, rank, want) in cases {
            let got = aoyagi_deep_linear_llc(widths, rank);
            assert!(
                (got - want).abs() < EXACT,
                "{widths:?} r={rank}: {got} != {want}"
            );
        }
    }

    #[test]
    fn aoyagi_two_layer_full_rank_is_regular() {
        // A single weight matrix (no hidden layer) is a regular model: λ = H1·H2/2.
        for (a, b) in [(1, 1), (3, 2), (5, 7)] {
            let got = aoyagi_deep_linear_llc(&[a, b], a.min(b));
            assert!(
                (got - (a * b) as f64 / 2.0).abs() < EXACT,
                "[{a},{b}]: {got}"
            );
        }
    }

    /// Aoyagi and Watanabe's (2005) λ of reduced-rank regression: one hidden layer, input M,
    /// hidden H, output N, true rank r. Written from that paper's four cases, independently of
    /// the general formula above.
    fn reduced_rank_regression(m: usize, h: usize, n: usize, r: usize) -> f64 {
        let (m, h, n, r) = (m as f64, h as f64, n as f64, r as f64);
        if m + n < h + r {
            m * n / 2.0
        } else if m + h < n + r {
            (h * m - h * r + n * r) / 2.0
        } else if n + h < m + r {
            (h * n - h * r + m * r) / 2.0
        } else {
            let even = (m + h + n + r) as i64 % 2 == 0;
            let t = 2.0 * (h + r) * (m + n) - (m - n).powi(2) - (h + r).powi(2);
            (t + if even { 0.0 } else { 1.0 }) / 8.0
        }
    }

    #[test]
    fn aoyagi_agrees_with_reduced_rank_regression_on_every_small_two_layer_network() {
        // Every shape up to width 9 and every rank: 2,754 networks. The general formula's
        // conditions S ≥ ℓ·max Δ_Σ and S < ℓ·min Δ_rest decide the answer on 210 of them
        // ([5, 6, 5] with r = 1: 11.5, where the prefix condition alone gives 12.5).
        let mut checked = 0;
        for m in 1..=9 {
            for h in 1..=9 {
                for n in 1..=9 {
                    for r in 0..=m.min(h).min(n) {
                        let got = aoyagi_deep_linear_llc(&[m, h, n], r);
                        let want = reduced_rank_regression(m, h, n, r);
                        assert!(
                            (got - want).abs() < EXACT,
                            "[{m}, {h}, {n}] r={r}: {got} != {want}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2754);
        assert!((aoyagi_deep_linear_llc(&[5, 6, 5], 1) - 11.5).abs() < EXACT);
    }

    #[test]
    fn aoyagi_rejects_impossible_networks() {
        assert!(aoyagi_deep_linear_llc(&[3], 0).is_nan());
        assert!(aoyagi_deep_linear_llc(&[3, 0, 3], 0).is_nan());
        assert!(aoyagi_deep_linear_llc(&[3, 2, 3], 3).is_nan());
    }

    #[test]
    fn regular_expectation_tends_to_half_the_dimension() {
        let eigs = [0.5, 1.0, 2.0, 4.0];
        let big = regular_expected_llc(&eigs, 1e12, 1.0);
        // The deficit is ½Σγ/(nβhᵢ) ≈ 1.9e-12 at nβ = 1e12.
        assert!((big - 2.0).abs() < 1e-10);
        // One eigenvalue with nβh = γ contributes exactly ¼.
        assert!((regular_expected_llc(&[1.0], 3.0, 3.0) - 0.25).abs() < 1e-15);
        assert_eq!(regular_expected_llc(&[], 10.0, 1.0), 0.0);
    }

    #[test]
    fn trace_formula_equals_the_eigenvalue_formula() {
        // H = Q diag(eigs) Qᵀ with Q a Householder reflection I − 2vvᵀ/‖v‖²: a full matrix
        // whose eigenvalues are known exactly.
        let eigs = [0.3, 1.0, 2.5, 7.0];
        let v = [1.0, -2.0, 0.5, 3.0];
        let norm_sq: f64 = v.iter().map(|x| x * x).sum();
        let q = Array2::from_shape_fn((4, 4), |(i, j)| {
            f64::from(u8::from(i == j)) - 2.0 * v[i] * v[j] / norm_sq
        });
        let h = q
            .dot(&Array2::from_diag(&ndarray::Array1::from(eigs.to_vec())))
            .dot(&q.t());
        for (n_beta, gamma) in [(1.0, 1.0), (80.0, 1.0), (300.0, 2.5)] {
            let got = expected_llc_from_hessian(h.view(), n_beta, gamma).unwrap();
            let want = regular_expected_llc(&eigs, n_beta, gamma);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "nβ={n_beta} γ={gamma}: {got} vs {want}"
            );
        }
    }
}
