//! Shared pieces of the ingest benchmarks: timing loops, medians and the input manifest
//! written by `scripts/bench/make_inputs.py`. The binaries in `src/bin/` print one JSON
//! object each; `scripts/bench/report.py` turns them into `BENCHMARKS.md`.
//!
//! Architecture invariant: nothing depends on this crate; it is never shipped.

pub mod lambda_api;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One generated input file.
#[derive(Debug, Clone, Deserialize)]
pub struct InputFile {
    /// `20k`, `100k`, `300k`.
    pub name: String,
    pub path: String,
    pub bytes: u64,
    pub turns: u64,
    /// An analysis key for the file (it supplies the contact date).
    pub key: String,
    pub contact_id: String,
}

/// The manifest written by `make_inputs.py`.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub base: String,
    pub files: Vec<InputFile>,
}

impl Manifest {
    pub fn read(path: &Path) -> anyhow::Result<Manifest> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }
}

/// The median of `xs` (the mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> f64 {
    assert!(!xs.is_empty(), "median of nothing");
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `f` once to warm up, then repeatedly for at least `budget` and `min_iters` calls;
/// returns each call's time in seconds.
pub fn time_loop<T>(budget: Duration, min_iters: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    std::hint::black_box(f());
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < min_iters || start.elapsed() < budget {
        let t0 = Instant::now();
        std::hint::black_box(f());
        times.push(t0.elapsed().as_secs_f64());
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn time_loop_runs_at_least_min_iters() {
        let mut n = 0;
        let t = time_loop(Duration::ZERO, 5, || n += 1);
        assert_eq!(t.len(), 5);
        assert_eq!(n, 6);
    }
}
