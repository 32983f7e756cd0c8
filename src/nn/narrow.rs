//! Kernels for narrow layers: one pass over a chunk's rows per layer, forward and backward,
//! instead of a general matrix product with an inner dimension of 2 to 16.
//!
//! Most LLC sweeps are many small networks over many data rows; there a layer's product has an
//! inner dimension of a few units, and a general GEMM (packing, blocking, per-call set-up) spends
//! more time organizing the work than doing it. These kernels work on the *feature-major*
//! buffers of [`super::mlp`] (feature j of row r at `j·stride + r`), so every loop runs over rows:
//! a block of [`BLOCK`] rows of one output is accumulated in a small array the compiler keeps in
//! vector registers (half a block at a time for f64 on AVX2, which has half the registers:
//! [`HalfBlocks`]), and the loops are compiled for AVX-512 or AVX2 when the CPU has them
//! (chosen once, when the model is built: [`Isa::detect`]). On AVX-512 the weight gradients
//! run in register tiles written with intrinsics ([`tiles`]): the one kernel whose sums the
//! compiler would not keep in registers when written generically.
//!
//! Input: a layer's weights (row-major `fan_in × fan_out`, as the flat buffer holds them), its
//! bias, and feature-major blocks of rows. Output: pre-activations (forward), the weight and bias
//! gradient added into a flat buffer, and dL/dA of the layer's input (backward). Nothing
//! allocates. Every multiply-add is fused (`mul_add`: one rounding of the exact a·b + c, as IEEE
//! 754 defines it), so every instruction set gives the same bits: the AVX-512 and AVX2 copies use
//! the FMA instructions, the baseline copy libm's `fma` (correct, but slow: only CPUs older than
//! AVX2 and FMA, from before 2013, run it).
//!
//! Sums run in a different order than in the GEMM path (per row, bias first, then inputs in
//! order; over rows, `BLOCK` interleaved partial sums added pairwise), so results differ from it
//! in the last bits: by at most ~k·ε·Σ|terms| for a sum of k terms (`gradient_tests` checks the
//! two paths against each other with that bound).
//!
//! Which layers use these kernels is decided in [`super::mlp`] from the layer's shape
//! and the precision (`narrow_max`).
//!
//! # Measurements, oldest first
//!
//! What each change to these kernels gained or cost, and what was tried and left out, with the
//! machine, the benchmark and whether the bits changed.
//!
//! Measured with `cargo bench --bench gradient` on a 2-core AMD EPYC Zen 5 VM with AVX-512
//! (load average 1–1.5 while measuring; best of 15 samples, ms per full-batch gradient on one
//! thread), before (main at 48c7c4e: row-major buffers, gemm for every layer) → after
//! (feature-major buffers, narrow kernels by width), f64 / f32:
//!
//! ```text
//! case                                   before ms         after ms          speed-up
//! small8  4→[8,8]→1 relu, n = 1,000      0.0450 / 0.0488   0.0323 / 0.0178   1.4× / 2.7×
//! small   3→[6,6]→1 relu, n = 1,000      0.0521 / 0.0528   0.0180 / 0.0137   2.9× / 3.9×
//! dln432  4→[3]→2 linear, moments        0.0011 / 0.0011   0.0003 / 0.0003   3.7× / 3.7×
//! dln432  the same on all 10,000 rows    0.257  / 0.247    0.037  / 0.050    7.0× / 4.9×
//! base62  32→[62,62,62]→1, n = 20,000    14.5   / 7.72     14.8   / 7.85     (gemm both times)
//! ```
//!
//! In HMC (`benches/hmc.rs`, small8, 4 chains on 2 cores, best of 3 in each of two series):
//! 38,300 → 61,700–63,400 gradients/s in f64 and 33,900 → 93,300–97,000 in f32.
//!
//! Forcing one kernel everywhere (`BENCH_KERNELS`, measured under load 5–8): on small8 the gemm
//! crate on the feature-major buffers is about as fast as these kernels in f64 and slower in
//! f32, and on dln432-all-rows slower in f64 and faster in f32 (with widths 3 and 2 the sums
//! over rows here are single chains of f32 additions, latency-bound); much of the gain on these
//! sizes comes from the feature-major layout and block-aligned chunks, which both paths share.
//! On base62 these kernels take 2.6× gemm's time, so wide layers stay on gemm.

//! Outputs (forward) and inputs (backward) are computed [`GROUP`] at a time, sharing each load of
//! a row block; before (until 2026-12) one output's sum was one chain of dependent additions, two
//! AVX-512 registers wide in f64 and one in f32, and the loops waited on the adders' latency.
//! Each sum keeps its order, so the bits did not change (a demo trace compared byte for byte).
//! On the Intel Sapphire Rapids test machine (2 cores at 2 GHz, noisy; medians of three
//! alternating runs, ms per small8 gradient on one thread): f64 0.094 → 0.080, f32 0.056 → 0.046.

//! The last `m % BLOCK` rows of a chunk go in blocks of 8, 4, 2 and 1 rows, also in registers
//! (until 2026-12 they went one row at a time, which was all of the cost of an 8-row data set:
//! a deep linear network's moments). Same sums in the same order, so the same bits (a test
//! checks the documented order bit for bit at every row count; dln and small-model traces
//! compared byte for byte). Same machine, medians of three alternating runs of the old and new
//! builds: dln432 gradient bench 0.0012 → 0.0007 ms (f64) and 0.0012 → 0.0007 (f32); in the
//! sampling loop of the dln [4, 3, 2] sweep, HMC 616,000 → 1,176,000 gradients/s and MCLMC
//! 478,000 → 549,000; small8 bench f64 0.088 → 0.069 ms, f32 0.060 → 0.039.

//! Fused multiply-adds (since 2026-12-03; before, each product was rounded and then added, to
//! keep the bits equal across instruction sets, which FMA does too since it rounds once). Same
//! order of sums, so only the last bits moved. Medians of five alternating runs of the old and
//! new `cargo bench --bench gradient` builds, ms per gradient on one thread, f64 / f32 (with
//! tanh's FMA, `numeric/tanh.rs`, in the same change): small8-tanh 0.093 / 0.037 → 0.056 /
//! 0.029, small8 0.060 / 0.037 → 0.047 / 0.027, small 0.041 / 0.029 → 0.034 / 0.021, dln432
//! 0.0004 either way. Small tanh HMC sweep (4 chains, 2 threads), median of three:
//! 17,900 → 24,100 gradients/s.

