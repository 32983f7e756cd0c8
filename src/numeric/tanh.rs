//! Branch-free tanh in f64 and in f32, accurate to a few ulps, that compilers can vectorize.
//!
//! Input: one float; output: its tanh, in the same precision. Why not `f64::tanh`: that is a
//! scalar libm call (~10 ns), which made tanh and gelu networks 3–4× slower than relu ones.
//! These versions use only arithmetic, bit casts and selects, so a loop over them becomes SIMD
//! code (see `activation.rs`, which compiles such loops for AVX-512/AVX2 when the CPU has them).
//!
//! Method, for a = |x| (clamped where tanh rounds to 1: 20 in f64, 9 in f32):
//! tanh(a) = −m/(2 + m) with m = expm1(−2a). expm1 by Cody–Waite reduction, −2a = k·ln2 + r
//! with |r| ≤ ln2/2, expm1(r) by its Taylor series (degree 13 in f64, truncation < 1e-17
//! relative; degree 7 in f32, < 2e-8), and expm1(−2a) = 2^k·expm1(r) + (2^k − 1) with 2^k
//! assembled in the exponent bits. For small a, k = 0 and m is expm1(r) itself, so the result
//! keeps its relative accuracy down to the smallest subnormals without a second branch: one
//! formula for every a is what lets the loop vectorize.
//!
//! Measured worst case against libm's f64 tanh on dense grids: 3.0 ulps (f64), 1.7 f32 ulps
//! (f32). Before (until 2026-12) the f64 version computed exp(−2a) and (1 − e)/(1 + e), plus a
//! Taylor series of tanh below 0.1 and a select between the two, and f32 networks used it through
//! f64: a tanh with its derivative cost 6.6 ns per f64 value and 3.0 per f32 value on this
//! project's Intel Sapphire Rapids test machine (AVX-512, a loop over 2,048 values), against 3.9
//! and 1.3 ns now.
//!
//! [`tanh_lanes`] computes N values at once, step by step, so the CPU has N/lanes independent
//! chains to overlap (same bits as one at a time). With 32 values per call, in the sampling loop
//! of the small tanh model (4 → [8, 8] → 1, n = 1,000, HMC, 4 chains; this and the narrow
//! kernels' grouping together, medians of three alternating runs): 8,736 → 10,940 gradients/s
//! in f64 and 17,987 → 22,942 in f32, traces byte-identical.
//!
//! Only IEEE +, −, ×, ÷ and fused multiply-add (`mul_add`: the exact a·b + c rounded once) are
//! used, so every instruction set gives the same bits: AVX-512 and AVX2 run the FMA instructions,
//! a CPU without them libm's correctly rounded `fma`. Until 2026-12-03 each product was rounded
//! before its addition, which needed twice the instructions in the series. The worst cases of
//! the tests below are now 2.9 ulps in f64 (unchanged) and 1.7 in f32 (was 1.8). The division
//! then sets the pace (perf puts the samples after each `vdivpd`); replacing it by a reciprocal
//! and Newton steps would cost about as many cycles as it saves (13 FMA-port operations per 8
//! values against one division's 16 cycles per 8), so it stays.
//!
//! The f64 series is evaluated by Estrin's scheme (since 2026-12-04; Horner's before): what
//! limits this loop on a CPU without AVX-512 is each value's chain of dependent operations, not
//! the FMA units. 32 values are ~430 instructions, more than the 256 that an AMD Zen 3 keeps in
//! flight, so a block's last values cannot overlap the next block's first, and the block takes
//! about as long as one value's chain (Horner: ~100 cycles). Estrin's pairs shorten that chain
//! by ~30 cycles for three more multiplications. On the 2-core Zen 3 VM (AVX2; its FMA units
//! alone would allow ~0.8 ns per value): tanh with its derivative over 16,000 values 2.12 → 1.84
//! ns per value (best of 30 × 100 loops, six alternating runs each); `small8-tanh` gradient, one
//! thread, median of five alternating runs' best, 0.094 → 0.078 ms in f64 (base-tanh 35.2 → 34.2
//! ms); small tanh HMC sweep (4 chains, 2 threads, 3,000 draws; three alternating runs of each
//! build) 20,809 / 22,332 / 25,102 → 24,288 / 22,167 / 28,136 gradients/s. Worst case 2.9 →
//! 3.0 ulps. The bits change (the series' sums are in another order), and with them the chains:
//! that HMC run's λ̂ went 5.188 → 5.130, 1.4 standard errors of the difference (MCSE 0.028
//! each), its target w* retrained through the new tanh. f32 keeps Horner (below: six steps deep,
//! where Estrin gained nothing measurable and cost accuracy).
//!
//! Not done on AVX2, measured: software pipelining across blocks (block b's reduction and series
//! written beside block b − 1's 2^k, division and derivative, same bits): `small8-tanh` f64 on one
//! thread, three alternating runs, best ms 0.0558–0.0559 before, 0.0563–0.0571 with 16 values per
//! block and 0.0574–0.0590 with 8. And the division is not the bottleneck: replacing it by a
//! product (a wrong tanh, to time it) took only 0.0565–0.0576 → 0.0539–0.0548 ms (2026-12-04, Zen
//! 3 VM). On Intel's AVX-512 cores it is, and there the activation loop pipelines the division
//! (since 2026-12-07: [`tanh_quotient_lanes`] and [`tanh_from_quotient`] are the two halves, and
//! `nn/activation.rs`'s `tanh_pipelined` has the measurements).
//!
//! On an Intel Xeon VM with AVX-512 (2 cores, ~3.4 GHz; 2026-12-07) the division does cost:
//! tanh with its derivative over 16,000 values took 1.00–1.10 ns per value (best of 30 × 100
//! loops, six alternating rounds), and 0.79–0.81 with the division replaced by a product. Four
//! changes that would still give every instruction set the same bits were measured and are not
//! in:
//! - the reciprocal from an f32 division (correctly rounded, 2⁻²⁴), one Newton step, and the
//!   quotient corrected by its residual, `q₀ + (n − q₀·d)·y₁`: all 16,000 values gave the
//!   division's bits, but 1.07–1.13 ns per value, and `small8-tanh` f64 0.0295–0.0324 ms (the
//!   best of each of five alternating runs) against 0.0282–0.0305. Presumably the two
//!   conversions and five multiply-adds per vector cost more than they save: they take the two
//!   ports that 512-bit arithmetic has, while the division's 16 cycles per vector partly
//!   overlap other work.
//! - a degree-10 minimax series for expm1(r)/r (Remez, relative error 1.8·10⁻¹⁷ on |r| ≤ ln2/2)
//!   instead of degree-12 Taylor: two multiply-adds fewer per value, worst case unchanged
//!   (2.97 ulps), and no measurable change in speed (1.015–1.068 against 1.018–1.069 ns).
//! - the reciprocal without any division: a degree-3 minimax polynomial of 1/d on [1, 2] (the
//!   range of 2 + m; 1.7·10⁻³), two Newton steps and the same residual correction, ten
//!   multiply-adds in all: worst case unchanged (2.97 ulps), 1.13–1.16 ns per value against
//!   1.05–1.10 in six alternating rounds.
//! - one division for two values (values t and t + N/2 of a call: q = 1/(d_a·d_b), then
//!   m_a·(d_b·q) and m_b·(d_a·q)), half the divisions for three more products per pair: 1.01–1.10
//!   ns per value against 0.98–1.06 in six alternating rounds, and a worst case of 3.7 ulps
//!   (2026-12-07, same VM).
//!
//! A reciprocal instruction (`vrcp14pd`, 14 bits, AVX-512 only) was not tried: from it, two Newton
//! steps and the residual correction are nine multiply-adds, about as many as the polynomial's
//! ten above; and unless its quotient were proven correctly rounded, AVX-512 and AVX2 machines
//! would compute different tanh values, and a sweep's traces would depend on its nodes.
//!
//! Two operations fewer per value, the same bits (2026-12-07, same VM): the reduction computes
//! u = −r/2 = a + k·ln2/2 instead of r (so −2a is never formed) and the series takes its
//! degree-d coefficient times (−2)^d, which turns every intermediate into r's one times a power
//! of two; and 2^k comes from `shifted`'s low bits with one shift (as −2^(k+1), its sign and exponent
//! rounded in by [`ROUND_MAGIC_K`]) instead of a subtraction, an addition and a shift. A test
//! (`the_u_form_has_the_bits_of_the_r_form`) compares bits with the r-form on 620,000 arguments;
//! a scratch benchmark found no difference on 6.2 million. tanh with its derivative over 16,000
//! values (best of 30 × 100 loops, two runs of six alternating rounds): 0.965–1.048 → 0.899–1.064
//! ns per value, the round medians 1.02 → 0.97 and 0.98 → 0.95. In the sampling loop of the
//! small tanh model (HMC, 4 chains on 2 threads, 2,000 draws, four alternating runs) 63,195–64,582
//! → 63,341–66,312 gradients/s, within the machine's noise, λ̂ byte-identical. Also measured, and
//! left out: 1 − t² as one fused multiply-add in `activation.rs` (0.972–1.064 → 0.923–0.977 ns;
//! in the same sweep 59,949–65,993 → 62,917–67,508 gradients/s, and λ̂ 5.1792 → 5.1741, since the
//! bits of φ' and so of every chain change), a gain within the noise for a change of every trace.
//! The f32 version got the same two changes (`the_f32_u_form_has_the_bits_of_the_r_form`). The
//! `small8-tanh` gradient benchmark, one thread, medians of four alternating runs of each build:
//! f64 0.0300–0.0305 → 0.0292–0.0300 ms, f32 0.0160–0.0173 → 0.0162–0.0166 ms.

