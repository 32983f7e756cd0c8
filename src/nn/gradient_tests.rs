//! Checks of the MLP's loss and hand-written gradient against independent computations: a naive
//! loop-based forward pass written from the documented layout, central finite differences, the
//! f64 evaluation (for f32), and the same evaluation under different rayon thread counts.
//!
//! Test data: small random networks and data sets built from fixed seeds, so every run checks
//! the same points; the data sets have more rows than one chunk so that chunking and the lane
//! reduction are exercised.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{KernelChoice, Mlp, MlpLoss};
use crate::config::schema::{Activation, Init};
use crate::posterior::{LossModel, Rows};

const ACTIVATIONS: [Activation; 4] = [
    Activation::Relu,
    Activation::Tanh,
    Activation::Gelu,
    Activation::Identity,
];

/// A random problem: the model, its data (n rows) and a parameter point.
fn problem(mlp: &Mlp, n: usize, seed: u64) -> (MlpLoss<f64>, Vec<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, mlp.in_dim()), |_| rng.sample::<f64, _>(StandardNormal));
    let y = Array2::from_shape_fn((n, mlp.out_dim()), |_| rng.sample::<f64, _>(StandardNormal));
    let mut w: Vec<f64> = mlp.init_params(Init::Xavier, 1.0, &mut rng);
    // Nonzero biases, so that their gradients and the bias broadcast are really exercised.
    for x in w.iter_mut().filter(|x| **x == 0.0) {
        *x = 0.3 * rng.sample::<f64, _>(StandardNormal);
    }
    (MlpLoss::new(mlp.clone(), x, y).unwrap(), w)
}

/// The loss by plain loops over the documented layout and equations (no ndarray products), and
/// the smallest |pre-activation| seen in a hidden layer (the distance to relu's kink).
fn naive_loss(loss: &MlpLoss<f64>, w: &[f64], rows: &[usize]) -> (f64, f64) {
    let mlp = loss.mlp();
    let layers = mlp.layout().layers();
    let depth = mlp.depth();
    let mut total = 0.0;
    let mut min_abs_z = f64::INFINITY;
    for &r in rows {
        let mut a: Vec<f64> = loss.x().row(r).to_vec();
        for (l, s) in layers.iter().enumerate() {
            let mut z = vec![0.0; s.fan_out];
            for (j, zj) in z.iter_mut().enumerate() {
                *zj = s.b_offset.map_or(0.0, |b| w[b + j]);
                for (i, ai) in a.iter().enumerate() {
                    *zj += ai * w[s.w_offset + i * s.fan_out + j];
                }
            }
            if l == depth {
                a = z;
                break;
            }
            let mut next: Vec<f64> = z
                .iter()
                .map(|&z| {
                    min_abs_z = min_abs_z.min(z.abs());
                    match mlp.activation() {
                        Activation::Relu => z.max(0.0),
                        Activation::Tanh => z.tanh(),
                        Activation::Identity => z,
                        Activation::Gelu => {
                            let c = (2.0 / std::f64::consts::PI).sqrt();
                            0.5 * z * (1.0 + (c * (z + 0.044715 * z * z * z)).tanh())
                        }
                    }
                })
                .collect();
            if mlp.skips(l) {
                next.iter_mut().zip(&a).for_each(|(n, p)| *n += p);
            }
            a = next;
        }
        total += a
            .iter()
            .zip(loss.y().row(r))
            .map(|(p, t)| (p - t) * (p - t))
            .sum::<f64>();
    }
    (total / rows.len() as f64, min_abs_z)
}

/// ‖a − b‖₂ / ‖b‖₂.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm
}

