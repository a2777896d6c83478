//! The S3 adapter of the object-store port: [`S3Store`] implements [`store::ObjectStore`] over
//! one bucket with aws-sdk-s3 (conditional puts with `If-Match` / `If-None-Match`, ranged gets,
//! and `append_large` as server-side UploadPartCopy completed with `If-Match`), and
//! [`s3_client`] builds the SDK client.
//!
//! Every SDK error goes through [`sdk_fault`], the one place that decides what a status code
//! or AWS error code means to the caller; the SageMaker adapters in `classify` use it too.
//!
//! Architecture invariant: this is the only crate besides the binaries and their test
//! harnesses that depends on `aws-sdk-s3`; the port, the local store and the CAS loop live in
//! `store`, which knows nothing of AWS.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use futures::future::try_join_all;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use store::{Condition, Object, ObjectMeta, ObjectStore, Result, StoreError};

pub mod sdk_fault;
pub use sdk_fault::{sdk_fault, Fault, SdkFault};

/// Characters escaped in the `x-amz-copy-source` header: all but unreserved ones and `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The largest source range one UploadPartCopy may copy (S3's limit, 5 GiB).
pub const MAX_COPY_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// An [`ObjectStore`] over one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    page_size: Option<i32>,
    copy_part_limit: u64,
}

impl S3Store {
    /// Uses `bucket` through `client` (build one with [`s3_client`]).
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            page_size: None,
            copy_part_limit: MAX_COPY_PART_BYTES,
        }
    }

    /// Copies at most `bytes` of the existing object per UploadPartCopy in
    /// [`ObjectStore::append_large`] (default and S3's maximum: [`MAX_COPY_PART_BYTES`]). The
    /// object is split into equal ranges, so each is at least half the limit; tests lower it.
    ///
    /// # Panics
    /// If `bytes` is 0.
    pub fn with_copy_part_limit(mut self, bytes: u64) -> Self {
        assert!(bytes > 0, "a copy part holds at least one byte");
        self.copy_part_limit = bytes;
        self
    }

    /// Asks ListObjectsV2 for at most `keys` keys per page (S3's default and maximum is 1000).
    pub fn with_page_size(mut self, keys: i32) -> Self {
        self.page_size = Some(keys);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn head_meta(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: o.content_length().unwrap_or(0).max(0) as u64,
                etag: required_etag(key, o.e_tag())?,
            })),
            Err(e) => none_if_not_found(map_sdk_error(key, e)),
        }
    }

    /// The multipart steps of [`ObjectStore::append_large`], without the cleanup: the
    /// `size` bytes of version `etag` copied server-side in ranges, then `tail` as the last
    /// part, completed only if the object is still that version.
    async fn append_parts(
        &self,
        key: &str,
        upload_id: &str,
        etag: &str,
        size: u64,
        tail: Vec<u8>,
    ) -> Result<String> {
        let copy_source = format!("{}/{}", self.bucket, utf8_percent_encode(key, COPY_SOURCE));
        let copies = copy_ranges(size, self.copy_part_limit)
            .into_iter()
            .zip(1..)
            .map(|((first, last), part)| {
                let request = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(part)
                    .copy_source(&copy_source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    // Every range from the version the caller read, or a 412.
                    .copy_source_if_match(etag);
                async move {
                    let copied = request.send().await.map_err(|e| map_sdk_error(key, e))?;
                    let part_etag =
                        required_etag(key, copied.copy_part_result().and_then(|r| r.e_tag()))?;
                    Ok::<_, StoreError>(completed(part, part_etag))
                }
            });
        let mut parts = try_join_all(copies).await?;

        let tail_part = parts.len() as i32 + 1;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(tail_part)
            .body(ByteStream::from(tail))
            .send()
            .await
            .map_err(|e| map_sdk_error(key, e))?;
        parts.push(completed(tail_part, required_etag(key, uploaded.e_tag())?));

        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .if_match(etag)
            .send()
            .await
            .map_err(|e| map_sdk_error(key, e))?;
        required_etag(key, done.e_tag())
    }
}

fn completed(part: i32, etag: String) -> CompletedPart {
    CompletedPart::builder()
        .part_number(part)
        .e_tag(etag)
        .build()
}

/// Splits `size` bytes into the fewest ranges of at most `limit` bytes, as equal as can be
/// (so that every range but a last one is also at least half the limit, well above S3's
/// 5 MiB minimum part). Inclusive `(first, last)` byte positions, in order.
fn copy_ranges(size: u64, limit: u64) -> Vec<(u64, u64)> {
    let n = size.div_ceil(limit);
    let mut ranges = Vec::with_capacity(n as usize);
    let mut first = 0;
    for i in 0..n {
        let len = size / n + u64::from(i < size % n);
        ranges.push((first, first + len - 1));
        first += len;
    }
    ranges
}

