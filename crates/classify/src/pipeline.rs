//! The classify pipeline: partitions → watermark → classifier → labeled parts.
//!
//! Every mode runs through one loop ([`run_mode`]): for each partition, claims on its
//! watermark ([`crate::watermark`]), and for each claimed range whose part does not exist yet,
//! the mode's [`Mode::label`]. One step of a partition:
//!
//! 1. Read the watermark (with its ETag). If it has a `pending` range, resume that range.
//!    Otherwise, if a part `part-<offset>-*` already exists, adopt its range; otherwise read
//!    the master from `offset` with a ranged GET, cut at the last `\n` (a partial last line
//!    waits for the next run) or after as many records as fit the time left
//!    ([`crate::watermark::claim_rows`]), and claim `[offset, to)` by writing it as `pending`
//!    with compare-and-swap. A lost race re-reads and resumes the winner's range.
//! 2. If `labeled/date=D/part-<from>-<to>.csv` exists, skip to 3. Otherwise the mode labels the
//!    range's rows and writes the part with `If-None-Match: *` (412: someone else wrote it),
//!    or answers that the labels come later ([`Step::Pending`]: batch transform).
//! 3. Move the watermark to `{"offset": to, "pending": null}` with compare-and-swap.
//!
//! The part's name is a function of the claimed byte range alone, so a run that dies anywhere
//! and is rerun (or two runs that overlap) writes each range at most once, and the watermark
//! never moves before its part exists: every row is labeled exactly once.

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{NaiveDate, SecondsFormat, Utc};
use store::{Condition, ObjectStore, StoreError};

use crate::config::Settings;
use crate::parts::{encode_part, parse_rows, LabeledRow, ParsedRows};
use crate::report::{PartitionReport, RunReport};
use crate::watermark::{
    advance, claim_rows, next_claim, read_range, read_watermark, ByteRange, Claim, Meter, Watermark,
};
use crate::{Classifier, ClassifyError, Label};

/// How a mode paces the claims of a partition visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The labels are made in the run: claims are sized to the visit's time left at the
    /// run's measured rate ([`claim_rows`]); the first claim is always made, and the visit
    /// stops once less than an eighth of its share of time is left (a smaller claim would
    /// make a small part for little progress).
    Measured,
    /// The labels are made outside the run (a batch transform job): claims as large as a part
    /// may be, until the visit's deadline.
    ToDeadline,
}

/// What a claimed range's step left to do.
pub(crate) enum Step {
    /// The labels come in a later run (a job is running): the partition waits.
    Pending,
    /// The range's part exists, or it had nothing to label: move the watermark.
    Finished,
}

/// One way of labeling a claimed range: in the run through a [`Classifier`] (endpoint and
/// embedded mode), or by batch transform jobs ([`crate::transform`]).
pub(crate) trait Mode {
    /// The model named in the run report and the parts.
    fn model(&self) -> &str;

    fn pace(&self) -> Pace;

    /// Labels the claimed range, whose part `part` did not exist when looked for. Adds what
    /// it did to `p`; on an error, the rows it could not label to `p.counts.rows_failed`.
    async fn label<S: ObjectStore>(
        &self,
        visit: &Visit<'_, S>,
        claim: Claim,
        part: &str,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError>;

    /// The range's part was found written (by an earlier or an overlapping run): tidy what
    /// the mode keeps for the range.
    async fn found<S: ObjectStore>(
        &self,
        _visit: &Visit<'_, S>,
        _range: ByteRange,
    ) -> Result<(), ClassifyError> {
        Ok(())
    }
}

/// One visit to one partition: the store, the settings with the visit's deadline, and the
/// partition's master as it was when the visit looked.
pub(crate) struct Visit<'a, S> {
    pub(crate) store: &'a S,
    pub(crate) cfg: &'a Settings,
    pub(crate) date: &'a str,
    pub(crate) master: String,
    pub(crate) wm_key: String,
    /// The master's size when the visit looked.
    pub(crate) size: u64,
}

