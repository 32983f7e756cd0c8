//! Hidden-layer activations φ and their derivatives, applied elementwise to a buffer.
//!
//! Input: a buffer holding pre-activations z. Output: the same buffer holding φ(z) and, when the
//! caller will run a backward pass, a second buffer holding φ'(z). Computing both in one pass
//! shares the expensive part (tanh) and lets the backward pass be a plain product.
//!
//! `gelu` is the tanh approximation, `½z(1 + tanh(√(2/π)(z + 0.044715 z³)))`: it is what JAX's
//! `jax.nn.gelu` computes by default (so targets match the Python implementation's), and it costs
//! one `tanh` where the exact form needs `erf`, which the standard library does not provide.
//! `relu'(0)` is taken as 0 (a subgradient). tanh is our own vectorizable version (`numeric/tanh.rs`,
//! within 3 ulps of the exact value) because libm's scalar call dominated the cost of tanh/gelu
//! networks. Everything is computed in the network's precision: an f32 network's tanh is
//! `numeric/tanh.rs`'s f32 version, twice the SIMD lanes of f64 and a shorter series (until 2026-12 it
//! went through f64, which cost 2.4× as much per value).

use crate::config::schema::Activation;
use crate::numeric::Real;

/// √(2/π), the gelu approximation's scale.
const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The gelu approximation's cubic coefficient.
const GELU_K: f64 = 0.044_715;

/// Replaces every z in `za` by φ(z); writes φ'(z) to `d` when given (same length as `za`).
#[inline(always)]
pub(crate) fn activate<F: Real>(act: Activation, za: &mut [F], d: Option<&mut [F]>) {
    match act {
        Activation::Identity => {
            if let Some(d) = d {
                d.fill(F::one());
            }
        }
        Activation::Relu => relu_loops(za, d),
        Activation::Tanh => smooth(Smooth::Tanh, za, d),
        Activation::Gelu => smooth(Smooth::Gelu, za, d),
    }
}

/// relu, written as "negative → 0" so that NaN passes through (`max(NaN, 0)` is 0): a NaN
/// parameter must show up in the loss, where training and samplers look for it.
#[inline(always)]
pub(crate) fn relu<F: Real>(z: F) -> F {
    if z < F::zero() { F::zero() } else { z }
}

/// relu'(z): 1 for z > 0, else 0 (a subgradient at 0).
#[inline(always)]
pub(crate) fn relu_derivative<F: Real>(z: F) -> F {
    if z > F::zero() { F::one() } else { F::zero() }
}

fn relu_loops<F: Real>(za: &mut [F], d: Option<&mut [F]>) {
    match d {
        None => za.iter_mut().for_each(|z| *z = relu(*z)),
        Some(d) => {
            for (z, d) in za.iter_mut().zip(d.iter_mut()) {
                *d = relu_derivative(*z);
                *z = relu(*z);
            }
        }
    }
}

/// Values per call of [`Real::tanh_lanes`] with AVX-512: four vectors of f64 (two of f32),
/// enough independent work to keep the CPU busy during tanh's long chain of dependent operations.
const TANH_LANES: usize = 32;

/// f64 values per call with AVX2: four vectors, half of [`TANH_LANES`] (f32 keeps 32, also four
/// vectors). A call's instructions must fit the CPU's window of instructions in flight alongside
/// the next call's, and AVX2 machines have smaller windows (AMD Zen 3: 256 entries, against
/// Sapphire Rapids' 512). The same operations on every value, so the same bits. Measured on the
/// 2-core Zen 3 VM (`cargo bench --bench gradient small8-tanh`, one thread, three alternating
/// runs of each build, best ms), f64 values per call: 8 → 0.0673–0.0687, 16 → 0.0551–0.0565,
/// 24 → 0.0581–0.0604, 32 → 0.0573–0.0580, 64 → 0.0570–0.0572; f32 at 16 values per call
/// (two vectors) was slower, 0.029 → 0.036. Small tanh sweep (4 chains, 2 threads, 3,000
/// draws; alternating runs of the two builds, gradients/s): HMC 32,429 / 32,744 / 31,893 /
/// 31,173 / 31,253 → 33,177 / 33,924 / 32,873 / 32,637 / 32,087, MCLMC 31,233 / 30,089 →
/// 32,124 / 32,822; λ̂ byte-identical. (An earlier trial of 16 values, before Estrin's series
/// and half blocks, had made that HMC sweep slower; this one, on today's kernels, did not.)
const TANH_LANES_AVX2_F64: usize = 16;

/// The activations built on tanh.
#[derive(Clone, Copy)]
enum Smooth {
    Tanh,
    Gelu,
}

