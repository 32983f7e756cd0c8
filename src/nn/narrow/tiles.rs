//! The weight and bias gradients of a narrow layer on AVX-512, in register tiles written with
//! intrinsics: `dW[i, j] += Σ_r a_i[r]·g_j[r]` for every input i and output j, and `db_j += Σ_r
//! g_j[r]`, with the same bits as [`super::weight_grad`]'s generic loops. In f32 they also take
//! the weight gradients of wide layers, which are otherwise `gemm`'s ([`takes_wide`]).
//!
//! Input: feature-major columns ([`Cols`]) of the layer's input a and of dL/dZ g, and the
//! row-major `fan_in × fan_out` gradient buffer (and the bias's, if the layer has one) to add
//! into. Nothing allocates.
//!
//! Why intrinsics: the generic loops take one input's column against four outputs' per pass over
//! the rows, ten loads of a row block per eight multiply-adds in f64. A tile of two inputs × four
//! outputs loads each block of a_i once for four sums and each block of g_j once for two: twelve
//! loads per sixteen multiply-adds, with its 8 × 16 partial sums in 16 of AVX-512's 32 registers.
//! Written generically the compiler kept such tiles on the stack (`super::HalfBlocks`' doc);
//! written here with one `__m512d` per eight partial sums, they stay in registers. Timed alone (one
//! thread, Intel Xeon VM with AVX-512, best of 30 × 1,000 calls, f64, 208 rows): 8 inputs × 8
//! outputs 745 → 414–457 ns, 4 × 8 417 → 212 ns, and 8 × 1 (a network's last layer, four
//! inputs per tile) 104 → 73–87 ns; the gradient and HMC figures are in `super`'s module doc.
//! In f32 a block of 16 rows is one register, so tiles are four inputs × four outputs (16
//! registers of partial sums, eight loads per sixteen multiply-adds).
//!
//! Same bits as the generic loops, on every CPU: each (i, j) sum has the same `BLOCK`
//! (16) partial sums, partial sum t holding rows r ≡ t (mod 16) in order, each a fused
//! multiply-add; the last `m % 16` rows go into partial sums 0, 1, … (masked loads and masked
//! multiply-adds, so the other lanes keep their bits), and the 16 partial sums are added as
//! [`super::pairwise`] adds them (lanes t and t + 8, then t + 4, t + 2, t + 1). The tiles only
//! change which sums are computed side by side. `super`'s tests compare every instruction set's
//! bits, and check the documented order at every row count.
//!
//! A whole tile's 16 (f32) or 8 (f64) blocks of partial sums are reduced together
//! ([`Lanes::add_sums`]): each step of `pairwise` on all of them at once, with shuffles across
//! registers, 45 vector operations for an f32 tile instead of 16 reductions of 8. The same
//! additions, so the same bits; two mutations of the steps (operands transposed, the t + 2 and
//! t + 1 steps swapped) failed `super`'s tests. On narrow layers this changed nothing measurable
//! (one thread, best ms of eight alternating runs: `small8-tanh` f64 0.0228–0.0266 →
//! 0.0219–0.0260, f32 0.0128–0.0143 → 0.0134–0.0149; `small8`, `dln432-all-rows` unchanged),
//! but it is what makes the tiles pay on wide layers in f32, below.
//!
//! Wide layers in f32 (`takes_wide`; 2026-12-07, Intel Xeon VM with AVX-512). `gemm` computes a
//! weight gradient Aᵀ·G whose inner dimension (the chunk's rows) is contiguous in both operands,
//! so it first copies one of them transposed: 10–12 % of a base62 gradient in perf. The tiles
//! read both in place, at about 70 % of gemm's microkernel's pace (35.9 % of the time for 35.8 %
//! of the FLOPs, against 44 % for 64 %). Net, in f32: base62 on one thread 8.44–9.33 → 8.28–8.72
//! ms (best of four alternating runs), on two 4.62–4.94 → 4.18–4.83 ms; base HMC (32 → [62, 62,
//! 62] → 1, 4 chains on 2 cores, 489 gradients, six alternating runs of each build) 187.1–199.7
//! → 196.1–205.6 gradients/s, and again 178.3–199.2 → 189.4–199.0. Layers of 24 gain more
//! (gemm's tiles fit them worse): the `mid24-tanh` benchmark (6 → [24, 24] → 1, n = 2,000, one
//! thread, best of three) 0.134–0.144 ms with gemm alone, 0.121–0.124 with the tiles; a tanh
//! 6 → [24, 24] → 1 sweep (HMC and MCLMC, one run each) 6,405 → 7,974 and 6,081 → 7,344
//! gradients/s, λ̂ within 1.3 standard errors of the difference. In f64 a block is two
//! registers and tiles are half as wide: base62 17.0–17.9 → 18.1–18.8 ms on one thread, base
//! HMC 95.5–100.7 → 92.8–97.7 gradients/s (five runs each), so f64's wide layers keep gemm
//! whole (and its layers up to 32 wide moved to the narrow kernels altogether: `NARROW_MAX_F64`
//! in `nn/mlp.rs`). The tiles' sums run in another order than gemm's, so base f32
//! traces changed in the last bits of each gradient.

