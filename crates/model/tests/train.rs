//! Fine-tuning the tiny random BERT from `../shared/parity` on toy texts: the loss falls,
//! the saved directory reloads with the same dev results, and a rerun is identical.

mod common;

use model::{evaluate, train, Classifier, TrainConfig, TrainProgress};

type Labelled = Vec<(String, String)>;

fn toy() -> (Labelled, Labelled) {
    let rows = [
        ("my card never arrived in the post", "card"),
        ("i lost my card yesterday", "card"),
        ("the card was declined at the shop", "card"),
        ("please send a new card", "card"),
        ("my card is blocked", "card"),
        ("there is a charge on my bill i do not know", "billing"),
        ("my bill is too high this month", "billing"),
        ("why was i charged twice on the bill", "billing"),
        ("i want a refund for this charge", "billing"),
        ("the bill shows a wrong amount", "billing"),
        ("i want to cancel my subscription", "cancel"),
        ("please cancel my account today", "cancel"),
        ("how do i cancel the contract", "cancel"),
        ("cancel everything and close it", "cancel"),
        ("i would like to cancel my plan", "cancel"),
    ];
    let all: Vec<(String, String)> = rows
        .iter()
        .map(|(t, l)| (t.to_string(), l.to_string()))
        .collect();
    let dev = vec![
        ("my new card did not come".to_string(), "card".to_string()),
        (
            "a strange charge on my bill".to_string(),
            "billing".to_string(),
        ),
        (
            "cancel my subscription now".to_string(),
            "cancel".to_string(),
        ),
    ];
    (all, dev)
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 10,
        batch_size: 4,
        lr: 5e-3,
        warmup_ratio: 0.1,
        max_tokens: 24,
        seed: 7,
        ..TrainConfig::default()
    }
}

#[test]
fn training_lowers_loss_and_the_saved_model_reloads() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let backbone = shared.join("parity/tiny-bert");
    let (train_set, dev) = toy();
    let out = tempfile::tempdir().expect("tempdir");
    let mut steps = 0;
    let report = train(
        &backbone,
        &train_set,
        &dev,
        &config(),
        out.path(),
        &mut |p| {
            if let TrainProgress::Step { .. } = p {
                steps += 1;
            }
        },
    )
    .expect("train");
    assert_eq!(steps, 10 * 4);
    assert_eq!(report.labels, ["billing", "cancel", "card"]);
    let first = &report.epochs[0];
    let last = report.epochs.last().expect("epochs");
    assert!(
        last.train_loss < first.train_loss - 0.2,
        "{:?}",
        report.epochs
    );
    let dev_first = first.dev.as_ref().expect("dev").loss;
    let dev_last = last.dev.as_ref().expect("dev").loss;
    assert!(dev_last < dev_first - 0.1, "{:?}", report.epochs);

    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "calltype.json",
        "training_log.json",
    ] {
        assert!(out.path().join(f).is_file(), "{f} missing");
    }
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("config.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(cfg["id2label"]["2"], "card");
    assert_eq!(cfg["label2id"]["billing"], 0);
    assert_eq!(cfg["architectures"][0], "BertForSequenceClassification");

    let best = &report.epochs[report.best_epoch - 1];
    let clf = Classifier::load(out.path()).expect("reload");
    let r = evaluate(&clf, &dev).expect("evaluate");
    let logged = best.dev.as_ref().expect("dev");
    assert!(
        (r.loss - logged.loss).abs() < 1e-6,
        "{} vs {}",
        r.loss,
        logged.loss
    );
    assert_eq!(r.accuracy, logged.accuracy);
    let texts: Vec<&str> = dev.iter().map(|(t, _)| t.as_str()).collect();
    let again = Classifier::load(out.path()).expect("reload");
    assert_eq!(
        clf.predict(&texts).expect("p1"),
        again.predict(&texts).expect("p2")
    );

    // Same seed, same data: the same run.
    let out2 = tempfile::tempdir().expect("tempdir");
    let report2 = train(
        &backbone,
        &train_set,
        &dev,
        &config(),
        out2.path(),
        &mut |_| {},
    )
    .expect("train");
    for (a, b) in report.epochs.iter().zip(&report2.epochs) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.dev, b.dev);
    }
    eprintln!(
        "toy training: {:?}",
        report
            .epochs
            .iter()
            .map(|e| (e.train_loss, e.dev.as_ref().map(|d| d.loss)))
            .collect::<Vec<_>>()
    );
}
