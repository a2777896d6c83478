//! Multiple-instance learning on a synthetic bag: two windows of generic talk and one
//! decisive window, labelled as a whole. The pooled prediction must come from the decisive
//! window, the gradient must reach it, and training on the bag must teach the decisive
//! window its label. Tiny random BERT from `../shared/parity`.

// One bag of windows `0..3` is what the tests mean.
#![allow(clippy::single_range_in_vec_init)]

mod common;

use candle_core::{Device, IndexOp, Tensor};
use model::nn::{Batch, Ctx};
use model::optim::AdamWParams;
use model::trainable::{pool_max_log_prob, Trainable};
use model::weights::load_classifier;

const EMBEDDINGS: &str = "bert.embeddings.word_embeddings.weight";

fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let z: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    row.iter().map(|&x| x - max - z.ln()).collect()
}

/// Per-window log-probabilities of `windows` (dropout off).
fn window_log_probs(model: &Trainable, windows: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let seqs: Vec<&[u32]> = windows.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&seqs, 0, &Device::Cpu).expect("batch");
    let logits: Vec<Vec<f32>> = model
        .forward(&batch, &Ctx::train(1, false))
        .expect("forward")
        .to_vec2()
        .expect("vec");
    logits.iter().map(|l| log_softmax(l)).collect()
}

/// Gradient magnitude of the embedding rows of `ids`.
fn embedding_grad(grads: &std::collections::HashMap<String, Tensor>, ids: &[u32]) -> f32 {
    let g = grads.get(EMBEDDINGS).expect("embedding gradient");
    ids.iter()
        .map(|&i| {
            g.i(i as usize)
                .expect("row")
                .abs()
                .expect("abs")
                .sum_all()
                .expect("sum")
                .to_scalar::<f32>()
                .expect("scalar")
        })
        .sum()
}

#[test]
fn the_decisive_window_decides_the_bag_and_learns_from_its_label() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (config, weights) = load_classifier(&shared.join("parity/tiny-bert")).expect("load");
    let labels = config.labels.clone();
    let model = Trainable::new(config, labels.clone(), &weights).expect("trainable");
    // [CLS] … [SEP] windows; the generic ones share no token with the decisive one.
    let generic_a: Vec<u32> = vec![101, 7592, 1998, 4067, 2017, 2005, 4214, 102];
    let generic_b: Vec<u32> = vec![101, 3531, 2907, 1996, 2240, 2096, 1045, 102];
    // Several candidate decisive windows: take the first one that the untrained model already
    // hears loudest for some label (by a hair: its outputs hardly depend on the input), and
    // that label as the bag's.
    let (decisive, label) = (0u32..20)
        .find_map(|k| {
            let d: Vec<u32> = vec![101, 5000 + 3 * k, 5001 + 3 * k, 5002 + 3 * k, 102];
            let lp = window_log_probs(&model, &[generic_a.clone(), d.clone(), generic_b.clone()]);
            (0..labels.len())
                .map(|c| (c, lp[1][c] - lp[0][c].max(lp[2][c])))
                .filter(|&(_, margin)| margin > 1e-6)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(c, _)| (d, c))
        })
        .expect("a decisive window that wins some label");
    let windows = vec![generic_a.clone(), decisive.clone(), generic_b.clone()];
    let seqs: Vec<&[u32]> = windows.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&seqs, 0, &Device::Cpu).expect("batch");
    let ctx = Ctx::train(1, false);

    // The pooling: per label, the largest window log-probability; the label's comes from the
    // decisive window.
    let lp = window_log_probs(&model, &windows);
    let logits = model.forward(&batch, &ctx).expect("forward");
    let pooled: Vec<Vec<f32>> = pool_max_log_prob(&logits, &[0..3])
        .expect("pool")
        .to_vec2()
        .expect("vec");
    for c in 0..labels.len() {
        let best = lp.iter().map(|w| w[c]).fold(f32::NEG_INFINITY, f32::max);
        assert!(
            (pooled[0][c] - best).abs() < 1e-5,
            "label {c}: {pooled:?} vs {lp:?}"
        );
    }
    assert!((pooled[0][label] - lp[1][label]).abs() < 1e-5);

    // The gradient reaches the decisive window's tokens, and only through the bag that holds it.
    let content: Vec<u32> = decisive[1..decisive.len() - 1].to_vec();
    let (_, grads) = model
        .bag_loss_and_grads(&batch, &[0..3], &[label as u32], &ctx, 1.0)
        .expect("backward");
    assert!(
        embedding_grad(&grads, &content) > 0.0,
        "no gradient reaches the decisive window"
    );
    let without: Vec<&[u32]> = vec![&generic_a, &generic_b];
    let batch_without = Batch::new(&without, 0, &Device::Cpu).expect("batch");
    let (_, grads) = model
        .bag_loss_and_grads(&batch_without, &[0..2], &[label as u32], &ctx, 1.0)
        .expect("backward");
    assert_eq!(embedding_grad(&grads, &content), 0.0);

    // Training on the bag's label alone teaches the decisive window that label.
    let before = lp[1][label];
    let mut opt = model
        .optimizer(
            AdamWParams {
                lr: 1e-3,
                ..AdamWParams::default()
            },
            |_| false,
        )
        .expect("optimizer");
    for _ in 0..20 {
        let (_, grads) = model
            .bag_loss_and_grads(&batch, &[0..3], &[label as u32], &ctx, 1.0)
            .expect("backward");
        opt.step(&grads).expect("step");
    }
    let after = window_log_probs(&model, &windows);
    assert!(
        after[1][label] > before + 0.3,
        "the decisive window's log-probability of its label went from {before} to {}",
        after[1][label]
    );
}
