//! What an AWS SDK error means to the caller: the one mapping from SDK errors to
//! retryable or permanent, for every adapter (S3 here; SageMaker runtime and control plane in
//! `classify`). Adapters turn a [`SdkFault`] into their own error type and may only add
//! service-specific knowledge on top (a model's own status code, a "job exists" validation
//! error), never a second copy of these rules.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// How long a service message may be in an error: messages can be long, and they are logged.
const MESSAGE_CHARS: usize = 300;

/// What the caller should make of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another writer won a conditional request: 412, or 409 `ConditionalRequestConflict` /
    /// `OperationAborted` (or 409 without a code).
    Conflict,
    /// The object or resource is missing: 404 `NoSuchKey` / `NotFound` (or 404 without a
    /// code). A missing bucket (`NoSuchBucket`) is [`Fault::Permanent`].
    Missing,
    /// A later attempt may succeed: throttling, request timeouts, 5xx, a request that could
    /// not be sent, a response cut off mid-way.
    Transient,
    /// The same request fails the same way: anything else.
    Permanent,
}

/// Error codes that mean "try again later", whatever the service and status.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalDependencyException",
    "ServiceUnavailable",
    "ModelNotReadyException",
];

/// The fault an HTTP status and an AWS error code mean (the code decides when it is known).
pub fn fault(status: Option<u16>, code: Option<&str>) -> Fault {
    match code {
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "OperationAborted") => {
            return Fault::Conflict
        }
        Some("NoSuchKey" | "NotFound") => return Fault::Missing,
        Some(c) if TRANSIENT_CODES.contains(&c) => return Fault::Transient,
        _ => {}
    }
    match status {
        Some(412) => Fault::Conflict,
        Some(409) if code.is_none() => Fault::Conflict,
        Some(404) if code.is_none() => Fault::Missing,
        Some(408 | 429) => Fault::Transient,
        Some(s) if s >= 500 => Fault::Transient,
        _ => Fault::Permanent,
    }
}

/// A failed SDK request, read once: its [`Fault`] and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFault {
    pub fault: Fault,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The AWS error code, when the service sent one.
    pub code: Option<String>,
    /// `code: message` for a service error (the status when there is no code; at most 300
    /// characters of message), else what failed ("request timed out", ...).
    pub detail: String,
}

impl std::fmt::Display for SdkFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Reads any SDK error of any AWS service's operation.
pub fn sdk_fault<E>(err: &SdkError<E, HttpResponse>) -> SdkFault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let other = |fault, detail: String| SdkFault {
        fault,
        status: None,
        code: None,
        detail,
    };
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let e = se.err();
            service_fault(Some(status), e.code(), e.message())
        }
        SdkError::TimeoutError(_) => other(Fault::Transient, "request timed out".into()),
        SdkError::DispatchFailure(d) => other(
            if d.is_user() {
                Fault::Permanent
            } else {
                Fault::Transient
            },
            format!("request could not be sent: {d:?}"),
        ),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if status >= 300 {
                service_fault(Some(status), None, None)
            } else {
                // A truncated or garbled response: the connection broke mid-way.
                SdkFault {
                    status: Some(status),
                    ..other(
                        Fault::Transient,
                        format!("unreadable response (HTTP {status})"),
                    )
                }
            }
        }
        SdkError::ConstructionFailure(_) => {
            other(Fault::Permanent, "the request could not be built".into())
        }
        e => other(Fault::Permanent, e.to_string()),
    }
}

/// A service's answer: its status, code and message.
pub fn service_fault(status: Option<u16>, code: Option<&str>, message: Option<&str>) -> SdkFault {
    let name = match (code, status) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("HTTP {s}"),
        (None, None) => "unknown".to_string(),
    };
    let message: String = message
        .unwrap_or("no message")
        .chars()
        .take(MESSAGE_CHARS)
        .collect();
    SdkFault {
        fault: fault(status, code),
        status,
        code: code.map(str::to_string),
        detail: format!("{name}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Fault::*;
        for (status, code, want) in [
            (412, Some("PreconditionFailed"), Conflict),
            (409, Some("ConditionalRequestConflict"), Conflict),
            (409, Some("OperationAborted"), Conflict),
            (412, None, Conflict),
            (409, None, Conflict),
            (409, Some("BucketNotEmpty"), Permanent),
            (404, Some("NoSuchKey"), Missing),
            (404, None, Missing),
            (404, Some("NoSuchBucket"), Permanent),
            (503, Some("SlowDown"), Transient),
            (503, None, Transient),
            (500, Some("InternalError"), Transient),
            (429, None, Transient),
            (400, Some("RequestTimeout"), Transient),
            (400, Some("ThrottlingException"), Transient),
            (400, Some("TooManyRequestsException"), Transient),
            (424, Some("InternalDependencyException"), Transient),
            (408, None, Transient),
            (400, Some("ValidationException"), Permanent),
            (403, Some("AccessDenied"), Permanent),
        ] {
            assert_eq!(fault(Some(status), code), want, "{status} {code:?}");
        }
    }

    #[test]
    fn service_messages_are_named_by_code_and_cut() {
        let f = service_fault(Some(403), Some("AccessDenied"), Some("Access Denied"));
        assert_eq!(f.detail, "AccessDenied: Access Denied");
        let f = service_fault(Some(503), None, None);
        assert_eq!(f.detail, "HTTP 503: no message");
        let long = "x".repeat(1000);
        let f = service_fault(Some(400), Some("ValidationException"), Some(&long));
        assert_eq!(
            f.detail.len(),
            "ValidationException: ".len() + MESSAGE_CHARS
        );
    }
}
