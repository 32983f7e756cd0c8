//! Where each layer's weights and bias live in the flat parameter buffer.
//!
//! An MLP with layer sizes `n_0 = in_dim, n_1, …, n_depth, n_{depth+1} = out_dim` has `depth + 1`
//! affine layers. Layer `l` maps `n_l` inputs to `n_{l+1}` outputs and owns, in this order:
//!
//! ```text
//! W_l : n_l × n_{l+1}, row-major   (so a row of activations times W_l is the next row)
//! b_l : n_{l+1}                    (only when the model has biases)
//! ```
//!
//! and the layers are stored back to back: `[W0, b0, W1, b1, …]`. The parameter count is
//! `Σ_l n_l·n_{l+1} (+ n_{l+1} with biases)`, which is `p` in meta.json.
//!
//! Data enters as the layer sizes (and later a flat buffer); it leaves as views into that buffer
//! and as the named arrays `W0, b0, W1, b1, …` of params.npz ([`Layout::to_named`]), which
//! [`Layout::from_named`] turns back into a flat buffer.

use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::NnError;
use crate::numeric::Real;

/// Shape and position of one affine layer in the flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerShape {
    /// Number of inputs (rows of W).
    pub fan_in: usize,
    /// Number of outputs (columns of W, length of b).
    pub fan_out: usize,
    /// Offset of W's first element.
    pub w_offset: usize,
    /// Offset of b's first element; `None` for a model without biases.
    pub b_offset: Option<usize>,
}

impl LayerShape {
    fn w_range(&self) -> std::ops::Range<usize> {
        self.w_offset..self.w_offset + self.fan_in * self.fan_out
    }
}

/// The layers of an MLP and their offsets in the flat parameter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    layers: Vec<LayerShape>,
    n_params: usize,
}

