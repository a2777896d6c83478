//! The watermark of a partition and the claims on it.
//!
//! Per partition (contact date) the state is one small JSON object, the [`Watermark`]:
//! `{"offset": N, "pending": {"from": A, "to": B} | null}`. `offset` is how many bytes of the
//! master are labeled (0: nothing yet, and the header is skipped). [`next_claim`] decides the
//! next range and claims it as `pending` (compare-and-swap); [`advance`] moves `offset` past
//! it once its part exists. [`claim_rows`] sizes a claim to the time a visit has left, from
//! the rows per second the run has measured ([`Meter`]).

use chrono::{SecondsFormat, Utc};
use master_csv::Layout;
use serde::{Deserialize, Serialize};
use store::cas::retry_cas;
use store::{Condition, ObjectStore, StoreError};

use crate::config::Settings;
use crate::parts::labeled_prefix;
use crate::pipeline::Visit;
use crate::ClassifyError;

/// The watermark object of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Bytes of the master already labeled.
    pub offset: u64,
    /// A claimed range whose part may not exist yet.
    #[serde(default)]
    pub pending: Option<ByteRange>,
    /// When the watermark was written (RFC 3339), for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Bytes `[from, to)` of a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    pub from: u64,
    pub to: u64,
}

/// The watermark of one partition ([`Layout::watermark`]).
pub fn watermark_key(layout: &Layout, date: &str) -> String {
    layout.watermark(date)
}

/// Rows per second, measured over the claims of this run.
pub(crate) struct Meter {
    prior: f64,
    seen: std::sync::Mutex<(u64, std::time::Duration)>,
}

impl Meter {
    pub(crate) fn new(prior: f64) -> Self {
        Self {
            prior,
            seen: Default::default(),
        }
    }

    /// Records that `rows` master records took `took` (reading, labeling, writing).
    pub(crate) fn record(&self, rows: u64, took: std::time::Duration) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.0 += rows;
        seen.1 += took;
    }

    /// The measured rate, or the prior before anything was measured.
    pub(crate) fn rows_per_sec(&self) -> f64 {
        let (rows, took) = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if rows == 0 || took.is_zero() {
            self.prior
        } else {
            rows as f64 / took.as_secs_f64()
        }
    }
}

/// The share of a visit's time left that one claim is sized to take.
const CLAIM_SHARE: f64 = 0.5;

/// Records one claim may hold, at `now`:
/// `clamp(floor(rows_per_sec × (visit deadline − now) × 1/2), 1, max_part_rows)`, where
/// `rows_per_sec` is measured over this run's claims ([`Settings::prior_rows_per_sec`] before
/// the first). Half the time left: the measured rate is an average and the next claim's rows
/// may be longer. At least one record, so a visit always makes progress; without a deadline,
/// `max_part_rows`.
pub(crate) fn claim_rows(cfg: &Settings, meter: &Meter, now: std::time::Instant) -> u64 {
    let cap = cfg.max_part_rows.max(1);
    let Some(deadline) = cfg.deadline else {
        return cap;
    };
    let left = deadline.saturating_duration_since(now).as_secs_f64();
    let rows = (meter.rows_per_sec() * left * CLAIM_SHARE).floor();
    if rows.is_finite() && rows >= 1.0 {
        (rows as u64).min(cap)
    } else {
        1
    }
}

