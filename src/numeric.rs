//! The floating-point type the numerical core is generic over.
//!
//! A sweep runs entirely in `f32` or entirely in `f64` (`precision` / `jax_enable_x64` in the
//! experiments file). Everything numerical (MLP, training, posterior, samplers) is written once
//! against [`Real`]; the worker picks the concrete type from the spec and monomorphises.
//! Statistics that leave the core (LLC traces, diagnostics, JSON) are always `f64`.
//! [`Real::tanh_simd`] is the vectorizable tanh of `numeric/tanh.rs`, here at the bottom layer
//! because both precisions' activations need it through `Real`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use ndarray_npy::{ReadableElement, WritableElement};
use num_traits::{Float, FromPrimitive, ToPrimitive};

pub mod linalg;
mod tanh;

/// A float usable by the numerical core: `f32` or `f64`.
pub trait Real:
    Float
    + LinalgScalar
    + ScalarOperand
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + ReadableElement
    + WritableElement
    + 'static
{
    /// Name used in specs, meta.json and file dtypes.
    const NAME: &'static str;

    /// Lossy conversion from f64 (exact for f64). Never fails for finite inputs.
    fn of(x: f64) -> Self;

    /// Widening conversion to f64 (exact for both types).
    fn f64(self) -> f64;

    /// tanh in this precision's own arithmetic, branch-free so that loops over it vectorize
    /// (`numeric/tanh.rs`): f32 networks compute their activations in f32, with f32's twice as many
    /// SIMD lanes and a shorter series.
    fn tanh_simd(self) -> Self;

    /// [`Real::tanh_simd`] of N values at once: the same bits, with N independent chains of
    /// operations for the CPU to overlap (`numeric/tanh.rs`).
    fn tanh_lanes<const N: usize>(x: [Self; N]) -> [Self; N];

    /// [`Real::tanh_lanes`] up to its division: each value's numerator and divisor.
    fn tanh_quotient_lanes<const N: usize>(x: [Self; N]) -> ([Self; N], [Self; N]);

    /// [`Real::tanh_lanes`]' last step for one value: numerator over divisor, with x's sign.
    /// The two halves give the bits of [`Real::tanh_lanes`].
    fn tanh_from_quotient(num: Self, div: Self, x: Self) -> Self;
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn tanh_simd(self) -> Self {
        tanh::tanh(self)
    }
    #[inline(always)]
    fn tanh_lanes<const N: usize>(x: [Self; N]) -> [Self; N] {
        tanh::tanh_lanes(x)
    }
    #[inline(always)]
    fn tanh_quotient_lanes<const N: usize>(x: [Self; N]) -> ([Self; N], [Self; N]) {
        tanh::tanh_quotient_lanes(x)
    }
    #[inline(always)]
    fn tanh_from_quotient(num: Self, div: Self, x: Self) -> Self {
        tanh::tanh_from_quotient(num, div, x)
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn tanh_simd(self) -> Self {
        tanh::tanh_f32(self)
    }
    #[inline(always)]
    fn tanh_lanes<const N: usize>(x: [Self; N]) -> [Self; N] {
        tanh::tanh_f32_lanes(x)
    }
    #[inline(always)]
    fn tanh_quotient_lanes<const N: usize>(x: [Self; N]) -> ([Self; N], [Self; N]) {
        tanh::tanh_f32_quotient_lanes(x)
    }
    #[inline(always)]
    fn tanh_from_quotient(num: Self, div: Self, x: Self) -> Self {
        tanh::tanh_f32_from_quotient(num, div, x)
    }
}

/// Floating-point precision of a whole sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    #[default]
    F64,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}
