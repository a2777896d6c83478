//! The endpoint adapter through the real aws-sdk-sagemakerruntime client, pointed at a tiny
//! HTTP server that answers `/endpoints/{name}/invocations` as SageMaker would, with faults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use aws_sdk_sagemakerruntime::config::{BehaviorVersion, Credentials, Region};
use chrono::NaiveDate;
use classify::{
    run, Classifier, ClassifyError, EndpointClassifier, EndpointOptions, Settings, WireFormat,
};
use serde_json::Value;
use store::cas::RetryPolicy;
use store::{Condition, LocalStore, ObjectStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    content_type: String,
    accept: String,
    body: Vec<u8>,
    /// The status it was answered with.
    status: u16,
}

/// A fake SageMaker runtime: answers each request with the next queued fault status, or,
/// when none is left, labels every input by keyword.
#[derive(Default)]
struct Fake {
    faults: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Milliseconds to stall before answering, per request, first first.
    stalls: Mutex<VecDeque<u64>>,
    /// Answer with one label too few (a broken model).
    short_answers: std::sync::atomic::AtomicBool,
}

fn label_of(text: &str) -> &'static str {
    if text.contains("bill") {
        "billing"
    } else if text.contains("cancel") {
        "cancellation"
    } else {
        "other"
    }
}

impl Fake {
    fn answer(&self, req: &Seen) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
        if let Some(status) = self.faults.lock().unwrap().pop_front() {
            let (kind, msg) = match status {
                429 => ("ThrottlingException", "Rate exceeded"),
                400 => ("ValidationError", "Endpoint my-ep of account 1 not found."),
                503 => ("ServiceUnavailable", "Service unavailable"),
                424 => ("ModelError", ""),
                _ => ("InternalFailure", "An internal failure occurred"),
            };
            let body = if status == 424 {
                br#"{"message":"Received server error (503) from primary with message \"secret call text\"","OriginalStatusCode":503,"OriginalMessage":"secret call text","LogStreamArn":"arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/my-ep"}"#.to_vec()
            } else {
                format!(r#"{{"message":"{msg}"}}"#).into_bytes()
            };
            return (
                status,
                vec![
                    (
                        "x-amzn-ErrorType",
                        format!("{kind}:http://internal.amazon.com/"),
                    ),
                    ("Content-Type", "application/x-amz-json-1.1".into()),
                ],
                body,
            );
        }
        let short = self.short_answers.load(Ordering::SeqCst);
        let answer = |t: &str| serde_json::json!({"label": label_of(t), "score": 0.75});
        let body = if req.content_type == "application/jsonlines" {
            let lines: Vec<String> = std::str::from_utf8(&req.body)
                .unwrap()
                .lines()
                .map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    answer(v["inputs"].as_str().unwrap()).to_string() + "\n"
                })
                .collect();
            let keep = if short { lines.len() - 1 } else { lines.len() };
            lines[..keep].concat().into_bytes()
        } else {
            let v: Value = serde_json::from_slice(&req.body).unwrap();
            let mut out: Vec<Value> = v["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| answer(t.as_str().unwrap()))
                .collect();
            if short {
                out.pop();
            }
            serde_json::to_vec(&out).unwrap()
        };
        (200, vec![("Content-Type", req.accept.clone())], body)
    }
}

/// Starts the fake on 127.0.0.1 and returns its URL.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(connection(fake.clone(), conn));
        }
    });
    url
}

async fn connection(fake: Arc<Fake>, mut conn: TcpStream) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let req = Seen {
            path,
            content_type: header("content-type"),
            accept: header("accept"),
            body: buf[head_end..head_end + len].to_vec(),
            status: 0,
        };
        buf.drain(..head_end + len);

        let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let stall = fake.stalls.lock().unwrap().pop_front().unwrap_or(20);
        tokio::time::sleep(Duration::from_millis(stall)).await;
        let (status, headers, body) = fake.answer(&req);
        fake.seen.lock().unwrap().push(Seen { status, ..req });
        fake.in_flight.fetch_sub(1, Ordering::SeqCst);

        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("x-amzn-RequestId: test\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        if conn.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

fn client(url: &str) -> aws_sdk_sagemakerruntime::Client {
    let conf = aws_sdk_sagemakerruntime::Config::builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(500))
                .build(),
        )
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sagemakerruntime::Client::from_conf(conf)
}

fn options(format: WireFormat) -> EndpointOptions {
    let mut o = EndpointOptions::new("my-ep", format);
    o.max_batch_texts = 3;
    o.max_in_flight = 2;
    o.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    o
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 3 {
            0 => format!("{i}: my bill is \"wrong\"\nplease fix"),
            1 => format!("{i}: cancel my plan, now"),
            _ => format!("{i}: hello ünïcode"),
        })
        .collect()
}

