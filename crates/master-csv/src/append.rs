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
//!   the batch without reading the master, each contact in it has a tiny *marker* object under
//!   the partition's state prefix ([`state_prefix`]), and a *checkpoint* records the length of
//!   the master whose rows all have markers. An append reads the checkpoint, reads the master's
//!   bytes past it with one ranged GET (normally none), asks for the batch's markers (HEAD),
//!   appends the rows that are in neither, then writes markers for the rows it appended or found
//!   past the checkpoint, and only then moves the checkpoint. Bytes moved per append are the
//!   batch plus the unmarked tail: O(batch), not O(file). The first large append of a partition
//!   reads the master once and writes a marker per existing row.
//!
//! # One row per contact
//! A master holds at most one row per contact, whatever the copy (raw or redacted) and however
//! many analyses Contact Lens writes for it: the first analysis to be appended is the contact's
//! row, and the master is never rewritten. A later analysis of the same contact (a later
//! timestamp, or the other copy after `CALLTYPE_COPY` changed) is not appended; it comes back
//! in [`AppendOutcome::skipped`] with the file that was kept, so the caller can log and count
//! it. Within a batch the first occurrence wins. Contact Lens files every analysis of a contact
//! under the same date folder (the agent-connect date), so they all meet in one master.
//!
//! Crash safety follows: a crash before the master's CAS changes nothing; a crash after it
//! leaves rows that are past the checkpoint, so every later append reads them and finds their
//! contacts present (and writes their markers); markers exist only for rows already in the
//! master, and the checkpoint only covers rows whose markers exist. A redelivered event thus
//! finds its contact present and appends nothing, and a CAS only succeeds on the version whose
//! tail was checked: the port gives the tail and the ETag of one version
//! ([`ObjectStore::get_range`]), also when the tail is empty, and the append carries that ETag.
//!
//! [`check_invariants`] checks these invariants (no contact twice, every row before the
//! checkpoint marked, every marker naming a row) on a quiet master; the tests run it after
//! every concurrent and crashed scenario.

use std::collections::{HashMap, HashSet};

use futures::future::try_join_all;
use store::cas::{retry_cas, RetryPolicy};
use store::{Condition, ObjectStore, StoreError};

use crate::encode::{encode_rows, header, present_contacts, Present};
use crate::row::{Identity, Row, CONTACT_ID_COL, REDACTED_COL};

/// Marker requests in flight at once.
const MARKER_CONCURRENCY: usize = 16;

/// Masters at least this large are appended by server-side copy (S3's minimum part size).
pub const LARGE_OBJECT_BYTES: u64 = 5 * 1024 * 1024;

/// What one append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Rows written by this append.
    pub appended: usize,
    /// Rows of the batch whose file is already the contact's row (a redelivery), or whose
    /// contact is marked present by an older marker that does not name its file.
    pub duplicates: usize,
    /// Rows of the batch from another analysis of a contact the master already holds.
    pub superseded: usize,
    /// Every row of the batch not appended, with what was kept instead.
    pub skipped: Vec<Skipped>,
    /// CAS attempts made (1 when nobody raced us).
    pub attempts: u32,
    /// Size of the master after the append.
    pub master_bytes: u64,
}

/// A row of the batch that was not appended because its contact already has a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The analysis file of the row not appended.
    pub source_key: String,
    /// The analysis file of the contact's row in the master; `None` when only a marker
    /// written before markers named their file says the contact is present.
    pub kept: Option<String>,
}

