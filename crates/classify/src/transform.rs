//! Batch-transform mode: the same claimed ranges and labeled parts as endpoint mode, labeled by
//! SageMaker batch transform jobs that outlive the run that starts them.
//!
//! [`TransformJobs`] is the control-plane port (create a job, describe it); the adapter over
//! `aws-sdk-sagemaker` is [`crate::SageMakerJobs`]. The data plane is S3: a job reads one
//! JSON Lines object (`{"inputs": "<transcript>"}` per row, `SplitType=Line`,
//! `BatchStrategy=MultiRecord`) and writes `<input basename>.out` with one answer per line, in
//! order (`AssembleWith=Line`).
//!
//! Per byte range `[from, to)` of a master, everything lives under
//! `state/transform/date=D/part-<from>-<to>/`: `job.json` (the [`JobRecord`]),
//! `input/rows.jsonl` and `output/<attempt>/rows.jsonl.out`. One step of a partition:
//!
//! 1. Claim a range in the watermark exactly as endpoint mode does ([`crate::pipeline`]). If
//!    its part exists already, clean its state up and move the watermark.
//! 2. No record: write the input, create the record with `If-None-Match: *`, check once more
//!    that no other run finished the range meanwhile, and create the job. The job name is a
//!    function of (job prefix, date, range, attempt) ([`job_name`]), so a rerun after a crash
//!    between record and job finds the same name: "already exists" counts as started, and a
//!    record whose job is not found gets its job created. The partition waits (`pending`).
//! 3. A record: describe its job. Running: the partition waits. Completed: read the output,
//!    join it line by line with the range's rows (the counts must agree), write the part with
//!    `If-None-Match: *`, delete the range's state (the record last) and move the watermark.
//!    An output that cannot be read while the part exists means an overlapping run joined the
//!    job first: the range is done.
//!    Failed or stopped: record attempt + 1 (compare-and-swap) and start a new job, up to
//!    [`TransformSettings::max_attempts`]; after that the partition fails with the job's
//!    `FailureReason` on every run, until the limit is raised.
//!
//! A range's part is written only from its own job's output and only with `If-None-Match: *`,
//! and the watermark moves only once the part exists, so a run that dies anywhere and is rerun
//! (or two runs that overlap) labels every row exactly once. Rows of a running job are reported
//! as `rows_pending`, and as read, labeled or skipped by the run that writes their part.

use std::borrow::Cow;
use std::future::Future;

use chrono::{NaiveDate, SecondsFormat, Utc};
use master_csv::Layout;
use serde::{Deserialize, Serialize};
use store::{Condition, ObjectStore, StoreError};

use crate::config::{Settings, TransformSettings};
use crate::endpoint::head_and_tail;
use crate::parts::{encode_part, LabeledRow};
use crate::pipeline::{run_mode, Mode, Pace, Step, Visit};
use crate::report::{PartitionReport, RunReport};
use crate::watermark::{ByteRange, Claim};
use crate::wire::WireFormat;
use crate::ClassifyError;

/// What a job is asked to do; the adapter adds the bucket, model and instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The job's name (see [`job_name`]).
    pub name: String,
    /// The key of the JSON Lines input object.
    pub input_key: String,
    /// The key prefix (ending in `/`) the job writes `<input basename>.out` under.
    pub output_prefix: String,
}

/// What [`TransformJobs::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new job was started.
    Started,
    /// A job of that name exists already (an earlier, interrupted run created it).
    AlreadyExists,
}

/// A job's state, as `DescribeTransformJob` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    InProgress,
    Stopping,
    Completed,
    Failed,
    Stopped,
}

/// What [`TransformJobs::describe`] knows of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub state: JobState,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
    /// The key of the object it reads, when the adapter can tell (a check against name
    /// collisions).
    pub input_key: Option<String>,
}

/// The batch-transform control plane.
pub trait TransformJobs: Send + Sync {
    /// The model the jobs run, written to the `model` column.
    fn model(&self) -> &str;

