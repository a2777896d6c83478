//! The ingest core: a batch of object keys → rows appended to the master CSVs, one append per
//! partition followed by its touched record ([`master_csv::touched`]), bad files quarantined.
//! Generic over the store port; no Lambda types.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use master_csv::{append_rows, touched, Row};
use serde::Serialize;
use store::cas::RetryPolicy;
use store::{Condition, ObjectStore, StoreError};
use tracing::{info, warn};

use crate::config::{Copy, Settings};

/// What happened to one input key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Its row was appended, or was already present (a redelivery).
    Ingested,
    /// Another analysis of the same contact is the contact's row already (an earlier file, or
    /// the other copy): logged and counted, not appended, so the contact is counted once.
    Superseded,
    /// Not a Contact Lens analysis key, one of our own outputs, or the other copy.
    Ignored,
    /// The object no longer exists.
    Gone,
    /// Bad input: written to quarantine with the reason. Counts as handled.
    Quarantined,
    /// A transient failure: the caller should have this input retried.
    Failed,
}

/// Counts for one batch, for logs and the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub appended: usize,
    /// Files already ingested (redelivered events, a rerun).
    pub duplicates: usize,
    /// Files not appended because another analysis of their contact was ingested first.
    pub superseded: usize,
    pub ignored: usize,
    pub gone: usize,
    pub quarantined: usize,
    pub failed: usize,
    pub partitions: usize,
}

impl BatchReport {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: &BatchReport) {
        self.appended += other.appended;
        self.duplicates += other.duplicates;
        self.superseded += other.superseded;
        self.ignored += other.ignored;
        self.gone += other.gone;
        self.quarantined += other.quarantined;
        self.failed += other.failed;
        self.partitions += other.partitions;
    }
}

