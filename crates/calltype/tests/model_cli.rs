//! `calltype train`, `predict`, `eval` and `package`, run as a user runs them: through the
//! binary, on the tiny BERT in `../shared/parity/tiny-bert` and our own sample calls.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tempfile::TempDir;

const LABELS: &[&str] = &["billing", "cancel", "card", "tech_support"];

fn calltype(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calltype"))
        .args(args)
        .output()
        .expect("run calltype")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = calltype(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "calltype {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn tiny_bert() -> Option<PathBuf> {
    testdata::shared("parity/tiny-bert")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `calltype train` for one short epoch on the tiny BERT: the arguments the small training
/// runs share (append others as needed).
fn one_epoch<'a>(backbone: &'a Path, data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "train",
        "--backbone",
        s(backbone),
        "--data",
        s(data),
        "--epochs",
        "1",
        "--max-tokens",
        "32",
        "--out",
        s(out),
    ]
}

/// A few phrasings per label, so two epochs on the tiny model are quick.
fn phrases(label: &str) -> [&'static str; 6] {
    match label {
        "billing" => [
            "I was charged twice on my last bill",
            "why is my invoice higher this month",
            "there is a fee on my statement I do not recognise",
            "please explain the charges on my bill",
            "I want a refund for the double payment",
            "my bill has a late fee I already paid",
        ],
        "cancel" => [
            "I want to cancel my subscription",
            "please close my account today",
            "how do I end my contract",
            "stop my membership at the end of the month",
            "I would like to cancel the service",
            "terminate my plan please",
        ],
        "card" => [
            "my new card has not arrived",
            "my card was stolen last night",
            "I need to block my debit card",
            "the card is not working at shops",
            "please send me a replacement card",
            "my card expired and I need a new one",
        ],
        _ => [
            "the app crashes when I log in",
            "my internet keeps dropping",
            "the website shows an error page",
            "I cannot reset my password",
            "the router lights are blinking red",
            "the update broke my phone settings",
        ],
    }
}

fn write_csv(path: &Path, rows: &[(String, String, String)]) {
    let mut w = csv::Writer::from_path(path).expect("csv");
    w.write_record(["contact_id", "transcript", "label"])
        .expect("header");
    for (id, text, label) in rows {
        w.write_record([id, text, label]).expect("row");
    }
    w.flush().expect("flush");
}

fn toy_rows() -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for label in LABELS {
        for (i, p) in phrases(label).iter().enumerate() {
            rows.push((format!("{label}-{i}"), p.to_string(), label.to_string()));
        }
    }
    rows
}

/// One model trained on the toy CSV, shared by the tests of this binary.
struct Trained {
    dir: TempDir,
    stdout: String,
    stderr: String,
}

impl Trained {
    fn model(&self) -> PathBuf {
        self.dir.path().join("model")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("toy.csv")
    }
}

fn trained() -> Option<&'static Trained> {
    static TRAINED: OnceLock<Option<Trained>> = OnceLock::new();
    TRAINED
        .get_or_init(|| {
            let backbone = tiny_bert()?;
            let dir = tempfile::tempdir().expect("tempdir");
            let data = dir.path().join("toy.csv");
            write_csv(&data, &toy_rows());
            let out = dir.path().join("model");
            let (stdout, stderr) = ok(&[
                "train",
                "--backbone",
                s(&backbone),
                "--data",
                s(&data),
                "--epochs",
                "2",
                "--batch-size",
                "8",
                "--max-tokens",
                "32",
                "--lr",
                "1e-3",
                "--out",
                s(&out),
            ]);
            Some(Trained {
                dir,
                stdout,
                stderr,
            })
        })
        .as_ref()
}

fn config_labels(model: &Path) -> BTreeSet<String> {
    let config: Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).expect("config"))
            .expect("json");
    config["id2label"]
        .as_object()
        .expect("id2label")
        .values()
        .map(|v| v.as_str().expect("label").to_string())
        .collect()
}

