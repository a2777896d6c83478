//! `calltype suggest`, run as a user runs it: on a local bucket of our sample calls ingested
//! by `calltype ingest`, with the tiny BERT of `../shared/parity` as the backbone (coverage)
//! and as the model (doubt); its CSV filled in and handed back to `calltype train --labels`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

fn calltype(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_calltype"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run calltype");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = calltype(args);
    assert!(success, "calltype {args:?} failed\n{stdout}\n{stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The sample calls under their Contact Lens keys (as `samples/stage.py` lays them out),
/// ingested into master CSVs.
fn ingested_bucket() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(testdata::repo("samples/calls")).expect("samples/calls") {
        let path = e.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let (_, ts) = name.split_once("_analysis_redacted_").expect("sample name");
        let (date, _) = ts.split_once('T').expect("timestamp");
        let key = format!(
            "Analysis/Voice/Redacted/{}/{}",
            date.replace('-', "/"),
            name.replacen(&ts[11..19], &ts[11..19].replace('_', ":"), 1)
        );
        let to = dir.path().join(key);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&path, to).expect("copy");
    }
    ok(&["ingest", "--store", s(dir.path())]);
    dir
}

/// samples/labels.csv: contact id → label.
fn sample_labels() -> BTreeMap<String, String> {
    let mut r = csv::Reader::from_path(testdata::repo("samples/labels.csv")).expect("labels");
    r.records()
        .map(|x| {
            let x = x.expect("row");
            (x[0].to_string(), x[1].to_string())
        })
        .collect()
}

/// The rows of a suggestion CSV, its header checked.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("to-label.csv");
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        ["contact_id", "excerpt", "suggested_label", "score", "label"]
    );
    r.records()
        .map(|x| {
            let x = x.expect("row");
            header
                .iter()
                .cloned()
                .zip(x.iter().map(String::from))
                .collect()
        })
        .collect()
}

fn write_labels(path: &Path, rows: &[(&str, &str)]) {
    let mut w = csv::Writer::from_path(path).expect("csv");
    w.write_record(["contact_id", "label"]).expect("header");
    for (id, label) in rows {
        w.write_record([*id, *label]).expect("row");
    }
    w.flush().expect("flush");
}

/// Checks what every suggestion list must hold: `n` calls of the samples, each once, none
/// of `labeled`, each with an excerpt and an empty label column.
fn check_list(rows: &[BTreeMap<String, String>], n: usize, labeled: &BTreeSet<String>) {
    let known = sample_labels();
    assert_eq!(rows.len(), n);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["contact_id"].as_str()).collect();
    assert_eq!(ids.len(), n, "a call suggested twice");
    for r in rows {
        let id = &r["contact_id"];
        assert!(known.contains_key(id), "{id} is not a sample call");
        assert!(!labeled.contains(id), "{id} was labeled already");
        assert!(!r["excerpt"].is_empty(), "{id}: no excerpt");
        assert!(
            r["label"].is_empty(),
            "{id}: the label column is for the person"
        );
    }
}

/// `calltype suggest --store BUCKET --n N --out OUT` with `by` (`--backbone DIR` or `--model
/// DIR`) and the `--labeled` CSV if any; windows of 64 tokens without a model.
fn suggest_args<'a>(
    bucket: &'a Path,
    by: [&'a str; 2],
    labeled: Option<&'a Path>,
    n: &'a str,
    out: &'a Path,
) -> Vec<&'a str> {
    let mut args = vec![
        "suggest",
        "--store",
        s(bucket),
        by[0],
        by[1],
        "--n",
        n,
        "--out",
        s(out),
    ];
    args.extend(["--max-tokens", "64"]);
    if let Some(l) = labeled {
        args.extend(["--labeled", s(l)]);
    }
    args
}

fn tiny_bert() -> Option<PathBuf> {
    testdata::shared("parity/tiny-bert")
}

