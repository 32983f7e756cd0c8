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
//! allocate. Rows are samples, so every layer is one matrix product over the whole chunk.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::NnError;
use super::activation::activate;
use super::layout::Layout;
use super::matmul::gemm;
use crate::config::schema::{Activation, Init, ModelConfig};
use crate::numeric::Real;

/// Rows per chunk. Measured in `benches/gradient.rs`: 256 keeps a chunk's activations of a
/// width-~70 network within L2 while making the weight-gradient products long enough.
pub const CHUNK_ROWS: usize = 256;

/// An MLP architecture (no parameters: those live in a flat buffer the caller owns).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    layout: Layout,
    activation: Activation,
    /// `skip[l]`: layer `l` adds its input to its activated output.
    skip: Vec<bool>,
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
        })
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
        let rows = n.clamp(1, CHUNK_ROWS);
        let mut s = Scratch::new(self, rows);
        let mut start = 0;
        while start < n {
            let m = rows.min(n - start);
            let xs = x.slice(ndarray::s![start..start + m, ..]);
            self.forward(w, &xs, &mut s, false);
            y.slice_mut(ndarray::s![start..start + m, ..])
                .assign(&s.out_view(m, od));
            start += m;
        }
        Ok(y)
    }

    /// Forward pass over the rows of `x` (at most the scratch's capacity). Leaves ŷ in
    /// `s.out`, the hidden activations in `s.hidden` and, when `with_deriv`, φ'(Z) in `s.deriv`.
    pub(crate) fn forward<F: Real>(
        &self,
        w: &[F],
        x: &ArrayView2<'_, F>,
        s: &mut Scratch<F>,
        with_deriv: bool,
    ) {
        let m = x.nrows();
        debug_assert!(m <= s.rows);
        let depth = self.depth();
        for (l, shape) in self.layout.layers().iter().enumerate() {
            let (fi, fo) = (shape.fan_in, shape.fan_out);
            let (before, after) = s.hidden.split_at_mut(l.min(depth));
            let input = if l == 0 {
                x.view()
            } else {
                view(&before[l - 1], m, fi)
            };
            let out: &mut [F] = if l < depth {
                &mut after[0][..m * fo]
            } else {
                &mut s.out[..m * fo]
            };
            // Z = b (broadcast over rows) + A·W, or A·W alone without biases.
            let beta = match shape.b_offset {
                Some(b) => {
                    let bias = &w[b..b + fo];
                    out.chunks_exact_mut(fo)
                        .for_each(|row| row.copy_from_slice(bias));
                    F::one()
                }
                None => F::zero(),
            };
            let mut z = view_mut(out, m, fo);
            gemm(F::one(), &input, &self.layout.weight(w, l), beta, &mut z);
            if l < depth {
                let d = with_deriv.then(|| &mut s.deriv[l][..m * fo]);
                activate(self.activation, out, d);
                if self.skip[l] {
                    let prev = &before[l - 1][..m * fi];
                    out.iter_mut().zip(prev).for_each(|(a, &p)| *a += p);
                }
            }
        }
    }

    /// Backward pass after [`forward`](Self::forward) with derivatives, on the same `x`.
    ///
    /// On entry `s.out` holds dL/dŷ for the chunk's rows; the gradient with respect to the
    /// parameters is *added* to `grad`, so one buffer can accumulate many chunks. Destroys the
    /// scratch's contents.
    pub(crate) fn backward<F: Real>(
        &self,
        w: &[F],
        x: &ArrayView2<'_, F>,
        s: &mut Scratch<F>,
        grad: &mut [F],
    ) {
        let m = x.nrows();
        let depth = self.depth();
        for l in (0..=depth).rev() {
            let shape = &self.layout.layers()[l];
            let (fi, fo) = (shape.fan_in, shape.fan_out);
            // G_l = dL/dZ_l: the output gradient, or what the previous step left in deriv[l].
            let g: &[F] = if l == depth {
                &s.out[..m * fo]
            } else {
                &s.deriv[l][..m * fo]
            };
            let gv = view(g, m, fo);
            let input = if l == 0 {
                x.view()
            } else {
                view(&s.hidden[l - 1], m, fi)
            };
            gemm(
                F::one(),
                &input.t(),
                &gv,
                F::one(),
                &mut self.layout.weight_mut(grad, l),
            );
            if let Some(mut db) = self.layout.bias_mut(grad, l) {
                let db = db
                    .as_slice_mut()
                    .expect("bias views of the flat buffer are contiguous");
                for row in g.chunks_exact(fo) {
                    db.iter_mut().zip(row).for_each(|(d, &gi)| *d += gi);
                }
            }
            if l == 0 {
                break; // nobody needs dL/dx
            }
            // dL/dA_l = G_l·W_lᵀ, plus dL/dA_{l+1} (already in `back`) through the residual.
            let beta = if self.skip[l] { F::one() } else { F::zero() };
            let mut back = view_mut(&mut s.back[..m * fi], m, fi);
            gemm(
                F::one(),
                &gv,
                &self.layout.weight(w, l).t(),
                beta,
                &mut back,
            );
            // G_{l-1} = dL/dA_l ⊙ φ'(Z_{l-1}), in place of φ'.
            let back = &s.back[..m * fi];
            s.deriv[l - 1][..m * fi]
                .iter_mut()
                .zip(back)
                .for_each(|(d, &b)| *d *= b);
        }
    }
}

/// Preallocated buffers for evaluating up to `rows` rows of one MLP.
#[derive(Debug, Clone)]
pub(crate) struct Scratch<F> {
    rows: usize,
    /// Per hidden layer, rows × width: Z_l, then A_{l+1} after the activation.
    hidden: Vec<Vec<F>>,
    /// Per hidden layer, rows × width: φ'(Z_l), then G_l during the backward pass.
    deriv: Vec<Vec<F>>,
    /// rows × out_dim: ŷ, then dL/dŷ.
    out: Vec<F>,
    /// rows × (widest hidden layer): dL/dA of the layer being back-propagated.
    back: Vec<F>,
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
            hidden: widths.iter().map(|&h| vec![F::zero(); rows * h]).collect(),
            deriv: widths.iter().map(|&h| vec![F::zero(); rows * h]).collect(),
            out: vec![F::zero(); rows * mlp.out_dim()],
            back: vec![F::zero(); rows * widest],
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// ŷ (or dL/dŷ) of the first `m` rows as an `m × out_dim` view.
    pub(crate) fn out_view(&self, m: usize, out_dim: usize) -> ArrayView2<'_, F> {
        view(&self.out[..m * out_dim], m, out_dim)
    }

    /// The first `m × out_dim` entries of the output buffer, row-major.
    pub(crate) fn out_mut(&mut self, len: usize) -> &mut [F] {
        &mut self.out[..len]
    }
}

/// A row-major `m × k` view of the start of a buffer.
fn view<F>(buf: &[F], m: usize, k: usize) -> ArrayView2<'_, F> {
    ArrayView2::from_shape((m, k), &buf[..m * k])
        .expect("scratch buffers are sized for their views")
}

fn view_mut<F>(buf: &mut [F], m: usize, k: usize) -> ArrayViewMut2<'_, F> {
    ArrayViewMut2::from_shape((m, k), &mut buf[..m * k])
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