//! Tried and left out (2026-12-06, Zen 5 VM with AVX-512): weight gradients two inputs × four
//! outputs at a time (each block of g_j loaded once for two sums: 12 loads per 16 multiply-adds
//! in f64 instead of 10 per 8), and a layer's last `h % 4` outputs four inputs at a time. Same
//! sums in the same order, so the same bits. Best-of-15 ms per gradient on one thread, three
//! alternating runs of each build, f64 / f32: small8 0.0273–0.0372 / 0.0172–0.0174 →
//! 0.0295–0.0299 / 0.0181–0.0221, small8-tanh 0.0380–0.0391 / 0.0207–0.0263 → 0.0399–0.0402 /
//! 0.0210–0.0221, dln432 unchanged: not faster, so not kept. (Written as one `[[[F; 16]; 4]; 2]`
//! array of partial sums, the compiler kept them on the stack in scalar code, 2–4× slower.)

//! Weight gradients at the load unit's pace (2026-12-06, Zen 5 VM). Timed alone (8 inputs × 8
//! outputs over a 200-row chunk, one thread), `weight_grad` took 1,940 ns, 4.4 times the time of
//! its 1,600 multiply-adds at the measured peak of one 8-lane multiply-add per cycle; a C loop of
//! the same dot products ran at 1.4. Three causes, three changes, same sums in the same order:
//! - every buffer the kernels read now starts on a cache line ([`super::aligned`]): a 64-byte
//!   load across two lines costs about twice one within a line (1,940 → 1,490 ns);
//! - `dots`' partial sums were indexed at a run-time place by the last rows, so the compiler
//!   kept them in memory and stored them on every pass of the main loop; the last rows now work
//!   on a copy (→ 1,140 ns), in blocks of 8, 4, 2 and 1 rows for four sums (→ 960 ns);
//! - a layer with fewer than four outputs (a network's last) summed one input at a time, each
//!   sum waiting on its own additions; it now takes four inputs at a time against the output's
//!   column (8 × 1 over 200 rows: 173 → 147 ns, and 1,062 → 788 ns over 1,000 rows).
//!
//! Gradient benchmark, one thread, best ms, two alternating runs of the old and new builds, f64 /
//! f32: small8 0.0276–0.0278 / 0.0171–0.0174 → 0.0215–0.0216 / 0.0128–0.0132, small8-tanh
//! 0.0370–0.0386 / 0.0204–0.0208 → 0.0320–0.0323 / 0.0163–0.0169, dln432-all-rows 0.0615–0.0624
//! / 0.0380–0.0382 → 0.0518–0.0531 / 0.0375–0.0378, dln432 unchanged (4,300–4,600 → 5,000
//! GFLOP/s-equivalent: its 8 moment rows take `short_dots`, compiled per row count). In the
//! sampling loop (small tanh model, HMC, 4 chains on 2 threads, `sampling_sec`): 44,537 / 47,103
//! → 56,402 / 54,376 gradients/s; the demo's arrays and this run's trace byte-identical.
//!
//! Then (same day, same measurements): a sum's last rows of four sums go through `short_dots`
//! (compiled per row count, partial sums in registers), and `back_prop` stores dL/dA only when
//! the layer below has a residual connection that reads it. small8 f64 0.0216 → 0.0207–0.0208,
//! f32 0.0129 → 0.0123; small8-tanh f64 0.0322–0.0328 → 0.0310–0.0314; dln432-all-rows f64
//! 0.0511–0.0531 → 0.0507. Small tanh HMC: 45,009 / 46,225 (the build before all of this) →
//! 57,341 / 57,366 gradients/s, trace and the demo's arrays byte-identical.

//! Also left out (2026-12-07, Intel Xeon VM with AVX-512, one thread, medians of three
//! alternating runs, ms): [`affine`] over eight outputs per pass instead of four (each load of a
//! row block used eight times; the same sums). As one `[[F; 16]; 8]` array the compiler kept
//! the sums in memory (`small8` f64 0.019 → 0.049); as two arrays of four it kept them in
//! registers and was still slower, `small8` 0.0182–0.0192 → 0.0198–0.0210, `small8-tanh`
//! 0.0292–0.0310 → 0.0313–0.0318. And [`dots`]' four 16-lane reductions written with AVX-512
//! shuffles (15 instructions where the compiler's transposes take ~100; the same additions):
//! `small8` 0.0188–0.0194 → 0.0181–0.0186, but the small tanh HMC sweep (4 chains, 2 threads)
//! went 61,709–63,357 → 57,842–58,751 gradients/s, in three alternating runs.

//! Where a `small8-tanh` gradient's time goes (2026-12-07, Intel Xeon VM, f64, one thread, four
//! alternating runs; each kernel's call skipped in turn, a probe that gives wrong gradients):
//! 0.0295 ms in all (median), 0.0213 without [`weight_grad`], 0.0246 without [`affine`], 0.0247
//! without [`back_prop`], and 0.0164 without the activation pass (tanh): about 28, 17, 16 and 44 %.
//! Three changes aimed at the weight gradient's share, all the same sums in the same order, made
//! no measurable difference and are not in (medians of four or five alternating runs, ms):
//! - the bias gradients four columns per pass instead of one (more additions in flight):
//!   `small8-tanh` 0.0283 against 0.0283, base f32 10.07 against 9.78;
//! - as a probe, [`dots`]' reductions of 16 partial sums cut to one addition (wrong sums):
//!   0.0295 against 0.0303, so the reductions are not what costs;
//! - [`affine`] for a layer's last single output (a network's output layer) four row blocks per
//!   pass, eight chains of multiply-adds in flight instead of two: 0.0292 against 0.0283.
//!
//! The out-of-order core already overlaps one column's chain of additions with the next
//! column's. The weight gradient takes ~8 µs per gradient for ~15,000 vector multiply-adds, a
//! quarter of the two FMA ports' pace; presumably its loads (each pass re-reads its input column
//! and four output columns from L1, ten loads per eight multiply-adds) and each pass's set-up,
//! but that is not settled: tiles of two inputs × four outputs, which load less, were slower as
//! the compiler built them (below).
//!
//! Weight gradients in register tiles on AVX-512 (2026-12-07, same VM; [`tiles`], written with
//! intrinsics, same bits). Timed alone, one thread, best of 30 × 1,000 calls over 208 rows in
//! f64: 8 inputs × 8 outputs 745 → 414–457 ns, 4 × 8 417 → 212, 8 × 1 104 → 73–87.
//! Gradient benchmark, one thread, five alternating runs of the old and new builds, median of
//! the best ms: `small8-tanh` f64 0.0294 → 0.0277, f32 0.0168 → 0.0142; `small8` f64 0.0204 →
//! 0.0181; `small` f64 0.0161 → 0.0137; `dln432-all-rows` 0.0455 → 0.0421; `dln-all-rows`
//! 0.1002 → 0.0928; `base` unchanged (its layers are gemm's). Small tanh HMC (4 chains, 2
//! threads), four alternating runs: 59,576–64,719 → 65,246–66,525 gradients/s, λ̂ identical to
//! the last digit.

