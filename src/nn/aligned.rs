//! Buffers whose first element sits on a 64-byte boundary: one cache line, one AVX-512 register.
//!
//! Input: a length. Output: a zero-filled buffer that derefs to `[F]`. Why: the narrow kernels'
//! weight gradients (`narrow::weight_grad`) load a vector of rows for every multiply-add, and on
//! the AMD Zen 5 test machine a 64-byte load that straddles two cache lines costs about twice
//! one that does not. A `Vec`'s storage is only 16-byte aligned, so its columns straddled lines
//! at random, differently from one allocation (and one run) to the next. Measured there (one
//! thread, dot products of one column against four, 192 rows, in L1): 1.38 cycles per 8-lane
//! multiply-add aligned, 2.12 at a 16-byte offset; the kernel itself, 8 × 8 weights over 200
//! rows, 1,940 → 1,455 ns.
//!
//! The buffer over-allocates by one line and starts at the first aligned element, so it never
//! reallocates and the alignment holds for its whole life; `Clone` aligns the copy afresh.

use std::ops::{Deref, DerefMut};

/// Bytes of alignment: a cache line, and the width of an AVX-512 register.
const ALIGN: usize = 64;

/// A fixed-length, zero-initialized, 64-byte-aligned buffer of `F`.
pub(crate) struct AlignedBuf<F> {
    storage: Vec<F>,
    start: usize,
    len: usize,
}

impl<F: Copy + Default> AlignedBuf<F> {
    /// `len` zeros (`F::default()`), the first on a 64-byte boundary.
    pub(crate) fn zeros(len: usize) -> Self {
        Self::filled(len, F::default(), &[])
    }
}

impl<F: Clone> AlignedBuf<F> {
    /// `values` followed by copies of `fill` up to `len` elements, the first on a 64-byte
    /// boundary. The storage is allocated first and filled after, so the offset to the next
    /// line is known before anything is written.
    fn filled(len: usize, fill: F, values: &[F]) -> Self {
        let size = std::mem::size_of::<F>().max(1);
        debug_assert!(
            ALIGN.is_multiple_of(size),
            "element size must divide the alignment"
        );
        let slack = ALIGN / size;
        let mut storage = Vec::with_capacity(len + slack);
        let misalign = storage.as_ptr() as usize % ALIGN;
        // Elements to skip so that the start is aligned: whole elements, since `size` divides
        // ALIGN and a Vec's storage is aligned to `size`.
        let start = ((ALIGN - misalign) % ALIGN) / size;
        storage.resize(start, fill.clone());
        storage.extend_from_slice(values);
        storage.resize(len + slack, fill);
        debug_assert_eq!(
            storage.as_ptr() as usize % ALIGN,
            misalign,
            "no reallocation"
        );
        AlignedBuf {
            storage,
            start,
            len,
        }
    }
}

impl<F> Deref for AlignedBuf<F> {
    type Target = [F];
    fn deref(&self) -> &[F] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl<F> DerefMut for AlignedBuf<F> {
    fn deref_mut(&mut self) -> &mut [F] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

impl<F: Clone> Clone for AlignedBuf<F> {
    /// A new allocation has its own offset to the next line, so the copy is aligned afresh
    /// rather than cloned storage and all.
    fn clone(&self) -> Self {
        // Any element serves as filler for the unused slack; the storage always has one.
        let fill = self.storage[0].clone();
        Self::filled(self.len, fill, self)
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for AlignedBuf<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_and_holds_its_length_for_every_size() {
        for len in [0, 1, 7, 8, 9, 63, 64, 1000, 4097] {
            let mut a = AlignedBuf::<f64>::zeros(len);
            let b = AlignedBuf::<f32>::zeros(len);
            assert_eq!((a.len(), b.len()), (len, len));
            assert_eq!(a.as_ptr() as usize % ALIGN, 0, "f64, len {len}");
            assert_eq!(b.as_ptr() as usize % ALIGN, 0, "f32, len {len}");
            assert!(a.iter().all(|&x| x == 0.0));
            a.iter_mut().enumerate().for_each(|(i, x)| *x = i as f64);
            let c = a.clone();
            assert_eq!(c.as_ptr() as usize % ALIGN, 0, "clone, len {len}");
            assert_eq!(&c[..], &a[..]);
        }
    }
}
