//! Parity with Hugging Face transformers + PyTorch on the tiny random classifiers in
//! `../shared/parity` (token ids, eval logits, padded batch, one training step).

mod common;

use std::path::Path;

use candle_core::Device;
use model::nn::{Batch, Ctx};
use model::optim::AdamWParams;
use model::speed::IsaCeiling;
use model::tokenize::TextEncoder;
use model::trainable::Trainable;
use model::weights::load_classifier;
use serde_json::Value;

fn reference(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("valid reference.json")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

struct Case {
    ids: Vec<u32>,
    logits: Vec<f32>,
}

fn cases(dir: &Path, r: &Value) -> Vec<Case> {
    let enc = TextEncoder::load(dir).expect("tokenizer");
    r["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let mut ids = enc
                .encode_full(c["text"].as_str().expect("text"))
                .expect("encode");
            if ids.len() > 512 {
                let sep = *ids.last().expect("sep");
                ids.truncate(511);
                ids.push(sep);
            }
            let expected: Vec<u32> = c["input_ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|x| x.as_u64().expect("id") as u32)
                .collect();
            assert_eq!(ids, expected, "token ids of {:?}", c["text"]);
            Case {
                ids,
                logits: f32s(&c["logits"]),
            }
        })
        .collect()
}

fn eval_parity(name: &str) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("parity").join(name);
    let r = reference(&dir);
    let cases = cases(&dir, &r);
    let (config, weights) = load_classifier(&dir).expect("load");
    let load = || {
        model::encoder::SequenceClassifier::load(&weights, &config.encoder, config.labels.len())
            .expect("build")
    };
    let loaded = load();
    let mut prepared = load();
    prepared.prepare_inference().expect("prepare");
    // As loaded (weights packed per call where the packed products run), prepared for
    // inference (stacked and packed once, as `Classifier` runs), and prepared with the packed
    // products off (the `gemm` crate's path); each on every instruction set this CPU has (the
    // AVX2 + FMA paths run on AVX-512 CPUs too, capped). The caps are process-wide: one test
    // at a time goes through them.
    static PATHS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    let mut ran = Vec::new();
    for ceiling in [IsaCeiling::Avx512, IsaCeiling::Avx2, IsaCeiling::Baseline] {
        model::speed::set_isa_ceiling(ceiling);
        model::speed::set_packed_enabled(true);
        let isa = model::speed::packed_isa();
        if ran.contains(&isa) {
            continue;
        }
        ran.push(isa);
        for (what, model, packed) in [
            ("as loaded", &loaded, true),
            ("prepared", &prepared, true),
            ("prepared, gemm path", &prepared, false),
        ] {
            model::speed::set_packed_enabled(packed);
            let path = isa.unwrap_or("no packed kernel");
            eval_parity_of(&format!("{name} ({what}, {path})"), model, &cases, &r);
        }
    }
    model::speed::set_packed_enabled(true);
    model::speed::set_isa_ceiling(IsaCeiling::Avx512);
    eprintln!("ran: {name} with the packed products on {ran:?}, and the gemm path");
    if cfg!(target_arch = "x86_64") {
        for isa in ["AVX-512", "AVX2+FMA"] {
            if !ran.contains(&Some(isa)) {
                assert!(
                    !std::env::var("CALLTYPE_REQUIRE_AVX512").is_ok_and(|v| v == "1"),
                    "CALLTYPE_REQUIRE_AVX512=1, but there is no {isa} on this CPU"
                );
                eprintln!("skipped: no {isa} on this CPU ({name}: its packed products)");
            }
        }
    }
}

fn eval_parity_of(
    name: &str,
    model: &model::encoder::SequenceClassifier,
    cases: &[Case],
    r: &Value,
) {
    let ctx = Ctx::eval();
    let mut worst = 0f32;
    for c in cases {
        let batch = Batch::new(&[&c.ids], 0, &Device::Cpu).expect("batch");
        let logits: Vec<f32> = model
            .forward(&batch, &ctx)
            .expect("forward")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec");
        let d = max_abs_diff(&logits, &c.logits);
        assert!(d < 1e-4, "{name}: logits differ by {d}");
        worst = worst.max(d);
    }
    let seqs: Vec<&[u32]> = cases.iter().map(|c| c.ids.as_slice()).collect();
    let batch = Batch::new(&seqs, 0, &Device::Cpu).expect("batch");
    let got: Vec<Vec<f32>> = model
        .forward(&batch, &ctx)
        .expect("forward")
        .to_vec2()
        .expect("vec");
    let mut worst_batch = 0f32;
    for (row, want) in got
        .iter()
        .zip(r["padded_batch_logits"].as_array().expect("rows"))
    {
        let d = max_abs_diff(row, &f32s(want));
        assert!(d < 1e-4, "{name}: padded batch logits differ by {d}");
        worst_batch = worst_batch.max(d);
    }
    // The head reads the first token's state, which eval mode computes alone in the last
    // layer: it must equal the full pass's first row.
    let full = model.encoder().forward(&batch, &ctx).expect("full pass");
    let first = model
        .encoder()
        .forward_first(&batch, &ctx)
        .expect("first token");
    let full: Vec<f32> = full
        .narrow(1, 0, 1)
        .and_then(|x| x.flatten_all())
        .and_then(|x| x.to_vec1())
        .expect("rows");
    let first: Vec<f32> = first.flatten_all().and_then(|x| x.to_vec1()).expect("rows");
    let d_first = max_abs_diff(&full, &first);
    assert!(
        d_first < 1e-5,
        "{name}: first-token pass differs by {d_first}"
    );
    eprintln!(
        "{name}: eval logits max abs diff {worst:.3e}, padded batch {worst_batch:.3e}, \
         first token vs full pass {d_first:.3e}"
    );
}

