//! The safe way in to the crate's hand-written speed code, for benchmarks and tests.
//!
//! The fused kernels (`kernels`) and the AVX-512 products (`packed`) are private to the crate:
//! their products take raw pointers whose bounds only the crate's own callers keep. What the
//! rest of the workspace needs of them is here, safe: whether the packed products run, a
//! switch that turns them off (so that a test or benchmark can run the `gemm` crate's path on
//! an AVX-512 CPU too and compare), and both products over slices whose bounds are checked
//! here. Nothing outside this crate needs `unsafe` to reach them.

use crate::kernels;
use crate::packed::{self, PackedMatrix};

/// Whether the packed AVX-512 products run in this process: the CPU has AVX-512 and
/// [`set_packed_enabled`] did not turn them off. Where this is false, inference and training
/// multiply through the `gemm` crate, as they do on CPUs without AVX-512.
pub fn packed_available() -> bool {
    packed::available()
}

/// Turns the packed products off (or on again) for the whole process, so that the `gemm`
/// crate's path runs on AVX-512 CPUs too: for tests and benchmarks that compare the two.
/// Models keep their packed weights; they are simply not used while this is off.
pub fn set_packed_enabled(on: bool) {
    packed::set_enabled(on);
}

/// Rows up to which a linear layer multiplies through the packed product on AVX-512 CPUs;
/// larger products go through the `gemm` crate.
pub const PACKED_MAX_ROWS: usize = kernels::PACKED_MAX_ROWS;

/// A right-hand side packed for [`matmul_packed`], as the model packs a linear layer's
/// weights once when it is loaded for inference.
#[derive(Debug, Clone, Default)]
pub struct PackedRhs(PackedMatrix);

impl PackedRhs {
    /// Packs `Wᵀ` for a Hugging Face `(out, in)` weight `w` (row-major), so that `x · Wᵀ` is
    /// `x ·` this. Panics when `w` holds fewer than `out × inp` floats.
    pub fn from_weight(w: &[f32], out: usize, inp: usize) -> Self {
        Self(PackedMatrix::from_weight(w, out, inp))
    }

    /// Packs `Sᵀ` for `S` with `n` rows of `k` elements at row stride `ld`, reusing this
    /// buffer, as attention packs one head's keys per call. Panics when `s` is too short.
    pub fn pack_transposed(&mut self, s: &[f32], n: usize, k: usize, ld: usize) {
        self.0.pack_transposed(s, n, k, ld);
    }

    /// Rows (the depth of a product).
    pub fn k(&self) -> usize {
        self.0.k()
    }

    /// Columns.
    pub fn n(&self) -> usize {
        self.0.n()
    }
}

/// Whether a slice of `len` floats holds `rows` rows of `cols` elements `stride` apart.
fn holds(len: usize, rows: usize, cols: usize, stride: usize) -> bool {
    rows == 0
        || cols == 0
        || (rows - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(cols))
            .is_some_and(|need| need <= len)
}

/// `c = a · b` through the packed AVX-512 product: `a` is `m` rows of `b.k()` floats, `lda`
/// apart; `c` is `m × b.n()`, contiguous. With `parallel`, large products are split over the
/// rayon pool, as for a linear layer; attention calls it without.
///
/// # Panics
/// When [`packed_available`] is false, or `a` or `c` is too short for those shapes.
pub fn matmul_packed(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedRhs,
    c: &mut [f32],
    parallel: bool,
) {
    assert!(
        packed_available(),
        "the packed products need AVX-512 (and set_packed_enabled(true))"
    );
    let (k, n) = (b.k(), b.n());
    assert!(holds(a.len(), m, k, lda), "a is too short for {m} rows");
    assert!(holds(c.len(), m, n, n), "c is too short for {m} × {n}");
    // SAFETY: the packed products are available (checked above); `a` holds m rows of k floats
    // at stride lda and `c` m rows of n at stride n (checked above), and `c`, borrowed
    // mutably, overlaps neither `a` nor `b`.
    unsafe { packed::matmul(m, a.as_ptr(), lda, &b.0, c.as_mut_ptr(), n, false, parallel) };
}

/// `c = a · wᵀ` through the `gemm` crate, as the kernels multiply without the packed
/// product: `a` is `m` rows of `inp` floats, `lda` apart; `w` is a Hugging Face `(out, in)`
/// weight, row-major; `c` is `m × out`, contiguous. With `parallel` the `gemm` crate splits
/// the product over as many threads as the rayon pool has.
///
/// # Panics
/// When `a`, `w` or `c` is too short for those shapes.
#[allow(clippy::too_many_arguments)]
pub fn matmul_gemm(
    m: usize,
    a: &[f32],
    lda: usize,
    w: &[f32],
    out: usize,
    inp: usize,
    c: &mut [f32],
    parallel: bool,
) {
    assert!(holds(a.len(), m, inp, lda), "a is too short for {m} rows");
    assert!(
        holds(w.len(), out, inp, inp),
        "w is too short for {out} × {inp}"
    );
    assert!(
        holds(c.len(), m, out, out),
        "c is too short for {m} × {out}"
    );
    let (a, w) = (kernels::View::rows(a, lda), kernels::View::rows(w, inp));
    // SAFETY: the views address m × inp floats of `a` and out × inp of `w`, and `c` holds
    // m × out at stride out (all checked above); `c`, borrowed mutably, overlaps neither.
    unsafe { kernels::gemm_matmul(m, out, inp, c.as_mut_ptr(), out, a, w.t(), false, parallel) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_checks_the_last_row_only_to_its_width() {
        assert!(holds(10, 3, 2, 4));
        assert!(!holds(9, 3, 2, 4));
        assert!(holds(0, 0, 5, 5));
        assert!(holds(0, 5, 0, 5));
        assert!(!holds(usize::MAX, 3, 1, usize::MAX));
    }

    #[test]
    fn both_products_agree_with_a_plain_loop() {
        let (m, k, n, lda) = (5, 7, 33, 9);
        let a: Vec<f32> = (0..m * lda).map(|i| (i % 13) as f32 - 6.0).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.5 - 1.5).collect();
        let mut want = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * lda + p] * w[j * k + p]).sum();
            }
        }
        let mut c = vec![f32::NAN; m * n];
        matmul_gemm(m, &a, lda, &w, n, k, &mut c, false);
        assert_eq!(c, want, "gemm");
        if !packed_available() {
            crate::simd::tests::skipped("AVX-512");
            eprintln!("ran: gemm");
            return;
        }
        let mut c = vec![f32::NAN; m * n];
        matmul_packed(m, &a, lda, &PackedRhs::from_weight(&w, n, k), &mut c, true);
        assert_eq!(c, want, "packed");
        eprintln!("ran: gemm, AVX-512 packed");
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn a_short_output_panics_instead_of_writing_past_it() {
        let (a, w) = (vec![1f32; 4 * 3], vec![1f32; 2 * 3]);
        matmul_gemm(4, &a, 3, &w, 2, 3, &mut [0f32; 7], false);
    }
}