#[test]
fn train_on_a_csv_writes_a_loadable_hf_model_and_a_summary() {
    let Some(t) = trained() else { return };
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "calltype.json",
        "training_log.json",
    ] {
        assert!(t.model().join(f).is_file(), "{f} missing");
    }
    let want: BTreeSet<String> = LABELS.iter().map(|s| s.to_string()).collect();
    assert_eq!(config_labels(&t.model()), want);
    assert!(
        t.stdout.contains("trained 2 epoch(s)"),
        "summary: {}",
        t.stdout
    );
    assert!(t.stdout.contains("best epoch"), "summary: {}", t.stdout);
    // A seeded 10% stratified split: 1 of each label's 6 examples.
    assert!(
        t.stderr
            .contains("training on 20 examples (4 labels), dev 4 examples"),
        "{}",
        t.stderr
    );
    assert!(t.stderr.contains("epoch 2/2"), "{}", t.stderr);
    let log: Value =
        serde_json::from_slice(&std::fs::read(t.model().join("training_log.json")).expect("log"))
            .expect("json");
    assert_eq!(log["epochs"].as_array().map(Vec::len), Some(2));
}

#[test]
fn predict_prints_json_lines_with_trained_labels() {
    let Some(t) = trained() else { return };
    let model = t.model();
    let (stdout, _) = ok(&[
        "predict",
        "--model",
        s(&model),
        "my card was stolen",
        "I want to cancel",
    ]);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        let label = l["label"].as_str().expect("label");
        assert!(LABELS.contains(&label), "{label}");
        let score = l["score"].as_f64().expect("score");
        assert!(score > 0.0 && score <= 1.0);
        assert!(l.get("scores").is_none());
        assert!(l.get("contact_id").is_none());
    }

    let (stdout, _) = ok(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&t.data()),
        "--all-scores",
    ]);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 24);
    assert_eq!(lines[0]["contact_id"], "billing-0");
    let scores = lines[0]["scores"].as_object().expect("scores");
    let keys: BTreeSet<&str> = scores.keys().map(String::as_str).collect();
    assert_eq!(keys, LABELS.iter().copied().collect());
    let sum: f64 = scores.values().map(|v| v.as_f64().expect("p")).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
}

#[test]
fn predict_without_texts_says_what_to_give() {
    let Some(t) = trained() else { return };
    let out = calltype(&["predict", "--model", s(&t.model())]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("calltype: "), "{stderr}");
    assert!(stderr.contains("--input"), "{stderr}");
}

/// Width and height of a PNG, after checking its signature and IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is no PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    assert!(
        bytes.len() > 2_000,
        "{} is suspiciously small",
        path.display()
    );
    (w, h)
}