impl Skipped {
    /// True when another analysis than this one is the contact's row.
    pub fn is_superseded(&self) -> bool {
        self.kept.as_ref().is_some_and(|k| *k != self.source_key)
    }
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

/// Appends the rows not yet in the master at `key`, exactly once, creating it with a header
/// if needed.
pub async fn append_rows<S: ObjectStore>(
    store: &S,
    key: &str,
    rows: &[Row],
    policy: &RetryPolicy,
) -> Result<AppendOutcome, AppendError> {
    // Repeats of a contact inside the batch are dropped first, keeping the first occurrence.
    let mut first: HashMap<&str, &str> = HashMap::new();
    let mut in_batch = Vec::new();
    let mut batch: Vec<&Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match first.get(r.contact_id.as_str()) {
            Some(kept) => in_batch.push(Skipped {
                source_key: r.source_key.clone(),
                kept: Some(kept.to_string()),
            }),
            None => {
                first.insert(&r.contact_id, &r.source_key);
                batch.push(r);
            }
        }
    }

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
    // A repeat's contact row is the batch's first occurrence, unless that was skipped too.
    let kept_instead: HashMap<String, Option<String>> = outcome
        .skipped
        .iter()
        .map(|s| (s.source_key.clone(), s.kept.clone()))
        .collect();
    for mut s in in_batch {
        if let Some(kept) = s.kept.as_ref().and_then(|k| kept_instead.get(k)) {
            s.kept = kept.clone();
        }
        outcome.skipped.push(s);
    }
    outcome.superseded = outcome.skipped.iter().filter(|s| s.is_superseded()).count();
    outcome.duplicates = outcome.skipped.len() - outcome.superseded;
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
        return Ok(outcome(new.len(), Vec::new(), size));
    };

    if meta.size < LARGE_OBJECT_BYTES {
        let Some(obj) = store.get(key).await? else {
            return Err(StoreError::PreconditionFailed { key: key.into() }.into());
        };
        let present = present_contacts(&obj.body, true).map_err(corrupt)?;
        let (new, skipped) = split(batch, |r| {
            present
                .get(&r.contact_id)
                .map(|p| Some(p.source_key.clone()))
        });
        if new.is_empty() {
            return Ok(outcome(0, skipped, obj.size));
        }
        let mut body = obj.body;
        if !body.is_empty() && !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        body.extend_from_slice(&encode_rows(&new));
        let size = body.len() as u64;
        store.put(key, body, Condition::IfMatch(obj.etag)).await?;
        return Ok(outcome(new.len(), skipped, size));
    }

    // Large master: the checkpoint, the unmarked tail and the batch's markers; never the whole.
    let state = state_prefix(key);
    let (covered, checkpoint_etag) = read_checkpoint(store, &state).await?;
    let tail = store
        .get_range(key, covered, None)
        .await?
        .ok_or_else(|| StoreError::PreconditionFailed { key: key.into() })?;
    // With no checkpoint the "tail" is the whole object, header included (once per partition).
    let in_tail = present_contacts(&tail.body, covered == 0).map_err(corrupt)?;
    let candidates: Vec<&Row> = batch
        .iter()
        .copied()
        .filter(|r| !in_tail.contains_key(&r.contact_id))
        .collect();
    // A contact is marked under the copy of its row: look for either copy's marker.
    let mut marked: HashMap<&str, Option<String>> = HashMap::new();
    for chunk in candidates.chunks(MARKER_CONCURRENCY / 2) {
        let mut gets = Vec::with_capacity(chunk.len());
        for row in chunk {
            let state = &state;
            gets.push(async move {
                let id = |redacted| Identity {
                    contact_id: row.contact_id.clone(),
                    redacted,
                };
                let (raw, red) = (marker_key(state, &id(false)), marker_key(state, &id(true)));
                let (raw, red) = futures::try_join!(store.get(&raw), store.get(&red))?;
                // A marker's body names the file of the contact's row (empty in old markers).
                let kept = raw.or(red).map(|m| {
                    Some(String::from_utf8_lossy(&m.body).into_owned()).filter(|k| !k.is_empty())
                });
                Ok::<_, StoreError>((row.contact_id.as_str(), kept))
            });
        }
        marked.extend(
            try_join_all(gets)
                .await?
                .into_iter()
                .filter_map(|(id, k)| Some((id, k?))),
        );
    }
    let (new, mut skipped) = split(&candidates, |r| marked.get(r.contact_id.as_str()).cloned());
    skipped.extend(
        split(batch, |r| {
            in_tail
                .get(&r.contact_id)
                .map(|p| Some(p.source_key.clone()))
        })
        .1,
    );
    let mut size = tail.size;
    if !new.is_empty() {
        let mut bytes = Vec::new();
        if !tail.body.is_empty() && !tail.body.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&encode_rows(&new));
        size += bytes.len() as u64;
        store.append_large(key, &tail.etag, bytes).await?;
    }
    if size > covered {
        let ids = in_tail.into_iter().chain(new.iter().map(|r| {
            let p = Present {
                source_key: r.source_key.clone(),
                redacted: r.redacted,
            };
            (r.contact_id.clone(), p)
        }));
        mark(store, key, &state, ids, size, checkpoint_etag).await;
    }
    Ok(outcome(new.len(), skipped, size))
}

