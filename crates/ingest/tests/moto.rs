//! Exactly-once ingest against a real S3 emulator (`moto_server` on 127.0.0.1, started and
//! stopped by the harness): concurrency, redelivery, crashes between S3 calls, and the cost
//! of appending to a large master.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use ingest::handler::handle;
use ingest::{Copy, Settings};
use lambda_runtime::{Context, LambdaEvent};
use master_csv::encode::decode_rows;
use master_csv::{append_rows, Layout, Row};
use moto_harness::MotoServer;
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use store::cas::RetryPolicy;
use store::{Condition, CountingStore, CrashAfter, ObjectStore};
use store_s3::S3Store;

fn raw_settings() -> Settings {
    Settings {
        copy: Copy::Raw,
        ..Settings::default()
    }
}

/// STAR dev documents as Contact Lens would lay them out: (key, bytes).
fn star_docs(n: usize) -> Option<Vec<(String, Vec<u8>)>> {
    let dir = testdata::shared("datasets/star-contactlens/dev")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.truncate(n);
    Some(
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                // <id>_analysis_2024-01-02T07_13_38Z.json
                let (id, ts) = name
                    .trim_end_matches(".json")
                    .split_once("_analysis_")
                    .unwrap();
                let (date, time) = ts.split_once('T').unwrap();
                let key = format!(
                    "Analysis/Voice/{}/{id}_analysis_{date}T{}.json",
                    date.replace('-', "/"),
                    time.replace('_', ":")
                );
                (key, std::fs::read(&p).unwrap())
            })
            .collect(),
    )
}

fn sqs_message(id: &str, bucket: &str, keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2026-11-20T00:00:00.000Z", "eventName": "ObjectCreated:Put",
                "s3": { "s3SchemaVersion": "1.0", "bucket": { "name": bucket },
                        "object": { "key": k.replace(':', "%3A"), "size": 1 } }
            })
        })
        .collect();
    json!({ "messageId": id, "body": json!({ "Records": records }).to_string(), "eventSource": "aws:sqs" })
}

fn sqs(messages: Vec<Value>) -> LambdaEvent<Value> {
    LambdaEvent::new(json!({ "Records": messages }), Context::default())
}

/// Every master under the prefix, decoded: contact id → times seen.
async fn census<S: ObjectStore>(store: &S) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for meta in store.list("calltype/transcripts/").await.unwrap() {
        if !meta.key.ends_with(".csv") {
            continue;
        }
        let body = store.get(&meta.key).await.unwrap().unwrap().body;
        for row in decode_rows(&body).unwrap() {
            *seen.entry(row.contact_id).or_insert(0) += 1;
        }
    }
    seen
}

async fn seed(store: &S3Store, docs: &[(String, Vec<u8>)]) {
    for (k, b) in docs {
        store.put(k, b.clone(), Condition::None).await.unwrap();
    }
}

fn test_row(id: &str, transcript: &str) -> Row {
    Row {
        contact_id: id.into(),
        contact_date: "2026-11-20".into(),
        channel: "VOICE".into(),
        redacted: true,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(1),
        turns: 1,
        sentiment_customer: None,
        sentiment_agent: None,
        categories: String::new(),
        summary: String::new(),
        transcript: transcript.into(),
        source_key: format!(
            "Analysis/Voice/Redacted/2026/11/20/{id}_analysis_redacted_2026-11-20T00:00:00Z.json"
        ),
        instance_id: String::new(),
        ingested_at: "2026-11-20T00:00:00Z".into(),
    }
}