use std::arch::x86_64::*;

use super::{BLOCK, Cols};
use crate::numeric::Real;

/// Whether [`weight_grad`] takes F: f64 and f32, the precisions networks run in.
pub(super) fn takes<F: Real>() -> bool {
    is::<F, f64>() || is::<F, f32>()
}

/// Whether the tiles also take the weight gradients of F's wide layers: f32 only, by
/// measurement (module doc).
pub(super) fn takes_wide<F: Real>() -> bool {
    is::<F, f32>()
}

fn is<F: 'static, T: 'static>() -> bool {
    std::any::TypeId::of::<F>() == std::any::TypeId::of::<T>()
}

/// `dw[i·h + j] += Σ_r a_i[r]·g_j[r]` for every i < `a.width`, j < `g.width`, and `db_j += Σ_r
/// g_j[r]` if there is a `db`.
///
/// # Safety
/// The CPU must have AVX-512F (`Isa::Avx512`, which only detection produces), and F must be one
/// that [`takes`] says it takes.
pub(super) unsafe fn weight_grad<F: Real>(
    a: Cols<'_, F>,
    g: Cols<'_, F>,
    dw: &mut [F],
    db: Option<&mut [F]>,
) {
    assert_eq!(dw.len(), a.width * g.width, "dW is fan_in × fan_out");
    assert_eq!(a.rows, g.rows, "a and g cover the same rows");
    if let Some(db) = &db {
        assert_eq!(db.len(), g.width, "db is fan_out");
    }
    if is::<F, f64>() {
        // SAFETY: F is f64 (checked just above), so these are the same slices retyped; the
        // caller guarantees AVX-512F.
        unsafe {
            let db = db.map(|db| retype_mut(db));
            products::<f64, 2>(retype(a), retype(g), retype_mut(dw), db)
        }
    } else if is::<F, f32>() {
        // SAFETY: as above, with f32.
        unsafe {
            let db = db.map(|db| retype_mut(db));
            products::<f32, 4>(retype(a), retype(g), retype_mut(dw), db)
        }
    } else {
        unreachable!(
            "tiles::weight_grad called for {}, which `takes` refuses",
            F::NAME
        )
    }
}

/// The same columns as another float type.
///
/// # Safety
/// `F` and `T` must be the same type.
unsafe fn retype<'a, F, T>(c: Cols<'a, F>) -> Cols<'a, T> {
    Cols {
        // SAFETY: F and T are the same type (the caller's promise), so the same memory holds
        // `len` values of T.
        buf: unsafe { std::slice::from_raw_parts(c.buf.as_ptr().cast::<T>(), c.buf.len()) },
        stride: c.stride,
        rows: c.rows,
        width: c.width,
    }
}

