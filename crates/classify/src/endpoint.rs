//! [`EndpointClassifier`]: the classifier port over a SageMaker real-time endpoint
//! (aws-sdk-sagemakerruntime `InvokeEndpoint`).
//!
//! Texts are packed into requests of at most [`EndpointOptions::max_batch_texts`] texts and
//! [`EndpointOptions::max_request_bytes`] bytes (a single text too large for one request is
//! cut to its head and tail, as the model truncates long calls anyway). At most
//! [`EndpointOptions::max_in_flight`] requests run at once. Throttling (429), 5xx, model-not-ready,
//! timeouts and connection failures are retried with jittered exponential backoff; anything
//! else fails at once as [`ClassifyError::Permanent`].

use std::borrow::Cow;
use std::time::Duration;

use aws_sdk_sagemakerruntime::config::http::HttpResponse;
use aws_sdk_sagemakerruntime::error::SdkError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::Client;
use futures::{StreamExt, TryStreamExt};
use store::cas::RetryPolicy;

use crate::wire::WireFormat;
use crate::{Classifier, ClassifyError, Label};

/// How [`EndpointClassifier`] talks to its endpoint.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// The SageMaker endpoint's name.
    pub endpoint_name: String,
    /// Request and answer encoding.
    pub format: WireFormat,
    /// Texts per request, at most (default 16).
    pub max_batch_texts: usize,
    /// Request body bytes, at most (default 5,000,000: under the 5 MB we allow ourselves).
    pub max_request_bytes: usize,
    /// Requests in flight at once, at most (default 4).
    pub max_in_flight: usize,
    /// Retries of transient failures (default: 6 attempts, 200 ms base, 10 s cap).
    pub retry: RetryPolicy,
}

impl EndpointOptions {
    /// The defaults for `endpoint_name` spoken in `format`.
    pub fn new(endpoint_name: impl Into<String>, format: WireFormat) -> Self {
        Self {
            endpoint_name: endpoint_name.into(),
            format,
            max_batch_texts: 16,
            max_request_bytes: 5_000_000,
            max_in_flight: 4,
            retry: RetryPolicy {
                max_attempts: 6,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(10),
            },
        }
    }
}

/// The classifier port over `InvokeEndpoint`. Build the client once (in `main`) and share it.
#[derive(Debug, Clone)]
pub struct EndpointClassifier {
    client: Client,
    opts: EndpointOptions,
}

impl EndpointClassifier {
    /// Wraps a SageMaker runtime client. Its own retries are best disabled
    /// (`RetryConfig::disabled()`): this adapter retries, and the two would multiply.
    pub fn new(client: Client, opts: EndpointOptions) -> Self {
        Self { client, opts }
    }

    /// The options in use.
    pub fn options(&self) -> &EndpointOptions {
        &self.opts
    }

