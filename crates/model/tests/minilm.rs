//! The real all-MiniLM-L6-v2 (`make backbone`) against transformers' `BertModel` outputs in
//! `../shared/parity/minilm-reference.json`.

mod common;

use candle_core::Device;
use model::encoder::Encoder;
use model::nn::{Batch, Ctx};
use model::tokenize::TextEncoder;
use model::weights::load_backbone;
use serde_json::Value;

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

#[test]
fn minilm_cls_and_mean_match_transformers() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let Some(dir) = common::backbone_dir() else {
        return;
    };
    let text = std::fs::read_to_string(shared.join("parity/minilm-reference.json"))
        .expect("minilm-reference.json");
    let r: Value = serde_json::from_str(&text).expect("valid JSON");
    let enc = TextEncoder::load(&dir).expect("tokenizer");
    let (config, weights) = load_backbone(&dir, 2, 0).expect("backbone");
    let encoder = Encoder::load(&weights, &config.encoder).expect("encoder");
    let mut prepared = Encoder::load(&weights, &config.encoder).expect("encoder");
    prepared.prepare_inference().expect("prepare");
    let ctx = Ctx::eval();
    let (mut worst_cls, mut worst_mean) = (0f32, 0f32);
    for case in r["cases"].as_array().expect("cases") {
        let ids = enc
            .encode_full(case["text"].as_str().expect("text"))
            .expect("encode");
        let want: Vec<u32> = case["input_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect();
        assert_eq!(ids, want);
        let batch = Batch::new(&[&ids], enc.pad_id(), &Device::Cpu).expect("batch");
        let hidden = encoder.forward(&batch, &ctx).expect("forward");
        let cls: Vec<f32> = hidden
            .get(0)
            .and_then(|h| h.get(0))
            .expect("cls")
            .to_vec1()
            .expect("v");
        let mean: Vec<f32> = batch
            .mean_pool(&hidden)
            .and_then(|m| m.get(0))
            .expect("mean")
            .to_vec1()
            .expect("v");
        for (got, want) in [(&cls, &case["cls_first8"]), (&mean, &case["mean_first8"])] {
            let want = f32s(want);
            let d = got[..8]
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-4, "{:?}: differs by {d}", case["text"]);
        }
        // As a classifier runs it: weights stacked and packed once, and the last layer for
        // the first token alone.
        let first: Vec<f32> = prepared
            .forward_first(&batch, &ctx)
            .and_then(|h| h.get(0))
            .and_then(|h| h.to_vec1())
            .expect("first token");
        let d = first
            .iter()
            .zip(&cls)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            d < 1e-5,
            "{:?}: prepared first-token pass differs by {d}",
            case["text"]
        );
        let dc = cls[..8]
            .iter()
            .zip(f32s(&case["cls_first8"]))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let dm = mean[..8]
            .iter()
            .zip(f32s(&case["mean_first8"]))
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst_cls = worst_cls.max(dc);
        worst_mean = worst_mean.max(dm);
    }
    eprintln!("minilm: CLS max abs diff {worst_cls:.3e}, mean {worst_mean:.3e}");
}

#[test]
fn minilm_tokenizer_ignores_baked_in_truncation_and_padding() {
    let Some(dir) = common::backbone_dir() else {
        return;
    };
    let enc = TextEncoder::load(&dir).expect("tokenizer");
    let long = "please cancel my card ".repeat(100);
    assert_eq!(enc.encode_full(&long).expect("encode").len(), 402);
    assert_eq!(enc.encode_full("ok").expect("encode").len(), 3);
}
