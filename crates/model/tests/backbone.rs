//! Loading bare and legacy-named backbones and initialising a fresh, seeded head.

mod common;

use std::collections::HashMap;

use candle_core::Tensor;
use model::weights::{load_backbone, load_classifier};

#[test]
fn a_bare_backbone_with_legacy_names_loads_and_gets_a_seeded_head() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let src = shared.join("parity/tiny-bert");
    let (config, weights) = load_classifier(&src).expect("load");
    // A bare `BertModel` checkpoint: no `bert.` prefix, no pooler or classifier, and
    // layer norms named gamma/beta as in old checkpoints.
    let mut bare: HashMap<String, Tensor> = HashMap::new();
    for (name, t) in &weights {
        let Some(rest) = name.strip_prefix("bert.") else {
            continue;
        };
        if rest.starts_with("pooler.") {
            continue;
        }
        let rest = rest
            .replace("LayerNorm.weight", "LayerNorm.gamma")
            .replace("LayerNorm.bias", "LayerNorm.beta");
        bare.insert(rest, t.clone());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    candle_core::safetensors::save(&bare, dir.path().join("model.safetensors")).expect("save");
    let mut raw = config.raw.clone();
    raw.as_object_mut().expect("object").remove("id2label");
    raw.as_object_mut().expect("object").remove("label2id");
    std::fs::write(dir.path().join("config.json"), raw.to_string()).expect("config");

    let (c, w) = load_backbone(dir.path(), 3, 11).expect("backbone");
    assert!(c.labels.is_empty());
    for (name, t) in &weights {
        if name.starts_with("bert.pooler") || name.starts_with("classifier") {
            continue;
        }
        let diff = (t - &w[name])
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert_eq!(diff, 0.0, "{name}");
    }
    let head = &w["classifier.weight"];
    assert_eq!(head.dims(), &[3, 32]);
    let std = head
        .sqr()
        .and_then(|x| x.mean_all())
        .and_then(|x| x.to_scalar::<f32>())
        .expect("std")
        .sqrt();
    assert!((std - 0.02).abs() < 0.006, "head std {std}");
    let bias: Vec<f32> = w["classifier.bias"].to_vec1().expect("bias");
    assert_eq!(bias, vec![0.0; 3]);
    // Same seed, same head; another seed, another head.
    let (_, again) = load_backbone(dir.path(), 3, 11).expect("backbone");
    let (_, other) = load_backbone(dir.path(), 3, 12).expect("backbone");
    let v = |t: &Tensor| -> Vec<f32> { t.flatten_all().and_then(|x| x.to_vec1()).expect("v") };
    assert_eq!(v(head), v(&again["classifier.weight"]));
    assert_ne!(v(head), v(&other["classifier.weight"]));
}
