//! The MLP itself: architecture, initialization, and the forward/backward kernels on one chunk of
//! rows.
//!
//! Input: a [`ModelConfig`] (resolved: `widths` set), a flat parameter buffer laid out as
//! [`Layout`] documents, and a block of input rows. Output: predictions, and (backward) the
//! gradient of a loss with respect to the parameters, accumulated into a flat buffer.
//!
//! The network, with `A_0 = x` and hidden outputs `A_1 … A_depth`:
//!
//! ```text
//! Z_l     = A_l · W_l + b_l                      l = 0 … depth
//! A_{l+1} = φ(Z_l) (+ A_l when layer l skips)    l < depth      (hidden layers)
//! ŷ       = Z_depth                              (linear output)
//! ```
//!
//! Layer `l` *skips* (a residual connection) when `skip_connections` is on, `1 ≤ l < depth`, and
//! its input and output widths are equal: residuals join consecutive *hidden* layers only, so the
//! first layer (from x) and the output layer never skip, even when their widths happen to match.
//!
//! The kernels work on a [`Scratch`], preallocated for a fixed number of rows; they never
//! allocate. Rows are samples, and every buffer is *feature-major* (feature j of row r at
//! `j·m + r`), so that the loops of the narrow kernels run over rows. Each layer's products are
//! one pass over the chunk: the narrow kernels ([`narrow`]) for layers of at most
//! [`narrow_max`] inputs and outputs (32 in f64 on AVX-512, else 16), a general matrix product
//! (on strided views of the same buffers) for wider ones; which one follows from the layer's
//! shape, the precision, the instruction set and the [`KernelChoice`] the model was built with.
//! One exception, by measurement: in f32 on AVX-512 a wide layer's weight gradient runs on the
//! narrow kernels' register tiles, which read both operands in place where the general product
//! first copies one of them transposed (`narrow/tiles.rs` has the figures).
//!
//! The passes' own loops around those products (bias broadcast, relu and φ', residual sums, the
//! φ' products of the backward pass) are compiled once per instruction set, like the narrow
//! kernels, and the CPU's widest one runs (`forward_avx512` …). The release build targets the
//! x86-64 baseline, so until 2026-12-06 they ran on 16-byte SSE2 vectors: 13 % of a base62
//! gradient (perf), 10 % after. Elementwise operations round the same in every copy, so the bits
//! do not change (a test compares every instruction set). Base HMC (32 → [62, 62, 62] → 1,
//! n = 20,000, 4 chains on 2 cores, three alternating runs, gradients/s): f64 64.9 / 65.9 / 67.6
//! → 65.7 / 68.6 / 70.3, f32 116.9 / 121.2 / 131.4 → 129.8 / 132.6 / 140.7, traces and the
//! trained w* byte-identical.
//!
//! Measured and left out (Intel Xeon VM with AVX-512, 2026-12-07): a wide layer's bias, φ and
//! residual sum applied one column at a time after the product (a column of the chunk stays in
//! L1 through the three steps), instead of the biases as gemm's starting C and one pass over the
//! whole layer per step. base62 f64 on one thread, six alternating runs of each build: median
//! 21.45 → 21.0 ms, best 19.17 → 19.13 ms, within the machine's noise; and a base target trained
//! through it ended at a w* that differs in the last bits, for a reason not found, although the
//! loss and gradient probes of `gradient_tests` gave the same bits. Nor did relu and the
//! residual sum fused into one pass (same bits): base HMC (the sweep above, f64) 99.6–103.5
//! gradients/s against 102.0–105.8 without, four alternating runs (2026-12-07).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, ShapeBuilder};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::NnError;
use super::activation::{activate, relu, relu_derivative};
use super::aligned::AlignedBuf;
use super::layout::{LayerShape, Layout};
use super::matmul::gemm;
use super::narrow::{self, Cols, Isa};
use crate::config::schema::{Activation, Init, ModelConfig};
use crate::numeric::Real;

/// Rows per chunk. Measured in `benches/gradient.rs`: 256 keeps a chunk's activations of a
/// width-~70 network within L2 while making the weight-gradient products long enough. 512 was
/// measured again for f32 (half the bytes per row; Intel Xeon VM, 2026-12-07): base HMC in f32
/// 190.3–195.2 → 191.1–199.9 gradients/s in four alternating runs, `small8-tanh` unchanged:
/// within the noise, and it would change every sum's order, so 256 stays. Again for the small
/// model in f64 (fewer chunks, fewer reductions of partial sums; same VM, later that day):
/// `small8-tanh` 0.0262–0.0290 → 0.0269–0.0279 ms on one thread in four alternating runs, noise.
pub const CHUNK_ROWS: usize = 256;

