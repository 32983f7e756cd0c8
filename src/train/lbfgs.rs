//! Limited-memory BFGS with a backtracking (Armijo) line search: the quasi-Newton finish that
//! takes a trained student the last way down to a minimum of the full-data loss.
//!
//! In: an objective `f(w, grad) -> loss` (full batch: the finish is deterministic), a starting
//! point, and [`Settings`]. Out: the point is updated in place and an [`Outcome`] says why the
//! iteration stopped, with the final loss and gradient norm.
//!
//! Why a quasi-Newton finish: first-order optimizers (Adam at its usual 1e-3) slow to a crawl
//! near a minimum whose Hessian is ill-conditioned, and the LLC is defined at a minimum: a w*
//! above it makes the estimate low, or negative (the chains find lower loss than L0). L-BFGS
//! uses the curvature it has seen (the last `history` steps and gradient changes, Nocedal &
//! Wright, "Numerical Optimization", 2nd ed., Algorithm 7.4) and converges superlinearly on
//! the smooth, nearly quadratic basins these targets sit in.
//!
//! The history is kept in f64 whatever the model's precision; the model itself is evaluated in
//! its own precision `F`. Where a step's decrease is below the loss's rounding (f32 near a
//! minimum), the line search goes by the slope along the step instead ([`ROUNDING_ULPS`]).
//! Every buffer is allocated once, before the loop.

use crate::numeric::Real;

/// Armijo's sufficient-decrease constant (Nocedal & Wright's suggested 1e-4).
const ARMIJO_C1: f64 = 1e-4;
/// A trial loss within this many units of the precision's rounding (ε·|L|) of the lowest loss
/// so far is judged by [`approximate_wolfe`] instead of by Armijo's test. Why: near a minimum
/// the decrease a step can make, ‖g‖²/(2h) along a direction of curvature h, falls below the
/// rounding of an f32 loss (ε = 1.2·10⁻⁷ of L) while ‖g‖ is still above `grad_tol`, and
/// Armijo's test then compares rounding errors: the finish stops moving without converging.
///
/// Measured (2026-12-08, random smooth students of 1–3 hidden layers, widths 2–8, n = 2,000
/// to 20,000, default training; one sweep of 24 f32 targets and 12 mixed ones):
/// - a gelu network 3 → \[2\] → 3 at n = 5,000 in f32 ran all 2,000 finish iterations and
///   stopped at ‖g‖ = 3.4·10⁻⁴ against a tolerance of 1.7·10⁻⁴; now it converges in 115;
/// - of the 24 f32 targets 18 converged before and 20 now, the same 20 as in f64. Two that
///   had seemed nearly converged in f32 (‖g‖ 2.8·10⁻⁴ and 3.3·10⁻⁴) are far from it in f64
///   as well (3·10⁻³ and 1.8·10⁻⁴ at the step budget): they had stalled, not arrived;
/// - f64: 35 of the 36 targets, the demo's and every converged one, end at the same bits. For
///   f64, 8 ε is 1.8·10⁻¹⁵ of L, which a converging finish meets `grad_tol` before it reaches.
///   The one that moved (gelu \[7, 2, 2\], n = 20,000) ran out of steps either way, with a
///   loss 2.6·10⁻¹⁰ higher (5·10⁻⁷ LLC units at the default posterior).
const ROUNDING_ULPS: f64 = 8.0;
/// Halvings a line search may make before the direction is given up: 2^-40 ≈ 1e-12 of the
/// first trial step, below which an f64 loss no longer resolves any decrease.
const MAX_BACKTRACKS: usize = 40;

/// How far to go.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Most iterations (each is one gradient plus its line search's loss-and-gradient
    /// evaluations).
    pub max_iters: usize,
    /// Stop once ‖∇f‖ ≤ this.
    pub grad_tol: f64,
    /// Curvature pairs remembered (Nocedal & Wright: 3–20 work; 10 is the usual default).
    pub history: usize,
}

/// Why the iteration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// ‖∇f‖ ≤ grad_tol.
    Converged,
    /// `max_iters` iterations ran first.
    MaxIters,
    /// Neither the quasi-Newton direction nor steepest descent found any decrease: the loss is
    /// at the resolution of its floating-point type.
    Stalled,
    /// The objective was not finite at the start.
    NonFinite,
}

/// What the iteration did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub stop: Stop,
    pub iterations: usize,
    pub loss: f64,
    pub grad_norm: f64,
}

