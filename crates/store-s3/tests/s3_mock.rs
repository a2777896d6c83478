//! Fault sequences for the S3 adapter with `aws-smithy-mocks`: what moto cannot be made to do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::CopyPartResult;
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use store::cas::{retry_cas, RetryPolicy};
use store::{Condition, ObjectStore, StoreError};
use store_s3::S3Store;

/// A store whose client answers from `rules`, with 3 quick SDK attempts per call.
/// A HEAD that answers with this ETag and size.
fn head_answer(etag: &'static str, size: i64) -> Rule {
    mock!(Client::head_object).then_output(move || {
        HeadObjectOutput::builder()
            .e_tag(etag)
            .content_length(size)
            .build()
    })
}

fn mocked(rules: &[&Rule]) -> S3Store {
    let client: Client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(2)),
    ));
    S3Store::new(client, "bucket")
}

fn s3_error(code: &str, message: &str) -> Option<String> {
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>r</RequestId></Error>"#
    ))
}

fn quick_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    }
}

async fn cas_put(store: &S3Store) -> store::Result<String> {
    retry_cas(&quick_policy(5), "k", || {
        store.put("k", b"v".to_vec(), Condition::IfMatch("\"e1\"".into()))
    })
    .await
}

/// A conditional put that loses once (412 or 409) is retried by the CAS loop and wins.
#[tokio::test]
async fn it_retries_a_lost_condition_then_wins() {
    for (status, code, message) in [
        (
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        ),
        (
            409,
            "ConditionalRequestConflict",
            "A conflicting operation is in progress",
        ),
    ] {
        let put = mock!(Client::put_object)
            .sequence()
            .http_status(status, s3_error(code, message))
            .output(|| PutObjectOutput::builder().e_tag("\"e2\"").build())
            .build();
        let store = mocked(&[&put]);
        assert_eq!(cas_put(&store).await.unwrap(), "\"e2\"", "{status} {code}");
        assert_eq!(put.num_calls(), 2, "{status} {code}");
    }
}

#[tokio::test]
async fn a_bare_412_is_a_precondition_failure() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(412, None)
        .build();
    let store = mocked(&[&put]);
    let err = store
        .put("k", b"v".to_vec(), Condition::IfNoneMatch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(put.num_calls(), 1, "the SDK does not retry a 412");
}

#[tokio::test]
async fn slow_down_is_transient_after_the_sdk_retries() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(
            503,
            s3_error("SlowDown", "Please reduce your request rate."),
        )
        .times(3)
        .build();
    let store = mocked(&[&put]);
    let err = cas_put(&store).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Transient(ref m) if m.contains("SlowDown")),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(put.num_calls(), 3, "three SDK attempts, no CAS retry");
}

#[tokio::test]
async fn slow_down_then_success_is_absorbed_by_the_sdk() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(
            503,
            s3_error("SlowDown", "Please reduce your request rate."),
        )
        .times(2)
        .output(|| PutObjectOutput::builder().e_tag("\"e2\"").build())
        .build();
    let store = mocked(&[&put]);
    assert_eq!(cas_put(&store).await.unwrap(), "\"e2\"");
    assert_eq!(put.num_calls(), 3);
}

#[tokio::test]
async fn a_cas_that_never_wins_ends_contended() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(412, None)
        .repeatedly()
        .build();
    let store = mocked(&[&put]);
    let err = cas_put(&store).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Contended { ref key, attempts: 5 } if key == "k"),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(put.num_calls(), 5);
}

#[tokio::test]
async fn access_denied_is_permanent_with_code_and_message() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(403, s3_error("AccessDenied", "Access Denied"))
        .build();
    let store = mocked(&[&put]);
    let err = store
        .put("k", b"v".to_vec(), Condition::None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Permanent(ref m) if m == "k: AccessDenied: Access Denied"),
        "{err}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn missing_objects_read_as_none() {
    let get = mock!(Client::get_object)
        .sequence()
        .http_status(
            404,
            s3_error("NoSuchKey", "The specified key does not exist."),
        )
        .build();
    let head = mock!(Client::head_object)
        .sequence()
        .http_status(404, None)
        .build();
    let store = mocked(&[&get, &head]);
    assert!(store.get("k").await.unwrap().is_none());
    assert!(store.head("k").await.unwrap().is_none());
}