/// Layers with at most this many inputs and outputs use the narrow kernels ([`narrow`]) in f64
/// on AVX-512; wider ones the general matrix product. Measured at the two ends first (`narrow.rs`'s
/// figures): at widths ≤ 8 the narrow kernels are as fast or faster, at width 62 gemm is 2.6×
/// faster. Between them (2026-12-07, Intel Xeon VM with AVX-512, relu 6 → [w, w] → 1 over 2,000
/// rows, one thread, best ms of three runs, by size with the boundary at 16 against narrow
/// kernels throughout): w = 24 0.237–0.244 against 0.195–0.201, w = 32 0.346–0.363 against
/// 0.320–0.348, w = 48 0.655–0.674 against 0.651–0.685. So 32 in f64 (16 before). A tanh
/// 6 → [24, 24] → 1 sweep over 2,000 rows (HMC and MCLMC, 4 chains, two jobs on 2 cores, three
/// alternating runs of each build): HMC 3,164–3,340 → 3,813–4,040 gradients/s, MCLMC
/// 3,098–3,219 → 3,652–3,801, training 2.62–2.67 → 2.29–2.34 s; λ̂ 55.27 ± 0.13 → 55.39 ±
/// 0.13 (HMC, each build on the w* it trained: the kernels' sums run in another order).
pub const NARROW_MAX_F64: usize = 32;

/// [`NARROW_MAX_F64`] in f32 (and in f64 without AVX-512: [`narrow_max`]). In f32, gemm's
/// products with the weight gradients on the tiles (`narrow/tiles.rs`) win already at 24: the
/// measurements above, f32, 0.098–0.102 against 0.116–0.121 (w = 24), 0.157–0.162 against
/// 0.191–0.204 (32), 0.289–0.325 against 0.358–0.395 (48). f32 blocks of 16 rows are one
/// register, so gemm's tiles do more per load there.
///
/// Measured and left out (2026-12-07, Intel Xeon VM, after the AVX-512 weight-gradient tiles):
/// a wide layer with one output (base's 62 → 1) on the narrow kernels too. On one thread,
/// five alternating runs of `cargo bench --bench gradient`, median of the best ms: base f32
/// 8.70 → 8.36, f64 14.74 → 14.12; but base HMC (4 chains on 2 cores, alternating runs)
/// 199.6–209.5 → 194.6–215.0 gradients/s in f32 (eight runs each) and 107.8–111.9 → 106.5–113.9
/// in f64 (three): no difference where it counts, for a change of every base trace's bits.
pub const NARROW_MAX_F32: usize = 16;

/// The widest layer (inputs or outputs) the narrow kernels take in F's precision on `isa`.
/// [`NARROW_MAX_F64`] holds on AVX-512 only. On AVX2 the narrow kernels have neither the
/// register tiles nor the registers (half blocks in f64): run on their AVX2 loops on the same
/// machine (relu 6 → [w, w] → 1, f64, one thread, best ms of four runs, under load 2.8), they
/// took 0.412–0.446 at w = 24 and 0.730–0.773 at 32, against gemm's 0.231–0.247 and 0.339–0.354
/// (with its AVX-512 kernels, which an AVX2 CPU lacks, but those are ~1.5× faster than its AVX2
/// ones: `matmul.rs`). So 16 stays there.
pub(crate) fn narrow_max<F: Real>(isa: Isa) -> usize {
    if std::mem::size_of::<F>() == 8 && isa == Isa::Avx512 {
        NARROW_MAX_F64
    } else {
        NARROW_MAX_F32
    }
}

/// An MLP architecture (no parameters: those live in a flat buffer the caller owns).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    layout: Layout,
    activation: Activation,
    /// `skip[l]`: layer `l` adds its input to its activated output.
    skip: Vec<bool>,
    /// How layers get their kernels ([`Mlp::kernel`]).
    choice: KernelChoice,
    /// The instruction set the narrow kernels are compiled for, detected once here.
    isa: Isa,
}

impl Mlp {
    /// The MLP a resolved model config describes.
    pub fn new(cfg: &ModelConfig) -> Result<Self, NnError> {
        let hidden: &[usize] = match &cfg.widths {
            Some(w) => w,
            None if cfg.depth == 0 => &[],
            None => return Err(NnError::UnresolvedWidths { depth: cfg.depth }),
        };
        if hidden.len() != cfg.depth {
            return Err(NnError::WidthsDepth {
                widths: hidden.len(),
                depth: cfg.depth,
            });
        }
        Self::from_parts(
            cfg.in_dim,
            hidden,
            cfg.out_dim,
            cfg.activation,
            cfg.bias,
            cfg.skip_connections,
        )
    }

