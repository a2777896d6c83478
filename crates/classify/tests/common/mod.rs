//! Helpers shared by the classify tests: master rows, labeled-part readers, and what SageMaker
//! does with a batch-transform job's input (one keyword label per JSON Lines record, in order).

#![allow(dead_code)]

use std::collections::HashMap;

use chrono::NaiveDate;
use classify::{watermark_key, Classifier, ClassifyError, Label, Watermark, LABELED_COLUMNS};
use master_csv::encode::{encode_rows, header};
use master_csv::{Layout, Row};
use store::{Condition, ObjectStore};

pub const TODAY: &str = "2026-11-20";

/// Labels every text `other` with score 1: for tests where the answer does not matter.
pub struct Constant;

impl Classifier for Constant {
    fn name(&self) -> &str {
        "constant-v1"
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        Ok(texts
            .iter()
            .map(|_| Label {
                label: "other".into(),
                score: 1.0,
                scores: None,
            })
            .collect())
    }
}

pub fn today() -> NaiveDate {
    NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap()
}

pub fn row(date: &str, id: &str, transcript: &str) -> Row {
    Row {
        contact_id: id.into(),
        contact_date: date.into(),
        channel: "VOICE".into(),
        redacted: true,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(1000),
        turns: 2,
        sentiment_customer: None,
        sentiment_agent: Some(1.0),
        categories: String::new(),
        summary: String::new(),
        transcript: transcript.into(),
        source_key: format!("Analysis/Voice/Redacted/{id}_analysis.json"),
        instance_id: "inst".into(),
        ingested_at: "2026-11-20T10:00:00Z".into(),
    }
}

pub fn master(date: &str) -> String {
    Layout::default().master(date)
}

/// Appends rows to a master, creating it with its header if needed.
pub async fn append<S: ObjectStore>(s: &S, date: &str, rows: &[Row]) {
    let key = master(date);
    let mut body = match s.get(&key).await.unwrap() {
        Some(o) => o.body,
        None => header(),
    };
    body.extend_from_slice(&encode_rows(rows));
    s.put(&key, body, Condition::None).await.unwrap();
}

/// Every labeled record of a partition, checking one header per part.
pub async fn labeled<S: ObjectStore>(s: &S, date: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    for meta in s
        .list(&format!("calltype/labeled/date={date}/"))
        .await
        .unwrap()
    {
        let body = s.get(&meta.key).await.unwrap().unwrap().body;
        let mut r = csv::Reader::from_reader(body.as_slice());
        let headers = r.headers().unwrap().clone();
        assert_eq!(headers.iter().collect::<Vec<_>>(), LABELED_COLUMNS);
        for rec in r.records() {
            let rec = rec.unwrap();
            out.push(
                headers
                    .iter()
                    .zip(rec.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    out
}

/// Asserts that each of `ids` is labeled exactly once in `date`, and nothing else is.
pub async fn assert_labeled_once<S: ObjectStore>(s: &S, date: &str, ids: &[&str]) {
    let mut got: Vec<String> = labeled(s, date)
        .await
        .into_iter()
        .map(|r| r["contact_id"].clone())
        .collect();
    got.sort();
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "labeled rows of {date}");
}

pub async fn watermark<S: ObjectStore>(s: &S, date: &str) -> Option<Watermark> {
    s.get(&watermark_key(&Layout::default(), date))
        .await
        .unwrap()
        .map(|o| serde_json::from_slice(&o.body).unwrap())
}

pub async fn master_size<S: ObjectStore>(s: &S, date: &str) -> u64 {
    s.head(&master(date)).await.unwrap().unwrap().size
}

/// Objects left under `state/transform/`.
pub async fn transform_state<S: ObjectStore>(s: &S) -> Vec<String> {
    s.list("calltype/state/transform/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect()
}

/// The label our keyword "model" gives a text.
pub fn keyword(text: &str) -> &'static str {
    if text.contains("bill") {
        "billing"
    } else if text.contains("cancel") {
        "cancellation"
    } else {
        "other"
    }
}

/// What a transform job writes for `input` (JSON Lines): one answer per record, in order, as
/// the model server answers a MultiRecord request, one request per `per_request` records, each
/// answer followed by a newline (`AssembleWith=Line`).
pub fn keyword_output(input: &[u8], per_request: usize) -> Vec<u8> {
    let texts: Vec<String> = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            v["inputs"].as_str().unwrap().to_string()
        })
        .collect();
    let mut out = Vec::new();
    for chunk in texts.chunks(per_request.max(1)) {
        for t in chunk {
            let answer = serde_json::json!({"label": keyword(t), "score": 0.75});
            out.extend_from_slice(answer.to_string().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}
