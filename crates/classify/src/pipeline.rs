//! The classify pipeline: partitions → watermark → classifier → labeled parts.
//!
//! Per partition (contact date) the state is one small JSON object, the watermark:
//! `{"offset": N, "pending": {"from": A, "to": B} | null}`. `offset` is how many bytes of the
//! master are labeled (0: nothing yet, and the header is skipped). One step of a partition:
//!
//! 1. Read the watermark (with its ETag). If it has a `pending` range, resume that range.
//!    Otherwise, if a part `part-<offset>-*` already exists, adopt its range; otherwise read
//!    the master from `offset` with a ranged GET, cut at the last `\n` (a partial last line
//!    waits for the next run) or after as many records as fit the time left ([`claim_rows`]),
//!    and claim `[offset, to)` by writing it as `pending` with compare-and-swap. A lost race
//!    re-reads and resumes the winner's range.
//! 2. If `labeled/date=D/part-<from>-<to>.csv` exists, skip to 3. Otherwise classify the
//!    range's rows and write the part with `If-None-Match: *` (412: someone else wrote it).
//! 3. Move the watermark to `{"offset": to, "pending": null}` with compare-and-swap.
//!
//! The part's name is a function of the claimed byte range alone, so a run that dies anywhere
//! and is rerun (or two runs that overlap) writes each range at most once, and the watermark
//! never moves before its part exists: every row is labeled exactly once.

use std::collections::BTreeSet;

use chrono::{NaiveDate, SecondsFormat, Utc};
use master_csv::encode::encode_record;
use master_csv::{Layout, COLUMNS};
use serde::{Deserialize, Serialize};
use store::cas::retry_cas;
use store::{Condition, ObjectStore, StoreError};

use crate::config::Settings;
use crate::{Classifier, ClassifyError, Label};

/// The labeled parts' columns, in order (`transcript` only when configured). This list is
/// the contract with Athena: columns are only ever added at the end.
pub const LABELED_COLUMNS: &[&str] = &[
    "contact_id",
    "contact_date",
    "channel",
    "redacted",
    "source_key",
    "label",
    "score",
    "model",
    "labeled_at",
];

/// The optional last column of labeled parts.
pub const TRANSCRIPT_COLUMN: &str = "transcript";

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

/// The prefix of the labeled parts of one partition ([`Layout::labeled_prefix`]).
pub fn labeled_prefix(layout: &Layout, date: &str) -> String {
    layout.labeled_prefix(date)
}

/// The labeled part of master bytes `[from, to)` ([`Layout::part`]).
pub fn part_key(layout: &Layout, date: &str, from: u64, to: u64) -> String {
    layout.part(date, from, to)
}

/// What one partition's run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PartitionReport {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The master's size when the run looked (0: no master).
    pub master_bytes: u64,
    pub watermark_before: u64,
    pub watermark_after: u64,
    /// Records read from the master.
    pub rows_read: u64,
    /// Rows written to labeled parts.
    pub rows_labeled: u64,
    /// Records not labeled on purpose: no transcript, or unreadable (too few columns).
    pub rows_skipped: u64,
    /// Records to label whose range could not be labeled in this run (they stay pending).
    /// `rows_read = rows_labeled + rows_skipped + rows_failed` unless a part was recovered.
    pub rows_failed: u64,
    pub parts_written: u64,
    /// Parts found already written by an earlier, interrupted run (watermark moved only).
    pub parts_recovered: u64,
    /// Batch-transform jobs this run created (transform mode).
    pub jobs_started: u64,
    /// Batch-transform jobs still running when this run looked, those it started included.
    pub jobs_pending: u64,
    /// Rows in those running jobs; they are counted as read once their job completes.
    pub rows_pending: u64,
    /// Why the partition stopped, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether that failure is worth retrying.
    pub transient: bool,
    /// The run's deadline passed before this partition was done; the rest waits.
    pub out_of_time: bool,
}

/// What a run did, in total and per partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// The classifier's name.
    pub model: String,
    pub rows_read: u64,
    pub rows_labeled: u64,
    pub rows_skipped: u64,
    pub rows_failed: u64,
    pub parts_written: u64,
    pub parts_recovered: u64,
    pub jobs_started: u64,
    pub jobs_pending: u64,
    pub rows_pending: u64,
    pub failed_partitions: u64,
    /// Why the partitions beyond the look-back window could not be listed, if so; the window's
    /// partitions were still looked at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub partitions: Vec<PartitionReport>,
}