/// [`retype`] of a mutable slice.
///
/// # Safety
/// `F` and `T` must be the same type.
unsafe fn retype_mut<F, T>(x: &mut [F]) -> &mut [T] {
    // SAFETY: F and T are the same type (the caller's promise).
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<T>(), x.len()) }
}

/// Every product of the layer in tiles: `I` inputs × four outputs, then the last outputs
/// (`h % 4`, a network's output layer has one) four inputs × one output, and what is left of
/// the inputs one at a time. The first tile of each group of outputs (inputs from 0) also sums
/// their dL/dZ for the bias gradient, from the blocks of g it loads anyway: as a pass of its
/// own, the bias sums took 3.9 % of a `small8-tanh` gradient (perf). Folded in (five alternating
/// runs, median of the best ms on one thread): `small8-tanh` f64 0.0261 → 0.0252, `small8` f64
/// 0.0168 → 0.0161, f32 and `dln432-all-rows` unchanged; small tanh HMC within noise
/// (68,430–71,506 → 69,786–71,709 gradients/s, three alternating runs), λ̂ identical.
#[target_feature(enable = "avx512f")]
unsafe fn products<T: Lanes, const I: usize>(
    a: Cols<'_, T>,
    g: Cols<'_, T>,
    dw: &mut [T],
    mut db: Option<&mut [T]>,
) {
    let (k, h) = (a.width, g.width);
    // One tile's call, with the bias sums when it is a group's first and there is a `db`.
    macro_rules! tile {
        ($i:expr, $j:expr, $inputs:literal, $outputs:literal) => {
            match db.as_deref_mut() {
                // SAFETY (both arms): the columns are in bounds (`col` checks them), and
                // AVX-512F is enabled.
                Some(db) if $i == 0 => unsafe {
                    tile::<T, $inputs, $outputs, true>(a, g, $i, $j, dw, db)
                },
                _ => unsafe { tile::<T, $inputs, $outputs, false>(a, g, $i, $j, dw, &mut []) },
            }
        };
    }
    let mut j = 0;
    while j + 4 <= h {
        let mut i = 0;
        while i + I <= k {
            if I == 2 {
                tile!(i, j, 2, 4);
            } else {
                tile!(i, j, 4, 4);
            }
            i += I;
        }
        while i < k {
            tile!(i, j, 1, 4);
            i += 1;
        }
        j += 4;
    }
    while j < h {
        let mut i = 0;
        while i + 4 <= k {
            tile!(i, j, 4, 1);
            i += 4;
        }
        while i < k {
            tile!(i, j, 1, 1);
            i += 1;
        }
        j += 1;
    }
}

