//! The ingest handler through `lambda_runtime::LambdaEvent`, for the three event shapes, on the
//! local-directory store with real Contact Lens files and real-shaped events from ../shared.

use ingest::handler::handle;
use ingest::Settings;
use lambda_runtime::{Context, LambdaEvent};
use master_csv::encode::decode_rows;
use master_csv::Layout;
use serde_json::{json, Value};
use store::{Condition, LocalStore, ObjectStore};

const BUCKET: &str = "example-connect-bucket";
const REDACTED_FILE: &str =
    "fixtures/contact-lens/ciopulse_voice_redacted_v1.1.0_sanitised-live_2026-09-16.json";
const S3_EVENT: &str =
    "fixtures/events/ciopulse_s3-notification_voice-redacted_urlencoded-key.json";
const EB_EVENT: &str = "fixtures/events/ciopulse_eventbridge_voice-redacted.json";
/// The key both fixture events name, decoded.
const KEY: &str = "connect/example-instance/Analysis/Voice/Redacted/2026/09/02/3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b_analysis_redacted_2026-09-02T00:17:10Z.json";
const MASTER: &str = "calltype/transcripts/date=2026-09-02/transcripts.csv";

struct Fixture {
    _dir: tempfile::TempDir,
    store: LocalStore,
}

async fn setup() -> Option<Fixture> {
    let body = testdata::read_shared(REDACTED_FILE)?;
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.put(KEY, body, Condition::None).await.unwrap();
    Some(Fixture { _dir: dir, store })
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn sqs(bodies: &[(&str, String)]) -> Value {
    json!({
        "Records": bodies.iter().map(|(id, body)| json!({
            "messageId": id,
            "receiptHandle": "AQEB",
            "body": body,
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:ap-southeast-2:123456789012:calltype-ingest",
            "awsRegion": "ap-southeast-2"
        })).collect::<Vec<_>>()
    })
}

async fn master_rows(store: &LocalStore) -> Vec<master_csv::Row> {
    let obj = store.get(MASTER).await.unwrap().expect("master CSV exists");
    decode_rows(&obj.body).unwrap()
}

#[tokio::test]
async fn it_ingests_an_sqs_batch_carrying_an_s3_notification() {
    let Some(f) = setup().await else { return };
    let note = String::from_utf8(testdata::read_shared(S3_EVENT).unwrap()).unwrap();
    let out = handle(
        &f.store,
        BUCKET,
        &Settings::default(),
        event(sqs(&[("m1", note)])),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({ "batchItemFailures": [] }));
    let rows = master_rows(&f.store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].source_key, KEY);
    assert!(rows[0].redacted);
    assert_eq!(rows[0].contact_date, "2026-09-02");
    assert!(!rows[0].transcript.is_empty());
}

#[tokio::test]
async fn it_ingests_a_direct_s3_notification() {
    let Some(f) = setup().await else { return };
    let payload: Value = serde_json::from_slice(&testdata::read_shared(S3_EVENT).unwrap()).unwrap();
    let out = handle(&f.store, BUCKET, &Settings::default(), event(payload))
        .await
        .unwrap();
    assert_eq!(out["appended"], 1);
    assert_eq!(master_rows(&f.store).await.len(), 1);
}

/// An append records its partition under `state/touched/` (classify finds late rows by it,
/// whatever their date), and a redelivery records it again: a crash between the append and
/// the record must not leave rows that no record names.
#[tokio::test]
async fn it_records_the_touched_partition_after_an_append_and_on_redelivery() {
    let Some(f) = setup().await else { return };
    let payload: Value = serde_json::from_slice(&testdata::read_shared(S3_EVENT).unwrap()).unwrap();
    let touched = Layout::default().touched("2026-09-02");
    assert_eq!(touched, "calltype/state/touched/date=2026-09-02.json");
    handle(
        &f.store,
        BUCKET,
        &Settings::default(),
        event(payload.clone()),
    )
    .await
    .unwrap();
    let record = f
        .store
        .get(&touched)
        .await
        .unwrap()
        .expect("a touched record");
    let size = f.store.head(MASTER).await.unwrap().unwrap().size;
    let record: Value = serde_json::from_slice(&record.body).unwrap();
    assert_eq!(record["master_bytes"], size);
    // The record write was lost (a crash right after the append); SQS redelivers.
    f.store.delete(&touched).await.unwrap();
    let out = handle(&f.store, BUCKET, &Settings::default(), event(payload))
        .await
        .unwrap();
    assert_eq!(out["duplicates"], 1);
    assert!(f.store.head(&touched).await.unwrap().is_some());
    assert_eq!(master_rows(&f.store).await.len(), 1);
}

