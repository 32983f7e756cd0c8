//! The directions along which an MLP's loss is constant by construction (its rescaling and
//! mixing symmetries), and the projection that keeps the L-BFGS finish from moving along them.
//!
//! In: the network's [`Layout`], activation and residual connections ([`Symmetries::of`]), then
//! at each finish iteration the current parameters and the search direction. Out: the direction
//! with its components along the symmetries removed ([`Symmetries::project`]). Nothing
//! allocates after construction.
//!
//! A hidden unit j (an output of weight layer l, read by layer l + 1) can be scaled by s > 0 —
//! its incoming weights and bias times s, its outgoing weights divided by s — without changing
//! the network's function, when φ is positively homogeneous (relu, identity) and no residual
//! connection writes or reads that hidden layer (the residual path would stay unscaled). The
//! loss is constant along such orbits, so its gradient is orthogonal to their tangents
//! t_j = (in_j, −out_j), and gradient descent keeps each unit's balance ‖in_j‖² − ‖out_j‖² as it
//! was at the start (the gradient of the balance is 2·t_j); Adam nearly does. A quasi-Newton
//! step H·g is not orthogonal to them: L-BFGS's inverse-Hessian estimate mixes the directions
//! it has seen, and where the loss is flat nothing stops it. So the finish drifted along the
//! orbits, to a w* with the same function and loss but unbalanced layers, and the LLC estimate
//! is not invariant under that move, because the localization γ‖w − w*‖² is not.
//!
//! Measured (2026-12-07, deep linear network 4 → [2, 2] → 4, full-rank teacher of rank 2, seed 17,
//! n = 10,000, default posterior; Aoyagi's λ = 6): with the default training (1,000 Adam steps,
//! then 387 L-BFGS iterations) the layers' norms went to 52.6 / 2.1 / 4.4, against 2.6 / 2.2 /
//! 3.6 when Adam ran alone to the same criterion (13,034 steps), and the samplers came out low
//! while passing every health check: HMC 4.28 ± 0.04 (bulk ESS 3,057) and 4.51 ± 0.06 on another
//! seed, NUTS 4.63 and 4.98, against HMC 5.77 and NUTS 5.96–6.08 at Adam's own w*. The longer
//! the finish ran, the further it went: from 2,000 Adam steps the first layer ended at 29.2, from
//! 5,000 at 5.6, from 12,000 at 2.6.
//!
//! Projecting each search direction onto the complement of the tangents keeps every balance
//! fixed to first order, as gradient descent does; the step is still a descent direction (the
//! gradient is orthogonal to the tangents, so g·Pd = g·d). A linear network has more symmetries
//! than the scalings: any invertible mixing of a hidden layer's units (and the inverse mixing of
//! the next layer's weights). With the scalings alone the same target ended at norms 4.3 / 4.0 /
//! 5.1 and HMC at 5.51–5.64 on three seeds, flagged for R-hat 1.04–1.09; with the mixings too
//! (layers of at most [`MAX_MIXED_WIDTH`] units) at 2.6 / 2.1 / 3.8 after 81 L-BFGS iterations
//! instead of 387, and HMC 5.76–5.85, NUTS 5.96, MCLMC 6.01, all healthy.
//!
//! Cost: per finish iteration, the k × k Gram matrix of the k tangents and its Cholesky solve
//! (k³/3). Nothing for tanh, gelu or residual networks (k = 0); little for narrow ones. Measured
//! (one thread, two runs each, 2026-12-07): a relu network 4 → [62, 62] → 1 at n = 1,000 (k = 124,
//! all 1,000 finish iterations used, as relu targets stall at their kinks) trained in 2.11–2.18 s
//! against 1.59–1.61 s without the projection; 4 → [8, 8, 8] → 1 in 0.077–0.079 s against
//! 0.075–0.108; a linear 4 → [8, 8] → 3 (k = 128, 3 iterations) in 0.003 s against 0.002.

use crate::config::schema::Activation;
use crate::nn::layout::Layout;
use crate::numeric::Real;

/// Largest hidden layer of a linear network whose mixings are all projected out (H² tangents);
/// wider ones keep their H scalings only, so that the k × k solve per finish iteration stays
/// small (k³/3 operations: 64 units of 8² are 87,000).
const MAX_MIXED_WIDTH: usize = 8;

