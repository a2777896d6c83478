//! The batch-transform control plane through the real aws-sdk-sagemaker client, answered by
//! `aws-smithy-mocks` rules: what the job is asked to do, a job followed until its output is
//! joined, failed jobs retried and then surfaced with their reason, a name already in use, a
//! recorded job that was never created, and how SageMaker's errors are told apart.

mod common;

use aws_sdk_sagemaker::config::retry::RetryConfig;
use aws_sdk_sagemaker::operation::create_transform_job::{
    CreateTransformJobError, CreateTransformJobOutput,
};
use aws_sdk_sagemaker::operation::describe_transform_job::{
    DescribeTransformJobError, DescribeTransformJobOutput,
};
use aws_sdk_sagemaker::types::error::{ResourceInUse, ResourceNotFound};
use aws_sdk_sagemaker::types::{
    AssemblyType, BatchStrategy, S3DataType, SplitType, TransformDataSource, TransformInput,
    TransformJobStatus, TransformS3DataSource,
};
use aws_sdk_sagemaker::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use classify::transform::{job_name, output_key, run};
use classify::{
    ByteRange, ClassifyError, JobKeys, JobRecord, JobRequest, JobState, SageMakerJobs, Settings,
    TransformJobs, TransformSettings,
};
use common::*;
use master_csv::Layout;
use store::{Condition, LocalStore, ObjectStore};

const BUCKET: &str = "data-bucket";

fn jobs(rules: &[&Rule], settings: TransformSettings) -> SageMakerJobs {
    let client: Client = mock_client!(aws_sdk_sagemaker, RuleMode::Sequential, rules, |c| c
        .retry_config(RetryConfig::disabled()));
    SageMakerJobs::new(client, BUCKET, settings)
}

fn settings() -> TransformSettings {
    TransformSettings {
        instance_type: "ml.c5.xlarge".into(),
        job_prefix: "stack-".into(),
        max_payload_mb: 2,
        ..TransformSettings::new("Model-abc123")
    }
}

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    (dir, s)
}

fn created() -> CreateTransformJobOutput {
    CreateTransformJobOutput::builder()
        .transform_job_arn("arn:aws:sagemaker:us-east-1:1:transform-job/x")
        .build()
}

