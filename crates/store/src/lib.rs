//! The object-store port and its local adapter: [`LocalStore`] (a directory as the bucket, the
//! embedded default). The S3 adapter is the `store-s3` crate.
//!
//! The port, [`ObjectStore`], offers what the pipeline needs and no more: get with ETag,
//! ranged get, head, conditional put (`If-None-Match: *` to create, `If-Match` to replace),
//! list, delete, and [`ObjectStore::append_large`], which appends bytes to a big object
//! without downloading it (server-side UploadPartCopy of the existing object in ranges of at
//! most 5 GiB, the new bytes as the last part, completed with `If-Match`). Whatever a read
//! returns (body, ETag, size) comes from one version of the object, so an `If-Match` on that
//! ETag can only succeed on the bytes the caller saw.
//!
//! Errors are typed by what the caller must do: [`StoreError::PreconditionFailed`] means
//! "someone else wrote first, re-read and retry" (S3 412 and 409), [`StoreError::Transient`]
//! means "retry later" (throttling, 5xx, timeouts), [`StoreError::Contended`] means a bounded
//! CAS loop ([`cas::retry_cas`]) kept losing, everything else is permanent.
//!
//! For tests and benchmarks, [`CountingStore`] counts calls and body bytes and [`CrashAfter`]
//! fails every call from the N-th on (before it reaches the store, or after, with the reply
//! lost).
//!
//! Architecture invariant: this crate knows nothing of Contact Lens, CSV, Lambda or AWS; it
//! depends on no `aws-*` crate and no async runtime (the CAS loop sleeps with `futures-timer`,
//! the local store's file I/O runs on `blocking`'s threads), so the core crates that take the
//! port stay free of both.

pub mod cas;
mod counting;
mod fault;
mod local;

use std::future::Future;

pub use counting::{CountingStore, StoreStats};
pub use fault::{Call, CrashAfter, Hook, Hooked, Method, Then};
pub use local::LocalStore;

/// What a list or head returns about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Opaque entity tag, passed back verbatim in [`Condition::IfMatch`].
    pub etag: String,
}

/// An object's bytes (or a range of them) with its entity tag.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: String,
    /// Size of the whole object, not of `body` (they differ for ranged gets).
    pub size: u64,
}

/// The precondition of a [`ObjectStore::put`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Unconditional write.
    None,
    /// Create only: fail with [`StoreError::PreconditionFailed`] if the key exists.
    IfNoneMatch,
    /// Replace only this version: fail with [`StoreError::PreconditionFailed`] if the
    /// object's ETag differs, or [`StoreError::NotFound`] if it is gone.
    IfMatch(String),
}

/// What went wrong in a store call, typed by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition did not hold (S3 412 PreconditionFailed, 409 ConditionalRequestConflict).
    #[error("precondition failed for {key}")]
    PreconditionFailed { key: String },
    #[error("no such key: {key}")]
    NotFound { key: String },
    /// Throttling, 5xx, timeouts, dispatch failures: worth retrying later.
    #[error("transient store error: {0}")]
    Transient(String),
    /// A compare-and-swap lost to other writers `attempts` times in a row
    /// ([`cas::retry_cas`]); worth retrying later, when the contention has passed.
    #[error("gave up on {key} after {attempts} contended attempts")]
    Contended { key: String, attempts: u32 },
    /// Anything else: access denied, bad request, a bad local path.
    #[error("store error: {0}")]
    Permanent(String),
}

impl StoreError {
    /// True when a later attempt of the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::PreconditionFailed { .. }
                | StoreError::Transient(_)
                | StoreError::Contended { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The object-store port. Keys are `/`-separated, without a leading `/`.
pub trait ObjectStore: Send + Sync {
    /// The whole object, or `None` if it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>>> + Send;

    /// Bytes `[start, end)` of the object (`end = None`: to the end), with the ETag and size
    /// of the version they were read from, also when the body is empty: callers may append
    /// with `If-Match` on that ETag knowing they saw every byte up to `end` (or the end).
    /// `None` if the object does not exist; an empty body if `start` is at or past its end.
    /// Fails with [`StoreError::PreconditionFailed`] if no such answer could be had from one
    /// version (the object changed while it was read).
    fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> impl Future<Output = Result<Option<Object>>> + Send;

    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectMeta>>> + Send;

    /// Writes the object under `condition`; returns the new ETag.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Condition,
    ) -> impl Future<Output = Result<String>> + Send;

    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectMeta>>> + Send;

    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Appends `tail` to the object that currently has `etag`, without reading it.
    /// Fails with [`StoreError::PreconditionFailed`] if the object changed meanwhile (an empty
    /// `tail` only checks that). On S3 the existing object must be at least 5 MiB: it is
    /// copied server-side into the first parts of a multipart upload (at most 5 GiB each,
    /// every one only from version `etag`), `tail` is the last part, and the upload completes
    /// with `If-Match: etag`. Returns the new ETag.
    fn append_large(
        &self,
        key: &str,
        etag: &str,
        tail: Vec<u8>,
    ) -> impl Future<Output = Result<String>> + Send;
}
