//! `--store DIR|s3://BUCKET`: which object store a command works on.

use anyhow::{bail, Result};
use store::LocalStore;
use store_s3::S3Store;

/// A parsed `--store` value.
#[derive(Debug, Clone)]
pub enum StoreArg {
    Local(std::path::PathBuf),
    S3 { bucket: String },
}

impl std::str::FromStr for StoreArg {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let bucket = rest.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                bail!("--store s3://BUCKET takes a bucket name only, got {s:?}");
            }
            return Ok(StoreArg::S3 {
                bucket: bucket.to_string(),
            });
        }
        Ok(StoreArg::Local(s.into()))
    }
}

/// The flags naming the bucket a command works on and where calltype's objects sit in it:
/// one set for `ingest`, `classify` and `suggest`.
#[derive(clap::Args, Debug, Clone)]
pub struct Bucket {
    /// The bucket: a local directory (the embedded default) or s3://BUCKET.
    #[arg(long, default_value = "local-bucket")]
    pub store: StoreArg,
    /// S3 endpoint URL (for moto or another S3-compatible server).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub endpoint_url: Option<String>,
    /// The prefix of calltype's objects in the bucket: masters, labeled parts, quarantine and
    /// state.
    #[arg(long, default_value = "calltype/")]
    pub prefix: String,
}

impl Bucket {
    /// Runs `f` with the store these flags name. `endpoint_url` points the S3 client
    /// elsewhere (moto, LocalStack); otherwise the usual AWS configuration chain applies.
    pub async fn with<T>(&self, f: impl AsyncStoreFn<T>) -> Result<T> {
        let endpoint_url = self.endpoint_url.as_deref();
        match &self.store {
            StoreArg::Local(dir) => f.call(LocalStore::new(dir)?).await,
            StoreArg::S3 { bucket } => {
                let client = store_s3::s3_client(endpoint_url).await;
                f.call(S3Store::new(client, bucket.clone())).await
            }
        }
    }
}

/// A function generic over the store type (closures cannot be).
pub trait AsyncStoreFn<T> {
    fn call<S: store::ObjectStore + 'static>(
        self,
        store: S,
    ) -> impl std::future::Future<Output = Result<T>>;
}