fn train_step_parity(name: &str) {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("parity").join(name);
    let r = reference(&dir);
    let cases = cases(&dir, &r);
    let ts = &r["train_step"];
    let idx: Vec<usize> = ts["case_indices"]
        .as_array()
        .expect("indices")
        .iter()
        .map(|x| x.as_u64().expect("index") as usize)
        .collect();
    let labels: Vec<u32> = ts["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|x| x.as_u64().expect("label") as u32)
        .collect();
    let seqs: Vec<&[u32]> = idx.iter().map(|&i| cases[i].ids.as_slice()).collect();
    let batch = Batch::new(&seqs, 0, &Device::Cpu).expect("batch");

    let (config, weights) = load_classifier(&dir).expect("load");
    let labels_txt = config.labels.clone();
    let model = Trainable::new(config, labels_txt, &weights).expect("trainable");
    let ctx = Ctx::train(0, false);
    let (loss, grads) = model
        .loss_and_grads(&batch, &labels, &ctx, 1.0)
        .expect("backward");
    let want_loss = ts["loss"].as_f64().expect("loss") as f32;
    let dl = (loss - want_loss).abs();
    assert!(dl < 1e-4, "{name}: loss {loss} vs {want_loss}");

    let norms = ts["grad_l2_norm"].as_object().expect("norms");
    assert_eq!(norms.len(), model.names().count(), "parameter count");
    let mut worst_rel = 0f64;
    let mut worst_abs = 0f64;
    for (pname, want) in norms {
        let want = want.as_f64().expect("norm");
        let g = grads
            .get(pname)
            .unwrap_or_else(|| panic!("{name}: no gradient for {pname}"));
        let got = g
            .sqr()
            .and_then(|x| x.sum_all())
            .and_then(|x| x.to_scalar::<f32>())
            .expect("norm")
            .sqrt() as f64;
        let diff = (got - want).abs();
        // The reference is rounded to 7 decimals: allow that rounding on top of 1e-3 relative.
        assert!(
            diff <= 1e-3 * want.abs() + 5e-8,
            "{name}: grad norm of {pname}: {got} vs {want}"
        );
        worst_abs = worst_abs.max(diff);
        if want.abs() > 1e-4 {
            worst_rel = worst_rel.max(diff / want.abs());
        }
    }

    let hp = &ts["adamw"];
    let betas = f32s(&hp["betas"]);
    let params = AdamWParams {
        lr: hp["lr"].as_f64().expect("lr"),
        beta1: betas[0] as f64,
        beta2: betas[1] as f64,
        eps: hp["eps"].as_f64().expect("eps"),
        weight_decay: hp["weight_decay"].as_f64().expect("wd"),
    };
    let mut opt = model.optimizer(params, |_| true).expect("optimizer");
    opt.step(&grads).expect("step");
    let (loss2, _) = model
        .loss_and_grads(&batch, &labels, &ctx, 1.0)
        .expect("second forward");
    let want2 = ts["loss_after_one_step"].as_f64().expect("loss after") as f32;
    let dl2 = (loss2 - want2).abs();
    assert!(dl2 < 1e-4, "{name}: loss after one step {loss2} vs {want2}");
    eprintln!(
        "{name}: loss diff {dl:.3e}; grad norm max rel diff (norms > 1e-4) {worst_rel:.3e}, max abs {worst_abs:.3e}; loss after AdamW diff {dl2:.3e}"
    );
}

/// The parity model `name` as a [`Trainable`] and a batch of its first four cases; `None`
/// (skip) without ../shared.
fn first_four_cases(name: &str) -> Option<(Batch, Trainable)> {
    let dir = common::shared_dir()?.join("parity").join(name);
    let r = reference(&dir);
    let cases = cases(&dir, &r);
    let seqs: Vec<&[u32]> = cases[..4].iter().map(|c| c.ids.as_slice()).collect();
    let batch = Batch::new(&seqs, 0, &Device::Cpu).expect("batch");
    let (config, weights) = load_classifier(&dir).expect("load");
    let labels_txt = config.labels.clone();
    let model = Trainable::new(config, labels_txt, &weights).expect("trainable");
    Some((batch, model))
}

fn every_parameter_learns(name: &str) {
    let Some((batch, model)) = first_four_cases(name) else {
        return;
    };
    let ctx = Ctx::train(7, true);
    let (_, grads) = model
        .loss_and_grads(&batch, &[2, 1, 0, 0], &ctx, 1.0)
        .expect("backward");
    for pname in model.names() {
        let g = grads
            .get(pname)
            .unwrap_or_else(|| panic!("{name}: no gradient for {pname}"));
        let norm = g
            .abs()
            .and_then(|x| x.sum_all())
            .and_then(|x| x.to_scalar::<f32>())
            .expect("norm");
        // A key bias shifts every score of a query row equally, so softmax cancels its
        // gradient exactly (torch reports 0.0 too); it only needs to be present.
        let key_bias = pname.ends_with("key.bias") || pname.ends_with("k_lin.bias");
        assert!(key_bias || norm > 0.0, "{name}: zero gradient for {pname}");
    }
}

/// Label smoothing against its definition, in f64 from the same logits: the loss is
/// `(1 - eps) * CE + eps * mean_k(-log p_k)`, and its gradient with respect to the logits is
/// `(p - q) / B` with `q = (1 - eps) * onehot + eps / K`, which the classifier bias receives
/// summed over the batch. (The tiny models' logits are near uniform, so the two losses are
/// close; the bias gradient moves by `eps * (onehot - 1/K) / B`, far above the tolerance.)
fn label_smoothing_follows_its_definition(name: &str) {
    let Some((batch, mut model)) = first_four_cases(name) else {
        return;
    };
    let targets = [2u32, 1, 0, 0];
    let ctx = Ctx::train(0, false);
    let logits: Vec<Vec<f32>> = model
        .forward(&batch, &ctx)
        .and_then(|l| Ok(l.to_vec2::<f32>()?))
        .expect("logits");
    let (plain, _) = model
        .loss_and_grads(&batch, &targets, &ctx, 1.0)
        .expect("plain");
    let eps = 0.1;
    model.set_label_smoothing(eps);
    let (loss, grads) = model
        .loss_and_grads(&batch, &targets, &ctx, 1.0)
        .expect("smoothed");

    let (b, k) = (logits.len() as f64, logits[0].len());
    let mut want_loss = 0f64;
    let mut want_ce = 0f64;
    let mut want_bias = vec![0f64; k];
    for (row, &y) in logits.iter().zip(&targets) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let log_z = max
            + row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let log_p: Vec<f64> = row.iter().map(|&x| x as f64 - log_z).collect();
        let ce = -log_p[y as usize];
        let uniform = -log_p.iter().sum::<f64>() / k as f64;
        want_ce += ce / b;
        want_loss += ((1.0 - eps) * ce + eps * uniform) / b;
        for (j, lp) in log_p.iter().enumerate() {
            let q = eps / k as f64 + if j == y as usize { 1.0 - eps } else { 0.0 };
            want_bias[j] += (lp.exp() - q) / b;
        }
    }
    assert!(
        (plain as f64 - want_ce).abs() < 1e-5,
        "{name}: plain {plain} vs {want_ce}"
    );
    assert!(
        (loss as f64 - want_loss).abs() < 1e-5,
        "{name}: loss {loss} vs {want_loss}"
    );
    let bias: Vec<f32> = grads["classifier.bias"].to_vec1().expect("bias gradient");
    for (j, (got, want)) in bias.iter().zip(&want_bias).enumerate() {
        assert!(
            (*got as f64 - want).abs() < 1e-5,
            "{name}: classifier.bias gradient [{j}] {got} vs {want}"
        );
    }
}

#[test]
fn distilbert_label_smoothing_follows_its_definition() {
    label_smoothing_follows_its_definition("tiny-distilbert");
}

#[test]
fn bert_label_smoothing_follows_its_definition() {
    label_smoothing_follows_its_definition("tiny-bert");
}

#[test]
fn distilbert_eval_matches_transformers() {
    eval_parity("tiny-distilbert");
}

#[test]
fn bert_eval_matches_transformers() {
    eval_parity("tiny-bert");
}

#[test]
fn distilbert_train_step_matches_torch() {
    train_step_parity("tiny-distilbert");
}

#[test]
fn bert_train_step_matches_torch() {
    train_step_parity("tiny-bert");
}

#[test]
fn distilbert_every_parameter_gets_a_gradient() {
    every_parameter_learns("tiny-distilbert");
}

#[test]
fn bert_every_parameter_gets_a_gradient() {
    every_parameter_learns("tiny-bert");
}
