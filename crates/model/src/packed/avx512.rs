//! The AVX-512 tile: up to 12 rows × one whole 32-column panel, 24 of the 32 registers
//! accumulating while the depth runs; each step loads two registers of B and broadcasts one
//! element of A per row into two fused multiply-adds. Masked loads and stores keep the
//! columns of a last panel that lie past `n` untouched.

use std::arch::x86_64::*;

use super::{NR, PREFETCH};

/// Rows per tile: 12 rows × 2 registers = 24 accumulators.
pub(super) const MR: usize = 12;

/// One `M × 32` tile of C over depth `k`: `C = A · B` (`+ C` with `load_c`); only the first
/// `cols` of the 32 columns exist in C.
///
/// # Safety
/// The CPU must have AVX-512F; `a` must address `M` rows of `k` elements at stride `lda`,
/// `b` `k` rows of 32 floats, and `c` `M` rows at stride `ldc` of at least `cols` elements,
/// not overlapping `a` or `b`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile<const M: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    load_c: bool,
) {
    let lanes = |w: usize| if w >= 16 { u16::MAX } else { (1u16 << w) - 1 };
    let mask = (lanes(cols.min(16)), lanes(cols.saturating_sub(16)));
    let mut lo = [_mm512_setzero_ps(); M];
    let mut hi = [_mm512_setzero_ps(); M];
    let mut bp = b;
    for p in 0..k {
        // SAFETY: the caller's bounds: k rows of the panel, M rows of A of k elements; a
        // prefetch past the panel's end is harmless.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PREFETCH * NR) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PREFETCH * NR + 16) as *const i8);
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            for r in 0..M {
                let av = _mm512_set1_ps(*a.add(r * lda + p));
                lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
            }
            bp = bp.add(NR);
        }
    }
    for r in 0..M {
        // SAFETY: the masks keep the loads and stores within the `cols` columns of C.
        unsafe {
            let cr = c.add(r * ldc);
            let (mut x0, mut x1) = (lo[r], hi[r]);
            if load_c {
                x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(mask.0, cr));
                x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(mask.1, cr.add(16)));
            }
            _mm512_mask_storeu_ps(cr, mask.0, x0);
            _mm512_mask_storeu_ps(cr.add(16), mask.1, x1);
        }
    }
}
