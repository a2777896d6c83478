//! The classify Lambda's entry point: wiring only. Runs on a schedule (any JSON payload),
//! answers the run report, and fails the invocation if any partition failed.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use chrono::NaiveDate;
use classify::{run, Classifier, Config, EndpointClassifier, Mode, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use store::{ObjectStore, S3Store};

/// Time kept back from the Lambda deadline to finish the range in hand.
const DEADLINE_MARGIN: Duration = Duration::from_secs(90);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = S3Store::new(store::s3_client(None).await, config.bucket.clone());
    let Mode::Endpoint(endpoint) = &config.mode;
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
    let (store, classifier, settings) = (&store, &classifier, &config.settings);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut settings = settings.clone();
        settings.deadline =
            instant_of(event.context.deadline).map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or(d));
        handle(
            store,
            classifier,
            &settings,
            chrono::Utc::now().date_naive(),
        )
        .await
    }))
    .await
}

/// One scheduled run: the report as JSON, or an error naming the failed partitions.
async fn handle<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    settings: &Settings,
    today: NaiveDate,
) -> Result<Value, Error> {
    let report = run(store, classifier, settings, today).await?;
    if report.failed() {
        return Err(Error::from(format!(
            "{} of {} partitions failed: {}",
            report.failed_partitions,
            report.partitions.len(),
            serde_json::to_string(&report)?
        )));
    }
    Ok(serde_json::to_value(&report)?)
}

/// The Lambda deadline (milliseconds since the epoch) as an [`Instant`].
fn instant_of(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    if deadline_ms == 0 {
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

    #[test]
    fn deadlines_become_instants() {
        assert!(instant_of(0).is_none());
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let d = instant_of(in_a_minute).unwrap();
        assert!(d > Instant::now() + Duration::from_secs(50));
    }
}
