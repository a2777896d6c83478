//! Appends through the S3 adapter over an in-memory bucket that answers like S3 (ranged GETs
//! with 416 past the end, 412 on a failed `If-Match` / `If-None-Match`, also on
//! CompleteMultipartUpload, copy ranges), built from `aws-smithy-mocks` rules. moto cannot be
//! made to land another writer's append between two of our requests, and it ignores `If-Match`
//! on CompleteMultipartUpload; this bucket does both.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::{CopyPartResult, Object};
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use common::{assert_sound, ids, row, rows, KEY};
use master_csv::encode::encode_rows;
use master_csv::{append_rows, Row, LARGE_OBJECT_BYTES};
use store::cas::RetryPolicy;
use store_s3::S3Store;

const BUCKET: &str = "bucket";

/// A hook run once, with the bucket locked, right after a ranged GET of [`KEY`] is answered.
type Hook = Box<dyn FnOnce(&mut Bucket) + Send>;

/// The bucket's state: objects with their ETags, and multipart uploads in progress.
#[derive(Default)]
struct Bucket {
    objects: HashMap<String, (Vec<u8>, String)>,
    uploads: HashMap<String, BTreeMap<i32, Vec<u8>>>,
    writes: u64,
    after_ranged_get: Option<Hook>,
    /// The largest UploadPartCopy range seen, in bytes.
    largest_copy: usize,
}

impl Bucket {
    /// Stores a new version of `key`; every version gets a new ETag.
    fn write(&mut self, key: &str, body: Vec<u8>) -> String {
        self.writes += 1;
        let etag = format!("\"v{}\"", self.writes);
        self.objects.insert(key.to_string(), (body, etag.clone()));
        etag
    }

    /// S3's answer to a write conditioned on `if_match` / `if_none_match`: `None` when it holds.
    fn refuse(
        &self,
        key: &str,
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Option<HttpResponse> {
        let current = self.objects.get(key).map(|(_, e)| e.as_str());
        match (if_match, if_none_match, current) {
            (Some(_), _, None) => Some(error(404, "NoSuchKey")),
            (Some(want), _, Some(have)) if want != have => Some(error(412, "PreconditionFailed")),
            (_, Some("*"), Some(_)) => Some(error(412, "PreconditionFailed")),
            _ => None,
        }
    }
}

type Shared = Arc<Mutex<Bucket>>;

fn error(status: u16, code: &str) -> HttpResponse {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>mocked</Message><RequestId>r</RequestId></Error>"#
    );
    HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body))
}

/// `bytes=a-b` or `bytes=a-` as `(a, b)`.
fn parse_range(range: &str) -> (usize, Option<usize>) {
    let (a, b) = range
        .strip_prefix("bytes=")
        .unwrap()
        .split_once('-')
        .unwrap();
    (
        a.parse().unwrap(),
        (!b.is_empty()).then(|| b.parse().unwrap()),
    )
}

