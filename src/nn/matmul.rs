//! The one matrix product the MLP kernels use: C ← α·A·B + β·C on ndarray views.
//!
//! Every product of the forward and backward passes goes through [`gemm`], so the backend is
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

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::numeric::Real;

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
