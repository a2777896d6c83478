//! The `calltype` binary as a user runs it: `parse` on every shared fixture and bad input,
//! `ingest` on our samples, locally and against moto, twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn calltype(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calltype"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("calltype runs")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn assert_one_line_error(out: &Output) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("calltype: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn parse_prints_the_extracted_contact_for_every_post_call_fixture() {
    let Some(dir) = testdata::shared("fixtures/contact-lens") else {
        return;
    };
    let cases = [
        ("scv_voice_raw_v1.1.0_7c77422d_analysis_2022-06-22.json", None, "7c77422d-f9ba-4111-ad48-b2f5dadf854a", "VOICE", false),
        ("ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json", None, "3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "VOICE", true),
        ("chat_raw_CHAT-2022-11-30_doc-2023-02-18.json", None, "b49644f6-672f-445c-b209-f76b36482830", "CHAT", false),
        (
            "voice_redacted_v1.1.0_doc-2022-04-15.json",
            Some("Analysis/Voice/Redacted/2022/04/15/aaaaaaaa-1111-2222-3333-444444444444_analysis_redacted_2022-04-15T10:00:00Z.json"),
            "aaaaaaaa-1111-2222-3333-444444444444",
            "VOICE",
            true,
        ),
    ];
    for (file, key, id, channel, redacted) in cases {
        let path = dir.join(file);
        let mut args = vec!["parse", path.to_str().unwrap()];
        if let Some(k) = key {
            args.extend(["--key", k]);
        }
        let v = stdout_json(&calltype(&args));
        assert_eq!(v["contact_id"], id, "{file}");
        assert_eq!(v["channel"], channel, "{file}");
        assert_eq!(v["redacted"], redacted, "{file}");
        assert!(v["turns"].as_u64().unwrap() > 0, "{file}");
        let t = v["transcript"].as_str().unwrap();
        assert!(
            t.starts_with("AGENT: ") || t.starts_with("CUSTOMER: "),
            "{file}: {t}"
        );
        assert!(!t.contains('\n'));
    }
}

#[test]
fn parse_rejects_what_is_not_a_post_call_analysis_with_one_line() {
    let Some(dir) = testdata::shared("fixtures/contact-lens") else {
        return;
    };
    let rt = dir.join("scv_realtime_kinesis_segment_v1.0.0_Utterance.json");
    let out = calltype(&["parse", rt.to_str().unwrap()]);
    assert_one_line_error(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("real-time"));

    let tmp = tempfile::tempdir().unwrap();
    let bad: [(&str, &[u8]); 4] = [
        ("binary.json", &[0xff, 0xfe, 0x00, 0x41]),
        ("empty.json", b""),
        ("other.json", br#"{"hello": "world"}"#),
        (
            "cut.json",
            br#"{"Version": "1.1.0", "Transcript": [{"Content": "hi"#,
        ),
    ];
    for (name, bytes) in bad {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        assert_one_line_error(&calltype(&["parse", p.to_str().unwrap()]));
    }
    assert_one_line_error(&calltype(&["parse", "/no/such/file.json"]));
}

/// Copies samples/calls into `dest` under their Contact Lens keys (samples/manifest.csv).
fn stage_samples(dest: &Path) -> usize {
    let samples = testdata::repo("samples");
    let mut r = csv::Reader::from_path(samples.join("manifest.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (key_col, file_col) = (col("s3_key"), col("file"));
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        let to: PathBuf = dest.join(&rec[key_col]);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(samples.join(&rec[file_col]), to).unwrap();
        n += 1;
    }
    n
}

fn masters(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let root = dir.join("calltype/transcripts");
    let mut out = Vec::new();
    for d in std::fs::read_dir(root).unwrap() {
        let p = d.unwrap().path().join("transcripts.csv");
        out.push((p.clone(), std::fs::read(&p).unwrap()));
    }
    out.sort();
    out
}

#[test]
fn ingest_adds_every_sample_call_once_and_nothing_on_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    let staged = stage_samples(tmp.path());
    assert!(staged >= 100);
    let store = tmp.path().to_str().unwrap();
    let first = stdout_json(&calltype(&["ingest", "--store", store]));
    assert_eq!(first["appended"], staged);
    assert_eq!(first["quarantined"], 0);
    let before = masters(tmp.path());
    assert_eq!(before.len(), 3, "three contact dates");
    let rows: usize = before
        .iter()
        .map(|(_, b)| csv::Reader::from_reader(&b[..]).records().count())
        .sum();
    assert_eq!(rows, staged);

    let second = stdout_json(&calltype(&["ingest", "--store", store]));
    assert_eq!(second["appended"], 0);
    assert_eq!(masters(tmp.path()), before, "a second run changes nothing");
}

#[test]
fn ingest_works_against_s3_through_the_sdk() {
    let tmp = tempfile::tempdir().unwrap();
    let staged = stage_samples(tmp.path());
    let server = moto_harness::MotoServer::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(async {
        use store::ObjectStore;
        let s = server.fresh_bucket("cli").await;
        for entry in walk(tmp.path()) {
            let key = entry
                .strip_prefix(tmp.path())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let body = std::fs::read(&entry).unwrap();
            s.put(&key, body, store::Condition::None).await.unwrap();
        }
        s.bucket().to_string()
    });
    let url = format!("s3://{bucket}");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_calltype"))
            .args([
                "ingest",
                "--store",
                &url,
                "--endpoint-url",
                &server.endpoint(),
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    assert_eq!(stdout_json(&run())["appended"], staged);
    assert_eq!(stdout_json(&run())["appended"], 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
