//! The classifier port: a batch of texts in, one [`Label`] per text out.

use std::future::Future;

use store::StoreError;
use store_s3::{Fault, SdkFault};

/// The answer for one text: the winning label, its score and, when the adapter has them,
/// the scores of every label.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub label: String,
    pub score: f32,
    /// Every label with its score, when the classifier returns them.
    pub scores: Option<Vec<(String, f32)>>,
}

/// What went wrong, typed by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// Throttling (429), 5xx, timeouts, connection failures: a later attempt may succeed.
    #[error("transient classifier error: {0}")]
    Transient(String),
    /// Bad request, unknown endpoint, access denied, an unreadable answer: retrying will not help.
    #[error("classifier error: {0}")]
    Permanent(String),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A master CSV, watermark or part could not be read.
    #[error("bad data in {key}: {reason}")]
    Data { key: String, reason: String },
}

impl ClassifyError {
    /// A failed SageMaker request (`what`: the operation and what it was on), transient or
    /// permanent as [`store_s3::sdk_fault`] reads it: the one mapping every adapter uses.
    pub fn from_sdk(what: &str, f: &SdkFault) -> Self {
        match f.fault {
            Fault::Transient => ClassifyError::Transient(format!("{what}: {f}")),
            Fault::Conflict | Fault::Missing | Fault::Permanent => {
                ClassifyError::Permanent(format!("{what}: {f}"))
            }
        }
    }

    /// True when a later attempt of the same work may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClassifyError::Transient(_) => true,
            ClassifyError::Store(e) => e.is_retryable(),
            ClassifyError::Permanent(_) | ClassifyError::Data { .. } => false,
        }
    }
}

/// The classifier port. Adapters: [`crate::EndpointClassifier`] (SageMaker real-time
/// endpoint) and [`crate::ModelClassifier`] (the model in-process); batch transform runs
/// outside a run's lifetime and has its own port, [`crate::TransformJobs`].
pub trait Classifier: Send + Sync {
    /// A short name of the model or endpoint, written to the `model` column.
    fn name(&self) -> &str;

    /// Classifies `texts`; the answer has exactly one [`Label`] per text, in order.
    fn classify(
        &self,
        texts: &[String],
    ) -> impl Future<Output = Result<Vec<Label>, ClassifyError>> + Send;
}