/// Reads the watermark and its ETag (`None`: no watermark yet).
pub(crate) async fn read_watermark<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<(Watermark, Option<String>), ClassifyError> {
    match store.get(key).await? {
        None => Ok((Watermark::default(), None)),
        Some(o) => {
            let w = serde_json::from_slice(&o.body).map_err(|e| ClassifyError::Data {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            Ok((w, Some(o.etag)))
        }
    }
}

async fn write_watermark<S: ObjectStore>(
    store: &S,
    key: &str,
    w: &Watermark,
    etag: Option<String>,
) -> Result<String, StoreError> {
    let mut w = w.clone();
    w.updated_at = Some(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
    let body = serde_json::to_vec(&w).expect("a watermark always serializes");
    let cond = match etag {
        Some(e) => Condition::IfMatch(e),
        None => Condition::IfNoneMatch,
    };
    store.put(key, body, cond).await
}

/// The range a step works on, and the master bytes already read for it, if any.
pub(crate) struct Claim {
    pub(crate) range: ByteRange,
    pub(crate) bytes: Option<Vec<u8>>,
    /// The part is known to exist already.
    pub(crate) part_exists: bool,
}

/// Decides the next range of the visit's master to label (at most `max_rows` records when
/// given), claiming it in the watermark. Answers the claim (`None` when nothing complete is
/// left) and the watermark's offset as first read.
pub(crate) async fn next_claim<S: ObjectStore>(
    visit: &Visit<'_, S>,
    max_rows: Option<u64>,
) -> Result<(Option<Claim>, u64), ClassifyError> {
    let Visit {
        store,
        cfg,
        date,
        ref master,
        ref wm_key,
        size,
    } = *visit;
    let (master, wm_key) = (master.as_str(), wm_key.as_str());
    let mut seen = None;
    let max = cfg.cas.max_attempts.max(1);
    for attempt in 1..=max {
        let (wm, etag) = read_watermark(store, wm_key).await?;
        let seen = *seen.get_or_insert(wm.offset);
        if let Some(range) = wm.pending {
            if range.from != wm.offset || range.to <= range.from {
                return Err(ClassifyError::Data {
                    key: wm_key.to_string(),
                    reason: format!("pending {range:?} does not start at offset {}", wm.offset),
                });
            }
            return Ok((
                Some(Claim {
                    range,
                    bytes: None,
                    part_exists: false,
                }),
                seen,
            ));
        }
        let from = wm.offset;
        if from >= size {
            if from > size {
                tracing::warn!(
                    date,
                    from,
                    size,
                    "watermark is past the master's end; nothing to do"
                );
            }
            return Ok((None, seen));
        }
        // A part starting here without a claim: written by a run that knew no claims, or
        // left by hand. Adopt it rather than label its rows again.
        let prefix = format!("{}part-{from:020}-", labeled_prefix(&cfg.layout, date));
        if let Some(existing) = store.list(&prefix).await?.into_iter().next() {
            let to = existing
                .key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".csv"))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|&to| to > from)
                .ok_or_else(|| ClassifyError::Data {
                    key: existing.key.clone(),
                    reason: "not a part name".into(),
                })?;
            return Ok((
                Some(Claim {
                    range: ByteRange { from, to },
                    bytes: None,
                    part_exists: true,
                }),
                seen,
            ));
        }
        let end = size.min(from.saturating_add(cfg.max_part_bytes.max(1)));
        let mut bytes = read_range(store, master, from, end).await?;
        let mut cut = bytes.iter().rposition(|&b| b == b'\n');
        if cut.is_none() && end < size {
            // One record longer than a part: take it whole.
            bytes = read_range(store, master, from, size).await?;
            cut = bytes.iter().rposition(|&b| b == b'\n');
        }
        if let Some(rows) = max_rows {
            // The header of a master (the range from 0) is no row to label.
            let lines = rows.saturating_add(u64::from(from == 0));
            if let Some(end) = end_of_line(&bytes, lines) {
                cut = Some(end);
            }
        }
        let Some(cut) = cut else {
            tracing::info!(
                date,
                from,
                size,
                "only a partial record is new; waiting for it"
            );
            return Ok((None, seen));
        };
        bytes.truncate(cut + 1);
        let range = ByteRange {
            from,
            to: from + bytes.len() as u64,
        };
        let claimed = Watermark {
            offset: from,
            pending: Some(range),
            updated_at: None,
        };
        match write_watermark(store, wm_key, &claimed, etag).await {
            Ok(_) => {
                return Ok((
                    Some(Claim {
                        range,
                        bytes: Some(bytes),
                        part_exists: false,
                    }),
                    seen,
                ))
            }
            Err(StoreError::PreconditionFailed { .. }) | Err(StoreError::NotFound { .. })
                if attempt < max =>
            {
                tracing::debug!(
                    date,
                    attempt,
                    "watermark changed while claiming; re-reading"
                );
                tokio::time::sleep(cfg.cas.delay(attempt)).await;
            }
            Err(StoreError::PreconditionFailed { .. }) => {
                return Err(StoreError::Contended {
                    key: wm_key.to_string(),
                    attempts: attempt,
                }
                .into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contended {
        key: wm_key.to_string(),
        attempts: max,
    }
    .into())
}

/// The index of the `n`th `\n` of `bytes` (`n` >= 1), if it has that many.
fn end_of_line(bytes: &[u8], n: u64) -> Option<usize> {
    let n = usize::try_from(n.max(1)).ok()?;
    bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i)
}

/// Moves the watermark past `range` once its part exists.
pub(crate) async fn advance<S: ObjectStore>(
    store: &S,
    cfg: &Settings,
    wm_key: &str,
    range: ByteRange,
) -> Result<(), ClassifyError> {
    let out = retry_cas(&cfg.cas, wm_key, || async {
        let (wm, etag) = match read_watermark(store, wm_key).await {
            Ok(x) => x,
            Err(ClassifyError::Store(e)) => return Err(e),
            Err(other) => return Ok(Err(other)),
        };
        if wm.offset >= range.to {
            return Ok(Ok(())); // An overlapping run moved it already.
        }
        if wm.offset != range.from || wm.pending.is_some_and(|p| p != range) {
            return Ok(Err(ClassifyError::Data {
                key: wm_key.to_string(),
                reason: format!("watermark {wm:?} moved elsewhere while labeling {range:?}"),
            }));
        }
        let next = Watermark {
            offset: range.to,
            pending: None,
            updated_at: None,
        };
        write_watermark(store, wm_key, &next, etag)
            .await
            .map(|_| Ok(()))
    })
    .await;
    match out {
        Ok(inner) => inner,
        Err(StoreError::NotFound { .. }) => Err(ClassifyError::Transient(format!(
            "{wm_key} vanished while being advanced"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn read_range<S: ObjectStore>(
    store: &S,
    key: &str,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, ClassifyError> {
    let o = store
        .get_range(key, from, Some(to))
        .await?
        .ok_or_else(|| ClassifyError::Data {
            key: key.to_string(),
            reason: "the master vanished".into(),
        })?;
    if o.body.len() as u64 != to - from {
        return Err(ClassifyError::Data {
            key: key.to_string(),
            reason: format!(
                "asked for bytes {from}..{to}, got {} (was the master rewritten?)",
                o.body.len()
            ),
        });
    }
    Ok(o.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_read_without_pending() {
        let w: Watermark = serde_json::from_str(r#"{"offset": 12}"#).unwrap();
        assert_eq!(w.offset, 12);
        assert_eq!(w.pending, None);
    }
}
