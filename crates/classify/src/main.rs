//! The classify Lambda's entry point: wiring only. Runs on a schedule (any JSON payload),
//! answers the run report, and fails the invocation if any partition failed.

use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use classify::{run, Config, EndpointClassifier, Mode};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::time::Duration;
use store::S3Store;

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
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let today = chrono::Utc::now().date_naive();
        let report = run(store, classifier, settings, today).await?;
        if report.failed() {
            return Err(Error::from(format!(
                "{} of {} partitions failed: {}",
                report.failed_partitions,
                report.partitions.len(),
                serde_json::to_string(&report)?
            )));
        }
        Ok::<Value, Error>(serde_json::to_value(&report)?)
    }))
    .await
}
