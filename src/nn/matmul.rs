//! The one matrix product the MLP kernels use: C ← α·A·B + β·C on ndarray views.
//!
//! Every product of the forward and backward passes goes through [`gemm()`], so the backend is
//! chosen here and nowhere else. Inputs are views of the flat parameter buffer, of the data and
//! of preallocated workspace buffers; our code allocates nothing (the backend packs operands in
//! a per-thread buffer, plus a small bookkeeping allocation per call). With β = 0, C is not read
//! (it may hold stale values or NaN).
//!
//! Backend: the `gemm` crate, single-threaded (parallelism comes from evaluating row chunks on
//! rayon, see `loss.rs`, which keeps results independent of the thread count). Its `x86-v4`
//! feature adds AVX-512 kernels, picked at run time only on CPUs that have AVX-512. Chosen by
//! measurement (`benches/gradient.rs`, base size, CPU time per full-batch gradient on one
//! thread, AVX-512 machine): ndarray's default `matrixmultiply` 24.3 ms f64 / 13.0 ms f32;
//! `gemm` with AVX2 kernels only 20.0 / 11.0; `gemm` with AVX-512 13.7 / 7.4.
//! `matrixmultiply-threading` did not help: our chunks are below its threading threshold, and
//! one whole-batch product threaded by it cost 40 ms of CPU (activations fall out of cache).
//!
//! One setting of the backend is ours ([`configure_backend`]): `gemm` copies ("packs") the left
//! operand into its own layout before the products whenever the result has more than 8 × 6 columns
//! (f64; more than 8 of its column tiles), which every product of a width-62 layer has. Our left
//! operands are feature-major chunks that its kernels can read as they are (unit row stride, 256
//! rows), so that copy only moved the chunk through L2 once more: in perf, 5.4 % of a base62
//! gradient was the forward pass's packing and 6.3 % the backward pass's (that share includes the
//! transposing copy below). Packing changes no arithmetic (the same products, summed in the same
//! order), so the bits stay. The weight gradients' copy stays: `gemm` turns their product around so
//! that its result is column-major, and its left operand is then Gᵀ, which a feature-major chunk
//! holds with unit *column* stride; that copy is a transposition, another path of the backend.
//! (In f32 on AVX-512 those weight gradients do not come here: `nn/narrow/tiles.rs` computes them
//! without the copy, faster there, by measurement.)
//! Measured (`benches/gradient.rs`, one thread, five alternating runs of each setting, Intel Xeon
//! VM with AVX-512, 2026-12-07; means of the runs' medians): base62 f64 20.97 → 19.79 ms, f32 11.02
//! → 10.35 ms; `base` 18.8 → 17.8 ms (three runs); the narrow-layer cases unchanged; wide layers,
//! where packing could pay for itself, not slower (three alternating runs, medians): 32 → [256,
//! 256] → 1 at n = 5,000 f64 34.1–35.6 → 32.3–33.6 ms, f32 16.2–17.0 → 15.7–16.4 ms; 64 → \[1024\] →
//! 1 at n = 2,000 f64 18.4–19.4 → 17.6–18.8 ms, f32 6.6–7.1 → 6.5–7.3 ms. Base HMC (32 → [62, 62,
//! 62] → 1 with residual connections, n = 20,000, 4 chains on 2 cores, 1,440 gradients; three
//! alternating runs of each build, gradients/s): f64 97.5 / 99.3 / 101.4 → 103.4 / 104.1 / 105.9,
//! f32 178.5 / 186.9 / 189.4 → 187.4 / 195.6 / 196.1; traces and the trained w* byte-identical.

use std::sync::Once;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::numeric::Real;

/// Never pack the left operand per column tile (see the module doc): `gemm`'s threshold is in
/// units of its column tile, and 256 (its maximum) exceeds any layer's width.
const LHS_PACKING_THRESHOLD: usize = 256;

/// Applies our settings of the backend, once per process. Its settings are process-wide atomics
/// that change only speed, never results, so setting them from here is safe at any time.
fn configure_backend() {
    static CONFIGURED: Once = Once::new();
    CONFIGURED.call_once(|| gemm::set_lhs_packing_threshold_single_thread(LHS_PACKING_THRESHOLD));
}

