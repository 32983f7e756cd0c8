//! The MLP's empirical loss on its data: the [`LossModel`] the trainer and the samplers use.
//!
//! L(w) = (1/N) Σ_rows Σ_outputs (ŷ − y)², over all n rows or a minibatch of row indices.
//! Input: an [`Mlp`], X (n × in_dim) and Y (n × out_dim), then per call a flat parameter buffer
//! and the rows. Output: the loss and (optionally) its gradient, written into a caller's buffer.
//!
//! Evaluation is split into *chunks* of at most [`CHUNK_ROWS`] rows (small enough that a chunk's
//! activations stay in cache) and the chunks into at most [`MAX_LANES`] *lanes* of consecutive
//! chunks. Each lane accumulates its chunks, in order, into its own gradient buffer; the lanes run
//! in parallel on rayon and are then summed in lane order. Chunk and lane boundaries depend only
//! on the number of rows, never on the number of threads or on scheduling, so the result is
//! bit-identical whatever the thread count. All buffers live in the [`MlpWorkspace`]: after the
//! first call of a given size nothing is allocated.
//!
//! A network that is affine in its input (identity activation) evaluates its *full-batch* loss
//! on a moment-matched data set of 2·in_dim rows instead ([`super::moments`]): the same loss and
//! gradient for every parameter vector, at a cost independent of n. Minibatches use the real rows.
//!
//! One call evaluates one chain's parameters; chains are not batched into one pass over the
//! data. Measured (2026-12-04, 2-core Zen 3 VM, f64, one thread, best ms of two alternating
//! runs each): an experimental evaluation of 4 chains chunk by chunk (every chain on a chunk
//! before the next chunk, so each chunk of X is read once for all of them) against 4 calls in
//! a row took small8-tanh 0.2249 / 0.2260 against 0.2237 / 0.2254, dln432 on all 10,000 rows
//! 0.2798 / 0.2805 against 0.2830 / 0.2846, base62 127.4 / 128.4 against 127.0 / 127.2: within
//! ±1.3 %. A chunk's X is a few KB that stays in cache either way, and the cost is each chain's
//! own products and activations, so the experiment was not kept.
//!
//! Nor did the layout issue 13 proposed, chains in SIMD lanes (each weight stored as C values,
//! one per chain, so every multiply-add serves C chains). That pays only where a call's fixed
//! cost dominates: the 8 moment-matched rows of a deep linear network. Measured (2026-12-08,
//! Intel Xeon VM with AVX-512, one thread, a scratch kernel with the chains in lanes of `[f64;
//! C]` against this module's `loss_grad` called per chain, best of three, ns per gradient, with
//! the network's widths fixed at run time as here):
//! - [4, 3, 2], 8 rows: 212 per chain; batched 198–202 for C = 2 (1.08–1.13×), 124 for C = 4
//!   (1.71×), 88 for C = 8 (2.46×), and 372 for C = 1;
//! - [4, 3, 3, 3, 1], 8 rows: 369 per chain; batched 224 for C = 4 (1.65×), 158 for C = 8;
//! - [4, 3, 2], all 1,000 rows: 4,420 per chain; batched 14,770 for C = 4 (0.30×), because rows
//!   in lanes are the better vectors once there are many rows.
//!
//! Gradients agreed to 9·10⁻¹⁵ but not to the bit (the rows are summed in another order).
//! So batching would win only on moment-matched deep linear networks. There it would need chains
//! that step in lockstep, which HMC's per-chain trajectory lengths and NUTS's trees are not. Four
//! chains on two cores would give two lanes per thread: 1.06–1.14× on a gradient (1.7× for a
//! job given one CPU, if its four chains stepped in lockstep). Those networks already sample at
//! 4–14× BlackJAX's gradients per second (README). Not built.
//!
//! Nor did lanes that run one after another share one activation buffer (the same sums, so the
//! same bits; the idea: one buffer stays in L1 across a gradient's chunks). Small tanh HMC (4
//! chains on 2 threads, 2,000 draws; Intel Xeon VM, 2026-12-07, three alternating runs):
//! 64,740–65,253 → 61,800–62,852 gradients/s.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::NnError;
use super::aligned::AlignedBuf;
use super::mlp::{CHUNK_ROWS, Mlp, Scratch};
use super::moments;
use super::narrow::{BLOCK, Cols};
use crate::config::schema::Activation;
use crate::numeric::Real;
use crate::posterior::{LossModel, Rows};

