//! One contact, two analysis files: what a user counting labels in Athena sees.
//!
//! Contact Lens can write a second analysis for a contact (a later timestamp), and a change of
//! the configured copy makes ingest read the other copy (raw, then redacted) of contacts it has
//! already ingested. Both go through the real ingest core and the classify core on the
//! local-directory store, with real Contact Lens files: the contact must be labeled once, and
//! the analysis that was not used must be counted in the ingest report, not dropped silently.

use std::collections::HashMap;

use classify::{run, Settings};
use ingest::{ingest_batch, Copy, Fate};
use store::cas::RetryPolicy;
use store::{Condition, LocalStore, ObjectStore};

mod common;
use common::{labeled, today, Constant, TODAY};

const RAW_FILE: &str = "fixtures/contact-lens/voice_raw_v1.1.0_doc-2022-04-15.json";
const REDACTED_FILE: &str = "fixtures/contact-lens/voice_redacted_v1.1.0_doc-2022-04-15.json";

fn key(id: &str, redacted: bool, ts: &str) -> String {
    let (dir, name) = if redacted {
        ("Redacted/", "analysis_redacted")
    } else {
        ("", "analysis")
    };
    format!("connect/i/Analysis/Voice/{dir}2026/11/20/{id}_{name}_{ts}.json")
}

#[tokio::test]
async fn it_labels_a_contact_once_whatever_analyses_and_copies_arrive() {
    let (Some(raw), Some(redacted)) = (
        testdata::read_shared(RAW_FILE),
        testdata::read_shared(REDACTED_FILE),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let policy = RetryPolicy::default();
    let now = "2026-11-20T18:00:00Z";

    // Contact A: a redacted analysis, then a later one (another batch), then a third and a
    // redelivery of the first in one batch.
    let a1 = key("aaaa-1", true, "2026-11-20T10:00:00Z");
    let a2 = key("aaaa-1", true, "2026-11-20T11:30:00Z");
    let a3 = key("aaaa-1", true, "2026-11-20T12:00:00Z");
    // Contact B: ingested raw; the copy is then switched to redacted, and the redacted file of
    // the same contact arrives (or is re-ingested by `calltype ingest`).
    let b_raw = key("bbbb-2", false, "2026-11-20T10:00:00Z");
    let b_red = key("bbbb-2", true, "2026-11-20T10:00:00Z");
    for k in [&a1, &a2, &a3, &b_red] {
        s.put(k, redacted.clone(), Condition::None).await.unwrap();
    }
    s.put(&b_raw, raw.clone(), Condition::None).await.unwrap();

    let mut settings = ingest::Settings::default();
    let (_, r) = ingest_batch(&s, &settings, &policy, std::slice::from_ref(&a1), now).await;
    assert_eq!(r.appended, 1);
    let (fates, r) = ingest_batch(&s, &settings, &policy, std::slice::from_ref(&a2), now).await;
    assert_eq!((r.appended, r.superseded, r.duplicates), (0, 1, 0));
    assert_eq!(fates, [Fate::Superseded]);
    let (fates, r) = ingest_batch(&s, &settings, &policy, &[a3.clone(), a1.clone()], now).await;
    assert_eq!((r.appended, r.superseded, r.duplicates), (0, 1, 1));
    assert_eq!(fates, [Fate::Superseded, Fate::Ingested]);

    settings.copy = Copy::Raw;
    let (_, r) = ingest_batch(&s, &settings, &policy, std::slice::from_ref(&b_raw), now).await;
    assert_eq!(r.appended, 1);
    settings.copy = Copy::Redacted;
    let (fates, r) = ingest_batch(&s, &settings, &policy, std::slice::from_ref(&b_red), now).await;
    assert_eq!((r.appended, r.superseded), (0, 1), "{r:?}");
    assert_eq!(fates, [Fate::Superseded]);

    let report = run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert!(!report.failed());
    let rows = labeled(&s, TODAY).await;
    let mut per_contact: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        per_contact
            .entry(r["contact_id"].clone())
            .or_default()
            .push(r["source_key"].clone());
    }
    // The first analysis to arrive is the one counted.
    assert_eq!(per_contact.len(), 2, "{per_contact:?}");
    assert_eq!(per_contact["aaaa-1"], [a1]);
    assert_eq!(per_contact["bbbb-2"], [b_raw]);
}
