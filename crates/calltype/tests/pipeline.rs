//! End to end, through the binary and the real SDK clients: the STAR dev documents are put
//! under Contact Lens keys in an S3 emulator (moto), ingested, and classified through
//! `calltype serve` as a SageMaker endpoint; then again in-process on a local directory. Every
//! contact ends with exactly one labeled row whose label is what `calltype predict` says.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use store::ObjectStore;

const BIN: &str = env!("CARGO_BIN_EXE_calltype");

fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("RUST_LOG")
}

fn run_json(args: &[&str]) -> Value {
    let out: Output = aws_env(&mut Command::new(BIN)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// STAR dev files as (Contact Lens key, path).
fn star_dev() -> Option<Vec<(String, PathBuf)>> {
    let dir = testdata::shared("datasets/star-contactlens/dev")?;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let (id, ts) = stem.split_once("_analysis_").unwrap();
        let (date, time) = ts.split_once('T').unwrap();
        let key = format!(
            "Analysis/Voice/{}/{id}_analysis_{date}T{}.json",
            date.replace('-', "/"),
            time.replace('_', ":")
        );
        out.push((key, p));
    }
    out.sort();
    Some(out)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A local bucket holding `docs` (key, file) at their keys.
fn local_bucket(docs: &[(String, PathBuf)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (key, path) in docs {
        let to = tmp.path().join(key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(path, to).unwrap();
    }
    tmp
}

fn start_serve(model: &Path) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--model",
        ])
        .arg(model)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let started = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

/// contact id → transcript, from every master CSV's bytes.
fn transcripts(masters: &[Vec<u8>]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in masters {
        for row in master_csv::encode::decode_rows(m).unwrap() {
            assert!(
                out.insert(row.contact_id, row.transcript).is_none(),
                "a contact twice in the masters"
            );
        }
    }
    out
}

/// contact id → labels, from every labeled part.
fn labels(parts: &[Vec<u8>]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in parts {
        let mut r = csv::Reader::from_reader(&p[..]);
        let h = r.headers().unwrap().clone();
        let (id, label) = (
            h.iter().position(|c| c == "contact_id").unwrap(),
            h.iter().position(|c| c == "label").unwrap(),
        );
        for rec in r.records() {
            let rec = rec.unwrap();
            out.entry(rec[id].to_string())
                .or_default()
                .push(rec[label].to_string());
        }
    }
    out
}

/// `calltype predict` on the masters' transcripts: contact id → label.
fn predicted(model: &Path, texts: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("in.csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    w.write_record(["contact_id", "transcript"]).unwrap();
    for (id, t) in texts {
        w.write_record([id, t]).unwrap();
    }
    w.flush().unwrap();
    let out = Command::new(BIN)
        .args([
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            csv_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["contact_id"].as_str().unwrap().to_string(),
                v["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_exactly_once_and_as_predicted(
    model: &Path,
    docs: usize,
    masters: &[Vec<u8>],
    parts: &[Vec<u8>],
) {
    let texts = transcripts(masters);
    assert_eq!(texts.len(), docs, "every document ingested once");
    let labeled = labels(parts);
    assert_eq!(labeled.len(), docs, "every contact labeled");
    assert!(
        labeled.values().all(|l| l.len() == 1),
        "no contact labeled twice"
    );
    let predicted = predicted(model, &texts);
    let differ: Vec<_> = labeled
        .iter()
        .filter(|(id, l)| predicted.get(*id) != Some(&l[0]))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        differ.is_empty(),
        "{} labels differ from calltype predict: {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
}

#[test]
fn star_dev_through_moto_ingest_and_a_sagemaker_endpoint_served_by_calltype_serve() {
    let Some(docs) = star_dev() else { return };
    let Some(model) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let server = moto_harness::MotoServer::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bucket = rt.block_on(async {
        let s = server.fresh_bucket("e2e").await;
        for (key, path) in &docs {
            s.put(key, std::fs::read(path).unwrap(), store::Condition::None)
                .await
                .unwrap();
        }
        s
    });
    let url = format!("s3://{}", bucket.bucket());
    let moto = server.endpoint();
    let ingest = [
        "ingest",
        "--store",
        &url,
        "--endpoint-url",
        &moto,
        "--copy",
        "raw",
    ];
    assert_eq!(run_json(&ingest)["appended"], docs.len());

    let (_serve, endpoint_url) = start_serve(&model);
    let classify = [
        "classify",
        "--store",
        &url,
        "--endpoint-url",
        &moto,
        "--endpoint",
        "calltype",
        "--sagemaker-endpoint-url",
        &endpoint_url,
        "--all-dates",
    ];
    let report = run_json(&classify);
    assert_eq!(report["rows_labeled"], docs.len());
    assert_eq!(report["rows_failed"], 0);
    // A second run finds nothing new and writes no part.
    let again = run_json(&classify);
    assert_eq!(again["rows_labeled"], 0);
    assert_eq!(again["parts_written"], 0);

    let (masters, parts) = rt.block_on(async {
        let mut masters = Vec::new();
        let mut parts = Vec::new();
        for m in bucket.list("calltype/").await.unwrap() {
            let body = bucket.get(&m.key).await.unwrap().unwrap().body;
            if m.key.starts_with("calltype/transcripts/") && m.key.ends_with(".csv") {
                masters.push(body);
            } else if m.key.starts_with("calltype/labeled/") {
                parts.push(body);
            }
        }
        (masters, parts)
    });
    assert_exactly_once_and_as_predicted(&model, docs.len(), &masters, &parts);
}

#[test]
fn star_dev_on_a_local_directory_with_the_model_in_process() {
    let Some(docs) = star_dev() else { return };
    let Some(model) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let tmp = local_bucket(&docs);
    let dir = tmp.path().to_str().unwrap();
    assert_eq!(
        run_json(&["ingest", "--store", dir, "--copy", "raw"])["appended"],
        docs.len()
    );
    let classify = [
        "classify",
        "--store",
        dir,
        "--model",
        model.to_str().unwrap(),
        "--all-dates",
    ];
    assert_eq!(run_json(&classify)["rows_labeled"], docs.len());
    assert_eq!(run_json(&classify)["rows_labeled"], 0);
    let read_all = |sub: &str| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let root = tmp.path().join("calltype").join(sub);
        for d in std::fs::read_dir(root).unwrap() {
            for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|e| e == "csv") {
                    out.push(std::fs::read(p).unwrap());
                }
            }
        }
        out
    };
    assert_exactly_once_and_as_predicted(
        &model,
        docs.len(),
        &read_all("transcripts"),
        &read_all("labeled"),
    );
}

/// A new user's first run: calls from 2024 in a local bucket, `calltype ingest`, then
/// `calltype classify` with no date flags labels every one of them; piped, it prints the JSON
/// report (`--json` prints the same), and a second run labels nothing.
#[test]
fn calls_from_2024_are_labeled_with_no_date_flags_and_piped_output_is_the_report() {
    let Some(docs) = star_dev() else { return };
    let Some(model) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let docs = &docs[..6];
    assert!(docs.iter().all(|(key, _)| key.contains("/2024/")));
    let tmp = local_bucket(docs);
    let dir = tmp.path().to_str().unwrap();
    assert_eq!(
        run_json(&["ingest", "--store", dir, "--copy", "raw"])["appended"],
        docs.len()
    );
    let model = model.to_str().unwrap();
    let report = run_json(&["classify", "--store", dir, "--model", model]);
    assert_eq!(report["rows_labeled"], docs.len(), "{report}");
    assert_eq!(report["rows_failed"], 0);
    let dates: Vec<&str> = report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rows_labeled"].as_u64() > Some(0))
        .map(|p| p["date"].as_str().unwrap())
        .collect();
    assert!(!dates.is_empty() && dates.iter().all(|d| d.starts_with("2024-")));
    let again = run_json(&["classify", "--store", dir, "--model", model, "--json"]);
    assert_eq!(again["rows_labeled"], 0);
    assert_eq!(again["parts_written"], 0);
}