impl PartitionReport {
    /// This visit's report followed by a later visit's to the same partition in the same run.
    fn then(mut self, later: PartitionReport) -> PartitionReport {
        self.master_bytes = self.master_bytes.max(later.master_bytes);
        self.watermark_after = self.watermark_after.max(later.watermark_after);
        self.rows_read += later.rows_read;
        self.rows_labeled += later.rows_labeled;
        self.rows_skipped += later.rows_skipped;
        self.rows_failed += later.rows_failed;
        self.parts_written += later.parts_written;
        self.parts_recovered += later.parts_recovered;
        self.jobs_started += later.jobs_started;
        self.jobs_pending = later.jobs_pending;
        self.rows_pending = later.rows_pending;
        self.error = later.error;
        self.transient = later.transient;
        self.out_of_time = later.out_of_time;
        self
    }
}

impl RunReport {
    /// True when any partition failed, or the partitions could not be listed.
    pub fn failed(&self) -> bool {
        self.failed_partitions > 0 || self.error.is_some()
    }

    fn add(&mut self, p: PartitionReport) {
        self.rows_read += p.rows_read;
        self.rows_labeled += p.rows_labeled;
        self.rows_skipped += p.rows_skipped;
        self.rows_failed += p.rows_failed;
        self.parts_written += p.parts_written;
        self.parts_recovered += p.parts_recovered;
        self.jobs_started += p.jobs_started;
        self.jobs_pending += p.jobs_pending;
        self.rows_pending += p.rows_pending;
        if p.error.is_some() {
            self.failed_partitions += 1;
        }
        self.partitions.push(p);
    }
}

/// Labels what is new in each partition: those of the look-back window (`cfg.lookback_days`
/// days ending at `today`), those with a touched record (rows appended whatever their date,
/// see [`master_csv::touched`]) and, with [`Settings::every_partition`], every master there
/// is; oldest first. The run's time is shared between the partitions (see
/// [`for_each_partition`]) and each claim is sized to the time it has (see [`claim_rows`]).
/// A partition that fails is left where it was and reported (with [`RunReport::failed`]);
/// the others proceed.
pub async fn run<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    cfg: &Settings,
    today: NaiveDate,
) -> Result<RunReport, ClassifyError> {
    let meter = Meter::new(cfg.prior_rows_per_sec);
    let meter = &meter;
    for_each_partition(
        store,
        cfg,
        today,
        classifier.name(),
        |date, visit| async move {
            let mut p = PartitionReport {
                date: date.clone(),
                ..PartitionReport::default()
            };
            let out = partition(store, classifier, &visit, meter, &date, &mut p).await;
            (p, out)
        },
    )
    .await
}

/// The partitions of the look-back window, oldest first.
fn window(cfg: &Settings, today: NaiveDate) -> BTreeSet<String> {
    (0..cfg.lookback_days.max(1))
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(u64::from(back))))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect()
}

/// The partitions beyond the look-back window that a run looks at: those with a touched
/// record (the second set) and, with [`Settings::every_partition`], every master's.
pub(crate) async fn listed<S: ObjectStore>(
    store: &S,
    cfg: &Settings,
) -> Result<(BTreeSet<String>, BTreeSet<String>), StoreError> {
    let touched: BTreeSet<String> = master_csv::touched::list(store, &cfg.layout)
        .await?
        .into_iter()
        .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .collect();
    let mut dates = touched.clone();
    if cfg.every_partition {
        let prefix = cfg.layout.masters_prefix();
        for meta in store.list(&prefix).await? {
            let date = meta
                .key
                .strip_prefix(&prefix)
                .and_then(|k| k.strip_prefix("date="))
                .and_then(|k| k.strip_suffix("/transcripts.csv"))
                .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
            if let Some(d) = date {
                dates.insert(d.to_string());
            }
        }
    }
    Ok((dates, touched))
}