/// A DescribeTransformJob answer for a job reading `input_key` of our bucket.
fn described(
    status: TransformJobStatus,
    reason: Option<&str>,
    input_key: &str,
) -> DescribeTransformJobOutput {
    let mut b = DescribeTransformJobOutput::builder()
        .transform_job_status(status)
        .transform_input(
            TransformInput::builder()
                .data_source(
                    TransformDataSource::builder()
                        .s3_data_source(
                            TransformS3DataSource::builder()
                                .s3_data_type(S3DataType::S3Prefix)
                                .s3_uri(format!("s3://{BUCKET}/{input_key}"))
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
    if let Some(r) = reason {
        b = b.failure_reason(r);
    }
    b.build()
}

/// The only range of today's master once it holds `rows`.
async fn setup(s: &LocalStore, rows: &[master_csv::Row]) -> (ByteRange, JobKeys) {
    append(s, TODAY, rows).await;
    let range = ByteRange {
        from: 0,
        to: master_size(s, TODAY).await,
    };
    (range, JobKeys::new(&Layout::default(), TODAY, range))
}

fn name(range: ByteRange, attempt: u32) -> String {
    job_name("stack-", &Layout::default(), TODAY, range, attempt)
}

/// Does what the job would: keyword labels for its input, written where SageMaker writes them.
async fn complete(s: &LocalStore, keys: &JobKeys, attempt: u32) {
    let input = s.get(&keys.input).await.unwrap().unwrap().body;
    s.put(
        &output_key(&keys.output_prefix(attempt), &keys.input),
        keyword_output(&input, 1),
        Condition::None,
    )
    .await
    .unwrap();
}

async fn record(s: &LocalStore, keys: &JobKeys) -> JobRecord {
    serde_json::from_slice(&s.get(&keys.record).await.unwrap().unwrap().body).unwrap()
}

#[tokio::test]
async fn a_job_is_created_as_batch_transform_expects_then_followed_until_joined() {
    let (_d, s) = store();
    let (range, keys) = setup(
        &s,
        &[
            row(TODAY, "c1", "my bill"),
            row(TODAY, "c2", "cancel now"),
            row(TODAY, "c3", "hello"),
        ],
    )
    .await;
    let job = name(range, 1);
    let (want_job, want_input, want_output) = (
        job.clone(),
        format!("s3://{BUCKET}/{}", keys.input),
        format!(
            "s3://{BUCKET}/{}",
            keys.output_prefix(1).trim_end_matches('/')
        ),
    );
    let create = mock!(Client::create_transform_job)
        .match_requests(move |r| {
            let input = r.transform_input().unwrap();
            let src = input.data_source().unwrap().s3_data_source().unwrap();
            let out = r.transform_output().unwrap();
            let res = r.transform_resources().unwrap();
            r.transform_job_name() == Some(want_job.as_str())
                && r.model_name() == Some("Model-abc123")
                && r.batch_strategy() == Some(&BatchStrategy::MultiRecord)
                && r.max_payload_in_mb() == Some(2)
                && src.s3_data_type() == Some(&S3DataType::S3Prefix)
                && src.s3_uri() == Some(want_input.as_str())
                && input.content_type() == Some("application/jsonlines")
                && input.split_type() == Some(&SplitType::Line)
                && out.s3_output_path() == Some(want_output.as_str())
                && out.accept() == Some("application/jsonlines")
                && out.assemble_with() == Some(&AssemblyType::Line)
                && res.instance_type().map(|t| t.as_str()) == Some("ml.c5.xlarge")
                && res.instance_count() == Some(1)
        })
        .then_output(created);
    let (k1, k2) = (keys.input.clone(), keys.input.clone());
    let (n1, n2) = (job.clone(), job.clone());
    let running = mock!(Client::describe_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(n1.as_str()))
        .then_output(move || described(TransformJobStatus::InProgress, None, &k1));
    let completed = mock!(Client::describe_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(n2.as_str()))
        .then_output(move || described(TransformJobStatus::Completed, None, &k2));
    let jobs = jobs(&[&create, &running, &completed], settings());
    let cfg = Settings::default();

    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!(
        (
            r.counts.jobs_started,
            r.counts.jobs_pending,
            r.counts.rows_pending
        ),
        (1, 1, 3)
    );
    assert_eq!(create.num_calls(), 1);
    let rec = record(&s, &keys).await;
    assert_eq!(
        (rec.job_name.as_str(), rec.attempt, rec.rows),
        (job.as_str(), 1, 3)
    );

    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert_eq!((r.counts.jobs_pending, r.counts.rows_labeled), (1, 0));
    assert_eq!(watermark(&s, TODAY).await.unwrap().pending, Some(range));

    complete(&s, &keys, 1).await;
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.jobs_pending
        ),
        (3, 3, 0)
    );
    assert_eq!(
        (
            create.num_calls(),
            running.num_calls(),
            completed.num_calls()
        ),
        (1, 1, 1)
    );
    assert_labeled_once(&s, TODAY, &["c1", "c2", "c3"]).await;
    let rows = labeled(&s, TODAY).await;
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str()).collect();
    assert_eq!(labels, ["billing", "cancellation", "other"]);
    assert!(rows.iter().all(|r| r["model"] == "Model-abc123"));
    assert!(transform_state(&s).await.is_empty());
    assert_eq!(watermark(&s, TODAY).await.unwrap().offset, range.to);
}