const MASTER: &str = "calltype/transcripts/date=2026-11-20/transcripts.csv";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn it_keeps_every_row_exactly_once_under_200_concurrent_appends() {
    let store = MotoServer::shared().fresh_bucket("concurrent").await;
    let policy = RetryPolicy {
        max_attempts: 2_000,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(200),
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (s, p) = (store.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            append_rows(&s, MASTER, &[test_row(&format!("c{i:03}"), "t")], &p)
                .await
                .unwrap()
        }));
    }
    let mut appended = 0;
    for t in tasks {
        appended += t.await.unwrap().appended;
    }
    assert_eq!(appended, 200);
    let seen = census(&store).await;
    assert_eq!(seen.len(), 200);
    assert!(seen.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn it_ingests_every_contact_once_when_every_event_arrives_three_times() {
    let Some(docs) = star_docs(60) else { return };
    let store = MotoServer::shared().fresh_bucket("thrice").await;
    seed(&store, &docs).await;
    let bucket = store.bucket().to_string();
    let mut deliveries: Vec<&str> = docs.iter().flat_map(|(k, _)| [k.as_str(); 3]).collect();
    deliveries.shuffle(&mut rand::rng());
    // Batches of 10 messages, handled four at a time, as concurrent Lambda instances would.
    let batches: Vec<Vec<Value>> = deliveries
        .chunks(10)
        .enumerate()
        .map(|(b, keys)| {
            keys.iter()
                .enumerate()
                .map(|(i, k)| sqs_message(&format!("{b}-{i}"), &bucket, &[k]))
                .collect()
        })
        .collect();
    let settings = raw_settings();
    for group in batches.chunks(4) {
        let outs = futures::future::join_all(
            group
                .iter()
                .map(|b| handle(&store, &bucket, &settings, sqs(b.clone()))),
        )
        .await;
        for out in outs {
            assert_eq!(out.unwrap(), json!({ "batchItemFailures": [] }));
        }
    }
    let seen = census(&store).await;
    assert_eq!(seen.len(), 60, "every contact present");
    assert!(seen.values().all(|n| *n == 1), "no contact twice: {seen:?}");
}

/// For every call N of an ingest run, crash there (both "before the call" and "the call
/// landed but its answer was lost"), then redeliver the same event: every contact exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_recovers_from_a_crash_between_any_two_s3_calls() {
    let Some(docs) = star_docs(6) else { return };
    let server = MotoServer::shared();
    let keys: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
    let settings = Settings {
        concurrency: 1,
        ..raw_settings()
    };

    // How many store calls a clean run makes.
    let probe = server.fresh_bucket("crash-probe").await;
    seed(&probe, &docs).await;
    let counting = CountingStore::new(probe.clone());
    let event = || sqs(vec![sqs_message("m", probe.bucket(), &keys)]);
    handle(&counting, probe.bucket(), &settings, event())
        .await
        .unwrap();
    let total = counting.stats().calls();
    assert!(total >= docs.len() as u64 + 2, "a run makes {total} calls");

    for lose_reply in [false, true] {
        for n in 1..=total {
            let store = server.fresh_bucket("crash").await;
            seed(&store, &docs).await;
            let bucket = store.bucket().to_string();
            let event = || sqs(vec![sqs_message("m", &bucket, &keys)]);
            let mut crashing = CrashAfter::new(store.clone(), n);
            if lose_reply {
                crashing = crashing.losing_reply();
            }
            let first = handle(&crashing, &bucket, &settings, event())
                .await
                .unwrap();
            assert!(crashing.crashed());
            // SQS redelivers the message (whether or not the first run reported it failed).
            let again = handle(&store, &bucket, &settings, event()).await.unwrap();
            assert_eq!(
                again,
                json!({ "batchItemFailures": [] }),
                "crash at call {n}: {first}"
            );
            let seen = census(&store).await;
            assert_eq!(
                seen.len(),
                docs.len(),
                "crash at call {n} (lose_reply={lose_reply}) lost a row"
            );
            assert!(
                seen.values().all(|c| *c == 1),
                "crash at call {n} (lose_reply={lose_reply}) doubled a row"
            );
        }
    }
}