/// Runs `step` on each partition (the look-back window's and those [`listed`]), logs what each did and adds it to the run's
/// report. `step` gets its partition and the settings of its visit, and answers the visit's
/// report and whether it failed; a failure is recorded and the next partition proceeds.
///
/// With a deadline, the run's time is shared in rounds: each partition still to visit in a
/// round gets an equal share of the time left (`(deadline - now) / partitions left`) as its
/// visit's deadline, so time one partition leaves unused goes to the next. A visit that ran
/// out of its share while rows remain (`out_of_time`) is visited again in the next round,
/// until the run's deadline. So one partition's backlog cannot starve the others: every
/// partition that grew gets at least one claim in every run. Without a deadline, each
/// partition is visited once, to the end.
///
/// Last, the touched record of each partition that has one and did not fail is settled
/// ([`settle_touched`]). If the listing fails, the window's partitions still run and the
/// report carries the error.
pub(crate) async fn for_each_partition<S, F, Fut>(
    store: &S,
    cfg: &Settings,
    today: NaiveDate,
    model: &str,
    step: F,
) -> Result<RunReport, ClassifyError>
where
    S: ObjectStore,
    F: Fn(String, Settings) -> Fut,
    Fut: std::future::Future<Output = (PartitionReport, Result<(), ClassifyError>)>,
{
    let mut dates = window(cfg, today);
    let (touched, list_error) = match listed(store, cfg).await {
        Ok((more, touched)) => {
            dates.extend(more);
            (touched, None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "listing the partitions beyond the look-back window failed");
            (BTreeSet::new(), Some(format!("listing partitions: {e}")))
        }
    };
    let dates: Vec<String> = dates.into_iter().collect();
    let mut reports: Vec<Option<PartitionReport>> = vec![None; dates.len()];
    let mut active: Vec<usize> = (0..dates.len()).collect();
    while !active.is_empty() {
        let mut again = Vec::new();
        for (k, &i) in active.iter().enumerate() {
            let date = &dates[i];
            let mut visit = cfg.clone();
            if let Some(deadline) = cfg.deadline {
                let now = cfg.clock.now();
                if now >= deadline {
                    for &j in &active[k..] {
                        let p = reports[j].get_or_insert_with(|| PartitionReport {
                            date: dates[j].clone(),
                            ..PartitionReport::default()
                        });
                        p.out_of_time = true;
                        tracing::info!(date = %dates[j], watermark = p.watermark_after, "out of time; the rest waits for the next run");
                    }
                    again.clear();
                    break;
                }
                let left = u32::try_from(active.len() - k).unwrap_or(u32::MAX);
                visit.deadline = Some(now + (deadline - now) / left);
            }
            let started = std::time::Instant::now();
            // Boxed: the step's future is deep (store, classifier, SDK futures), and the Lambda
            // nests it in the runtime's own.
            let (mut p, out) = Box::pin(step(date.clone(), visit)).await;
            match out {
                Ok(()) => {
                    if p.master_bytes > 0 {
                        tracing::info!(
                            date = %date,
                            master_bytes = p.master_bytes,
                            from = p.watermark_before,
                            to = p.watermark_after,
                            rows_read = p.rows_read,
                            rows_labeled = p.rows_labeled,
                            rows_skipped = p.rows_skipped,
                            parts_written = p.parts_written,
                            parts_recovered = p.parts_recovered,
                            jobs_started = p.jobs_started,
                            jobs_pending = p.jobs_pending,
                            rows_pending = p.rows_pending,
                            out_of_time = p.out_of_time,
                            ms = started.elapsed().as_millis() as u64,
                            "partition visited"
                        );
                    }
                    if p.out_of_time && cfg.deadline.is_some() {
                        again.push(i);
                    }
                }
                Err(e) => {
                    p.transient = e.is_transient();
                    p.error = Some(e.to_string());
                    tracing::warn!(
                        date = %date,
                        watermark = p.watermark_after,
                        rows_failed = p.rows_failed,
                        transient = p.transient,
                        error = %e,
                        "partition failed; left at its watermark"
                    );
                }
            }
            reports[i] = Some(match reports[i].take() {
                None => p,
                Some(before) => before.then(p),
            });
        }
        active = again;
    }
    let mut report = RunReport {
        model: model.to_string(),
        error: list_error,
        ..RunReport::default()
    };
    for (date, p) in dates.iter().zip(reports) {
        let mut p = p.unwrap_or_else(|| PartitionReport {
            date: date.clone(),
            ..PartitionReport::default()
        });
        if touched.contains(date) && p.error.is_none() {
            if let Err(e) = settle_touched(store, cfg, date).await {
                p.transient = e.is_transient();
                p.error = Some(format!("settling the touched record: {e}"));
                tracing::warn!(date = %date, error = %e, "settling the touched record failed");
            }
        }
        report.add(p);
    }
    tracing::info!(
        model = %report.model,
        rows_read = report.rows_read,
        rows_labeled = report.rows_labeled,
        rows_skipped = report.rows_skipped,
        rows_failed = report.rows_failed,
        parts_written = report.parts_written,
        parts_recovered = report.parts_recovered,
        jobs_started = report.jobs_started,
        jobs_pending = report.jobs_pending,
        rows_pending = report.rows_pending,
        failed_partitions = report.failed_partitions,
        "classify run done"
    );
    Ok(report)
}