#[tokio::test]
async fn a_failed_job_is_retried_under_a_new_name_then_joined() {
    let (_d, s) = store();
    let (range, keys) = setup(&s, &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "x")]).await;
    let (first, second) = (name(range, 1), name(range, 2));
    let (k1, k2) = (keys.input.clone(), keys.input.clone());
    let f = first.clone();
    let create1 = mock!(Client::create_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(f.as_str()))
        .then_output(created);
    let f = first.clone();
    let failed = mock!(Client::describe_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(f.as_str()))
        .then_output(move || {
            described(
                TransformJobStatus::Failed,
                Some("AlgorithmError: model server answered 500"),
                &k1,
            )
        });
    let (sn, out2) = (second.clone(), keys.output_prefix(2));
    let create2 = mock!(Client::create_transform_job)
        .match_requests(move |r| {
            r.transform_job_name() == Some(sn.as_str())
                && r.transform_output().unwrap().s3_output_path()
                    == Some(format!("s3://{BUCKET}/{}", out2.trim_end_matches('/')).as_str())
        })
        .then_output(created);
    let sn = second.clone();
    let done = mock!(Client::describe_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(sn.as_str()))
        .then_output(move || described(TransformJobStatus::Completed, None, &k2));
    let jobs = jobs(&[&create1, &failed, &create2, &done], settings());
    let cfg = Settings::default();

    run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (1, 1));
    let rec = record(&s, &keys).await;
    assert_eq!((rec.attempt, rec.job_name.as_str()), (2, second.as_str()));
    assert_eq!(
        rec.failures,
        [format!(
            "{first}: AlgorithmError: model server answered 500"
        )]
    );

    complete(&s, &keys, 2).await;
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 2);
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
    assert_eq!(
        (
            create1.num_calls(),
            failed.num_calls(),
            create2.num_calls(),
            done.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn a_job_failing_beyond_max_attempts_is_an_error_with_its_reason() {
    let (_d, s) = store();
    let (range, keys) = setup(&s, &[row(TODAY, "c1", "bill")]).await;
    let t = TransformSettings {
        max_attempts: 2,
        ..settings()
    };
    let failed = |times: usize| {
        let k = keys.input.clone();
        mock!(Client::describe_transform_job)
            .sequence()
            .output(move || {
                described(
                    TransformJobStatus::Failed,
                    Some("ClientError: out of memory"),
                    &k,
                )
            })
            .times(times)
            .build()
    };
    let n1 = name(range, 1);
    let create1 = mock!(Client::create_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(n1.as_str()))
        .then_output(created);
    let n2 = name(range, 2);
    let create2 = mock!(Client::create_transform_job)
        .match_requests(move |r| r.transform_job_name() == Some(n2.as_str()))
        .then_output(created);
    let (failed1, failed2) = (failed(1), failed(2));
    let jobs = jobs(&[&create1, &failed1, &create2, &failed2], t.clone());
    let cfg = Settings::default();
    run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    for _ in 0..2 {
        let r = run(&s, &jobs, &cfg, &t, today()).await.unwrap();
        assert!(r.failed());
        assert_eq!((r.counts.rows_failed, r.counts.jobs_started), (1, 0));
        let p = &r.partitions[2];
        let err = p.error.as_deref().unwrap();
        assert!(
            err.contains(&format!("{} Failed on attempt 2 of 2", name(range, 2)))
                && err.contains("ClientError: out of memory"),
            "{err}"
        );
        assert!(!p.transient);
    }
    assert_eq!(
        (
            create1.num_calls(),
            create2.num_calls(),
            failed2.num_calls()
        ),
        (1, 1, 2),
        "no job past the limit"
    );
    assert!(labeled(&s, TODAY).await.is_empty());
    assert_eq!(watermark(&s, TODAY).await.unwrap().pending, Some(range));
}

#[tokio::test]
async fn resource_in_use_on_create_counts_as_started() {
    let (_d, s) = store();
    let (_, keys) = setup(&s, &[row(TODAY, "c1", "cancel")]).await;
    let create = mock!(Client::create_transform_job).then_error(|| {
        CreateTransformJobError::ResourceInUse(
            ResourceInUse::builder()
                .message("Job name must be unique within an AWS account and region, and a job with this name already exists")
                .build(),
        )
    });
    let k = keys.input.clone();
    let describe = mock!(Client::describe_transform_job)
        .then_output(move || described(TransformJobStatus::Completed, None, &k));
    let jobs = jobs(&[&create, &describe], settings());
    let cfg = Settings::default();
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (0, 1));
    complete(&s, &keys, 1).await;
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 1);
    assert_labeled_once(&s, TODAY, &["c1"]).await;
}