// The loops write `a = a + b`, not `a += b`: through the generic `AddAssign` bound the compound
// form compiled to slower code (dln432-all-rows, f64: 0.054 against 0.037 ms).
#![allow(clippy::assign_op_pattern)]

use crate::numeric::Real;

#[cfg(target_arch = "x86_64")]
mod tiles;

/// Rows per register block: 16 values are one AVX-512 register of f32 or two of f64.
pub(crate) const BLOCK: usize = 16;

/// Outputs (forward) or inputs (backward) computed together: with `GROUP` sums of a `BLOCK`
/// each, 4 × 2 AVX-512 registers in f64, there are enough independent additions in flight to
/// hide their latency. One sum at a time waited on its own previous addition (figures in the
/// module doc).
const GROUP: usize = 4;

/// The widest SIMD instruction set the CPU offers to these loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Baseline,
}

impl Isa {
    /// The best one this CPU has (checked once, when a model is built).
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Every instruction set this CPU can run, the baseline first: tests compare their results.
    #[cfg(test)]
    pub(crate) fn all_available() -> Vec<Isa> {
        match Isa::detect() {
            Isa::Avx512 => vec![Isa::Baseline, Isa::Avx2, Isa::Avx512],
            Isa::Avx2 => vec![Isa::Baseline, Isa::Avx2],
            Isa::Baseline => vec![Isa::Baseline],
        }
    }
}

/// A feature-major block of `rows` rows and `width` features: feature i is
/// `buf[i·stride .. i·stride + rows]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cols<'a, F> {
    pub buf: &'a [F],
    pub stride: usize,
    pub rows: usize,
    pub width: usize,
}

impl<'a, F> Cols<'a, F> {
    /// Feature `i` of every row.
    #[inline(always)]
    pub(crate) fn col(&self, i: usize) -> &'a [F] {
        &self.buf[i * self.stride..i * self.stride + self.rows]
    }
}

/// Calls `$loops` with the parenthesized arguments, compiled for the instruction set `$isa`.
macro_rules! dispatch {
    ($isa:expr, $avx512:path, $avx2:path, $loops:path, ($($arg:expr),*)) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx512` is only ever the result of detecting AVX-512F on this CPU.
            Isa::Avx512 => unsafe { $avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx2` is only ever the result of detecting AVX2 on this CPU.
            Isa::Avx2 => unsafe { $avx2($($arg),*) },
            _ => $loops($($arg),*),
        }
    };
}

/// Also `Mlp::forward` and `Mlp::backward`'s dispatch (`mlp.rs`).
pub(crate) use dispatch;

