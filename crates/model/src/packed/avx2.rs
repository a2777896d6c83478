//! The AVX2 + FMA tile: up to 6 rows × 16 columns (half a panel), 12 of the 16 registers
//! accumulating while the depth runs; each step loads two registers of B and broadcasts one
//! element of A per row into two fused multiply-adds (the shape of the classic 6 × 16 AVX2
//! kernels). A tile with fewer than 16 columns in C goes through a buffer on the stack, so no
//! load or store touches a column past `n`.

use std::arch::x86_64::*;

use super::{HALF, NR, PREFETCH};

/// Rows per tile: 6 rows × 2 registers = 12 accumulators (+ 2 of B + 1 of A).
pub(super) const MR: usize = 6;
/// Depth steps per prefetch.
const UNROLL: usize = 8;

/// One `M × 16` tile of C over depth `k`: `C = A · B` (`+ C` with `load_c`), B being `k`
/// rows of 16 floats [`NR`] apart (one half of a panel); only the first `cols` of the 16
/// columns exist in C.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must address `M` rows of `k` elements at stride
/// `lda`, `b` `k` rows of 16 floats at stride [`NR`], and `c` `M` rows at stride `ldc` of at
/// least `cols` elements, not overlapping `a` or `b`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma")]
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
    let mut lo = [_mm256_setzero_ps(); M];
    let mut hi = [_mm256_setzero_ps(); M];
    // The rows of A, and the depth in steps of UNROLL (one prefetch each) then the rest.
    let rows: [*const f32; M] = std::array::from_fn(|r| a.wrapping_add(r * lda));
    let mut bp = b;
    let mut p = 0;
    while p < k {
        let steps = UNROLL.min(k - p);
        // SAFETY: the caller's bounds: k rows of the half panel, M rows of A of k elements;
        // a prefetch past the panel's end is harmless.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PREFETCH * NR) as *const i8);
            for u in 0..steps {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for r in 0..M {
                    let av = _mm256_broadcast_ss(&*rows[r].add(p + u));
                    lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
                }
                bp = bp.add(NR);
            }
        }
        p += steps;
    }
    for r in 0..M {
        // SAFETY: row r of C holds `cols` elements from c + r·ldc; a whole row (16) is
        // loaded and stored directly, a shorter one through `buf`.
        unsafe {
            let cr = c.add(r * ldc);
            if cols == HALF {
                let (mut x0, mut x1) = (lo[r], hi[r]);
                if load_c {
                    x0 = _mm256_add_ps(x0, _mm256_loadu_ps(cr));
                    x1 = _mm256_add_ps(x1, _mm256_loadu_ps(cr.add(8)));
                }
                _mm256_storeu_ps(cr, x0);
                _mm256_storeu_ps(cr.add(8), x1);
            } else {
                let mut buf = [0f32; HALF];
                _mm256_storeu_ps(buf.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi[r]);
                super::store_part(&buf[..cols], cr, load_c);
            }
        }
    }
}