#[test]
fn eval_can_override_the_long_call_strategy() {
    let Some(t) = trained() else { return };
    let data = t.dir.path().join("eval-long.csv");
    write_csv(&data, &toy_rows());
    for (flag, kind) in [("windows:4", "windows"), ("head-tail:0.25", "head_tail")] {
        let report = t.dir.path().join(format!("report-{kind}"));
        ok(&[
            "eval",
            "--model",
            s(&t.model()),
            "--data",
            s(&data),
            "--report",
            s(&report),
            "--long-text",
            flag,
            "--max-tokens",
            "16",
        ]);
        let r: Value =
            serde_json::from_slice(&std::fs::read(report.join("report.json")).expect("report"))
                .expect("json");
        assert_eq!(r["inference"]["long_text"]["kind"], kind, "{r}");
        assert_eq!(r["inference"]["max_tokens"], 16, "{r}");
    }
    let r = t.dir.path().join("r");
    let out = calltype(&[
        "eval",
        "--model",
        s(&t.model()),
        "--data",
        s(&data),
        "--report",
        s(&r),
        "--long-text",
        "middle",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("head-tail"));
}

#[test]
fn eval_writes_report_confusion_and_pictures() {
    let Some(t) = trained() else { return };
    let report = t.dir.path().join("report");
    // One test row with a label the model never saw: it counts, as an error.
    let mut rows = toy_rows();
    rows.push(("x-1".into(), "where is my parcel".into(), "delivery".into()));
    let data = t.dir.path().join("eval.csv");
    write_csv(&data, &rows);
    let (stdout, stderr) = ok(&[
        "eval",
        "--model",
        s(&t.model()),
        "--data",
        s(&data),
        "--report",
        s(&report),
    ]);
    assert!(stdout.contains("accuracy"), "{stdout}");
    assert!(stdout.contains("macro-F1"), "{stdout}");
    assert!(stderr.contains("delivery"), "{stderr}");

    let r: Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(r["examples"], 25);
    let acc = r["accuracy"].as_f64().expect("accuracy");
    assert!((0.0..=24.0 / 25.0).contains(&acc), "{acc}");
    assert!(r["macro_f1"].as_f64().is_some());
    let per_class = r["per_class"].as_array().expect("per_class");
    assert_eq!(per_class.len(), 5);
    for c in per_class {
        for k in ["label", "precision", "recall", "f1", "support"] {
            assert!(c.get(k).is_some(), "{k} missing in {c}");
        }
    }
    let delivery = per_class
        .iter()
        .find(|c| c["label"] == "delivery")
        .expect("unknown label listed");
    assert_eq!(delivery["support"], 1);
    assert_eq!(delivery["recall"], 0.0);
    assert_eq!(r["unknown_labels"], serde_json::json!(["delivery"]));

    let mut confusion = csv::Reader::from_path(report.join("confusion.csv")).expect("csv");
    let header: Vec<String> = confusion
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "true_label");
    assert_eq!(header.len(), 6);
    let total: usize = confusion
        .records()
        .map(|r| {
            let r = r.expect("row");
            r.iter()
                .skip(1)
                .map(|x| x.parse::<usize>().expect("count"))
                .sum::<usize>()
        })
        .sum();
    assert_eq!(total, 25);
    let predictions = std::fs::read_to_string(report.join("predictions.csv")).expect("preds");
    assert_eq!(predictions.lines().count(), 26);

    let (w, h) = png_size(&report.join("confusion.png"));
    assert!(w >= 300 && h >= 200, "{w}x{h}");
    let (w, h) = png_size(&report.join("training_curve.png"));
    assert_eq!((w, h), (1000, 420));
}