impl Layout {
    /// The layout of `in_dim → hidden[0] → … → out_dim`, with or without biases.
    pub fn new(
        in_dim: usize,
        hidden: &[usize],
        out_dim: usize,
        bias: bool,
    ) -> Result<Self, NnError> {
        let sizes: Vec<usize> = std::iter::once(in_dim)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(out_dim))
            .collect();
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(NnError::EmptyLayer { index: i });
        }
        let mut layers = Vec::with_capacity(sizes.len() - 1);
        let mut offset = 0usize;
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w_offset = offset;
            // Checked so that an absurd width is an error, not an overflow.
            offset = fan_in
                .checked_mul(fan_out)
                .and_then(|n| offset.checked_add(n))
                .ok_or(NnError::TooLarge)?;
            let b_offset = if bias {
                let b = offset;
                offset = offset.checked_add(fan_out).ok_or(NnError::TooLarge)?;
                Some(b)
            } else {
                None
            };
            layers.push(LayerShape {
                fan_in,
                fan_out,
                w_offset,
                b_offset,
            });
        }
        Ok(Layout {
            layers,
            n_params: offset,
        })
    }

    /// Total number of parameters p.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The affine layers, input layer first.
    pub fn layers(&self) -> &[LayerShape] {
        &self.layers
    }

    pub fn in_dim(&self) -> usize {
        self.layers[0].fan_in
    }

    pub fn out_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out
    }

    /// Whether the layers carry biases (for the tests).
    #[cfg(test)]
    pub fn has_bias(&self) -> bool {
        self.layers[0].b_offset.is_some()
    }

    /// W_l as an `fan_in × fan_out` view of `w`.
    ///
    /// `w` must have length [`n_params`](Self::n_params); callers check that once per evaluation.
    pub fn weight<'a, F>(&self, w: &'a [F], l: usize) -> ArrayView2<'a, F> {
        let s = &self.layers[l];
        ArrayView2::from_shape((s.fan_in, s.fan_out), &w[s.w_range()])
            .expect("layout offsets always match the layer shape")
    }

    /// Mutable W_l (e.g. its block of a gradient buffer).
    pub fn weight_mut<'a, F>(&self, w: &'a mut [F], l: usize) -> ArrayViewMut2<'a, F> {
        let s = &self.layers[l];
        ArrayViewMut2::from_shape((s.fan_in, s.fan_out), &mut w[s.w_range()])
            .expect("layout offsets always match the layer shape")
    }

    /// b_l, or `None` without biases.
    pub fn bias<'a, F>(&self, w: &'a [F], l: usize) -> Option<ArrayView1<'a, F>> {
        let s = &self.layers[l];
        s.b_offset.map(|b| ArrayView1::from(&w[b..b + s.fan_out]))
    }

    /// Mutable b_l, or `None` without biases.
    pub fn bias_mut<'a, F>(&self, w: &'a mut [F], l: usize) -> Option<ArrayViewMut1<'a, F>> {
        let s = &self.layers[l];
        s.b_offset
            .map(|b| ArrayViewMut1::from(&mut w[b..b + s.fan_out]))
    }

    /// The names params.npz uses, in buffer order: `W0, b0, W1, b1, …` (no `b*` without biases).
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(2 * self.layers.len());
        for (l, s) in self.layers.iter().enumerate() {
            names.push(format!("W{l}"));
            if s.b_offset.is_some() {
                names.push(format!("b{l}"));
            }
        }
        names
    }

    /// Splits a flat buffer into the named arrays of params.npz, in buffer order.
    /// `W{l}` has shape `[fan_in, fan_out]`, `b{l}` has shape `[fan_out]`.
    pub fn to_named<F: Real>(&self, w: &[F]) -> Result<Vec<(String, ArrayD<F>)>, NnError> {
        self.check_len(w.len())?;
        let mut out = Vec::with_capacity(2 * self.layers.len());
        for l in 0..self.layers.len() {
            let wl = self.weight(w, l).to_owned().into_dyn();
            out.push((format!("W{l}"), wl));
            if let Some(b) = self.bias(w, l) {
                out.push((format!("b{l}"), b.to_owned().into_dyn()));
            }
        }
        Ok(out)
    }

    /// Reassembles a flat buffer from named arrays (the inverse of [`to_named`](Self::to_named)).
    ///
    /// Order does not matter; a trailing `.npy` on a name (as npz archives store them) is
    /// ignored. Every expected array must be present exactly once with its exact shape, and no
    /// other array may be present, so a params.npz of a different architecture is refused.
    pub fn from_named<F: Real>(&self, arrays: &[(String, ArrayD<F>)]) -> Result<Vec<F>, NnError> {
        let mut w = vec![F::zero(); self.n_params];
        let mut seen = vec![false; 2 * self.layers.len()];
        for (raw_name, array) in arrays {
            let name = raw_name.strip_suffix(".npy").unwrap_or(raw_name);
            let (slot, range, shape) =
                self.locate(name).ok_or_else(|| NnError::UnexpectedArray {
                    name: name.to_string(),
                })?;
            if seen[slot] {
                return Err(NnError::DuplicateArray {
                    name: name.to_string(),
                });
            }
            seen[slot] = true;
            if array.shape() != shape.as_slice() {
                return Err(NnError::ArrayShape {
                    name: name.to_string(),
                    expected: shape,
                    found: array.shape().to_vec(),
                });
            }
            // `iter` walks in logical row-major order whatever the array's memory order.
            for (dst, &src) in w[range].iter_mut().zip(array.iter()) {
                *dst = src;
            }
        }
        for name in self.names() {
            let (slot, _, _) = self.locate(&name).expect("own names always resolve");
            if !seen[slot] {
                return Err(NnError::MissingArray { name });
            }
        }
        Ok(w)
    }

    /// Errors unless a buffer of length `len` fits this layout.
    pub fn check_len(&self, len: usize) -> Result<(), NnError> {
        if len == self.n_params {
            Ok(())
        } else {
            Err(NnError::ParamLength {
                expected: self.n_params,
                found: len,
            })
        }
    }

    /// For an array name: its slot in a seen-table, its range in the buffer and its shape.
    fn locate(&self, name: &str) -> Option<(usize, std::ops::Range<usize>, Vec<usize>)> {
        let (kind, index) = name.split_at_checked(1)?;
        // Reject "W01" and "W+1": only the canonical spelling of the index names an array.
        let l: usize = index
            .parse()
            .ok()
            .filter(|l: &usize| l.to_string() == index)?;
        let s = self.layers.get(l)?;
        match kind {
            "W" => Some((2 * l, s.w_range(), vec![s.fan_in, s.fan_out])),
            "b" => s
                .b_offset
                .map(|b| (2 * l + 1, b..b + s.fan_out, vec![s.fan_out])),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn offsets_follow_the_documented_order() {
        let lay = Layout::new(3, &[4, 5], 2, true).unwrap();
        let l = lay.layers();
        assert_eq!(
            l[0],
            LayerShape {
                fan_in: 3,
                fan_out: 4,
                w_offset: 0,
                b_offset: Some(12)
            }
        );
        assert_eq!(
            l[1],
            LayerShape {
                fan_in: 4,
                fan_out: 5,
                w_offset: 16,
                b_offset: Some(36)
            }
        );
        assert_eq!(
            l[2],
            LayerShape {
                fan_in: 5,
                fan_out: 2,
                w_offset: 41,
                b_offset: Some(51)
            }
        );
        assert_eq!(lay.n_params(), 53);
        // The formula of ARCHITECTURE.md §5 for depth 2, h = 4 would differ only in the middle layer.
        assert_eq!(lay.n_params(), (3 + 1) * 4 + (4 + 1) * 5 + (5 + 1) * 2);
    }

    #[test]
    fn no_bias_layout_is_weights_only() {
        let lay = Layout::new(3, &[], 2, false).unwrap();
        assert_eq!(lay.n_params(), 6);
        assert_eq!(lay.names(), vec!["W0".to_string()]);
        assert!(!lay.has_bias());
    }

    #[test]
    fn zero_width_is_an_error() {
        assert!(matches!(
            Layout::new(3, &[4, 0], 1, true),
            Err(NnError::EmptyLayer { index: 2 })
        ));
        assert!(matches!(
            Layout::new(0, &[], 1, true),
            Err(NnError::EmptyLayer { index: 0 })
        ));
    }

    #[test]
    fn named_arrays_round_trip() {
        let lay = Layout::new(3, &[4], 2, true).unwrap();
        let w: Vec<f64> = (0..lay.n_params()).map(|i| i as f64 * 0.5 - 3.0).collect();
        let named = lay.to_named(&w).unwrap();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["W0", "b0", "W1", "b1"]);
        assert_eq!(named[0].1.shape(), &[3, 4]);
        // Row-major: W0[1, 2] is element 1·4 + 2 of the buffer.
        assert_eq!(named[0].1[[1, 2]], w[6]);
        let mut shuffled = named.clone();
        shuffled.reverse();
        shuffled[0].0.push_str(".npy");
        assert_eq!(lay.from_named(&shuffled).unwrap(), w);
    }

    #[test]
    fn from_named_refuses_wrong_architectures() {
        let lay = Layout::new(3, &[4], 2, true).unwrap();
        let w = vec![0.0f64; lay.n_params()];
        let named = lay.to_named(&w).unwrap();

        let missing = named[..3].to_vec();
        assert!(matches!(
            lay.from_named(&missing),
            Err(NnError::MissingArray { .. })
        ));

        let mut extra = named.clone();
        extra.push(("W2".into(), ArrayD::zeros(IxDyn(&[2, 2]))));
        assert!(matches!(
            lay.from_named(&extra),
            Err(NnError::UnexpectedArray { .. })
        ));

        let mut dup = named.clone();
        dup.push(named[0].clone());
        assert!(matches!(
            lay.from_named(&dup),
            Err(NnError::DuplicateArray { .. })
        ));

        let mut bad = named.clone();
        bad[0].1 = ArrayD::zeros(IxDyn(&[4, 3]));
        assert!(matches!(
            lay.from_named(&bad),
            Err(NnError::ArrayShape { .. })
        ));

        let mut odd = named;
        odd[0].0 = "W00".into();
        assert!(matches!(
            lay.from_named(&odd),
            Err(NnError::UnexpectedArray { .. })
        ));
    }
}
