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
    let mut clf = Classifier::load(out.path()).expect("reload");
    // The saved model has a temperature fitted on dev: its dev loss is at most the epoch's,
    // and at temperature 1 it is the epoch's.
    let (before, after) = report.calibration.clone().expect("calibrated on dev");
    let r = evaluate(&clf, &dev).expect("evaluate");
    assert_eq!(clf.settings().temperature, report.temperature);
    assert!(
        (r.loss - after.loss).abs() < 1e-6,
        "{} vs {}",
        r.loss,
        after.loss
    );
    assert!(after.loss <= before.loss + 1e-9, "{after:?} vs {before:?}");
    clf.set_settings(model::InferenceSettings {
        temperature: 1.0,
        ..*clf.settings()
    });
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
        Classifier::load(out.path())
            .expect("reload")
            .predict(&texts)
            .expect("p1"),
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

#[test]
fn a_memory_limit_splits_the_batch_and_keeps_the_examples_per_step() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let backbone = shared.join("parity/tiny-bert");
    let (train_set, dev) = toy();
    let run = |cfg: TrainConfig| {
        let out = tempfile::tempdir().expect("tempdir");
        let mut plan = None;
        let report = train(&backbone, &train_set, &dev, &cfg, out.path(), &mut |p| {
            if let TrainProgress::Started {
                micro_batch,
                grad_accum,
                total_steps,
                ..
            } = p
            {
                plan = Some((micro_batch, grad_accum, total_steps));
            }
        })
        .expect("train");
        let log: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("training_log.json")).expect("log"),
        )
        .expect("json");
        (report, plan.expect("started"), log)
    };
    let short = |cfg: TrainConfig| TrainConfig { epochs: 2, ..cfg };
    // A limit nothing fits in: one example a pass, four accumulated, as many steps as unsplit.
    let (limited, plan, log) = run(short(TrainConfig {
        memory_limit: Some(1),
        ..config()
    }));
    assert_eq!(plan, (1, 4, 2 * 4));
    assert_eq!(
        (log["micro_batch"].as_u64(), log["grad_accum"].as_u64()),
        (Some(1), Some(4))
    );
    // The same run as asking for 1 × 4 explicitly; the default 8 GiB leaves 4 × 1 alone.
    let (explicit, plan, _) = run(short(TrainConfig {
        batch_size: 1,
        grad_accum: 4,
        ..config()
    }));
    assert_eq!(plan, (1, 4, 2 * 4));
    for (a, b) in limited.epochs.iter().zip(&explicit.epochs) {
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.dev, b.dev);
    }
    let (_, plan, _) = run(short(config()));
    assert_eq!(plan, (4, 1, 2 * 4));
}

#[test]
fn long_text_strategies_are_measured_on_dev_and_the_default_saved() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let backbone = shared.join("parity/tiny-distilbert");
    let (train_set, mut dev) = toy();
    dev.push((
        "hello and thanks for calling, ".repeat(10) + "i want to cancel my plan",
        "cancel".to_string(),
    ));
    let out = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 2,
        ..config()
    };
    let report = train(&backbone, &train_set, &dev, &cfg, out.path(), &mut |_| {}).expect("train");
    // Head+tail and the window poolings are measured on dev; the saved strategy is the
    // default, windows sharing a quarter of the budget, max-pooled over the familiar ones.
    let tried: Vec<model::LongText> = report.long_text_trials.iter().map(|t| t.0).collect();
    let windows = |pool| model::LongText::Windows {
        overlap: 22 / 4,
        pool,
    };
    assert_eq!(
        tried,
        [
            model::LongText::HeadTail { head_fraction: 0.5 },
            windows(model::Pool::Mean),
            windows(model::Pool::Max),
            windows(model::Pool::Familiar)
        ]
    );
    assert_eq!(report.long_text, windows(model::Pool::Familiar));
    assert_eq!(report.long_text, model::default_long_text(24));
    let clf = Classifier::load(out.path()).expect("reload");
    assert_eq!(clf.settings().long_text, report.long_text);
    // The centroids were fitted on the training sequences and saved beside the weights.
    let centroids = clf.centroids().expect("centroids saved and loaded");
    assert_eq!(centroids.centres.len(), clf.labels().len());
    assert!(centroids.radius.is_finite() && centroids.radius > 0.0);
    let long = dev.last().expect("long dev text").0.as_str();
    let scored = clf.window_logits(&[long]).expect("windows");
    assert!(scored[0].logits.len() > 1, "the long dev text is windowed");
    assert_eq!(scored[0].distances.len(), scored[0].logits.len());

    // Familiar pooling listens only to windows near a label centre: a far window that is
    // loudest for one label is outvoted by a near one that speaks for another, where max
    // pooling over every window lets the far one decide.
    let n = clf.labels().len();
    let loud = |label: usize, by: f32| {
        let mut l = vec![0f32; n];
        l[label] = by;
        l
    };
    let windows_of = model::Windows {
        logits: vec![loud(0, 9.0), loud(1, 4.0)],
        distances: vec![centroids.radius * 50.0, centroids.radius * 0.5],
    };
    let argmax = |p: Vec<f32>| (0..n).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    assert_eq!(argmax(clf.pool_as(&windows_of, model::Pool::Familiar)), 1);
    assert_eq!(argmax(clf.pool_as(&windows_of, model::Pool::Max)), 0);
    // With no window near any centre, the nearest decides.
    let far = model::Windows {
        distances: vec![centroids.radius * 50.0, centroids.radius * 40.0],
        ..windows_of.clone()
    };
    assert_eq!(argmax(clf.pool_as(&far, model::Pool::Familiar)), 1);
    let names = safetensors_names(&out.path().join("model.safetensors"));
    assert!(names.contains(&"pre_classifier.weight".to_string()));
    assert!(names.contains(&"distilbert.transformer.layer.1.ffn.lin2.bias".to_string()));

    // Windows give one probability vector per text, summing to one.
    let mut clf = clf;
    clf.set_settings(model::InferenceSettings {
        max_tokens: 12,
        long_text: model::LongText::Windows {
            overlap: 3,
            pool: model::Pool::Max,
        },
        batch_size: 2,
        temperature: 1.0,
    });
    let texts: Vec<&str> = dev.iter().map(|(t, _)| t.as_str()).collect();
    let preds = clf.predict(&texts).expect("predict");
    assert_eq!(preds.len(), texts.len());
    for p in &preds {
        let sum: f32 = p.scores.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert_eq!(p.score, p.scores.iter().cloned().fold(0.0, f32::max));
    }
    assert!(clf.predict(&[]).expect("empty").is_empty());
}

fn safetensors_names(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("header size")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    assert_eq!(header["__metadata__"]["format"], "pt");
    header
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}