#[test]
fn package_puts_the_model_files_at_the_archive_root() {
    let Some(t) = trained() else { return };
    let out = t.dir.path().join("model.tar.gz");
    let (stdout, _) = ok(&["package", "--model", s(&t.model()), "--out", s(&out)]);
    assert!(stdout.contains("model.tar.gz"), "{stdout}");
    let file = std::fs::File::open(&out).expect("archive");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").into_owned();
        assert_eq!(
            path.components().count(),
            1,
            "{} is not at the root",
            path.display()
        );
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        names.insert(path.display().to_string(), bytes);
    }
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "calltype.json",
        "training_log.json",
    ] {
        let bytes = names.get(f).unwrap_or_else(|| panic!("{f} not in archive"));
        assert_eq!(
            bytes,
            &std::fs::read(t.model().join(f)).expect("model file"),
            "{f} differs"
        );
    }

    // The unpacked archive is a model that predicts.
    let unpacked = t.dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    for (name, bytes) in &names {
        std::fs::write(unpacked.join(name), bytes).expect("write");
    }
    let (stdout, _) = ok(&["predict", "--model", s(&unpacked), "card"]);
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn package_refuses_a_directory_that_is_not_a_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = calltype(&[
        "package",
        "--model",
        s(dir.path()),
        "--out",
        s(&dir.path().join("m.tar.gz")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config.json"), "{stderr}");
    assert!(!dir.path().join("m.tar.gz").exists());
}

#[test]
fn train_from_contact_lens_files_and_a_labels_csv() {
    let Some(backbone) = tiny_bert() else { return };
    let labels_csv = testdata::repo("samples/labels.csv");
    let calls = testdata::repo("samples/calls");
    let mut reader = csv::Reader::from_path(&labels_csv).expect("labels");
    let mut per_label: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut test_id = None;
    for r in reader.records() {
        let r = r.expect("row");
        if &r[2] == "train" {
            per_label
                .entry(r[1].to_string())
                .or_default()
                .push(r[0].to_string());
        } else if test_id.is_none() {
            test_id = Some(r[0].to_string());
        }
    }
    // Two training calls per label (12 in all) and one call of the test split.
    let mut ids: Vec<String> = per_label
        .values()
        .flat_map(|v| v.iter().take(2).cloned())
        .collect();
    assert_eq!(ids.len(), 12);
    ids.push(test_id.expect("a test call"));
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("calls");
    std::fs::create_dir_all(&data).expect("mkdir");
    for entry in std::fs::read_dir(&calls).expect("samples/calls") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if ids.iter().any(|id| name.starts_with(id.as_str())) {
            std::fs::copy(&path, data.join(&name)).expect("copy");
        }
    }
    assert_eq!(std::fs::read_dir(&data).expect("dir").count(), 13);

    let out = dir.path().join("model");
    let (stdout, stderr) = ok(&[
        "train",
        "--backbone",
        s(&backbone),
        "--data",
        s(&data),
        "--labels",
        s(&labels_csv),
        "--split",
        "train",
        "--epochs",
        "1",
        "--max-tokens",
        "48",
        "--batch-size",
        "4",
        // Far too little for a batch of 4: split into passes of one, with a warning.
        "--memory-limit-gb",
        "0.000001",
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains("trained 1 epoch(s)"), "{stdout}");
    assert!(
        stderr.contains("memory: 1 example(s) a pass x 4 accumulated a step"),
        "{stderr}"
    );
    assert!(stderr.contains("over the 0.0 GiB memory limit"), "{stderr}");
    assert!(
        stderr.contains("1 analysis file(s) have no label"),
        "the test-split call is reported: {stderr}"
    );
    assert!(
        stderr.contains("label(s) in") && stderr.contains("have no analysis file"),
        "labels of calls not copied are reported: {stderr}"
    );
    let want: BTreeSet<String> = per_label.keys().cloned().collect();
    assert_eq!(config_labels(&out), want);

    // The same directory feeds predict, one line per call with its contact id.
    let (stdout, _) = ok(&["predict", "--model", s(&out), "--input", s(&data)]);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 13);
    assert!(lines.iter().all(|l| l["contact_id"].is_string()));
}

#[test]
fn a_label_with_one_example_is_reported_and_left_out() {
    let Some(backbone) = tiny_bert() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("train.csv");
    let mut rows: Vec<(String, String, String)> = toy_rows()
        .into_iter()
        .filter(|r| r.2 == "card" || r.2 == "cancel")
        .collect();
    rows.push(("r-1".into(), "where is my parcel".into(), "delivery".into()));
    write_csv(&data, &rows);
    let out = dir.path().join("model");
    let (_, stderr) = ok(&one_epoch(&backbone, &data, &out));
    assert!(
        stderr.contains("fewer than 2 examples") && stderr.contains("\"delivery\" (1)"),
        "{stderr}"
    );
    let want: BTreeSet<String> = ["cancel", "card"].iter().map(|s| s.to_string()).collect();
    assert_eq!(config_labels(&out), want);
}

#[test]
fn a_directory_without_labels_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = calltype(&[
        "train",
        "--backbone",
        s(dir.path()),
        "--data",
        s(dir.path()),
        "--out",
        s(&dir.path().join("m")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("calltype: "), "{stderr}");
    assert!(stderr.contains("--labels"), "{stderr}");
}

#[test]
fn a_dev_label_without_training_examples_is_reported_and_left_out() {
    let Some(backbone) = tiny_bert() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let train = dir.path().join("train.csv");
    let dev = dir.path().join("dev.csv");
    let rows = toy_rows();
    write_csv(
        &train,
        &rows
            .iter()
            .filter(|r| r.2 != "billing")
            .cloned()
            .collect::<Vec<_>>(),
    );
    write_csv(&dev, &rows[..8]);
    let out = dir.path().join("model");
    let (stdout, stderr) =
        ok(&[&one_epoch(&backbone, &train, &out)[..], &["--dev", s(&dev)]].concat());
    assert!(
        stderr.contains("6 dev example(s) left out") && stderr.contains("billing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("training on 18 examples (3 labels), dev 2 examples"),
        "{stderr}"
    );
    assert!(stdout.contains("best epoch 1: dev loss"), "{stdout}");
}

#[test]
fn train_takes_label_smoothing_and_logs_it() {
    let Some(backbone) = tiny_bert() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("toy.csv");
    write_csv(&data, &toy_rows());
    let out = dir.path().join("model");
    let base = one_epoch(&backbone, &data, &out);
    let refused = calltype(&[&base[..], &["--label-smoothing", "1"]].concat());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("label_smoothing must be in [0, 1)"),
        "{stderr}"
    );

    ok(&[&base[..], &["--label-smoothing", "0.1"]].concat());
    let log: Value =
        serde_json::from_slice(&std::fs::read(out.join("training_log.json")).expect("log"))
            .expect("json");
    assert_eq!(log["config"]["label_smoothing"].as_f64(), Some(0.1));
}

/// A call longer than the 12-token windows of [`windows_settings`]: talk around a stolen card.
const LONG_CALL: &str = "hello and thank you for calling today, please hold the line while i \
    check your details, my card was stolen and i need a new card, is there anything else, \
    thank you for your patience and have a nice day";

/// calltype.json reading long calls as 12-token windows sharing 2, pooled by `pool`.
fn windows_settings(pool: &str, temperature: f64) -> Value {
    serde_json::json!({
        "max_tokens": 12,
        "long_text": {"kind": "windows", "overlap": 2, "pool": pool},
        "batch_size": 4,
        "temperature": temperature
    })
}

/// Copies the trained model to `dir` with `settings` as its calltype.json.
fn model_with_settings(t: &Trained, dir: &Path, settings: Value) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    for entry in std::fs::read_dir(t.model()).expect("model dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    std::fs::write(dir.join("calltype.json"), settings.to_string()).expect("settings");
    dir.to_path_buf()
}

#[test]
fn the_saved_pooling_and_temperature_are_what_predict_and_eval_use() {
    let Some(t) = trained() else { return };
    let long = LONG_CALL;
    let scores = |model: &Path| -> Vec<f64> {
        let (stdout, _) = ok(&["predict", "--model", s(model), "--all-scores", long]);
        let line: Value = serde_json::from_str(stdout.trim()).expect("json line");
        let scores = line["scores"].as_object().expect("scores");
        LABELS
            .iter()
            .map(|l| scores[*l].as_f64().expect("p"))
            .collect()
    };
    let base = scores(&model_with_settings(
        t,
        &t.dir.path().join("max"),
        windows_settings("max", 1.0),
    ));
    let hot_dir = model_with_settings(t, &t.dir.path().join("hot"), windows_settings("max", 3.0));
    let hot = scores(&hot_dir);
    // Temperature 3 is softmax(ln p / 3) of the scores at temperature 1.
    let logs: Vec<f64> = base.iter().map(|p| p.ln() / 3.0).collect();
    let total: f64 = logs.iter().map(|l| l.exp()).sum();
    for (h, l) in hot.iter().zip(&logs) {
        assert!((h - l.exp() / total).abs() < 1e-4, "{hot:?} vs {base:?}");
    }

    // eval reads the same file, reports it, and scores with it.
    let data = t.dir.path().join("one-long.csv");
    write_csv(
        &data,
        &[("long-0".to_string(), long.to_string(), "card".to_string())],
    );
    let report = t.dir.path().join("report-hot");
    ok(&[
        "eval",
        "--model",
        s(&hot_dir),
        "--data",
        s(&data),
        "--report",
        s(&report),
    ]);
    let r: Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).expect("report"))
            .expect("json");
    assert_eq!(r["inference"]["long_text"]["pool"], "max", "{r}");
    assert_eq!(r["inference"]["temperature"], 3.0, "{r}");
    let card = LABELS.iter().position(|l| *l == "card").expect("card");
    let loss = r["loss"].as_f64().expect("loss");
    assert!(
        (loss + hot[card].ln()).abs() < 1e-3,
        "{loss} vs {}",
        hot[card]
    );
}