#[tokio::test]
async fn it_ingests_an_eventbridge_object_created_event() {
    let Some(f) = setup().await else { return };
    let payload: Value = serde_json::from_slice(&testdata::read_shared(EB_EVENT).unwrap()).unwrap();
    let out = handle(&f.store, BUCKET, &Settings::default(), event(payload))
        .await
        .unwrap();
    assert_eq!(out["appended"], 1);
    assert_eq!(master_rows(&f.store).await[0].source_key, KEY);
}

#[tokio::test]
async fn it_appends_nothing_when_every_shape_redelivers_the_same_object() {
    let Some(f) = setup().await else { return };
    let note = String::from_utf8(testdata::read_shared(S3_EVENT).unwrap()).unwrap();
    let eb = String::from_utf8(testdata::read_shared(EB_EVENT).unwrap()).unwrap();
    for _ in 0..3 {
        let batch = sqs(&[("a", note.clone()), ("b", note.clone()), ("c", eb.clone())]);
        let out = handle(&f.store, BUCKET, &Settings::default(), event(batch))
            .await
            .unwrap();
        assert_eq!(out, json!({ "batchItemFailures": [] }));
    }
    assert_eq!(master_rows(&f.store).await.len(), 1);
}

#[tokio::test]
async fn it_quarantines_a_truncated_file_and_ingests_the_rest_of_the_batch() {
    let Some(f) = setup().await else { return };
    let good = testdata::read_shared(REDACTED_FILE).unwrap();
    let bad_key = "Analysis/Voice/Redacted/2026/09/02/11111111-2222-3333-4444-555555555555_analysis_redacted_2026-09-02T01:00:00Z.json";
    f.store
        .put(bad_key, good[..good.len() / 2].to_vec(), Condition::None)
        .await
        .unwrap();
    let payload = json!({ "Records": [
        s3_record(KEY), s3_record(bad_key)
    ]});
    let out = handle(&f.store, BUCKET, &Settings::default(), event(payload))
        .await
        .unwrap();
    assert_eq!(out["appended"], 1);
    assert_eq!(out["quarantined"], 1);
    let layout = Layout::default();
    let note = f
        .store
        .get(&layout.quarantine_note(bad_key))
        .await
        .unwrap()
        .unwrap();
    let note: Value = serde_json::from_slice(&note.body).unwrap();
    assert_eq!(note["source_key"], bad_key);
    assert!(!note["reason"].as_str().unwrap().is_empty());
    let copy = f
        .store
        .get(&layout.quarantine_copy(bad_key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.body.len(), good.len() / 2);
}

#[tokio::test]
async fn it_ignores_recordings_our_own_outputs_and_the_other_copy() {
    let Some(f) = setup().await else { return };
    let keys = [
        "connect/example-instance/CallRecordings/2026/09/02/3f1c_20260902T00:17_UTC.wav",
        MASTER,
        "connect/example-instance/Analysis/Voice/2026/09/02/3f1c9a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b_analysis_2026-09-02T00:17:10Z.json",
    ];
    let payload = json!({ "Records": keys.iter().map(|k| s3_record(k)).collect::<Vec<_>>() });
    let out = handle(&f.store, BUCKET, &Settings::default(), event(payload))
        .await
        .unwrap();
    assert_eq!(out["ignored"], 3);
    assert!(f.store.get(MASTER).await.unwrap().is_none());
}

#[tokio::test]
async fn it_reports_an_unreadable_sqs_message_as_a_batch_item_failure() {
    let Some(f) = setup().await else { return };
    let note = String::from_utf8(testdata::read_shared(S3_EVENT).unwrap()).unwrap();
    let batch = sqs(&[("good", note), ("junk", "not json".into())]);
    let out = handle(&f.store, BUCKET, &Settings::default(), event(batch))
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({ "batchItemFailures": [{ "itemIdentifier": "junk" }] })
    );
    assert_eq!(master_rows(&f.store).await.len(), 1);
}

#[tokio::test]
async fn it_accepts_the_s3_test_event() {
    let Some(f) = setup().await else { return };
    let test_event = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-09-02T00:00:00.000Z","Bucket":BUCKET,"RequestId":"X","HostId":"Y"});
    let out = handle(
        &f.store,
        BUCKET,
        &Settings::default(),
        event(sqs(&[("t", test_event.to_string())])),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({ "batchItemFailures": [] }));
}

/// A record shaped as AWS sends it, key URL-encoded.
fn s3_record(key: &str) -> Value {
    let encoded = key.replace(':', "%3A").replace(' ', "+");
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "ap-southeast-2",
        "eventTime": "2026-09-02T00:17:12.000Z", "eventName": "ObjectCreated:Put",
        "s3": { "s3SchemaVersion": "1.0",
                "bucket": { "name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}") },
                "object": { "key": encoded, "size": 1 } }
    })
}
