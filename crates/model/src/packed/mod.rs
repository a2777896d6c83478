//! Matrix products over a right-hand side packed into panels of 32 columns, with one tile
//! kernel per instruction set: AVX-512 (`avx512.rs`), AVX2 + FMA (`avx2.rs`) and aarch64 NEON
//! (`neon.rs`), chosen at run time ([`isa`]).
//!
//! `C (m × n) = A (m × k) · B (k × n)` with A read in place (any row stride) and B packed:
//! panel `j` holds columns `32j .. 32j + 32` as k rows of 32 floats, zero-padded past `n`,
//! each row two aligned cache lines. A tile of C stays in vector registers while k runs: on
//! AVX-512, 12 rows × a whole panel; on AVX2 and NEON (16 and 32 registers of 4 or 8 floats),
//! 6 rows × half a panel, the two halves one after the other. The depth is cut into passes of
//! [`KC`]; within a pass, a tile's rows of A stay in L1 while the panels stream past from L2,
//! fetched [`PREFETCH`] rows ahead. Threads split the panels between them. The packing is the
//! same for every kernel, so a model packs its weights once whatever the CPU.
//!
//! Inference packs a linear layer's weights once, when the model is loaded
//! ([`PackedMatrix::from_weight`]), where the `gemm` crate packs them again on every call,
//! and uses them for products of few rows (one sequence, a few short ones), where that
//! packing weighs most; attention packs one head's keys and values per call, which is cheap
//! beside the T × T products they feed. The `gemm` crate takes the large products, the CPUs
//! with none of these instruction sets, and training's backward pass.
//!
//! Everything here is only reached with an [`Isa`] that [`isa`] gave.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

/// Columns per panel: two AVX-512 registers of f32.
pub const NR: usize = 32;
/// Columns per AVX2 or NEON tile: half a panel.
const HALF: usize = NR / 2;
/// Depth per pass: a tile's rows of A (at most 12 × 256 floats, 12 KiB) stay in L1 while
/// the panels stream by.
const KC: usize = 256;
/// Rows of a panel fetched ahead of the one being multiplied (two cache lines each).
const PREFETCH: usize = 8;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_WORK: usize = 1 << 20;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the packed products off (or on again) for the whole process, so that the `gemm`
/// crate's path runs on these CPUs too: for tests and benchmarks that compare the two.
/// Models keep their packed weights; they are simply not used while this is off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The instruction set a packed product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 (F, BW, DQ, VL) with AVX2, FMA and BMI2: `avx512::tile`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
    /// AVX2, FMA and BMI2: `avx2::tile`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// aarch64 NEON (every aarch64 CPU): `neon::tile`.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    Neon,
}

impl Isa {
    /// Rows of C per tile.
    fn rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::MR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::MR,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => neon::MR,
            #[allow(unreachable_patterns)]
            _ => unreachable!("{self:?} is not an instruction set of this architecture"),
        }
    }
}

/// The widest instruction set the packed products have a kernel for on this CPU (as
/// [`crate::simd`] sees it on this thread), or `None` where they do not run: no such
/// instruction set, or [`set_enabled`] turned them off. Callers choose once per product, on
/// their own thread, and pass the answer to [`matmul`].
pub fn isa() -> Option<Isa> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::has_avx512() {
            Some(Isa::Avx512)
        } else if crate::simd::has_avx2_fma() {
            Some(Isa::Avx2)
        } else {
            None
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        Some(Isa::Neon)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// Whether the packed products run here ([`isa`] has one).
pub fn available() -> bool {
    isa().is_some()
}

/// Writes `part` to `c` (or adds it with `load_c`): the last columns of a tile narrower than
/// its registers.
///
/// # Safety
/// `c` must address `part.len()` floats not overlapping `part`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn store_part(part: &[f32], c: *mut f32, load_c: bool) {
    for (i, &v) in part.iter().enumerate() {
        // SAFETY: i < part.len(), which the caller promised c holds.
        unsafe {
            let dst = c.add(i);
            *dst = if load_c { *dst + v } else { v };
        }
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
/// `accumulate`, on the tile kernel of `isa`; split over the rayon pool when `parallel` and
/// the product is large enough (by panels, or by rows when there are fewer panels than
/// threads). Every element of C is written, and without `accumulate` none is read first, so C
/// may start uninitialised.
///
/// # Safety
/// `isa` must come from [`isa`]; `a` must address `m` rows of `b.k()` elements at stride
/// `lda`, and `c` `m` rows of `b.n()` at stride `ldc`, not overlapping `a`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    isa: Isa,
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
        isa,
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
        let mr = isa.rows();
        let per = m.div_ceil(mr).div_ceil(threads) * mr;
        (0..m.div_ceil(per)).into_par_iter().for_each(|t| {
            let job = &job;
            // SAFETY: as promised by the caller; tasks write disjoint rows of C.
            unsafe { job.0.run(t * per..((t + 1) * per).min(m), 0..panels) };
        });
    }
}

/// One product's operands.
struct Job<'a> {
    isa: Isa,
    a: *const f32,
    lda: usize,
    b: &'a PackedMatrix,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