/// 1.5·2^52: adding it rounds a value of magnitude < 2^51 to an integer, held in the low bits.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
/// [`ROUND_MAGIC`] + 3072: k ∈ [−58, 0] lands in the low bits as k + 3072, and those 12 bits,
/// shifted to the top of a float, are the sign bit (2048) and the biased exponent k + 1024 of
/// −2^(k+1), a normal number with a zero mantissa. Rounds as [`ROUND_MAGIC`] does: both are
/// even and in the binade of unit spacing, so ties go the same way.
const ROUND_MAGIC_K: f64 = ROUND_MAGIC + 3072.0;
/// ln 2 split in a high part whose low 21 mantissa bits are zero (so k·LN2_HI is exact for
/// |k| < 2^21) and the remainder, ln 2 − LN2_HI rounded to f64.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// Beyond this |x|, tanh(x) rounds to ±1 (1 − tanh(20) ≈ 8.5e-18 < ε/2).
const SATURATE: f64 = 20.0;

/// 1/(k+1)! for k = 0 … 12: c_k, the coefficients of expm1(r)/r = Σ c_k r^k to degree 12.
const EXPM1_TAYLOR: [f64; 13] = [
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// The series' coefficients for u = −r/2: C_k = c_k·(−2)^k, so that C_k·u^k = c_k·r^k.
const EXPM1_TAYLOR_U: [f64; 13] = {
    let mut c = EXPM1_TAYLOR;
    let mut scale = 1.0;
    let mut k = 0;
    while k < c.len() {
        c[k] *= scale;
        scale *= -2.0;
        k += 1;
    }
    c
};

/// expm1(r)/r for r = −2u, |r| ≤ ln2/2, by Estrin's scheme in u: pairs C_2i + C_2i+1·u, then
/// pairs of those with u², then u⁴, then u⁸. Four multiply-adds deep after u⁸ instead of
/// Horner's twelve in a row, so a value's chain of dependent operations is ~30 cycles shorter;
/// see the module doc. Every intermediate value is the one the same scheme computes in r times a
/// power of two (u² = r²/4, and each pair scales with it), so the result has the same bits.
#[inline(always)]
fn expm1_series(u: f64) -> f64 {
    let c = &EXPM1_TAYLOR_U;
    let u2 = u * u;
    let u4 = u2 * u2;
    let u8 = u4 * u4;
    let q0 = c[1].mul_add(u, c[0]);
    let q1 = c[3].mul_add(u, c[2]);
    let q2 = c[5].mul_add(u, c[4]);
    let q3 = c[7].mul_add(u, c[6]);
    let q4 = c[9].mul_add(u, c[8]);
    let q5 = c[11].mul_add(u, c[10]);
    let s0 = q1.mul_add(u2, q0);
    let s1 = q3.mul_add(u2, q2);
    let s2 = c[12].mul_add(u4, q5.mul_add(u2, q4));
    s2.mul_add(u8, s1.mul_add(u4, s0))
}

/// tanh(x) in f64, within 3 ulps of the exact value; NaN gives NaN.
#[inline(always)]
pub(crate) fn tanh(x: f64) -> f64 {
    tanh_lanes([x])[0]
}

/// [`tanh`] of N values at once, each step of the formula applied to all N before the next.
///
/// The same operations on each value as one at a time, so the same bits; what changes is the
/// order of the instructions. The formula is one long chain of dependent operations per value
/// (the series alone is 13 multiply–adds in a row, and then a division): a loop over single
/// SIMD vectors of values left the CPU waiting on that chain, because its scheduler holds only a
/// few iterations' worth of it. Steps over N values give it N/lanes independent chains side by side.
#[inline(always)]
pub(crate) fn tanh_lanes<const N: usize>(x: [f64; N]) -> [f64; N] {
    let (m, d) = tanh_quotient_lanes(x);
    std::array::from_fn(|t| tanh_from_quotient(m[t], d[t], x[t]))
}

/// The last step of [`tanh`]: the quotient `m / d` of [`tanh_quotient_lanes`] with the sign of
/// `x`. A function of its own so that a loop can issue one block's divisions while the CPU
/// works on the next block's series (`nn/activation.rs`).
#[inline(always)]
pub(crate) fn tanh_from_quotient(m: f64, d: f64, x: f64) -> f64 {
    (m / d).copysign(x)
}

/// Everything of [`tanh_lanes`] before its division: m = expm1(−2|x|) and the divisor
/// −2 − m of each value, tanh(|x|) = m / (−2 − m).
#[inline(always)]
pub(crate) fn tanh_quotient_lanes<const N: usize>(x: [f64; N]) -> ([f64; N], [f64; N]) {
    let (mut shifted, mut u) = ([0.0; N], [0.0; N]);
    for t in 0..N {
        // Written as a comparison, not `min`, so that NaN stays NaN.
        let a = if x[t].abs() > SATURATE {
            SATURATE
        } else {
            x[t].abs()
        };
        // −2a = k·ln2 + r, computed as u = −r/2 = a + k·ln2/2: halving is exact, so u is r's
        // bits scaled, without forming −2a first. k from a directly: a·(−2·log2 e) is the same
        // product as (−2a)·log2 e, one dependent operation earlier.
        shifted[t] = a.mul_add(-2.0 * std::f64::consts::LOG2_E, ROUND_MAGIC_K);
        let kf = shifted[t] - ROUND_MAGIC_K;
        u[t] = kf.mul_add(LN2_LO / 2.0, kf.mul_add(LN2_HI / 2.0, a));
    }
    let mut p = [0.0; N];
    for t in 0..N {
        p[t] = expm1_series(u[t]);
    }
    let (mut m, mut d) = ([0.0; N], [0.0; N]);
    for t in 0..N {
        // expm1(r) = p·r = −2·(p·u), and with n = −2^(k+1) (read from `shifted`'s low bits):
        // m = expm1(−2a) = 2^k·expm1(r) + (2^k − 1) = n·(p·u) + (−n/2 − 1), each product exact
        // or rounded as p·r and 2^k·(p·r) were, so the same bits.
        let pu = p[t] * u[t];
        let n = f64::from_bits(shifted[t].to_bits() << 52);
        m[t] = n.mul_add(pu, n.mul_add(-0.5, -1.0));
        d[t] = -2.0 - m[t];
    }
    (m, d)
}

/// 1.5·2^23, [`ROUND_MAGIC`] for f32.
const ROUND_MAGIC_F32: f32 = 12_582_912.0;
/// ln 2 split for f32: a high part with its low 9 mantissa bits zero (k·LN2_HI_F32 exact for
/// |k| < 2^9) and the remainder rounded to f32.
const LN2_HI_F32: f32 = f32::from_bits(0x3F31_7200);
const LN2_LO_F32: f32 = f32::from_bits(0x35BF_BE8E);
/// Beyond this |x|, tanh(x) rounds to ±1 in f32 (1 − tanh(9) ≈ 3.0e-8 < ε/2).
const SATURATE_F32: f32 = 9.0;
/// 1/k! for k = 7 down to 1: the series to degree 7 (0.347^7/8! ≈ 1.5e-8 relative).
const EXPM1_TAYLOR_F32: [f32; 7] = [
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
];

/// tanh(x) in f32 arithmetic, the same method as [`tanh`]: within 2 f32 ulps of the exact value.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    tanh_f32_lanes([x])[0]
}