/// Splits `batch` into the rows to append and those skipped; `kept` answers, for a row whose
/// contact is present, the file of its row (`Some(None)` when that is unknown).
fn split(
    batch: &[&Row],
    kept: impl Fn(&Row) -> Option<Option<String>>,
) -> (Vec<Row>, Vec<Skipped>) {
    let mut new = Vec::new();
    let mut skipped = Vec::new();
    for r in batch {
        match kept(r) {
            None => new.push((*r).clone()),
            Some(kept) => skipped.push(Skipped {
                source_key: r.source_key.clone(),
                kept,
            }),
        }
    }
    (new, skipped)
}

fn outcome(appended: usize, skipped: Vec<Skipped>, master_bytes: u64) -> AppendOutcome {
    AppendOutcome {
        appended,
        skipped,
        master_bytes,
        ..AppendOutcome::default()
    }
}

/// The state prefix of a master: `…/transcripts/date=D/transcripts.csv` →
/// `…/state/ingest/date=D/`, outside the prefix Athena reads. Other keys get `<key>.state/`.
pub fn state_prefix(master_key: &str) -> String {
    let (dir, _file) = master_key.rsplit_once('/').unwrap_or(("", master_key));
    let swap = |base: &str, partition: &str| format!("{base}state/ingest/{partition}/");
    if let Some((base, partition)) = dir.rsplit_once("/transcripts/") {
        return swap(&format!("{base}/"), partition);
    }
    if let Some(partition) = dir.strip_prefix("transcripts/") {
        return swap("", partition);
    }
    format!("{master_key}.state/")
}

fn checkpoint_key(state: &str) -> String {
    format!("{state}checkpoint")
}

/// One object per contact, named after the copy of its row; the name escapes anything but
/// `[A-Za-z0-9._-]`. Its body is the row's source key (empty in markers written before).
fn marker_key(state: &str, id: &Identity) -> String {
    let mut name = String::with_capacity(id.contact_id.len() + 16);
    for b in id.contact_id.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    let copy = if id.redacted { "redacted" } else { "raw" };
    format!("{state}ids/{name}.{copy}")
}

/// The checkpoint: `length=<bytes of the master whose rows all have markers>`.
async fn read_checkpoint<S: ObjectStore>(
    store: &S,
    state: &str,
) -> Result<(u64, Option<String>), StoreError> {
    let Some(obj) = store.get(&checkpoint_key(state)).await? else {
        return Ok((0, None));
    };
    let covered = std::str::from_utf8(&obj.body)
        .ok()
        .and_then(|t| t.trim().strip_prefix("length="))
        .and_then(|n| n.parse::<u64>().ok());
    match covered {
        Some(n) => Ok((n, Some(obj.etag))),
        None => {
            // The master is the truth: an unreadable checkpoint only costs one full read.
            tracing::warn!(state, "checkpoint unreadable; re-reading the master once");
            Ok((0, Some(obj.etag)))
        }
    }
}

