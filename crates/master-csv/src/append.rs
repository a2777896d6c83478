//! Exactly-once appends of rows to a master CSV object through the [`ObjectStore`] port.
//!
//! # The mechanism
//! The master object is the single source of truth for "is this contact in?". Every append is
//! a compare-and-swap on it, retried with jittered backoff when another writer won
//! ([`store::cas::retry_cas`]):
//!
//! * **Small masters** (under [`LARGE_OBJECT_BYTES`]) are read whole, the batch is filtered
//!   against the identities already present, and the object is rewritten with `If-Match`
//!   (created with `If-None-Match: *`).
//! * **Large masters** are never downloaded. The existing object becomes part 1 of a
//!   multipart upload ([`ObjectStore::append_large`]) and only the new rows travel. To filter
//!   the batch without reading the master, a sidecar *index* (`…/transcripts.ids`) lists the
//!   identities in the first `length` bytes of the master. The index is only a cache: before
//!   filtering, the bytes of the master past `length` are read with one ranged GET and their
//!   identities added, so an index left behind by a crash (master appended, index not yet
//!   written) is rolled forward, never trusted blindly. The index is written after the
//!   master, conditionally; losing that race costs a slightly longer ranged read next time.
//!
//! Crash safety follows: a crash before the master's CAS changes nothing; a crash after it
//! leaves rows that every later append sees (in the body or in the tail past the index), so
//! a redelivered event finds its contact present and appends nothing. A row is in the master
//! exactly when the master's CAS succeeded, and a CAS only succeeds on the version whose
//! identities were checked.

use std::collections::HashSet;

use store::cas::{retry_cas, RetryPolicy};
use store::{Condition, ObjectStore, StoreError};

use crate::encode::{encode_rows, header, identities};
use crate::row::{Identity, Row};

/// Masters at least this large are appended by server-side copy (S3's minimum part size).
pub const LARGE_OBJECT_BYTES: u64 = 5 * 1024 * 1024;

/// What one append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Rows written by this append.
    pub appended: usize,
    /// Rows of the batch already in the master (or repeated within the batch).
    pub duplicates: usize,
    /// CAS attempts made (1 when nobody raced us).
    pub attempts: u32,
    /// Size of the master after the append.
    pub master_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("master CSV {key} cannot be read: {source}")]
    Corrupt { key: String, source: csv::Error },
}

impl AppendError {
    /// True when retrying the same append later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AppendError::Store(e) if e.is_retryable())
    }
}

/// The sidecar index key of a master object.
pub fn index_key(master_key: &str) -> String {
    match master_key.strip_suffix(".csv") {
        Some(stem) => format!("{stem}.ids"),
        None => format!("{master_key}.ids"),
    }
}

/// Appends the rows not yet in the master at `key`, exactly once, creating it with a header
/// if needed.
pub async fn append_rows<S: ObjectStore>(
    store: &S,
    key: &str,
    rows: &[Row],
    policy: &RetryPolicy,
) -> Result<AppendOutcome, AppendError> {
    // Repeats inside the batch are dropped first, keeping the first occurrence.
    let mut seen = HashSet::new();
    let batch: Vec<&Row> = rows.iter().filter(|r| seen.insert(r.identity())).collect();
    let in_batch_dups = rows.len() - batch.len();

    let mut attempts = 0u32;
    let result = retry_cas(policy, key, || {
        attempts += 1;
        let batch = &batch;
        async move {
            match attempt(store, key, batch).await {
                Ok(o) => Ok(Ok(o)),
                Err(AppendError::Store(e)) => Err(e),
                Err(other) => Ok(Err(other)),
            }
        }
    })
    .await;
    let mut outcome = result??;
    outcome.duplicates += in_batch_dups;
    outcome.attempts = attempts;
    Ok(outcome)
}

