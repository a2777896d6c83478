//! The batch-transform data plane end to end: the classify core writes a job's JSON Lines
//! input, and the job is run the way SageMaker runs it against our container (`calltype serve`
//! with `SAGEMAKER_MAX_PAYLOAD_IN_MB`): `GET /ping`, `GET /execution-parameters`, then the
//! input's lines packed into `MultiRecord` requests of at most `MaxPayloadInMB` posted to
//! `/invocations` as `application/jsonlines`, the answers written in order, each followed by a
//! newline (`AssembleWith=Line`), to `<output path>/<input basename>.out`. The next run joins
//! that output back to the rows: every master row ends with exactly one labeled row, labeled
//! as the model predicts it in-process.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use classify::transform::{output_key, run};
use classify::{
    ClassifyError, Created, JobRequest, JobState, JobStatus, Settings, TransformJobs,
    TransformSettings,
};
use master_csv::encode::{encode_rows, header};
use master_csv::{Layout, Row};
use store::{Condition, LocalStore, ObjectStore};

const BIN: &str = env!("CARGO_BIN_EXE_calltype");
const TODAY: &str = "2026-11-20";
const PAYLOAD_MB: u32 = 1;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `calltype serve` as SageMaker starts the container for a job of `MaxPayloadInMB=1`.
fn start_serve(model: &Path) -> (Server, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--model")
        .arg(model)
        .env("SAGEMAKER_MAX_PAYLOAD_IN_MB", PAYLOAD_MB.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let started = Instant::now();
    while http(port, "GET", "/ping", b"").map(|r| r.0) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// One HTTP/1.1 request on its own connection: `(status, body)`, or `None` if it could not
/// connect.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jsonlines\r\n\
         Accept: application/jsonlines\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    Some((status, resp[split + 4..].to_vec()))
}

/// A job: what it was asked, its state and why it failed.
type Job = (JobRequest, JobState, Option<String>);

/// SageMaker for these tests: the control plane in memory, and [`Self::run_jobs`] doing what a
/// job does against the container.
struct LocalSageMaker {
    port: u16,
    jobs: Mutex<BTreeMap<String, Job>>,
    /// Records per `/invocations` request, over every job run.
    requests: Mutex<Vec<usize>>,
}

impl TransformJobs for LocalSageMaker {
    fn model(&self) -> &str {
        "tiny-bert"
    }

    async fn create(&self, job: &JobRequest) -> Result<Created, ClassifyError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&job.name) {
            return Ok(Created::AlreadyExists);
        }
        jobs.insert(job.name.clone(), (job.clone(), JobState::InProgress, None));
        Ok(Created::Started)
    }

    async fn describe(&self, name: &str) -> Result<Option<JobStatus>, ClassifyError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .get(name)
            .map(|(req, state, reason)| JobStatus {
                state: *state,
                failure_reason: reason.clone(),
                input_key: Some(req.input_key.clone()),
            }))
    }
}

impl LocalSageMaker {
    async fn run_jobs<S: ObjectStore>(&self, store: &S) {
        let running: Vec<JobRequest> = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|j| j.1 == JobState::InProgress)
            .map(|j| j.0.clone())
            .collect();
        for req in running {
            let input = store.get(&req.input_key).await.unwrap().unwrap().body;
            let port = self.port;
            let (out, per_request) =
                tokio::task::spawn_blocking(move || transform(port, &input, PAYLOAD_MB))
                    .await
                    .unwrap();
            let end = match out {
                Ok(out) => {
                    store
                        .put(
                            &output_key(&req.output_prefix, &req.input_key),
                            out,
                            Condition::None,
                        )
                        .await
                        .unwrap();
                    (JobState::Completed, None)
                }
                Err(reason) => (JobState::Failed, Some(reason)),
            };
            self.requests.lock().unwrap().extend(per_request);
            let mut jobs = self.jobs.lock().unwrap();
            let job = jobs.get_mut(&req.name).unwrap();
            (job.1, job.2) = end;
        }
    }
}