    /// The MLP `in_dim → hidden… → out_dim`.
    pub fn from_parts(
        in_dim: usize,
        hidden: &[usize],
        out_dim: usize,
        activation: Activation,
        bias: bool,
        skip_connections: bool,
    ) -> Result<Self, NnError> {
        let layout = Layout::new(in_dim, hidden, out_dim, bias)?;
        let depth = hidden.len();
        let skip = layout
            .layers()
            .iter()
            .enumerate()
            .map(|(l, s)| skip_connections && l >= 1 && l < depth && s.fan_in == s.fan_out)
            .collect();
        Ok(Mlp {
            layout,
            activation,
            skip,
            choice: KernelChoice::BySize,
            isa: Isa::detect(),
        })
    }

    /// The same network with its layers' kernels assigned as `choice` says. Every choice
    /// computes the same function; results differ only in rounding (summation order).
    pub fn with_kernels(mut self, choice: KernelChoice) -> Self {
        self.choice = choice;
        self
    }

    /// The code that computes layer `l`'s products in F's precision.
    fn kernel<F: Real>(&self, l: usize) -> Kernel {
        let s = &self.layout.layers()[l];
        self.choice
            .kernel(s.fan_in, s.fan_out, narrow_max::<F>(self.isa))
    }

    /// The same network with its loops compiled for `isa` (tests compare instruction sets).
    #[cfg(test)]
    pub(crate) fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of parameters p.
    pub fn n_params(&self) -> usize {
        self.layout.n_params()
    }

    pub fn in_dim(&self) -> usize {
        self.layout.in_dim()
    }

    pub fn out_dim(&self) -> usize {
        self.layout.out_dim()
    }

    /// Number of hidden layers.
    pub fn depth(&self) -> usize {
        self.layout.layers().len() - 1
    }

    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// `skip_flags()[l]`: whether affine layer `l` adds its input to its output.
    pub fn skip_flags(&self) -> &[bool] {
        &self.skip
    }

    /// Whether affine layer `l` carries a residual connection (the tests check the layout
    /// against it; the forward pass reads the layout directly).
    #[cfg(test)]
    pub fn skips(&self, l: usize) -> bool {
        self.skip[l]
    }