/// Upper bound on the lanes of one evaluation, hence on its parallelism. A constant (not the
/// thread count) so that results do not depend on the machine. Each lane holds a gradient-sized
/// buffer and one chunk's activations, so this also bounds a workspace's memory; 8 covers the
/// cores a sampler job is usually given, and parallel chains add parallelism on top.
pub const MAX_LANES: usize = 8;

/// Below this many multiply-adds (rows × p) the lanes run one after another: handing work to
/// other threads costs more than it saves. Does not change results, only who computes them.
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// An MLP together with its data set.
#[derive(Debug, Clone)]
pub struct MlpLoss<F> {
    mlp: Mlp,
    x: Array2<F>,
    y: Array2<F>,
    /// X and Y again, feature-major, as the kernels read them.
    cols: Columns<F>,
    /// For affine networks: the small data set the full-batch loss is evaluated on, and the
    /// constant its mean squared error misses (see [`moments`]).
    moments: Option<(Columns<F>, f64)>,
}

/// A data set stored feature-major: column i of X is `x[i·stride .. i·stride + n]`, likewise
/// for Y. The stride is n rounded up to whole cache lines and the buffers are line-aligned
/// ([`AlignedBuf`]), so every column, and every chunk of it (chunks start on whole register
/// blocks), starts on a cache line whatever n is.
#[derive(Debug, Clone)]
struct Columns<F> {
    x: AlignedBuf<F>,
    y: AlignedBuf<F>,
    n: usize,
    stride: usize,
}

impl<F: Real> Columns<F> {
    fn of(x: ArrayView2<'_, F>, y: ArrayView2<'_, F>) -> Self {
        let n = x.nrows();
        let line = 64 / std::mem::size_of::<F>();
        let stride = n.div_ceil(line) * line;
        let t = |a: ArrayView2<'_, F>| {
            let mut buf = AlignedBuf::zeros(stride * a.ncols());
            if stride == 0 {
                return buf; // no rows: nothing to copy (and no chunks of length 0)
            }
            for (col, dst) in a.columns().into_iter().zip(buf.chunks_exact_mut(stride)) {
                dst[..n].iter_mut().zip(col).for_each(|(d, &v)| *d = v);
            }
            buf
        };
        Columns {
            x: t(x),
            y: t(y),
            n,
            stride,
        }
    }
}

impl<F: Real> MlpLoss<F> {
    /// Pairs a model with its data; X must be n × in_dim and Y n × out_dim.
    pub fn new(mlp: Mlp, x: Array2<F>, y: Array2<F>) -> Result<Self, NnError> {
        if x.ncols() != mlp.in_dim() {
            return Err(NnError::DataShape {
                what: "X",
                expected: mlp.in_dim(),
                found: x.ncols(),
            });
        }
        if y.ncols() != mlp.out_dim() {
            return Err(NnError::DataShape {
                what: "Y",
                expected: mlp.out_dim(),
                found: y.ncols(),
            });
        }
        if y.nrows() != x.nrows() {
            return Err(NnError::RowMismatch {
                x: x.nrows(),
                y: y.nrows(),
            });
        }
        // Chunks of X are taken as row-major views without copying.
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let y = if y.is_standard_layout() {
            y
        } else {
            y.as_standard_layout().into_owned()
        };
        let moments = (mlp.activation() == Activation::Identity
            && moments::worth_compressing(x.nrows(), mlp.in_dim()))
        .then(|| {
            let m = moments::compress(x.view(), y.view());
            (Columns::of(m.x.view(), m.y.view()), m.offset)
        });
        let cols = Columns::of(x.view(), y.view());
        Ok(MlpLoss {
            mlp,
            x,
            y,
            cols,
            moments,
        })
    }

