//! The ingest Lambda's entry point: wiring only.
#![recursion_limit = "256"]

use ingest::{handler::handle, Config};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use store::{LocalStore, ObjectStore};
use store_s3::S3Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    match &config.local_dir {
        Some(dir) => serve(LocalStore::new(dir)?, &config).await,
        None => {
            let client = store_s3::s3_client(None).await;
            serve(S3Store::new(client, config.bucket.clone()), &config).await
        }
    }
}

async fn serve<S: ObjectStore>(store: S, config: &Config) -> Result<(), Error> {
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(store, &config.bucket, &config.settings, event).await
    }))
    .await
}
