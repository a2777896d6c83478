//! The classify Lambda's entry point: wiring only. Runs on a schedule (any JSON payload),
//! labels through the endpoint, batch transform jobs or the model in-process
//! (`CALLTYPE_MODE`), answers the run report, and fails the invocation if any partition failed.
//! In embedded mode the model is read and loaded before the first invocation, so a bad
//! artifact fails the cold start.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use chrono::NaiveDate;
use classify::{
    run, Classifier, Config, EmbeddedSettings, EndpointClassifier, Mode, ModelClassifier,
    ModelSource, RunReport, SageMakerJobs, Settings, TransformJobs, TransformSettings,
};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use store::{LocalStore, ObjectStore};
use store_s3::S3Store;

/// Time kept back from the Lambda deadline to finish the range in hand.
const DEADLINE_MARGIN: Duration = Duration::from_secs(90);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    if let Mode::Embedded(EmbeddedSettings {
        threads: Some(n), ..
    }) = &config.mode
    {
        // The model's kernels run on rayon's global pool: size it to the function's vCPUs.
        rayon::ThreadPoolBuilder::new()
            .num_threads(*n)
            .build_global()?;
    }
    match &config.local_dir {
        Some(dir) => serve(&LocalStore::new(dir)?, &config).await,
        None => {
            let store = S3Store::new(store_s3::s3_client(None).await, config.bucket.clone());
            serve(&store, &config).await
        }
    }
}

/// Wires the configured mode over `store` and runs the Lambda loop.
async fn serve<S: ObjectStore>(store: &S, config: &Config) -> Result<(), Error> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    match &config.mode {
        Mode::Endpoint(endpoint) => {
            // The adapter retries transient failures itself; SDK retries on top would multiply.
            let sm_conf = aws_sdk_sagemakerruntime::config::Builder::from(&shared)
                .retry_config(RetryConfig::disabled())
                .timeout_config(
                    TimeoutConfig::builder()
                        .operation_attempt_timeout(Duration::from_secs(70))
                        .build(),
                )
                .build();
            let classifier = EndpointClassifier::new(
                aws_sdk_sagemakerruntime::Client::from_conf(sm_conf),
                endpoint.options(),
            );
            Box::pin(serve_classifier(store, &classifier, &config.settings)).await
        }
        Mode::Embedded(embedded) => {
            let classifier = load_embedded(embedded).await?;
            Box::pin(serve_classifier(store, &classifier, &config.settings)).await
        }
        Mode::Transform(transform) => {
            // Control-plane calls are few and idempotent: the SDK's standard retries suit them.
            let jobs = SageMakerJobs::new(
                aws_sdk_sagemaker::Client::new(&shared),
                config.bucket.clone(),
                transform.clone(),
            );
            Box::pin(serve_transform(store, &jobs, &config.settings, transform)).await
        }
    }
}

/// Embedded mode's cold start: the model read (from S3 into the temporary directory, or from
/// a directory packaged with the function) and loaded.
async fn load_embedded(embedded: &EmbeddedSettings) -> Result<ModelClassifier, Error> {
    let started = Instant::now();
    let unpack_to = std::env::temp_dir().join("calltype-model");
    let loaded = match &embedded.model {
        ModelSource::S3 { bucket, .. } => {
            let artifacts = S3Store::new(store_s3::s3_client(None).await, bucket.clone());
            classify::embedded::load_model(&embedded.model, Some(&artifacts), &unpack_to).await
        }
        ModelSource::Dir(_) => {
            classify::embedded::load_model::<LocalStore>(&embedded.model, None, &unpack_to).await
        }
    };
    let classifier = loaded.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    tracing::info!(
        model = classifier.name(),
        labels = classifier.labels().len(),
        threads = rayon::current_num_threads(),
        load_ms = started.elapsed().as_millis() as u64,
        "model ready"
    );
    Ok(classifier)
}

/// The Lambda loop with a classifier in hand (endpoint and embedded modes).
async fn serve_classifier<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    settings: &Settings,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let settings = with_deadline(settings, event.context.deadline);
        handle(store, classifier, &settings, today()).await
    }))
    .await
}

/// The Lambda loop in batch-transform mode.
async fn serve_transform<S: ObjectStore, J: TransformJobs>(
    store: &S,
    jobs: &J,
    settings: &Settings,
    transform: &TransformSettings,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let settings = with_deadline(settings, event.context.deadline);
        handle_transform(store, jobs, &settings, transform, today()).await
    }))
    .await
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The settings of one invocation: no new range is started after the Lambda's deadline less
/// [`DEADLINE_MARGIN`].
fn with_deadline(settings: &Settings, deadline_ms: u64) -> Settings {
    let mut settings = settings.clone();
    let deadline = instant_of(deadline_ms);
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    tracing::info!(
        deadline_ms,
        left_ms = left.map(|l| l.as_millis() as u64),
        "invocation"
    );
    // At most a quarter of the time left goes to the margin (short local timeouts, e.g. `cargo
    // lambda watch`'s), so a short invocation still gets work done.
    settings.deadline = deadline
        .zip(left)
        .map(|(d, l)| d - DEADLINE_MARGIN.min(l / 4));
    settings
}