/// One rule per S3 operation the adapter uses, all answering from `bucket`.
fn rules(bucket: &Shared) -> Vec<Rule> {
    let b = bucket.clone();
    let head = mock!(Client::head_object).then_compute_response(move |r| {
        match b.lock().unwrap().objects.get(r.key().unwrap()) {
            None => {
                MockResponse::Http(HttpResponse::new(404.try_into().unwrap(), SdkBody::empty()))
            }
            Some((body, etag)) => MockResponse::Output(
                HeadObjectOutput::builder()
                    .e_tag(etag)
                    .content_length(body.len() as i64)
                    .build(),
            ),
        }
    });
    let b = bucket.clone();
    let get = mock!(Client::get_object).then_compute_response(move |r| {
        let mut bucket = b.lock().unwrap();
        let key = r.key().unwrap();
        let Some((body, etag)) = bucket.objects.get(key) else {
            return MockResponse::Http(error(404, "NoSuchKey"));
        };
        let answer = match r.range() {
            None => MockResponse::Output(
                GetObjectOutput::builder()
                    .e_tag(etag)
                    .body(ByteStream::from(body.clone()))
                    .build(),
            ),
            Some(range) => {
                let (a, b) = parse_range(range);
                if a >= body.len() {
                    MockResponse::Http(error(416, "InvalidRange"))
                } else {
                    let end = b.map_or(body.len() - 1, |b| b.min(body.len() - 1));
                    MockResponse::Output(
                        GetObjectOutput::builder()
                            .e_tag(etag)
                            .content_range(format!("bytes {a}-{end}/{}", body.len()))
                            .body(ByteStream::from(body[a..=end].to_vec()))
                            .build(),
                    )
                }
            }
        };
        if key == KEY && r.range().is_some() {
            if let Some(hook) = bucket.after_ranged_get.take() {
                hook(&mut bucket);
            }
        }
        answer
    });
    let b = bucket.clone();
    let put = mock!(Client::put_object).then_compute_response(move |r| {
        let mut bucket = b.lock().unwrap();
        let key = r.key().unwrap();
        if let Some(refused) = bucket.refuse(key, r.if_match(), r.if_none_match()) {
            return MockResponse::Http(refused);
        }
        let body = r.body().bytes().unwrap().to_vec();
        let etag = bucket.write(key, body);
        MockResponse::Output(PutObjectOutput::builder().e_tag(etag).build())
    });
    let b = bucket.clone();
    let list = mock!(Client::list_objects_v2).then_compute_output(move |r| {
        let bucket = b.lock().unwrap();
        let prefix = r.prefix().unwrap_or_default();
        let mut keys: Vec<&String> = bucket
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        ListObjectsV2Output::builder()
            .set_contents(Some(
                keys.into_iter()
                    .map(|k| {
                        let (body, etag) = &bucket.objects[k];
                        Object::builder()
                            .key(k)
                            .size(body.len() as i64)
                            .e_tag(etag)
                            .build()
                    })
                    .collect(),
            ))
            .is_truncated(false)
            .build()
    });
    let b = bucket.clone();
    let delete = mock!(Client::delete_object).then_compute_output(move |r| {
        b.lock().unwrap().objects.remove(r.key().unwrap());
        DeleteObjectOutput::builder().build()
    });
    let b = bucket.clone();
    let create = mock!(Client::create_multipart_upload).then_compute_output(move |_| {
        let mut bucket = b.lock().unwrap();
        bucket.writes += 1;
        let id = format!("u{}", bucket.writes);
        bucket.uploads.insert(id.clone(), BTreeMap::new());
        CreateMultipartUploadOutput::builder().upload_id(id).build()
    });
    let b = bucket.clone();
    let copy = mock!(Client::upload_part_copy).then_compute_response(move |r| {
        let mut bucket = b.lock().unwrap();
        let source = r.copy_source().unwrap().strip_prefix("bucket/").unwrap();
        let source = percent_encoding::percent_decode_str(source)
            .decode_utf8()
            .unwrap();
        let Some((body, etag)) = bucket.objects.get(source.as_ref()) else {
            return MockResponse::Http(error(404, "NoSuchKey"));
        };
        if r.copy_source_if_match().is_some_and(|want| want != etag) {
            return MockResponse::Http(error(412, "PreconditionFailed"));
        }
        let bytes = match r.copy_source_range() {
            None => body.clone(),
            Some(range) => {
                let (a, b) = parse_range(range);
                let b = b.expect("copy ranges name their last byte");
                if b >= body.len() || a > b {
                    return MockResponse::Http(error(416, "InvalidRange"));
                }
                body[a..=b].to_vec()
            }
        };
        bucket.largest_copy = bucket.largest_copy.max(bytes.len());
        let part = r.part_number().unwrap();
        bucket
            .uploads
            .get_mut(r.upload_id().unwrap())
            .unwrap()
            .insert(part, bytes);
        MockResponse::Output(
            UploadPartCopyOutput::builder()
                .copy_part_result(
                    CopyPartResult::builder()
                        .e_tag(format!("\"p{part}\""))
                        .build(),
                )
                .build(),
        )
    });
    let b = bucket.clone();
    let part = mock!(Client::upload_part).then_compute_output(move |r| {
        let mut bucket = b.lock().unwrap();
        let part = r.part_number().unwrap();
        let bytes = r.body().bytes().unwrap().to_vec();
        bucket
            .uploads
            .get_mut(r.upload_id().unwrap())
            .unwrap()
            .insert(part, bytes);
        UploadPartOutput::builder()
            .e_tag(format!("\"p{part}\""))
            .build()
    });
    let b = bucket.clone();
    let complete = mock!(Client::complete_multipart_upload).then_compute_response(move |r| {
        let mut bucket = b.lock().unwrap();
        let key = r.key().unwrap();
        if let Some(refused) = bucket.refuse(key, r.if_match(), r.if_none_match()) {
            return MockResponse::Http(refused);
        }
        let parts = bucket.uploads.remove(r.upload_id().unwrap()).unwrap();
        let listed: Vec<i32> = r
            .multipart_upload()
            .unwrap()
            .parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect();
        assert!(
            listed.windows(2).all(|w| w[0] < w[1]),
            "parts in order: {listed:?}"
        );
        let body: Vec<u8> = listed.iter().flat_map(|n| parts[n].clone()).collect();
        let etag = bucket.write(key, body);
        MockResponse::Output(CompleteMultipartUploadOutput::builder().e_tag(etag).build())
    });
    let b = bucket.clone();
    let abort = mock!(Client::abort_multipart_upload).then_compute_output(move |r| {
        b.lock().unwrap().uploads.remove(r.upload_id().unwrap());
        AbortMultipartUploadOutput::builder().build()
    });
    vec![
        head, get, put, list, delete, create, copy, part, complete, abort,
    ]
}