/// The sums of inputs i … i + I − 1 against outputs j … j + J − 1, added into `dw`, and with
/// `BIAS` the sums of those outputs' g, added into `db`.
///
/// # Safety
/// AVX-512F must be enabled; i + I ≤ `a.width` and j + J ≤ `g.width`.
#[inline(always)]
unsafe fn tile<T: Lanes, const I: usize, const J: usize, const BIAS: bool>(
    a: Cols<'_, T>,
    g: Cols<'_, T>,
    i: usize,
    j: usize,
    dw: &mut [T],
    db: &mut [T],
) {
    let m = a.rows;
    let h = g.width;
    // Raw pointers to the columns, each of which holds m values (`col` checks the bounds):
    // the loads below stay below row m, and a bounds check on each of them cost ~20 % (8 × 8
    // over 208 rows: 409 → 499 ns).
    let xs: [*const T; I] = std::array::from_fn(|p| a.col(i + p).as_ptr());
    let ys: [*const T; J] = std::array::from_fn(|q| g.col(j + q).as_ptr());
    let mut acc = [[T::zero_block(); J]; I];
    let mut bias = [T::zero_block(); J];
    let full = m - m % BLOCK;
    let mut r = 0;
    while r < full {
        // SAFETY: rows r … r + 15 < m are in every column (each `col` slice has m values).
        let x: [T::Block; I] = std::array::from_fn(|p| unsafe { T::load(xs[p].add(r)) });
        for q in 0..J {
            // SAFETY: as above.
            let y = unsafe { T::load(ys[q].add(r)) };
            for p in 0..I {
                // SAFETY: AVX-512F is enabled (the caller's promise).
                acc[p][q] = unsafe { T::fma_block(x[p], y, acc[p][q]) };
            }
            if BIAS {
                // SAFETY: as above.
                bias[q] = unsafe { T::add_block(bias[q], y) };
            }
        }
        r += BLOCK;
    }
    if full < m {
        // The last m − full rows (fewer than 16) into partial sums 0 … m − full − 1.
        let n = m - full;
        // SAFETY: the loads read rows full … m − 1 only (masked), which every column has.
        let x: [T::Block; I] =
            std::array::from_fn(|p| unsafe { T::load_first(xs[p].add(full), n) });
        for q in 0..J {
            // SAFETY: as above.
            let y = unsafe { T::load_first(ys[q].add(full), n) };
            for p in 0..I {
                // SAFETY: AVX-512F is enabled.
                acc[p][q] = unsafe { T::fma_first(x[p], y, acc[p][q], n) };
            }
            if BIAS {
                // SAFETY: as above.
                bias[q] = unsafe { T::add_first(bias[q], y, n) };
            }
        }
    }
    // SAFETY: AVX-512F is enabled.
    unsafe { T::add_sums(&acc, dw, i, j, h) };
    if BIAS {
        for (q, &bias) in bias.iter().enumerate() {
            // SAFETY: AVX-512F is enabled.
            db[j + q] = db[j + q] + unsafe { T::pairwise(bias) };
        }
    }
}

/// A float type's block of `BLOCK` partial sums in AVX-512 registers, and the operations the
/// tiles need on it. Every method needs AVX-512F (they are inlined into `products`, which
/// enables it).
trait Lanes: Real {
    /// 16 values: two `__m512d` in f64, one `__m512` in f32.
    type Block: Copy;

    fn zero_block() -> Self::Block;

    /// The 16 values at `x` (which must all be readable).
    unsafe fn load(x: *const Self) -> Self::Block;

    /// The n < 16 values at `x` (which must be readable), zeros in the other lanes.
    unsafe fn load_first(x: *const Self, n: usize) -> Self::Block;

    /// `x·y + acc` in every lane, each rounded once.
    unsafe fn fma_block(x: Self::Block, y: Self::Block, acc: Self::Block) -> Self::Block;

    /// [`Lanes::fma_block`] in lanes 0 … n − 1; the other lanes keep `acc`'s bits.
    unsafe fn fma_first(x: Self::Block, y: Self::Block, acc: Self::Block, n: usize) -> Self::Block;

    /// `acc + y` in every lane (the bias sums: [`super::sum`] adds without products).
    unsafe fn add_block(acc: Self::Block, y: Self::Block) -> Self::Block;

    /// [`Lanes::add_block`] in lanes 0 … n − 1; the other lanes keep `acc`'s bits.
    unsafe fn add_first(acc: Self::Block, y: Self::Block, n: usize) -> Self::Block;

    /// The 16 lanes added as [`super::pairwise`] adds them: t + (t + 8), then + 4, + 2, + 1.
    unsafe fn pairwise(acc: Self::Block) -> Self;

    /// `dw[(i + p)·h + j + q] += pairwise(acc[p][q])` for every p < I and q < J: a tile's sums
    /// added into dW. A whole tile (f32 4 × 4, f64 2 × 4) reduces all its blocks together (the
    /// module doc says why); smaller ones one block at a time.
    unsafe fn add_sums<const I: usize, const J: usize>(
        acc: &[[Self::Block; J]; I],
        dw: &mut [Self],
        i: usize,
        j: usize,
        h: usize,
    );
}