#[tokio::test]
async fn a_recorded_job_that_was_never_created_is_created_on_the_next_run() {
    let (_d, s) = store();
    let (range, keys) = setup(&s, &[row(TODAY, "c1", "bill")]).await;
    let unavailable = mock!(Client::create_transform_job)
        .sequence()
        .http_status(
            503,
            Some(r#"{"__type":"ServiceUnavailable","message":"try later"}"#.into()),
        )
        .build();
    let describe = mock!(Client::describe_transform_job).then_error(|| {
        DescribeTransformJobError::ResourceNotFound(
            ResourceNotFound::builder().message("no such job").build(),
        )
    });
    let create = mock!(Client::create_transform_job).then_output(created);
    let jobs = jobs(&[&unavailable, &describe, &create], settings());
    let cfg = Settings::default();
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(r.failed());
    assert!(r.partitions[2].transient, "{r:?}");
    assert_eq!(record(&s, &keys).await.job_name, name(range, 1));
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (1, 1));
    assert_eq!(
        (
            unavailable.num_calls(),
            describe.num_calls(),
            create.num_calls()
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn sagemaker_errors_are_told_apart() {
    let req = JobRequest {
        name: "stack-261120-0abcdef-1".into(),
        input_key: "calltype/state/transform/x/input/rows.jsonl".into(),
        output_prefix: "calltype/state/transform/x/output/1/".into(),
    };
    let describe = mock!(Client::describe_transform_job)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ValidationException","message":"Could not find requested job with name stack-261120-0abcdef-1"}"#.into()),
        )
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"not authorized"}"#.into()),
        )
        .output(|| {
            described(
                TransformJobStatus::Completed,
                None,
                "calltype/state/transform/y/input/rows.jsonl",
            )
        })
        .build();
    let create = mock!(Client::create_transform_job)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ValidationException","message":"A job with this name already exists"}"#.into()),
        )
        .http_status(
            400,
            Some(r#"{"__type":"ResourceLimitExceeded","message":"quota"}"#.into()),
        )
        .http_status(
            400,
            Some(r#"{"__type":"ValidationException","message":"Could not find model Model-abc123"}"#.into()),
        )
        .build();
    let jobs = jobs(&[&describe, &create], settings());
    assert_eq!(jobs.describe(&req.name).await.unwrap(), None);
    assert!(matches!(
        jobs.describe(&req.name).await,
        Err(ClassifyError::Transient(_))
    ));
    match jobs.describe(&req.name).await {
        Err(ClassifyError::Permanent(m)) => assert!(m.contains("AccessDeniedException"), "{m}"),
        other => panic!("{other:?}"),
    }
    let st = jobs.describe(&req.name).await.unwrap().unwrap();
    assert_eq!(st.state, JobState::Completed);
    assert_eq!(
        st.input_key.as_deref(),
        Some("calltype/state/transform/y/input/rows.jsonl")
    );
    assert_eq!(
        jobs.create(&req).await.unwrap(),
        classify::Created::AlreadyExists
    );
    assert!(matches!(
        jobs.create(&req).await,
        Err(ClassifyError::Transient(_))
    ));
    assert!(matches!(
        jobs.create(&req).await,
        Err(ClassifyError::Permanent(_))
    ));
}

#[tokio::test]
async fn a_job_reading_another_input_is_a_name_collision_not_a_result() {
    let (_d, s) = store();
    let (_, _keys) = setup(&s, &[row(TODAY, "c1", "bill")]).await;
    let create = mock!(Client::create_transform_job).then_error(|| {
        CreateTransformJobError::ResourceInUse(ResourceInUse::builder().message("exists").build())
    });
    let describe = mock!(Client::describe_transform_job).then_output(|| {
        described(
            TransformJobStatus::Completed,
            None,
            "calltype/state/transform/date=2026-11-20/part-other/input/rows.jsonl",
        )
    });
    let jobs = jobs(&[&create, &describe], settings());
    let cfg = Settings::default();
    run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    let r = run(&s, &jobs, &cfg, &settings(), today()).await.unwrap();
    assert!(r.failed());
    assert!(r.partitions[2]
        .error
        .as_deref()
        .unwrap()
        .contains("job names collide"));
    assert!(labeled(&s, TODAY).await.is_empty());
}
