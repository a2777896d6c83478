//! Matrix products on AVX-512 over a right-hand side packed into panels of 32 columns.
//!
//! `C (m × n) = A (m × k) · B (k × n)` with A read in place (any row stride) and B packed:
//! panel `j` holds columns `32j .. 32j + 32` as k rows of 32 floats, zero-padded past `n`,
//! each row two aligned cache lines. A 12 × 32 tile of C lives in 24 of the 32 vector
//! registers while k runs: each step loads two registers of B and broadcasts one element of
//! A per row into two fused multiply-adds. The depth is cut into passes of [`KC`]; within a
//! pass, a tile's 12 rows of A stay in L1 while the panels stream past from L2, fetched
//! [`PREFETCH`] rows ahead. Threads split the panels between them.
//!
//! Inference packs a linear layer's weights once, when the model is loaded
//! ([`PackedMatrix::from_weight`]), where the `gemm` crate packs them again on every call,
//! and uses them for products of few rows (one sequence, a few short ones), where that
//! packing weighs most; attention packs one head's keys and values per call, which is cheap
//! beside the T × T products they feed. The `gemm` crate takes the large products, the CPUs
//! without AVX-512, and training's backward pass.
//!
//! Everything here is only reached after [`available`] said yes.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Columns per panel: two AVX-512 registers of f32.
pub const NR: usize = 32;
/// Rows per tile: 12 rows × 2 registers = 24 accumulators.
const MR: usize = 12;
/// Depth per pass: a tile's rows of A (12 × 256 floats, 12 KiB) stay in L1 while the
/// panels stream by.
const KC: usize = 256;
/// Rows of a panel fetched ahead of the one being multiplied (two cache lines each).
const PREFETCH: usize = 8;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_WORK: usize = 1 << 20;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the packed products off (or on again) for the whole process, so that the `gemm`
/// crate's path runs on AVX-512 CPUs too: for tests and benchmarks that compare the two.
/// Models keep their packed weights; they are simply not used while this is off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the packed products run here: the CPU has AVX-512 and [`set_enabled`] did not
/// turn them off.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        ENABLED.load(Ordering::Relaxed) && crate::simd::has_avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `k × n` right-hand side in panels of [`NR`] columns.
#[derive(Debug, Clone, Default)]
pub struct PackedMatrix {
    /// Whole cache lines, so that every row of a panel (two lines) is aligned and no vector
    /// load straddles two lines.
    data: Vec<Line>,
    k: usize,
    n: usize,
}

/// One 64-byte cache line of floats.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; 16]);

impl PackedMatrix {
    /// Packs `Wᵀ` for a Hugging Face `(out, in)` weight `w` (row-major, `n = out`, `k = in`),
    /// so that `x · Wᵀ` is `x ·` this.
    pub fn from_weight(w: &[f32], out: usize, inp: usize) -> Self {
        let mut m = Self::default();
        m.pack_transposed(w, out, inp, inp);
        m
    }

    /// Rows of the packed matrix (the depth of a product).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the packed matrix.
    pub fn n(&self) -> usize {
        self.n
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    fn reset(&mut self, k: usize, n: usize) {
        self.k = k;
        self.n = n;
        let lines = n.div_ceil(NR) * NR * k / 16;
        self.data.clear();
        self.data.resize(lines, Line::default());
    }

    /// The panels as floats.
    fn floats(&self) -> &[f32] {
        // SAFETY: `Line` is 16 f32 with no padding (`repr(C)`, 64 bytes).
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast(), self.data.len() * 16) }
    }

    fn floats_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `floats`.
        unsafe {
            std::slice::from_raw_parts_mut(self.data.as_mut_ptr().cast(), self.data.len() * 16)
        }
    }

    /// Packs `B = Sᵀ` for `S` with `n` rows of `k` elements at row stride `ld` (reusing this
    /// buffer): `B[p][c] = S[c][p]`.
    pub fn pack_transposed(&mut self, s: &[f32], n: usize, k: usize, ld: usize) {
        self.reset(k, n);
        for c in 0..n {
            let row = &s[c * ld..c * ld + k];
            let (j, col) = (c / NR, c % NR);
            let panel = &mut self.floats_mut()[j * k * NR..(j + 1) * k * NR];
            for (p, &v) in row.iter().enumerate() {
                panel[p * NR + col] = v;
            }
        }
    }

    /// Packs `B = S` for `S` with `k` rows of `n` elements at row stride `ld` (reusing this
    /// buffer).
    pub fn pack(&mut self, s: &[f32], k: usize, n: usize, ld: usize) {
        self.reset(k, n);
        for j in 0..self.panels() {
            let (c0, w) = (j * NR, NR.min(n - j * NR));
            let panel = &mut self.floats_mut()[j * k * NR..(j + 1) * k * NR];
            for p in 0..k {
                panel[p * NR..p * NR + w].copy_from_slice(&s[p * ld + c0..p * ld + c0 + w]);
            }
        }
    }
}

