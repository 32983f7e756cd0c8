//! A small data set with the same full-batch squared loss as the real one, for networks that are
//! affine in their input (identity activation: deep linear networks, with or without biases and
//! residual connections).
//!
//! For such a network f(x) = A·x + a, the summed squared error Σ_i ‖f(x_i) − y_i‖² is a quadratic
//! in (A, a) that depends on the data only through the counts, means and (cross-)covariances of X
//! and Y. So any weighted point set with the same first and second moments gives the same loss,
//! for every parameter vector, up to a constant. [`compress`] builds one with 2·d equally
//! weighted rows (d = input width), so a full-batch loss and gradient cost O(d) rows instead of
//! O(n): at n = 10,000 and d = 4 that is 8 rows instead of 10,000, which makes HMC and NUTS on
//! deep linear networks (the `validate` oracle cases) cheap enough to check in CI.
//! Minibatches (SGLD) still use the real rows.
//!
//! Construction (all in f64). Centre the data, X_c = X − x̄ and Y_c = Y − ȳ, and QR-factorize
//! X_c = Q·R by Householder reflections, applied to Y_c as well, giving B = Q_dᵀ·Y_c (d × out)
//! and the residual sum of squares K = ‖Y_c‖² − ‖B‖² (read off the rows below d, so no
//! cancellation). With a_k the k-th row of R and b_k the k-th row of B, and c = √(d/n), the rows
//!
//! ```text
//! z_k± = x̄ ± c·a_k,   t_k± = ȳ ± c·b_k      (k = 1 … d, each of weight n/(2d))
//! ```
//!
//! have Σ z z̃ᵀ and Σ t z̃ᵀ (z̃ = (z, 1)) equal to the data's, because Σ_k a_k a_kᵀ = RᵀR = X_cᵀX_c
//! and Σ_k b_k a_kᵀ = BᵀR = Y_cᵀX_c. Hence, for every affine f,
//!
//! ```text
//! (1/n) Σ_i ‖f(x_i) − y_i‖² = (1/2d) Σ_j ‖f(z_j) − t_j‖² + K/n
//! ```
//!
//! exactly in real arithmetic; `tests` check it to 1e-10 against the direct sum.
//! Input: X (n × d), Y (n × out). Output: a [`MomentData`] (the 2d rows and K/n).

use ndarray::{Array2, ArrayView2};

use crate::numeric::Real;

/// The compressed data: rows whose mean squared error, plus `offset`, is the full data's.
#[derive(Debug, Clone)]
pub struct MomentData<F> {
    pub x: Array2<F>,
    pub y: Array2<F>,
    /// K/n: the part of the mean loss no affine function of x can explain.
    pub offset: f64,
}

/// Whether compressing `n` rows of width `in_dim` saves work: the compressed set has 2·in_dim
/// rows, and below n = 4·(2·in_dim) the saving would not pay for keeping a second data set.
pub fn worth_compressing(n: usize, in_dim: usize) -> bool {
    in_dim > 0 && n >= 8 * in_dim
}

/// The moment-matched data set of X, Y (see the module doc). Needs n > in_dim.
pub fn compress<F: Real>(x: ArrayView2<'_, F>, y: ArrayView2<'_, F>) -> MomentData<F> {
    let (n, d) = x.dim();
    let o = y.ncols();
    assert_eq!(y.nrows(), n, "X and Y have different row counts");
    assert!(n > d && d > 0, "compressing needs more rows than columns");
    let nf = n as f64;

    // Column-major copy of [X_c | Y_c]: Householder reflections work column by column.
    let mean = |col: &mut dyn Iterator<Item = f64>| col.sum::<f64>() / nf;
    let x_mean: Vec<f64> = (0..d)
        .map(|j| mean(&mut x.column(j).iter().map(|v| v.f64())))
        .collect();
    let y_mean: Vec<f64> = (0..o)
        .map(|j| mean(&mut y.column(j).iter().map(|v| v.f64())))
        .collect();
    let mut cols: Vec<Vec<f64>> = (0..d)
        .map(|j| x.column(j).iter().map(|v| v.f64() - x_mean[j]).collect())
        .chain((0..o).map(|j| y.column(j).iter().map(|v| v.f64() - y_mean[j]).collect()))
        .collect();

    householder_qr(&mut cols, d);

    // R's row k is (cols[j][k] for j in k..d), zeros before; B's row k is cols[d + j][k].
    let c = (d as f64 / nf).sqrt();
    let mut zx = Array2::<F>::zeros((2 * d, d));
    let mut zy = Array2::<F>::zeros((2 * d, o));
    // k indexes a row of R, which is spread across the column vectors.
    #[allow(clippy::needless_range_loop)]
    for k in 0..d {
        for (sign, row) in [(1.0, 2 * k), (-1.0, 2 * k + 1)] {
            for j in 0..d {
                let r_kj = if j >= k { cols[j][k] } else { 0.0 };
                zx[(row, j)] = F::of(x_mean[j] + sign * c * r_kj);
            }
            for j in 0..o {
                zy[(row, j)] = F::of(y_mean[j] + sign * c * cols[d + j][k]);
            }
        }
    }
    let residual: f64 = cols[d..]
        .iter()
        .flat_map(|col| &col[d..])
        .map(|v| v * v)
        .sum();
    MomentData {
        x: zx,
        y: zy,
        offset: residual / nf,
    }
}