/// tanh or gelu, compiled for the widest SIMD instruction set the CPU has.
///
/// The loops are the same code in every variant, and tanh's multiply-adds are fused (one
/// rounding, whatever the instructions: `numeric/tanh.rs`), so every variant gives the same
/// bits; only the speed differs.
fn smooth<F: Real>(act: Smooth, za: &mut [F], d: Option<&mut [F]>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { smooth_avx512(act, za, d) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            return unsafe { smooth_avx2(act, za, d) };
        }
    }
    smooth_loops::<F, TANH_LANES>(act, za, d)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn smooth_avx512<F: Real>(act: Smooth, za: &mut [F], d: Option<&mut [F]>) {
    match (act, d) {
        // Two vectors per block (see `tanh_pipelined`).
        (Smooth::Tanh, Some(d)) if std::mem::size_of::<F>() == 8 => tanh_pipelined::<F, 16>(za, d),
        (Smooth::Tanh, Some(d)) => tanh_pipelined::<F, 32>(za, d),
        (act, d) => smooth_loops::<F, TANH_LANES>(act, za, d),
    }
}

/// tanh and its derivative 1 − t² of every value, as [`smooth_loops`] computes them (the same
/// operations on every value, so the same bits), with each block's divisions written after
/// the next block's series: software pipelining, used where measured (AVX-512; the sampling
/// loop's tanh with derivatives, the forward pass without them keeps [`smooth_loops`]).
///
/// Why: on Intel's AVX-512 cores a division of eight f64 takes the divider 16 cycles, about as
/// long as the rest of their tanh takes the two vector ports, so the two must overlap. Written
/// one block after another, a block's divisions came last, together, and the out-of-order
/// window could not reach far enough into the next block to keep the ports busy meanwhile
/// (perf put a third of tanh's samples on the instructions waiting for them). Here the
/// divisions of block b − 1 are issued right after block b's series, and run while the ports
/// work on what follows. Measured on the 2-core Intel Xeon VM (2026-12-07):
/// - tanh with its derivative over 16,000 f64 values (scratch benchmark, best of 30 × 100
///   loops, two runs of six rounds): 0.96–1.03 ns per value before, 0.87–0.96 with 16 values
///   per block, 0.94–1.01 with 32 or 24; with the divisions written *before* block b's series,
///   0.92–0.99;
/// - `small8-tanh` gradient, one thread, best ms of alternating runs: f64 0.0273–0.0315 →
///   0.0261–0.0301; f32 0.0161–0.0169 → 0.0154–0.0163 with 32 values per block (with 16, one
///   vector, the compiler made much slower code: 0.025);
/// - small tanh HMC sweep (4 → [8, 8] → 1, n = 1,000, 4 chains on 2 threads, 2,000 draws;
///   seven alternating runs of each build): 59,982–62,973 (median 60,981) → 63,978–67,212
///   (median 64,878) gradients/s; λ̂ byte-identical.
///
/// AVX2 keeps the plain loop: on the Zen 3 VM, whose divider is a smaller share of tanh's
/// cost, a pipelined tanh measured slower (`numeric/tanh.rs`).
///
/// Measured again on top of this and left out: 1 − t² as one fused multiply-add (one rounding
/// instead of two; `numeric/tanh.rs` has the first measurement). Small tanh HMC, four
/// alternating runs: 65,694–67,992 gradients/s without, 64,359–68,996 with; not worth changing
/// every trace for.
#[inline(always)]
fn tanh_pipelined<F: Real, const LANES: usize>(za: &mut [F], d: &mut [F]) {
    let blocks = za.len() / LANES;
    let mut pending: Option<(usize, [F; LANES], [F; LANES])> = None;
    for b in 0..blocks {
        let z: [F; LANES] = za[b * LANES..(b + 1) * LANES]
            .try_into()
            .expect("one block");
        let (num, div) = F::tanh_quotient_lanes(z);
        if let Some((before, num, div)) = pending {
            finish_tanh_block(za, d, before, num, div);
        }
        pending = Some((b, num, div));
    }
    if let Some((before, num, div)) = pending {
        finish_tanh_block(za, d, before, num, div);
    }
    tanh_one_at_a_time(&mut za[blocks * LANES..], &mut d[blocks * LANES..]);
}

/// tanh and 1 − t² of each value, one call per value: the values after a loop's last block.
#[inline(always)]
fn tanh_one_at_a_time<F: Real>(za: &mut [F], d: &mut [F]) {
    for (z, d) in za.iter_mut().zip(d) {
        let t = z.tanh_simd();
        *d = F::one() - t * t;
        *z = t;
    }
}

