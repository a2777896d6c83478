//! The safe way in to the crate's hand-written speed code, for benchmarks and tests.
//!
//! The fused kernels (`kernels`) and the packed products (`packed`) are private to the crate:
//! their products take raw pointers whose bounds only the crate's own callers keep. What the
//! rest of the workspace needs of them is here, safe: whether the packed products run, a
//! switch that turns them off (so that a test or benchmark can run the `gemm` crate's path on
//! a CPU with a packed kernel too and compare), a cap on the instruction sets (so that an
//! AVX-512 machine can run the AVX2 paths), and both products over slices whose bounds are
//! checked here. Nothing outside this crate needs `unsafe` to reach them.

use crate::kernels;
use crate::packed::{self, PackedMatrix};

/// Whether the packed products run in this process: the CPU has AVX-512, AVX2 + FMA or NEON
/// (within [`set_isa_ceiling`]) and [`set_packed_enabled`] did not turn them off. Where this
/// is false, inference and training multiply through the `gemm` crate.
pub fn packed_available() -> bool {
    packed::available()
}

/// The instruction set the packed products run on in this process (`"AVX-512"`,
/// `"AVX2+FMA"` or `"NEON"`), or `None` where [`packed_available`] is false.
pub fn packed_isa() -> Option<&'static str> {
    packed::isa().map(|isa| match isa {
        packed::Isa::Avx512 => "AVX-512",
        packed::Isa::Avx2 => "AVX2+FMA",
        packed::Isa::Neon => "NEON",
    })
}

/// Turns the packed products off (or on again) for the whole process, so that the `gemm`
/// crate's path runs where they would: for tests and benchmarks that compare the two.
/// Models keep their packed weights; they are simply not used while this is off.
pub fn set_packed_enabled(on: bool) {
    packed::set_enabled(on);
}

/// The widest instruction set the crate's own vector code (element-wise kernels, packed
/// products, the FMA peak) may use: [`set_isa_ceiling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IsaCeiling {
    /// Plain code (x86-64 baseline: SSE2).
    Baseline,
    /// AVX2 + FMA, as on AMD Zen 3 or an x86 Lambda without AVX-512.
    Avx2,
    /// AVX-512 where the CPU has it (no cap).
    Avx512,
}

impl std::str::FromStr for IsaCeiling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "baseline" => Ok(Self::Baseline),
            "avx2" => Ok(Self::Avx2),
            "avx512" => Ok(Self::Avx512),
            _ => Err(format!("{s:?}: expected baseline, avx2 or avx512")),
        }
    }
}

/// Caps the instruction sets the crate's own vector code uses, for the whole process, so that
/// a benchmark on an AVX-512 machine can run the AVX2 paths as an AVX2-only CPU would. It
/// cannot add what the CPU lacks, and it does not reach the `gemm` crate, which picks its own
/// kernels (AVX-512 where there is one): the products of training and of linear layers over
/// more than [`PACKED_MAX_ROWS`] rows.
pub fn set_isa_ceiling(ceiling: IsaCeiling) {
    crate::simd::set_ceiling(ceiling as u8);
}

/// Rows up to which a linear layer multiplies through the packed product where it runs;
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

/// `c = a · b` through the packed product (AVX-512, AVX2 + FMA or NEON): `a` is `m` rows of `b.k()` floats, `lda`
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
    let isa = packed::isa().expect(
        "the packed products need AVX-512, AVX2 + FMA or NEON (and set_packed_enabled(true))",
    );
    let (k, n) = (b.k(), b.n());
    assert!(holds(a.len(), m, k, lda), "a is too short for {m} rows");
    assert!(holds(c.len(), m, n, n), "c is too short for {m} × {n}");
    // SAFETY: isa from isa() (checked above); `a` holds m rows of k floats
    // at stride lda and `c` m rows of n at stride n (checked above), and `c`, borrowed
    // mutably, overlaps neither `a` nor `b`.
    unsafe {
        packed::matmul(
            isa,
            m,
            a.as_ptr(),
            lda,
            &b.0,
            c.as_mut_ptr(),
            n,
            false,
            parallel,
        )
    };
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

