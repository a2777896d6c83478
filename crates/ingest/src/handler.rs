//! The Lambda event handler: event → keys → [`ingest_batch`] → the Lambda's answer.
//!
//! For SQS batches the answer is a partial batch response (`batchItemFailures`): only the
//! messages whose objects failed transiently are retried by SQS. A message that is not an
//! event we understand is also reported as failed, so it reaches the dead-letter queue instead
//! of being dropped. Direct S3 and EventBridge invocations fail as a whole when any object
//! failed, so Lambda's asynchronous retry takes them again (appends are idempotent).
//!
//! Events are read by [`crate::events`]' own lenient types, not `aws_lambda_events`': one
//! malformed message must fail alone, not the batch, and the answer is the two-field
//! `{"batchItemFailures": [{"itemIdentifier": …}]}` that Lambda documents.

use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use store::cas::RetryPolicy;
use store::ObjectStore;
use tracing::{info, warn};

use crate::config::Settings;
use crate::core::{ingest_batch, Fate};
use crate::events::{read, Incoming, ObjectRef};

/// Handles one invocation. `bucket` is the data bucket the store reads; objects of other
/// buckets are ignored with a warning.
pub async fn handle<S: ObjectStore>(
    store: &S,
    bucket: &str,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let now = chrono_now();
    let policy = RetryPolicy::default();
    match read(&event.payload)? {
        Incoming::Sqs(messages) => {
            let mut keys = Vec::new();
            let mut owner = Vec::new();
            let mut failures = Vec::new();
            for (id, objects) in &messages {
                match objects {
                    Ok(objs) => {
                        for k in keys_for(objs, bucket) {
                            keys.push(k);
                            owner.push(id.clone());
                        }
                    }
                    Err(e) => {
                        warn!(message_id = %id, error = %e, "unreadable SQS message");
                        failures.push(id.clone());
                    }
                }
            }
            let (fates, report) = ingest_batch(store, settings, &policy, &keys, &now).await;
            for (fate, id) in fates.iter().zip(&owner) {
                if *fate == Fate::Failed && !failures.contains(id) {
                    failures.push(id.clone());
                }
            }
            info!(messages = messages.len(), objects = keys.len(), failed_messages = failures.len(), report = ?report, "sqs batch done");
            Ok(json!({
                "batchItemFailures": failures
                    .iter()
                    .map(|id| json!({ "itemIdentifier": id }))
                    .collect::<Vec<_>>()
            }))
        }
        Incoming::Direct(objs) => {
            let keys = keys_for(&objs, bucket);
            let (_, report) = ingest_batch(store, settings, &policy, &keys, &now).await;
            info!(objects = keys.len(), report = ?report, "event done");
            if report.failed > 0 {
                return Err(
                    format!("{} object(s) failed transiently; retry", report.failed).into(),
                );
            }
            Ok(serde_json::to_value(report)?)
        }
    }
}

fn keys_for(objs: &[ObjectRef], bucket: &str) -> Vec<String> {
    objs.iter()
        .filter(|o| {
            let ours = o.bucket == bucket;
            if !ours {
                warn!(event_bucket = %o.bucket, key = %o.key, "object of another bucket ignored");
            }
            ours
        })
        .map(|o| o.key.clone())
        .collect()
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