/// [`EXPM1_TAYLOR_F32`] for u = −r/2, as [`EXPM1_TAYLOR_U`] is for f64: the coefficient of
/// degree d (at index 6 − d) times (−2)^d.
const EXPM1_TAYLOR_F32_U: [f32; 7] = {
    let mut c = EXPM1_TAYLOR_F32;
    let mut scale = 1.0;
    let mut i = c.len();
    while i > 0 {
        i -= 1;
        c[i] *= scale;
        scale *= -2.0;
    }
    c
};

/// [`ROUND_MAGIC_F32`] + 384, as [`ROUND_MAGIC_K`] is for f64: k ∈ [−26, 0] lands in the low 9
/// bits as k + 384, the sign (256) and biased exponent k + 128 of −2^(k+1).
const ROUND_MAGIC_K_F32: f32 = ROUND_MAGIC_F32 + 384.0;

/// [`tanh_f32`] of N values at once, as [`tanh_lanes`] does for f64 (the same u-form).
#[inline(always)]
pub(crate) fn tanh_f32_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    let (m, d) = tanh_f32_quotient_lanes(x);
    std::array::from_fn(|t| tanh_f32_from_quotient(m[t], d[t], x[t]))
}

/// [`tanh_from_quotient`] in f32.
#[inline(always)]
pub(crate) fn tanh_f32_from_quotient(m: f32, d: f32, x: f32) -> f32 {
    (m / d).copysign(x)
}

