//! The S3 adapter against a real (emulated) S3: `moto_server`, started by `moto-harness`.
//! Needs `make test-deps` (or `MOTO_SERVER`); see the harness docs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use moto_harness::MotoServer;
use store::cas::{retry_cas, RetryPolicy};
use store::{Condition, CountingStore, ObjectStore, StoreError};
use store_s3::S3Store;

const MIB: usize = 1024 * 1024;

/// Records every HTTP request the client sends: `METHOD path?query`, body bytes sent, and
/// the response's Content-Length.
#[derive(Debug, Clone, Default)]
struct WireLog(Arc<Mutex<Vec<(String, u64, u64)>>>);

impl WireLog {
    fn take(&self) -> Vec<(String, u64, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for WireLog {
    fn name(&self) -> &'static str {
        "WireLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        // Prefer the body's own length; aws-chunked bodies announce the decoded length.
        let sent = req
            .body()
            .content_length()
            .or_else(|| {
                req.headers()
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0);
        let uri = req.uri().to_string();
        let path = uri.split_once("://").map_or(uri.as_str(), |(_, rest)| {
            rest.find('/').map_or("", |i| &rest[i..])
        });
        let what = format!("{} {path}", req.method());
        self.0.lock().unwrap().push((what, sent, 0));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let got = context
            .response()
            .headers()
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            // A HEAD's Content-Length is the object's size; no body comes with it.
            last.2 = if last.0.starts_with("HEAD ") { 0 } else { got };
        }
        Ok(())
    }
}

/// A store over a fresh bucket whose client logs the wire traffic.
async fn logged_store(moto: &MotoServer, prefix: &str) -> (S3Store, WireLog) {
    let plain = moto.fresh_bucket(prefix).await;
    let log = WireLog::default();
    let conf = plain
        .client()
        .config()
        .to_builder()
        .interceptor(log.clone())
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    (S3Store::new(client, plain.bucket()), log)
}

#[tokio::test]
async fn put_get_head_delete_roundtrip_with_conditions() {
    let s = MotoServer::shared().fresh_bucket("roundtrip").await;
    let key = "calltype/transcripts/date=2024-05-01/transcripts.csv";

    assert!(s.get(key).await.unwrap().is_none());
    assert!(s.head(key).await.unwrap().is_none());

    let e1 = s
        .put(key, b"a,b\n1,2\n".to_vec(), Condition::IfNoneMatch)
        .await
        .unwrap();
    let got = s.get(key).await.unwrap().unwrap();
    assert_eq!(got.body, b"a,b\n1,2\n");
    assert_eq!(got.etag, e1);
    assert_eq!(got.size, 8);
    let meta = s.head(key).await.unwrap().unwrap();
    assert_eq!((meta.key.as_str(), meta.size, &meta.etag), (key, 8, &e1));

    // Create-only on an existing key.
    let err = s
        .put(key, b"x".to_vec(), Condition::IfNoneMatch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );

    // Replace the version we saw, then a stale replace.
    let e2 = s
        .put(
            key,
            b"a,b\n1,2\n3,4\n".to_vec(),
            Condition::IfMatch(e1.clone()),
        )
        .await
        .unwrap();
    assert_ne!(e1, e2);
    let err = s
        .put(key, b"lost".to_vec(), Condition::IfMatch(e1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(s.get(key).await.unwrap().unwrap().body, b"a,b\n1,2\n3,4\n");

    // If-Match on a missing key.
    let err = s
        .put("missing", b"x".to_vec(), Condition::IfMatch(e2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    s.delete(key).await.unwrap();
    assert!(s.get(key).await.unwrap().is_none());
    s.delete(key).await.unwrap();
}

#[tokio::test]
async fn ranged_gets_including_past_the_end() {
    let s = MotoServer::shared().fresh_bucket("range").await;
    let etag = s
        .put("r", b"0123456789".to_vec(), Condition::None)
        .await
        .unwrap();

    for (start, end, want) in [
        (0, None, &b"0123456789"[..]),
        (2, Some(5), b"234"),
        (7, None, b"789"),
        (8, Some(100), b"89"),
        (9, Some(10), b"9"),
        (5, Some(5), b""),
        (6, Some(3), b""),
        (10, None, b""),
        (20, Some(30), b""),
    ] {
        let o = s.get_range("r", start, end).await.unwrap().unwrap();
        assert_eq!(o.body, want, "range {start}..{end:?}");
        assert_eq!(o.size, 10, "range {start}..{end:?}");
        assert_eq!(o.etag, etag, "range {start}..{end:?}");
    }
    let empty = s.put("e", Vec::new(), Condition::None).await.unwrap();
    for (start, end) in [(0, None), (0, Some(1)), (3, None)] {
        let o = s.get_range("e", start, end).await.unwrap().unwrap();
        assert!(o.body.is_empty(), "empty object, range {start}..{end:?}");
        assert_eq!((o.size, &o.etag), (0, &empty));
    }
    assert!(s.get_range("nope", 0, None).await.unwrap().is_none());
    assert!(s.get_range("nope", 5, None).await.unwrap().is_none());
    assert!(s.get_range("nope", 5, Some(5)).await.unwrap().is_none());
}

#[tokio::test]
async fn list_pages_through_a_prefix_in_key_order() {
    let s = MotoServer::shared()
        .fresh_bucket("list")
        .await
        .with_page_size(7);
    for i in (0..25).rev() {
        s.put(&format!("a/{i:03}.csv"), vec![b'x'; i], Condition::None)
            .await
            .unwrap();
    }
    for i in 0..3 {
        s.put(&format!("b/{i}"), vec![], Condition::None)
            .await
            .unwrap();
    }

    let a = s.list("a/").await.unwrap();
    assert_eq!(a.len(), 25);
    for (i, m) in a.iter().enumerate() {
        assert_eq!(m.key, format!("a/{i:03}.csv"));
        assert_eq!(m.size, i as u64);
        assert!(!m.etag.is_empty());
    }
    assert_eq!(s.list("").await.unwrap().len(), 28);
    assert_eq!(s.list("b/").await.unwrap().len(), 3);
    assert!(s.list("c/").await.unwrap().is_empty());
}

#[tokio::test]
async fn append_large_sends_only_the_tail() {
    let (s, wire) = logged_store(MotoServer::shared(), "append").await;
    let key = "calltype/transcripts/date=2024-05-01/transcripts.csv";
    let old: Vec<u8> = (0..6 * MIB).map(|i| b'a' + (i % 26) as u8).collect();
    let etag = s.put(key, old.clone(), Condition::None).await.unwrap();
    wire.take();

    let tail = b"contact-1,hello\n".repeat(640); // 10 KiB
    let counting = CountingStore::new(s.clone());
    let t = Instant::now();
    let new_etag = counting
        .append_large(key, &etag, tail.clone())
        .await
        .unwrap();
    let took = t.elapsed();
    let requests = wire.take();

    let sent: u64 = requests.iter().map(|r| r.1).sum();
    let received: u64 = requests.iter().map(|r| r.2).sum();
    println!(
        "append_large of {} B onto {} B: {} requests, {sent} B sent, {received} B received, {took:?}",
        tail.len(),
        old.len(),
        requests.len()
    );
    for r in &requests {
        println!("  {} sent {} B, got {} B", r.0, r.1, r.2);
    }
    assert_eq!(
        requests.len(),
        5,
        "head (the size to split the copy by), create, copy part, upload part, complete"
    );
    assert_eq!(counting.stats().bytes_written, tail.len() as u64);
    assert_eq!(counting.stats().bytes_read, 0);
    // The tail plus a small CompleteMultipartUpload XML document; never the 6 MiB.
    assert!(
        sent >= tail.len() as u64 && sent < tail.len() as u64 + 4096,
        "{sent}"
    );
    assert!(received < 64 * 1024, "{received}");

    let got = s.get(key).await.unwrap().unwrap();
    assert_eq!(got.size, (old.len() + tail.len()) as u64);
    assert!(got.body[..old.len()] == old[..]);
    assert!(got.body[old.len()..] == tail[..]);
    assert_eq!(got.etag, new_etag);
    assert_ne!(new_etag, etag);

    // A second append on top of the multipart object works the same way.
    let again = s
        .append_large(key, &new_etag, b"z\n".to_vec())
        .await
        .unwrap();
    let got = s.get(key).await.unwrap().unwrap();
    assert!(got.body.ends_with(b"hello\nz\n"));
    assert_eq!(got.etag, again);
}

/// A stale ETag on `append_large`. moto 5.x checks neither `x-amz-copy-source-if-match` on
/// UploadPartCopy nor `If-Match` on CompleteMultipartUpload (AWS answers 412 to both; tested
/// with mocks in `s3_mock.rs`), but the adapter's HEAD, which gives the size to split the copy
/// by, already shows another version: the append fails before anything is copied.
#[tokio::test]
async fn append_large_with_a_stale_etag_on_moto() {
    let s = MotoServer::shared().fresh_bucket("stale").await;
    let key = "big.csv";
    let v1 = vec![b'1'; 5 * MIB + 1];
    let stale = s.put(key, v1, Condition::None).await.unwrap();
    let v2 = vec![b'2'; 5 * MIB + 2];
    let current = s.put(key, v2.clone(), Condition::None).await.unwrap();

    let err = s
        .append_large(key, &stale, b"late\n".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    let got = s.get(key).await.unwrap().unwrap();
    assert_eq!(got.etag, current);
    assert!(got.body == v2);
    let uploads = s
        .client()
        .list_multipart_uploads()
        .bucket(s.bucket())
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no upload left behind");
}

#[tokio::test]
async fn append_large_on_a_missing_key_is_not_found_and_aborts() {
    let s = MotoServer::shared().fresh_bucket("missing").await;
    let err = s
        .append_large("missing.csv", "\"0123\"", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let uploads = s
        .client()
        .list_multipart_uploads()
        .bucket(s.bucket())
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the failed upload was aborted"
    );
}

#[tokio::test]
async fn append_large_onto_a_small_object_is_permanent() {
    let s = MotoServer::shared().fresh_bucket("small").await;
    let etag = s
        .put("s.csv", b"a\n".to_vec(), Condition::None)
        .await
        .unwrap();
    let err = s
        .append_large("s.csv", &etag, b"b\n".to_vec())
        .await
        .unwrap_err();
    println!("append_large onto 2 bytes: {err}");
    assert!(matches!(err, StoreError::Permanent(_)), "{err}");
    assert_eq!(s.get("s.csv").await.unwrap().unwrap().body, b"a\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_appenders_lose_no_lines() {
    const WRITERS: usize = 200;
    let s = MotoServer::shared().fresh_bucket("cas").await;
    let key = "master.csv";
    s.put(key, Vec::new(), Condition::IfNoneMatch)
        .await
        .unwrap();
    let policy = RetryPolicy {
        max_attempts: 1000,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(500),
    };

    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let (s, policy) = (s.clone(), policy.clone());
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0u32;
            retry_cas(&policy, key, || {
                attempts += 1;
                let s = &s;
                async move {
                    let old = s.get(key).await?.expect("created above");
                    let mut body = old.body;
                    body.extend_from_slice(format!("line-{i}\n").as_bytes());
                    s.put(key, body, Condition::IfMatch(old.etag)).await
                }
            })
            .await
            .map(|_| attempts)
        }));
    }
    let mut total_attempts = 0;
    for t in tasks {
        total_attempts += t.await.unwrap().unwrap();
    }
    println!(
        "{WRITERS} CAS appenders: {total_attempts} attempts in {:?}",
        t.elapsed()
    );

    let body = String::from_utf8(s.get(key).await.unwrap().unwrap().body).unwrap();
    let mut lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), WRITERS, "no line lost or doubled");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), WRITERS, "every line exactly once");
}
