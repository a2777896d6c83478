//! The ingest Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use ingest::{handler::handle, Config};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use store::S3Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let client = store::s3_client(None).await;
    let store = S3Store::new(client, config.bucket.clone());
    let (store, config) = (&store, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(store, &config.bucket, &config.settings, event).await
    }))
    .await
}