/// Minimizes `f` from `w` (updated in place). `project(w, dir)` may change each search direction
/// before its line search (the training finish removes the directions along which the loss is
/// constant by symmetry: `super::symmetry`); it must keep a descent direction one.
pub fn minimize<F: Real>(
    mut f: impl FnMut(&[F], &mut [F]) -> f64,
    mut project: impl FnMut(&[F], &mut [f64]),
    w: &mut [F],
    settings: &Settings,
) -> Outcome {
    let p = w.len();
    let m = settings.history.max(1);
    let mut grad = vec![F::zero(); p];
    let mut trial = vec![F::zero(); p];
    let mut trial_grad = vec![F::zero(); p];
    let mut dir = vec![0.0f64; p];
    let mut s_hist = vec![vec![0.0f64; p]; m];
    let mut y_hist = vec![vec![0.0f64; p]; m];
    let mut rho = vec![0.0f64; m];
    let mut alpha = vec![0.0f64; m];
    let (mut stored, mut newest) = (0usize, 0usize);

    let mut loss = f(w, &mut grad);
    let mut gnorm = norm(&grad);
    let outcome = |stop, iterations, loss, grad_norm| Outcome {
        stop,
        iterations,
        loss,
        grad_norm,
    };
    if !(loss.is_finite() && gnorm.is_finite()) {
        return outcome(Stop::NonFinite, 0, loss, gnorm);
    }
    let mut lowest = loss;
    for iter in 0..settings.max_iters {
        if gnorm <= settings.grad_tol {
            return outcome(Stop::Converged, iter, loss, gnorm);
        }
        // Two-loop recursion: dir = −H·g with H the L-BFGS inverse-Hessian approximation.
        for (d, g) in dir.iter_mut().zip(&grad) {
            *d = -g.f64();
        }
        for k in 0..stored {
            let i = (newest + m - k) % m;
            alpha[i] = rho[i] * dot(&s_hist[i], &dir);
            axpy(-alpha[i], &y_hist[i], &mut dir);
        }
        if stored > 0 {
            // H0 = (sᵀy / yᵀy)·I from the newest pair (Nocedal & Wright eq. 7.20).
            let (s, y) = (&s_hist[newest], &y_hist[newest]);
            let scale = dot(s, y) / dot(y, y);
            dir.iter_mut().for_each(|d| *d *= scale);
        }
        for k in (0..stored).rev() {
            let i = (newest + m - k) % m;
            let beta = rho[i] * dot(&y_hist[i], &dir);
            axpy(alpha[i] - beta, &s_hist[i], &mut dir);
        }
        project(w, &mut dir);
        let mut slope = dot_mixed(&dir, &grad);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (rounding in a flat region): fall back to −g.
            stored = 0;
            for (d, g) in dir.iter_mut().zip(&grad) {
                *d = -g.f64();
            }
            slope = -gnorm * gnorm;
        }
        // The first step of a fresh history has no curvature scale: move by at most 1 in norm.
        let mut step = if stored == 0 {
            (1.0 / gnorm).min(1.0)
        } else {
            1.0
        };
        // Losses up to `ceiling` equal the lowest one accepted up to rounding (see
        // `ROUNDING_ULPS`). Measured from the lowest, not the current, loss: steps that each
        // rise within the rounding could otherwise climb by that much every iteration.
        let ceiling = lowest + ROUNDING_ULPS * F::epsilon().f64() * lowest.abs();
        let mut accepted = None;
        for _ in 0..MAX_BACKTRACKS {
            for ((t, &x), &d) in trial.iter_mut().zip(w.iter()).zip(&dir) {
                *t = F::of(x.f64() + step * d);
            }
            let trial_loss = f(&trial, &mut trial_grad);
            if trial_loss.is_finite()
                && (trial_loss <= loss + ARMIJO_C1 * step * slope
                    || (trial_loss <= ceiling
                        && approximate_wolfe(slope, dot_mixed(&dir, &trial_grad))))
            {
                accepted = Some(trial_loss);
                break;
            }
            step *= 0.5;
        }
        let Some(new_loss) = accepted else {
            if stored == 0 {
                return outcome(Stop::Stalled, iter, loss, gnorm);
            }
            // Retry from steepest descent with a fresh history before giving up.
            stored = 0;
            continue;
        };
        // The curvature pair, from the positions actually evaluated (after rounding to F).
        // Kept only when it carries positive curvature, so H stays positive definite.
        let (mut sy, mut ss, mut yy) = (0.0, 0.0, 0.0);
        for i in 0..p {
            let si = trial[i].f64() - w[i].f64();
            let yi = trial_grad[i].f64() - grad[i].f64();
            sy += si * yi;
            ss += si * si;
            yy += yi * yi;
        }
        if sy.is_finite() && sy > 1e-12 * (ss * yy).sqrt() {
            let next = (newest + 1) % m;
            for i in 0..p {
                s_hist[next][i] = trial[i].f64() - w[i].f64();
                y_hist[next][i] = trial_grad[i].f64() - grad[i].f64();
            }
            rho[next] = 1.0 / sy;
            newest = next;
            stored = (stored + 1).min(m);
        }
        w.copy_from_slice(&trial);
        grad.copy_from_slice(&trial_grad);
        loss = new_loss;
        lowest = lowest.min(loss);
        gnorm = norm(&grad);
    }
    let stop = if gnorm <= settings.grad_tol {
        Stop::Converged
    } else {
        Stop::MaxIters
    };
    outcome(stop, settings.max_iters, loss, gnorm)
}

