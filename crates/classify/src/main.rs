//! The classify Lambda's entry point: wiring only. Runs on a schedule (any JSON payload),
//! labels through the endpoint, batch transform jobs or the model in-process
//! (`CALLTYPE_MODE`), answers the run report, and fails the invocation if any partition failed.
//! In embedded mode the model is read and loaded before the first invocation, so a bad
//! artifact fails the cold start.

use std::time::{Duration, Instant};

use aws_sdk_sagemakerruntime::config::retry::RetryConfig;
use aws_sdk_sagemakerruntime::config::timeout::TimeoutConfig;
use classify::{
    handler, Classifier, Config, EmbeddedSettings, EndpointClassifier, Mode, ModelClassifier,
    ModelSource, SageMakerJobs, Settings, TransformJobs, TransformSettings,
};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use store::{LocalStore, ObjectStore};
use store_s3::S3Store;

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
    // Only the SageMaker modes need the shared AWS config (embedded mode reads its model
    // through the store adapter, or from a directory).
    let shared = || aws_config::load_defaults(aws_config::BehaviorVersion::latest());
    match &config.mode {
        Mode::Endpoint(endpoint) => {
            let shared = shared().await;
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
            let shared = shared().await;
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
        handler::handle(store, classifier, settings, event).await
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
        handler::handle_transform(store, jobs, settings, transform, event).await
    }))
    .await
}