/// [`Lanes::add_sums`] one block at a time, with [`Lanes::pairwise`].
///
/// # Safety
/// AVX-512F must be enabled.
#[inline(always)]
unsafe fn add_sums_one_by_one<T: Lanes, const I: usize, const J: usize>(
    acc: &[[T::Block; J]; I],
    dw: &mut [T],
    i: usize,
    j: usize,
    h: usize,
) {
    for (p, acc) in acc.iter().enumerate() {
        for (q, &acc) in acc.iter().enumerate() {
            let d = &mut dw[(i + p) * h + j + q];
            // SAFETY: AVX-512F is enabled (the caller's promise).
            *d = *d + unsafe { T::pairwise(acc) };
        }
    }
}

/// `dw[o + t] += sums[t]` for every t: a tile row of sums into its place in dW, one rounding per
/// element, as `*d = *d + s` does.
#[inline(always)]
fn add_row<T: Real>(dw: &mut [T], o: usize, sums: &[T]) {
    for (d, &s) in dw[o..o + sums.len()].iter_mut().zip(sums) {
        *d = *d + s;
    }
}

/// The mask of lanes 0 … n − 1 of a 16-lane block (n ≤ 16).
#[inline(always)]
fn first_lanes(n: usize) -> u16 {
    debug_assert!(n <= 16);
    ((1u32 << n) - 1) as u16
}

impl Lanes for f64 {
    type Block = [__m512d; 2];

    #[inline(always)]
    fn zero_block() -> Self::Block {
        // SAFETY: `setzero` only needs AVX-512F, which every caller has enabled.
        unsafe { [_mm512_setzero_pd(); 2] }
    }

    #[inline(always)]
    unsafe fn load(x: *const f64) -> Self::Block {
        // SAFETY: 16 readable values (the caller's promise); unaligned loads allowed.
        unsafe { [_mm512_loadu_pd(x), _mm512_loadu_pd(x.add(8))] }
    }

    #[inline(always)]
    unsafe fn load_first(x: *const f64, n: usize) -> Self::Block {
        let mask = first_lanes(n);
        // SAFETY: masked-off lanes are not read (and cannot fault), so only the n readable
        // values are; the second pointer is formed with `wrapping_add` and, when n ≤ 8, not
        // read at all.
        unsafe {
            [
                _mm512_maskz_loadu_pd(mask as u8, x),
                _mm512_maskz_loadu_pd((mask >> 8) as u8, x.wrapping_add(8)),
            ]
        }
    }