/// One scheduled run in endpoint mode: the report as JSON, or an error naming the failed
/// partitions.
async fn handle<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    settings: &Settings,
    today: NaiveDate,
) -> Result<Value, Error> {
    answer(run(store, classifier, settings, today).await?)
}

/// One scheduled run in batch-transform mode; jobs still running are not failures.
async fn handle_transform<S: ObjectStore, J: TransformJobs>(
    store: &S,
    jobs: &J,
    settings: &Settings,
    transform: &TransformSettings,
    today: NaiveDate,
) -> Result<Value, Error> {
    answer(classify::transform::run(store, jobs, settings, transform, today).await?)
}

/// The run's report as JSON, or an error naming the failed partitions.
fn answer(report: RunReport) -> Result<Value, Error> {
    if report.failed() {
        let listing = match &report.error {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        return Err(Error::from(format!(
            "{} of {} partitions failed{listing}: {}",
            report.failed_partitions,
            report.partitions.len(),
            serde_json::to_string(&report)?
        )));
    }
    Ok(serde_json::to_value(&report)?)
}

/// Deadlines below this (2001-09-09 in epoch milliseconds) are not epoch times: `cargo lambda
/// watch` sends the function timeout itself (e.g. 600000). Such a deadline counts as unknown.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// The Lambda deadline (milliseconds since the epoch) as an [`Instant`].
fn instant_of(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    if deadline_ms < EPOCH_MS_FLOOR {
        return None;
    }
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify::{ClassifyError, Label};
    use store::{Condition, LocalStore};

    struct Fixed(bool);

    impl Classifier for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
            if self.0 {
                return Err(ClassifyError::Transient("throttled".into()));
            }
            Ok(texts
                .iter()
                .map(|_| Label {
                    label: "other".into(),
                    score: 1.0,
                    scores: None,
                })
                .collect())
        }
    }

    async fn store_with_one_row() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path()).unwrap();
        let mut body = master_csv::encode::header();
        let mut fields = vec![""; master_csv::COLUMNS.len()];
        fields[0] = "c1";
        fields[1] = "2026-11-20";
        fields[12] = "some words";
        body.extend(master_csv::encode::encode_record(fields));
        let key = master_csv::Layout::default().master("2026-11-20");
        s.put(&key, body, Condition::None).await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn it_answers_the_report_as_json() {
        let (_d, s) = store_with_one_row().await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let v = handle(&s, &Fixed(false), &Settings::default(), today)
            .await
            .unwrap();
        assert_eq!(v["rows_labeled"], 1);
        assert_eq!(v["model"], "fixed");
    }

    #[tokio::test]
    async fn it_fails_the_invocation_when_a_partition_fails() {
        let (_d, s) = store_with_one_row().await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let err = handle(&s, &Fixed(true), &Settings::default(), today)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("1 of 3 partitions failed"),
            "{err}"
        );
    }

    /// A control plane whose jobs start and then stay in `state`.
    struct Jobs(classify::JobState);

    impl TransformJobs for Jobs {
        fn model(&self) -> &str {
            "m"
        }
        async fn create(
            &self,
            _: &classify::JobRequest,
        ) -> Result<classify::Created, ClassifyError> {
            Ok(classify::Created::Started)
        }
        async fn describe(&self, _: &str) -> Result<Option<classify::JobStatus>, ClassifyError> {
            Ok(Some(classify::JobStatus {
                state: self.0,
                failure_reason: Some("AlgorithmError: boom".into()),
                input_key: None,
            }))
        }
    }

    #[tokio::test]
    async fn running_jobs_are_reported_and_failed_ones_fail_the_invocation() {
        let (_d, s) = store_with_one_row().await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let t = TransformSettings {
            max_attempts: 1,
            ..TransformSettings::new("m")
        };
        let running = Jobs(classify::JobState::InProgress);
        let v = handle_transform(&s, &running, &Settings::default(), &t, today)
            .await
            .unwrap();
        assert_eq!(
            (v["jobs_started"].as_u64(), v["jobs_pending"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(v["rows_pending"], 1);
        let failed = Jobs(classify::JobState::Failed);
        let err = handle_transform(&s, &failed, &Settings::default(), &t, today)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 of 3 partitions failed") && err.contains("AlgorithmError: boom"),
            "{err}"
        );
    }

    #[test]
    fn short_invocations_keep_most_of_their_time() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let short = with_deadline(&Settings::default(), now_ms + 30_000);
        let d = short.deadline.unwrap();
        assert!(d > Instant::now() + Duration::from_secs(20), "{d:?}");
        let long = with_deadline(&Settings::default(), now_ms + 600_000);
        let d = long.deadline.unwrap();
        assert!(d < Instant::now() + Duration::from_secs(511), "{d:?}");
        assert!(d > Instant::now() + Duration::from_secs(500), "{d:?}");
    }

    #[test]
    fn deadlines_become_instants() {
        assert!(instant_of(0).is_none());
        assert!(
            instant_of(600_000).is_none(),
            "a timeout, not an epoch time"
        );
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let d = instant_of(in_a_minute).unwrap();
        assert!(d > Instant::now() + Duration::from_secs(50));
    }
}