    /// Fresh parameters: weights ~ N(0, σ²) times `scale`, biases 0.
    ///
    /// σ² is 2/fan_in (`he`, for relu), 2/(fan_in + fan_out) (`xavier`/Glorot normal) or
    /// 1/fan_in (`lecun`). Zero biases are the usual convention and keep a teacher's function
    /// determined by its weights alone. Values are drawn in f64 in buffer order, so f32 and f64
    /// initializations from the same RNG agree up to rounding.
    pub fn init_params<F: Real, R: Rng + ?Sized>(
        &self,
        init: Init,
        scale: f64,
        rng: &mut R,
    ) -> Vec<F> {
        let mut w = vec![F::zero(); self.n_params()];
        for l in 0..self.layout.layers().len() {
            let s = &self.layout.layers()[l];
            let (fi, fo) = (s.fan_in as f64, s.fan_out as f64);
            let var = match init {
                Init::He => 2.0 / fi,
                Init::Xavier => 2.0 / (fi + fo),
                Init::Lecun => 1.0 / fi,
            };
            let std = scale * var.sqrt();
            for x in self.layout.weight_mut(&mut w, l).iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *x = F::of(std * z);
            }
        }
        w
    }

    /// Predictions ŷ for every row of `x` (allocates; for data generation and inspection, not
    /// for hot loops, which go through `MlpLoss`).
    pub fn predict<F: Real>(&self, w: &[F], x: ArrayView2<'_, F>) -> Result<Array2<F>, NnError> {
        self.layout.check_len(w.len())?;
        if x.ncols() != self.in_dim() {
            return Err(NnError::DataShape {
                what: "x",
                expected: self.in_dim(),
                found: x.ncols(),
            });
        }
        let n = x.nrows();
        let od = self.out_dim();
        let mut y = Array2::zeros((n, od));
        // The kernels read the data feature-major: one row of xt per input feature.
        let xt = x.t().as_standard_layout().into_owned();
        let xt = xt
            .as_slice()
            .expect("a standard-layout array is contiguous");
        let rows = n.clamp(1, CHUNK_ROWS);
        let mut s = Scratch::new(self, rows);
        let mut start = 0;
        while start < n {
            let m = rows.min(n - start);
            let input = Cols {
                buf: &xt[start..],
                stride: n,
                rows: m,
                width: self.in_dim(),
            };
            self.forward(w, input, &mut s, false);
            for (j, col) in s.out[..od * m].chunks_exact(m).enumerate() {
                for (r, &v) in col.iter().enumerate() {
                    y[(start + r, j)] = v;
                }
            }
            start += m;
        }
        Ok(y)
    }

    /// Forward pass over the rows of `x` (at most the scratch's capacity), feature-major.
    /// Leaves ŷ in `s.out` (`out_dim × m`), the hidden activations in `s.hidden` and, when
    /// `with_deriv`, φ'(Z) in `s.deriv`, all feature-major and packed (stride m).
    pub(crate) fn forward<F: Real>(
        &self,
        w: &[F],
        x: Cols<'_, F>,
        s: &mut Scratch<F>,
        with_deriv: bool,
    ) {
        narrow::dispatch!(
            self.isa,
            Self::forward_avx512,
            Self::forward_avx2,
            Self::forward_loops,
            (self, w, x, s, with_deriv)
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn forward_avx512<F: Real>(&self, w: &[F], x: Cols<'_, F>, s: &mut Scratch<F>, d: bool) {
        self.forward_loops(w, x, s, d)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_avx2<F: Real>(&self, w: &[F], x: Cols<'_, F>, s: &mut Scratch<F>, d: bool) {
        self.forward_loops(w, x, s, d)
    }

    /// [`forward`](Self::forward)'s body, inlined into a copy per instruction set: its own
    /// loops (biases, activations, residual sums) are then compiled for the CPU's widest
    /// vectors, not for the baseline's 16-byte ones. Elementwise operations give the same bits
    /// in every copy.
    #[inline(always)]
    fn forward_loops<F: Real>(
        &self,
        w: &[F],
        x: Cols<'_, F>,
        s: &mut Scratch<F>,
        with_deriv: bool,
    ) {
        let m = x.rows;
        debug_assert!(m <= s.rows && x.width == self.in_dim());
        let depth = self.depth();
        for (l, shape) in self.layout.layers().iter().enumerate() {
            let (fi, fo) = (shape.fan_in, shape.fan_out);
            let (before, after) = s.hidden.split_at_mut(l.min(depth));
            let input = if l == 0 {
                x
            } else {
                packed(&before[l - 1], m, fi)
            };
            let out: &mut [F] = if l < depth {
                &mut after[0][..m * fo]
            } else {
                &mut s.out[..m * fo]
            };
            let wl = &w[shape.w_offset..shape.w_offset + fi * fo];
            let bias = shape.b_offset.map(|b| &w[b..b + fo]);
            let kernel = self.kernel::<F>(l);
            match kernel {
                Kernel::Narrow => narrow::affine(self.isa, wl, bias, input, out),
                Kernel::Gemm => {
                    // A·W alone; the bias is added in the pass over the outputs below.
                    let mut z = rows_view_mut(out, m, fo);
                    gemm(
                        F::one(),
                        &rows_view(input),
                        &self.layout.weight(w, l),
                        F::zero(),
                        &mut z,
                    );
                }
            }
            // The narrow kernels added the bias already.
            let bias = bias.filter(|_| kernel == Kernel::Gemm);
            if l < depth {
                let d = with_deriv.then(|| &mut s.deriv[l][..m * fo]);
                let prev = self.skip[l].then(|| &before[l - 1][..m * fi]);
                finish_layer(self.activation, bias, prev, out, d);
            } else if let Some(b) = bias {
                add_bias(b, out);
            }
        }
    }

    /// Backward pass after [`forward`](Self::forward) with derivatives, on the same `x`.
    ///
    /// On entry `s.out` holds dL/dŷ for the chunk's rows (feature-major); the gradient with
    /// respect to the parameters is *added* to `grad`, so one buffer can accumulate many chunks.
    /// Destroys the scratch's contents.
    pub(crate) fn backward<F: Real>(
        &self,
        w: &[F],
        x: Cols<'_, F>,
        s: &mut Scratch<F>,
        grad: &mut [F],
    ) {
        narrow::dispatch!(
            self.isa,
            Self::backward_avx512,
            Self::backward_avx2,
            Self::backward_loops,
            (self, w, x, s, grad)
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn backward_avx512<F: Real>(&self, w: &[F], x: Cols<'_, F>, s: &mut Scratch<F>, g: &mut [F]) {
        self.backward_loops(w, x, s, g)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn backward_avx2<F: Real>(&self, w: &[F], x: Cols<'_, F>, s: &mut Scratch<F>, g: &mut [F]) {
        self.backward_loops(w, x, s, g)
    }

    /// [`backward`](Self::backward)'s body, one copy per instruction set as for
    /// [`forward_loops`](Self::forward_loops).
    #[inline(always)]
    fn backward_loops<F: Real>(&self, w: &[F], x: Cols<'_, F>, s: &mut Scratch<F>, grad: &mut [F]) {
        let m = x.rows;
        let depth = self.depth();
        for l in (0..=depth).rev() {
            let shape = &self.layout.layers()[l];
            let (fi, fo) = (shape.fan_in, shape.fan_out);
            // G_l = dL/dZ_l: the output gradient, or what the previous step left in deriv[l].
            let (below, rest) = s.deriv.split_at_mut(l.min(depth));
            let g: &[F] = if l == depth {
                &s.out[..m * fo]
            } else {
                &rest[0][..m * fo]
            };
            let g = packed(g, m, fo);
            let input = if l == 0 {
                x
            } else {
                packed(&s.hidden[l - 1], m, fi)
            };
            let wl = &w[shape.w_offset..shape.w_offset + fi * fo];
            let kernel = self.kernel::<F>(l);
            // The weight gradient: the narrow kernels' for narrow layers, and for wide ones where
            // their tiles are faster than gemm (`KernelChoice::AllGemm` keeps gemm's).
            let narrow_weights = kernel == Kernel::Narrow
                || (self.choice == KernelChoice::BySize && narrow::takes_wide::<F>(self.isa, m));
            if narrow_weights {
                let (dw, db) = weight_and_bias_mut(grad, shape);
                narrow::weight_grad(self.isa, input, g, dw, db);
            } else {
                gemm(
                    F::one(),
                    &rows_view(input).t(),
                    &rows_view(g),
                    F::one(),
                    &mut self.layout.weight_mut(grad, l),
                );
                if let (_, Some(db)) = weight_and_bias_mut(grad, shape) {
                    for (d, col) in db.iter_mut().zip(g.buf.chunks_exact(m)) {
                        *d += narrow::sum(col);
                    }
                }
            }
            if l == 0 {
                break; // nobody needs dL/dx
            }
            // dL/dA_l = G_l·W_lᵀ, plus dL/dA_{l+1} (already in `back`) through the residual;
            // then G_{l-1} = dL/dA_l ⊙ φ'(Z_{l-1}), in place of φ'.
            let back = &mut s.back[..m * fi];
            let deriv = &mut below[l - 1][..m * fi];
            match kernel {
                Kernel::Narrow => {
                    // dL/dA_l is read again only by layer l − 1's residual connection.
                    let keep = self.skip[l - 1];
                    narrow::back_prop(self.isa, wl, g, self.skip[l], keep, back, deriv)
                }
                Kernel::Gemm => {
                    let beta = if self.skip[l] { F::one() } else { F::zero() };
                    gemm(
                        F::one(),
                        &rows_view(g),
                        &self.layout.weight(w, l).t(),
                        beta,
                        &mut rows_view_mut(back, m, fi),
                    );
                    deriv
                        .iter_mut()
                        .zip(back.iter())
                        .for_each(|(d, &b)| *d *= b);
                }
            }
        }
    }
}

/// Z ← Z + b, bias j added to column j of the feature-major `z`.
#[inline(always)]
fn add_bias<F: Real>(b: &[F], z: &mut [F]) {
    let m = z.len() / b.len().max(1);
    for (col, &bj) in z.chunks_exact_mut(m).zip(b) {
        col.iter_mut().for_each(|v| *v += bj);
    }
}

/// A hidden layer's outputs from its product Z = A·W (feature-major, in `z`): adds the bias
/// (when the product left it out), applies φ, writes φ' to `d` when given, and adds the
/// residual input `prev`. relu with derivatives (the sampling loop) does all of it in one pass
/// over the values; other activations take a pass for the bias, one for φ and one for the
/// residual sum.
///
/// Until 2026-12-07 the gemm path filled Z with the bias and had the backend add the product to
/// it (β = 1, so it read Z back), and relu and the residual sum were two more passes. The backend
/// starts its sums from the value in Z, so the bias came first; here it comes last, one rounding
/// later: each z moves by at most an ulp or so of its sum, within the bound the tests hold the
/// two kernels to (`gradient_tests`: k·ε·Σ|terms|). Traces change with it, and so do trained
/// targets: Adam's thousands of steps on a non-convex loss carry last-bit differences into
/// another trajectory (the f32 base target's layers moved by 4–28 % in relative norm), as a
/// target retrained with another BLAS would; the tests that check targets and estimates
/// (minimum checks, known LLCs) hold for the new ones as for the old. Measured on the 2-core
/// Intel Xeon VM: base HMC (32 → [62, 62, 62] → 1 with residual connections, n = 20,000, 4
/// chains on 2 threads, 1,440 gradients; alternating runs) f32 169.4–179.0 (median 174.7) →
/// 181.6–192.7 (median 182.9) gradients/s in five runs of each build, f64 89.6 / 92.7 → 94.4 /
/// 97.7 in two; the `base` gradient benchmark, f32, one thread, best ms of four alternating
/// runs, 9.65–10.26 → 9.55–10.09.
#[inline(always)]
fn finish_layer<F: Real>(
    act: Activation,
    bias: Option<&[F]>,
    prev: Option<&[F]>,
    z: &mut [F],
    mut d: Option<&mut [F]>,
) {
    if let (Activation::Relu, Some(b), Some(d)) = (act, bias, d.as_deref_mut()) {
        let m = z.len() / b.len().max(1);
        for (j, (zc, dc)) in z.chunks_exact_mut(m).zip(d.chunks_exact_mut(m)).enumerate() {
            let bj = b[j];
            let step = |z: &mut F, d: &mut F| {
                let v = *z + bj;
                *d = relu_derivative(v);
                *z = relu(v);
            };
            match prev {
                Some(prev) => {
                    let pc = &prev[j * m..(j + 1) * m];
                    for ((z, d), &p) in zc.iter_mut().zip(dc.iter_mut()).zip(pc) {
                        step(z, d);
                        *z += p;
                    }
                }
                None => zc
                    .iter_mut()
                    .zip(dc.iter_mut())
                    .for_each(|(z, d)| step(z, d)),
            }
        }
        return;
    }
    if let Some(b) = bias {
        add_bias(b, z);
    }
    activate(act, z, d);
    if let Some(prev) = prev {
        z.iter_mut().zip(prev).for_each(|(a, &p)| *a += p);
    }
}

/// Which code computes a layer's products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The row-loop kernels of [`narrow`].
    Narrow,
    /// The general matrix product of [`gemm()`].
    Gemm,
}

/// How [`Mlp::with_kernels`] assigns kernels to layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// By the layer's shape and the precision (the default; see [`narrow_max`]); in f32 on
    /// AVX-512, a wide layer's weight gradient then runs on the narrow kernels' tiles
    /// ([`narrow::takes_wide`]). [`KernelChoice::AllGemm`] keeps gemm's there too.
    BySize,
    /// The general matrix product for every layer (the reference for tests and benchmarks).
    AllGemm,
    /// The narrow-layer kernels for every layer, whatever its width.
    AllNarrow,
}

impl KernelChoice {
    fn kernel(self, fan_in: usize, fan_out: usize, narrow_max: usize) -> Kernel {
        let narrow = match self {
            KernelChoice::BySize => fan_in.max(fan_out) <= narrow_max,
            KernelChoice::AllGemm => false,
            KernelChoice::AllNarrow => true,
        };
        if narrow { Kernel::Narrow } else { Kernel::Gemm }
    }
}

/// W_l and b_l of a gradient buffer, as plain slices.
fn weight_and_bias_mut<'a, F>(
    grad: &'a mut [F],
    shape: &LayerShape,
) -> (&'a mut [F], Option<&'a mut [F]>) {
    let w_len = shape.fan_in * shape.fan_out;
    let rest = &mut grad[shape.w_offset..];
    let (dw, rest) = rest.split_at_mut(w_len);
    // The layout puts b_l right after W_l.
    let db = shape.b_offset.map(|b| {
        debug_assert_eq!(b, shape.w_offset + w_len);
        &mut rest[..shape.fan_out]
    });
    (dw, db)
}

/// Preallocated buffers for evaluating up to `rows` rows of one MLP. Every buffer is
/// feature-major and packed for the current chunk of m rows: feature j of row r at `j·m + r`.
#[derive(Debug, Clone)]
pub(crate) struct Scratch<F> {
    rows: usize,
    /// Per hidden layer, width × rows: Z_l, then A_{l+1} after the activation.
    hidden: Vec<AlignedBuf<F>>,
    /// Per hidden layer, width × rows: φ'(Z_l), then G_l during the backward pass.
    deriv: Vec<AlignedBuf<F>>,
    /// out_dim × rows: ŷ, then dL/dŷ.
    out: AlignedBuf<F>,
    /// (widest hidden layer) × rows: dL/dA of the layer being back-propagated.
    back: AlignedBuf<F>,
}

impl<F: Real> Scratch<F> {
    pub(crate) fn new(mlp: &Mlp, rows: usize) -> Self {
        let layers = mlp.layout.layers();
        let widths: Vec<usize> = layers[..layers.len() - 1]
            .iter()
            .map(|s| s.fan_out)
            .collect();
        let widest = widths.iter().copied().max().unwrap_or(0);
        Scratch {
            rows,
            hidden: widths
                .iter()
                .map(|&h| AlignedBuf::zeros(rows * h))
                .collect(),
            deriv: widths
                .iter()
                .map(|&h| AlignedBuf::zeros(rows * h))
                .collect(),
            out: AlignedBuf::zeros(rows * mlp.out_dim()),
            back: AlignedBuf::zeros(rows * widest),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The first `len` entries of the output buffer: ŷ (or dL/dŷ) of the chunk's m rows,
    /// feature-major (output j of row r at `j·m + r`).
    pub(crate) fn out_mut(&mut self, len: usize) -> &mut [F] {
        &mut self.out[..len]
    }
}

/// A packed feature-major block: `width` features of `m` rows, stride m.
fn packed<F>(buf: &[F], m: usize, width: usize) -> Cols<'_, F> {
    Cols {
        buf: &buf[..m * width],
        stride: m,
        rows: m,
        width,
    }
}

/// A feature-major block as the `rows × width` matrix it stores (row stride 1).
fn rows_view<F>(c: Cols<'_, F>) -> ArrayView2<'_, F> {
    let len = if c.width == 0 {
        0
    } else {
        (c.width - 1) * c.stride + c.rows
    };
    ArrayView2::from_shape((c.rows, c.width).strides((1, c.stride)), &c.buf[..len])
        .expect("scratch buffers are sized for their views")
}

/// A packed feature-major buffer as a mutable `m × width` matrix.
fn rows_view_mut<F>(buf: &mut [F], m: usize, width: usize) -> ArrayViewMut2<'_, F> {
    ArrayViewMut2::from_shape((m, width).strides((1, m)), &mut buf[..m * width])
        .expect("scratch buffers are sized for their views")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn predict_matches_a_hand_computed_network() {
        // 2 → 2 → 1, relu, with biases: checkable by hand.
        let mlp = Mlp::from_parts(2, &[2], 1, Activation::Relu, true, false).unwrap();
        // W0 = [[1, -1], [2, 0.5]], b0 = [0.5, -1], W1 = [[1], [-2]], b1 = [0.25]
        let w = [1.0, -1.0, 2.0, 0.5, 0.5, -1.0, 1.0, -2.0, 0.25];
        let x = array![[1.0, 1.0], [-1.0, 2.0]];
        let y = mlp.predict(&w, x.view()).unwrap();
        // row 0: z = [1+2+0.5, -1+0.5-1] = [3.5, -1.5] → a = [3.5, 0] → 3.5 + 0.25
        // row 1: z = [-1+4+0.5, 1+1-1] = [3.5, 1] → a = [3.5, 1] → 3.5 - 2 + 0.25
        assert_eq!(y, array![[3.75], [1.75]]);
    }

    #[test]
    fn skip_connections_join_equal_hidden_layers_only() {
        let mlp = Mlp::from_parts(3, &[3, 3, 2, 2], 2, Activation::Tanh, true, true).unwrap();
        // Layer 0 (x → h1) never skips even though 3 == 3; the output layer never skips.
        let skips: Vec<bool> = (0..5).map(|l| mlp.skips(l)).collect();
        assert_eq!(skips, [false, true, false, true, false]);
        let off = Mlp::from_parts(3, &[3, 3], 2, Activation::Tanh, true, false).unwrap();
        assert!(!off.skips(1));
    }

    #[test]
    fn residual_adds_the_layer_input() {
        // Identity activation, no bias: h2 = W1 h1 + h1, so the output equals x·W0·(W1 + I)·W2.
        let with = Mlp::from_parts(1, &[2, 2], 1, Activation::Identity, false, true).unwrap();
        let without = Mlp::from_parts(1, &[2, 2], 1, Activation::Identity, false, false).unwrap();
        let w = [
            1.0, 2.0, /* W1 */ 0.5, 0.0, 0.0, 0.5, /* W2 */ 1.0, 1.0,
        ];
        let mut w_plus_i = w;
        w_plus_i[2] += 1.0;
        w_plus_i[5] += 1.0;
        let x = array![[1.0], [3.0]];
        let a = with.predict(&w, x.view()).unwrap();
        let b = without.predict(&w_plus_i, x.view()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn config_errors_are_values() {
        let mut cfg = ModelConfig {
            in_dim: 2,
            out_dim: 1,
            depth: 2,
            widths: None,
            target_params: Some(50),
            activation: Activation::Relu,
            bias: true,
            skip_connections: false,
            init: Init::He,
        };
        assert!(matches!(
            Mlp::new(&cfg),
            Err(NnError::UnresolvedWidths { depth: 2 })
        ));
        cfg.widths = Some(vec![3]);
        assert!(matches!(
            Mlp::new(&cfg),
            Err(NnError::WidthsDepth {
                widths: 1,
                depth: 2
            })
        ));
        cfg.widths = Some(vec![3, 4]);
        assert_eq!(Mlp::new(&cfg).unwrap().n_params(), 3 * 3 + 4 * 4 + 5);
        let mlp = Mlp::new(&cfg).unwrap();
        let bad = mlp.predict(&[0.0; 3], array![[1.0, 2.0]].view());
        assert!(matches!(bad, Err(NnError::ParamLength { .. })));
    }

    #[test]
    fn every_instruction_set_gives_the_same_loss_and_gradient_bits() {
        use crate::nn::MlpLoss;
        use crate::posterior::{LossModel, Rows};
        use rand::{Rng, SeedableRng};
        // The passes' own loops (biases, activations, residual sums, φ' products) are compiled
        // once per instruction set; elementwise operations must give the same bits in each.
        // Each kernel alone (by size, the choice itself depends on the instruction set:
        // `narrow_max`), 300 rows so a chunk is partial, and every activation.
        let shapes: [(&[usize], bool); 3] =
            [(&[8, 8], true), (&[20, 20, 20], true), (&[5, 40], false)];
        let acts = [
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
            Activation::Identity,
        ];
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        for (hidden, skip) in shapes {
            for act in acts {
                for choice in [KernelChoice::AllNarrow, KernelChoice::AllGemm] {
                    let mlp = Mlp::from_parts(3, hidden, 2, act, true, skip)
                        .unwrap()
                        .with_kernels(choice);
                    let w: Vec<f64> = mlp.init_params(Init::He, 1.0, &mut rng);
                    let x = Array2::from_shape_fn((300, 3), |_| rng.random_range(-2.0..2.0));
                    let y = Array2::from_shape_fn((300, 2), |_| rng.random_range(-1.0..1.0));
                    let mut first: Option<(f64, Vec<f64>)> = None;
                    for isa in Isa::all_available() {
                        let loss = MlpLoss::new(mlp.clone().with_isa(isa), x.clone(), y.clone())
                            .unwrap()
                            .without_moments();
                        let mut ws = loss.workspace(300);
                        let mut grad = vec![0.0; w.len()];
                        let l = loss.loss_grad(&w, Rows::All, &mut grad, &mut ws);
                        assert!(l.is_finite() && grad.iter().all(|g| g.is_finite()));
                        match &first {
                            None => first = Some((l, grad)),
                            Some((l0, g0)) => {
                                let same = l.to_bits() == l0.to_bits()
                                    && grad.iter().zip(g0).all(|(a, b)| a.to_bits() == b.to_bits());
                                assert!(
                                    same,
                                    "{hidden:?} {act:?} {choice:?}: {isa:?} differs from the baseline"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_narrow_kernels_take_wider_layers_in_f64_on_avx512_only() {
        // `narrow_max`: 32 in f64 with AVX-512, 16 otherwise (measured there only).
        let mlp = Mlp::from_parts(6, &[24, 40], 1, Activation::Relu, true, false).unwrap();
        let avx512 = mlp.clone().with_isa(Isa::Avx512);
        assert_eq!(avx512.kernel::<f64>(0), Kernel::Narrow, "6 → 24, f64");
        assert_eq!(avx512.kernel::<f64>(1), Kernel::Gemm, "24 → 40, f64");
        assert_eq!(avx512.kernel::<f64>(2), Kernel::Gemm, "40 → 1, f64");
        assert_eq!(avx512.kernel::<f32>(0), Kernel::Gemm, "6 → 24, f32");
        let avx2 = mlp.clone().with_isa(Isa::Avx2);
        assert_eq!(avx2.kernel::<f64>(0), Kernel::Gemm, "6 → 24, f64 on AVX2");
        let all_gemm = avx512.with_kernels(KernelChoice::AllGemm);
        assert_eq!(all_gemm.kernel::<f64>(0), Kernel::Gemm, "AllGemm");
    }

    #[test]
    fn init_scales_follow_the_scheme() {
        use rand::SeedableRng;
        // One wide layer so the sample variance is a good estimate: 400·300 = 120k draws give a
        // relative standard error of √(2/120k) ≈ 0.4%, so 3% is a > 5σ bound.
        let mlp = Mlp::from_parts(400, &[], 300, Activation::Identity, true, false).unwrap();
        for (init, var) in [
            (Init::He, 2.0 / 400.0),
            (Init::Xavier, 2.0 / 700.0),
            (Init::Lecun, 1.0 / 400.0),
        ] {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
            let w: Vec<f64> = mlp.init_params(init, 2.0, &mut rng);
            let weights = &w[..400 * 300];
            let sample_var = weights.iter().map(|x| x * x).sum::<f64>() / weights.len() as f64;
            let want = 4.0 * var;
            assert!(
                (sample_var / want - 1.0).abs() < 0.03,
                "{init:?}: {sample_var} vs {want}"
            );
            assert!(w[400 * 300..].iter().all(|&b| b == 0.0));
        }
    }
}