/// The same, on a master past 5 MiB, where appends copy the object server-side: a crash at
/// every store call of a steady-state append (markers and checkpoint in place), reply lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_recovers_from_a_crash_at_any_step_of_a_large_append() {
    let server = MotoServer::shared();
    let policy = RetryPolicy::default();
    // 110 rows of ~50 kB: past 5 MiB with few markers to write.
    let big = "word ".repeat(10_000);
    let base: Vec<Row> = (0..110)
        .map(|i| test_row(&format!("old-{i}"), &big))
        .collect();
    let warm: Vec<Row> = vec![test_row("warm", "w")];
    let batch: Vec<Row> = (0..5)
        .map(|i| test_row(&format!("new-{i}"), "fresh"))
        .collect();
    let seeded = |name: &'static str| {
        let (base, warm, policy) = (base.clone(), warm.clone(), policy.clone());
        async move {
            let store = server.fresh_bucket(name).await;
            append_rows(&store, MASTER, &base, &policy).await.unwrap();
            // The first large append marks the existing rows; later ones are the steady state.
            append_rows(&store, MASTER, &warm, &policy).await.unwrap();
            store
        }
    };

    let probe = seeded("large-probe").await;
    let counting = CountingStore::new(probe.clone());
    append_rows(&counting, MASTER, &batch, &policy)
        .await
        .unwrap();
    let total = counting.stats().calls();
    assert!(total >= 6, "a large append makes {total} calls");

    for n in 1..=total {
        let store = seeded("large-crash").await;
        let crashing = CrashAfter::new(store.clone(), n).losing_reply();
        let _ = append_rows(&crashing, MASTER, &batch, &policy).await;
        let o = append_rows(&store, MASTER, &batch, &policy).await.unwrap();
        assert_eq!(o.appended + o.duplicates, batch.len());
        let seen = census(&store).await;
        assert_eq!(
            seen.len(),
            base.len() + 1 + batch.len(),
            "crash at call {n}"
        );
        assert!(
            seen.values().all(|c| *c == 1),
            "crash at call {n} doubled a row"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_moves_o_batch_bytes_when_appending_to_a_master_past_5_mib() {
    let store = MotoServer::shared().fresh_bucket("large").await;
    let policy = RetryPolicy::default();
    let big = "word ".repeat(2_000);
    let base: Vec<Row> = (0..700)
        .map(|i| test_row(&format!("old-{i}"), &big))
        .collect();
    let o = append_rows(&store, MASTER, &base, &policy).await.unwrap();
    let master = o.master_bytes;
    assert!(master > 6 * 1024 * 1024);

    let batch: Vec<Row> = (0..10)
        .map(|i| test_row(&format!("new-{i}"), &"x".repeat(5_000)))
        .collect();
    let batch_bytes = master_csv::encode::encode_rows(&batch).len() as u64;
    let counting = CountingStore::new(store.clone());
    // Twice: the first large append also marks the existing rows; the second is the steady state.
    append_rows(&counting, MASTER, &batch[..5], &policy)
        .await
        .unwrap();
    counting.reset();
    let o = append_rows(&counting, MASTER, &batch[5..], &policy)
        .await
        .unwrap();
    assert_eq!(o.appended, 5);
    let s = counting.stats();
    let moved = s.bytes_read + s.bytes_written;
    eprintln!(
        "master {master} B, batch {} B, moved {moved} B ({s:?})",
        batch_bytes / 2
    );
    assert_eq!(s.append_larges, 1, "the large path was taken");
    // The checkpoint, then each new contact's two possible markers (raw and redacted; absent).
    assert_eq!(s.gets, 1 + 2 * 5, "only the index and markers are read");
    // The index holds ~45 bytes per contact: O(batch) plus a small per-row id list, never the master.
    assert!(
        moved < batch_bytes + 2 * 710 * 48,
        "moved {moved} bytes for a {master}-byte master"
    );
    let all = census(&store).await;
    assert_eq!(all.len(), 710);
    let rows = decode_rows(&store.get(MASTER).await.unwrap().unwrap().body).unwrap();
    let ids: HashSet<_> = rows.iter().map(|r| r.contact_id.as_str()).collect();
    assert!(ids.contains("new-9"));
    let _ = Layout::default();
}