/// C ← α·A·B + β·C. Shapes must agree (m × k times k × n into m × n).
#[inline]
pub(crate) fn gemm<F: Real>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.dim() == (m, n),
        "gemm shapes: {:?} · {:?} into {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    configure_backend();
    if k == 0 {
        // An empty product: C ← β·C, without reading C when β = 0.
        let zero = beta == F::zero();
        c.map_inplace(|x| *x = if zero { F::zero() } else { beta * *x });
        return;
    }
    // SAFETY: each view guarantees that every element its dimensions and strides address is
    // valid (for reads, and for writes through `c`) while the borrows live, which spans this
    // call; `c` is a unique borrow, so it aliases neither `a` nor `b`; and `F` is f32 or f64,
    // the types `gemm::gemm` supports. `gemm` computes dst ← α'·dst + β'·lhs·rhs, so our
    // (α, β) are passed as (β, α), and dst is read only when β ≠ 0.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c.strides()[1],
            c.strides()[0],
            beta != F::zero(),
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};
    use rand::{Rng, SeedableRng};

    /// Reference product by plain loops.
    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|l| a[[i, l]] * b[[l, j]]).sum()
        })
    }

    #[test]
    fn matches_loops_for_transposed_and_accumulating_products() {
        // Small integers: every product and sum is exact in f64, so results must be equal.
        let a = Array2::from_shape_fn((7, 5), |(i, j)| (i as f64) - 2.0 * (j as f64));
        let b = Array2::from_shape_fn((5, 3).f(), |(i, j)| (i * j) as f64 - 1.0);
        let mut c = Array2::from_elem((7, 3), f64::NAN);
        gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
        assert_eq!(c, naive(&a, &b), "β = 0 must ignore the NaN in C");
        let before = c.clone();
        gemm(2.0, &a.view(), &b.view(), 1.0, &mut c.view_mut());
        assert_eq!(c, &before + &(naive(&a, &b) * 2.0));
        // Aᵀ·A through a transposed view (non-unit column stride).
        let mut g = Array2::zeros((5, 5));
        gemm(1.0, &a.t(), &a.view(), 0.0, &mut g.view_mut());
        assert_eq!(g, naive(&a.t().to_owned(), &a));
    }

    #[test]
    fn packing_the_left_operand_or_not_gives_the_same_bits() {
        // A layer's product as the forward pass makes it: 256 feature-major rows (unit row
        // stride) times a 62 × 62 weight, onto a bias; random values, so rounding happens.
        let (m, k, n) = (256, 62, 62);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let mut next = || rng.random::<f64>() - 0.5;
        let a = Array2::from_shape_fn((m, k).f(), |_| next());
        let b = Array2::from_shape_fn((k, n), |_| next());
        let c0 = Array2::from_shape_fn((m, n).f(), |_| next());
        let product = || {
            let mut c = c0.clone();
            gemm(1.0, &a.view(), &b.view(), 1.0, &mut c.view_mut());
            c
        };
        let unpacked = product();
        // The backend's default threshold (8 column tiles): this shape is then packed. The
        // setting is process-wide; other tests running meanwhile get the same bits either way.
        gemm::set_lhs_packing_threshold_single_thread(8);
        let packed = product();
        gemm::set_lhs_packing_threshold_single_thread(LHS_PACKING_THRESHOLD);
        let bits = |c: &Array2<f64>| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&unpacked), bits(&packed));
        // And it is the product: sums of 62 products of values below 0.5 in size plus one
        // more, so rounding errors are ~1e-15; 1e-12 leaves room and still catches any wrong term.
        assert!(
            unpacked
                .iter()
                .zip(&naive(&a, &b))
                .zip(&c0)
                .all(|((x, y), z)| (x - y - z).abs() < 1e-12)
        );
    }

    #[test]
    fn empty_inner_dimension_scales_c() {
        let a = Array2::<f32>::zeros((2, 0));
        let b = Array2::<f32>::zeros((0, 3));
        let mut c = Array2::from_elem((2, 3), 4.0f32);
        gemm(1.0, &a.view(), &b.view(), 0.5, &mut c.view_mut());
        assert!(c.iter().all(|&x| x == 2.0));
        gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
        assert!(c.iter().all(|&x| x == 0.0));
    }
}