/// Block `b` of [`tanh_pipelined`]: tanh from its quotient's parts, and 1 − t².
#[inline(always)]
fn finish_tanh_block<F: Real, const LANES: usize>(
    za: &mut [F],
    d: &mut [F],
    b: usize,
    num: [F; LANES],
    div: [F; LANES],
) {
    let z: &mut [F; LANES] = (&mut za[b * LANES..(b + 1) * LANES])
        .try_into()
        .expect("one block");
    let d = &mut d[b * LANES..(b + 1) * LANES];
    for t in 0..LANES {
        let v = F::tanh_from_quotient(num[t], div[t], z[t]);
        d[t] = F::one() - v * v;
        z[t] = v;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn smooth_avx2<F: Real>(act: Smooth, za: &mut [F], d: Option<&mut [F]>) {
    if std::mem::size_of::<F>() == 8 {
        smooth_loops::<F, TANH_LANES_AVX2_F64>(act, za, d)
    } else {
        smooth_loops::<F, TANH_LANES>(act, za, d)
    }
}

/// The tanh and gelu loops, in F's own arithmetic (an f32 network computes them in f32), with
/// tanh computed `LANES` values per call.
#[inline(always)]
fn smooth_loops<F: Real, const LANES: usize>(act: Smooth, za: &mut [F], d: Option<&mut [F]>) {
    // The match sits outside the loops so each loop body is branch-free and vectorizable.
    match (act, d) {
        (Smooth::Gelu, None) => za.iter_mut().for_each(|z| *z = gelu(*z).0),
        (Smooth::Gelu, Some(d)) => {
            for (z, d) in za.iter_mut().zip(d.iter_mut()) {
                (*z, *d) = gelu(*z);
            }
        }
        (Smooth::Tanh, None) => za.iter_mut().for_each(|z| *z = z.tanh_simd()),
        (Smooth::Tanh, Some(d)) => {
            let mut zs = za.chunks_exact_mut(LANES);
            let mut ds = d.chunks_exact_mut(LANES);
            for (z, d) in (&mut zs).zip(&mut ds) {
                let z: &mut [F; LANES] = z.try_into().expect("one block");
                let t = F::tanh_lanes(*z);
                for ((z, d), t) in z.iter_mut().zip(d).zip(t) {
                    *d = F::one() - t * t;
                    *z = t;
                }
            }
            tanh_one_at_a_time(zs.into_remainder(), ds.into_remainder());
        }
    }
}

/// gelu (tanh approximation) and its exact derivative.
#[inline(always)]
fn gelu<F: Real>(z: F) -> (F, F) {
    let (c, k, half, one) = (F::of(GELU_C), F::of(GELU_K), F::of(0.5), F::one());
    let z2 = z * z;
    let t = (c * (z + k * z2 * z)).tanh_simd();
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
    fn f32_activations_are_the_f64_ones_to_f32_rounding() {
        // f32 networks compute φ and φ' in f32. Each value is a few f32 operations from its
        // inputs, and gelu's 1 + t cancels for negative z (where t → −1), which turns relative
        // error into absolute error of about ε·|z|: 16·ε32·max(|z|, 1) bounds both with room,
        // and is still 10^4 times smaller than a wrong coefficient would make the gap.
        let zs: Vec<f32> = (0..801).map(|i| (i as f32 - 400.0) * 0.0237).collect();
        for act in ALL {
            let mut v32 = zs.clone();
            let mut d32 = vec![0.0f32; zs.len()];
            activate::<f32>(act, &mut v32, Some(&mut d32));
            let mut v64: Vec<f64> = zs.iter().map(|&z| f64::from(z)).collect();
            let mut d64 = vec![0.0f64; zs.len()];
            activate::<f64>(act, &mut v64, Some(&mut d64));
            for (i, &z) in zs.iter().enumerate() {
                let tol = 16.0 * f64::from(f32::EPSILON) * f64::from(z.abs()).max(1.0);
                assert!(
                    (f64::from(v32[i]) - v64[i]).abs() <= tol,
                    "{act:?}({z}): f32 {} vs f64 {}",
                    v32[i],
                    v64[i]
                );
                assert!(
                    (f64::from(d32[i]) - d64[i]).abs() <= tol,
                    "{act:?}'({z}): f32 {} vs f64 {}",
                    d32[i],
                    d64[i]
                );
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
    fn simd_variants_give_the_same_bits_as_plain_code() {
        // Results must not depend on which CPU runs a job: the dispatched (AVX-512/AVX2) loops,
        // whatever their values per tanh call, and plain code one value at a time must agree
        // exactly.
        let z: Vec<f64> = (0..4001)
            .map(|i| (f64::from(i) - 2000.0) * 0.0123)
            .collect();
        for act in [Smooth::Tanh, Smooth::Gelu] {
            let (mut a, mut b) = (z.clone(), z.clone());
            let (mut da, mut db) = (vec![0.0; z.len()], vec![0.0; z.len()]);
            smooth(act, &mut a, Some(&mut da));
            smooth_loops::<_, 1>(act, &mut b, Some(&mut db));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(bits(&da), bits(&db));

            let z32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
            let (mut a, mut b) = (z32.clone(), z32.clone());
            let (mut da, mut db) = (vec![0.0f32; z.len()], vec![0.0f32; z.len()]);
            smooth(act, &mut a, Some(&mut da));
            smooth_loops::<_, 1>(act, &mut b, Some(&mut db));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(bits(&da), bits(&db));
        }
    }

    #[test]
    fn tanh_in_blocks_is_tanh_one_value_at_a_time() {
        // The blocked loop (`TANH_LANES` or `TANH_LANES_AVX2_F64` values per call, then a
        // remainder) only reorders instructions: every value, its derivative included, must
        // have the bits of the scalar formula. 4,001 values leave a remainder; the specials
        // check the selects lane by lane.
        let mut z: Vec<f64> = (0..4001)
            .map(|i| (f64::from(i) - 2000.0) * 0.0123)
            .collect();
        z[7] = f64::NAN;
        z[40] = f64::INFINITY;
        z[41] = -1e-300;
        z[42] = -0.0;
        let (mut a, mut da) = (z.clone(), vec![0.0; z.len()]);
        activate(Activation::Tanh, &mut a, Some(&mut da));
        for ((&zi, &ai), &di) in z.iter().zip(&a).zip(&da) {
            let t = zi.tanh_simd();
            assert_eq!(ai.to_bits(), t.to_bits(), "tanh({zi})");
            assert_eq!(di.to_bits(), (1.0 - t * t).to_bits(), "tanh'({zi})");
        }
        let z32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
        let (mut a, mut da) = (z32.clone(), vec![0.0f32; z.len()]);
        activate(Activation::Tanh, &mut a, Some(&mut da));
        for ((&zi, &ai), &di) in z32.iter().zip(&a).zip(&da) {
            let t = zi.tanh_simd();
            assert_eq!(ai.to_bits(), t.to_bits(), "tanh({zi})");
            assert_eq!(di.to_bits(), (1.0 - t * t).to_bits(), "tanh'({zi})");
        }
    }

    #[test]
    fn pipelined_tanh_has_the_bits_of_one_value_at_a_time() {
        // Called directly, so that the check runs on CPUs without AVX-512 too. Lengths around
        // the block sizes: no block, one, a partial one, the last block's finish and the
        // remainder after it must each land on their own values.
        fn check<F: Real>(z: &[F], pipelined: fn(&mut [F], &mut [F])) {
            let (mut a, mut d) = (z.to_vec(), vec![F::zero(); z.len()]);
            pipelined(&mut a, &mut d);
            for ((&zi, &ai), &di) in z.iter().zip(&a).zip(&d) {
                let t = zi.tanh_simd();
                assert_eq!(ai.f64().to_bits(), t.f64().to_bits(), "tanh({zi:?})");
                assert_eq!(di.f64().to_bits(), (F::one() - t * t).f64().to_bits());
            }
        }
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 47, 64, 65, 1000] {
            let z: Vec<f64> = (0..n)
                .map(|i| (f64::from(i as u32) - 500.0) * 0.0371 + 1e-3)
                .collect();
            check(&z, tanh_pipelined::<f64, 16>);
            check(&z, tanh_pipelined::<f64, 32>);
            let z32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
            check(&z32, tanh_pipelined::<f32, 32>);
        }
        let mut specials = vec![0.3f64; 40];
        specials[..6].copy_from_slice(&[f64::NAN, f64::INFINITY, -1e-300, -0.0, 0.0, -25.0]);
        specials[20] = f64::NEG_INFINITY;
        check(&specials, tanh_pipelined::<f64, 16>);
    }

    #[test]
    fn values_are_the_documented_functions() {
        let z = [-3.0f64, -1.5, -0.05, 0.0, 0.03, 0.8, 2.5, 30.0];
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
                // Our tanh is within 3 ulps of libm's (numeric/tanh.rs) and the rest is the same formula
                // in another order: 8 ulps of the larger of the value and 1 bounds the gap.
                assert!(
                    (vi - want).abs() <= 8.0 * f64::EPSILON * want.abs().max(1.0),
                    "{act:?}({zi}) = {vi}, want {want}"
                );
            }
        }
    }
}
