//! Allocation-free vector helpers shared by the samplers.
//!
//! Every function works on caller-owned slices of the same length (the parameter dimension p)
//! and writes its result in place or returns a scalar, so the step loops can call them without
//! allocating. Sums are accumulated in `f64` whatever the float type: a norm or dot product of
//! 10,000 `f32` terms would otherwise lose digits that the energy bookkeeping needs.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::numeric::Real;

/// Σ aᵢbᵢ, accumulated in f64.
pub fn dot<F: Real>(a: &[F], b: &[F]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x.f64() * y.f64()).sum()
}

/// Σ aᵢ², accumulated in f64.
pub fn norm_sq<F: Real>(a: &[F]) -> f64 {
    a.iter().map(|&x| x.f64() * x.f64()).sum()
}

/// Σ wᵢaᵢ², accumulated in f64 (a kinetic energy with a diagonal inverse mass matrix `w`).
pub fn weighted_norm_sq<F: Real>(a: &[F], w: &[F]) -> f64 {
    a.iter()
        .zip(w)
        .map(|(&x, &wi)| wi.f64() * x.f64() * x.f64())
        .sum()
}

/// True when every entry is finite.
pub fn all_finite<F: Real>(a: &[F]) -> bool {
    a.iter().all(|x| x.is_finite())
}

/// Fills `out` with independent standard normal draws.
///
/// Draws are made in f64 and rounded, so an f32 and an f64 run consume the RNG identically.
pub fn fill_normal<F: Real, R: Rng>(rng: &mut R, out: &mut [F]) {
    for x in out.iter_mut() {
        let z: f64 = rng.sample(StandardNormal);
        *x = F::of(z);
    }
}

/// Scales `a` to unit Euclidean norm; leaves it unchanged when its norm is 0 or not finite.
pub fn normalize<F: Real>(a: &mut [F]) {
    let norm = norm_sq(a).sqrt();
    if norm > 0.0 && norm.is_finite() {
        let inv = F::of(1.0 / norm);
        for x in a.iter_mut() {
            *x *= inv;
        }
    }
}

/// Overwrites `out` with a uniformly random unit vector.
pub fn fill_unit_vector<F: Real, R: Rng>(rng: &mut R, out: &mut [F]) {
    fill_normal(rng, out);
    normalize(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn reductions_match_hand_computed_values() {
        let a = [1.0_f32, -2.0, 3.0];
        let b = [0.5_f32, 4.0, -1.0];
        // Small integers and halves are exact in f32 and f64, so equality is exact.
        assert_eq!(dot(&a, &b), 0.5 - 8.0 - 3.0);
        assert_eq!(norm_sq(&a), 14.0);
        assert_eq!(weighted_norm_sq(&a, &b), 0.5 + 16.0 - 9.0);
        assert!(all_finite(&a));
        assert!(!all_finite(&[1.0_f64, f64::NAN]));
    }

    #[test]
    fn unit_vectors_have_unit_norm() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut u = vec![0.0_f64; 50];
        fill_unit_vector(&mut rng, &mut u);
        // One rounding per entry on the division: a few ulps of 1.
        assert!((norm_sq(&u) - 1.0).abs() < 1e-12);
        let mut zero = vec![0.0_f64; 3];
        normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }
}
