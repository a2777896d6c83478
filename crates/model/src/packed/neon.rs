//! The aarch64 NEON tile: up to 6 rows × 16 columns (half a panel), 24 of the 32 registers
//! accumulating while the depth runs; each step loads four registers of B and multiplies
//! them by one element of A per row (`fmla` by scalar). A tile with fewer than 16 columns in
//! C goes through a buffer on the stack, so no load or store touches a column past `n`.

use std::arch::aarch64::*;

use super::{HALF, NR};

/// Rows per tile: 6 rows × 4 registers = 24 accumulators (+ 4 of B).
pub(super) const MR: usize = 6;

/// One `M × 16` tile of C over depth `k`: `C = A · B` (`+ C` with `load_c`), B being `k`
/// rows of 16 floats [`NR`] apart (one half of a panel); only the first `cols` of the 16
/// columns exist in C.
///
/// # Safety
/// `a` must address `M` rows of `k` elements at stride `lda`, `b` `k` rows of 16 floats at
/// stride [`NR`], and `c` `M` rows at stride `ldc` of at least `cols` elements, not
/// overlapping `a` or `b`. (NEON is part of every aarch64 CPU.)
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "neon")]
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
    let mut acc = [[vdupq_n_f32(0.0); 4]; M];
    let mut bp = b;
    for p in 0..k {
        // SAFETY: the caller's bounds: k rows of the half panel, M rows of A of k elements.
        unsafe {
            let bv = [
                vld1q_f32(bp),
                vld1q_f32(bp.add(4)),
                vld1q_f32(bp.add(8)),
                vld1q_f32(bp.add(12)),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let av = *a.add(r * lda + p);
                for (x, &bq) in row.iter_mut().zip(&bv) {
                    *x = vfmaq_n_f32(*x, bq, av);
                }
            }
            bp = bp.add(NR);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: row r of C holds `cols` elements from c + r·ldc; a whole row (16) is
        // loaded and stored directly, a shorter one through `buf`.
        unsafe {
            let cr = c.add(r * ldc);
            if cols == HALF {
                for (q, &x) in row.iter().enumerate() {
                    let x = if load_c {
                        vaddq_f32(x, vld1q_f32(cr.add(4 * q)))
                    } else {
                        x
                    };
                    vst1q_f32(cr.add(4 * q), x);
                }
            } else {
                let mut buf = [0f32; HALF];
                for (q, &x) in row.iter().enumerate() {
                    vst1q_f32(buf.as_mut_ptr().add(4 * q), x);
                }
                super::store_part(&buf[..cols], cr, load_c);
            }
        }
    }
}
