//! Models we save load in Hugging Face `transformers` with the same predictions. Needs a
//! Python with torch + transformers (`CALLTYPE_PYTHON`, default `python3`), so `--ignored`.

mod common;

use std::process::Command;

use model::{train, Classifier, TrainConfig};

const SCRIPT: &str = r#"
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
d, texts = sys.argv[1], json.loads(sys.argv[2])
m = AutoModelForSequenceClassification.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
probs = []
for t in texts:
    enc = tok(t, return_tensors="pt", truncation=False, padding=False)
    with torch.no_grad():
        probs.append(torch.softmax(m(**enc).logits, -1)[0].tolist())
print(json.dumps({"labels": [m.config.id2label[i] for i in range(m.config.num_labels)], "probs": probs}))
"#;

fn interop(backbone: &std::path::Path) {
    let rows = [
        ("my card never arrived", "card"),
        ("i lost my card", "card"),
        ("a charge on my bill", "billing"),
        ("my bill is too high", "billing"),
        ("cancel my subscription", "cancel"),
        ("please cancel my account", "cancel"),
    ];
    let data: Vec<(String, String)> = rows
        .iter()
        .map(|(t, l)| (t.to_string(), l.to_string()))
        .collect();
    let out = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 2,
        lr: 5e-3,
        max_tokens: 32,
        ..TrainConfig::default()
    };
    train(backbone, &data, &data, &cfg, out.path(), &mut |_| {}).expect("train");
    let texts: Vec<&str> = rows.iter().map(|(t, _)| *t).collect();
    let ours = Classifier::load(out.path())
        .expect("load")
        .predict(&texts)
        .expect("predict");
    let python = std::env::var("CALLTYPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let res = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(out.path())
        .arg(serde_json::to_string(&texts).expect("json"))
        .output()
        .expect("run python");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&res.stdout).expect("json");
    assert_eq!(
        theirs["labels"],
        serde_json::json!(["billing", "cancel", "card"])
    );
    let mut worst = 0f32;
    for (p, q) in ours.iter().zip(theirs["probs"].as_array().expect("probs")) {
        for (a, b) in p.scores.iter().zip(q.as_array().expect("row")) {
            worst = worst.max((a - b.as_f64().expect("f") as f32).abs());
        }
    }
    assert!(
        worst < 1e-4,
        "{}: probabilities differ by {worst}",
        backbone.display()
    );
    eprintln!(
        "{}: transformers reload, max abs prob diff {worst:.3e}",
        backbone.display()
    );
}

#[test]
#[ignore = "needs torch + transformers (set CALLTYPE_PYTHON)"]
fn transformers_loads_our_bert() {
    if let Some(shared) = common::shared_dir() {
        interop(&shared.join("parity/tiny-bert"));
    }
}

#[test]
#[ignore = "needs torch + transformers (set CALLTYPE_PYTHON)"]
fn transformers_loads_our_distilbert() {
    if let Some(shared) = common::shared_dir() {
        interop(&shared.join("parity/tiny-distilbert"));
    }
}

#[test]
#[ignore = "needs torch + transformers (set CALLTYPE_PYTHON)"]
fn transformers_loads_our_minilm_fine_tune() {
    if let Some(dir) = common::backbone_dir() {
        interop(&dir);
    }
}