/// Builds an S3 client from the aws-config defaults (environment, profile, IMDS, ...).
/// With `endpoint_url` (moto, MinIO, ...) requests go there, path-style.
pub async fn s3_client(endpoint_url: Option<&str>) -> Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut conf = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(url) = endpoint_url {
        conf = conf.endpoint_url(url).force_path_style(true);
    }
    Client::from_conf(conf.build())
}

/// Converts any SDK error of any operation into a [`StoreError`] ([`sdk_fault`] decides).
pub(crate) fn map_sdk_error<E>(key: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    store_error(key, sdk_fault(&err))
}

/// What a [`SdkFault`] on `key` is to the store's callers.
fn store_error(key: &str, f: SdkFault) -> StoreError {
    match f.fault {
        Fault::Conflict => StoreError::PreconditionFailed { key: key.into() },
        Fault::Missing => StoreError::NotFound { key: key.into() },
        Fault::Transient => StoreError::Transient(format!("{key}: {f}")),
        Fault::Permanent => StoreError::Permanent(format!("{key}: {f}")),
    }
}

/// What an S3 status code and error code mean to the caller (see [`sdk_fault::fault`]).
#[cfg(test)]
fn classify(
    key: &str,
    status: Option<u16>,
    code: Option<&str>,
    message: Option<&str>,
) -> StoreError {
    store_error(key, sdk_fault::service_fault(status, code, message))
}

fn none_if_not_found<T>(err: StoreError) -> Result<Option<T>> {
    match err {
        StoreError::NotFound { .. } => Ok(None),
        e => Err(e),
    }
}

fn required_etag(key: &str, etag: Option<&str>) -> Result<String> {
    etag.map(str::to_string)
        .ok_or_else(|| StoreError::Permanent(format!("{key}: response without an ETag")))
}

/// The first byte and the total size from a `Content-Range: bytes a-b/total` header.
fn parse_content_range(range: &str) -> Option<(u64, u64)> {
    let (span, total) = range.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, _last) = span.split_once('-')?;
    Some((first.parse().ok()?, total.parse().ok()?))
}

async fn collect(key: &str, body: ByteStream) -> Result<Vec<u8>> {
    body.collect()
        .await
        .map(|b| b.into_bytes().to_vec())
        .map_err(|e| StoreError::Transient(format!("{key}: reading the body failed: {e}")))
}

impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => return none_if_not_found(map_sdk_error(key, e)),
        };
        let etag = required_etag(key, out.e_tag())?;
        let body = collect(key, out.body).await?;
        Ok(Some(Object {
            size: body.len() as u64,
            etag,
            body,
        }))
    }

    async fn get_range(&self, key: &str, start: u64, end: Option<u64>) -> Result<Option<Object>> {
        if matches!(end, Some(e) if e <= start) {
            // An empty range cannot be expressed as an HTTP Range. Its (empty) bytes are
            // those of every version, so the HEAD's ETag and size still describe their version.
            return Ok(self.head_meta(key).await?.map(|m| Object {
                body: Vec::new(),
                etag: m.etag,
                size: m.size,
            }));
        }
        // One byte before `start` is asked for too, so that a range starting at the end of the
        // object (an append's tail, normally empty) still gets a 206 carrying the ETag and size
        // of the version read. A 416 is then left only for `start` past the end.
        let from = start.saturating_sub(1);
        let range = match end {
            Some(e) => format!("bytes={from}-{}", e - 1),
            None => format!("bytes={from}-"),
        };
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 416 => {
                // InvalidRange: the object read ended before `start`. A HEAD describes an
                // empty body only if its version ends there too; otherwise it is a later
                // version that the caller has not read.
                return match self.head_meta(key).await? {
                    None => Ok(None),
                    Some(m) if m.size <= start => Ok(Some(Object {
                        body: Vec::new(),
                        etag: m.etag,
                        size: m.size,
                    })),
                    Some(_) => Err(StoreError::PreconditionFailed { key: key.into() }),
                };
            }
            Err(e) => return none_if_not_found(map_sdk_error(key, e)),
        };
        let etag = required_etag(key, out.e_tag())?;
        let content_range = out.content_range().map(str::to_string);
        let body = collect(key, out.body).await?;
        let (first, size) = match content_range {
            // Without Content-Range the server sent the whole object.
            None => (0, body.len() as u64),
            Some(r) => parse_content_range(&r)
                .filter(|(first, _)| *first <= start)
                .ok_or_else(|| {
                    StoreError::Permanent(format!("{key}: unexpected Content-Range {r:?}"))
                })?,
        };
        let skip = usize::try_from(start - first).unwrap_or(usize::MAX);
        let len = end.map_or(usize::MAX, |e| {
            usize::try_from(e - start).unwrap_or(usize::MAX)
        });
        let body = body.get(skip..).unwrap_or_default();
        Ok(Some(Object {
            body: body[..len.min(body.len())].to_vec(),
            etag,
            size,
        }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.head_meta(key).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> Result<String> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        req = match condition {
            Condition::None => req,
            Condition::IfNoneMatch => req.if_none_match("*"),
            Condition::IfMatch(etag) => req.if_match(etag),
        };
        let out = req.send().await.map_err(|e| map_sdk_error(key, e))?;
        required_etag(key, out.e_tag())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_max_keys(self.page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| map_sdk_error(prefix, e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().unwrap_or_default().to_string(),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let out = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) => none_if_not_found::<()>(map_sdk_error(key, e)).map(|_| ()),
        }
    }

    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> Result<String> {
        // The copy is split by the size of the version the caller read. A HEAD gives ETag and
        // size in one response, so the size is that version's if the ETag is; every range is
        // then copied only from that version (`x-amz-copy-source-if-match`).
        let size = match self.head_meta(key).await? {
            None => return Err(StoreError::NotFound { key: key.into() }),
            Some(m) if m.etag != etag => {
                return Err(StoreError::PreconditionFailed { key: key.into() })
            }
            Some(m) => m.size,
        };
        if tail.is_empty() {
            return Ok(etag.to_string());
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| map_sdk_error(key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Permanent(format!("{key}: multipart upload without an id")))?
            .to_string();
        let tail_len = tail.len();
        let result = self.append_parts(key, &upload_id, etag, size, tail).await;
        match &result {
            Ok(_) => tracing::debug!(key, bytes = tail_len, "appended with multipart copy"),
            Err(err) => {
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    // The bucket's lifecycle rule for incomplete uploads cleans up after us.
                    tracing::warn!(key, upload_id, error = %map_sdk_error(key, e), "abort failed");
                }
                tracing::debug!(key, error = %err, "append_large failed; upload aborted");
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_precondition_failures() {
        for (status, code) in [
            (412, Some("PreconditionFailed")),
            (409, Some("ConditionalRequestConflict")),
            (409, Some("OperationAborted")),
            (412, None),
            (409, None),
        ] {
            assert!(
                matches!(
                    classify("k", Some(status), code, None),
                    StoreError::PreconditionFailed { .. }
                ),
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn missing_keys_are_not_found_but_missing_buckets_are_permanent() {
        assert!(matches!(
            classify("k", Some(404), Some("NoSuchKey"), None),
            StoreError::NotFound { .. }
        ));
        assert!(matches!(
            classify("k", Some(404), None, None),
            StoreError::NotFound { .. }
        ));
        assert!(matches!(
            classify("k", Some(404), Some("NoSuchBucket"), Some("gone")),
            StoreError::Permanent(m) if m == "k: NoSuchBucket: gone"
        ));
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for (status, code) in [
            (503, Some("SlowDown")),
            (503, None),
            (500, Some("InternalError")),
            (429, None),
            (400, Some("RequestTimeout")),
            (408, None),
        ] {
            assert!(
                matches!(
                    classify("k", Some(status), code, None),
                    StoreError::Transient(_)
                ),
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn everything_else_is_permanent_with_code_and_message() {
        let e = classify("k", Some(403), Some("AccessDenied"), Some("Access Denied"));
        assert!(matches!(e, StoreError::Permanent(ref m) if m == "k: AccessDenied: Access Denied"));
        let e = classify("k", Some(409), Some("BucketNotEmpty"), None);
        assert!(matches!(e, StoreError::Permanent(_)));
    }

    #[test]
    fn content_range_gives_the_first_byte_and_the_total_size() {
        assert_eq!(parse_content_range("bytes 3-9/100"), Some((3, 100)));
        assert_eq!(parse_content_range("bytes 0-9/*"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    #[test]
    fn copy_ranges_cover_the_object_in_equal_parts_under_the_limit() {
        assert_eq!(copy_ranges(10, 10), [(0, 9)]);
        assert_eq!(copy_ranges(10, 100), [(0, 9)]);
        assert_eq!(copy_ranges(11, 10), [(0, 5), (6, 10)]);
        assert_eq!(copy_ranges(30, 10), [(0, 9), (10, 19), (20, 29)]);
        assert!(copy_ranges(0, 10).is_empty());
        for (size, limit) in [
            (12 * GIB + 7, 5 * GIB),
            (5 * GIB + 1, 5 * GIB),
            (1_000_003, 999),
        ] {
            let ranges = copy_ranges(size, limit);
            assert_eq!(ranges.len() as u64, size.div_ceil(limit));
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().unwrap().1, size - 1);
            for w in ranges.windows(2) {
                assert_eq!(w[1].0, w[0].1 + 1, "contiguous");
            }
            for (first, last) in ranges {
                let len = last - first + 1;
                assert!(
                    len <= limit && len >= limit / 2,
                    "{len} of {size} at limit {limit}"
                );
            }
        }
    }

    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn copy_source_keeps_slashes_and_escapes_the_rest() {
        let k = "calltype/transcripts/date=2024-01-02/a b.csv";
        assert_eq!(
            utf8_percent_encode(k, COPY_SOURCE).to_string(),
            "calltype/transcripts/date%3D2024-01-02/a%20b.csv"
        );
    }
}