/// A raw pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct Shared<T>(T);
// SAFETY: `Shared` only wraps a `Job` inside `matmul`, whose tasks write parts of C that no
// other task touches and only read A and B, all of which outlive the parallel loop.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as for `Send`: the tasks sharing a `&Shared<Job>` never write the same element.
unsafe impl<T> Sync for Shared<T> {}

/// `C (m × b.n(), row stride ldc) = A (m × b.k(), row stride lda) · b`, or `+=` with
/// `accumulate`; split over the rayon pool when `parallel` and the product is large enough
/// (by panels, or by rows when there are fewer panels than threads). Every element of C is
/// written, and without `accumulate` none is read first, so C may start uninitialised.
///
/// # Safety
/// [`available`] must be true; `a` must address `m` rows of `b.k()` elements at stride
/// `lda`, and `c` `m` rows of `b.n()` at stride `ldc`, not overlapping `a`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedMatrix,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    parallel: bool,
) {
    if b.k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: row r of C holds b.n() elements, as the caller promised.
                unsafe { std::ptr::write_bytes(c.add(r * ldc), 0, b.n) };
            }
        }
        return;
    }
    let panels = b.panels();
    let threads = rayon::current_num_threads();
    let job = Job {
        a,
        lda,
        b,
        c,
        ldc,
        accumulate,
    };
    if !parallel || threads < 2 || m * b.n * b.k < PARALLEL_WORK {
        // SAFETY: as promised by the caller.
        unsafe { job.run(0..m, 0..panels) };
        return;
    }
    let job = Shared(job);
    if panels >= threads {
        // Whole panels per task: each keeps its share of B in cache while all rows go by.
        let per = panels.div_ceil(threads);
        (0..panels.div_ceil(per)).into_par_iter().for_each(|t| {
            let job = &job;
            // SAFETY: as promised by the caller; tasks write disjoint columns of C.
            unsafe { job.0.run(0..m, t * per..((t + 1) * per).min(panels)) };
        });
    } else {
        let per = m.div_ceil(MR).div_ceil(threads) * MR;
        (0..m.div_ceil(per)).into_par_iter().for_each(|t| {
            let job = &job;
            // SAFETY: as promised by the caller; tasks write disjoint rows of C.
            unsafe { job.0.run(t * per..((t + 1) * per).min(m), 0..panels) };
        });
    }
}

/// One product's operands.
struct Job<'a> {
    a: *const f32,
    lda: usize,
    b: &'a PackedMatrix,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

impl Job<'_> {
    /// The product restricted to `rows` of A and C and `panels` of B.
    ///
    /// # Safety
    /// As [`matmul`]'s, for these rows and panels.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self, rows: std::ops::Range<usize>, panels: std::ops::Range<usize>) {
        let (k, n) = (self.b.k, self.b.n);
        let (lda, ldc) = (self.lda, self.ldc);
        let lanes = |w: usize| if w >= 16 { u16::MAX } else { (1u16 << w) - 1 };
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let load_c = self.accumulate || k0 > 0;
            let mut i = rows.start;
            while i < rows.end {
                let m = MR.min(rows.end - i);
                // SAFETY: rows i..i+m of A from column k0 on, as the caller promised.
                let a = unsafe { self.a.add(i * lda + k0) };
                for j in panels.clone() {
                    let valid = NR.min(n - j * NR);
                    let mask = (lanes(valid.min(16)), lanes(valid.saturating_sub(16)));
                    // SAFETY: panel j holds k × NR floats; rows i..i+m of C, columns of
                    // panel j (the masks drop those past n), as the caller promised.
                    unsafe {
                        let b = self.b.floats().as_ptr().add(j * k * NR + k0 * NR);
                        let c = self.c.add(i * ldc + j * NR);
                        match m {
                            12 => tile::<12>(kc, a, lda, b, c, ldc, mask, load_c),
                            11 => tile::<11>(kc, a, lda, b, c, ldc, mask, load_c),
                            10 => tile::<10>(kc, a, lda, b, c, ldc, mask, load_c),
                            9 => tile::<9>(kc, a, lda, b, c, ldc, mask, load_c),
                            8 => tile::<8>(kc, a, lda, b, c, ldc, mask, load_c),
                            7 => tile::<7>(kc, a, lda, b, c, ldc, mask, load_c),
                            6 => tile::<6>(kc, a, lda, b, c, ldc, mask, load_c),
                            5 => tile::<5>(kc, a, lda, b, c, ldc, mask, load_c),
                            4 => tile::<4>(kc, a, lda, b, c, ldc, mask, load_c),
                            3 => tile::<3>(kc, a, lda, b, c, ldc, mask, load_c),
                            2 => tile::<2>(kc, a, lda, b, c, ldc, mask, load_c),
                            _ => tile::<1>(kc, a, lda, b, c, ldc, mask, load_c),
                        }
                    }
                }
                i += m;
            }
            k0 += kc;
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn run(&self, _rows: std::ops::Range<usize>, _panels: std::ops::Range<usize>) {
        unreachable!("packed products need AVX-512");
    }
}

