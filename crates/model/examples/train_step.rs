//! Times forward + backward + AdamW steps of a backbone on a synthetic batch, for profiling
//! the train path: `cargo run --release -p model --example train_step -- DIR [BATCH] [TOKENS]
//! [STEPS]`. Prints the median seconds per phase.
//! `TRAIN_STEP_MALLOC=glibc` leaves glibc's allocator settings alone (see `model::alloc`).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use model::nn::{Batch, Ctx};
use model::optim::{decays, AdamWParams};
use model::rng::Rng;
use model::trainable::Trainable;
use model::weights::load_backbone;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: train_step DIR [B] [T] [STEPS]")?,
    );
    let b: usize = args.get(1).map_or(Ok(16), |s| s.parse())?;
    let t: usize = args.get(2).map_or(Ok(128), |s| s.parse())?;
    let steps: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    // As `calltype train` does; TRAIN_STEP_MALLOC=glibc keeps the allocator's defaults.
    if std::env::var("TRAIN_STEP_MALLOC").as_deref() != Ok("glibc") {
        model::keep_freed_memory();
    }
    let labels: Vec<String> = (0..6).map(|i| format!("l{i}")).collect();
    let (config, weights) = load_backbone(&dir, labels.len(), 1)?;
    let model = Trainable::new(config.clone(), labels, &weights)?;
    let mut opt = model.optimizer(
        AdamWParams {
            lr: 5e-5,
            ..AdamWParams::default()
        },
        decays,
    )?;
    let mut rng = Rng::new(3);
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|_| {
            (0..t)
                .map(|_| 1000 + rng.below(20000) as u32)
                .collect::<Vec<_>>()
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&refs, 0, &Device::Cpu)?;
    let targets: Vec<u32> = (0..b as u32).map(|i| i % 6).collect();
    let ctx = Ctx::train(9, true);
    let mut fwd = Vec::new();
    let mut total = Vec::new();
    for _ in 0..steps {
        let t0 = Instant::now();
        let logits = model.forward(&batch, &ctx)?;
        let _ = logits.sum_all()?.to_scalar::<f32>()?;
        fwd.push(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        let (_, grads) = model.loss_and_grads(&batch, &targets, &ctx, 1.0)?;
        opt.step(&grads)?;
        total.push(t1.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "batch {b} x {t}: forward {:.3} s, forward+backward+step {:.3} s ({:.2} ex/s)",
        median(&mut fwd),
        median(&mut total),
        b as f64 / median(&mut total.clone())
    );
    Ok(())
}