    /// The same loss, always evaluated on the real rows: the reference the moment-matched
    /// evaluation is tested against, and a baseline for benchmarks.
    pub fn without_moments(mut self) -> Self {
        self.moments = None;
        self
    }

    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    pub fn x(&self) -> &Array2<F> {
        &self.x
    }

    pub fn y(&self) -> &Array2<F> {
        &self.y
    }

    /// Whether the full-batch loss is evaluated on moment-matched rows (affine networks).
    pub fn uses_moments(&self) -> bool {
        self.moments.is_some()
    }

    /// Gives back the model and the data.
    pub fn into_parts(self) -> (Mlp, Array2<F>, Array2<F>) {
        (self.mlp, self.x, self.y)
    }

    /// Loss, and the gradient into `grad` when given.
    fn evaluate(
        &self,
        w: &[F],
        rows: Rows<'_>,
        grad: Option<&mut [F]>,
        ws: &mut MlpWorkspace<F>,
    ) -> F {
        assert_eq!(
            w.len(),
            self.mlp.n_params(),
            "parameter buffer has the wrong length"
        );
        // Full batch of an affine network: the moment-matched rows, plus the constant part.
        let (data, offset) = match (rows, &self.moments) {
            (Rows::All, Some((m, offset))) => (m, *offset),
            _ => (&self.cols, 0.0),
        };
        let n_rows = match rows {
            Rows::All => data.n,
            Rows::Subset(idx) => idx.len(),
        };
        if n_rows == 0 {
            // The mean over no rows: 0 by convention, rather than 0/0.
            if let Some(g) = grad {
                g.fill(F::zero());
            }
            return F::zero();
        }
        let plan = LanePlan::new(n_rows);
        ws.ensure(&self.mlp, plan.lanes);
        let with_grad = grad.is_some();
        // dL/dŷ = (2/N)(ŷ − y): the mean's 1/N is applied once, at the top of the backward pass.
        let scale = F::of(2.0 / n_rows as f64);
        let run = |(k, lane): (usize, &mut Lane<F>)| {
            self.run_lane(&plan, k, data, w, rows, with_grad, scale, lane)
        };
        let lanes = &mut ws.lanes[..plan.lanes];
        if plan.lanes > 1 && n_rows.saturating_mul(self.mlp.n_params()) >= PARALLEL_MIN_WORK {
            lanes.par_iter_mut().enumerate().for_each(run);
        } else {
            lanes.iter_mut().enumerate().for_each(run);
        }
        // Fixed-order reduction: lane 0, then lane 1, …
        let sse: f64 = lanes.iter().map(|l| l.sse).sum();
        if let Some(g) = grad {
            g.copy_from_slice(&lanes[0].grad);
            for lane in &lanes[1..] {
                g.iter_mut().zip(&lane.grad).for_each(|(a, &b)| *a += b);
            }
        }
        F::of(sse / n_rows as f64 + offset)
    }