/// Best effort: writes the markers, then moves the checkpoint to `covered`. A failure leaves
/// the checkpoint behind, which the next append makes up by reading the tail.
async fn mark<S: ObjectStore>(
    store: &S,
    master: &str,
    state: &str,
    ids: impl Iterator<Item = (String, Present)>,
    covered: u64,
    checkpoint_etag: Option<String>,
) {
    let ids: Vec<(String, Present)> = ids.collect();
    for chunk in ids.chunks(MARKER_CONCURRENCY) {
        let mut puts = Vec::with_capacity(chunk.len());
        for (contact_id, p) in chunk {
            let id = Identity {
                contact_id: contact_id.clone(),
                redacted: p.redacted,
            };
            let marker = marker_key(state, &id);
            let body = p.source_key.clone().into_bytes();
            puts.push(async move { store.put(&marker, body, Condition::None).await });
        }
        if let Err(e) = try_join_all(puts).await {
            tracing::info!(master, error = %e, "markers not all written; the next append reconciles them");
            return;
        }
    }
    let body = format!("length={covered}\n").into_bytes();
    let condition = checkpoint_etag.map_or(Condition::IfNoneMatch, Condition::IfMatch);
    if let Err(e) = store.put(&checkpoint_key(state), body, condition).await {
        tracing::info!(master, error = %e, "checkpoint not moved; the next append reconciles it");
    }
}

/// A broken invariant of a master and its ingest state, as [`check_invariants`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The contact is in the master more than once (one row per contact, whatever the copy).
    Doubled(Identity),
    /// A row that ends at or before the checkpoint has no marker.
    Unmarked {
        identity: Identity,
        row_end: u64,
        checkpoint: u64,
    },
    /// A marker names no row of the master.
    Orphan { marker: String },
    /// The checkpoint is past the end of the master or inside a row.
    CheckpointOff { checkpoint: u64, master_bytes: u64 },
}

/// Checks what exactly-once rests on, for the master at `key` and its state: no contact twice
/// in the master, every row before the checkpoint has a marker, every marker names a row of
/// the master, and the checkpoint ends a row. Returns the violations found (none when sound).
///
/// It reads the master whole and lists the markers, so run it when no append is in flight:
/// in tests after every scenario, or by an operator who suspects the state.
pub async fn check_invariants<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Vec<Violation>, AppendError> {
    let state = state_prefix(key);
    let body = store.get(key).await?.map(|o| o.body).unwrap_or_default();
    let (checkpoint, _) = read_checkpoint(store, &state).await?;
    let rows = row_ends(&body).map_err(|source| AppendError::Corrupt {
        key: key.to_string(),
        source,
    })?;

    let mut violations = Vec::new();
    let mut seen = HashSet::new();
    let mut markers_wanted = HashSet::new();
    for (identity, _) in &rows {
        if !seen.insert(identity.contact_id.clone()) {
            violations.push(Violation::Doubled(identity.clone()));
        }
        markers_wanted.insert(marker_key(&state, identity));
    }
    let markers: HashSet<String> = store
        .list(&format!("{state}ids/"))
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    for (identity, row_end) in &rows {
        if *row_end <= checkpoint && !markers.contains(&marker_key(&state, identity)) {
            violations.push(Violation::Unmarked {
                identity: identity.clone(),
                row_end: *row_end,
                checkpoint,
            });
        }
    }
    let mut orphans: Vec<&String> = markers.difference(&markers_wanted).collect();
    orphans.sort();
    violations.extend(
        orphans
            .into_iter()
            .map(|m| Violation::Orphan { marker: m.clone() }),
    );
    let on_boundary = checkpoint == 0
        || checkpoint == body.len() as u64
        || rows.iter().any(|(_, end)| *end == checkpoint);
    if checkpoint > body.len() as u64 || !on_boundary {
        violations.push(Violation::CheckpointOff {
            checkpoint,
            master_bytes: body.len() as u64,
        });
    }
    Ok(violations)
}

/// The identity of every record of a whole master (header skipped) and the offset where the
/// record ends.
fn row_ends(body: &[u8]) -> Result<Vec<(Identity, u64)>, csv::Error> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body);
    let mut rec = csv::ByteRecord::new();
    let mut out = Vec::new();
    while r.read_byte_record(&mut rec)? {
        let (Some(id), Some(red)) = (rec.get(CONTACT_ID_COL), rec.get(REDACTED_COL)) else {
            continue;
        };
        // After a read the reader stands at the start of the next record: this one's end.
        out.push((
            Identity {
                contact_id: String::from_utf8_lossy(id).into_owned(),
                redacted: red == b"true",
            },
            r.position().byte(),
        ));
    }
    Ok(out)
}