fn s3_store(bucket: &Shared) -> S3Store {
    let rules = rules(bucket);
    let refs: Vec<&Rule> = rules.iter().collect();
    let client: Client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, &refs, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(2)),
    ));
    S3Store::new(client, BUCKET)
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1_000,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    }
}

/// A master past [`LARGE_OBJECT_BYTES`] with every row marked and the checkpoint at its end.
async fn steady_large_master(store: &S3Store) -> BTreeSet<String> {
    let seed = rows("old", 20, (LARGE_OBJECT_BYTES / 20 + 3_000) as usize);
    let warm = vec![row("warm", "w")];
    for batch in [&seed, &warm] {
        append_rows(store, KEY, batch, &patient()).await.unwrap();
    }
    let want: BTreeSet<String> = ids(&seed).union(&ids(&warm)).cloned().collect();
    assert_sound(store, KEY, &want, "steady state").await;
    want
}

/// Another appender's CompleteMultipartUpload lands between our read of the (empty) tail and
/// the moment we learn the ETag. Its rows are not marked yet (it is slow, or it crashed), and
/// one of its contacts is redelivered to us. Appending on the new version would double that
/// contact and move the checkpoint over the other writer's unmarked rows.
#[tokio::test]
async fn an_append_landing_right_after_the_tail_read_doubles_nothing() {
    let bucket = Shared::default();
    let store = s3_store(&bucket);
    let mut want = steady_large_master(&store).await;

    let theirs = vec![row("x", "theirs"), row("y", "theirs")];
    let ours = vec![row("x", "redelivered"), row("z", "ours")];
    bucket.lock().unwrap().after_ranged_get = Some(Box::new(move |b: &mut Bucket| {
        let mut body = b.objects[KEY].0.clone();
        body.extend_from_slice(&encode_rows(&theirs));
        b.write(KEY, body);
    }));
    let o = append_rows(&store, KEY, &ours, &patient()).await.unwrap();
    assert!(
        bucket.lock().unwrap().after_ranged_get.is_none(),
        "the other append landed"
    );
    want.extend(["x", "y", "z"].map(String::from));
    assert_sound(&store, KEY, &want, "after the interleaved append").await;
    assert_eq!((o.appended, o.duplicates), (1, 1), "{o:?}");
}

/// Many appenders through the S3 adapter, with redelivered contacts, copying the master in
/// ranges (the copy limit lowered so that a 5 MiB master takes three of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_appenders_through_the_s3_adapter_lose_and_double_nothing() {
    let bucket = Shared::default();
    let store = s3_store(&bucket).with_copy_part_limit(2 * 1024 * 1024);
    let mut want = steady_large_master(&store).await;

    const WRITERS: usize = 12;
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let batch: Vec<Row> = [i, (i + 1) % WRITERS, (i + 4) % WRITERS]
            .iter()
            .map(|j| row(&format!("new-{j}"), "t"))
            .chain([row(&format!("old-{i}"), "again")])
            .collect();
        want.extend(ids(&batch));
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            append_rows(&store, KEY, &batch, &patient()).await.unwrap()
        }));
    }
    let mut appended = 0;
    for t in tasks {
        appended += t.await.unwrap().appended;
    }
    assert_eq!(appended, WRITERS);
    assert_sound(&store, KEY, &want, "after the concurrent appends").await;
    let largest = bucket.lock().unwrap().largest_copy;
    assert!(
        largest <= 2 * 1024 * 1024,
        "a copy range of {largest} bytes"
    );
}
