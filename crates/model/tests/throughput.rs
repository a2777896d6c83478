//! Throughput of the MiniLM backbone (eval texts/s, one training step); `--ignored` only,
//! since timings need a quiet machine and the dev profile leaves this crate unoptimised.

mod common;

use std::time::Instant;

use candle_core::Device;
use model::nn::{Batch, Ctx};
use model::trainable::Trainable;
use model::weights::load_backbone;

#[test]
#[ignore = "benchmark: run with --ignored --nocapture on a quiet machine"]
fn minilm_throughput() {
    let Some(dir) = common::backbone_dir() else {
        return;
    };
    let (config, weights) = load_backbone(&dir, 6, 0).expect("backbone");
    let labels: Vec<String> = (0..6).map(|i| format!("l{i}")).collect();
    let model =
        model::encoder::SequenceClassifier::load(&weights, &config.encoder, 6).expect("model");
    let seqs: Vec<Vec<u32>> = (0..32)
        .map(|i| {
            (0..128)
                .map(|j| 1000 + ((i * 131 + j * 7) % 20000) as u32)
                .collect()
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&refs, 0, &Device::Cpu).expect("batch");
    let ctx = Ctx::eval();
    model.forward(&batch, &ctx).expect("warm-up");
    let t = Instant::now();
    let reps = 3;
    for _ in 0..reps {
        model.forward(&batch, &ctx).expect("forward");
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!("eval 32x128: {:.1} texts/s", (reps * 32) as f64 / secs);

    let trainable = Trainable::new(config, labels, &weights).expect("trainable");
    let refs16: Vec<&[u32]> = refs[..16].to_vec();
    let batch16 = Batch::new(&refs16, 0, &Device::Cpu).expect("batch");
    let targets: Vec<u32> = (0..16).map(|i| i % 6).collect();
    let ctx = Ctx::train(1, true);
    trainable
        .loss_and_grads(&batch16, &targets, &ctx, 1.0)
        .expect("warm-up");
    let t = Instant::now();
    trainable
        .loss_and_grads(&batch16, &targets, &ctx, 1.0)
        .expect("step");
    eprintln!(
        "train fwd+bwd 16x128 with dropout: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let ctx = Ctx::train(1, false);
    let t = Instant::now();
    trainable
        .loss_and_grads(&batch16, &targets, &ctx, 1.0)
        .expect("step");
    eprintln!(
        "train fwd+bwd 16x128 without dropout: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}