    /// Evaluates lane `k`: its chunks in order, accumulating squared error and gradient.
    #[allow(clippy::too_many_arguments)]
    fn run_lane(
        &self,
        plan: &LanePlan,
        k: usize,
        data: &Columns<F>,
        w: &[F],
        rows: Rows<'_>,
        with_grad: bool,
        scale: F,
        lane: &mut Lane<F>,
    ) {
        let in_dim = self.mlp.in_dim();
        let od = self.mlp.out_dim();
        let stride = data.stride;
        lane.sse = 0.0;
        if with_grad {
            lane.grad.fill(F::zero());
        }
        for c in plan.chunks_of_lane(k) {
            let (start, end) = plan.chunk_rows(c);
            let m = end - start;
            // The chunk's inputs and targets, feature-major: columns of the data in place, or a
            // minibatch's rows gathered into the lane's own buffers.
            let (x, y) = match rows {
                Rows::All => (
                    Cols {
                        buf: &data.x[start..],
                        stride,
                        rows: m,
                        width: in_dim,
                    },
                    Cols {
                        buf: &data.y[start..],
                        stride,
                        rows: m,
                        width: od,
                    },
                ),
                Rows::Subset(idx) => {
                    let idx = &idx[start..end];
                    // From the row-major copies: one cache line per row, not one per feature.
                    let (xs, ys) = (row_major(&self.x), row_major(&self.y));
                    gather(xs, in_dim, idx, &mut lane.x[..in_dim * m]);
                    gather(ys, od, idx, &mut lane.y[..od * m]);
                    (
                        Cols {
                            buf: &lane.x,
                            stride: m,
                            rows: m,
                            width: in_dim,
                        },
                        Cols {
                            buf: &lane.y,
                            stride: m,
                            rows: m,
                            width: od,
                        },
                    )
                }
            };
            self.mlp.forward(w, x, &mut lane.scratch, with_grad);
            // Residuals against the chunk's targets; ŷ is overwritten by dL/dŷ.
            let out = lane.scratch.out_mut(m * od);
            for (j, pred) in out.chunks_exact_mut(m).enumerate() {
                lane.sse += residuals(pred, y.col(j), scale);
            }
            if with_grad {
                self.mlp.backward(w, x, &mut lane.scratch, &mut lane.grad);
            }
        }
    }
}

/// Copies rows `idx` of a row-major matrix of `width` columns into `dst`, feature-major and
/// packed (feature i of the k-th chosen row at `i·idx.len() + k`).
///
/// Widths up to 8 (the inputs and outputs of most networks LLC sweeps train) get a copy
/// compiled for their width ([`gather_fixed`]). Before (until 2026-12-07) every row went through
/// a loop over its width, and gathering was 40 % of an SGLD step on a deep linear network
/// (perf: minibatches of 256 rows from n = 10,000). Same values copied, so the same bits.
/// Measured (Intel Xeon VM, one thread, three alternating runs, sampling seconds of the SGLD
/// preset's 4 × 202,000 steps): deep linear [4, 3, 2] 2.459–2.506 → 2.260–2.305 s; small tanh
/// 4 → [8, 8] → 1 (4 × 52,000 steps, n = 1,000) 1.930–1.970 → 1.805–1.862 s; λ̂ identical.
/// What remains of a step there is the minibatch's random rows (cache latency, ~25 %), drawing
/// its indices (~30 %: `sgld.rs`'s partial Fisher–Yates; a permutation of u32 instead of usize,
/// to keep it in L1, changed nothing measurable) and the network (~30 %).
fn gather<F: Copy>(src: &[F], width: usize, idx: &[usize], dst: &mut [F]) {
    match width {
        1 => gather_fixed::<F, 1>(src, idx, dst),
        2 => gather_fixed::<F, 2>(src, idx, dst),
        3 => gather_fixed::<F, 3>(src, idx, dst),
        4 => gather_fixed::<F, 4>(src, idx, dst),
        5 => gather_fixed::<F, 5>(src, idx, dst),
        6 => gather_fixed::<F, 6>(src, idx, dst),
        7 => gather_fixed::<F, 7>(src, idx, dst),
        8 => gather_fixed::<F, 8>(src, idx, dst),
        _ => {
            let m = idx.len();
            for (k, &r) in idx.iter().enumerate() {
                for (i, &v) in src[r * width..(r + 1) * width].iter().enumerate() {
                    dst[i * m + k] = v;
                }
            }
        }
    }
}

