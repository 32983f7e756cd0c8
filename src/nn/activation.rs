//! Hidden-layer activations φ and their derivatives, applied elementwise to a buffer.
//!
//! Input: a buffer holding pre-activations z. Output: the same buffer holding φ(z) and, when the
//! caller will run a backward pass, a second buffer holding φ'(z). Computing both in one pass
//! shares the expensive part (tanh) and lets the backward pass be a plain product.
//!
//! `gelu` is the tanh approximation, `½z(1 + tanh(√(2/π)(z + 0.044715 z³)))`: it is what JAX's
//! `jax.nn.gelu` computes by default (so targets match the Python implementation's), and it costs
//! one `tanh` where the exact form needs `erf`, which the standard library does not provide.
//! `relu'(0)` is taken as 0 (a subgradient).

use crate::config::schema::Activation;
use crate::numeric::Real;

/// √(2/π), the gelu approximation's scale.
const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The gelu approximation's cubic coefficient.
const GELU_K: f64 = 0.044_715;

/// Replaces every z in `za` by φ(z); writes φ'(z) to `d` when given (same length as `za`).
pub(crate) fn activate<F: Real>(act: Activation, za: &mut [F], d: Option<&mut [F]>) {
    // The match sits outside the loops so each loop body is branch-free and vectorizable.
    match (act, d) {
        (Activation::Identity, None) => {}
        (Activation::Identity, Some(d)) => d.fill(F::one()),
        // relu written as "negative → 0" so that NaN passes through (`max(NaN, 0)` is 0): a NaN
        // parameter must show up in the loss, where training and samplers look for it.
        (Activation::Relu, None) => za.iter_mut().for_each(|z| *z = relu(*z)),
        (Activation::Relu, Some(d)) => {
            for (z, d) in za.iter_mut().zip(d.iter_mut()) {
                *d = if *z > F::zero() { F::one() } else { F::zero() };
                *z = relu(*z);
            }
        }
        (Activation::Tanh, None) => za.iter_mut().for_each(|z| *z = z.tanh()),
        (Activation::Tanh, Some(d)) => {
            for (z, d) in za.iter_mut().zip(d.iter_mut()) {
                let t = z.tanh();
                *d = F::one() - t * t;
                *z = t;
            }
        }
        (Activation::Gelu, None) => za.iter_mut().for_each(|z| *z = gelu(*z).0),
        (Activation::Gelu, Some(d)) => {
            for (z, d) in za.iter_mut().zip(d.iter_mut()) {
                let (a, da) = gelu(*z);
                *z = a;
                *d = da;
            }
        }
    }
}

#[inline]
fn relu<F: Real>(z: F) -> F {
    if z < F::zero() { F::zero() } else { z }
}

/// gelu (tanh approximation) and its exact derivative.
#[inline]
fn gelu<F: Real>(z: F) -> (F, F) {
    let (c, k, half, one) = (F::of(GELU_C), F::of(GELU_K), F::of(0.5), F::one());
    let z2 = z * z;
    let t = (c * (z + k * z2 * z)).tanh();
    let a = half * z * (one + t);
    let du = c * (one + F::of(3.0) * k * z2);
    let d = half * (one + t) + half * z * (one - t * t) * du;
    (a, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 4] = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Identity,
    ];

    #[test]
    fn derivative_matches_central_difference() {
        // Points away from relu's kink at 0. Step 1e-5 with a central difference has truncation
        // error ~h²·|φ'''| ≈ 1e-10 and rounding error ~eps/h ≈ 1e-11, so 1e-8 is a safe bound.
        let zs = [-2.5, -1.0, -0.3, 0.2, 0.7, 1.9, 3.0];
        let h = 1e-5;
        for act in ALL {
            for &z in &zs {
                let mut v = [z];
                let mut d = [0.0];
                activate::<f64>(act, &mut v, Some(&mut d));
                let mut plus = [z + h];
                let mut minus = [z - h];
                activate::<f64>(act, &mut plus, None);
                activate::<f64>(act, &mut minus, None);
                let fd = (plus[0] - minus[0]) / (2.0 * h);
                assert!((fd - d[0]).abs() < 1e-8, "{act:?} at {z}: {fd} vs {}", d[0]);
            }
        }
    }

    #[test]
    fn nan_propagates_through_every_activation() {
        for act in ALL {
            for with_deriv in [false, true] {
                let mut v = [f64::NAN, 1.0];
                let mut d = [0.0; 2];
                activate(act, &mut v, with_deriv.then_some(&mut d[..]));
                assert!(
                    v[0].is_nan(),
                    "{act:?} (derivative: {with_deriv}) hid a NaN"
                );
            }
        }
    }

    #[test]
    fn values_are_the_documented_functions() {
        let z = [-1.5f64, 0.0, 0.8];
        for act in ALL {
            let mut v = z;
            activate(act, &mut v, None);
            for (&zi, &vi) in z.iter().zip(&v) {
                let want = match act {
                    Activation::Relu => zi.max(0.0),
                    Activation::Tanh => zi.tanh(),
                    Activation::Identity => zi,
                    Activation::Gelu => {
                        0.5 * zi
                            * (1.0
                                + ((2.0 / std::f64::consts::PI).sqrt()
                                    * (zi + 0.044715 * zi.powi(3)))
                                .tanh())
                    }
                };
                // Same formula evaluated in a different order: a few ulps apart at most.
                assert!(
                    (vi - want).abs() < 1e-15,
                    "{act:?}({zi}) = {vi}, want {want}"
                );
            }
        }
    }
}