    async fn invoke_with_retry(&self, texts: &[Cow<'_, str>]) -> Result<Vec<Label>, ClassifyError> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        let body = self.opts.format.encode_request(&refs);
        let max = self.opts.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.invoke_once(body.clone(), refs.len()).await {
                Err(ClassifyError::Transient(reason)) if attempt < max => {
                    let delay = self.opts.retry.delay(attempt);
                    tracing::warn!(
                        endpoint = %self.opts.endpoint_name,
                        attempt,
                        texts = refs.len(),
                        delay_ms = delay.as_millis() as u64,
                        reason = %reason,
                        "endpoint call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn invoke_once(&self, body: Vec<u8>, n: usize) -> Result<Vec<Label>, ClassifyError> {
        let bytes = body.len();
        let started = std::time::Instant::now();
        let out = self
            .client
            .invoke_endpoint()
            .endpoint_name(&self.opts.endpoint_name)
            .content_type(self.opts.format.content_type())
            .accept(self.opts.format.accept())
            .body(Blob::new(body))
            .send()
            .await
            .map_err(|e| map_sdk_error(&self.opts.endpoint_name, e))?;
        tracing::debug!(
            endpoint = %self.opts.endpoint_name,
            texts = n,
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "endpoint answered"
        );
        let answer = out.body().map(|b| b.as_ref()).unwrap_or_default();
        self.opts
            .format
            .decode_response(answer, n)
            .map_err(|e| ClassifyError::Permanent(format!("{}: {e}", self.opts.endpoint_name)))
    }
}

impl Classifier for EndpointClassifier {
    fn name(&self) -> &str {
        &self.opts.endpoint_name
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        let requests = pack(
            self.opts.format,
            texts,
            self.opts.max_batch_texts,
            self.opts.max_request_bytes,
        );
        // Futures are lazy: collecting them first starts nothing, `buffered` bounds how many run.
        let calls: Vec<_> = requests
            .into_iter()
            .map(|r| async move { self.invoke_with_retry(&r).await })
            .collect();
        let answers: Vec<Vec<Label>> = futures::stream::iter(calls)
            .buffered(self.opts.max_in_flight.max(1))
            .try_collect()
            .await?;
        Ok(answers.into_iter().flatten().collect())
    }
}

/// Splits `texts` into requests of at most `max_texts` texts whose encoded body fits in
/// `max_bytes`, in order. A text that cannot fit alone is cut to its head and tail.
pub(crate) fn pack(
    format: WireFormat,
    texts: &[String],
    max_texts: usize,
    max_bytes: usize,
) -> Vec<Vec<Cow<'_, str>>> {
    let max_texts = max_texts.max(1);
    let budget = max_bytes.saturating_sub(format.overhead()).max(64);
    let mut out: Vec<Vec<Cow<'_, str>>> = Vec::new();
    let mut current: Vec<Cow<'_, str>> = Vec::new();
    let mut used = 0;
    for text in texts {
        let mut t = Cow::Borrowed(text.as_str());
        let mut len = format.encoded_len(&t);
        if len > budget {
            t = Cow::Owned(head_and_tail(format, text, budget));
            len = format.encoded_len(&t);
            tracing::warn!(
                bytes = text.len(),
                kept = t.len(),
                "text too large for one request; cut to head and tail"
            );
        }
        if !current.is_empty() && (current.len() >= max_texts || used + len > budget) {
            out.push(std::mem::take(&mut current));
            used = 0;
        }
        used += len;
        current.push(t);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The longest head-and-tail cut of `text` (joined by a space) whose encoding fits `budget`.
pub(crate) fn head_and_tail(format: WireFormat, text: &str, budget: usize) -> String {
    let mut keep = text.len().min(budget);
    loop {
        let head_end = floor_boundary(text, keep / 2);
        let tail_start = ceil_boundary(text, text.len() - (keep - keep / 2));
        let cut = format!("{} {}", &text[..head_end], &text[tail_start..]);
        let len = format.encoded_len(&cut);
        if len <= budget || keep == 0 {
            return cut;
        }
        keep = (keep as u128 * budget as u128 / len as u128) as usize * 9 / 10;
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Converts an InvokeEndpoint failure into a transient or permanent [`ClassifyError`]: as
/// [`store_s3::sdk_fault`] reads it, except a `ModelError`, which is the model container's own
/// answer: transient only when the container said 429, 502, 503 or 504, and described without
/// its message, which quotes the container's answer and may echo the input.
fn map_sdk_error(
    endpoint: &str,
    err: SdkError<InvokeEndpointError, HttpResponse>,
) -> ClassifyError {
    if let SdkError::ServiceError(se) = &err {
        if let InvokeEndpointError::ModelError(m) = se.err() {
            let what = format!(
                "{endpoint}: HTTP {} ModelError: the model answered HTTP {} (log stream {})",
                se.raw().status().as_u16(),
                m.original_status_code().unwrap_or_default(),
                m.log_stream_arn().unwrap_or("unknown")
            );
            return if matches!(m.original_status_code(), Some(429 | 502 | 503 | 504)) {
                ClassifyError::Transient(what)
            } else {
                ClassifyError::Permanent(what)
            };
        }
    }
    ClassifyError::from_sdk(endpoint, &store_s3::sdk_fault(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:0len$}")).collect()
    }

    #[test]
    fn it_packs_by_count() {
        let t = texts(10, 4);
        let reqs = pack(WireFormat::Json, &t, 3, 5_000_000);
        assert_eq!(
            reqs.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let flat: Vec<&str> = reqs.iter().flatten().map(|c| c.as_ref()).collect();
        assert_eq!(flat, t.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn it_packs_by_bytes_and_every_body_fits() {
        for format in [WireFormat::Json, WireFormat::JsonLines] {
            let t = texts(50, 1000);
            let reqs = pack(format, &t, 100, 4096);
            assert!(reqs.len() >= 13);
            for r in &reqs {
                let refs: Vec<&str> = r.iter().map(|c| c.as_ref()).collect();
                assert!(format.encode_request(&refs).len() <= 4096);
            }
            assert_eq!(reqs.iter().map(Vec::len).sum::<usize>(), 50);
        }
    }

    #[test]
    fn a_huge_text_is_cut_to_head_and_tail() {
        let big = format!("HEAD{}TAIL", "é\"".repeat(10_000));
        for format in [WireFormat::Json, WireFormat::JsonLines] {
            let t = vec!["small".to_string(), big.clone()];
            let reqs = pack(format, &t, 16, 2000);
            assert_eq!(reqs.iter().map(Vec::len).sum::<usize>(), 2);
            for r in &reqs {
                let refs: Vec<&str> = r.iter().map(|c| c.as_ref()).collect();
                assert!(format.encode_request(&refs).len() <= 2000);
            }
            let cut = reqs.last().unwrap().last().unwrap();
            assert!(cut.starts_with("HEAD") && cut.ends_with("TAIL"));
        }
    }
}