/// One tangent direction: hidden layer h's unit `a` fed into unit `b`'s place. Its entries:
/// column b of W_h gets column a of W_h (and bias b gets bias a), row a of W_{h+1} gets minus
/// row b of W_{h+1}. With a = b it is the scaling of unit a; with a ≠ b (linear networks only)
/// the mixing of a into b, another direction of constant loss when φ is the identity.
#[derive(Debug, Clone, PartialEq)]
struct Tangent {
    /// Hidden layer's incoming weights W_h (row-major `fan_in × width`) and bias.
    w_in: usize,
    fan_in: usize,
    width: usize,
    bias: Option<usize>,
    /// Outgoing weights W_{h+1} (row-major `width × fan_out`).
    w_out: usize,
    fan_out: usize,
    a: usize,
    b: usize,
    /// Which hidden layer (tangents of layers more than one apart share no parameter).
    layer: usize,
}

impl Tangent {
    /// Calls `f(index, value)` for each nonzero entry of the tangent at `x`.
    fn for_each(&self, x: impl Fn(usize) -> f64, mut f: impl FnMut(usize, f64)) {
        for i in 0..self.fan_in {
            let row = self.w_in + i * self.width;
            f(row + self.b, x(row + self.a));
        }
        if let Some(bias) = self.bias {
            f(bias + self.b, x(bias + self.a));
        }
        let (row_a, row_b) = (
            self.w_out + self.a * self.fan_out,
            self.w_out + self.b * self.fan_out,
        );
        for k in 0..self.fan_out {
            f(row_a + k, -x(row_b + k));
        }
    }
}

/// The symmetry tangents of one network, with the scratch memory for projecting onto their
/// complement.
#[derive(Debug, Clone)]
pub struct Symmetries {
    tangents: Vec<Tangent>,
    /// Gram matrix of the tangents (k × k, row-major), then its Cholesky factor in place.
    gram: Vec<f64>,
    /// Tangent · direction, then the coefficients of the direction's part along the tangents.
    coef: Vec<f64>,
    /// One tangent scattered into parameter space, to dot the others with (zero between uses).
    dense: Vec<f64>,
}

impl Symmetries {
    /// The symmetries of the network with this layout, activation and residual connections
    /// (`skip[l]`: layer l adds its input to its output): each hidden unit's scaling when φ is
    /// relu or the identity, and with the identity also every mixing of two units of a layer
    /// of at most [`MAX_MIXED_WIDTH`]. None for tanh and gelu. A hidden layer written or read
    /// by a residual connection has none (the residual path would stay unscaled).
    pub fn of(layout: &Layout, activation: Activation, skip: &[bool]) -> Self {
        let homogeneous = matches!(activation, Activation::Relu | Activation::Identity);
        let layers = layout.layers();
        let skips = |l: usize| skip.get(l).copied().unwrap_or(false);
        let mut tangents = Vec::new();
        // Hidden layer h is the output of weight layer h, read by weight layer h + 1.
        for h in 0..layers.len().saturating_sub(1) {
            if !homogeneous || skips(h) || skips(h + 1) {
                continue;
            }
            let (this, next) = (&layers[h], &layers[h + 1]);
            let width = this.fan_out;
            let mixed = activation == Activation::Identity && width <= MAX_MIXED_WIDTH;
            for a in 0..width {
                for b in 0..width {
                    if a == b || mixed {
                        tangents.push(Tangent {
                            w_in: this.w_offset,
                            fan_in: this.fan_in,
                            width,
                            bias: this.b_offset,
                            w_out: next.w_offset,
                            fan_out: next.fan_out,
                            a,
                            b,
                            layer: h,
                        });
                    }
                }
            }
        }
        let k = tangents.len();
        Symmetries {
            tangents,
            gram: vec![0.0; k * k],
            coef: vec![0.0; k],
            dense: vec![0.0; layout.n_params()],
        }
    }

    /// No symmetries: [`project`](Self::project) leaves every direction as it is.
    pub fn none() -> Self {
        Symmetries {
            tangents: Vec::new(),
            gram: Vec::new(),
            coef: Vec::new(),
            dense: Vec::new(),
        }
    }

    /// Number of tangents (0: nothing to project).
    pub fn len(&self) -> usize {
        self.tangents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tangents.is_empty()
    }