impl<S: ObjectStore> Visit<'_, S> {
    /// The rows of a claimed range, from the bytes the claim read or from the master.
    pub(crate) async fn rows(
        &self,
        range: ByteRange,
        bytes: Option<Vec<u8>>,
    ) -> Result<ParsedRows, ClassifyError> {
        let ByteRange { from, to } = range;
        let bytes = match bytes {
            Some(b) => b,
            None => read_range(self.store, &self.master, from, to).await?,
        };
        parse_rows(&bytes, from == 0).map_err(|reason| ClassifyError::Data {
            key: self.master.clone(),
            reason: format!("bytes {from}..{to}: {reason}"),
        })
    }
}

/// Labels what is new in each partition through `classifier` (endpoint and embedded mode):
/// those of the look-back window (`cfg.lookback_days` days ending at `today`), those with a
/// touched record (rows appended whatever their date, see [`master_csv::touched`]) and, with
/// [`Settings::every_partition`], every master there is; oldest first. See [`run_mode`].
pub async fn run<S: ObjectStore, C: Classifier>(
    store: &S,
    classifier: &C,
    cfg: &Settings,
    today: NaiveDate,
) -> Result<RunReport, ClassifyError> {
    run_mode(store, &InRun(classifier), cfg, today).await
}

/// Runs `mode` on each partition. The run's time is shared between the partitions (see
/// [`for_each_partition`]) and, with [`Pace::Measured`], each claim is sized to the time it
/// has (see [`claim_rows`]). A partition that fails is left where it was and reported (with
/// [`RunReport::failed`]); the others proceed.
pub(crate) async fn run_mode<S: ObjectStore, M: Mode>(
    store: &S,
    mode: &M,
    cfg: &Settings,
    today: NaiveDate,
) -> Result<RunReport, ClassifyError> {
    let meter = Meter::new(cfg.prior_rows_per_sec);
    for_each_partition(store, cfg, today, mode, &meter).await
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

/// Visits each partition (the look-back window's and those [`listed`]) with `mode`, logs
/// what each visit did and adds it to the run's report; a failure is recorded and the next
/// partition proceeds.
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
async fn for_each_partition<S: ObjectStore, M: Mode>(
    store: &S,
    cfg: &Settings,
    today: NaiveDate,
    mode: &M,
    meter: &Meter,
) -> Result<RunReport, ClassifyError> {
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
                        let p = reports[j].get_or_insert_with(|| PartitionReport::new(&dates[j]));
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
            let mut p = PartitionReport::new(date);
            // Boxed: the visit's future is deep (store, classifier, SDK futures), and the
            // Lambda nests it in the runtime's own.
            let out = Box::pin(visit_partition(store, mode, &visit, meter, date, &mut p)).await;
            match out {
                Ok(()) => {
                    if p.master_bytes > 0 {
                        tracing::info!(
                            date = %date,
                            master_bytes = p.master_bytes,
                            from = p.watermark_before,
                            to = p.watermark_after,
                            rows_read = p.counts.rows_read,
                            rows_labeled = p.counts.rows_labeled,
                            rows_skipped = p.counts.rows_skipped,
                            parts_written = p.counts.parts_written,
                            parts_recovered = p.counts.parts_recovered,
                            jobs_started = p.counts.jobs_started,
                            jobs_pending = p.counts.jobs_pending,
                            rows_pending = p.counts.rows_pending,
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
                        rows_failed = p.counts.rows_failed,
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
        model: mode.model().to_string(),
        error: list_error,
        ..RunReport::default()
    };
    for (date, p) in dates.iter().zip(reports) {
        let mut p = p.unwrap_or_else(|| PartitionReport::new(date));
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
        rows_read = report.counts.rows_read,
        rows_labeled = report.counts.rows_labeled,
        rows_skipped = report.counts.rows_skipped,
        rows_failed = report.counts.rows_failed,
        parts_written = report.counts.parts_written,
        parts_recovered = report.counts.parts_recovered,
        jobs_started = report.counts.jobs_started,
        jobs_pending = report.counts.jobs_pending,
        rows_pending = report.counts.rows_pending,
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
    let (wm, _) = read_watermark(store, &layout.watermark(date)).await?;
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

/// One visit to a partition: claims, paced as `mode` says, until nothing is left or the
/// visit's time is spent; each claimed range is labeled by `mode` unless its part exists, and
/// the watermark moves past it once its part exists.
async fn visit_partition<S: ObjectStore, M: Mode>(
    store: &S,
    mode: &M,
    cfg: &Settings,
    meter: &Meter,
    date: &str,
    p: &mut PartitionReport,
) -> Result<(), ClassifyError> {
    let layout = &cfg.layout;
    let master = layout.master(date);
    let Some(meta) = store.head(&master).await? else {
        return Ok(());
    };
    p.master_bytes = meta.size;
    let visit = Visit {
        store,
        cfg,
        date,
        master,
        wm_key: layout.watermark(date),
        size: meta.size,
    };
    let pace = mode.pace();
    let visit_start = cfg.clock.now();
    let mut first = true;
    loop {
        let now = cfg.clock.now();
        if spent(pace, cfg, visit_start, now, first) {
            p.out_of_time = true;
            tracing::info!(
                date,
                watermark = p.watermark_after,
                "this visit's time is spent; the rest waits"
            );
            return Ok(());
        }
        let max_rows = match pace {
            Pace::Measured => Some(claim_rows(cfg, meter, now)),
            Pace::ToDeadline => None,
        };
        let (claim, offset) = next_claim(&visit, max_rows).await?;
        if first {
            p.watermark_before = offset;
            p.watermark_after = offset;
            first = false;
        }
        let Some(claim) = claim else {
            return Ok(());
        };
        let range = claim.range;
        let ByteRange { from, to } = range;
        let part = layout.part(date, from, to);
        if claim.part_exists || store.head(&part).await?.is_some() {
            p.counts.parts_recovered += 1;
            tracing::info!(date, from, to, part = %part, "part already written; moving the watermark only");
            mode.found(&visit, range).await?;
        } else {
            let read_before = p.counts.rows_read;
            let step = mode.label(&visit, claim, &part, p).await?;
            if pace == Pace::Measured {
                let took = cfg.clock.now().saturating_duration_since(now);
                meter.record(p.counts.rows_read - read_before, took);
            }
            if let Step::Pending = step {
                return Ok(());
            }
        }
        advance(store, cfg, &visit.wm_key, range).await?;
        p.watermark_after = to;
    }
}

/// Whether a visit that started at `visit_start` stops before its next claim, at `now`.
fn spent(pace: Pace, cfg: &Settings, visit_start: Instant, now: Instant, first: bool) -> bool {
    let Some(deadline) = cfg.deadline else {
        return false;
    };
    match pace {
        Pace::Measured if first => false,
        Pace::Measured => {
            let share = deadline.saturating_duration_since(visit_start);
            deadline.saturating_duration_since(now) < share / 8
        }
        Pace::ToDeadline => now >= deadline,
    }
}

/// Endpoint and embedded mode: a [`Classifier`] labels the claimed rows in the run.
struct InRun<'a, C>(&'a C);

impl<C: Classifier> Mode for InRun<'_, C> {
    fn model(&self) -> &str {
        self.0.name()
    }

    fn pace(&self) -> Pace {
        Pace::Measured
    }

    async fn label<S: ObjectStore>(
        &self,
        visit: &Visit<'_, S>,
        claim: Claim,
        part: &str,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        let ByteRange { from, to } = claim.range;
        let date = visit.date;
        let rows = visit.rows(claim.range, claim.bytes).await?;
        p.counts.rows_read += rows.read;
        p.counts.rows_skipped += rows.skipped;
        if rows.rows.is_empty() {
            // Nothing to label (a bare header, or only skipped records): no part, and
            // nothing that a rerun could label twice.
            return Ok(Step::Finished);
        }
        let n = rows.rows.len() as u64;
        let labels = match classify_all(self.0, visit.cfg, &rows.rows).await {
            Ok(l) => l,
            Err(e) => {
                p.counts.rows_failed += n;
                return Err(e);
            }
        };
        let body = encode_part(
            &rows.rows,
            &labels,
            self.0.name(),
            visit.cfg.include_transcript,
        );
        match visit.store.put(part, body, Condition::IfNoneMatch).await {
            Ok(_) => {
                p.counts.parts_written += 1;
                p.counts.rows_labeled += n;
                tracing::info!(date, from, to, part = %part, rows = n, "part written");
            }
            Err(StoreError::PreconditionFailed { .. }) => {
                // An overlapping run wrote the same range first; its rows count there.
                p.counts.parts_recovered += 1;
                tracing::info!(date, from, to, part = %part, "part written by another run");
            }
            Err(e) => {
                p.counts.rows_failed += n;
                return Err(e.into());
            }
        }
        Ok(Step::Finished)
    }
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