    /// Creates the job; a job of the same name counts as [`Created::AlreadyExists`].
    fn create(
        &self,
        job: &JobRequest,
    ) -> impl Future<Output = Result<Created, ClassifyError>> + Send;

    /// The job's status, or `None` when no job has that name.
    fn describe(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<JobStatus>, ClassifyError>> + Send;
}

/// The state object of one range's job (`job.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The current attempt's job.
    pub job_name: String,
    /// 1 for the first job of the range.
    pub attempt: u32,
    /// The master bytes the job labels.
    pub range: ByteRange,
    /// Rows in the job's input (the range's records with a transcript).
    pub rows: u64,
    pub input_key: String,
    /// The current attempt's output prefix.
    pub output_prefix: String,
    /// `job: reason` of each failed attempt, oldest first.
    #[serde(default)]
    pub failures: Vec<String>,
    /// When the record was written (RFC 3339), for people reading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// The state keys of one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    /// `state/transform/date=D/part-<from>-<to>/`: everything below is the range's.
    pub dir: String,
    /// `<dir>job.json`.
    pub record: String,
    /// `<dir>input/rows.jsonl`.
    pub input: String,
}

impl JobKeys {
    pub fn new(layout: &Layout, date: &str, range: ByteRange) -> Self {
        let dir = layout.transform_dir(date, range.from, range.to);
        Self {
            record: format!("{dir}job.json"),
            input: format!("{dir}input/rows.jsonl"),
            dir,
        }
    }

    /// Where attempt `attempt` writes its output.
    pub fn output_prefix(&self, attempt: u32) -> String {
        format!("{}output/{attempt}/", self.dir)
    }
}

/// Where SageMaker writes the output of `input_key`: `<output_prefix><basename>.out`.
pub fn output_key(output_prefix: &str, input_key: &str) -> String {
    let base = input_key.rsplit('/').next().unwrap_or(input_key);
    format!("{output_prefix}{base}.out")
}

/// The job name of `attempt` for bytes `range` of `date`'s master:
/// `<prefix><YYMMDD>-<hash>-<attempt>`, where the hash (28 bits of FNV-1a) covers the output
/// prefix, date and range. At most 17 characters follow the prefix, so a prefix of
/// [`TransformSettings::MAX_JOB_PREFIX`] characters keeps names within SageMaker's 63.
pub fn job_name(
    job_prefix: &str,
    layout: &Layout,
    date: &str,
    range: ByteRange,
    attempt: u32,
) -> String {
    let key = format!("{}\n{date}\n{}\n{}", layout.prefix(), range.from, range.to);
    let hash = fnv1a(key.as_bytes()) & 0x0fff_ffff;
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    let yymmdd = digits.get(2..).unwrap_or(&digits);
    format!("{job_prefix}{yymmdd}-{hash:07x}-{attempt}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The job input: one `{"inputs": "<transcript>"}` line per row. A transcript whose line would
/// not fit in one request of `max_payload_mb` MB is cut to its head and tail.
pub(crate) fn input_lines(rows: &[LabeledRow], max_payload_mb: u32) -> Vec<u8> {
    let f = WireFormat::JsonLines;
    let budget = (max_payload_mb.max(1) as usize) * 1_000_000;
    let mut out = Vec::new();
    for r in rows {
        let text = if f.encoded_len(&r.transcript) > budget {
            tracing::warn!(
                bytes = r.transcript.len(),
                "transcript longer than one request; cut to head and tail"
            );
            Cow::Owned(head_and_tail(f, &r.transcript, budget))
        } else {
            Cow::Borrowed(r.transcript.as_str())
        };
        out.extend_from_slice(&f.encode_request(&[&text]));
    }
    out
}

/// Labels what is new in each partition of the look-back window with batch transform jobs:
/// starts a job for new rows, and turns finished jobs into labeled parts. A partition whose
/// job runs reports it in `jobs_pending` and waits for a later run; a partition that fails is
/// left where it was and reported, and the others proceed.
pub async fn run<S: ObjectStore, J: TransformJobs>(
    store: &S,
    jobs: &J,
    cfg: &Settings,
    transform: &TransformSettings,
    today: NaiveDate,
) -> Result<RunReport, ClassifyError> {
    run_mode(store, &Transform { jobs, transform }, cfg, today).await
}

/// Batch-transform mode: a claimed range gets a job, and its part once the job completed.
struct Transform<'a, J> {
    jobs: &'a J,
    transform: &'a TransformSettings,
}

impl<J: TransformJobs> Mode for Transform<'_, J> {
    fn model(&self) -> &str {
        self.jobs.model()
    }

    fn pace(&self) -> Pace {
        Pace::ToDeadline
    }

    async fn label<S: ObjectStore>(
        &self,
        visit: &Visit<'_, S>,
        claim: Claim,
        part: &str,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        let keys = JobKeys::new(&visit.cfg.layout, visit.date, claim.range);
        let ctx = Ctx {
            v: visit,
            jobs: self.jobs,
            transform: self.transform,
        };
        match read_record(visit.store, &keys.record).await? {
            None => ctx.start(claim, part, &keys, p).await,
            Some((rec, etag)) => ctx.follow(claim, part, &keys, rec, etag, p).await,
        }
    }

    async fn found<S: ObjectStore>(
        &self,
        visit: &Visit<'_, S>,
        range: ByteRange,
    ) -> Result<(), ClassifyError> {
        clean_up(
            visit.store,
            &JobKeys::new(&visit.cfg.layout, visit.date, range),
        )
        .await
    }
}

