//! Small dense linear algebra in f64 for the oracles: a Cholesky factorization of a symmetric
//! positive definite matrix, least squares through it, the reduced-rank minimum of a deep linear
//! network (training's saddle check, `train.rs`, and `validate`'s cases), and the singular values of a small matrix
//! (how well a deep linear teacher's rank is resolved at a given nβ).
//!
//! Matrices enter as `ndarray` arrays (d × d, or n × k data) and leave as numbers or vectors.
//! Sizes here are at most a few tens, evaluated once per target or validation run, so clarity wins over
//! speed: textbook algorithms, no pivoting (every matrix factored here is SPD by construction,
//! and a matrix that is not is reported, never silently mishandled).

use ndarray::{Array2, ArrayView2};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinalgError {
    #[error(
        "the {size}×{size} matrix is not positive definite (pivot {column} is {pivot:e}): the data do not determine a unique least-squares fit"
    )]
    NotPositiveDefinite {
        size: usize,
        column: usize,
        pivot: f64,
    },
    #[error("expected a square matrix, got {rows}×{cols}")]
    NotSquare { rows: usize, cols: usize },
}

/// A = L Lᵀ with L lower triangular.
#[derive(Debug, Clone)]
pub struct Cholesky {
    l: Array2<f64>,
}

impl Cholesky {
    /// Factors the symmetric positive definite `a` (only its lower triangle is read).
    pub fn factor(a: ArrayView2<'_, f64>) -> Result<Self, LinalgError> {
        let (rows, cols) = a.dim();
        if rows != cols {
            return Err(LinalgError::NotSquare { rows, cols });
        }
        let d = rows;
        let mut l = Array2::<f64>::zeros((d, d));
        for i in 0..d {
            for j in 0..=i {
                let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
                if i == j {
                    let pivot = a[[i, i]] - s;
                    // False for NaN as well as for a non-positive pivot.
                    let positive = pivot > 0.0;
                    if !positive {
                        return Err(LinalgError::NotPositiveDefinite {
                            size: d,
                            column: i,
                            pivot,
                        });
                    }
                    l[[i, i]] = pivot.sqrt();
                } else {
                    l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
                }
            }
        }
        Ok(Cholesky { l })
    }

    pub fn dim(&self) -> usize {
        self.l.nrows()
    }

    /// z with L z = b (forward substitution).
    fn forward(&self, b: &[f64]) -> Vec<f64> {
        let d = self.dim();
        let mut z = vec![0.0; d];
        for i in 0..d {
            let s: f64 = (0..i).map(|k| self.l[[i, k]] * z[k]).sum();
            z[i] = (b[i] - s) / self.l[[i, i]];
        }
        z
    }

    /// x with A x = b.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        assert_eq!(b.len(), self.dim(), "right-hand side has the wrong length");
        let d = self.dim();
        let y = self.forward(b);
        let mut x = vec![0.0; d];
        for i in (0..d).rev() {
            let s: f64 = (i + 1..d).map(|k| self.l[[k, i]] * x[k]).sum();
            x[i] = (y[i] - s) / self.l[[i, i]];
        }
        x
    }

    /// tr(A⁻¹) = ‖L⁻¹‖²_F: the squared norms of the columns L⁻¹eᵢ, summed.
    pub fn inverse_trace(&self) -> f64 {
        let d = self.dim();
        let mut e = vec![0.0; d];
        let mut total = 0.0;
        for i in 0..d {
            e[i] = 1.0;
            total += self.forward(&e).iter().map(|v| v * v).sum::<f64>();
            e[i] = 0.0;
        }
        total
    }
}