/// The `radius` tensor of a model's centroids.safetensors.
fn centroid_radius(dir: &Path) -> f64 {
    let bytes = std::fs::read(dir.join("centroids.safetensors")).expect("centroids saved");
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("header size")) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).expect("header");
    let at = header["radius"]["data_offsets"][0]
        .as_u64()
        .expect("offset") as usize
        + 8
        + n;
    f32::from_le_bytes(bytes[at..at + 4].try_into().expect("f32")) as f64
}

#[test]
fn familiar_pooling_is_saved_by_train_and_used_by_predict_and_eval() {
    let Some(t) = trained() else { return };
    // train saved the familiar pooling and the centroids it needs.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(t.model().join("calltype.json")).expect("settings"))
            .expect("json");
    assert_eq!(saved["long_text"]["pool"], "familiar", "{saved}");
    let radius = centroid_radius(&t.model());
    assert!(radius.is_finite() && radius > 0.0, "{radius}");

    let dir = model_with_settings(
        t,
        &t.dir.path().join("familiar"),
        windows_settings("familiar", 1.0),
    );
    let long = LONG_CALL;
    let data = t.dir.path().join("familiar-long.csv");
    write_csv(
        &data,
        &[("long-0".to_string(), long.to_string(), "card".to_string())],
    );
    let windows_out = t.dir.path().join("familiar-windows.jsonl");
    ok(&[
        "eval",
        "--model",
        s(&dir),
        "--data",
        s(&data),
        "--report",
        s(&t.dir.path().join("report-familiar")),
        "--windows-out",
        s(&windows_out),
    ]);
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&windows_out)
            .expect("windows")
            .trim(),
    )
    .expect("json line");
    let logits: Vec<Vec<f64>> = serde_json::from_value(line["windows"].clone()).expect("logits");
    let distances: Vec<f64> = serde_json::from_value(line["distances"].clone()).expect("distances");
    assert!(logits.len() > 2, "the text is windowed: {line}");
    assert_eq!(distances.len(), logits.len());

    // What predict must give: per label the largest log-probability over the windows within
    // the radius (or the nearest window), then a softmax.
    let bound = distances
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(radius);
    let mut z = vec![f64::NEG_INFINITY; LABELS.len()];
    for (l, _) in logits.iter().zip(&distances).filter(|(_, &d)| d <= bound) {
        let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + l.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        for (m, x) in z.iter_mut().zip(l) {
            *m = m.max(x - lse);
        }
    }
    let total: f64 = z.iter().map(|x| x.exp()).sum();
    let (stdout, _) = ok(&["predict", "--model", s(&dir), "--all-scores", long]);
    let got: Value = serde_json::from_str(stdout.trim()).expect("json line");
    for (i, label) in LABELS.iter().enumerate() {
        let p = got["scores"][*label].as_f64().expect("score");
        assert!(
            (p - z[i].exp() / total).abs() < 1e-4,
            "{label}: {p} vs {z:?}"
        );
    }
}