/// [`gather`] for rows of `W` values: each row one fixed-size load, its values stored into the
/// W feature columns with no inner loop.
#[inline(always)]
fn gather_fixed<F: Copy, const W: usize>(src: &[F], idx: &[usize], dst: &mut [F]) {
    let m = idx.len();
    let (rows, _) = src.as_chunks::<W>();
    let columns: [&mut [F]; W] = {
        let mut rest = &mut dst[..W * m];
        std::array::from_fn(|_| {
            let (col, tail) = std::mem::take(&mut rest).split_at_mut(m);
            rest = tail;
            col
        })
    };
    for (k, &r) in idx.iter().enumerate() {
        let row = &rows[r];
        for i in 0..W {
            columns[i][k] = row[i];
        }
    }
}

/// The elements of a standard-layout array, row by row.
fn row_major<F>(a: &Array2<F>) -> &[F] {
    a.as_slice()
        .expect("MlpLoss keeps X and Y in standard layout")
}

/// Σ (ŷ − y)² over one output column, and ŷ replaced by `scale`·(ŷ − y).
///
/// Squared errors are summed in f64, in `BLOCK` interleaved partial sums (added in order at
/// the end) so the loop vectorizes: in f32 a sum over 10⁵ rows would lose digits that
/// LLC = nβ(L − L0) needs.
fn residuals<F: Real>(pred: &mut [F], target: &[F], scale: F) -> f64 {
    let mut acc = [0.0f64; BLOCK];
    let mut pb = pred.chunks_exact_mut(BLOCK);
    let mut tb = target.chunks_exact(BLOCK);
    for (ps, ts) in (&mut pb).zip(&mut tb) {
        for t in 0..BLOCK {
            let e = ps[t] - ts[t];
            acc[t] += (e * e).f64();
            ps[t] = scale * e;
        }
    }
    for (t, (p, &y)) in pb
        .into_remainder()
        .iter_mut()
        .zip(tb.remainder())
        .enumerate()
    {
        let e = *p - y;
        acc[t] += (e * e).f64();
        *p = scale * e;
    }
    acc.iter().sum()
}

impl<F: Real> LossModel<F> for MlpLoss<F> {
    type Workspace = MlpWorkspace<F>;

    fn dim(&self) -> usize {
        self.mlp.n_params()
    }

    fn n_data(&self) -> usize {
        self.x.nrows()
    }

    fn workspace(&self, max_rows: usize) -> MlpWorkspace<F> {
        let mut ws = MlpWorkspace { lanes: Vec::new() };
        ws.ensure(&self.mlp, LanePlan::new(max_rows.max(1)).lanes);
        ws
    }

    fn loss(&self, w: &[F], rows: Rows<'_>, ws: &mut MlpWorkspace<F>) -> F {
        self.evaluate(w, rows, None, ws)
    }

    fn loss_grad(&self, w: &[F], rows: Rows<'_>, grad: &mut [F], ws: &mut MlpWorkspace<F>) -> F {
        assert_eq!(
            grad.len(),
            self.mlp.n_params(),
            "gradient buffer has the wrong length"
        );
        self.evaluate(w, rows, Some(grad), ws)
    }
}

/// Scratch memory of [`MlpLoss`]: one set of buffers per lane.
///
/// Sized by `workspace(max_rows)`; a call with more rows grows it once (an allocation on that
/// call only), so `max_rows` is a hint, not a limit.
#[derive(Debug, Clone)]
pub struct MlpWorkspace<F> {
    lanes: Vec<Lane<F>>,
}

impl<F: Real> MlpWorkspace<F> {
    fn ensure(&mut self, mlp: &Mlp, lanes: usize) {
        while self.lanes.len() < lanes {
            self.lanes.push(Lane::new(mlp));
        }
    }
}