/// The fp32 multiply-add peak this CPU reaches on `threads` threads, measured: every thread
/// runs independent chains of fused multiply-adds on the widest vectors the crate uses here
/// (AVX-512, else AVX2+FMA) for about `seconds`. Answers GFLOP/s (a multiply-add is 2 FLOP)
/// and the instruction set; `None` where the crate has no vector path (e.g. aarch64 today).
/// The roofline's ceiling in `BENCHMARKS-MODEL.md`: a clock read from `/proc/cpuinfo` is not
/// the clock a loaded core runs at, nor does it say whether a vCPU is a whole core.
pub fn fma_peak_gflops(threads: usize, seconds: f64) -> Option<(f64, &'static str)> {
    #[cfg(target_arch = "x86_64")]
    {
        let (isa, lanes): (&'static str, usize) = if crate::simd::has_avx512() {
            ("AVX-512", 16)
        } else if crate::simd::has_avx2_fma() {
            ("AVX2+FMA", 8)
        } else {
            return None;
        };
        let rounds = |n: u64| -> f32 {
            if lanes == 16 {
                // SAFETY: has_avx512() said the CPU has AVX-512F.
                unsafe { fma_chains_avx512(n) }
            } else {
                // SAFETY: has_avx2_fma() said the CPU has AVX2 and FMA.
                unsafe { fma_chains_avx2(n) }
            }
        };
        // Calibrate one thread's rounds to about `seconds`.
        let mut n = 1u64 << 16;
        loop {
            let t = std::time::Instant::now();
            std::hint::black_box(rounds(n));
            if t.elapsed().as_secs_f64() > seconds / 8.0 || n > 1 << 40 {
                let per = t.elapsed().as_secs_f64() / n as f64;
                n = ((seconds / per) as u64).max(1);
                break;
            }
            n *= 4;
        }
        let t = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| std::hint::black_box(rounds(n)));
            }
        });
        let flops = threads.max(1) as f64 * n as f64 * (CHAINS * lanes * 2) as f64;
        Some((flops / t.elapsed().as_secs_f64() / 1e9, isa))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, seconds);
        None
    }
}

/// Independent accumulators: enough to cover the FMA latency (4 cycles) on two pipes.
const CHAINS: usize = 12;

/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains_avx512(n: u64) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm512_set1_ps(0.999_999);
    let add = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..n {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, mul, add);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(n: u64) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm256_set1_ps(0.999_999);
    let add = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..n {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, mul, add);
        }
    }
    let mut out = [0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
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
        let runs = crate::simd::tests::at_each_level(|| {
            let isa = packed::isa()?;
            let mut c = vec![f32::NAN; m * n];
            matmul_packed(m, &a, lda, &PackedRhs::from_weight(&w, n, k), &mut c, true);
            assert_eq!(c, want, "packed on {isa:?}");
            Some(isa)
        });
        let ran: Vec<_> = runs.into_iter().filter_map(|r| r.1).collect();
        if ran.is_empty() {
            crate::simd::tests::skipped("AVX2+FMA");
        }
        eprintln!("ran: gemm, packed on {ran:?}");
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn a_short_output_panics_instead_of_writing_past_it() {
        let (a, w) = (vec![1f32; 4 * 3], vec![1f32; 2 * 3]);
        matmul_gemm(4, &a, 3, &w, 2, 3, &mut [0f32; 7], false);
    }

    #[test]
    fn the_fma_peak_is_measured_where_there_is_a_vector_path() {
        match fma_peak_gflops(1, 0.05) {
            Some((gflops, isa)) => {
                eprintln!("ran: fp32 FMA peak, one thread, {isa}: {gflops:.1} GFLOP/s");
                assert!(gflops > 1.0, "{gflops} GFLOP/s");
            }
            None => eprintln!("skipped: no vector path on this CPU"),
        }
    }
}
