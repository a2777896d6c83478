//! The Lambda event handler: a scheduled event (any JSON payload) → one run of the core over
//! every partition → the run report as the answer, or an error naming the failed partitions,
//! so that Lambda's retry and the dead-letter queue see the failure. The invocation's deadline
//! becomes [`Settings::deadline`], less a margin to finish the range in hand.
//!
//! This file and `main.rs` are the only places that know Lambda's types.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use store::ObjectStore;

use crate::{run, Classifier, RunReport, Settings, TransformJobs, TransformSettings};

/// Time kept back from the Lambda deadline to finish the range in hand.
const DEADLINE_MARGIN: Duration = Duration::from_secs(90);

/// Handles one scheduled invocation with a classifier in hand (endpoint and embedded modes).
pub async fn handle<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let settings = with_deadline(settings, event.context.deadline);
    classify_day(store, classifier, &settings, today()).await
}

/// Handles one scheduled invocation in batch-transform mode.
pub async fn handle_transform<S: ObjectStore, J: TransformJobs>(
    store: &S,
    jobs: &J,
    settings: &Settings,
    transform: &TransformSettings,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let settings = with_deadline(settings, event.context.deadline);
    transform_day(store, jobs, &settings, transform, today()).await
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

/// One scheduled run in endpoint or embedded mode on `today`: the report as JSON, or an
/// error naming the failed partitions.
async fn classify_day<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    settings: &Settings,
    today: NaiveDate,
) -> Result<Value, Error> {
    answer(run(store, classifier, settings, today).await?)
}

/// One scheduled run in batch-transform mode on `today`; jobs still running are not failures.
async fn transform_day<S: ObjectStore, J: TransformJobs>(
    store: &S,
    jobs: &J,
    settings: &Settings,
    transform: &TransformSettings,
    today: NaiveDate,
) -> Result<Value, Error> {
    answer(crate::transform::run(store, jobs, settings, transform, today).await?)
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
    use crate::{ClassifyError, Label};
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
        let v = classify_day(&s, &Fixed(false), &Settings::default(), today)
            .await
            .unwrap();
        assert_eq!(v["rows_labeled"], 1);
        assert_eq!(v["model"], "fixed");
    }

    /// The schedule event the repository ships (`samples/events/`), through the handler.
    #[tokio::test]
    async fn it_handles_the_sample_schedule_event() {
        let (_d, s) = store_with_one_row().await;
        let text = include_str!("../../../samples/events/classify-schedule.json");
        let payload: Value = serde_json::from_str(text).unwrap();
        let settings = Settings {
            every_partition: true,
            ..Settings::default()
        };
        let event = LambdaEvent::new(payload, lambda_runtime::Context::default());
        let v = handle(&s, &Fixed(false), &settings, event).await.unwrap();
        assert_eq!(
            (v["rows_read"].clone(), v["rows_labeled"].clone()),
            (1.into(), 1.into())
        );
    }

    #[tokio::test]
    async fn it_fails_the_invocation_when_a_partition_fails() {
        let (_d, s) = store_with_one_row().await;
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let err = classify_day(&s, &Fixed(true), &Settings::default(), today)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("1 of 3 partitions failed"),
            "{err}"
        );
    }

    /// A control plane whose jobs start and then stay in `state`.
    struct Jobs(crate::JobState);

    impl TransformJobs for Jobs {
        fn model(&self) -> &str {
            "m"
        }
        async fn create(&self, _: &crate::JobRequest) -> Result<crate::Created, ClassifyError> {
            Ok(crate::Created::Started)
        }
        async fn describe(&self, _: &str) -> Result<Option<crate::JobStatus>, ClassifyError> {
            Ok(Some(crate::JobStatus {
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
        let running = Jobs(crate::JobState::InProgress);
        let v = transform_day(&s, &running, &Settings::default(), &t, today)
            .await
            .unwrap();
        assert_eq!(
            (v["jobs_started"].as_u64(), v["jobs_pending"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(v["rows_pending"], 1);
        let failed = Jobs(crate::JobState::Failed);
        let err = transform_day(&s, &failed, &Settings::default(), &t, today)
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
