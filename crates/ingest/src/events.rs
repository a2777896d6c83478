//! The event shapes the ingest Lambda accepts, read leniently: only the fields we use are
//! required, since S3 notifications differ between AWS, moto and test tools.
//!
//! * SQS messages whose body is an S3 notification (the deployed path) or an EventBridge
//!   event; `s3:TestEvent` bodies carry no object and are accepted as empty.
//! * Direct S3 notifications (`Records[].s3`), keys URL-encoded.
//! * EventBridge "Object Created" events, keys not encoded.

use serde::Deserialize;
use serde_json::Value;

/// One object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
}

/// An invocation's payload, sorted by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// SQS records: message id and what its body names (or why it could not be read).
    Sqs(Vec<(String, Result<Vec<ObjectRef>, EventError>)>),
    /// A direct S3 notification or an EventBridge event.
    Direct(Vec<ObjectRef>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not an event calltype ingests: {0}")]
    Unknown(String),
    #[error("malformed event: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: Named,
    object: Keyed,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct Keyed {
    key: String,
}

#[derive(Deserialize)]
struct EventBridge {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: EventBridgeDetail,
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: Named,
    object: Keyed,
}

#[derive(Deserialize)]
struct SqsEnvelope {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

#[derive(Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    body: String,
}

/// Sorts a payload into its shape.
pub fn read(payload: &Value) -> Result<Incoming, EventError> {
    let source = payload
        .get("Records")
        .and_then(|r| r.get(0))
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str);
    if source == Some("aws:sqs") {
        let env: SqsEnvelope = serde_json::from_value(payload.clone())
            .map_err(|e| EventError::Malformed(e.to_string()))?;
        return Ok(Incoming::Sqs(
            env.records
                .into_iter()
                .map(|r| (r.message_id, objects_in_body(&r.body)))
                .collect(),
        ));
    }
    objects_in(payload).map(Incoming::Direct)
}

fn objects_in_body(body: &str) -> Result<Vec<ObjectRef>, EventError> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| EventError::Malformed(format!("SQS body: {e}")))?;
    objects_in(&v)
}

/// The objects named by an S3 notification or an EventBridge event.
pub fn objects_in(v: &Value) -> Result<Vec<ObjectRef>, EventError> {
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if v.get("detail-type").is_some() {
        let ev: EventBridge =
            serde_json::from_value(v.clone()).map_err(|e| EventError::Malformed(e.to_string()))?;
        if ev.detail_type != "Object Created" {
            return Ok(Vec::new());
        }
        return Ok(vec![ObjectRef {
            bucket: ev.detail.bucket.name,
            key: ev.detail.object.key,
        }]);
    }
    if v.get("Records").is_some() {
        let n: S3Notification =
            serde_json::from_value(v.clone()).map_err(|e| EventError::Malformed(e.to_string()))?;
        return Ok(n
            .records
            .into_iter()
            .filter(|r| r.event_name.is_empty() || r.event_name.starts_with("ObjectCreated"))
            .map(|r| ObjectRef {
                bucket: r.s3.bucket.name,
                key: contact_lens::decode_notification_key(&r.s3.object.key),
            })
            .collect());
    }
    Err(EventError::Unknown(
        "neither an SQS batch, an S3 notification nor an EventBridge Object Created event".into(),
    ))
}