#[tokio::test]
async fn a_range_past_the_end_reads_empty() {
    let get = mock!(Client::get_object)
        .sequence()
        .http_status(
            416,
            s3_error("InvalidRange", "The requested range is not satisfiable"),
        )
        .build();
    let head = head_answer("\"e\"", 10);
    let store = mocked(&[&get, &head]);
    let o = store.get_range("k", 12, None).await.unwrap().unwrap();
    assert!(o.body.is_empty());
    assert_eq!((o.size, o.etag.as_str()), (10, "\"e\""));
}

/// An HTTP error response with S3's XML error body.
fn http_error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::new(
        status.try_into().unwrap(),
        SdkBody::from(s3_error(code, "mocked").unwrap()),
    )
}

/// Another writer's append lands right after our ranged GET of the bytes past `10`, the end
/// of the version we read. The body, the ETag and the size must still describe one version:
/// answering the 416 of `bytes=10-` with a later HEAD paired an empty body with the new ETag,
/// and an `If-Match` on it appended over rows nobody had read.
#[tokio::test]
async fn a_range_at_the_end_takes_etag_and_size_from_the_version_it_read() {
    let landed = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let get = mock!(Client::get_object).then_compute_response({
        let (landed, seen) = (landed.clone(), seen.clone());
        move |r| {
            let range = r.range().unwrap_or_default().to_string();
            seen.lock().unwrap().push(range.clone());
            // The object is "0123456789" (ETag e1) until the other writer lands.
            let was_landed = landed.swap(true, Ordering::SeqCst);
            assert!(!was_landed, "one ranged GET is enough");
            match range.as_str() {
                "bytes=9-" => MockResponse::Output(
                    GetObjectOutput::builder()
                        .e_tag("\"e1\"")
                        .content_range("bytes 9-9/10")
                        .body(ByteStream::from_static(b"9"))
                        .build(),
                ),
                _ if range.starts_with("bytes=10-") => {
                    MockResponse::Http(http_error(416, "InvalidRange"))
                }
                other => panic!("unexpected range {other}"),
            }
        }
    });
    let head = mock!(Client::head_object).then_compute_output({
        let landed = landed.clone();
        move |_| {
            let (etag, size) = if landed.load(Ordering::SeqCst) {
                ("\"e2\"", 20)
            } else {
                ("\"e1\"", 10)
            };
            HeadObjectOutput::builder()
                .e_tag(etag)
                .content_length(size)
                .build()
        }
    });
    let store = mocked(&[&get, &head]);
    let o = store.get_range("k", 10, None).await.unwrap().unwrap();
    assert!(o.body.is_empty());
    assert_eq!(
        (o.etag.as_str(), o.size),
        ("\"e1\"", 10),
        "ranges asked: {:?}",
        seen.lock().unwrap()
    );
}

/// A 416 can still happen when `start` is past the end; a HEAD then answers only if it shows
/// a version whose bytes past `start` are empty too.
#[tokio::test]
async fn a_range_past_the_end_of_a_grown_object_is_a_precondition_failure() {
    let get = mock!(Client::get_object).then_http_response(|| http_error(416, "InvalidRange"));
    let head = head_answer("\"e2\"", 30);
    let store = mocked(&[&get, &head]);
    let err = store.get_range("k", 20, None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
}

/// A server that ignores `Range` and sends the whole object: the body is still the range.
#[tokio::test]
async fn a_range_answered_with_the_whole_object_is_cut_to_the_range() {
    let get = mock!(Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .e_tag("\"e\"")
            .body(ByteStream::from_static(b"0123456789"))
            .build()
    });
    let store = mocked(&[&get]);
    let o = store.get_range("k", 4, Some(7)).await.unwrap().unwrap();
    assert_eq!((o.body.as_slice(), o.size), (&b"456"[..], 10));
    let o = store.get_range("k", 10, None).await.unwrap().unwrap();
    assert_eq!((o.body.as_slice(), o.size), (&b""[..], 10));
}