/// [`tanh_quotient_lanes`] in f32: m and −2 − m of each value.
#[inline(always)]
pub(crate) fn tanh_f32_quotient_lanes<const N: usize>(x: [f32; N]) -> ([f32; N], [f32; N]) {
    let (mut shifted, mut u) = ([0.0; N], [0.0; N]);
    for t in 0..N {
        let a = if x[t].abs() > SATURATE_F32 {
            SATURATE_F32
        } else {
            x[t].abs()
        };
        shifted[t] = a.mul_add(-2.0 * std::f32::consts::LOG2_E, ROUND_MAGIC_K_F32);
        let kf = shifted[t] - ROUND_MAGIC_K_F32;
        u[t] = kf.mul_add(LN2_LO_F32 / 2.0, kf.mul_add(LN2_HI_F32 / 2.0, a));
    }
    // Horner here: the series is six multiply-adds deep, and Estrin's scheme (as in f64) was
    // within the noise in speed (small8-tanh f32, 0.029 → 0.028 ms) and cost accuracy (worst
    // case 1.7 → 2.2 f32 ulps). In u, each of Horner's partial results is r's one times a power
    // of two, so the bits are those of the series in r.
    let mut p = [EXPM1_TAYLOR_F32_U[0]; N];
    for &c in &EXPM1_TAYLOR_F32_U[1..] {
        for t in 0..N {
            p[t] = p[t].mul_add(u[t], c);
        }
    }
    let (mut m, mut d) = ([0.0; N], [0.0; N]);
    for t in 0..N {
        let pu = p[t] * u[t];
        let n = f32::from_bits(shifted[t].to_bits() << 23);
        m[t] = n.mul_add(pu, n.mul_add(-0.5, -1.0));
        d[t] = -2.0 - m[t];
    }
    (m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_libm_within_a_few_ulps() {
        // Dense grids over the saturating range and around k's first step (|x| ≈ 0.1733, where
        // expm1's reduction starts to scale), plus tiny arguments. libm's tanh is itself within
        // ~1 ulp, so 4 ulps of disagreement bounds our error at ≤ 5 ulps; measured worst case is
        // 2.9.
        let mut worst = 0.0f64;
        let grids = [(-25.0, 25.0), (-0.2, 0.2), (0.17, 0.175), (-1e-6, 1e-6)];
        for (lo, hi) in grids {
            for i in 0..=200_000 {
                let x = lo + (hi - lo) * f64::from(i) / 200_000.0;
                let (got, want) = (tanh(x), x.tanh());
                let ulps = if want == 0.0 {
                    got.abs() / f64::MIN_POSITIVE
                } else {
                    ((got - want) / want).abs() / f64::EPSILON
                };
                worst = worst.max(ulps);
            }
        }
        assert!(worst <= 4.0, "worst disagreement {worst} ulps");
    }

    /// Runs `xs` through `lanes` 32 at a time (the last block padded) and asserts that every
    /// value has the bits `oracle` gives it.
    fn assert_same_bits<T, B>(
        xs: &[T],
        lanes: impl Fn([T; 32]) -> [T; 32],
        oracle: impl Fn(T) -> T,
        bits: impl Fn(T) -> B,
    ) where
        T: Copy + std::fmt::LowerExp + From<f32>,
        B: PartialEq + std::fmt::Debug,
    {
        for chunk in xs.chunks(32) {
            let mut block = [T::from(0.5); 32];
            block[..chunk.len()].copy_from_slice(chunk);
            for (&x, t) in block.iter().zip(lanes(block)) {
                assert_eq!(bits(t), bits(oracle(x)), "tanh({x:e})");
            }
        }
    }

    /// The formula in r as written until 2026-12-07 (r = −2a − k·ln2, 2^k, p·r), a test oracle
    /// for the claim that the u-form above gives the same bits.
    fn tanh_in_r(x: f64) -> f64 {
        let a = if x.abs() > SATURATE {
            SATURATE
        } else {
            x.abs()
        };
        let y = -2.0 * a;
        let shifted = a.mul_add(-2.0 * std::f64::consts::LOG2_E, ROUND_MAGIC);
        let kf = shifted - ROUND_MAGIC;
        let r = (-kf).mul_add(LN2_LO, (-kf).mul_add(LN2_HI, y));
        let c = &EXPM1_TAYLOR;
        let (r2, r4) = (r * r, r * r * (r * r));
        let r8 = r4 * r4;
        let q: [f64; 6] = std::array::from_fn(|i| c[2 * i + 1].mul_add(r, c[2 * i]));
        let s0 = q[1].mul_add(r2, q[0]);
        let s1 = q[3].mul_add(r2, q[2]);
        let s2 = c[12].mul_add(r4, q[5].mul_add(r2, q[4]));
        let p = s2.mul_add(r8, s1.mul_add(r4, s0)) * r;
        let k = (shifted.to_bits() as i64).wrapping_sub(ROUND_MAGIC.to_bits() as i64);
        let two_k = f64::from_bits(((k + 1023) as u64) << 52);
        let m = two_k.mul_add(p, two_k - 1.0);
        (m / (-2.0 - m)).copysign(x)
    }

    #[test]
    fn the_u_form_has_the_bits_of_the_r_form() {
        // Dense grids, tiny and subnormal arguments, and random bit patterns (every exponent).
        let mut xs: Vec<f64> = (0..=400_000)
            .map(|i| -25.0 + 50.0 * f64::from(i) / 4e5)
            .collect();
        xs.extend((0..=20_000).map(|i| (f64::from(i) - 1e4) * 1e-12));
        xs.extend([
            0.0, -0.0, 5e-324, -1e-310, 1e-300, 1e-160, 3e-155, 700.0, -1e308,
        ]);
        use rand::{RngCore, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        xs.extend(
            (0..200_000)
                .map(|_| f64::from_bits(rng.next_u64()))
                .filter(|x| x.is_finite()),
        );
        assert_same_bits(&xs, tanh_lanes::<32>, tanh_in_r, f64::to_bits);
    }

    /// The f32 formula in r as written until 2026-12-07, the oracle of the next test.
    fn tanh_f32_in_r(x: f32) -> f32 {
        let a = if x.abs() > SATURATE_F32 {
            SATURATE_F32
        } else {
            x.abs()
        };
        let shifted = a.mul_add(-2.0 * std::f32::consts::LOG2_E, ROUND_MAGIC_F32);
        let kf = shifted - ROUND_MAGIC_F32;
        let r = (-kf).mul_add(LN2_LO_F32, (-kf).mul_add(LN2_HI_F32, -2.0 * a));
        let p = EXPM1_TAYLOR_F32[1..]
            .iter()
            .fold(EXPM1_TAYLOR_F32[0], |p, &c| p.mul_add(r, c))
            * r;
        let k = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC_F32.to_bits() as i32);
        let two_k = f32::from_bits(((k + 127) as u32) << 23);
        let m = two_k.mul_add(p, two_k - 1.0);
        (m / (-2.0 - m)).copysign(x)
    }

    #[test]
    fn the_f32_u_form_has_the_bits_of_the_r_form() {
        use rand::{RngCore, SeedableRng};
        let mut xs: Vec<f32> = (0..=400_000)
            .map(|i| (-12.0 + 24.0 * f64::from(i) / 4e5) as f32)
            .collect();
        xs.extend((0..=20_000).map(|i| ((f64::from(i) - 1e4) * 1e-9) as f32));
        xs.extend([0.0, -0.0, 1e-45, -1e-40, 1e-30, 1e-20, 100.0, -3e38]);
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
        xs.extend(
            (0..200_000)
                .map(|_| f32::from_bits(rng.next_u32()))
                .filter(|x| x.is_finite()),
        );
        assert_same_bits(&xs, tanh_f32_lanes::<32>, tanh_f32_in_r, f32::to_bits);
    }

    #[test]
    fn f32_version_agrees_with_libm_within_a_few_f32_ulps() {
        // Against f64's libm tanh (exact to ~1e-16, far below an f32 ulp). Measured worst case
        // 1.8 f32 ulps; 3 leaves room for a grid we did not try without hiding a lost bit.
        let mut worst = 0.0f64;
        let grids = [(-12.0, 12.0), (-0.4, 0.4), (0.17, 0.18), (-1e-6, 1e-6)];
        for (lo, hi) in grids {
            for i in 0..=200_000 {
                let x = (lo + (hi - lo) * f64::from(i) / 200_000.0) as f32;
                let (got, want) = (f64::from(tanh_f32(x)), f64::from(x).tanh());
                let ulps = if want == 0.0 {
                    got.abs()
                } else {
                    ((got - want) / want).abs() / f64::from(f32::EPSILON)
                };
                worst = worst.max(ulps);
            }
        }
        assert!(worst <= 3.0, "worst disagreement {worst} f32 ulps");
    }

    #[test]
    fn f32_special_values() {
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(-100.0), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        for x in [1e-30f32, -1e-40, 1e-10] {
            assert_eq!(tanh_f32(x), x);
        }
        assert_eq!(LN2_HI_F32.to_bits() & ((1 << 9) - 1), 0);
        // The pair carries ln 2 to within LN2_LO_F32's rounding, ≤ 2^-24 · 1.5e-6 ≈ 1e-13.
        let pair = f64::from(LN2_HI_F32) + f64::from(LN2_LO_F32);
        assert!((pair - std::f64::consts::LN_2).abs() < 1e-13, "{pair}");
    }

    #[test]
    fn ln2_split_is_exact_enough() {
        assert_eq!(LN2_HI.to_bits() & ((1 << 21) - 1), 0);
        // The pair carries ln 2 to ~2^-85: its f64 sum is ln 2 rounded.
        assert_eq!(LN2_HI + LN2_LO, std::f64::consts::LN_2);
        assert!(LN2_LO.abs() < 1e-9);
    }

    #[test]
    fn special_values() {
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert_eq!(tanh(-700.0), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        // Subnormal and tiny inputs: tanh(x) = x to double precision.
        for x in [1e-300, -5e-310, 1e-20] {
            assert_eq!(tanh(x), x);
        }
    }
}