/// The eigenvalues of the symmetric `a`, ascending, by cyclic Jacobi rotations (only its upper
/// triangle is read). Each rotation zeroes one off-diagonal entry; sweeps repeat until the
/// off-diagonal mass is below 1e-15 of the total, which for the few-by-few matrices here takes
/// a handful of sweeps.
pub fn symmetric_eigenvalues(a: ArrayView2<'_, f64>) -> Result<Vec<f64>, LinalgError> {
    let (rows, cols) = a.dim();
    if rows != cols {
        return Err(LinalgError::NotSquare { rows, cols });
    }
    let d = rows;
    let mut m = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in i..d {
            m[[i, j]] = a[[i, j]];
            m[[j, i]] = a[[i, j]];
        }
    }
    let total: f64 = m.iter().map(|v| v * v).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[[i, j]] * m[[i, j]])
            .sum();
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if m[[p, q]] == 0.0 {
                    continue;
                }
                // The rotation angle that zeroes m[p][q] (Golub & Van Loan, Algorithm 8.5.1).
                let theta = (m[[q, q]] - m[[p, p]]) / (2.0 * m[[p, q]]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (mkp, mkq) = (m[[k, p]], m[[k, q]]);
                    m[[k, p]] = c * mkp - s * mkq;
                    m[[k, q]] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let (mpk, mqk) = (m[[p, k]], m[[q, k]]);
                    m[[p, k]] = c * mpk - s * mqk;
                    m[[q, k]] = s * mpk + c * mqk;
                }
            }
        }
    }
    let mut eigs: Vec<f64> = (0..d).map(|i| m[[i, i]]).collect();
    eigs.sort_by(f64::total_cmp);
    Ok(eigs)
}

/// The singular values of `m`, ascending: square roots of the eigenvalues of the smaller of
/// mᵀm and mmᵀ (clamped at 0 against rounding).
pub fn singular_values(m: ArrayView2<'_, f64>) -> Vec<f64> {
    let g = if m.nrows() >= m.ncols() {
        m.t().dot(&m)
    } else {
        m.dot(&m.t())
    };
    symmetric_eigenvalues(g.view())
        .expect("a Gram matrix is square")
        .into_iter()
        .map(|e| e.max(0.0).sqrt())
        .collect()
}

/// XᵀX.
pub fn gram(x: ArrayView2<'_, f64>) -> Array2<f64> {
    x.t().dot(&x)
}

/// `x` with a column of ones appended: the design matrix of a model with an intercept.
pub fn with_ones_column(x: ArrayView2<'_, f64>) -> Array2<f64> {
    let (n, k) = x.dim();
    let mut out = Array2::<f64>::ones((n, k + 1));
    out.slice_mut(ndarray::s![.., ..k]).assign(&x);
    out
}

/// The least-squares loss min_B (1/n) Σ_rows ‖y − xB‖², for every output column of `y` at once:
/// the smallest value the mean squared error summed over outputs can take for a linear map of
/// the columns of `x`. Solved through the normal equations; the residuals are then evaluated
/// directly (not as ‖y‖² − fit) so the result keeps its relative accuracy.
pub fn least_squares_loss(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
) -> Result<f64, LinalgError> {
    Ok(least_squares_fit(x, y)?.1)
}

/// The coefficients B̂ (columns of `x` × outputs) of the least-squares fit and its loss.
fn least_squares_fit(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
) -> Result<(Array2<f64>, f64), LinalgError> {
    let n = x.nrows();
    let chol = Cholesky::factor(gram(x).view())?;
    let xty = x.t().dot(&y);
    let mut coefs = Array2::<f64>::zeros((x.ncols(), y.ncols()));
    let mut residual = y.to_owned();
    for (k, col) in xty.columns().into_iter().enumerate() {
        let coef = ndarray::Array1::from(chol.solve(&col.to_vec()));
        let fit = x.dot(&coef);
        let mut r = residual.column_mut(k);
        r -= &fit;
        coefs.column_mut(k).assign(&coef);
    }
    let loss = residual.iter().map(|v| v * v).sum::<f64>() / n as f64;
    Ok((coefs, loss))
}

