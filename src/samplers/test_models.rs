//! Analytic test models for the samplers: linear regression and a deep linear network, each a
//! [`LossModel`] over generated data, with exactly known minimizers w*.
//!
//! Data enter as seeds and sizes; models leave ready to build a [`Posterior`] around their w*.
//! The noise is residualized against the inputs (its projection on the column space of X is
//! removed), so the least-squares solution is exactly the teacher: w* = teacher is an exact
//! minimum of L_n, as the LLC oracles assume, without training. Small dense linear algebra
//! (Cholesky solve, Jacobi eigenvalues) lives here too; it runs once per test, in f64.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::numeric::Real;
use crate::posterior::{LossModel, Rows};

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn normals(rng: &mut Xoshiro256PlusPlus, len: usize) -> Vec<f64> {
    (0..len).map(|_| StandardNormal.sample(rng)).collect()
}

/// Solves A z = b for symmetric positive definite A (d×d, row-major) by Cholesky.
pub fn cholesky_solve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let d = b.len();
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            l[i * d + j] = if i == j {
                (a[i * d + i] - s).sqrt()
            } else {
                (a[i * d + j] - s) / l[j * d + j]
            };
        }
    }
    let mut y = vec![0.0; d];
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[i * d + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * d + i];
    }
    let mut z = vec![0.0; d];
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[k * d + i] * z[k]).sum();
        z[i] = (y[i] - s) / l[i * d + i];
    }
    z
}

/// Eigenvalues of a symmetric d×d matrix (row-major) by cyclic Jacobi rotations.
pub fn symmetric_eigenvalues(a: &[f64], d: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * d + j] * m[i * d + j])
            .sum();
        if off < 1e-24 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = m[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (mkp, mkq) = (m[k * d + p], m[k * d + q]);
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let (mpk, mqk) = (m[p * d + k], m[q * d + k]);
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
            }
        }
    }
    (0..d).map(|i| m[i * d + i]).collect()
}

/// XᵀX/n for X (n×d, row-major).
fn gram(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut g = vec![0.0; d * d];
    for row in x.chunks_exact(d) {
        for i in 0..d {
            for j in 0..d {
                g[i * d + j] += row[i] * row[j];
            }
        }
    }
    g.iter_mut().for_each(|v| *v /= n as f64);
    g
}

/// Removes from `e` (n entries) its least-squares projection on the columns of X.
fn residualize(x: &[f64], n: usize, d: usize, e: &mut [f64]) {
    let g = gram(x, n, d);
    let mut xte = vec![0.0; d];
    for (row, &ei) in x.chunks_exact(d).zip(e.iter()) {
        for j in 0..d {
            xte[j] += row[j] * ei / n as f64;
        }
    }
    let coef = cholesky_solve(&g, &xte);
    for (row, ei) in x.chunks_exact(d).zip(e.iter_mut()) {
        *ei -= row.iter().zip(&coef).map(|(a, b)| a * b).sum::<f64>();
    }
}