/// In-place Householder QR of the first `d` columns, applying the same reflections to the rest.
///
/// Afterwards column j < d holds R's column j in its first j + 1 entries, and every later
/// column holds Qᵀ times its old value. A column that is already zero below the diagonal (a
/// constant or repeated input feature) is left alone: R then has a zero on its diagonal, and
/// X_c = Q·R still holds, which is all the construction needs.
fn householder_qr(cols: &mut [Vec<f64>], d: usize) {
    let n = cols[0].len();
    for k in 0..d {
        let norm = cols[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        // Reflect onto −sign(x_k)·‖x‖·e_k, the choice that avoids cancellation in v_k.
        let alpha = if cols[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = cols[k][k..].to_vec();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|t| t * t).sum();
        for col in cols.iter_mut().skip(k + 1) {
            let s: f64 = v.iter().zip(&col[k..]).map(|(a, b)| a * b).sum();
            let f = 2.0 * s / vv;
            col[k..].iter_mut().zip(&v).for_each(|(c, a)| *c -= f * a);
        }
        cols[k][k] = alpha;
        cols[k][k + 1..n].iter_mut().for_each(|t| *t = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

    fn random(rng: &mut Rng64, rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
    }

    /// Mean of ‖A·x + a − y‖² over the rows.
    fn affine_mse(a: &Array2<f64>, bias: &[f64], x: &Array2<f64>, y: &Array2<f64>) -> f64 {
        let pred = x.dot(&a.t());
        let mut sse = 0.0;
        for i in 0..x.nrows() {
            for j in 0..y.ncols() {
                let e = pred[(i, j)] + bias[j] - y[(i, j)];
                sse += e * e;
            }
        }
        sse / x.nrows() as f64
    }

    /// The identity in the module doc, for random data and random affine maps, including data
    /// with a constant and a duplicated feature (rank-deficient X_c). Tolerance 1e-10 relative:
    /// both sides are sums of ~10³ terms of size ~1 in f64 (error ~1e-13), with margin.
    #[test]
    fn compressed_rows_give_the_same_loss_for_every_affine_map() {
        let mut rng = Rng64::seed_from_u64(3);
        for (n, d, o) in [(200, 3, 2), (1000, 5, 1), (64, 1, 3), (500, 4, 4)] {
            for degenerate in [false, true] {
                let mut x = random(&mut rng, n, d);
                x.mapv_inplace(|v| 3.0 * v + 0.5);
                if degenerate && d >= 2 {
                    x.column_mut(0).fill(2.0);
                    let c1 = x.column(1).to_owned();
                    x.column_mut(d - 1).assign(&c1);
                }
                let y = random(&mut rng, n, o) + 0.7;
                let m = compress(x.view(), y.view());
                assert_eq!(m.x.dim(), (2 * d, d));
                assert!(m.offset >= 0.0);
                for _ in 0..5 {
                    let a = random(&mut rng, o, d);
                    let bias: Vec<f64> = (0..o).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let direct = affine_mse(&a, &bias, &x, &y);
                    let small = affine_mse(&a, &bias, &m.x, &m.y) + m.offset;
                    assert!(
                        (direct - small).abs() <= 1e-10 * direct.max(1.0),
                        "n={n} d={d} o={o} degenerate={degenerate}: {direct} vs {small}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_offset_is_the_least_squares_residual() {
        // Y exactly affine in X: nothing is left unexplained.
        let mut rng = Rng64::seed_from_u64(9);
        let x = random(&mut rng, 300, 3);
        let a = random(&mut rng, 2, 3);
        let y = x.dot(&a.t()) + 1.5;
        let m = compress(x.view(), y.view());
        assert!(m.offset.abs() < 1e-20, "offset {}", m.offset);
    }

    #[test]
    fn compression_pays_only_with_enough_rows() {
        assert!(worth_compressing(10_000, 4));
        assert!(worth_compressing(32, 4));
        assert!(!worth_compressing(31, 4));
        assert!(!worth_compressing(100, 0));
    }
}