/// Hager and Zhang's approximate Wolfe condition (SIAM J. Optim. 16 (2005), 170–192), its upper
/// half: a step along a line whose slope was `slope` < 0 at its start and is `trial_slope` at the
/// trial point is accepted when trial_slope ≤ (1 − 2·c₁)·|slope|. On a quadratic that is
/// exactly Armijo's condition with the same c₁, but it reads gradients, not loss differences,
/// so it still decides where the loss has rounded to a constant.
fn approximate_wolfe(slope: f64, trial_slope: f64) -> bool {
    trial_slope <= (1.0 - 2.0 * ARMIJO_C1) * slope.abs()
}

/// The Euclidean norm of a gradient, in f64.
pub fn norm<F: Real>(g: &[F]) -> f64 {
    g.iter().map(|v| v.f64() * v.f64()).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn dot_mixed<F: Real>(a: &[f64], b: &[F]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y.f64()).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

#[cfg(test)]
mod tests {
    /// The finish's symmetry projection, switched off: these objectives have none.
    fn no_projection<F>(_: &[F], _: &mut [f64]) {}

    use super::*;

    fn settings(max_iters: usize, grad_tol: f64) -> Settings {
        Settings {
            max_iters,
            grad_tol,
            history: 10,
        }
    }

    /// f(w) = ½ Σ kᵢ wᵢ² with condition number 1e3: gradient descent needs ~1e3 iterations to
    /// shrink the gradient by e, ~3e4 for the 13 orders asked here; L-BFGS learns the
    /// curvature and needs far fewer.
    #[test]
    fn ill_conditioned_quadratic_converges_quickly() {
        let k: Vec<f64> = (0..20).map(|i| 10f64.powf(3.0 * i as f64 / 19.0)).collect();
        let mut w = vec![1.0f64; 20];
        let out = minimize(
            |w: &[f64], g: &mut [f64]| {
                let mut f = 0.0;
                for i in 0..w.len() {
                    g[i] = k[i] * w[i];
                    f += 0.5 * k[i] * w[i] * w[i];
                }
                f
            },
            no_projection,
            &mut w,
            &settings(500, 1e-9),
        );
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        assert!(out.grad_norm <= 1e-9);
        // At ‖g‖ ≤ 1e-9 and curvature ≥ 1, every coordinate is within 1e-9 of 0.
        assert!(w.iter().all(|x| x.abs() <= 1e-9), "{w:?}");
        // The initial gradient is ~1e4 in norm, so 1e-9 is 13 orders down. Gradient descent
        // contracts by (κ−1)/(κ+1) per step (~3e4 steps); the optimal rate of any method that
        // only sees gradients without finite termination, (√κ−1)/(√κ+1) = 0.939, needs ~475.
        // L-BFGS with 10 pairs (fewer than the 20 dimensions, so no finite termination) must
        // beat that bound; it took 302.
        assert!(out.iterations < 475, "{} iterations", out.iterations);
    }

    /// Rosenbrock's banana: non-convex, a curved valley; minimum 0 at (1, 1).
    #[test]
    fn rosenbrock_reaches_its_minimum() {
        let mut w = vec![-1.2f64, 1.0];
        let out = minimize(
            |w: &[f64], g: &mut [f64]| {
                let (x, y) = (w[0], w[1]);
                g[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
                g[1] = 200.0 * (y - x * x);
                (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
            },
            no_projection,
            &mut w,
            &settings(1000, 1e-8),
        );
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        // Near the minimum the Hessian's smallest eigenvalue is ≈ 0.4, so ‖g‖ ≤ 1e-8 puts w
        // within ~1e-7 of (1, 1).
        assert!(
            (w[0] - 1.0).abs() < 1e-6 && (w[1] - 1.0).abs() < 1e-6,
            "{w:?}"
        );
    }

    #[test]
    fn the_iteration_cap_and_a_non_finite_start_are_reported() {
        let mut w = vec![-1.2f64, 1.0];
        let rosen = |w: &[f64], g: &mut [f64]| {
            let (x, y) = (w[0], w[1]);
            g[0] = -2.0 * (1.0 - x) - 400.0 * x * (y - x * x);
            g[1] = 200.0 * (y - x * x);
            (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
        };
        let out = minimize(rosen, no_projection, &mut w, &settings(3, 1e-8));
        assert_eq!(out.stop, Stop::MaxIters);
        assert_eq!(out.iterations, 3);
        let mut w = vec![f64::NAN];
        let out = minimize(
            |w: &[f64], g: &mut [f64]| {
                g[0] = w[0];
                w[0]
            },
            no_projection,
            &mut w,
            &settings(3, 1e-8),
        );
        assert_eq!(out.stop, Stop::NonFinite);
    }

    /// An f32 loss rounds away the last decreases before the gradient is small: here a constant
    /// 1 in the loss puts its rounding at 6·10⁻⁸, and the last ~4 decades of ‖g‖ (on curvatures
    /// 10⁻²–1) move the loss by less than that. The line search must then go by the gradient
    /// (`approximate_wolfe`) and still reach a gradient 10⁴ times below where Armijo's test
    /// alone stops (mutation-checked: without it this stalls near ‖g‖ ~ 10⁻⁴).
    #[test]
    fn f32_losses_below_their_rounding_still_converge_on_the_gradient() {
        let curvature = |i: usize| 10f32.powf(-2.0 * i as f32 / 9.0);
        let mut w: Vec<f32> = (0..10).map(|i| 0.03 * (1.0 + i as f32)).collect();
        let out = minimize(
            |w: &[f32], g: &mut [f32]| {
                let mut f = 1.0f32;
                for (i, (&x, gi)) in w.iter().zip(g.iter_mut()).enumerate() {
                    *gi = curvature(i) * x;
                    f += 0.5 * curvature(i) * x * x;
                }
                f64::from(f)
            },
            no_projection,
            &mut w,
            &settings(500, 1e-8),
        );
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        // The loss itself cannot show the progress: it ends at its constant to f32's rounding.
        assert!((out.loss - 1.0).abs() <= f64::from(f32::EPSILON), "{out:?}");
    }

    /// Steps accepted on the gradient may each find the loss a little higher (rounding), but
    /// the finish never ends above the lowest loss it has seen by more than the rounding it
    /// allows. Here every evaluation reads 0.3 of that allowance higher than the one before, as
    /// a worst case of rounding that always errs upwards (mutation-checked: measured from the
    /// current loss instead of the lowest, the loss ended 2.5 allowances above the start).
    #[test]
    fn steps_within_the_rounding_never_climb_above_it() {
        let allowance = ROUNDING_ULPS * f64::from(f32::EPSILON);
        let mut seen = Vec::new();
        let mut w = vec![1e-3f32, 1e-3];
        let out = minimize(
            |w: &[f32], g: &mut [f32]| {
                let k = [1.0f32, 0.01];
                g[0] = k[0] * w[0];
                g[1] = k[1] * w[1];
                let f = 1.0f32 + 0.5 * (k[0] * w[0] * w[0] + k[1] * w[1] * w[1]);
                let drift = 0.3 * allowance * (seen.len() + 1) as f64;
                seen.push(f64::from(f) + drift);
                seen[seen.len() - 1]
            },
            no_projection,
            &mut w,
            &settings(300, 0.0),
        );
        // The start is the highest "lowest loss" there can be.
        let start = seen[0];
        assert!(
            seen.len() > 10,
            "the test needs steps to climb with: {out:?}"
        );
        assert!(
            out.loss <= start + allowance * start,
            "{out:?}, start {start}"
        );
    }

    /// f32 models: the same quadratic, evaluated in f32, still converges to the f32-reachable
    /// gradient (1e-4 is far above f32's ~1e-7 relative rounding of gradients of size ~1).
    #[test]
    fn f32_objectives_converge() {
        let mut w = vec![1.0f32; 5];
        let out = minimize(
            |w: &[f32], g: &mut [f32]| {
                let mut f = 0.0f64;
                for i in 0..w.len() {
                    let k = (i + 1) as f32;
                    g[i] = k * w[i];
                    f += 0.5 * (k * w[i] * w[i]) as f64;
                }
                f
            },
            no_projection,
            &mut w,
            &settings(200, 1e-4),
        );
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
    }
}