/// What one range's step works with.
struct Ctx<'a, 'v, S, J> {
    v: &'a Visit<'v, S>,
    jobs: &'a J,
    transform: &'a TransformSettings,
}

impl<S: ObjectStore, J: TransformJobs> Ctx<'_, '_, S, J> {
    /// The range has no job yet: write its input and record, and start its first job.
    async fn start(
        &self,
        claim: Claim,
        part: &str,
        keys: &JobKeys,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        let ByteRange { from, to } = claim.range;
        let rows = self.v.rows(claim.range, claim.bytes).await?;
        if rows.rows.is_empty() {
            // Nothing to label (a bare header, or only skipped records): no job, no part.
            p.counts.rows_read += rows.read;
            p.counts.rows_skipped += rows.skipped;
            return Ok(Step::Finished);
        }
        let n = rows.rows.len() as u64;
        let input = input_lines(&rows.rows, self.transform.max_payload_mb);
        self.v
            .store
            .put(&keys.input, input, Condition::None)
            .await?;
        let rec = JobRecord {
            job_name: job_name(
                &self.transform.job_prefix,
                &self.v.cfg.layout,
                self.v.date,
                claim.range,
                1,
            ),
            attempt: 1,
            range: claim.range,
            rows: n,
            input_key: keys.input.clone(),
            output_prefix: keys.output_prefix(1),
            failures: Vec::new(),
            updated_at: None,
        };
        match write_record(self.v.store, &keys.record, &rec, Condition::IfNoneMatch).await {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed { .. }) => {
                // Another run recorded this range first; it starts the job.
                tracing::info!(
                    date = self.v.date,
                    from,
                    to,
                    "another run recorded this range's job"
                );
                p.counts.jobs_pending += 1;
                p.counts.rows_pending += n;
                return Ok(Step::Pending);
            }
            Err(e) => return Err(e.into()),
        }
        // A run that finished this range wrote its part before deleting its record: if the
        // part exists now, this range is done and must not get a second job.
        if self.v.store.head(part).await?.is_some() {
            p.counts.parts_recovered += 1;
            tracing::info!(date = self.v.date, from, to, part = %part, "part written by another run");
            clean_up(self.v.store, keys).await?;
            return Ok(Step::Finished);
        }
        self.create(&rec, p).await?;
        Ok(Step::Pending)
    }

    /// The range has a job: wait for it, join its output, or retry it.
    async fn follow(
        &self,
        claim: Claim,
        part: &str,
        keys: &JobKeys,
        rec: JobRecord,
        etag: String,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        if rec.range != claim.range || rec.input_key != keys.input {
            return Err(ClassifyError::Data {
                key: keys.record.clone(),
                reason: format!(
                    "the record is for {:?} reading {}, not {:?}",
                    rec.range, rec.input_key, claim.range
                ),
            });
        }
        let Some(status) = self.jobs.describe(&rec.job_name).await? else {
            // The record was written and the job never created: the run died in between.
            tracing::info!(job = %rec.job_name, "recorded job not found; creating it");
            self.create(&rec, p).await?;
            return Ok(Step::Pending);
        };
        if let Some(input) = status.input_key.as_deref() {
            if input != rec.input_key {
                return Err(ClassifyError::Permanent(format!(
                    "transform job {} reads {input}, not {}: job names collide",
                    rec.job_name, rec.input_key
                )));
            }
        }
        match status.state {
            JobState::InProgress | JobState::Stopping => {
                tracing::info!(
                    date = self.v.date,
                    job = %rec.job_name,
                    attempt = rec.attempt,
                    rows = rec.rows,
                    state = ?status.state,
                    "transform job still running"
                );
                p.counts.jobs_pending += 1;
                p.counts.rows_pending += rec.rows;
                Ok(Step::Pending)
            }
            JobState::Completed => self.join(claim, part, keys, &rec, p).await,
            JobState::Failed | JobState::Stopped => {
                let reason: String = status
                    .failure_reason
                    .unwrap_or_else(|| format!("{:?} without a reason", status.state))
                    .chars()
                    .take(500)
                    .collect();
                self.retry(keys, rec, etag, status.state, reason, p).await
            }
        }
    }

    /// The job completed: join its output with the range's rows and write the part.
    async fn join(
        &self,
        claim: Claim,
        part: &str,
        keys: &JobKeys,
        rec: &JobRecord,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        let ByteRange { from, to } = claim.range;
        let rows = self.v.rows(claim.range, claim.bytes).await?;
        let n = rows.rows.len() as u64;
        if n != rec.rows {
            p.counts.rows_failed += n;
            return Err(ClassifyError::Data {
                key: keys.record.clone(),
                reason: format!(
                    "bytes {from}..{to} hold {n} rows to label, job {} was given {}",
                    rec.job_name, rec.rows
                ),
            });
        }
        let labels = match self.output(rec).await.and_then(|out| {
            WireFormat::JsonLines
                .decode_response(&out, rows.rows.len())
                .map_err(|e| {
                    ClassifyError::Permanent(format!(
                        "output of transform job {}: {e}",
                        rec.job_name
                    ))
                })
        }) {
            Ok(l) => l,
            // An overlapping run joined this job first: it wrote the part, then deleted the
            // output this run went on to read.
            Err(_) if self.v.store.head(part).await?.is_some() => {
                p.counts.parts_recovered += 1;
                tracing::info!(date = self.v.date, from, to, part = %part, "part written by another run");
                clean_up(self.v.store, keys).await?;
                return Ok(Step::Finished);
            }
            Err(e) => {
                p.counts.rows_failed += n;
                return Err(e);
            }
        };
        let body = encode_part(
            &rows.rows,
            &labels,
            self.jobs.model(),
            self.v.cfg.include_transcript,
        );
        match self.v.store.put(part, body, Condition::IfNoneMatch).await {
            Ok(_) => {
                p.counts.parts_written += 1;
                p.counts.rows_labeled += n;
                tracing::info!(date = self.v.date, from, to, part = %part, job = %rec.job_name, rows = n, "part written from the transform output");
            }
            Err(StoreError::PreconditionFailed { .. }) => {
                p.counts.parts_recovered += 1;
                tracing::info!(date = self.v.date, from, to, part = %part, "part written by another run");
            }
            Err(e) => {
                p.counts.rows_failed += n;
                return Err(e.into());
            }
        }
        p.counts.rows_read += rows.read;
        p.counts.rows_skipped += rows.skipped;
        clean_up(self.v.store, keys).await?;
        Ok(Step::Finished)
    }

    /// The job failed or was stopped: start the next attempt, or fail with its reason.
    async fn retry(
        &self,
        keys: &JobKeys,
        rec: JobRecord,
        etag: String,
        state: JobState,
        reason: String,
        p: &mut PartitionReport,
    ) -> Result<Step, ClassifyError> {
        let max = self.transform.max_attempts.max(1);
        if rec.attempt >= max {
            p.counts.rows_failed += rec.rows;
            return Err(ClassifyError::Permanent(format!(
                "transform job {} {state:?} on attempt {} of {max}: {reason}",
                rec.job_name, rec.attempt
            )));
        }
        tracing::warn!(
            date = self.v.date,
            job = %rec.job_name,
            attempt = rec.attempt,
            max_attempts = max,
            state = ?state,
            reason = %reason,
            "transform job did not complete; starting the next attempt"
        );
        let attempt = rec.attempt + 1;
        let mut failures = rec.failures;
        failures.push(format!("{}: {reason}", rec.job_name));
        let next = JobRecord {
            job_name: job_name(
                &self.transform.job_prefix,
                &self.v.cfg.layout,
                self.v.date,
                rec.range,
                attempt,
            ),
            attempt,
            output_prefix: keys.output_prefix(attempt),
            failures,
            updated_at: None,
            ..rec
        };
        match write_record(self.v.store, &keys.record, &next, Condition::IfMatch(etag)).await {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed { .. }) | Err(StoreError::NotFound { .. }) => {
                // Another run moved the record first; it follows the range.
                p.counts.jobs_pending += 1;
                p.counts.rows_pending += next.rows;
                return Ok(Step::Pending);
            }
            Err(e) => return Err(e.into()),
        }
        self.create(&next, p).await?;
        Ok(Step::Pending)
    }

    /// Creates the recorded job; a job of that name already running counts as started.
    async fn create(&self, rec: &JobRecord, p: &mut PartitionReport) -> Result<(), ClassifyError> {
        let req = JobRequest {
            name: rec.job_name.clone(),
            input_key: rec.input_key.clone(),
            output_prefix: rec.output_prefix.clone(),
        };
        match self.jobs.create(&req).await? {
            Created::Started => {
                p.counts.jobs_started += 1;
                tracing::info!(date = self.v.date, job = %rec.job_name, attempt = rec.attempt, rows = rec.rows, "transform job started");
            }
            Created::AlreadyExists => {
                tracing::info!(date = self.v.date, job = %rec.job_name, attempt = rec.attempt, "transform job exists already; following it");
            }
        }
        p.counts.jobs_pending += 1;
        p.counts.rows_pending += rec.rows;
        Ok(())
    }

    /// The job's output: `<output prefix><input basename>.out`, else the only `.out` object
    /// below the output prefix.
    async fn output(&self, rec: &JobRecord) -> Result<Vec<u8>, ClassifyError> {
        let key = output_key(&rec.output_prefix, &rec.input_key);
        if let Some(o) = self.v.store.get(&key).await? {
            return Ok(o.body);
        }
        let outs: Vec<String> = self
            .v
            .store
            .list(&rec.output_prefix)
            .await?
            .into_iter()
            .map(|m| m.key)
            .filter(|k| k.ends_with(".out"))
            .collect();
        let [only] = outs.as_slice() else {
            return Err(ClassifyError::Data {
                key: rec.output_prefix.clone(),
                reason: format!(
                    "job {} completed with {} .out objects; expected {key}",
                    rec.job_name,
                    outs.len()
                ),
            });
        };
        self.v
            .store
            .get(only)
            .await?
            .map(|o| o.body)
            .ok_or_else(|| ClassifyError::Transient(format!("{only} vanished while read")))
    }
}