/// One job's data plane: the output object, or why the job failed; and records per request.
fn transform(port: u16, input: &[u8], payload_mb: u32) -> (Result<Vec<u8>, String>, Vec<usize>) {
    let max = payload_mb as usize * 1024 * 1024;
    assert_eq!(http(port, "GET", "/ping", b"").unwrap().0, 200);
    let (status, params) = http(port, "GET", "/execution-parameters", b"").unwrap();
    assert_eq!(status, 200);
    let params: serde_json::Value = serde_json::from_slice(&params).unwrap();
    assert_eq!(params["BatchStrategy"], "MULTI_RECORD");
    assert_eq!(params["MaxPayloadInMB"], payload_mb);
    // SplitType=Line: records are lines; MultiRecord: as many as fit in one request.
    let mut batches: Vec<Vec<u8>> = Vec::new();
    let mut per_request = Vec::new();
    for record in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if record.len() + 1 > max {
            return (
                Err("ClientError: a record exceeds MaxPayloadInMB".into()),
                per_request,
            );
        }
        match batches.last_mut() {
            Some(b) if b.len() + record.len() < max => {
                *per_request.last_mut().unwrap() += 1;
                b.extend_from_slice(record);
                b.push(b'\n');
            }
            _ => {
                per_request.push(1);
                batches.push([record, b"\n"].concat());
            }
        }
    }
    let mut out = Vec::new();
    for body in batches {
        let (status, answer) = http(port, "POST", "/invocations", &body).unwrap();
        if status != 200 {
            return (
                Err(format!("ClientError: the container answered {status}")),
                per_request,
            );
        }
        out.extend_from_slice(&answer);
        out.push(b'\n');
    }
    (Ok(out), per_request)
}

const LABELS: [&str; 4] = ["billing", "cancel", "card", "tech_support"];

/// A few phrasings per label.
fn phrases(label: &str) -> [&'static str; 4] {
    match label {
        "billing" => [
            "I was charged twice on my last bill",
            "why is my invoice higher this month",
            "there is a fee on my statement I do not recognise",
            "I want a refund for the double payment",
        ],
        "cancel" => [
            "I want to cancel my subscription",
            "please close my account today",
            "how do I end my contract",
            "terminate my plan please",
        ],
        "card" => [
            "my new card has not arrived",
            "my card was stolen last night",
            "I need to block my debit card",
            "please send me a replacement card",
        ],
        _ => [
            "the app crashes when I log in",
            "my internet keeps dropping",
            "I cannot reset my password",
            "the router lights are blinking red",
        ],
    }
}