/// Defines `$name` (dispatching) and its AVX-512 and AVX2 copies of the `#[inline(always)]`
/// loop function `$loops`. `$name` takes the instruction set and `$loops`' arguments after the
/// first; that first argument, [`HalfBlocks`], follows from the instruction set and F, so
/// `$name` computes it.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident / $avx512:ident / $avx2:ident = $loops:ident
        ($($arg:ident : $ty:ty),*)) => {
        $(#[$doc])*
        pub(crate) fn $name<F: Real>(isa: Isa, $($arg: $ty),*) {
            let halves = HalfBlocks::for_isa::<F>(isa);
            dispatch!(isa, $avx512, $avx2, $loops, (halves, $($arg),*))
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn $avx512<F: Real>(halves: HalfBlocks, $($arg: $ty),*) {
            $loops(halves, $($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2<F: Real>(halves: HalfBlocks, $($arg: $ty),*) {
            $loops(halves, $($arg),*)
        }
    };
}

/// Runs `$body` for rows `$r` … `m − 1` (fewer than `BLOCK` of them) in blocks of 8, 4, 2 and
/// 1 rows, with `$len` a constant naming the block's size and `$r` advanced after each block: a
/// binary decomposition of the last `m % BLOCK` rows of a chunk. Every block has a size fixed at
/// compile time, so its values stay in vector registers; one row at a time (until 2026-12), the
/// 8 rows of a deep linear network's moments were all of that network's cost. A macro, not a
/// function taking a closure: the closure version made the whole-block loops slower (small8
/// f64 0.09 → 0.12–0.15 ms).
macro_rules! in_tail_blocks {
    ($r:ident < $m:expr, $len:ident => $body:expr) => {{
        const _: () = assert!(BLOCK == 16, "8 + 4 + 2 + 1 must cover BLOCK − 1 rows");
        {
            const $len: usize = 8;
            if $r + $len <= $m {
                $body;
                $r += $len;
            }
        }
        {
            const $len: usize = 4;
            if $r + $len <= $m {
                $body;
                $r += $len;
            }
        }
        {
            const $len: usize = 2;
            if $r + $len <= $m {
                $body;
                $r += $len;
            }
        }
        {
            // The last row, if any: nothing after it, so `$r` stays.
            const $len: usize = 1;
            if $r < $m {
                $body;
            }
        }
    }};
}

/// Runs `$body` over rows 0 … `$m` − 1 with `$r` the first row of a block and `$len` a
/// constant naming its size: whole blocks of `BLOCK` rows, each as two halves of `BLOCK / 2`
/// when `$halves` says so ([`HalfBlocks`]), then the last rows by [`in_tail_blocks!`]. Every
/// row's value is computed by the same operations whatever the blocks, so the bits do not
/// depend on them.
macro_rules! in_row_blocks {
    ($halves:expr, $m:expr, $r:ident, $len:ident => $body:expr) => {{
        let mut $r = 0;
        if $halves.0 {
            while $r + BLOCK <= $m {
                {
                    const $len: usize = BLOCK / 2;
                    $body;
                    $r += $len;
                    $body;
                    $r += $len;
                }
            }
        } else {
            while $r + BLOCK <= $m {
                const $len: usize = BLOCK;
                $body;
                $r += $len;
            }
        }
        in_tail_blocks!($r < $m, $len => $body);
    }};
}

multiversion! {
    /// Forward: `out_j[r] = b_j + Σ_i W[i, j]·a_i[r]` for every output j (`out` is
    /// `fan_out × rows`, packed), with `w` row-major `a.width × fan_out`.
    fn affine / affine_avx512 / affine_avx2 = affine_loops
        (w: &[F], b: Option<&[F]>, a: Cols<'_, F>, out: &mut [F])
}

/// Whether [`weight_grad`] should also take the weight gradient of a wide layer (one that
/// `super::mlp` otherwise gives to `gemm`) over `rows` rows: on AVX-512 in f32, where its tiles
/// run, chosen by measurement (`tiles`' module doc).
pub(crate) fn takes_wide<F: Real>(isa: Isa, rows: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && rows >= BLOCK {
        return tiles::takes_wide::<F>();
    }
    let _ = (isa, rows);
    false
}

/// Backward, parameters: `dW[i, j] += Σ_r a_i[r]·g_j[r]` and `db_j += Σ_r g_j[r]`. On AVX-512
/// both run in register tiles ([`tiles`]; same bits), except over fewer rows than a
/// block (a deep linear network's moment rows), which [`short_dots`] keeps in registers.
pub(crate) fn weight_grad<F: Real>(
    isa: Isa,
    a: Cols<'_, F>,
    g: Cols<'_, F>,
    dw: &mut [F],
    db: Option<&mut [F]>,
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && a.rows >= BLOCK && tiles::takes::<F>() {
        // SAFETY: `Isa::Avx512` is only ever the result of detecting AVX-512F on this CPU, and
        // the tiles take F (just checked).
        unsafe { tiles::weight_grad(a, g, dw, db) };
        return;
    }
    weight_grad_generic(isa, a, g, dw, db);
}

multiversion! {
    /// [`weight_grad`] in the generic loops.
    fn weight_grad_generic / weight_grad_avx512 / weight_grad_avx2 = weight_grad_loops
        (a: Cols<'_, F>, g: Cols<'_, F>, dw: &mut [F], db: Option<&mut [F]>)
}

/// Whether the kernels work on half a block at a time: [`affine`] and [`back_prop`] on 8 rows
/// instead of `BLOCK`, [`dots`] on half of a block's partial sums per pass over the rows. The
/// sums and their order are the same either way (a row's sum is its own; partial sum t of `dots`
/// holds the rows r ≡ t mod `BLOCK`, in order), so the bits are too; what changes is how many
/// registers a group's sums need at once. With AVX2 and f64, `GROUP` sums of a whole block are
/// 16 registers, all there are: the compiler then stored every partial sum to the stack after
/// each multiply-add (one multiply-add per cycle instead of two). In halves they are 8.
/// AVX-512 (16 f64 lanes in 2 registers) and f32 (16 lanes in 2 AVX2 registers) keep whole
/// blocks, as do single sums: halves would leave them too few independent sums to hide the
/// additions' latency.
///
/// Measured on the 2-core Zen 3 VM (AVX2; gradient benchmark on one thread, best of each of three
/// alternating runs, ms): weight gradients in halves, small8 (relu) 0.0464–0.0467 →
/// 0.0413–0.0423, small8-tanh 0.0677–0.0711 → 0.0637–0.0640, dln432-all-rows unchanged
/// (0.071–0.073), and the small tanh HMC sweep (4 chains, 2 threads) 24,580–27,657 →
/// 25,560–26,485 gradients/s, λ̂ of HMC and MCLMC byte-identical. Then [`affine`] and
/// [`back_prop`] in half blocks as well (same measurements): small8 0.0416–0.0440 →
/// 0.0376–0.0381, small8-tanh 0.0628–0.0661 → 0.0588–0.0607, dln432-all-rows and every f32 case
/// unchanged; the HMC sweep 28,149–30,619 → 28,860–31,842 gradients/s (a quieter hour), λ̂ again
/// byte-identical.
///
/// Tried and left out (2026-12-04): the half-block dot products written with AVX2 intrinsics.
/// The generic `lane_sums` compiles its second pass (lanes 8–15) to 4 + 2 + 1 lanes and a
/// gather of the eighth lane across the J sums (perf annotate); by hand, both passes were
/// clean ymm loops, and small8 went 0.0364 → 0.0338 ms, small8-tanh 0.0556 → 0.0533. But the
/// rest of the weight-gradient function then compiled differently, and the deep linear
/// network's moment rows (8 rows, one sum at a time, untouched by the change) ran 18 % slower
/// in MCLMC (3.0 → 2.0–2.5 M gradients/s, in every variant tried), so the generic code stays.
///
/// Also tried and left out (2026-12-07, Intel Xeon VM with AVX-512): the weight gradient with
/// two inputs against four outputs per pass over the rows (the same partial sums, each load of a
/// g_j used twice; 16 of AVX-512's 32 registers in f64), in three generic forms. The compiler
/// kept the 8 × 16 partial sums on the stack or shuffled them between 256-bit halves in every
/// form: `small8` 0.017 → 0.035–0.050 ms on one thread. Written with AVX-512 intrinsics, one
/// register per eight partial sums, the same tiles do stay in registers, and are in ([`tiles`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HalfBlocks(pub bool);

impl HalfBlocks {
    /// Half blocks for f64 on AVX2 only (see the type's doc).
    pub(crate) fn for_isa<F>(isa: Isa) -> Self {
        HalfBlocks(isa == Isa::Avx2 && std::mem::size_of::<F>() == 8)
    }
}

multiversion! {
    /// Backward, data: `back_i[r] = Σ_j W[i, j]·g_j[r]` (plus the old `back_i[r]` when the layer
    /// has a residual connection), then `deriv_i[r] *= back_i[r]`: dL/dA of the layer's input
    /// times φ' of the layer below, which is that layer's dL/dZ. `back` and `deriv` are
    /// `fan_in × rows`, packed. `back` is written only when `keep` says the layer below needs
    /// it (its own residual connection): a store per value saved otherwise (k = 8, h = 1 over
    /// 208 rows, one thread: 278 → 164 ns; k = h = 8: 629 → 547 ns).
    fn back_prop / back_prop_avx512 / back_prop_avx2 = back_prop_loops
        (w: &[F], g: Cols<'_, F>, skip: bool, keep: bool, back: &mut [F], deriv: &mut [F])
}

#[inline(always)]
fn affine_loops<F: Real>(
    halves: HalfBlocks,
    w: &[F],
    b: Option<&[F]>,
    a: Cols<'_, F>,
    out: &mut [F],
) {
    let m = a.rows;
    let h = out.len() / m.max(1);
    debug_assert_eq!(w.len(), a.width * h);
    let mut groups = out.chunks_exact_mut(GROUP * m);
    for (g, z) in (&mut groups).enumerate() {
        affine_outputs::<F, GROUP>(halves, w, b, a, h, g * GROUP, z);
    }
    let start = h - h % GROUP;
    for (q, z) in groups.into_remainder().chunks_exact_mut(m).enumerate() {
        affine_outputs::<F, 1>(HalfBlocks(false), w, b, a, h, start + q, z);
    }
}

/// [`affine`] for the J outputs j0 … j0 + J − 1 (`out` is their `J × rows`, packed). Each
/// output's sum runs in the same order whatever J (bias, then inputs in order); J only sets how
/// many independent sums are in flight, so the additions do not wait on one another.
#[inline(always)]
fn affine_outputs<F: Real, const J: usize>(
    halves: HalfBlocks,
    w: &[F],
    b: Option<&[F]>,
    a: Cols<'_, F>,
    h: usize,
    j0: usize,
    out: &mut [F],
) {
    let m = a.rows;
    let bias: [F; J] = std::array::from_fn(|q| b.map_or(F::zero(), |b| b[j0 + q]));
    in_row_blocks!(halves, m, r, L => affine_rows::<F, J, L>(w, h, j0, bias, a, r, out));
}

/// Rows r … r + L − 1 of [`affine_outputs`]: `bias` plus each input's values times its
/// weight, inputs in order.
#[inline(always)]
fn affine_rows<F: Real, const J: usize, const L: usize>(
    w: &[F],
    h: usize,
    j0: usize,
    bias: [F; J],
    a: Cols<'_, F>,
    r: usize,
    out: &mut [F],
) {
    let m = a.rows;
    let mut acc = bias.map(|bq| [bq; L]);
    for i in 0..a.width {
        let x: [F; L] = a.col(i)[r..r + L].try_into().expect("L rows");
        let wi: &[F; J] = w[i * h + j0..i * h + j0 + J].try_into().expect("J weights");
        for (aq, &wq) in acc.iter_mut().zip(wi) {
            mul_add_block(aq, wq, &x);
        }
    }
    for (q, acc) in acc.iter().enumerate() {
        out[q * m + r..q * m + r + L].copy_from_slice(acc);
    }
}

#[inline(always)]
fn weight_grad_loops<F: Real>(
    halves: HalfBlocks,
    a: Cols<'_, F>,
    g: Cols<'_, F>,
    dw: &mut [F],
    db: Option<&mut [F]>,
) {
    let (k, h) = (a.width, g.width);
    debug_assert_eq!(dw.len(), k * h);
    if h < 4 && k >= 4 && a.rows >= BLOCK {
        // Fewer than four outputs (a network's last layer, usually one): four *inputs* at a
        // time against each output's column instead, so that four sums are in flight rather
        // than one. x·y and y·x are the same fused product, so the bits are too. Not for
        // fewer rows than a block (a deep linear network's moment rows), where there is no
        // chain of additions to hide and the grouped short sums measured slower (dln432, f32:
        // 0.0002 → 0.0004 ms).
        for j in 0..h {
            let gj = g.col(j);
            let mut i = 0;
            while i + 4 <= k {
                let cols = [a.col(i), a.col(i + 1), a.col(i + 2), a.col(i + 3)];
                let s = dots::<F, 4>(halves, gj, cols);
                for (q, s) in s.into_iter().enumerate() {
                    dw[(i + q) * h + j] += s;
                }
                i += 4;
            }
            while i < k {
                dw[i * h + j] += dots::<F, 1>(HalfBlocks(false), gj, [a.col(i)])[0];
                i += 1;
            }
        }
    } else {
        weight_grad_by_input(halves, a, g, dw);
    }
    if let Some(db) = db {
        for (j, d) in db.iter_mut().enumerate() {
            *d += sum(g.col(j));
        }
    }
}

/// [`weight_grad`]'s products for layers with four outputs or more: each input's column against
/// four outputs' at a time.
#[inline(always)]
fn weight_grad_by_input<F: Real>(halves: HalfBlocks, a: Cols<'_, F>, g: Cols<'_, F>, dw: &mut [F]) {
    let (k, h) = (a.width, g.width);
    for i in 0..k {
        let ai = a.col(i);
        let dwi = &mut dw[i * h..(i + 1) * h];
        // Four outputs at a time: four independent sums share each load of a_i, and hide the
        // latency of the additions from one another.
        let mut j = 0;
        while j + 4 <= h {
            let cols = [g.col(j), g.col(j + 1), g.col(j + 2), g.col(j + 3)];
            let s = dots::<F, 4>(halves, ai, cols);
            dwi[j..j + 4].iter_mut().zip(s).for_each(|(d, s)| *d += s);
            j += 4;
        }
        while j < h {
            // One sum's partial sums fit in registers anyway; in halves they would be too
            // few chains of additions to hide their latency.
            dwi[j] += dots::<F, 1>(HalfBlocks(false), ai, [g.col(j)])[0];
            j += 1;
        }
    }
}

#[inline(always)]
fn back_prop_loops<F: Real>(
    halves: HalfBlocks,
    w: &[F],
    g: Cols<'_, F>,
    skip: bool,
    keep: bool,
    back: &mut [F],
    deriv: &mut [F],
) {
    let (h, m) = (g.width, g.rows);
    let k = back.len() / m.max(1);
    let start = k - k % GROUP;
    let mut b_groups = back.chunks_exact_mut(GROUP * m);
    let mut d_groups = deriv.chunks_exact_mut(GROUP * m);
    for (n, (bg, dg)) in (&mut b_groups).zip(&mut d_groups).enumerate() {
        let wg = &w[n * GROUP * h..(n + 1) * GROUP * h];
        back_prop_inputs::<F, GROUP>(halves, wg, g, skip, keep, bg, dg);
    }
    let rest = b_groups
        .into_remainder()
        .chunks_exact_mut(m)
        .zip(d_groups.into_remainder().chunks_exact_mut(m));
    for (q, (bi, di)) in rest.enumerate() {
        let i = start + q;
        back_prop_inputs::<F, 1>(
            HalfBlocks(false),
            &w[i * h..(i + 1) * h],
            g,
            skip,
            keep,
            bi,
            di,
        );
    }
}

/// [`back_prop`] for I consecutive inputs (`w` holds their I rows of W, `back` and `deriv` their
/// `I × rows`, packed). As in [`affine_outputs`], each input's sum runs in the same order
/// whatever I; I only sets how many independent sums are in flight.
#[inline(always)]
fn back_prop_inputs<F: Real, const I: usize>(
    halves: HalfBlocks,
    w: &[F],
    g: Cols<'_, F>,
    skip: bool,
    keep: bool,
    back: &mut [F],
    deriv: &mut [F],
) {
    let m = g.rows;
    in_row_blocks!(halves, m, r, L => back_prop_rows::<F, I, L>(w, g, skip, keep, r, back, deriv));
}

/// Rows r … r + L − 1 of [`back_prop_inputs`]: zero (or the residual's values) plus each
/// output's dL/dZ times its weight, outputs in order.
#[inline(always)]
fn back_prop_rows<F: Real, const I: usize, const L: usize>(
    w: &[F],
    g: Cols<'_, F>,
    skip: bool,
    keep: bool,
    r: usize,
    back: &mut [F],
    deriv: &mut [F],
) {
    let (h, m) = (g.width, g.rows);
    let mut acc = [[F::zero(); L]; I];
    if skip {
        for (q, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&back[q * m + r..q * m + r + L]);
        }
    }
    for j in 0..h {
        let x: [F; L] = g.col(j)[r..r + L].try_into().expect("L rows");
        for (q, aq) in acc.iter_mut().enumerate() {
            mul_add_block(aq, w[q * h + j], &x);
        }
    }
    for (q, acc) in acc.iter().enumerate() {
        if keep {
            back[q * m + r..q * m + r + L].copy_from_slice(acc);
        }
        let dd = &mut deriv[q * m + r..q * m + r + L];
        for t in 0..L {
            dd[t] = dd[t] * acc[t];
        }
    }
}

/// `acc[t] += c·x[t]` over one block, each a fused multiply-add (the same bits on every ISA).
#[inline(always)]
fn mul_add_block<F: Real, const L: usize>(acc: &mut [F; L], c: F, x: &[F; L]) {
    for t in 0..L {
        acc[t] = c.mul_add(x[t], acc[t]);
    }
}

/// `Σ_r x[r]·y_q[r]` for each of the J vectors y_q, each in `BLOCK` interleaved partial sums
/// added pairwise at the end (the same order whatever J, and in halves or not: [`HalfBlocks`]).
#[inline(always)]
fn dots<F: Real, const J: usize>(halves: HalfBlocks, x: &[F], y: [&[F]; J]) -> [F; J] {
    let m = x.len();
    if m < BLOCK {
        return short_dots(x, y, [[F::zero(); BLOCK]; J]);
    }
    let full = m - m % BLOCK;
    let mut acc = [[F::zero(); BLOCK]; J];
    if halves.0 {
        lane_sums::<F, J>(x, y, full, 0, &mut acc);
        lane_sums::<F, J>(x, y, full, BLOCK / 2, &mut acc);
    } else {
        // All lanes at once, summed in place: written through a local array and copied (as
        // `lane_sums` does), the one-sum case compiled to 128-bit and scalar code instead
        // (dln432-all-rows 0.066 → 0.077 ms).
        let mut r = 0;
        while r < full {
            let xs: &[F; BLOCK] = x[r..r + BLOCK].try_into().expect("one block");
            for q in 0..J {
                let ys: &[F; BLOCK] = y[q][r..r + BLOCK].try_into().expect("one block");
                for t in 0..BLOCK {
                    acc[q][t] = xs[t].mul_add(ys[t], acc[q][t]);
                }
            }
            r += BLOCK;
        }
    }
    if full == m {
        return acc.map(pairwise);
    }
    // The last rows, row full + t into partial sum t. Several sums: `short_dots`, compiled per
    // row count, keeps every partial sum in registers. One sum: one row at a time, on a copy
    // (indexed at run-time places, the copy lives in memory and `acc` stays in registers
    // through the loop above; `short_dots` here made that loop's one-sum code slower:
    // dln432-all-rows, f64, 0.048 against 0.057–0.079 ms).
    let (x, y) = (&x[full..], y.map(|yq| &yq[full..m]));
    if J > 1 {
        return short_dots(x, y, acc);
    }
    let mut last = acc;
    for (t, (&a, &b)) in x.iter().zip(y[0]).enumerate() {
        last[0][t] = a.mul_add(b, last[0][t]);
    }
    last.map(pairwise)
}

/// Half of [`dots`]' partial sums over the first `full` rows (a multiple of `BLOCK`): lanes
/// `lane` … `lane + H − 1`, `acc[q][lane + t] += x[r]·y_q[r]` for the rows r ≡ lane + t (mod
/// `BLOCK`), in order. The H lanes are summed in a local array, so that they stay in registers.
#[inline(always)]
fn lane_sums<F: Real, const J: usize>(
    x: &[F],
    y: [&[F]; J],
    full: usize,
    lane: usize,
    acc: &mut [[F; BLOCK]; J],
) {
    const H: usize = BLOCK / 2;
    let mut part = [[F::zero(); H]; J];
    let mut r = lane;
    while r < full {
        let xs: &[F; H] = x[r..r + H].try_into().expect("H rows");
        for q in 0..J {
            let ys: &[F; H] = y[q][r..r + H].try_into().expect("H rows");
            for t in 0..H {
                part[q][t] = xs[t].mul_add(ys[t], part[q][t]);
            }
        }
        r += BLOCK;
    }
    for (aq, pq) in acc.iter_mut().zip(&part) {
        aq[lane..lane + H].copy_from_slice(pq);
    }
}

/// [`dots`] of fewer than `BLOCK` rows (a deep linear network's 2·in_dim moment rows, or the
/// last rows of a longer sum): row r into partial sum r, added to `acc`, then the partial sums
/// pairwise. Compiled once per row count ([`short_dots_of`]), so that every row's place among the
/// partial sums is a constant and they stay in vector registers: at a run-time place they live
/// in memory, where the loads that follow a block's stores waited on them (dln432's moment rows
/// in f32, 0.0002 against 0.0005 ms), and `dots`' own partial sums, handed over, had to be
/// stored on every pass of its loop.
#[inline(always)]
fn short_dots<F: Real, const J: usize>(x: &[F], y: [&[F]; J], acc: [[F; BLOCK]; J]) -> [F; J] {
    macro_rules! by_len {
        ($($len:literal)*) => {
            match x.len() {
                $($len => short_dots_of::<F, J, $len>(x, y, acc),)*
                _ => unreachable!("short_dots takes fewer than BLOCK rows"),
            }
        };
    }
    const _: () = assert!(BLOCK == 16, "one arm per row count below BLOCK");
    by_len!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// [`short_dots`] of exactly M rows, in blocks of 8, 4, 2 and 1 (`in_tail_blocks!`).
#[inline(always)]
fn short_dots_of<F: Real, const J: usize, const M: usize>(
    x: &[F],
    y: [&[F]; J],
    mut acc: [[F; BLOCK]; J],
) -> [F; J] {
    let mut r = 0;
    in_tail_blocks!(r < M, L => dots_rows::<F, J, L>(x, y, r, &mut acc));
    acc.map(pairwise)
}

/// Adds x[r + t]·y_q[r + t] to `acc[q][r + t]`, for t < L.
#[inline(always)]
fn dots_rows<F: Real, const J: usize, const L: usize>(
    x: &[F],
    y: [&[F]; J],
    r: usize,
    acc: &mut [[F; BLOCK]; J],
) {
    let xs: [F; L] = x[r..r + L].try_into().expect("L rows");
    for q in 0..J {
        let ys: [F; L] = y[q][r..r + L].try_into().expect("L rows");
        let aq: &mut [F; L] = (&mut acc[q][r..r + L]).try_into().expect("L lanes");
        for t in 0..L {
            aq[t] = xs[t].mul_add(ys[t], aq[t]);
        }
    }
}

/// `Σ_r x[r]`, summed as [`dots`] sums: `BLOCK` independent partial sums, so the additions do
/// not wait on one another (a plain left-to-right sum is one chain of dependent additions, which
/// cost the gemm path's bias gradients ~8 % of a base62 gradient).
#[inline(always)]
pub(crate) fn sum<F: Real>(x: &[F]) -> F {
    let mut acc = [F::zero(); BLOCK];
    let mut xb = x.chunks_exact(BLOCK);
    for xs in &mut xb {
        for t in 0..BLOCK {
            acc[t] = acc[t] + xs[t];
        }
    }
    for (t, &a) in xb.remainder().iter().enumerate() {
        acc[t] = acc[t] + a;
    }
    pairwise(acc)
}

/// The sum of the partial sums, as a balanced tree (a fixed order).
#[inline(always)]
fn pairwise<F: Real>(mut acc: [F; BLOCK]) -> F {
    let mut half = BLOCK / 2;
    while half > 0 {
        for t in 0..half {
            acc[t] = acc[t] + acc[t + half];
        }
        half /= 2;
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feature-major data with small integer values: every product and sum below is exact in
    /// f64 (|values| ≤ 2^10 ≪ 2^53), so kernels and loops must agree exactly whatever the order.
    fn ints(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 11) as f64 - 5.0)
            .collect()
    }

    /// Every instruction set this CPU runs, so each compiled copy is tested.
    #[test]
    fn kernels_match_plain_loops_for_every_row_count() {
        // Row counts below, at and between block multiples, so both the blocks and the tails run;
        // an input stride larger than the row count, as for a chunk of the data's columns.
        for isa in Isa::all_available() {
            for m in [1, 5, 16, 17, 40, 48] {
                for (k, h) in [(3, 2), (4, 8), (1, 1), (5, 5), (8, 1), (6, 3)] {
                    let stride = m + 3;
                    let x = ints(k * stride, 1);
                    let a = Cols {
                        buf: &x,
                        stride,
                        rows: m,
                        width: k,
                    };
                    let w = ints(k * h, 2);
                    let b = ints(h, 3);
                    let mut z = vec![f64::NAN; h * m];
                    affine(isa, &w, Some(&b), a, &mut z);
                    for j in 0..h {
                        for r in 0..m {
                            let want: f64 = b[j]
                                + (0..k)
                                    .map(|i| w[i * h + j] * x[i * stride + r])
                                    .sum::<f64>();
                            assert_eq!(z[j * m + r], want, "{isa:?} m={m} k={k} h={h}");
                        }
                    }

                    let gbuf = ints(h * m, 4);
                    let g = Cols {
                        buf: &gbuf,
                        stride: m,
                        rows: m,
                        width: h,
                    };
                    let mut dw = vec![1.0; k * h];
                    let mut db = vec![2.0; h];
                    weight_grad(isa, a, g, &mut dw, Some(&mut db));
                    for i in 0..k {
                        for j in 0..h {
                            let want: f64 = 1.0
                                + (0..m)
                                    .map(|r| x[i * stride + r] * gbuf[j * m + r])
                                    .sum::<f64>();
                            assert_eq!(dw[i * h + j], want);
                        }
                    }
                    for j in 0..h {
                        assert_eq!(db[j], 2.0 + gbuf[j * m..(j + 1) * m].iter().sum::<f64>());
                    }

                    for (skip, keep) in [(false, true), (true, true), (false, false), (true, false)]
                    {
                        let old = ints(k * m, 5);
                        let mut back = old.clone();
                        let d0 = ints(k * m, 6);
                        let mut deriv = d0.clone();
                        back_prop(isa, &w, g, skip, keep, &mut back, &mut deriv);
                        for i in 0..k {
                            for r in 0..m {
                                let mut want: f64 =
                                    (0..h).map(|j| w[i * h + j] * gbuf[j * m + r]).sum();
                                if skip {
                                    want += old[i * m + r];
                                }
                                // Without `keep`, dL/dA is not stored: `back` keeps its values.
                                let back_want = if keep { want } else { old[i * m + r] };
                                assert_eq!(back[i * m + r], back_want, "{isa:?} skip={skip}");
                                assert_eq!(deriv[i * m + r], d0[i * m + r] * want);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sums_run_in_the_documented_order_for_every_row_count() {
        // Non-integer data, so a different order of additions shows in the last bits. The
        // reference sums in the order the module documents: per row, bias then inputs in order
        // (forward) or outputs in order (backward); over rows, row r into partial sum r % BLOCK,
        // then the partial sums pairwise; each step a fused multiply-add (one rounding), which is
        // what makes the bits the same on every instruction set. Every row count up to 3 blocks
        // exercises whole blocks and every split of the last rows into blocks of 8, 4, 2 and 1.
        // Shapes for both ways of grouping the weight gradients: four outputs at a time, and
        // four inputs at a time against each output's column (fewer than four outputs).
        for (k, h) in [(5, 6), (5, 1), (6, 3), (3, 2)] {
            for isa in Isa::all_available() {
                for m in 1..=3 * BLOCK {
                    let x: Vec<f64> = (0..k * m).map(|i| (i as f64 * 0.37).sin()).collect();
                    let w: Vec<f64> = (0..k * h).map(|i| (i as f64 * 1.3).cos()).collect();
                    let b: Vec<f64> = (0..h).map(|j| 0.1 * j as f64 + 0.05).collect();
                    let a = Cols {
                        buf: &x,
                        stride: m,
                        rows: m,
                        width: k,
                    };
                    let mut z = vec![f64::NAN; h * m];
                    affine(isa, &w, Some(&b), a, &mut z);
                    for j in 0..h {
                        for r in 0..m {
                            let mut want = b[j];
                            for i in 0..k {
                                want = w[i * h + j].mul_add(x[i * m + r], want);
                            }
                            assert_eq!(z[j * m + r].to_bits(), want.to_bits(), "{isa:?} m={m}");
                        }
                    }

                    let g = Cols {
                        buf: &z,
                        stride: m,
                        rows: m,
                        width: h,
                    };
                    let (mut dw, mut db) = (vec![0.0; k * h], vec![0.5; h]);
                    weight_grad(isa, a, g, &mut dw, Some(&mut db));
                    for j in 0..h {
                        for i in 0..k {
                            let mut lanes = [0.0; BLOCK];
                            for r in 0..m {
                                lanes[r % BLOCK] =
                                    x[i * m + r].mul_add(z[j * m + r], lanes[r % BLOCK]);
                            }
                            let want = 0.0 + pairwise(lanes);
                            assert_eq!(dw[i * h + j].to_bits(), want.to_bits(), "{isa:?} m={m}");
                        }
                        let mut lanes = [0.0; BLOCK];
                        for r in 0..m {
                            lanes[r % BLOCK] = lanes[r % BLOCK] + z[j * m + r];
                        }
                        let want = 0.5 + pairwise(lanes);
                        assert_eq!(db[j].to_bits(), want.to_bits(), "{isa:?} m={m} bias");
                    }

                    let old: Vec<f64> = (0..k * m).map(|i| (i as f64 * 0.71).cos()).collect();
                    let (mut back, mut deriv) = (old.clone(), vec![0.5; k * m]);
                    back_prop(isa, &w, g, true, true, &mut back, &mut deriv);
                    for i in 0..k {
                        for r in 0..m {
                            let mut want = old[i * m + r];
                            for j in 0..h {
                                want = w[i * h + j].mul_add(z[j * m + r], want);
                            }
                            assert_eq!(back[i * m + r].to_bits(), want.to_bits(), "{isa:?} m={m}");
                            assert_eq!(deriv[i * m + r].to_bits(), (0.5 * want).to_bits());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // Non-integer data, where rounding happens: the copies share one loop body whose
        // multiply-adds are fused (one rounding, whatever the instructions), so they must still
        // agree to the bit. AVX-512's weight gradients run in register tiles of their own
        // (`tiles.rs`); the shapes give them whole tiles, leftover inputs and outputs, and a
        // last layer's single output, over whole blocks and last rows.
        for (k, h, m) in [(4, 8, 37), (5, 6, 40), (6, 1, 21), (3, 2, 16), (9, 5, 50)] {
            same_bits_on_every_isa(k, h, m);
        }
    }

    fn same_bits_on_every_isa(k: usize, h: usize, m: usize) {
        let x: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..k * h).map(|i| (i as f32 * 1.3).cos()).collect();
        let a = Cols {
            buf: &x,
            stride: m,
            rows: m,
            width: k,
        };
        let run = |isa: Isa| {
            let mut z = vec![0.0f32; h * m];
            affine(isa, &w, None, a, &mut z);
            let g = Cols {
                buf: &z,
                stride: m,
                rows: m,
                width: h,
            };
            let (mut dw, mut db) = (vec![0.0f32; k * h], vec![0.25f32; h]);
            weight_grad(isa, a, g, &mut dw, Some(&mut db));
            let (mut back, mut deriv) = (vec![0.0f32; k * m], vec![1.0f32; k * m]);
            back_prop(isa, &w, g, false, true, &mut back, &mut deriv);
            (z, dw, db, back)
        };
        let reference = run(Isa::Baseline);
        for isa in Isa::all_available() {
            assert_eq!(run(isa), reference, "{isa:?} k={k} h={h} m={m}");
        }
    }
}
