//! GFLOP/s of the packed products against the `gemm` crate (`model::speed`) on MiniLM's
//! shapes (rows × depth × columns), each called as the model calls it: `cargo run --release
//! -p model --example matmul [THREADS]` (default 2). The two alternate for 15 rounds; a line
//! per shape gives the best and the median round of each, and their ratio. This is what
//! `model::speed::PACKED_MAX_ROWS` was chosen from. `BENCH_ISA=avx2` runs the AVX2 + FMA
//! kernel on an AVX-512 CPU (the `gemm` crate keeps its own choice, AVX-512 there).

use std::time::Instant;

use model::speed::{self, PackedRhs};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// GFLOP/s of `f` and `g`, timed alternately: (best, median) of each over 15 rounds.
fn time2(flops: f64, mut f: impl FnMut(), mut g: impl FnMut()) -> ((f64, f64), (f64, f64)) {
    f();
    g();
    let reps = ((5e8 / flops) as usize).max(1);
    let once = |h: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..reps {
            h();
        }
        flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        a.push(once(&mut f));
        b.push(once(&mut g));
    }
    let best = |v: &Vec<f64>| v.iter().copied().fold(0f64, f64::max);
    ((best(&a), median(a.clone())), (best(&b), median(b.clone())))
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .map_or(2, |s| s.parse().expect("threads"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("pool");
    if let Ok(isa) = std::env::var("BENCH_ISA") {
        speed::set_isa_ceiling(isa.parse().expect("BENCH_ISA"));
    }
    assert!(speed::packed_available(), "no packed product on this CPU");
    eprintln!("packed products on {:?}", speed::packed_isa());
    // (what, rows, depth, columns, lda): linear layers at 128 to 4096 rows, then attention's
    // per-head products at T = 128 and 512 (Q·Kᵀ with queries at stride 3H, P·V).
    let mut shapes = Vec::new();
    for rows in [128, 512, 1024, 2048, 4096] {
        // Stacked QKV, the first feed-forward layer, the second.
        shapes.push(("linear", rows, 384, 1152, 384));
        shapes.push(("linear", rows, 384, 1536, 384));
        shapes.push(("linear", rows, 1536, 384, 1536));
    }
    shapes.extend([
        ("QK^T", 128, 32, 128, 1152),
        ("PV", 128, 128, 32, 128),
        ("QK^T", 512, 32, 512, 1152),
        ("PV", 512, 512, 32, 512),
    ]);
    for (what, m, k, n, lda) in shapes {
        let a: Vec<f32> = (0..m * lda)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        // One output each, since the two closures are alive together.
        let (mut c_packed, mut c_gemm) = (vec![0f32; m * n], vec![0f32; m * n]);
        let flops = 2.0 * (m * n * k) as f64;
        let linear = what == "linear";
        let pw = PackedRhs::from_weight(&w, n, k);
        let mut scratch = PackedRhs::default();
        let (ours, theirs) = time2(
            flops,
            || {
                let b = if linear {
                    &pw
                } else {
                    scratch.pack_transposed(&w, n, k, k);
                    &scratch
                };
                speed::matmul_packed(m, &a, lda, b, &mut c_packed, linear);
            },
            || speed::matmul_gemm(m, &a, lda, &w, n, k, &mut c_gemm, linear),
        );
        println!(
            "{what:6} {m:5}x{k:5}x{n:5}: best packed {:6.1} gemm {:6.1} ({:.2}x); median packed {:6.1} gemm {:6.1} ({:.2}x) GFLOP/s",
            ours.0, theirs.0, ours.0 / theirs.0, ours.1, theirs.1, ours.1 / theirs.1
        );
    }
}