/// `module::tile::<M>(args)` for the `M` (one of `rows`) that `m` names: the tile kernels
/// take their height as a constant, so that the accumulators are registers.
macro_rules! by_rows {
    ($m:expr, $module:ident, $args:tt, [$($rows:literal)*]) => {
        match $m {
            $($rows => $module::tile::<$rows> $args,)*
            _ => unreachable!("a tile of {} rows", $m),
        }
    };
}

impl Job<'_> {
    /// The product restricted to `rows` of A and C and `panels` of B.
    ///
    /// # Safety
    /// As [`matmul`]'s, for these rows and panels.
    unsafe fn run(&self, rows: std::ops::Range<usize>, panels: std::ops::Range<usize>) {
        let (k, n, mr) = (self.b.k, self.b.n, self.isa.rows());
        let (lda, ldc, isa) = (self.lda, self.ldc, self.isa);
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let load_c = self.accumulate || k0 > 0;
            let mut i = rows.start;
            while i < rows.end {
                let m = mr.min(rows.end - i);
                // SAFETY: rows i..i+m of A from column k0 on, as the caller promised.
                let a = unsafe { self.a.add(i * lda + k0) };
                for j in panels.clone() {
                    let cols = NR.min(n - j * NR);
                    // SAFETY: panel j holds k × NR floats; rows i..i+m of C, its `cols`
                    // columns from j·NR, as the caller promised; `isa` came from `isa()`,
                    // so the CPU has what its kernel is compiled for.
                    unsafe {
                        let b = self.b.floats().as_ptr().add(j * k * NR + k0 * NR);
                        let c = self.c.add(i * ldc + j * NR);
                        tiles(isa, m, kc, a, lda, b, c, ldc, cols, load_c);
                    }
                }
                i += m;
            }
            k0 += kc;
        }
    }
}

/// One tile of `m` rows over one panel of `cols` columns (`≤ NR`), on `isa`'s kernel: one
/// call on AVX-512, one per half panel holding columns on AVX2 and NEON.
///
/// # Safety
/// As the tile kernels', with `b` a whole panel (row stride [`NR`]); `isa` from [`isa`].
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tiles(
    isa: Isa,
    m: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    load_c: bool,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's bounds, for a whole panel.
        Isa::Avx512 => unsafe {
            by_rows!(m, avx512, (k, a, lda, b, c, ldc, cols, load_c), [1 2 3 4 5 6 7 8 9 10 11 12])
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            for h in (0..cols).step_by(HALF) {
                let w = HALF.min(cols - h);
                let (b, c) = (b.wrapping_add(h), c.wrapping_add(h));
                // SAFETY: the caller's bounds; the half panel from column h holds w columns
                // of C, h + w <= cols.
                unsafe { by_rows!(m, avx2, (k, a, lda, b, c, ldc, w, load_c), [1 2 3 4 5 6]) }
            }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            for h in (0..cols).step_by(HALF) {
                let w = HALF.min(cols - h);
                let (b, c) = (b.wrapping_add(h), c.wrapping_add(h));
                // SAFETY: the caller's bounds; the half panel from column h holds w columns
                // of C, h + w <= cols.
                unsafe { by_rows!(m, neon, (k, a, lda, b, c, ldc, w, load_c), [1 2 3 4 5 6]) }
            }
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("{isa:?} is not an instruction set of this architecture"),
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
    fn products_match_a_reference_at_every_edge_on_every_instruction_set() {
        let runs = crate::simd::tests::at_each_level(|| {
            let isa = isa()?;
            check_shapes(isa);
            Some(isa)
        });
        let ran: Vec<Isa> = runs.iter().filter_map(|r| r.1).collect();
        eprintln!("ran: packed products on {ran:?}");
        #[cfg(target_arch = "x86_64")]
        for (isa, name) in [(Isa::Avx2, "AVX2+FMA"), (Isa::Avx512, "AVX-512")] {
            if !ran.contains(&isa) {
                crate::simd::tests::skipped(name);
            }
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(ran, [Isa::Neon], "NEON is on every aarch64 CPU");
    }

    /// Every edge shape through `isa`'s kernel: one thread, parallel, accumulating.
    fn check_shapes(isa: Isa) {
        // Rows around the tile heights, columns around the panel and half-panel widths,
        // depths around KC.
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 0, 5),
            (5, 3, 7),
            (6, 9, 16),
            (7, 5, 17),
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
                // SAFETY: isa from isa(); the buffers have the sizes the strides address.
                unsafe {
                    matmul(
                        isa,
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
                let what = format!("{isa:?} {m}x{k}x{n} parallel={parallel}");
                assert_close(&got, &want, k, &what);
                assert!(
                    c.chunks(n + 5).all(|r| r[n..].iter().all(|&v| v == 0.0)),
                    "{what}: wrote past n"
                );
            }
            // Accumulate adds to what is there; pack() of B itself gives the same product.
            let mut direct = PackedMatrix::default();
            direct.pack(&b, k, n, n);
            // SAFETY: as above.
            unsafe {
                matmul(
                    isa,
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
            assert_close(&got, &twice, k, &format!("{isa:?} {m}x{k}x{n} accumulate"));
        }
    }
}