#[derive(Debug, Clone)]
struct Lane<F> {
    /// Gathered inputs and targets of a minibatch chunk (in_dim and out_dim × CHUNK_ROWS).
    x: AlignedBuf<F>,
    y: AlignedBuf<F>,
    scratch: Scratch<F>,
    /// This lane's gradient sum (p).
    grad: Vec<F>,
    /// This lane's sum of squared errors.
    sse: f64,
}

impl<F: Real> Lane<F> {
    fn new(mlp: &Mlp) -> Self {
        let scratch = Scratch::new(mlp, CHUNK_ROWS);
        debug_assert_eq!(scratch.rows(), CHUNK_ROWS);
        Lane {
            x: AlignedBuf::zeros(CHUNK_ROWS * mlp.in_dim()),
            y: AlignedBuf::zeros(CHUNK_ROWS * mlp.out_dim()),
            scratch,
            grad: vec![F::zero(); mlp.n_params()],
            sse: 0.0,
        }
    }
}

/// How `n` rows split into chunks and lanes. A function of `n` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LanePlan {
    rows: usize,
    chunks: usize,
    lanes: usize,
}

impl LanePlan {
    fn new(rows: usize) -> Self {
        // Chunks of at most CHUNK_ROWS − BLOCK rows on average, so that rounding their
        // boundaries down to whole register blocks (below) keeps every chunk within CHUNK_ROWS.
        let chunks = rows.div_ceil(CHUNK_ROWS - BLOCK).max(1);
        LanePlan {
            rows,
            chunks,
            lanes: chunks.min(MAX_LANES),
        }
    }

    /// Row range of chunk `c`: chunks are balanced (sizes differ by at most one block), and
    /// every chunk but the last is a whole number of register blocks (`narrow::BLOCK` rows), so
    /// the narrow kernels run their row-at-a-time tails once per evaluation, not once per chunk.
    fn chunk_rows(&self, c: usize) -> (usize, usize) {
        let boundary = |c: usize| {
            if c == self.chunks {
                self.rows
            } else {
                c * self.rows / self.chunks / BLOCK * BLOCK
            }
        };
        (boundary(c), boundary(c + 1))
    }

    /// Chunks of lane `k`: a balanced run of consecutive chunks.
    fn chunks_of_lane(&self, k: usize) -> std::ops::Range<usize> {
        (k * self.chunks / self.lanes)..((k + 1) * self.chunks / self.lanes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_plan_covers_every_row_once() {
        for n in [1, 5, 255, 256, 257, 1000, 4097, 20_000, 100_003] {
            let plan = LanePlan::new(n);
            let mut next = 0;
            for k in 0..plan.lanes {
                for c in plan.chunks_of_lane(k) {
                    let (a, b) = plan.chunk_rows(c);
                    assert_eq!(a, next, "n = {n}");
                    assert!(
                        b > a && b - a <= CHUNK_ROWS,
                        "n = {n}: chunk {c} is {a}..{b}"
                    );
                    assert!(b == n || b % BLOCK == 0, "n = {n}: chunk {c} ends at {b}");
                    next = b;
                }
            }
            assert_eq!(next, n);
            assert!(plan.lanes <= MAX_LANES);
        }
    }

    #[test]
    fn gather_copies_the_chosen_rows_feature_major_at_every_width() {
        // Widths 1–8 take the fixed-width copies, 9 and 11 the general loop.
        for width in [1, 2, 3, 4, 5, 6, 7, 8, 9, 11] {
            let n = 50;
            let src: Vec<f64> = (0..n * width).map(|v| v as f64).collect();
            let idx = [7, 0, 49, 7, 23];
            let mut dst = vec![f64::NAN; width * idx.len()];
            gather(&src, width, &idx, &mut dst);
            for (k, &r) in idx.iter().enumerate() {
                for i in 0..width {
                    assert_eq!(
                        dst[i * idx.len() + k],
                        (r * width + i) as f64,
                        "width {width}"
                    );
                }
            }
        }
    }
}