#[tokio::test]
async fn a_ranged_get_reports_the_whole_size() {
    let get = mock!(Client::get_object)
        .match_requests(|r| r.range() == Some("bytes=1-4"))
        .then_output(|| {
            // One byte before the range, so that a range at the end is never a 416.
            GetObjectOutput::builder()
                .e_tag("\"e\"")
                .content_range("bytes 1-4/10")
                .body(ByteStream::from_static(b"1234"))
                .build()
        });
    let store = mocked(&[&get]);
    let o = store.get_range("k", 2, Some(5)).await.unwrap().unwrap();
    assert_eq!((o.body.as_slice(), o.size), (&b"234"[..], 10));
}

/// The size of the master in the multipart tests: one copy range at the default limit.
const BIG_SIZE: i64 = 6 * 1024 * 1024;

/// HEAD of the master in the multipart tests: version `"old"`, `size` bytes.
fn head_rule(size: i64) -> Rule {
    mock!(Client::head_object)
        .match_requests(|r| r.key() == Some(BIG))
        .then_output(move || {
            HeadObjectOutput::builder()
                .e_tag("\"old\"")
                .content_length(size)
                .build()
        })
}

/// Rules for a multipart append whose steps all succeed, except those the test overrides.
fn multipart_rules() -> (Rule, Rule, Rule, Rule) {
    let create = mock!(Client::create_multipart_upload).then_output(|| {
        CreateMultipartUploadOutput::builder()
            .upload_id("u1")
            .build()
    });
    let copy = mock!(Client::upload_part_copy)
        .match_requests(|r| {
            r.part_number() == Some(1)
                && r.copy_source() == Some("bucket/a/date%3D2024-01-01/m.csv")
                && r.copy_source_range() == Some(format!("bytes=0-{}", BIG_SIZE - 1).as_str())
                && r.copy_source_if_match() == Some("\"old\"")
        })
        .then_output(|| {
            UploadPartCopyOutput::builder()
                .copy_part_result(CopyPartResult::builder().e_tag("\"p1\"").build())
                .build()
        });
    let part = mock!(Client::upload_part)
        .match_requests(|r| r.part_number() == Some(2) && r.upload_id() == Some("u1"))
        .then_output(|| UploadPartOutput::builder().e_tag("\"p2\"").build());
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|r| r.upload_id() == Some("u1"))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    (create, copy, part, abort)
}

const BIG: &str = "a/date=2024-01-01/m.csv";

#[tokio::test]
async fn complete_412_is_a_precondition_failure_and_aborts_the_upload() {
    let (create, copy, part, abort) = multipart_rules();
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| r.if_match() == Some("\"old\"") && r.upload_id() == Some("u1"))
        .sequence()
        .http_status(
            412,
            s3_error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        )
        .build();
    let store = mocked(&[
        &head_rule(BIG_SIZE),
        &create,
        &copy,
        &part,
        &complete,
        &abort,
    ]);
    let err = store
        .append_large(BIG, "\"old\"", b"tail\n".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(
        [
            create.num_calls(),
            copy.num_calls(),
            part.num_calls(),
            complete.num_calls()
        ],
        [1, 1, 1, 1]
    );
    assert_eq!(abort.num_calls(), 1, "the upload was aborted");
}

