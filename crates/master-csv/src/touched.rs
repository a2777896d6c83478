//! Touched-partition records: `state/touched/date=D.json` says that the master of date `D`
//! may hold rows that classify has not labeled yet, whatever `D` is (a backfill, a redrive of
//! week-old messages). Classify lists them besides its look-back window.
//!
//! Ingest writes the record *after* each successful append (duplicates included, so a
//! redelivery after a crash between the two writes it), and the body names the master's size,
//! so two writes around a new append differ. Classify removes a record only once the
//! partition's watermark has caught up with the master, and then looks at the master once
//! more: an append that landed meanwhile (whose own record write may have been the one just
//! deleted) puts the record back. So a record exists whenever a master holds unlabeled rows,
//! except for the moment between an append and its record write.

use store::{Condition, ObjectStore, StoreError};

use crate::Layout;

/// Writes (or rewrites) the touched-partition record of `date`; `master_bytes` is the size
/// of the master after the append, `now` an RFC 3339 time, both for people reading it.
pub async fn mark<S: ObjectStore>(
    store: &S,
    layout: &Layout,
    date: &str,
    master_bytes: u64,
    now: &str,
) -> Result<(), StoreError> {
    let body = format!(
        "{{\"date\":\"{date}\",\"master_bytes\":{master_bytes},\"written_at\":\"{now}\"}}\n"
    );
    store
        .put(&layout.touched(date), body.into_bytes(), Condition::None)
        .await
        .map(|_| ())
}

/// The contact dates that have a touched-partition record, sorted.
pub async fn list<S: ObjectStore>(store: &S, layout: &Layout) -> Result<Vec<String>, StoreError> {
    let mut dates: Vec<String> = store
        .list(&layout.touched_prefix())
        .await?
        .iter()
        .filter_map(|m| layout.touched_date(&m.key).map(str::to_string))
        .collect();
    dates.sort();
    dates.dedup();
    Ok(dates)
}
