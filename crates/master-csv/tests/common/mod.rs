//! What the append tests share: a row maker and the soundness check run after every scenario.

#![allow(dead_code)]

use std::collections::BTreeSet;

use master_csv::encode::present_contacts;
use master_csv::{check_invariants, Row};
use store::ObjectStore;

pub const KEY: &str = "calltype/transcripts/date=2026-11-20/transcripts.csv";

/// A redacted voice row for contact `id`.
pub fn row(id: &str, transcript: &str) -> Row {
    Row {
        contact_id: id.into(),
        contact_date: "2026-11-20".into(),
        channel: "VOICE".into(),
        redacted: true,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(1234),
        turns: 3,
        sentiment_customer: Some(-1.5),
        sentiment_agent: None,
        categories: "billing|escalation".into(),
        summary: String::new(),
        transcript: transcript.into(),
        source_key: format!(
            "Analysis/Voice/Redacted/2026/11/20/{id}_analysis_redacted_2026-11-20T10:00:00Z.json"
        ),
        instance_id: "inst".into(),
        ingested_at: "2026-11-20T10:05:00Z".into(),
    }
}

/// Rows `prefix-0 .. prefix-{n-1}` whose transcripts are `bytes` long.
pub fn rows(prefix: &str, n: usize, bytes: usize) -> Vec<Row> {
    let text = "word ".repeat(bytes / 5);
    (0..n)
        .map(|i| row(&format!("{prefix}-{i}"), &text))
        .collect()
}

/// The master at `key` holds exactly the contacts `want`, each once, and its ingest state
/// keeps the invariants ([`check_invariants`] finds nothing).
pub async fn assert_sound<S: ObjectStore>(
    store: &S,
    key: &str,
    want: &BTreeSet<String>,
    context: &str,
) {
    let violations = check_invariants(store, key).await.unwrap();
    assert!(violations.is_empty(), "{context}: {violations:?}");
    // No contact twice is one of the invariants; what is left is the census.
    let body = store.get(key).await.unwrap().map(|o| o.body);
    let have: BTreeSet<String> = present_contacts(&body.unwrap_or_default(), true)
        .unwrap()
        .into_keys()
        .collect();
    assert_eq!(&have, want, "{context}: the master's contacts");
}

/// The contact ids of `rows`.
pub fn ids<'a>(rows: impl IntoIterator<Item = &'a Row>) -> BTreeSet<String> {
    rows.into_iter().map(|r| r.contact_id.clone()).collect()
}