/// Reads a range's job record and its ETag.
async fn read_record<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Option<(JobRecord, String)>, ClassifyError> {
    match store.get(key).await? {
        None => Ok(None),
        Some(o) => {
            let rec = serde_json::from_slice(&o.body).map_err(|e| ClassifyError::Data {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
            Ok(Some((rec, o.etag)))
        }
    }
}

async fn write_record<S: ObjectStore>(
    store: &S,
    key: &str,
    rec: &JobRecord,
    condition: Condition,
) -> Result<String, StoreError> {
    let mut rec = rec.clone();
    rec.updated_at = Some(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
    let body = serde_json::to_vec(&rec).expect("a job record always serializes");
    store.put(key, body, condition).await
}

/// Deletes a finished range's state: input and outputs first, the record last, so that a run
/// dying halfway leaves a record behind and a rerun (which finds the part) finishes the job.
async fn clean_up<S: ObjectStore>(store: &S, keys: &JobKeys) -> Result<(), ClassifyError> {
    for o in store.list(&keys.dir).await? {
        if o.key != keys.record {
            store.delete(&o.key).await?;
        }
    }
    store.delete(&keys.record).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_deterministic_short_and_valid() {
        let l = Layout::default();
        let r = ByteRange { from: 0, to: 1234 };
        let a = job_name("calltype-", &l, "2026-11-20", r, 1);
        assert_eq!(a, job_name("calltype-", &l, "2026-11-20", r, 1));
        assert!(a.starts_with("calltype-261120-"), "{a}");
        assert!(a.ends_with("-1"));
        assert_ne!(a, job_name("calltype-", &l, "2026-11-20", r, 2));
        assert_ne!(
            a,
            job_name(
                "calltype-",
                &l,
                "2026-11-20",
                ByteRange { from: 0, to: 1235 },
                1
            )
        );
        assert_ne!(a, job_name("calltype-", &l, "2026-11-21", r, 1));
        assert_ne!(
            a,
            job_name("calltype-", &Layout::new("other"), "2026-11-20", r, 1)
        );
        let longest = "s".repeat(TransformSettings::MAX_JOB_PREFIX);
        let big = ByteRange {
            from: u64::MAX - 1,
            to: u64::MAX,
        };
        let n = job_name(
            &longest,
            &l,
            "2026-11-20",
            big,
            TransformSettings::MAX_ATTEMPTS,
        );
        assert!(n.len() <= 63, "{n}: {}", n.len());
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn keys_live_under_state_transform() {
        let k = JobKeys::new(
            &Layout::default(),
            "2026-11-20",
            ByteRange { from: 9, to: 100 },
        );
        let dir = "calltype/state/transform/date=2026-11-20/part-00000000000000000009-00000000000000000100/";
        assert_eq!(k.dir, dir);
        assert_eq!(k.record, format!("{dir}job.json"));
        assert_eq!(k.input, format!("{dir}input/rows.jsonl"));
        assert_eq!(k.output_prefix(2), format!("{dir}output/2/"));
        assert_eq!(
            output_key(&k.output_prefix(2), &k.input),
            format!("{dir}output/2/rows.jsonl.out")
        );
    }

    fn row(text: &str) -> LabeledRow {
        LabeledRow {
            contact_id: "c".into(),
            contact_date: "2026-11-20".into(),
            channel: "VOICE".into(),
            redacted: "true".into(),
            source_key: "k".into(),
            transcript: text.into(),
        }
    }

    #[test]
    fn input_has_one_line_per_row_and_long_texts_fit_one_request() {
        let big = format!("HEAD {} TAIL", "word \"q\"\n".repeat(200_000));
        let body = input_lines(&[row("a\nb"), row(&big), row("c")], 1);
        let lines: Vec<&[u8]> = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], br#"{"inputs":"a\nb"}"#);
        assert!(lines[1].len() < 1_000_000);
        let v: serde_json::Value = serde_json::from_slice(lines[1]).unwrap();
        let cut = v["inputs"].as_str().unwrap();
        assert!(cut.starts_with("HEAD ") && cut.ends_with(" TAIL"));
    }
}
