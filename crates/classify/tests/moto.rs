//! The classify core against a real S3 emulator (`moto_server`, started by the harness):
//! conditional puts, ranged GETs and ETags as S3 answers them, crashes at every call, and
//! overlapping runs.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use classify::{run, watermark_key, Classifier, ClassifyError, Label, Settings, Watermark};
use master_csv::encode::{encode_rows, header};
use master_csv::{Layout, Row};
use moto_harness::MotoServer;
use store::{Condition, CrashAfter, ObjectStore};
use store_s3::S3Store;

const DATE: &str = "2026-11-20";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn row(id: &str, transcript: &str) -> Row {
    Row {
        contact_id: id.into(),
        contact_date: DATE.into(),
        channel: "CHAT".into(),
        redacted: false,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: None,
        turns: 1,
        sentiment_customer: None,
        sentiment_agent: None,
        categories: String::new(),
        summary: String::new(),
        transcript: transcript.into(),
        source_key: format!("Analysis/Chat/{id}_analysis.json"),
        instance_id: String::new(),
        ingested_at: "2026-11-20T00:00:00Z".into(),
    }
}

#[derive(Default)]
struct Upper {
    texts: AtomicU64,
}

impl Classifier for Upper {
    fn name(&self) -> &str {
        "upper"
    }
    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        self.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(texts
            .iter()
            .map(|t| Label {
                label: t.to_uppercase(),
                score: 0.5,
                scores: None,
            })
            .collect())
    }
}

async fn append(s: &S3Store, rows: &[Row]) {
    let key = Layout::default().master(DATE);
    let mut body = match s.get(&key).await.unwrap() {
        Some(o) => o.body,
        None => header(),
    };
    body.extend(encode_rows(rows));
    s.put(&key, body, Condition::None).await.unwrap();
}

/// The labeled contact ids, sorted.
async fn labeled(s: &S3Store) -> Vec<String> {
    let mut ids = Vec::new();
    for meta in s
        .list(&format!("calltype/labeled/date={DATE}/"))
        .await
        .unwrap()
    {
        let body = s.get(&meta.key).await.unwrap().unwrap().body;
        let mut r = csv::Reader::from_reader(body.as_slice());
        for rec in r.records() {
            ids.push(rec.unwrap()[0].to_string());
        }
    }
    ids.sort();
    ids
}

async fn caught_up(s: &S3Store) -> bool {
    let wm = s
        .get(&watermark_key(&Layout::default(), DATE))
        .await
        .unwrap()
        .map(|o| serde_json::from_slice::<Watermark>(&o.body).unwrap());
    let size = s
        .head(&Layout::default().master(DATE))
        .await
        .unwrap()
        .unwrap()
        .size;
    wm.is_some_and(|w| w.offset == size && w.pending.is_none())
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("c{i:02}")).collect()
}

#[tokio::test]
async fn it_labels_appends_exactly_once_on_s3() {
    let moto = MotoServer::shared();
    let s = moto.fresh_bucket("classify").await;
    let c = Upper::default();
    let first: Vec<Row> = ids(0..3).iter().map(|id| row(id, "hello")).collect();
    append(&s, &first).await;
    let r = run(&s, &c, &Settings::default(), today()).await.unwrap();
    assert_eq!((r.counts.rows_labeled, r.counts.parts_written), (3, 1));
    let more: Vec<Row> = ids(3..5).iter().map(|id| row(id, "bye")).collect();
    append(&s, &more).await;
    let r = run(&s, &c, &Settings::default(), today()).await.unwrap();
    assert_eq!((r.counts.rows_labeled, r.counts.parts_written), (2, 1));
    let r = run(&s, &c, &Settings::default(), today()).await.unwrap();
    assert_eq!(r.counts.rows_read, 0);
    assert_eq!(labeled(&s).await, ids(0..5));
    assert!(caught_up(&s).await);
    assert_eq!(c.texts.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_crash_at_any_call_then_a_rerun_labels_every_row_once_on_s3() {
    let moto = MotoServer::shared();
    let cfg = Settings {
        max_part_bytes: 300,
        ..Settings::default()
    };
    for n in 1.. {
        let s = moto.fresh_bucket("classify-crash").await;
        let c = Upper::default();
        let first: Vec<Row> = ids(0..4).iter().map(|id| row(id, "a")).collect();
        append(&s, &first).await;
        let crashing = CrashAfter::new(s.clone(), n).losing_reply();
        let r = run(&crashing, &c, &cfg, today()).await.unwrap();
        let crashed = crashing.crashed();
        assert_eq!(r.failed(), crashed, "n={n}");
        let more: Vec<Row> = ids(4..6).iter().map(|id| row(id, "b")).collect();
        append(&s, &more).await;
        let r = run(&s, &c, &cfg, today()).await.unwrap();
        assert!(!r.failed(), "n={n}: {r:?}");
        assert_eq!(labeled(&s).await, ids(0..6), "n={n}");
        assert!(caught_up(&s).await, "n={n}");
        if !crashed {
            assert!(n > 5);
            break;
        }
    }
}

#[tokio::test]
async fn overlapping_runs_label_every_row_once_on_s3() {
    let moto = MotoServer::shared();
    let s = moto.fresh_bucket("classify-overlap").await;
    let cfg = Settings {
        max_part_bytes: 250,
        ..Settings::default()
    };
    let rows: Vec<Row> = ids(0..10).iter().map(|id| row(id, "x")).collect();
    append(&s, &rows).await;
    let (c1, c2) = (Upper::default(), Upper::default());
    let (a, b) = tokio::join!(run(&s, &c1, &cfg, today()), run(&s, &c2, &cfg, today()));
    assert!(!a.unwrap().failed());
    assert!(!b.unwrap().failed());
    assert_eq!(labeled(&s).await, ids(0..10));
    assert!(caught_up(&s).await);
}