/// One `M × 32` tile of C over depth `k`: `C = A · B` (`+ C` with `load_c`); `mask` says
/// which of the 32 columns exist.
///
/// # Safety
/// The CPU must have AVX-512F; `a` must address `M` rows of `k` elements at stride `lda`,
/// `b` `k` rows of 32 floats, and `c` `M` rows at stride `ldc` with the columns `mask` keeps,
/// not overlapping `a` or `b`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const M: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    mask: (u16, u16),
    load_c: bool,
) {
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
        // SAFETY: the masks keep the stores within the n columns of C.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    /// C = A · B with A m×k (stride lda) and B k×n (stride ldb), in f64.
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
    ) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                let av = a[i * lda + p] as f64;
                for j in 0..n {
                    c[i * n + j] += av * b[p * ldb + j] as f64;
                }
            }
        }
        c
    }

    fn assert_close(got: &[f32], want: &[f64], k: usize, what: &str) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-5 * (k as f64).sqrt() * (1.0 + w.abs());
            assert!(
                (g as f64 - w).abs() <= tol,
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn products_match_a_reference_at_every_edge() {
        if !available() {
            crate::simd::tests::skipped("AVX-512");
            return;
        }
        let mut shapes = 0;
        // Rows around the tile height, columns around the panel width, depths around KC.
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 0, 5),
            (5, 3, 7),
            (12, 32, 32),
            (13, 17, 33),
            (25, 64, 16),
            (24, 385, 48),
            (40, 800, 70),
            (64, 384, 1152),
            (128, 1536, 384),
        ] {
            let lda = k + 3;
            let a = rand(m * lda, 1);
            let bt = rand(n * k, 2); // (n, k): a weight
            let b: Vec<f32> = (0..k * n).map(|i| bt[(i % n) * k + i / n]).collect(); // k × n
            let want = reference(m, k, n, &a, lda, &b, n);
            let packed = PackedMatrix::from_weight(&bt, n, k);
            let mut c = vec![0f32; m * (n + 5)];
            for parallel in [false, true] {
                // SAFETY: available(); the buffers have the sizes the strides address.
                unsafe {
                    matmul(
                        m,
                        a.as_ptr(),
                        lda,
                        &packed,
                        c.as_mut_ptr(),
                        n + 5,
                        false,
                        parallel,
                    )
                };
                let got: Vec<f32> = c.chunks(n + 5).flat_map(|r| r[..n].to_vec()).collect();
                assert_close(&got, &want, k, &format!("{m}x{k}x{n} parallel={parallel}"));
                assert!(
                    c.chunks(n + 5).all(|r| r[n..].iter().all(|&v| v == 0.0)),
                    "wrote past n"
                );
            }
            // Accumulate adds to what is there; pack() of B itself gives the same product.
            let mut direct = PackedMatrix::default();
            direct.pack(&b, k, n, n);
            // SAFETY: as above.
            unsafe {
                matmul(
                    m,
                    a.as_ptr(),
                    lda,
                    &direct,
                    c.as_mut_ptr(),
                    n + 5,
                    true,
                    false,
                )
            };
            let got: Vec<f32> = c.chunks(n + 5).flat_map(|r| r[..n].to_vec()).collect();
            let twice: Vec<f64> = want.iter().map(|w| 2.0 * w).collect();
            assert_close(&got, &twice, k, &format!("{m}x{k}x{n} accumulate"));
            shapes += 1;
        }
        eprintln!(
            "ran: AVX-512 packed products, one thread, parallel and accumulating, {shapes} shapes"
        );
    }
}