fn row_indices(rows: Rows<'_>, n: usize) -> impl Iterator<Item = usize> + '_ {
    let (all, subset) = match rows {
        Rows::All => (Some(0..n), None),
        Rows::Subset(s) => (None, Some(s.iter().copied())),
    };
    all.into_iter()
        .flatten()
        .chain(subset.into_iter().flatten())
}

fn row_count(rows: Rows<'_>, n: usize) -> usize {
    match rows {
        Rows::All => n,
        Rows::Subset(s) => s.len(),
    }
}

// ------------------------------------------------------------------ linear regression

/// L(w) = mean (yᵢ − xᵢ·w)²: a quadratic with Hessian H = 2XᵀX/n.
pub struct LinReg<F> {
    x: Vec<F>,
    y: Vec<F>,
    n: usize,
    d: usize,
}

/// A linear regression problem: the model, its exact minimizer w* and the eigenvalues of H.
pub struct LinRegProblem<F> {
    pub model: LinReg<F>,
    pub w_star: Vec<F>,
    pub hessian_eigs: Vec<f64>,
}

impl<F: Real> LinReg<F> {
    /// n rows of d correlated inputs x = zA (z standard normal, A = I + G/√d with G a fixed
    /// random N(0, 0.3²) matrix): H is not diagonal, so a diagonal mass matrix cannot whiten
    /// it, and its eigenvalues spread over about a decade, as a modestly conditioned network's.
    pub fn problem(n: usize, d: usize, noise: f64, seed: u64) -> LinRegProblem<F> {
        let mut r = rng(seed);
        let mut a: Vec<f64> = normals(&mut r, d * d)
            .iter()
            .map(|v| 0.3 * v / (d as f64).sqrt())
            .collect();
        for i in 0..d {
            a[i * d + i] += 1.0;
        }
        let z = normals(&mut r, n * d);
        let mut x = vec![0.0; n * d];
        for (xr, zr) in x.chunks_exact_mut(d).zip(z.chunks_exact(d)) {
            for (k, &zk) in zr.iter().enumerate() {
                for (j, xj) in xr.iter_mut().enumerate() {
                    *xj += zk * a[k * d + j];
                }
            }
        }
        let teacher = normals(&mut r, d);
        let mut e: Vec<f64> = normals(&mut r, n).iter().map(|z| noise * z).collect();
        residualize(&x, n, d, &mut e);
        let y: Vec<f64> = x
            .chunks_exact(d)
            .zip(&e)
            .map(|(row, ei)| row.iter().zip(&teacher).map(|(a, b)| a * b).sum::<f64>() + ei)
            .collect();
        let h: Vec<f64> = gram(&x, n, d).iter().map(|v| 2.0 * v).collect();
        LinRegProblem {
            model: LinReg {
                x: x.iter().map(|&v| F::of(v)).collect(),
                y: y.iter().map(|&v| F::of(v)).collect(),
                n,
                d,
            },
            w_star: teacher.iter().map(|&v| F::of(v)).collect(),
            hessian_eigs: symmetric_eigenvalues(&h, d),
        }
    }
}

impl<F: Real> LossModel<F> for LinReg<F> {
    type Workspace = ();

    fn dim(&self) -> usize {
        self.d
    }

    fn n_data(&self) -> usize {
        self.n
    }

    fn workspace(&self, _max_rows: usize) -> Self::Workspace {}

    fn loss(&self, w: &[F], rows: Rows<'_>, _ws: &mut ()) -> F {
        let mut sum = F::zero();
        for i in row_indices(rows, self.n) {
            let row = &self.x[i * self.d..(i + 1) * self.d];
            let r = self.y[i] - row.iter().zip(w).map(|(&a, &b)| a * b).sum::<F>();
            sum += r * r;
        }
        sum / F::of(row_count(rows, self.n) as f64)
    }

    fn loss_grad(&self, w: &[F], rows: Rows<'_>, grad: &mut [F], _ws: &mut ()) -> F {
        grad.iter_mut().for_each(|g| *g = F::zero());
        let m = F::of(row_count(rows, self.n) as f64);
        let mut sum = F::zero();
        for i in row_indices(rows, self.n) {
            let row = &self.x[i * self.d..(i + 1) * self.d];
            let r = self.y[i] - row.iter().zip(w).map(|(&a, &b)| a * b).sum::<F>();
            sum += r * r;
            let c = F::of(-2.0) * r / m;
            for (g, &xv) in grad.iter_mut().zip(row) {
                *g += c * xv;
            }
        }
        sum / m
    }
}

// ------------------------------------------------------------------ deep linear network

/// L(W) = mean ‖yᵢ − W_L⋯W_1 xᵢ‖² with widths [H_1 (input), …, H_{L+1} (output)]; the
/// parameters are W_1 (H_2×H_1), W_2, … flattened row-major, one after the other.
pub struct DeepLinear<F> {
    widths: Vec<usize>,
    x: Vec<F>,
    y: Vec<F>,
    n: usize,
}

/// Per-evaluation scratch: activations and back-propagated errors of every layer.
pub struct DeepLinearWs<F> {
    acts: Vec<Vec<F>>,
    deltas: Vec<Vec<F>>,
}

pub struct DeepLinearProblem<F> {
    pub model: DeepLinear<F>,
    pub w_star: Vec<F>,
}

impl<F: Real> DeepLinear<F> {
    /// A random teacher of the same architecture, entries N(0, 1/fan_in), n Gaussian inputs,
    /// residualized Gaussian noise. The teacher's product has full rank min(widths), and it is
    /// an exact minimizer: its product is the least-squares matrix.
    pub fn problem(widths: &[usize], n: usize, noise: f64, seed: u64) -> DeepLinearProblem<F> {
        let mut r = rng(seed);
        let (din, dout) = (widths[0], widths[widths.len() - 1]);
        let x = normals(&mut r, n * din);
        let mut teacher = Vec::new();
        for k in 1..widths.len() {
            let scale = 1.0 / (widths[k - 1] as f64).sqrt();
            teacher.extend(
                normals(&mut r, widths[k] * widths[k - 1])
                    .iter()
                    .map(|z| z * scale),
            );
        }
        let mut y = vec![0.0; n * dout];
        let model64 = DeepLinear {
            widths: widths.to_vec(),
            x: x.clone(),
            y: vec![0.0; n * dout],
            n,
        };
        let mut ws = model64.workspace(1);
        for i in 0..n {
            model64.forward(&teacher, i, &mut ws);
            y[i * dout..(i + 1) * dout].copy_from_slice(&ws.acts[widths.len() - 1]);
        }
        for o in 0..dout {
            let mut e: Vec<f64> = normals(&mut r, n).iter().map(|z| noise * z).collect();
            residualize(&x, n, din, &mut e);
            for i in 0..n {
                y[i * dout + o] += e[i];
            }
        }
        DeepLinearProblem {
            model: DeepLinear {
                widths: widths.to_vec(),
                x: x.iter().map(|&v| F::of(v)).collect(),
                y: y.iter().map(|&v| F::of(v)).collect(),
                n,
            },
            w_star: teacher.iter().map(|&v| F::of(v)).collect(),
        }
    }

    /// Forward pass of row `i` into `ws.acts`.
    fn forward(&self, w: &[F], i: usize, ws: &mut DeepLinearWs<F>) {
        let din = self.widths[0];
        ws.acts[0].copy_from_slice(&self.x[i * din..(i + 1) * din]);
        let mut off = 0;
        for k in 1..self.widths.len() {
            let (rows, cols) = (self.widths[k], self.widths[k - 1]);
            let (prev, next) = ws.acts.split_at_mut(k);
            for (o, out) in next[0].iter_mut().enumerate() {
                let wrow = &w[off + o * cols..off + (o + 1) * cols];
                *out = wrow.iter().zip(&prev[k - 1]).map(|(&a, &b)| a * b).sum();
            }
            off += rows * cols;
        }
    }
}

impl<F: Real> LossModel<F> for DeepLinear<F> {
    type Workspace = DeepLinearWs<F>;

    fn dim(&self) -> usize {
        self.widths.windows(2).map(|p| p[0] * p[1]).sum()
    }

    fn n_data(&self) -> usize {
        self.n
    }

    fn workspace(&self, _max_rows: usize) -> Self::Workspace {
        DeepLinearWs {
            acts: self.widths.iter().map(|&h| vec![F::zero(); h]).collect(),
            deltas: self.widths.iter().map(|&h| vec![F::zero(); h]).collect(),
        }
    }

    fn loss(&self, w: &[F], rows: Rows<'_>, ws: &mut Self::Workspace) -> F {
        let last = self.widths.len() - 1;
        let dout = self.widths[last];
        let mut sum = F::zero();
        for i in row_indices(rows, self.n) {
            self.forward(w, i, ws);
            for (o, &p) in ws.acts[last].iter().enumerate() {
                let r = p - self.y[i * dout + o];
                sum += r * r;
            }
        }
        sum / F::of(row_count(rows, self.n) as f64)
    }

    fn loss_grad(&self, w: &[F], rows: Rows<'_>, grad: &mut [F], ws: &mut Self::Workspace) -> F {
        grad.iter_mut().for_each(|g| *g = F::zero());
        let last = self.widths.len() - 1;
        let dout = self.widths[last];
        let m = F::of(row_count(rows, self.n) as f64);
        let mut sum = F::zero();
        for i in row_indices(rows, self.n) {
            self.forward(w, i, ws);
            for o in 0..dout {
                let r = ws.acts[last][o] - self.y[i * dout + o];
                sum += r * r;
                ws.deltas[last][o] = F::of(2.0) * r / m;
            }
            let mut off = grad.len();
            for k in (1..=last).rev() {
                let (rows_k, cols) = (self.widths[k], self.widths[k - 1]);
                off -= rows_k * cols;
                for o in 0..rows_k {
                    let dk = ws.deltas[k][o];
                    let g = &mut grad[off + o * cols..off + (o + 1) * cols];
                    for (gj, &a) in g.iter_mut().zip(&ws.acts[k - 1]) {
                        *gj += dk * a;
                    }
                }
                let (lower, upper) = ws.deltas.split_at_mut(k);
                for (j, dj) in lower[k - 1].iter_mut().enumerate() {
                    *dj = (0..rows_k)
                        .map(|o| w[off + o * cols + j] * upper[0][o])
                        .sum();
                }
            }
        }
        sum / m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences of `loss` against `loss_grad` at a random point.
    fn check_gradient<M: LossModel<f64>>(model: &M, w0: &[f64]) {
        let mut ws = model.workspace(model.n_data());
        let mut g = vec![0.0; w0.len()];
        model.loss_grad(w0, Rows::All, &mut g, &mut ws);
        let h = 1e-5;
        for j in 0..w0.len() {
            let mut w = w0.to_vec();
            w[j] += h;
            let up = model.loss(&w, Rows::All, &mut ws);
            w[j] -= 2.0 * h;
            let down = model.loss(&w, Rows::All, &mut ws);
            let fd = (up - down) / (2.0 * h);
            // Central differences err by O(h²·L''') (exactly 0 for the quadratic linreg, tiny
            // for the polynomial deep linear loss) plus rounding ~1e-16/h ≈ 1e-11.
            assert!(
                (fd - g[j]).abs() < 1e-6 * (1.0 + g[j].abs()),
                "coord {j}: {fd} vs {}",
                g[j]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let lr = LinReg::<f64>::problem(50, 4, 0.1, 1);
        let w: Vec<f64> = lr.w_star.iter().map(|v| v + 0.3).collect();
        check_gradient(&lr.model, &w);
        let dl = DeepLinear::<f64>::problem(&[4, 3, 2], 50, 0.1, 2);
        let w: Vec<f64> = dl
            .w_star
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 * (i as f64).sin())
            .collect();
        check_gradient(&dl.model, &w);
    }

    #[test]
    fn teacher_is_an_exact_minimum() {
        // Residualized noise makes the gradient at the teacher vanish up to rounding
        // (~1e-16 times the data scale, summed over n = 200 rows).
        let lr = LinReg::<f64>::problem(200, 5, 0.3, 3);
        let dl = DeepLinear::<f64>::problem(&[3, 3, 3], 200, 0.3, 4);
        let mut g = vec![0.0; 5];
        lr.model.loss_grad(&lr.w_star, Rows::All, &mut g, &mut ());
        assert!(g.iter().all(|v| v.abs() < 1e-12), "{g:?}");
        let mut g = vec![0.0; 18];
        let mut ws = dl.model.workspace(200);
        dl.model.loss_grad(&dl.w_star, Rows::All, &mut g, &mut ws);
        assert!(g.iter().all(|v| v.abs() < 1e-12), "{g:?}");
    }

    #[test]
    fn linear_algebra_helpers() {
        let a = [4.0, 1.0, 1.0, 3.0];
        let z = cholesky_solve(&a, &[1.0, 2.0]);
        // Exact solution (1/11, 7/11); Cholesky of a 2×2 is accurate to a few ulps.
        assert!((z[0] - 1.0 / 11.0).abs() < 1e-14 && (z[1] - 7.0 / 11.0).abs() < 1e-14);
        let mut e = symmetric_eigenvalues(&a, 2);
        e.sort_by(f64::total_cmp);
        let (m, r) = (3.5, (1.25f64).sqrt());
        // Jacobi converges to off-diagonal mass < 1e-24, so eigenvalues to ~1e-12.
        assert!((e[0] - (m - r)).abs() < 1e-12 && (e[1] - (m + r)).abs() < 1e-12);
    }
}