    /// Removes from `dir` its components along the tangents at `w`:
    /// `dir ← dir − T·(TᵀT)⁻¹·Tᵀ·dir`, so that every tangent is orthogonal to the result.
    pub fn project<F: Real>(&mut self, w: &[F], dir: &mut [f64]) {
        let k = self.tangents.len();
        if k == 0 {
            return;
        }
        let x = |i: usize| w[i].f64();
        // Gram matrix: each tangent scattered once, dotted with itself and every later
        // tangent of its own or the next hidden layer (the only ones that can share entries).
        for a in 0..k {
            let ta = &self.tangents[a];
            let dense = &mut self.dense;
            ta.for_each(x, |i, v| dense[i] += v);
            for b in a..k {
                let tb = &self.tangents[b];
                let g = if tb.layer > ta.layer + 1 {
                    0.0
                } else {
                    let mut g = 0.0;
                    tb.for_each(x, |i, v| g += dense[i] * v);
                    g
                };
                self.gram[a * k + b] = g;
                self.gram[b * k + a] = g;
            }
            ta.for_each(x, |i, _| dense[i] = 0.0);
        }
        let scale = (0..k).map(|a| self.gram[a * k + a]).fold(0.0, f64::max);
        if !(scale.is_finite() && scale > 0.0) {
            return;
        }
        // A dead unit (all weights 0) has a zero tangent, and a linear layer whose weights have
        // lower rank than its width has dependent mixings: a ridge far below the weights' scale
        // keeps the solve positive definite, and such a tangent's coefficient is then 0 (its
        // row of the system is the ridge alone, its right-hand side t·d = 0).
        for a in 0..k {
            self.gram[a * k + a] += 1e-12 * scale;
        }
        for (a, t) in self.tangents.iter().enumerate() {
            let mut t_dot_d = 0.0;
            t.for_each(x, |i, v| t_dot_d += v * dir[i]);
            self.coef[a] = t_dot_d;
        }
        if !cholesky_solve(&mut self.gram, k, &mut self.coef) {
            return; // numerically singular: leave the direction as it was
        }
        for (t, &c) in self.tangents.iter().zip(&self.coef) {
            t.for_each(x, |i, v| dir[i] -= c * v);
        }
    }
}