/// Removes the touched record of `date` once its watermark has caught up with its master (no
/// claim pending, offset at the master's end), then looks at the master again: an append
/// that landed in between (and whose own record write the removal may have undone) gets the
/// record back. Answers whether the record is gone.
pub(crate) async fn settle_touched<S: ObjectStore>(
    store: &S,
    cfg: &Settings,
    date: &str,
) -> Result<bool, ClassifyError> {
    let layout = &cfg.layout;
    let master = layout.master(date);
    let caught_up = |wm: &Watermark, size: u64| wm.pending.is_none() && wm.offset >= size;
    let (wm, _) = read_watermark(store, &watermark_key(layout, date)).await?;
    let size = store.head(&master).await?.map_or(0, |m| m.size);
    if !caught_up(&wm, size) {
        return Ok(false);
    }
    store.delete(&layout.touched(date)).await?;
    let now = store.head(&master).await?.map_or(0, |m| m.size);
    if caught_up(&wm, now) {
        tracing::info!(
            date,
            watermark = wm.offset,
            "caught up; touched record removed"
        );
        return Ok(true);
    }
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    master_csv::touched::mark(store, layout, date, now, &at).await?;
    tracing::info!(
        date,
        master_bytes = now,
        "the master grew while settling; touched record kept"
    );
    Ok(false)
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

/// One visit to a partition in endpoint mode: claims sized by [`claim_rows`] until nothing is
/// left or the visit's time is nearly spent (less than an eighth of it left: a smaller claim
/// would make a small part for little progress). The first claim is always made.
async fn partition<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    cfg: &Settings,
    meter: &Meter,
    date: &str,
    p: &mut PartitionReport,
) -> Result<(), ClassifyError> {
    let layout = &cfg.layout;
    let master = layout.master(date);
    let wm_key = watermark_key(layout, date);
    let Some(meta) = store.head(&master).await? else {
        return Ok(());
    };
    p.master_bytes = meta.size;
    let visit_start = cfg.clock.now();
    let mut first = true;
    loop {
        let now = cfg.clock.now();
        if let Some(deadline) = cfg.deadline.filter(|_| !first) {
            let share = deadline.saturating_duration_since(visit_start);
            if deadline.saturating_duration_since(now) < share / 8 {
                p.out_of_time = true;
                tracing::info!(
                    date,
                    watermark = p.watermark_after,
                    "this visit's time is spent; the rest waits"
                );
                return Ok(());
            }
        }
        let max_rows = claim_rows(cfg, meter, now);
        let Some(claim) = next_claim(
            store,
            cfg,
            date,
            &master,
            &wm_key,
            meta.size,
            p,
            first,
            Some(max_rows),
        )
        .await?
        else {
            return Ok(());
        };
        first = false;
        let ByteRange { from, to } = claim.range;
        let part = part_key(layout, date, from, to);
        let exists = claim.part_exists || store.head(&part).await?.is_some();
        if exists {
            p.parts_recovered += 1;
            tracing::info!(date, from, to, part = %part, "part already written; moving the watermark only");
        } else {
            let bytes = match claim.bytes {
                Some(b) => b,
                None => read_range(store, &master, from, to).await?,
            };
            let rows = parse_rows(&bytes, from == 0).map_err(|reason| ClassifyError::Data {
                key: master.clone(),
                reason: format!("bytes {from}..{to}: {reason}"),
            })?;
            p.rows_read += rows.read;
            p.rows_skipped += rows.skipped;
            let labels = match classify_all(classifier, cfg, &rows.rows).await {
                Ok(l) => l,
                Err(e) => {
                    p.rows_failed += rows.rows.len() as u64;
                    return Err(e);
                }
            };
            meter.record(rows.read, cfg.clock.now().saturating_duration_since(now));
            if rows.rows.is_empty() {
                // Nothing to label (a bare header, or only skipped records): no part, and
                // nothing that a rerun could label twice.
                advance(store, cfg, &wm_key, claim.range).await?;
                p.watermark_after = to;
                continue;
            }
            let body = encode_part(
                &rows.rows,
                &labels,
                classifier.name(),
                cfg.include_transcript,
            );
            match store.put(&part, body, Condition::IfNoneMatch).await {
                Ok(_) => {
                    p.parts_written += 1;
                    p.rows_labeled += rows.rows.len() as u64;
                    tracing::info!(date, from, to, part = %part, rows = rows.rows.len(), "part written");
                }
                Err(StoreError::PreconditionFailed { .. }) => {
                    // An overlapping run wrote the same range first; its rows count there.
                    p.parts_recovered += 1;
                    tracing::info!(date, from, to, part = %part, "part written by another run");
                }
                Err(e) => {
                    p.rows_failed += rows.rows.len() as u64;
                    return Err(e.into());
                }
            }
        }
        advance(store, cfg, &wm_key, claim.range).await?;
        p.watermark_after = to;
    }
}

