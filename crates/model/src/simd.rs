//! Element-wise loops compiled for the widest vector unit the CPU has.
//!
//! The crate is built for the baseline x86-64 (SSE2), so a plain loop vectorises four lanes
//! wide. [`multiversion!`] compiles a function body three times, for AVX-512, for AVX2 + FMA
//! and for the baseline, and picks one at run time (`is_x86_feature_detected!`, cached by
//! std), so the same binary runs everywhere and uses 16 lanes where it can. The reductions
//! here keep one accumulator per lane, since a float sum or max in a single accumulator is a
//! dependency chain the compiler may not reorder.

/// Defines `fn $name(args) -> ret` whose body is compiled for AVX-512, AVX2 + FMA and the
/// baseline, dispatched at run time. Call only `#[inline(always)]` helpers inside it, so that
/// they are compiled with the same instruction set.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2")]
                fn v4($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                #[target_feature(enable = "avx2,fma,bmi2")]
                fn v3($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                if $crate::simd::has_avx512() {
                    // SAFETY: the CPU has every feature v4 is compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: the CPU has every feature v3 is compiled for.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// The widest level ([`has_avx2_fma`] 1, [`has_avx512`] 2) the crate's own vector code may
/// use in this process: all there is unless [`set_ceiling`] lowered it.
static CEILING: AtomicU8 = AtomicU8::new(u8::MAX);

/// Caps the instruction sets the crate's own vector code uses in this whole process (0 the
/// baseline, 1 AVX2 + FMA, 2 AVX-512), so that a benchmark can run an AVX-512 machine as an
/// AVX2-only one. It cannot add what the CPU lacks.
pub(crate) fn set_ceiling(level: u8) {
    CEILING.store(level, Ordering::Relaxed);
}

/// This thread's ceiling: the process's ([`set_ceiling`]), and in tests the lower of that
/// and the thread's own ([`tests::at_each_level`]).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline]
fn ceiling() -> u8 {
    let level = CEILING.load(Ordering::Relaxed);
    #[cfg(test)]
    let level = level.min(tests::ceiling());
    level
}

/// AVX-512 (F, BW, DQ, VL), AVX2, FMA and BMI2 are all present.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx512() -> bool {
    if ceiling() < 2 {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && has_avx2_fma()
}

/// AVX2, FMA and BMI2 are all present.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    if ceiling() < 1 {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("bmi2")
}

use std::sync::atomic::{AtomicU8, Ordering};

/// Lanes of the reductions below: one AVX-512 register of f32.
const LANES: usize = 16;

/// Sum of `xs` with one accumulator per lane (vectorises; the order of additions differs
/// from a left-to-right sum by float rounding only).
#[inline(always)]
pub(crate) fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Largest element of `xs` (`-inf` when empty; NaNs are ignored unless all are NaN).
#[inline(always)]
pub(crate) fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// Dot product of `a` and `b` (the shorter length), one accumulator per lane.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, &u), &v) in acc.iter_mut().zip(x).zip(y) {
            *s += u * v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static CEILING: Cell<u8> = const { Cell::new(u8::MAX) };
    }

    /// The widest instruction set this thread's multiversioned calls may use.
    pub(crate) fn ceiling() -> u8 {
        CEILING.with(Cell::get)
    }

    /// The environment variable that turns a skipped instruction set into a failure: set it
    /// to `1` where the tests must exercise the AVX-512 paths (a CI machine known to have
    /// AVX-512), so that a CPU without it cannot pass them by running less.
    pub(crate) const REQUIRE_AVX512: &str = "CALLTYPE_REQUIRE_AVX512";

    /// Reports a path a test did not run because this CPU lacks `what` (e.g. `"AVX-512"`):
    /// prints `skipped: no {what} on this CPU`, or fails the test when
    /// [`REQUIRE_AVX512`]` = 1` (every path we have needs at most AVX-512).
    pub(crate) fn skipped(what: &str) {
        let required = std::env::var(REQUIRE_AVX512).is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{REQUIRE_AVX512}=1, but there is no {what} on this CPU"
        );
        eprintln!("skipped: no {what} on this CPU");
    }

    /// The name of an instruction-set level of [`at_each_level`].
    pub(crate) fn level_name(level: u8) -> &'static str {
        match level {
            0 => "baseline",
            1 => "AVX2+FMA",
            _ => "AVX-512",
        }
    }

    /// Prints which levels a test ran (`levels`, from [`at_each_level`]) and reports each one
    /// it could not ([`skipped`]).
    pub(crate) fn report_levels(levels: &[u8]) {
        let ran: Vec<&str> = levels.iter().map(|&l| level_name(l)).collect();
        eprintln!("ran: {}", ran.join(", "));
        for level in 0..=2u8 {
            if !levels.contains(&level) {
                skipped(level_name(level));
            }
        }
    }

    /// Runs `f` once for each instruction set this CPU has, on this thread: 0 the baseline,
    /// 1 AVX2 + FMA, 2 AVX-512; gives the levels run and their results. Tests pass the levels
    /// to [`report_levels`], so that a CPU without AVX-512 says what it skipped.
    pub(crate) fn at_each_level<R>(mut f: impl FnMut() -> R) -> Vec<(u8, R)> {
        let mut out = Vec::new();
        for level in 0..=2u8 {
            CEILING.with(|c| c.set(level));
            let supported = match level {
                0 => true,
                #[cfg(target_arch = "x86_64")]
                1 => has_avx2_fma(),
                #[cfg(target_arch = "x86_64")]
                _ => has_avx512(),
                #[cfg(not(target_arch = "x86_64"))]
                _ => false,
            };
            if supported {
                out.push((level, f()));
            }
        }
        CEILING.with(|c| c.set(u8::MAX));
        out
    }

    multiversion! {
        fn sum_and_max(xs: &[f32]) -> (f32, f32) {
            (sum(xs), max(xs))
        }
    }

    #[test]
    fn reductions_match_scalar_loops_at_every_level() {
        let mut levels = Vec::new();
        for n in [0usize, 1, 15, 16, 17, 100, 1000] {
            let xs: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let ys: Vec<f32> = (0..n)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 3.0)
                .collect();
            let runs = at_each_level(|| sum_and_max(&xs));
            levels = runs.iter().map(|r| r.0).collect();
            assert!(
                runs.iter().all(|(_, r)| *r == runs[0].1),
                "levels differ: {runs:?}"
            );
            let (s, m) = sum_and_max(&xs);
            let want_s: f32 = xs.iter().sum();
            let want_m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert!(
                (s - want_s).abs() <= 1e-4 * (1.0 + want_s.abs()),
                "sum n={n}"
            );
            assert_eq!(m, want_m, "max n={n}");
            let want_d: f32 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
            assert!(
                (dot(&xs, &ys) - want_d).abs() <= 1e-3 * (1.0 + want_d.abs()),
                "dot n={n}"
            );
        }
        report_levels(&levels);
    }
}