/// A small model fine-tuned from the tiny BERT on the phrases, so that its answers differ
/// from text to text and a misjoined row shows.
fn train(backbone: &Path, dir: &Path) -> PathBuf {
    let data = dir.join("train.csv");
    let mut w = csv::Writer::from_path(&data).unwrap();
    w.write_record(["contact_id", "transcript", "label"])
        .unwrap();
    for label in LABELS {
        for (i, p) in phrases(label).iter().enumerate() {
            w.write_record([&format!("{label}-{i}"), *p, label])
                .unwrap();
        }
    }
    w.flush().unwrap();
    let out = dir.join("model");
    let status = Command::new(BIN)
        .arg("train")
        .arg("--backbone")
        .arg(backbone)
        .arg("--data")
        .arg(&data)
        .args(["--epochs", "40", "--batch-size", "8", "--max-tokens", "32"])
        .args(["--lr", "5e-3", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// A deterministic call of about `len` bytes, mostly about `LABELS[seed % 4]`.
fn transcript(seed: u64, len: usize) -> String {
    let topic = phrases(LABELS[seed as usize % LABELS.len()]);
    let other = phrases(LABELS[(seed as usize / 4) % LABELS.len()]);
    let mut x = seed;
    let mut out = String::new();
    while out.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (x >> 33) as usize;
        let p = if r.is_multiple_of(5) {
            other[r % 4]
        } else {
            topic[r % 4]
        };
        out.push_str(if r.is_multiple_of(2) {
            "CUSTOMER: "
        } else {
            "AGENT: "
        });
        out.push_str(p);
        out.push_str(". ");
    }
    out
}

fn row(id: &str, text: String) -> Row {
    Row {
        contact_id: id.into(),
        contact_date: TODAY.into(),
        channel: "VOICE".into(),
        redacted: true,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(60_000),
        turns: 10,
        sentiment_customer: None,
        sentiment_agent: None,
        categories: String::new(),
        summary: String::new(),
        transcript: text,
        source_key: format!("Analysis/Voice/Redacted/{id}_analysis.json"),
        instance_id: "inst".into(),
        ingested_at: "2026-11-20T10:00:00Z".into(),
    }
}

async fn append(s: &LocalStore, rows: &[Row]) {
    let key = Layout::default().master(TODAY);
    let mut body = match s.get(&key).await.unwrap() {
        Some(o) => o.body,
        None => header(),
    };
    body.extend_from_slice(&encode_rows(rows));
    s.put(&key, body, Condition::None).await.unwrap();
}

/// contact id → every (label, score) in the labeled parts.
async fn labeled(s: &LocalStore) -> BTreeMap<String, Vec<(String, f32)>> {
    let mut out: BTreeMap<String, Vec<(String, f32)>> = BTreeMap::new();
    for m in s
        .list(&format!("calltype/labeled/date={TODAY}/"))
        .await
        .unwrap()
    {
        let body = s.get(&m.key).await.unwrap().unwrap().body;
        let mut r = csv::Reader::from_reader(body.as_slice());
        for rec in r.records() {
            let rec = rec.unwrap();
            assert_eq!(&rec[7], "tiny-bert");
            out.entry(rec[0].to_string())
                .or_default()
                .push((rec[5].to_string(), rec[6].parse().unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_job_run_by_our_server_labels_every_row_once_as_the_model_predicts() {
    let Some(backbone) = testdata::shared("parity/tiny-bert") else {
        return;
    };
    let models = tempfile::tempdir().unwrap();
    let model = train(&backbone, models.path());
    let (_server, port) = start_serve(&model);
    let sm = LocalSageMaker {
        port,
        jobs: Mutex::default(),
        requests: Mutex::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let today = NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap();
    let cfg = Settings::default();
    let t = TransformSettings {
        max_payload_mb: PAYLOAD_MB,
        ..TransformSettings::new("tiny-bert")
    };

    // About 2.4 MB of transcripts: several MultiRecord requests of at most 1 MiB.
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let first: Vec<Row> = (0..60u64)
        .map(|i| {
            let id = format!("c{i:03}");
            let text = transcript(i, 5_000 + (i as usize * 7_919) % 70_000);
            texts.insert(id.clone(), text.clone());
            row(&id, text)
        })
        .collect();
    append(&s, &first).await;

    let r = run(&s, &sm, &cfg, &t, today).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!(
        (
            r.counts.jobs_started,
            r.counts.rows_pending,
            r.counts.rows_labeled
        ),
        (1, 60, 0)
    );
    sm.run_jobs(&s).await;
    let per_request = sm.requests.lock().unwrap().clone();
    assert!(per_request.len() >= 3, "{per_request:?}");
    assert!(per_request.iter().all(|&n| n > 1), "{per_request:?}");
    assert_eq!(per_request.iter().sum::<usize>(), 60);

    let r = run(&s, &sm, &cfg, &t, today).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.rows_failed
        ),
        (60, 60, 0)
    );
    assert_eq!(r.counts.jobs_pending, 0);

    // A later append gets its own job; nothing is labeled twice.
    let more: Vec<Row> = (60..65u64)
        .map(|i| {
            let id = format!("c{i:03}");
            let text = transcript(i, 300);
            texts.insert(id.clone(), text.clone());
            row(&id, text)
        })
        .collect();
    append(&s, &more).await;
    let r = run(&s, &sm, &cfg, &t, today).await.unwrap();
    assert_eq!((r.counts.jobs_started, r.counts.rows_pending), (1, 5));
    sm.run_jobs(&s).await;
    let r = run(&s, &sm, &cfg, &t, today).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 5);
    let r = run(&s, &sm, &cfg, &t, today).await.unwrap();
    assert_eq!((r.counts.rows_read, r.counts.jobs_started), (0, 0));
    assert!(s
        .list("calltype/state/transform/")
        .await
        .unwrap()
        .is_empty());

    let got = labeled(&s).await;
    assert_eq!(got.len(), texts.len(), "every row labeled");
    assert!(got.values().all(|l| l.len() == 1), "no row labeled twice");
    let clf = model::Classifier::load(&model).unwrap();
    let refs: Vec<&str> = texts.values().map(String::as_str).collect();
    let want = clf.predict(&refs).unwrap();
    let distinct: std::collections::BTreeSet<&str> =
        want.iter().map(|p| p.label.as_str()).collect();
    assert!(distinct.len() >= 3, "the model answers {distinct:?} only");
    for ((id, _), p) in texts.iter().zip(want) {
        let (label, score) = &got[id][0];
        assert_eq!(label, &p.label, "{id}");
        assert!(
            (score - p.score).abs() < 1e-3,
            "{id}: {score} vs {}",
            p.score
        );
    }
}
