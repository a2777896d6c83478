//! Fault sequences for the S3 adapter with `aws-smithy-mocks`: what moto cannot be made to do.

use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
use aws_sdk_s3::types::CopyPartResult;
use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use store::cas::{retry_cas, RetryPolicy};
use store::{Condition, ObjectStore, S3Store, StoreError};

/// A store whose client answers from `rules`, with 3 quick SDK attempts per call.
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

#[tokio::test]
async fn it_retries_a_412_then_wins() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(
            412,
            s3_error(
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
        )
        .output(|| PutObjectOutput::builder().e_tag("\"e2\"").build())
        .build();
    let store = mocked(&[&put]);
    assert_eq!(cas_put(&store).await.unwrap(), "\"e2\"");
    assert_eq!(put.num_calls(), 2);
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
async fn it_retries_a_409_conflict_then_wins() {
    let put = mock!(Client::put_object)
        .sequence()
        .http_status(
            409,
            s3_error(
                "ConditionalRequestConflict",
                "A conflicting operation is in progress",
            ),
        )
        .output(|| PutObjectOutput::builder().e_tag("\"e2\"").build())
        .build();
    let store = mocked(&[&put]);
    assert_eq!(cas_put(&store).await.unwrap(), "\"e2\"");
    assert_eq!(put.num_calls(), 2);
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
    let head = mock!(Client::head_object).then_output(|| {
        HeadObjectOutput::builder()
            .e_tag("\"e\"")
            .content_length(10)
            .build()
    });
    let store = mocked(&[&get, &head]);
    let o = store.get_range("k", 10, None).await.unwrap().unwrap();
    assert!(o.body.is_empty());
    assert_eq!((o.size, o.etag.as_str()), (10, "\"e\""));
}

#[tokio::test]
async fn a_ranged_get_reports_the_whole_size() {
    let get = mock!(Client::get_object)
        .match_requests(|r| r.range() == Some("bytes=2-4"))
        .then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"e\"")
                .content_range("bytes 2-4/10")
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"234"))
                .build()
        });
    let store = mocked(&[&get]);
    let o = store.get_range("k", 2, Some(5)).await.unwrap().unwrap();
    assert_eq!((o.body.as_slice(), o.size), (&b"234"[..], 10));
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
    let store = mocked(&[&create, &copy, &part, &complete, &abort]);
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
    let store = mocked(&[&create, &copy, &part, &abort]);
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
    let store = mocked(&[&create, &copy, &part, &complete, &abort]);
    let etag = store
        .append_large(BIG, "\"old\"", b"tail\n".to_vec())
        .await
        .unwrap();
    assert_eq!(etag, "\"new-2\"");
    assert_eq!(complete.num_calls(), 1);
    assert_eq!(abort.num_calls(), 0);
}
