//! The one matrix product the MLP kernels use: C ← α·A·B + β·C on ndarray views.
//!
//! Every product of the forward and backward passes goes through [`gemm`], so the backend is
//! chosen here and nowhere else. Inputs are views of the flat parameter buffer, of the data and
//! of preallocated workspace buffers; nothing is allocated. With β = 0, C is not read (it may
//! hold stale values or NaN).
//!
//! Backend: ndarray's built-in `general_mat_mul`, which dispatches f32/f64 to the
//! `matrixmultiply` crate, single-threaded. Parallelism comes from evaluating row chunks on rayon
//! (see `loss.rs`), which keeps results independent of the thread count. The measurements behind
//! this choice are in `benches/gradient.rs`'s header.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::numeric::Real;

/// C ← α·A·B + β·C.
#[inline]
pub(crate) fn gemm<F: Real>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    ndarray::linalg::general_mat_mul(alpha, a, b, beta, c);
}