/// The reduced-rank regression loss min over B of rank ≤ `rank` of (1/n) Σ_rows ‖y − xB‖²: the
/// minimum of a deep linear network whose narrowest layer has `rank` units (its map is the
/// product of its layers). With the least-squares fit Ŷ = xB̂, every B splits the error into
/// the least-squares residual, orthogonal to the columns of x, and ‖Ŷ − xB‖²; the best rank-r
/// approximation of Ŷ (Eckart–Young) leaves the sum of its squared singular values beyond the
/// first r. Those are the eigenvalues of ŶᵀŶ = B̂ᵀxᵀy (outputs × outputs), smallest first. At
/// `rank` ≥ outputs nothing is left out and this is [`least_squares_loss`].
pub fn reduced_rank_loss(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    rank: usize,
) -> Result<f64, LinalgError> {
    let (coefs, loss) = least_squares_fit(x, y)?;
    let outputs = y.ncols();
    if rank >= outputs {
        return Ok(loss);
    }
    let fit_gram = coefs.t().dot(&x.t().dot(&y));
    let left_out: f64 = symmetric_eigenvalues(fit_gram.view())?
        .into_iter()
        .take(outputs - rank)
        .map(|e| e.max(0.0))
        .sum();
    Ok(loss + left_out / x.nrows() as f64)
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    /// Q diag(λ) Qᵀ with a rotation Q built from two Givens rotations: the eigenvalues are
    /// known exactly, so only rounding (~1e-15 relative) separates them from the solver's.
    #[test]
    fn jacobi_recovers_the_eigenvalues_of_a_rotated_diagonal() {
        let lambda = [3.0, -0.5, 1e-3];
        let (c1, s1) = (0.6_f64, 0.8_f64);
        let (c2, s2) = (0.28_f64, 0.96_f64);
        let g1 = array![[c1, -s1, 0.0], [s1, c1, 0.0], [0.0, 0.0, 1.0]];
        let g2 = array![[1.0, 0.0, 0.0], [0.0, c2, -s2], [0.0, s2, c2]];
        let q = g1.dot(&g2);
        let a = q
            .dot(&Array2::from_diag(&ndarray::arr1(&lambda)))
            .dot(&q.t());
        let got = symmetric_eigenvalues(a.view()).unwrap();
        let mut want = lambda.to_vec();
        want.sort_by(f64::total_cmp);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        assert!(matches!(
            symmetric_eigenvalues(Array2::<f64>::zeros((2, 3)).view()),
            Err(LinalgError::NotSquare { .. })
        ));
    }

    /// A 3 × 2 matrix with orthogonal columns of norms 2 and 0.5 has exactly those singular
    /// values; so does its transpose (the mmᵀ branch).
    #[test]
    fn singular_values_of_orthogonal_columns_are_their_norms() {
        let m = array![[1.2, 0.0], [1.6, 0.0], [0.0, -0.5]];
        for sv in [singular_values(m.view()), singular_values(m.t())] {
            assert_eq!(sv.len(), 2);
            assert!(
                (sv[0] - 0.5).abs() < 1e-12 && (sv[1] - 2.0).abs() < 1e-12,
                "{sv:?}"
            );
        }
    }

    // Every matrix below is tiny and well conditioned (condition number < 100), so a backward-
    // stable Cholesky solve is accurate to ~100 ulp; 1e-12 relative still catches any wrong
    // index or sign, which would be off by O(1).
    const ACCURATE: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= ACCURATE * b.abs().max(1.0)
    }

    fn spd() -> Array2<f64> {
        array![[4.0, 1.0, 0.5], [1.0, 3.0, -0.2], [0.5, -0.2, 2.0]]
    }

    #[test]
    fn cholesky_reproduces_and_solves() {
        let a = spd();
        let c = Cholesky::factor(a.view()).unwrap();
        let llt = c.l.dot(&c.l.t());
        for (x, y) in llt.iter().zip(a.iter()) {
            assert!(close(*x, *y), "L Lᵀ = {llt:?}");
        }
        let want = [1.0, -2.0, 0.5];
        let b = a.dot(&ndarray::Array1::from(want.to_vec()));
        for (got, want) in c.solve(b.as_slice().unwrap()).iter().zip(want) {
            assert!(close(*got, want), "{got} vs {want}");
        }
    }

    #[test]
    fn inverse_trace_matches_a_hand_computed_inverse() {
        // [[2, 1], [1, 2]]⁻¹ = [[2, −1], [−1, 2]]/3: trace 4/3.
        let c = Cholesky::factor(array![[2.0, 1.0], [1.0, 2.0]].view()).unwrap();
        assert!(close(c.inverse_trace(), 4.0 / 3.0));
        // Diagonal: Σ 1/aᵢ.
        let c = Cholesky::factor(Array2::from_diag(&array![1.0, 4.0, 0.5]).view()).unwrap();
        assert!(close(c.inverse_trace(), 1.0 + 0.25 + 2.0));
    }

    #[test]
    fn indefinite_or_non_square_matrices_are_errors() {
        let err = Cholesky::factor(array![[1.0, 2.0], [2.0, 1.0]].view()).unwrap_err();
        assert!(matches!(
            err,
            LinalgError::NotPositiveDefinite { column: 1, .. }
        ));
        let nan = Cholesky::factor(array![[f64::NAN]].view()).unwrap_err();
        assert!(matches!(nan, LinalgError::NotPositiveDefinite { .. }));
        assert!(matches!(
            Cholesky::factor(Array2::<f64>::zeros((2, 3)).view()),
            Err(LinalgError::NotSquare { rows: 2, cols: 3 })
        ));
    }

    #[test]
    fn least_squares_finds_the_exact_residual() {
        // y = 2x − 1 + r with r = (1, −1, −1, 1) orthogonal to both 1 and x = (0, 1, 2, 3)?
        // r·1 = 0 and r·x = 0 − 1 − 2 + 3 = 0: the fit is exact up to r, whose mean square is 1.
        let x = array![[0.0], [1.0], [2.0], [3.0]];
        let r = [1.0, -1.0, -1.0, 1.0];
        let y = ndarray::Array2::from_shape_fn((4, 2), |(i, k)| {
            let line = 2.0 * x[[i, 0]] - 1.0;
            // Second output: a different line, residual scaled by 2 (mean square 4).
            if k == 0 {
                line + r[i]
            } else {
                -line + 2.0 * r[i]
            }
        });
        let got = least_squares_loss(with_ones_column(x.view()).view(), y.view()).unwrap();
        assert!(close(got, 1.0 + 4.0), "{got}");
        // Without the intercept the line cannot be fit exactly: the loss must be larger.
        assert!(least_squares_loss(x.view(), y.view()).unwrap() > 5.0 + 0.1);
    }

    #[test]
    fn ones_column_is_appended() {
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        assert_eq!(
            with_ones_column(x.view()),
            array![[1.0, 2.0, 1.0], [3.0, 4.0, 1.0]]
        );
        assert_eq!(gram(x.view()), array![[10.0, 14.0], [14.0, 20.0]]);
    }

    /// The reduced-rank minimum against its definition: y = x·B with B of rank 2 (3 inputs, 3
    /// outputs, no noise) has loss 0 at rank 2 and, at rank 1, the loss of the best rank-1
    /// map, which for orthogonal columns of x with xᵀx = nI is Eckart–Young on B itself: the
    /// smallest non-zero squared singular value of B. B = diag(3, 2, 0) rotated keeps its
    /// singular values, so the expected losses are exactly 0, 4 and 4 + 9 = 13.
    #[test]
    fn reduced_rank_loss_leaves_out_the_smallest_singular_values() {
        // Four rows of ±1 with orthogonal columns: xᵀx = 4I.
        let x = array![
            [1.0, 1.0, 1.0],
            [1.0, -1.0, 1.0],
            [1.0, 1.0, -1.0],
            [1.0, -1.0, -1.0]
        ];
        let (c, s) = (0.6_f64, 0.8_f64);
        let rotation = array![[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let b = rotation.dot(&array![[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]);
        let y = x.dot(&b);
        for (rank, want) in [(3, 0.0), (2, 0.0), (1, 4.0), (0, 13.0)] {
            let got = reduced_rank_loss(x.view(), y.view(), rank).unwrap();
            assert!((got - want).abs() < 1e-12, "rank {rank}: {got} vs {want}");
        }
        assert!(least_squares_loss(x.view(), y.view()).unwrap().abs() < 1e-12);
    }
}