#[tokio::test]
async fn it_retries_throttling_and_5xx_without_losing_texts_in_both_formats() {
    for format in [WireFormat::Json, WireFormat::JsonLines] {
        let fake = Arc::new(Fake::default());
        fake.faults.lock().unwrap().extend([429, 500, 503, 429]);
        let url = serve(fake.clone()).await;
        let c = EndpointClassifier::new(client(&url), options(format));
        assert_eq!(c.name(), "my-ep");
        let input = texts(10);
        let labels = c.classify(&input).await.unwrap();
        assert_eq!(labels.len(), 10, "{format:?}");
        for (t, l) in input.iter().zip(&labels) {
            assert_eq!(l.label, label_of(t), "{format:?}");
            assert!((l.score - 0.75).abs() < 1e-6);
        }
        let seen = fake.seen.lock().unwrap().clone();
        // 4 requests of at most 3 texts, plus the 4 faulted attempts.
        assert_eq!(seen.len(), 4 + 4, "{format:?}");
        for s in &seen {
            assert_eq!(s.path, "/endpoints/my-ep/invocations");
            assert_eq!(s.content_type, format.content_type());
            assert_eq!(s.accept, format.accept());
        }
        let max = fake.max_in_flight.load(Ordering::SeqCst);
        assert!((1..=2).contains(&max), "in flight {max}");
        // Every text reached the server in exactly one successful request, in order.
        let mut delivered: Vec<String> = Vec::new();
        for s in seen.iter().filter(|s| s.status == 200) {
            let batch: Vec<String> = match format {
                WireFormat::Json => {
                    let v: Value = serde_json::from_slice(&s.body).unwrap();
                    serde_json::from_value(v["inputs"].clone()).unwrap()
                }
                WireFormat::JsonLines => std::str::from_utf8(&s.body)
                    .unwrap()
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<Value>(l).unwrap()["inputs"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    })
                    .collect(),
            };
            assert!(batch.len() <= 3);
            delivered.extend(batch);
        }
        delivered.sort();
        let mut want = input.clone();
        want.sort();
        assert_eq!(delivered, want);
    }
}

#[tokio::test]
async fn it_gives_up_transient_after_max_attempts_and_at_once_on_permanent_errors() {
    let fake = Arc::new(Fake::default());
    fake.faults.lock().unwrap().extend([500; 5]);
    let url = serve(fake.clone()).await;
    let c = EndpointClassifier::new(client(&url), options(WireFormat::Json));
    let err = c.classify(&texts(2)).await.unwrap_err();
    assert!(matches!(err, ClassifyError::Transient(_)), "{err}");
    assert!(err.is_transient());
    assert_eq!(fake.seen.lock().unwrap().len(), 5);

    fake.faults.lock().unwrap().push_back(400);
    let err = c.classify(&texts(2)).await.unwrap_err();
    assert!(matches!(err, ClassifyError::Permanent(_)), "{err}");
    assert_eq!(
        fake.seen.lock().unwrap().len(),
        6,
        "a permanent error is not retried"
    );

    // A model container answering 503 is retried; its message (which may quote the input)
    // is not kept.
    fake.faults.lock().unwrap().extend([424; 5]);
    let err = c.classify(&texts(2)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("ModelError"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(fake.seen.lock().unwrap().len(), 11);

    fake.short_answers.store(true, Ordering::SeqCst);
    let err = c.classify(&texts(2)).await.unwrap_err();
    assert!(matches!(err, ClassifyError::Permanent(_)), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut o = options(WireFormat::Json);
    o.retry.max_attempts = 2;
    let c = EndpointClassifier::new(client(&url), o);
    let err = c.classify(&texts(1)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn the_core_labels_a_master_through_the_endpoint() {
    let fake = Arc::new(Fake::default());
    fake.faults.lock().unwrap().extend([429, 500]);
    let url = serve(fake.clone()).await;
    let c = EndpointClassifier::new(client(&url), options(WireFormat::JsonLines));
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let date = "2026-11-20";
    let rows: Vec<master_csv::Row> = texts(7)
        .into_iter()
        .enumerate()
        .map(|(i, t)| master_csv::Row {
            contact_id: format!("c{i}"),
            contact_date: date.into(),
            channel: "VOICE".into(),
            redacted: true,
            language: "en-US".into(),
            version: "1.1.0".into(),
            duration_ms: None,
            turns: 1,
            sentiment_customer: None,
            sentiment_agent: None,
            categories: String::new(),
            summary: String::new(),
            transcript: t,
            source_key: format!("in/c{i}.json"),
            instance_id: String::new(),
            ingested_at: "2026-11-20T00:00:00Z".into(),
        })
        .collect();
    let mut body = master_csv::encode::header();
    body.extend(master_csv::encode::encode_rows(&rows));
    let key = master_csv::Layout::default().master(date);
    s.put(&key, body, Condition::None).await.unwrap();

    let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let r = run(&s, &c, &Settings::default(), today).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!((r.counts.rows_labeled, r.counts.parts_written), (7, 1));
    assert_eq!(r.model, "my-ep");
    let parts = s.list("calltype/labeled/date=2026-11-20/").await.unwrap();
    let part = s.get(&parts[0].key).await.unwrap().unwrap().body;
    let mut rd = csv::Reader::from_reader(part.as_slice());
    let labels: Vec<String> = rd.records().map(|r| r.unwrap()[5].to_string()).collect();
    assert_eq!(
        labels,
        rows.iter()
            .map(|r| label_of(&r.transcript))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_timed_out_call_is_retried() {
    let fake = Arc::new(Fake::default());
    fake.stalls.lock().unwrap().push_back(3_000);
    let url = serve(fake.clone()).await;
    let mut o = options(WireFormat::Json);
    o.max_in_flight = 1;
    let c = EndpointClassifier::new(client(&url), o);
    let input = texts(2);
    let labels = c.classify(&input).await.unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels[0].label, label_of(&input[0]));
}