fn central_differences(loss: &MlpLoss<f64>, w: &[f64], rows: Rows<'_>, h: f64) -> Vec<f64> {
    let mut ws = loss.workspace(loss.n_data());
    let mut wp = w.to_vec();
    (0..w.len())
        .map(|i| {
            wp[i] = w[i] + h;
            let up = loss.loss(&wp, rows, &mut ws);
            wp[i] = w[i] - h;
            let down = loss.loss(&wp, rows, &mut ws);
            wp[i] = w[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Every way of assigning kernels to layers: by size (what users get), and each kernel alone.
const CHOICES: [KernelChoice; 3] = [
    KernelChoice::BySize,
    KernelChoice::AllGemm,
    KernelChoice::AllNarrow,
];

/// Every architecture variant the gradient must handle.
fn architectures() -> Vec<Mlp> {
    let mut out = Vec::new();
    // Depth 0 (linear model), depth 1, depth 3 with equal widths (two residuals when skipping),
    // depth 3 with unequal widths (a residual only where widths match), and layers wider than
    // `narrow_max` (in f64 and f32) after or before narrow ones, so that by size a network mixes
    // both kernels.
    let shapes: [&[usize]; 6] = [&[], &[5], &[4, 4, 4], &[5, 3, 3], &[36, 4], &[4, 36]];
    for act in ACTIVATIONS {
        for hidden in shapes {
            for bias in [true, false] {
                for skip in [false, true] {
                    out.push(Mlp::from_parts(3, hidden, 2, act, bias, skip).unwrap());
                }
            }
        }
    }
    out
}

/// A problem whose point is at least `margin` away from relu's kink on every row used.
fn smooth_problem(mlp: &Mlp, n: usize, subset: &[usize], margin: f64) -> (MlpLoss<f64>, Vec<f64>) {
    // Finite differences across a kink average the two one-sided slopes, which is not the
    // derivative the backward pass computes: for relu, retry seeds until every pre-activation is
    // far from 0 relative to how far a perturbation of h = 1e-6 can move it (h times an input or
    // activation of size ≲ 5, ≲ 5e-6). Smooth activations need no retry.
    for seed in 0..200 {
        let (loss, w) = problem(mlp, n, seed);
        let all: Vec<usize> = (0..n).collect();
        let margin_all = naive_loss(&loss, &w, &all)
            .1
            .min(naive_loss(&loss, &w, subset).1);
        if mlp.activation() != Activation::Relu || margin_all > margin {
            return (loss, w);
        }
    }
    panic!("no point with a relu margin of {margin} in 200 seeds");
}

#[test]
fn loss_matches_the_naive_forward_pass() {
    // Both sum the same ~10 products per value in different orders: relative agreement to
    // ~1e-13 (a few hundred ulps over n = 300 rows) is what rounding allows; 1e-12 is the bound.
    for mlp in architectures()
        .into_iter()
        .flat_map(|m| CHOICES.map(|c| m.clone().with_kernels(c)))
    {
        let (loss, w) = problem(&mlp, 300, 1);
        let mut ws = loss.workspace(300);
        let all: Vec<usize> = (0..300).collect();
        let got = loss.loss(&w, Rows::All, &mut ws);
        let want = naive_loss(&loss, &w, &all).0;
        assert!(
            (got - want).abs() <= 1e-12 * want,
            "{mlp:?}: {got} vs {want}"
        );
    }
}

#[test]
fn gradient_matches_finite_differences() {
    // n = 600 rows = 3 chunks (3 lanes); the subset has 300 rows with repeats, out of order.
    let n = 600;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
    let subset: Vec<usize> = (0..300).map(|_| rng.random_range(0..n)).collect();
    // Step h = 1e-6: central differences have truncation error ~h²·|L'''| ≈ 1e-12 and rounding
    // error ~ε·|L|/h ≈ 1e-10 relative to a gradient of norm O(0.1–1), far below the 1e-6 bound.
    let h = 1e-6;
    for mlp in architectures()
        .into_iter()
        .flat_map(|m| CHOICES.map(|c| m.clone().with_kernels(c)))
    {
        // 2e-5: four times the ≲ 5e-6 a perturbation can move a pre-activation (see
        // `smooth_problem`); a larger margin is rarely met by the width-18 layers' 10⁴ values.
        let (loss, w) = smooth_problem(&mlp, n, &subset, 2e-5);
        let mut ws = loss.workspace(n);
        let mut grad = vec![0.0; w.len()];
        for rows in [Rows::All, Rows::Subset(&subset)] {
            let value = loss.loss_grad(&w, rows, &mut grad, &mut ws);
            assert_eq!(
                value,
                loss.loss(&w, rows, &mut ws),
                "loss_grad and loss disagree"
            );
            let fd = central_differences(&loss, &w, rows, h);
            let err = rel_err(&grad, &fd);
            assert!(err < 1e-6, "{mlp:?} {rows:?}: relative error {err}");
        }
    }
}

#[test]
fn subset_equals_the_same_rows_as_data() {
    // A minibatch must give exactly what a data set made of those rows gives: same rows, same
    // chunking (both have 300 rows), so bit-identical.
    let mlp = Mlp::from_parts(3, &[6, 6], 2, Activation::Tanh, true, true).unwrap();
    let (loss, w) = problem(&mlp, 500, 3);
    let idx: Vec<usize> = (0..300).map(|i| (i * 7 + 11) % 500).collect();
    let x = loss.x().select(ndarray::Axis(0), &idx);
    let y = loss.y().select(ndarray::Axis(0), &idx);
    let small = MlpLoss::new(mlp, x, y).unwrap();
    let (mut g1, mut g2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
    let l1 = loss.loss_grad(&w, Rows::Subset(&idx), &mut g1, &mut loss.workspace(300));
    let l2 = small.loss_grad(&w, Rows::All, &mut g2, &mut small.workspace(300));
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(g1, g2);
}

#[test]
fn affine_networks_give_the_real_rows_loss_and_gradient_from_their_moments() {
    // The full-batch loss of an identity network is evaluated on 2·in_dim moment-matched rows
    // (nn::moments). It must agree with the evaluation on all n rows for every architecture
    // variant, at points far from w* (xavier init plus random biases) and with uncentred data.
    // Tolerance 1e-10 relative: both are f64 sums over ≤ 2,000 rows (rounding ~1e-13), and the
    // QR of the compression adds ~d·ε; 1e-10 leaves margin while any missing moment would show
    // as an O(1) relative difference.
    for mlp in architectures()
        .into_iter()
        .filter(|m| m.activation() == Activation::Identity)
    {
        let (loss, w) = problem(&mlp, 2000, 21);
        let shifted_x = loss.x().mapv(|v| 2.0 * v + 1.0);
        let shifted_y = loss.y().mapv(|v| v - 0.5);
        let fast = MlpLoss::new(mlp.clone(), shifted_x, shifted_y).unwrap();
        assert!(fast.uses_moments(), "{mlp:?} should use its moments");
        let slow = fast.clone().without_moments();
        assert!(!slow.uses_moments());
        let (mut g_fast, mut g_slow) = (vec![0.0; w.len()], vec![0.0; w.len()]);
        let l_fast = fast.loss_grad(&w, Rows::All, &mut g_fast, &mut fast.workspace(2000));
        let l_slow = slow.loss_grad(&w, Rows::All, &mut g_slow, &mut slow.workspace(2000));
        assert!(
            (l_fast - l_slow).abs() <= 1e-10 * l_slow,
            "{mlp:?}: loss {l_fast} vs {l_slow}"
        );
        let err = rel_err(&g_fast, &g_slow);
        assert!(err < 1e-10, "{mlp:?}: gradient relative error {err}");
    }
    // Nonlinear networks never do: their loss depends on more than two moments.
    let relu = Mlp::from_parts(3, &[4], 2, Activation::Relu, true, false).unwrap();
    assert!(!problem(&relu, 2000, 1).0.uses_moments());
}

#[test]
fn empty_subset_is_zero_not_nan() {
    let mlp = Mlp::from_parts(3, &[4], 2, Activation::Relu, true, false).unwrap();
    let (loss, w) = problem(&mlp, 10, 0);
    let mut grad = vec![1.0; w.len()];
    let value = loss.loss_grad(&w, Rows::Subset(&[]), &mut grad, &mut loss.workspace(1));
    assert_eq!(value, 0.0);
    assert!(grad.iter().all(|&g| g == 0.0));
}

#[test]
fn f32_agrees_with_f64() {
    // Compare f32 and f64 on the *same* (f32-representable) data and parameters, so only the
    // arithmetic differs. f32's unit roundoff is u = 6e-8. Rounding errors of a length-K sum
    // behave like a random walk, ~√K·u; the longest sums are the weight gradients' sums over a
    // chunk's rows (K ≤ 256, √K·u ≈ 1e-6), compounded over ≤ 4 layers: ≈ 4e-6, so 1e-5 bounds the
    // normwise relative gradient error (the worst-case K·u bound, 1e-4, would hide real bugs such
    // as a sum done in lower precision). The loss is accumulated in f64 and inherits only the
    // forward pass's error (sums of ≤ 6 terms per layer, ≲ 6u·4 layers ≈ 1.5e-6): 1e-5 again.
    for mlp in architectures()
        .into_iter()
        .flat_map(|m| CHOICES.map(|c| m.clone().with_kernels(c)))
    {
        let (loss64, w64) = problem(&mlp, 600, 5);
        let x32 = loss64.x().mapv(|v| v as f32);
        let y32 = loss64.y().mapv(|v| v as f32);
        let w32: Vec<f32> = w64.iter().map(|&v| v as f32).collect();
        let loss64 = MlpLoss::new(mlp.clone(), x32.mapv(f64::from), y32.mapv(f64::from)).unwrap();
        let w64: Vec<f64> = w32.iter().map(|&v| f64::from(v)).collect();
        let loss32 = MlpLoss::new(mlp.clone(), x32, y32).unwrap();

        let mut g64 = vec![0.0f64; w64.len()];
        let mut g32 = vec![0.0f32; w32.len()];
        let l64 = loss64.loss_grad(&w64, Rows::All, &mut g64, &mut loss64.workspace(600));
        let l32 = loss32.loss_grad(&w32, Rows::All, &mut g32, &mut loss32.workspace(600));
        let g32: Vec<f64> = g32.iter().map(|&v| f64::from(v)).collect();
        assert!(
            (f64::from(l32) - l64).abs() <= 1e-5 * l64,
            "{mlp:?}: loss {l32} vs {l64}"
        );
        let err = rel_err(&g32, &g64);
        assert!(err < 1e-5, "{mlp:?}: gradient relative error {err}");
    }
}

#[test]
fn parallel_evaluation_is_bit_identical_across_thread_counts() {
    // 3000 rows → 12 chunks in 8 lanes (so some lanes accumulate two chunks), and rows × p is
    // above the parallel threshold, so the lanes really run on several threads in the 2- and
    // 3-thread pools.
    for choice in [KernelChoice::AllNarrow, KernelChoice::AllGemm] {
        let mlp = Mlp::from_parts(8, &[16, 16], 2, Activation::Gelu, true, true)
            .unwrap()
            .with_kernels(choice);
        bit_identical_across_thread_counts(&mlp);
    }
}

fn bit_identical_across_thread_counts(mlp: &Mlp) {
    let (loss, w) = problem(mlp, 3000, 8);
    let subset: Vec<usize> = (0..2000).map(|i| (i * 13) % 3000).collect();
    let run = |threads: usize, rows: Rows<'_>| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut ws = loss.workspace(3000);
            let mut grad = vec![0.0; w.len()];
            let value = loss.loss_grad(&w, rows, &mut grad, &mut ws);
            (
                value.to_bits(),
                grad.iter().map(|g| g.to_bits()).collect::<Vec<u64>>(),
            )
        })
    };
    for rows in [Rows::All, Rows::Subset(&subset)] {
        let one = run(1, rows);
        assert_eq!(one, run(2, rows), "{rows:?}: 1 vs 2 threads");
        assert_eq!(one, run(3, rows), "{rows:?}: 1 vs 3 threads");
    }
}

#[test]
fn workspace_grows_when_given_more_rows_than_announced() {
    let mlp = Mlp::from_parts(3, &[4], 1, Activation::Tanh, true, false).unwrap();
    let (loss, w) = problem(&mlp, 2000, 2);
    let mut small = loss.workspace(10);
    let mut big = loss.workspace(2000);
    assert_eq!(
        loss.loss(&w, Rows::All, &mut small).to_bits(),
        loss.loss(&w, Rows::All, &mut big).to_bits()
    );
}

#[test]
fn narrow_kernels_agree_with_the_general_product() {
    // The two paths compute the same sums in different orders (narrow: per output, bias first
    // and then the inputs in order, and over rows 16 interleaved partial sums added pairwise;
    // gemm: its own blocking). For a sum of K terms each order is within γ_K ≈ K·u of the exact
    // value *relative to Σ|terms|*, so two orders differ by at most 2K·u·Σ|terms|. The longest
    // sums are the weight gradients' sums over a chunk (K ≤ 256 rows), compounded over ≤ 4
    // layers: 2·256·4·u ≈ 2,000u relative to the sum of magnitudes, which on this random data is
    // within 10× of the gradient's norm. So the normwise bound is 2·10⁴·u: 2.2e-12 in f64 (u =
    // 1.1e-16) and 1.2e-3 in f32 (u = 6e-8); the loss, a forward pass summed in f64, gets the
    // same bound. Any indexing mistake shows as an O(1) difference.
    for mlp in architectures().into_iter().chain([
        Mlp::from_parts(8, &[17, 17, 3], 2, Activation::Tanh, true, true).unwrap(),
        Mlp::from_parts(4, &[8, 8], 1, Activation::Relu, true, false).unwrap(),
    ]) {
        let (loss64, w64) = problem(&mlp, 700, 4);
        let eval64 = |choice: KernelChoice| {
            let m = mlp.clone().with_kernels(choice);
            let l = MlpLoss::new(m, loss64.x().clone(), loss64.y().clone()).unwrap();
            let mut g = vec![0.0; w64.len()];
            let v = l.loss_grad(&w64, Rows::All, &mut g, &mut l.workspace(700));
            (v, g)
        };
        let (ln, gn) = eval64(KernelChoice::AllNarrow);
        let (lg, gg) = eval64(KernelChoice::AllGemm);
        let tol64 = 2e4 * f64::EPSILON / 2.0;
        assert!((ln - lg).abs() <= tol64 * lg, "{mlp:?}: loss {ln} vs {lg}");
        let err = rel_err(&gn, &gg);
        assert!(err <= tol64, "{mlp:?}: f64 gradient relative error {err}");

        let x32 = loss64.x().mapv(|v| v as f32);
        let y32 = loss64.y().mapv(|v| v as f32);
        let w32: Vec<f32> = w64.iter().map(|&v| v as f32).collect();
        let eval32 = |choice: KernelChoice| {
            let m = mlp.clone().with_kernels(choice);
            let l = MlpLoss::new(m, x32.clone(), y32.clone()).unwrap();
            let mut g = vec![0.0f32; w32.len()];
            let v = l.loss_grad(&w32, Rows::All, &mut g, &mut l.workspace(700));
            (
                f64::from(v),
                g.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>(),
            )
        };
        let (ln, gn) = eval32(KernelChoice::AllNarrow);
        let (lg, gg) = eval32(KernelChoice::AllGemm);
        let tol32 = 2e4 * f64::from(f32::EPSILON) / 2.0;
        assert!(
            (ln - lg).abs() <= tol32 * lg,
            "{mlp:?}: f32 loss {ln} vs {lg}"
        );
        let err = rel_err(&gn, &gg);
        assert!(err <= tol32, "{mlp:?}: f32 gradient relative error {err}");
    }
}