/// Whether the run's deadline has passed; if so, marks the partition and logs that the rest
/// waits for the next run.
pub(crate) fn out_of_time(cfg: &Settings, date: &str, p: &mut PartitionReport) -> bool {
    let late = cfg.deadline.is_some_and(|d| cfg.clock.now() >= d);
    if late {
        p.out_of_time = true;
        tracing::info!(
            date,
            watermark = p.watermark_after,
            "out of time; the rest waits for the next run"
        );
    }
    late
}

/// Decides the next range to label, claiming it in the watermark; `None` when nothing
/// complete is left.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn next_claim<S: ObjectStore>(
    store: &S,
    cfg: &Settings,
    date: &str,
    master: &str,
    wm_key: &str,
    size: u64,
    p: &mut PartitionReport,
    first: bool,
    max_rows: Option<u64>,
) -> Result<Option<Claim>, ClassifyError> {
    let max = cfg.cas.max_attempts.max(1);
    for attempt in 1..=max {
        let (wm, etag) = read_watermark(store, wm_key).await?;
        if first && attempt == 1 {
            p.watermark_before = wm.offset;
            p.watermark_after = wm.offset;
        }
        if let Some(range) = wm.pending {
            if range.from != wm.offset || range.to <= range.from {
                return Err(ClassifyError::Data {
                    key: wm_key.to_string(),
                    reason: format!("pending {range:?} does not start at offset {}", wm.offset),
                });
            }
            return Ok(Some(Claim {
                range,
                bytes: None,
                part_exists: false,
            }));
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
            return Ok(None);
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
            return Ok(Some(Claim {
                range: ByteRange { from, to },
                bytes: None,
                part_exists: true,
            }));
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
            return Ok(None);
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
                return Ok(Some(Claim {
                    range,
                    bytes: Some(bytes),
                    part_exists: false,
                }))
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

/// The master columns a labeled part needs.
#[derive(Debug, Clone)]
pub(crate) struct LabeledRow {
    pub(crate) contact_id: String,
    pub(crate) contact_date: String,
    pub(crate) channel: String,
    pub(crate) redacted: String,
    pub(crate) source_key: String,
    pub(crate) transcript: String,
}

pub(crate) struct ParsedRows {
    pub(crate) rows: Vec<LabeledRow>,
    pub(crate) read: u64,
    pub(crate) skipped: u64,
}

fn column(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("a master-csv column")
}

/// Reads complete master records (`has_header`: the range starts at byte 0).
pub(crate) fn parse_rows(bytes: &[u8], has_header: bool) -> Result<ParsedRows, String> {
    let idx = [
        column("contact_id"),
        column("contact_date"),
        column("channel"),
        column("redacted"),
        column("source_key"),
        column("transcript"),
    ];
    let need = idx.iter().max().copied().unwrap_or(0);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .from_reader(bytes);
    let mut out = ParsedRows {
        rows: Vec::new(),
        read: 0,
        skipped: 0,
    };
    let mut rec = csv::StringRecord::new();
    while r.read_record(&mut rec).map_err(|e| e.to_string())? {
        out.read += 1;
        if rec.len() <= need {
            out.skipped += 1;
            tracing::warn!(
                line = rec.position().map(|p| p.line()).unwrap_or(0),
                fields = rec.len(),
                "master record has too few fields; skipped"
            );
            continue;
        }
        let f = |i: usize| rec.get(i).unwrap_or_default().to_string();
        let row = LabeledRow {
            contact_id: f(idx[0]),
            contact_date: f(idx[1]),
            channel: f(idx[2]),
            redacted: f(idx[3]),
            source_key: f(idx[4]),
            transcript: f(idx[5]),
        };
        if row.transcript.trim().is_empty() {
            out.skipped += 1;
            continue;
        }
        out.rows.push(row);
    }
    Ok(out)
}

async fn classify_all<C: Classifier>(
    classifier: &C,
    cfg: &Settings,
    rows: &[LabeledRow],
) -> Result<Vec<Label>, ClassifyError> {
    let mut labels = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(cfg.chunk_texts.max(1)) {
        let texts: Vec<String> = chunk.iter().map(|r| r.transcript.clone()).collect();
        let got = classifier.classify(&texts).await?;
        if got.len() != texts.len() {
            return Err(ClassifyError::Permanent(format!(
                "{} answered {} labels for {} texts",
                classifier.name(),
                got.len(),
                texts.len()
            )));
        }
        labels.extend(got);
    }
    Ok(labels)
}

/// The labeled part: one header, then one record per row.
pub(crate) fn encode_part(
    rows: &[LabeledRow],
    labels: &[Label],
    model: &str,
    with_transcript: bool,
) -> Vec<u8> {
    let mut header: Vec<&str> = LABELED_COLUMNS.to_vec();
    if with_transcript {
        header.push(TRANSCRIPT_COLUMN);
    }
    let mut out = encode_record(header);
    let labeled_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for (row, l) in rows.iter().zip(labels) {
        let score = l.score.to_string();
        let mut fields = vec![
            row.contact_id.as_str(),
            row.contact_date.as_str(),
            row.channel.as_str(),
            row.redacted.as_str(),
            row.source_key.as_str(),
            l.label.as_str(),
            score.as_str(),
            model,
            labeled_at.as_str(),
        ];
        if with_transcript {
            fields.push(row.transcript.as_str());
        }
        out.extend_from_slice(&encode_record(fields));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_sort_by_offset() {
        let l = Layout::default();
        let a = part_key(&l, "2026-01-02", 9, 100);
        let b = part_key(&l, "2026-01-02", 100, 1000);
        assert!(a < b);
        assert_eq!(
            a,
            "calltype/labeled/date=2026-01-02/part-00000000000000000009-00000000000000000100.csv"
        );
        assert_eq!(
            watermark_key(&l, "2026-01-02"),
            "calltype/state/classify/date=2026-01-02/watermark.json"
        );
    }

    #[test]
    fn watermarks_read_without_pending() {
        let w: Watermark = serde_json::from_str(r#"{"offset": 12}"#).unwrap();
        assert_eq!(w.offset, 12);
        assert_eq!(w.pending, None);
    }

    #[test]
    fn rows_skip_empty_transcripts_and_short_records() {
        let mut bytes = master_csv::encode::header();
        let mut full = vec!["c1", "2026-01-02", "VOICE", "true"];
        full.extend(std::iter::repeat_n("", COLUMNS.len() - 4));
        full[column("transcript")] = "hello there";
        full[column("source_key")] = "k1";
        bytes.extend(encode_record(full.clone()));
        full[column("transcript")] = "  ";
        bytes.extend(encode_record(full));
        bytes.extend(encode_record(["short", "row"]));
        let p = parse_rows(&bytes, true).unwrap();
        assert_eq!((p.read, p.skipped, p.rows.len()), (3, 2, 1));
        assert_eq!(p.rows[0].source_key, "k1");
        assert_eq!(p.rows[0].transcript, "hello there");
    }

    #[test]
    fn parts_have_one_header_and_the_transcript_only_when_asked() {
        let row = LabeledRow {
            contact_id: "c".into(),
            contact_date: "2026-01-02".into(),
            channel: "VOICE".into(),
            redacted: "true".into(),
            source_key: "k".into(),
            transcript: "a, \"b\"".into(),
        };
        let label = Label {
            label: "billing".into(),
            score: 0.5,
            scores: None,
        };
        let plain = String::from_utf8(encode_part(
            std::slice::from_ref(&row),
            std::slice::from_ref(&label),
            "m",
            false,
        ))
        .unwrap();
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines[0], LABELED_COLUMNS.join(","));
        assert!(lines[1].starts_with("c,2026-01-02,VOICE,true,k,billing,0.5,m,"));
        let with = String::from_utf8(encode_part(&[row], &[label], "m", true)).unwrap();
        assert!(with.lines().next().unwrap().ends_with(",transcript"));
        assert!(with.lines().nth(1).unwrap().ends_with(",\"a, \"\"b\"\"\""));
    }
}
