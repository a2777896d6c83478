//! The ingest handler on the repository's own fixtures (`samples/events/`, `samples/calls/`),
//! so a fresh clone without `../shared` runs it: every event shape the Lambda is wired to
//! receive, as a table, each followed by a redelivery of every shape.

use std::path::{Path, PathBuf};

use ingest::handler::handle;
use ingest::Settings;
use lambda_runtime::{Context, LambdaEvent};
use master_csv::encode::decode_rows;
use serde_json::{json, Value};
use store::{Condition, LocalStore, ObjectStore};

/// The bucket and (decoded) key every sample event names.
const BUCKET: &str = "calltype-demo";
const KEY: &str = "Analysis/Voice/Redacted/2026/11/20/aec9876d-d9c8-4e07-9d35-efb59fa7266a_analysis_redacted_2026-11-20T08:22:45Z.json";
const CONTACT_ID: &str = "aec9876d-d9c8-4e07-9d35-efb59fa7266a";
const MASTER: &str = "calltype/transcripts/date=2026-11-20/transcripts.csv";

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

fn sample_event(name: &str) -> Value {
    let path = samples().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A store holding the sample call at the key the events name (`:` as in S3, not the `_` of
/// the file name).
async fn store_with_the_call() -> (tempfile::TempDir, LocalStore) {
    let file = samples().join("calls").join(format!(
        "{CONTACT_ID}_analysis_redacted_2026-11-20T08_22_45Z.json"
    ));
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let body = std::fs::read(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    store.put(KEY, body, Condition::None).await.unwrap();
    (dir, store)
}

async fn invoke(store: &LocalStore, payload: Value) -> Value {
    handle(
        store,
        BUCKET,
        &Settings::default(),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
    .unwrap()
}

const SHAPES: &[&str] = &[
    "s3-notification.json",
    "sqs-s3-notification.json",
    "eventbridge-object-created.json",
];

#[tokio::test]
async fn every_sample_event_appends_its_call_once_and_every_redelivery_nothing() {
    // (event, a field of the handler's answer to the first delivery, its value)
    let answers = [
        ("s3-notification.json", "/appended", json!(1)),
        ("sqs-s3-notification.json", "/batchItemFailures", json!([])),
        ("eventbridge-object-created.json", "/appended", json!(1)),
    ];
    for (first, field, want) in answers {
        let (_dir, store) = store_with_the_call().await;
        let out = invoke(&store, sample_event(first)).await;
        assert_eq!(out.pointer(field), Some(&want), "{first}: {out}");
        for again in SHAPES {
            invoke(&store, sample_event(again)).await;
        }
        let master = store.get(MASTER).await.unwrap().expect("the master exists");
        let rows = decode_rows(&master.body).unwrap();
        assert_eq!(rows.len(), 1, "{first}, then every shape again");
        assert_eq!(rows[0].contact_id, CONTACT_ID, "{first}");
        assert_eq!(rows[0].source_key, KEY, "{first}");
        assert!(rows[0].redacted, "{first}");
        assert!(!rows[0].transcript.is_empty(), "{first}");
    }
}