/// Solves `A·x = b` in place (`b` becomes x) for a symmetric positive definite `a` (k × k,
/// row-major, overwritten by its Cholesky factor). False when `a` is not numerically positive
/// definite. In place rather than `numeric::linalg::Cholesky`, which allocates its factor and
/// its solution: this runs once per finish iteration.
fn cholesky_solve(a: &mut [f64], k: usize, b: &mut [f64]) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[j * k + p] * a[j * k + p];
        }
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = s / d;
        }
    }
    // L·y = b, then Lᵀ·x = y.
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= a[i * k + p] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= a[p * k + i] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random(p: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..p).map(|_| rng.random_range(-1.5..1.5)).collect()
    }

    /// Tangent `a` at `w`, as a dense vector.
    fn tangent(s: &Symmetries, a: usize, w: &[f64]) -> Vec<f64> {
        let mut t = vec![0.0; w.len()];
        s.tangents[a].for_each(|i| w[i], |i, v| t[i] = v);
        t
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// The network's outputs on a few fixed inputs, computed here from the flat buffer (as
    /// `Layout` lays it out), so that the symmetries are checked against the function itself.
    fn outputs(layout: &Layout, act: Activation, w: &[f64]) -> Vec<f64> {
        let inputs = random(5 * layout.in_dim(), 99);
        let mut out = Vec::new();
        for x in inputs.chunks(layout.in_dim()) {
            let mut a = x.to_vec();
            let last = layout.layers().len() - 1;
            for (l, s) in layout.layers().iter().enumerate() {
                let mut z: Vec<f64> = (0..s.fan_out)
                    .map(|j| s.b_offset.map_or(0.0, |b| w[b + j]))
                    .collect();
                for (i, ai) in a.iter().enumerate() {
                    for (j, zj) in z.iter_mut().enumerate() {
                        *zj += ai * w[s.w_offset + i * s.fan_out + j];
                    }
                }
                if l < last && act == Activation::Relu {
                    z.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                a = z;
            }
            out.extend(a);
        }
        out
    }

    #[test]
    fn relu_networks_have_a_scaling_per_hidden_unit_linear_ones_every_mixing_tanh_none() {
        let layout = Layout::new(3, &[4, 5], 2, true).unwrap();
        let none = [false; 3];
        assert_eq!(Symmetries::of(&layout, Activation::Relu, &none).len(), 9);
        assert_eq!(
            Symmetries::of(&layout, Activation::Identity, &none).len(),
            16 + 25
        );
        assert_eq!(Symmetries::of(&layout, Activation::Tanh, &none).len(), 0);
        assert_eq!(Symmetries::of(&layout, Activation::Gelu, &none).len(), 0);
        // Wider than MAX_MIXED_WIDTH: a linear layer keeps its scalings only.
        let wide = Layout::new(3, &[MAX_MIXED_WIDTH + 1], 2, false).unwrap();
        let n = MAX_MIXED_WIDTH + 1;
        assert_eq!(Symmetries::of(&wide, Activation::Identity, &none).len(), n);
        let square = Layout::new(3, &[4, 4, 4], 1, true).unwrap();
        // Layers 1 and 2 skip: hidden layer 0 is read by a skipping layer, 1 and 2 written by
        // one, so none is free.
        let skip = [false, true, true, false];
        assert_eq!(Symmetries::of(&square, Activation::Relu, &skip).len(), 0);
        // Only layer 2 skips: hidden layer 0 (written by layer 0, read by layer 1) stays free.
        let skip_last = [false, false, true, false];
        assert_eq!(
            Symmetries::of(&square, Activation::Relu, &skip_last).len(),
            4
        );
    }

    #[test]
    fn moving_along_a_tangent_keeps_the_function_to_second_order() {
        // f(w + ε·t) − f(w) = O(ε²) for every tangent t, which is what makes it a symmetry
        // direction; a random direction changes f at O(ε).
        for (act, hidden) in [(Activation::Relu, [4, 5]), (Activation::Identity, [3, 2])] {
            let layout = Layout::new(3, &hidden, 2, true).unwrap();
            let s = Symmetries::of(&layout, act, &[false; 3]);
            let w = random(layout.n_params(), 1);
            let f0 = outputs(&layout, act, &w);
            let eps = 1e-5;
            let change = |t: &[f64]| {
                let moved: Vec<f64> = w.iter().zip(t).map(|(x, d)| x + eps * d).collect();
                let f = outputs(&layout, act, &moved);
                f.iter()
                    .zip(&f0)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
            };
            for a in 0..s.len() {
                // Second order: ε²·|t|²·(weights of order 1) ~ 1e-9; first order would be 1e-5.
                let c = change(&tangent(&s, a, &w));
                assert!(c < 1e-8, "{act:?} tangent {a}: f moved by {c}");
            }
            assert!(change(&random(layout.n_params(), 7)) > 1e-7);
        }
    }

    #[test]
    fn the_projected_direction_is_orthogonal_to_every_tangent_and_otherwise_unchanged() {
        for act in [Activation::Relu, Activation::Identity] {
            let layout = Layout::new(3, &[4, 5, 3], 2, true).unwrap();
            let mut s = Symmetries::of(&layout, act, &[false; 4]);
            let w = random(layout.n_params(), 2);
            let d0 = random(layout.n_params(), 3);
            let mut d = d0.clone();
            s.project(&w, &mut d);
            let norm = dot(&d0, &d0).sqrt();
            for a in 0..s.len() {
                let t = tangent(&s, a, &w);
                // Relative to |t|·|d0|: the ridge (1e-12) and rounding of a k × k solve.
                let cos = dot(&t, &d) / (dot(&t, &t).sqrt() * norm);
                assert!(cos.abs() < 1e-9, "{act:?} tangent {a}: cos {cos}");
            }
            // Projecting again changes nothing (a projection is idempotent)…
            let mut again = d.clone();
            s.project(&w, &mut again);
            for (x, y) in again.iter().zip(&d) {
                assert!((x - y).abs() < 1e-9 * norm, "{x} vs {y}");
            }
            // …and what was removed lies in the tangents' span: d0 − d is orthogonal to d.
            let removed: Vec<f64> = d0.iter().zip(&d).map(|(a, b)| a - b).collect();
            assert!(dot(&removed, &d).abs() < 1e-9 * norm * norm);
            assert!(
                dot(&removed, &removed) > 1e-6 * norm * norm,
                "something was removed"
            );
        }
    }

    #[test]
    fn a_dead_unit_is_left_out_instead_of_breaking_the_solve() {
        let layout = Layout::new(2, &[3], 1, false).unwrap();
        let mut s = Symmetries::of(&layout, Activation::Relu, &[false; 2]);
        let mut w = random(layout.n_params(), 4);
        // Unit 1: incoming column and outgoing row all zero.
        let dead = tangent(&s, 1, &random(layout.n_params(), 6));
        for (i, v) in dead.iter().enumerate() {
            if *v != 0.0 {
                w[i] = 0.0;
            }
        }
        let mut d = random(layout.n_params(), 5);
        s.project(&w, &mut d);
        assert!(d.iter().all(|v| v.is_finite()));
        for a in [0, 2] {
            let t = tangent(&s, a, &w);
            assert!(dot(&t, &d).abs() < 1e-9, "unit {a}");
        }
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]]·x = [2, 1] → x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        assert!(cholesky_solve(&mut a, 2, &mut b));
        assert!((b[0] - 0.5).abs() < 1e-15 && b[1].abs() < 1e-15, "{b:?}");
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(!cholesky_solve(&mut singular, 2, &mut [1.0, 2.0]));
    }
}