#[test]
fn without_a_model_suggestions_cover_the_calls_once_and_skip_labeled_ones() {
    let Some(tiny) = tiny_bert() else { return };
    let bucket = ingested_bucket();
    let work = tempfile::tempdir().expect("tempdir");
    let known = sample_labels();
    // Five calls labeled already, two listed with their label left empty (still to do).
    let ids: Vec<&String> = known.keys().collect();
    let labeled_csv = work.path().join("labeled.csv");
    let mut given: Vec<(&str, &str)> = ids[..5].iter().map(|id| (id.as_str(), "billing")).collect();
    given.extend(ids[5..7].iter().map(|id| (id.as_str(), "")));
    write_labels(&labeled_csv, &given);
    let labeled: BTreeSet<String> = ids[..5].iter().map(|id| id.to_string()).collect();

    let out = work.path().join("to-label.csv");
    let args = suggest_args(
        bucket.path(),
        ["--backbone", s(&tiny)],
        Some(&labeled_csv),
        "20",
        &out,
    );
    let stderr = ok(&args);
    assert!(stderr.contains("20 call(s) to label"), "{stderr}");
    assert!(
        stderr.contains("120 in the masters, 5 labeled already"),
        "{stderr}"
    );
    let first = rows(&out);
    check_list(&first, 20, &labeled);
    assert!(first
        .iter()
        .all(|r| r["suggested_label"].is_empty() && r["score"].is_empty()));
    // Seeded: the same list again (an unfilled list may be overwritten).
    ok(&args);
    assert_eq!(rows(&out), first);

    // More than there are: every call not labeled, once.
    let all = work.path().join("all.csv");
    ok(&suggest_args(
        bucket.path(),
        ["--backbone", s(&tiny)],
        Some(&labeled_csv),
        "500",
        &all,
    ));
    check_list(&rows(&all), 115, &labeled);
}

#[test]
fn a_filled_in_list_trains_and_is_never_overwritten() {
    let Some(tiny) = tiny_bert() else { return };
    let bucket = ingested_bucket();
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("to-label.csv");
    ok(&suggest_args(
        bucket.path(),
        ["--backbone", s(&tiny)],
        None,
        "16",
        &out,
    ));
    // The person labels the first 12 and leaves 4 for later.
    let known = sample_labels();
    let mut r = csv::Reader::from_path(&out).expect("read");
    let header = r.headers().expect("header").clone();
    let mut w = csv::Writer::from_path(work.path().join("filled.csv")).expect("write");
    w.write_record(&header).expect("header");
    let mut filled = BTreeMap::new();
    for (i, rec) in r.records().enumerate() {
        let mut rec: Vec<String> = rec.expect("row").iter().map(String::from).collect();
        if i < 12 {
            rec[4] = known[&rec[0]].clone();
            filled.insert(rec[0].clone(), rec[4].clone());
        }
        w.write_record(&rec).expect("row");
    }
    w.flush().expect("flush");
    std::fs::rename(work.path().join("filled.csv"), &out).expect("rename");

    // Read back as it is: the 12 labeled rows train, the 4 empty ones are left out.
    let model = work.path().join("model");
    let (success, stdout, stderr) = calltype(&[
        "train",
        "--backbone",
        s(&tiny),
        "--data",
        s(bucket.path()),
        "--labels",
        s(&out),
        "--epochs",
        "1",
        "--max-tokens",
        "32",
        "--min-examples",
        "1",
        "--dev-fraction",
        "0",
        "--out",
        s(&model),
    ]);
    assert!(success, "train on the filled-in list\n{stdout}\n{stderr}");
    assert!(stdout.contains("on 12 examples"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).expect("config"))
            .expect("json");
    let trained: BTreeSet<String> = config["id2label"]
        .as_object()
        .expect("id2label")
        .values()
        .map(|v| v.as_str().expect("label").to_string())
        .collect();
    assert_eq!(trained, filled.values().cloned().collect());

    // A list holding labels is never overwritten; given with --labeled, its calls are done.
    let (success, _, stderr) = calltype(&suggest_args(
        bucket.path(),
        ["--backbone", s(&tiny)],
        None,
        "4",
        &out,
    ));
    assert!(
        !success && stderr.contains("already holds 12 label(s)"),
        "{stderr}"
    );
    let next = work.path().join("next.csv");
    ok(&suggest_args(
        bucket.path(),
        ["--model", s(&model)],
        Some(&out),
        "10",
        &next,
    ));
    let done: BTreeSet<String> = filled.keys().cloned().collect();
    let rows = rows(&next);
    check_list(&rows, 10, &done);
    // With a model: its labels, and the probability of each.
    for r in &rows {
        assert!(trained.contains(&r["suggested_label"]), "{r:?}");
        let p: f32 = r["score"].parse().expect("score");
        assert!(p > 0.0 && p <= 1.0, "{r:?}");
    }
}