/// One CAS attempt. A `PreconditionFailed` from here makes the caller re-read and retry.
async fn attempt<S: ObjectStore>(
    store: &S,
    key: &str,
    batch: &[&Row],
) -> Result<AppendOutcome, AppendError> {
    let corrupt = |source| AppendError::Corrupt {
        key: key.to_string(),
        source,
    };
    let Some(meta) = store.head(key).await? else {
        let new: Vec<Row> = batch.iter().map(|r| (*r).clone()).collect();
        let mut body = header();
        body.extend_from_slice(&encode_rows(&new));
        let size = body.len() as u64;
        store.put(key, body, Condition::IfNoneMatch).await?;
        if size >= LARGE_OBJECT_BYTES {
            let ids = new.iter().map(Row::identity).collect();
            write_index(store, key, size, &ids, None).await;
        }
        return Ok(outcome(new.len(), batch.len(), size));
    };

    if meta.size < LARGE_OBJECT_BYTES {
        let Some(obj) = store.get(key).await? else {
            return Err(StoreError::PreconditionFailed { key: key.into() }.into());
        };
        let present = identities(&obj.body, true).map_err(corrupt)?;
        let new: Vec<Row> = fresh(batch, &present);
        if new.is_empty() {
            return Ok(outcome(0, batch.len(), obj.size));
        }
        let mut body = obj.body;
        if !body.is_empty() && !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        body.extend_from_slice(&encode_rows(&new));
        let size = body.len() as u64;
        store.put(key, body, Condition::IfMatch(obj.etag)).await?;
        if size >= LARGE_OBJECT_BYTES {
            let mut ids = present;
            ids.extend(new.iter().map(Row::identity));
            write_index(store, key, size, &ids, None).await;
        }
        return Ok(outcome(new.len(), batch.len(), size));
    }

    // Large master: the index plus the tail past it, never the whole object.
    let (mut present, covered, index_etag) = read_index(store, key).await?;
    let tail = store
        .get_range(key, covered, None)
        .await?
        .ok_or_else(|| StoreError::PreconditionFailed { key: key.into() })?;
    // With no index at all the "tail" is the whole object, header included.
    present.extend(identities(&tail.body, covered == 0).map_err(corrupt)?);
    let new = fresh(batch, &present);
    if new.is_empty() {
        if covered < tail.size {
            write_index(store, key, tail.size, &present, index_etag).await;
        }
        return Ok(outcome(0, batch.len(), tail.size));
    }
    let mut bytes = Vec::new();
    if !tail.body.is_empty() && !tail.body.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(&encode_rows(&new));
    let size = tail.size + bytes.len() as u64;
    store.append_large(key, &tail.etag, bytes).await?;
    present.extend(new.iter().map(Row::identity));
    write_index(store, key, size, &present, index_etag).await;
    Ok(outcome(new.len(), batch.len(), size))
}

fn fresh(batch: &[&Row], present: &HashSet<Identity>) -> Vec<Row> {
    batch
        .iter()
        .filter(|r| !present.contains(&r.identity()))
        .map(|r| (*r).clone())
        .collect()
}

fn outcome(appended: usize, batch: usize, master_bytes: u64) -> AppendOutcome {
    AppendOutcome {
        appended,
        duplicates: batch - appended,
        attempts: 0,
        master_bytes,
    }
}

/// Index format: first line `length=<bytes covered>`, then `<contact_id>,<true|false>` lines.
async fn read_index<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<(HashSet<Identity>, u64, Option<String>), StoreError> {
    let Some(obj) = store.get(&index_key(key)).await? else {
        return Ok((HashSet::new(), 0, None));
    };
    let text = String::from_utf8_lossy(&obj.body);
    let mut lines = text.lines();
    let covered = lines
        .next()
        .and_then(|l| l.strip_prefix("length="))
        .and_then(|n| n.parse::<u64>().ok());
    let Some(covered) = covered else {
        // An unreadable index is ignored: the master is the truth, so read it all once.
        tracing::warn!(
            key,
            "master index unreadable; rebuilding it from the master"
        );
        return Ok((HashSet::new(), 0, Some(obj.etag)));
    };
    let ids = lines
        .filter_map(|l| l.rsplit_once(','))
        .map(|(id, red)| Identity {
            contact_id: id.to_string(),
            redacted: red == "true",
        })
        .collect();
    Ok((ids, covered, Some(obj.etag)))
}

/// Best effort: the index is a cache that the next append reconciles with the master.
async fn write_index<S: ObjectStore>(
    store: &S,
    key: &str,
    covered: u64,
    ids: &HashSet<Identity>,
    etag: Option<String>,
) {
    let mut sorted: Vec<&Identity> = ids.iter().collect();
    sorted.sort();
    let mut body = format!("length={covered}\n").into_bytes();
    for id in sorted {
        body.extend_from_slice(id.contact_id.as_bytes());
        body.extend_from_slice(if id.redacted { b",true\n" } else { b",false\n" });
    }
    let condition = etag.map_or(Condition::IfNoneMatch, Condition::IfMatch);
    if let Err(e) = store.put(&index_key(key), body, condition).await {
        tracing::info!(key, error = %e, "master index not updated; the next append reconciles it");
    }
}