#[tokio::test]
async fn copy_412_aborts_before_uploading_the_tail() {
    let (create, _, part, abort) = multipart_rules();
    let copy = mock!(Client::upload_part_copy)
        .sequence()
        .http_status(
            412,
            s3_error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        )
        .build();
    let store = mocked(&[&head_rule(BIG_SIZE), &create, &copy, &part, &abort]);
    let err = store
        .append_large(BIG, "\"old\"", b"tail\n".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(part.num_calls(), 0);
    assert_eq!(abort.num_calls(), 1);
}

#[tokio::test]
async fn a_successful_append_completes_with_if_match() {
    let (create, copy, part, abort) = multipart_rules();
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests(|r| {
            r.if_match() == Some("\"old\"")
                && r.multipart_upload().map(|m| m.parts().len()) == Some(2)
        })
        .then_output(|| {
            aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput::builder()
                .e_tag("\"new-2\"")
                .build()
        });
    let store = mocked(&[
        &head_rule(BIG_SIZE),
        &create,
        &copy,
        &part,
        &complete,
        &abort,
    ]);
    let etag = store
        .append_large(BIG, "\"old\"", b"tail\n".to_vec())
        .await
        .unwrap();
    assert_eq!(etag, "\"new-2\"");
    assert_eq!(complete.num_calls(), 1);
    assert_eq!(abort.num_calls(), 0);
}

/// A master over the copy limit (5 GiB on S3, lowered here to 10 MiB) is copied in the fewest
/// equal ranges under it, parts numbered in order, each only from the version read, and the
/// tail is the last part of an upload completed with `If-Match`.
#[tokio::test]
async fn a_master_over_the_copy_limit_is_copied_in_ranges() {
    const MIB: i64 = 1024 * 1024;
    let size = 25 * MIB + 1;
    let copies = Arc::new(Mutex::new(Vec::new()));
    let (create, _, _, abort) = multipart_rules();
    let copy = mock!(Client::upload_part_copy)
        .match_requests({
            let copies = copies.clone();
            move |r| {
                copies.lock().unwrap().push((
                    r.part_number().unwrap(),
                    r.copy_source_range().unwrap_or_default().to_string(),
                    r.copy_source_if_match().unwrap_or_default().to_string(),
                ));
                r.upload_id() == Some("u1")
            }
        })
        .then_compute_output(|r| {
            UploadPartCopyOutput::builder()
                .copy_part_result(
                    CopyPartResult::builder()
                        .e_tag(format!("\"p{}\"", r.part_number().unwrap()))
                        .build(),
                )
                .build()
        });
    let part = mock!(Client::upload_part)
        .match_requests(|r| r.part_number() == Some(4) && r.upload_id() == Some("u1"))
        .then_output(|| UploadPartOutput::builder().e_tag("\"p4\"").build());
    let completed = Arc::new(Mutex::new(Vec::new()));
    let complete = mock!(Client::complete_multipart_upload)
        .match_requests({
            let completed = completed.clone();
            move |r| {
                let parts = r.multipart_upload().map(|m| m.parts()).unwrap_or_default();
                *completed.lock().unwrap() = parts
                    .iter()
                    .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_string()))
                    .collect();
                r.if_match() == Some("\"old\"")
            }
        })
        .then_output(|| {
            aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput::builder()
                .e_tag("\"new\"")
                .build()
        });
    let store = mocked(&[&head_rule(size), &create, &copy, &part, &complete, &abort])
        .with_copy_part_limit(10 * MIB as u64);
    let etag = store
        .append_large(BIG, "\"old\"", b"tail\n".to_vec())
        .await
        .unwrap();
    assert_eq!(etag, "\"new\"");

    let mut copies = copies.lock().unwrap().clone();
    copies.sort();
    // 26,214,401 bytes under a 10 MiB limit: 8,738,134 + 8,738,134 + 8,738,133.
    let old = "\"old\"".to_string();
    assert_eq!(
        copies,
        [
            (1, "bytes=0-8738133".to_string(), old.clone()),
            (2, "bytes=8738134-17476267".to_string(), old.clone()),
            (3, "bytes=17476268-26214400".to_string(), old.clone()),
        ]
    );
    assert_eq!(
        *completed.lock().unwrap(),
        [1, 2, 3, 4].map(|n| (n, format!("\"p{n}\""))),
        "the copied ranges in order, then the tail"
    );
    assert_eq!((complete.num_calls(), abort.num_calls()), (1, 0));
}

/// The size that splits the copy comes from a HEAD; a HEAD of another version than the one
/// the caller read fails the append before anything is copied.
#[tokio::test]
async fn a_changed_master_fails_the_append_before_copying() {
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"newer\"")
            .content_length(BIG_SIZE + 100)
            .build()
    });
    let (create, copy, part, abort) = multipart_rules();
    let store = mocked(&[&head, &create, &copy, &part, &abort]);
    for tail in [b"tail\n".to_vec(), Vec::new()] {
        let err = store.append_large(BIG, "\"old\"", tail).await.unwrap_err();
        assert!(
            matches!(err, StoreError::PreconditionFailed { .. }),
            "{err}"
        );
    }
    assert_eq!(create.num_calls() + copy.num_calls() + part.num_calls(), 0);
}