/// Ingests `keys` (decoded object keys). Returns each key's fate, in input order, and the
/// batch counts. Never fails as a whole: every problem is confined to the inputs it touches.
pub async fn ingest_batch<S: ObjectStore>(
    store: &S,
    settings: &Settings,
    policy: &RetryPolicy,
    keys: &[String],
    now: &str,
) -> (Vec<Fate>, BatchReport) {
    let mut fates = vec![Fate::Ignored; keys.len()];
    let mut report = BatchReport::default();

    let mut reads = stream::iter(keys.iter().enumerate())
        .map(|(i, key)| async move { (i, read_one(store, settings, key, now).await) })
        .buffer_unordered(settings.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    // Input order, so that of two analyses of one contact in a batch the first one wins.
    reads.sort_unstable_by_key(|(i, _)| *i);

    // partition master key → (input indices, rows)
    let mut partitions: BTreeMap<String, (Vec<usize>, Vec<Row>)> = BTreeMap::new();
    for (i, read) in reads {
        match read {
            Read::Row(row) => {
                let master = settings.layout.master(&row.contact_date);
                let entry = partitions.entry(master).or_default();
                entry.0.push(i);
                entry.1.push(*row);
            }
            Read::Done(fate) => fates[i] = fate,
        }
    }

    report.partitions = partitions.len();
    for (master, (indices, rows)) in partitions {
        let date = rows[0].contact_date.clone();
        let appended = match append_rows(store, &master, &rows, policy).await {
            // The touched record comes after the append, and also after a redelivery that
            // finds only duplicates: classify finds rows of any date by it.
            Ok(o) => match touched::mark(store, &settings.layout, &date, o.master_bytes, now).await
            {
                Ok(()) => Ok(o),
                Err(e) => Err(format!("recording the touched partition: {e}")),
            },
            Err(e) => Err(format!("{e} (retryable: {})", e.is_retryable())),
        };
        match appended {
            Ok(o) => {
                info!(
                    master = %master,
                    appended = o.appended,
                    duplicates = o.duplicates,
                    superseded = o.superseded,
                    attempts = o.attempts,
                    master_bytes = o.master_bytes,
                    "appended to master"
                );
                report.appended += o.appended;
                report.duplicates += o.duplicates;
                report.superseded += o.superseded;
                for &i in &indices {
                    fates[i] = Fate::Ingested;
                }
                for s in o.skipped.iter().filter(|s| s.is_superseded()) {
                    info!(
                        master = %master,
                        key = %s.source_key,
                        kept = s.kept.as_deref().unwrap_or_default(),
                        "superseded: the contact already has a row from another analysis"
                    );
                    for &i in &indices {
                        if keys[i] == s.source_key {
                            fates[i] = Fate::Superseded;
                        }
                    }
                }
            }
            Err(e) => {
                warn!(master = %master, rows = rows.len(), error = %e, "append failed");
                for i in indices {
                    fates[i] = Fate::Failed;
                }
            }
        }
    }
    for f in &fates {
        match f {
            Fate::Ignored => report.ignored += 1,
            Fate::Gone => report.gone += 1,
            Fate::Quarantined => report.quarantined += 1,
            Fate::Failed => report.failed += 1,
            Fate::Ingested | Fate::Superseded => {}
        }
    }
    (fates, report)
}

enum Read {
    Row(Box<Row>),
    Done(Fate),
}

async fn read_one<S: ObjectStore>(store: &S, settings: &Settings, key: &str, now: &str) -> Read {
    if settings.layout.is_ours(key) {
        return Read::Done(Fate::Ignored);
    }
    let Some(info) = contact_lens::parse_key(key) else {
        return Read::Done(Fate::Ignored);
    };
    if info.redacted != (settings.copy == Copy::Redacted) {
        return Read::Done(Fate::Ignored);
    }
    let limit = settings.max_file_bytes;
    let obj = match store.get_range(key, 0, Some(limit + 1)).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            warn!(key, "object named by the event no longer exists");
            return Read::Done(Fate::Gone);
        }
        Err(e) => {
            warn!(key, error = %e, "reading the analysis file failed");
            return Read::Done(Fate::Failed);
        }
    };
    if obj.size > limit {
        let reason = format!(
            "file is {} bytes, over the {limit}-byte limit (CALLTYPE_MAX_FILE_BYTES)",
            obj.size
        );
        return quarantine(store, settings, key, None, &reason, now).await;
    }
    let contact = match contact_lens::parse(&obj.body, Some(key)) {
        Ok(c) => c,
        Err(e) => return quarantine(store, settings, key, Some(obj.body), &e.reason(), now).await,
    };
    match Row::from_contact(&contact, key, settings.participants, now) {
        Ok(row) => Read::Row(Box::new(row)),
        Err(e) => quarantine(store, settings, key, Some(obj.body), &e.to_string(), now).await,
    }
}

#[derive(Serialize)]
struct QuarantineNote<'a> {
    source_key: &'a str,
    reason: &'a str,
    quarantined_at: &'a str,
    copy_key: Option<String>,
}

/// Writes the reason (and the bytes, unless too large) under the quarantine prefix.
async fn quarantine<S: ObjectStore>(
    store: &S,
    settings: &Settings,
    key: &str,
    body: Option<Vec<u8>>,
    reason: &str,
    now: &str,
) -> Read {
    warn!(key, reason, "quarantined");
    let copy_key = body.as_ref().map(|_| settings.layout.quarantine_copy(key));
    let note = QuarantineNote {
        source_key: key,
        reason,
        quarantined_at: now,
        copy_key: copy_key.clone(),
    };
    let note = serde_json::to_vec_pretty(&note).expect("a note serialises");
    let mut result: Result<(), StoreError> = Ok(());
    if let (Some(body), Some(copy_key)) = (body, copy_key) {
        result = store
            .put(&copy_key, body, Condition::None)
            .await
            .map(|_| ());
    }
    if result.is_ok() {
        result = store
            .put(&settings.layout.quarantine_note(key), note, Condition::None)
            .await
            .map(|_| ());
    }
    match result {
        Ok(()) => Read::Done(Fate::Quarantined),
        Err(e) => {
            warn!(key, error = %e, "writing to quarantine failed");
            Read::Done(Fate::Failed)
        }
    }
}