    #[inline(always)]
    unsafe fn fma_block(x: Self::Block, y: Self::Block, acc: Self::Block) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe {
            [
                _mm512_fmadd_pd(x[0], y[0], acc[0]),
                _mm512_fmadd_pd(x[1], y[1], acc[1]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn fma_first(x: Self::Block, y: Self::Block, acc: Self::Block, n: usize) -> Self::Block {
        let mask = first_lanes(n);
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe {
            [
                _mm512_mask3_fmadd_pd(x[0], y[0], acc[0], mask as u8),
                _mm512_mask3_fmadd_pd(x[1], y[1], acc[1], (mask >> 8) as u8),
            ]
        }
    }

    #[inline(always)]
    unsafe fn add_block(acc: Self::Block, y: Self::Block) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe { [_mm512_add_pd(acc[0], y[0]), _mm512_add_pd(acc[1], y[1])] }
    }

    #[inline(always)]
    unsafe fn add_first(acc: Self::Block, y: Self::Block, n: usize) -> Self::Block {
        let mask = first_lanes(n);
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe {
            [
                _mm512_mask_add_pd(acc[0], mask as u8, acc[0], y[0]),
                _mm512_mask_add_pd(acc[1], (mask >> 8) as u8, acc[1], y[1]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn pairwise(acc: Self::Block) -> f64 {
        // SAFETY: AVX-512F (and so AVX and SSE2) is enabled by the caller.
        unsafe {
            let s8 = _mm512_add_pd(acc[0], acc[1]); // lanes t + t+8
            let s4 = _mm256_add_pd(_mm512_castpd512_pd256(s8), _mm512_extractf64x4_pd(s8, 1));
            let s2 = _mm_add_pd(_mm256_castpd256_pd128(s4), _mm256_extractf128_pd(s4, 1));
            _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)))
        }
    }

    /// A whole 2 × 4 tile: its eight blocks reduced side by side, each step of `pairwise` on
    /// all of them at once (29 vector operations instead of eight reductions of seven), so
    /// every sum is the same as `pairwise`'s.
    #[inline(always)]
    unsafe fn add_sums<const I: usize, const J: usize>(
        acc: &[[Self::Block; J]; I],
        dw: &mut [f64],
        i: usize,
        j: usize,
        h: usize,
    ) {
        if I != 2 || J != 4 {
            // SAFETY: AVX-512F is enabled (the caller's promise).
            return unsafe { add_sums_one_by_one::<f64, I, J>(acc, dw, i, j, h) };
        }
        // v[k] holds (input, output) = ((k % 4) / 2, 2·(k % 2) + k / 4): the order in which
        // the steps below leave the sums, so that lanes 0–3 of the result are input i's four
        // outputs and lanes 4–7 input i + 1's.
        // SAFETY (the whole block): AVX-512F is enabled (the caller's promise); the stores
        // write a local array.
        unsafe {
            let v: [__m512d; 8] = std::array::from_fn(|k| {
                let b = acc[(k % 4) / 2][2 * (k % 2) + k / 4];
                _mm512_add_pd(b[0], b[1]) // lanes t + t+8
            });
            // t + t+4: [a0-3, b0-3] + [a4-7, b4-7], so [a's four, b's four].
            let s4: [__m512d; 4] = std::array::from_fn(|n| {
                let (a, b) = (v[2 * n], v[2 * n + 1]);
                _mm512_add_pd(
                    _mm512_shuffle_f64x2::<0x44>(a, b),
                    _mm512_shuffle_f64x2::<0xEE>(a, b),
                )
            });
            // t + t+2: two lanes each of four blocks' sums, in 128-bit lane order.
            let s2: [__m512d; 2] = std::array::from_fn(|n| {
                let (a, b) = (s4[2 * n], s4[2 * n + 1]);
                _mm512_add_pd(
                    _mm512_shuffle_f64x2::<0x88>(a, b),
                    _mm512_shuffle_f64x2::<0xDD>(a, b),
                )
            });
            // t + t+1: 128-bit lane q ends as [v_q, v_{q+4}].
            let sums = _mm512_add_pd(
                _mm512_unpacklo_pd(s2[0], s2[1]),
                _mm512_unpackhi_pd(s2[0], s2[1]),
            );
            let mut lanes = [0.0; 8];
            _mm512_storeu_pd(lanes.as_mut_ptr(), sums);
            add_row(dw, i * h + j, &lanes[..4]);
            add_row(dw, (i + 1) * h + j, &lanes[4..]);
        }
    }
}

impl Lanes for f32 {
    type Block = __m512;

    #[inline(always)]
    fn zero_block() -> Self::Block {
        // SAFETY: `setzero` only needs AVX-512F, which every caller has enabled.
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load(x: *const f32) -> Self::Block {
        // SAFETY: 16 readable values (the caller's promise); unaligned loads allowed.
        unsafe { _mm512_loadu_ps(x) }
    }

    #[inline(always)]
    unsafe fn load_first(x: *const f32, n: usize) -> Self::Block {
        // SAFETY: masked-off lanes are not read (and cannot fault): only the n readable values.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(n), x) }
    }

    #[inline(always)]
    unsafe fn fma_block(x: Self::Block, y: Self::Block, acc: Self::Block) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe { _mm512_fmadd_ps(x, y, acc) }
    }

    #[inline(always)]
    unsafe fn fma_first(x: Self::Block, y: Self::Block, acc: Self::Block, n: usize) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe { _mm512_mask3_fmadd_ps(x, y, acc, first_lanes(n)) }
    }

    #[inline(always)]
    unsafe fn add_block(acc: Self::Block, y: Self::Block) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe { _mm512_add_ps(acc, y) }
    }

    #[inline(always)]
    unsafe fn add_first(acc: Self::Block, y: Self::Block, n: usize) -> Self::Block {
        // SAFETY: AVX-512F is enabled by the caller.
        unsafe { _mm512_mask_add_ps(acc, first_lanes(n), acc, y) }
    }

    #[inline(always)]
    unsafe fn pairwise(acc: Self::Block) -> f32 {
        // SAFETY: AVX-512F (and so AVX and SSE) is enabled by the caller.
        unsafe {
            // The upper eight lanes through the f64 view: extracting 256 bits of f32 directly
            // needs AVX-512DQ, which not every AVX-512 CPU has.
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
            let s8 = _mm256_add_ps(_mm512_castps512_ps256(acc), hi); // lanes t + t+8
            let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
            let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4)); // lanes 0, 1: t + t+2
            _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
        }
    }

    /// A whole 4 × 4 tile: its 16 blocks reduced side by side, each step of `pairwise` on all
    /// of them at once (30 shuffles and 15 additions instead of 16 separate reductions of 8
    /// operations each), so every sum is the same as `pairwise`'s.
    #[inline(always)]
    unsafe fn add_sums<const I: usize, const J: usize>(
        acc: &[[Self::Block; J]; I],
        dw: &mut [f32],
        i: usize,
        j: usize,
        h: usize,
    ) {
        if I != 4 || J != 4 {
            // SAFETY: AVX-512F is enabled (the caller's promise).
            return unsafe { add_sums_one_by_one::<f32, I, J>(acc, dw, i, j, h) };
        }
        // v[k] holds (input, output) = (k % 4, k / 4): the steps below leave 128-bit lane q of
        // the result as [v_q, v_{q+4}, v_{q+8}, v_{q+12}], input i + q's four outputs.
        let v: [__m512; 16] = std::array::from_fn(|k| acc[k % 4][k / 4]);
        // SAFETY (the whole block): AVX-512F is enabled (the caller's promise); the stores
        // write a local array.
        unsafe {
            // t + t+8: [a0-7, b0-7] + [a8-15, b8-15], so [a's eight, b's eight].
            let s8: [__m512; 8] = std::array::from_fn(|n| {
                let (a, b) = (v[2 * n], v[2 * n + 1]);
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0x44>(a, b),
                    _mm512_shuffle_f32x4::<0xEE>(a, b),
                )
            });
            // t + t+4: 128-bit lane q holds v_{4n+q}'s four.
            let s4: [__m512; 4] = std::array::from_fn(|n| {
                let (a, b) = (s8[2 * n], s8[2 * n + 1]);
                _mm512_add_ps(
                    _mm512_shuffle_f32x4::<0x88>(a, b),
                    _mm512_shuffle_f32x4::<0xDD>(a, b),
                )
            });
            // t + t+2, within 128-bit lanes: lane q holds [v_q's two, v_{q+4}'s two] and
            // [v_{q+8}'s two, v_{q+12}'s two].
            let s2: [__m512; 2] = std::array::from_fn(|n| {
                let (a, b) = (s4[2 * n], s4[2 * n + 1]);
                _mm512_add_ps(
                    _mm512_shuffle_ps::<0x44>(a, b),
                    _mm512_shuffle_ps::<0xEE>(a, b),
                )
            });
            // t + t+1.
            let sums = _mm512_add_ps(
                _mm512_shuffle_ps::<0x88>(s2[0], s2[1]),
                _mm512_shuffle_ps::<0xDD>(s2[0], s2[1]),
            );
            let mut lanes = [0.0; 16];
            _mm512_storeu_ps(lanes.as_mut_ptr(), sums);
            for q in 0..4 {
                add_row(dw, (i + q) * h + j, &lanes[4 * q..4 * q + 4]);
            }
        }
    }
}
