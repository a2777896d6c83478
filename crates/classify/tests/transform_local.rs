//! Batch-transform mode on the local-directory store with an in-memory control plane that runs
//! jobs when told to: exactly once across appends, crashes at every store call (with and
//! without the call landing), a lost create reply, overlapping runs, stopped jobs and ranges
//! with nothing to label.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use classify::transform::{output_key, run};
use classify::{
    ClassifyError, Created, JobRequest, JobState, JobStatus, Settings, TransformJobs,
    TransformSettings,
};
use common::*;
use store::{Call, CrashAfter, Hook, Hooked, LocalStore, Method, ObjectStore, Then};

/// SageMaker's control plane in memory; [`FakeJobs::run_jobs`] does what the jobs would.
#[derive(Default)]
struct FakeJobs {
    jobs: Mutex<BTreeMap<String, (JobRequest, JobState)>>,
    /// Jobs started (a name already in use does not count).
    started: AtomicU32,
    /// The next `create` lands but its answer is lost.
    lose_create_reply: AtomicBool,
    /// The next this many jobs run end `Failed` (or `Stopped` with `stop`).
    fail: AtomicU32,
    stop: AtomicBool,
}

impl TransformJobs for FakeJobs {
    fn model(&self) -> &str {
        "fake-model"
    }

    async fn create(&self, job: &JobRequest) -> Result<Created, ClassifyError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.contains_key(&job.name) {
            return Ok(Created::AlreadyExists);
        }
        jobs.insert(job.name.clone(), (job.clone(), JobState::InProgress));
        self.started.fetch_add(1, Ordering::SeqCst);
        if self.lose_create_reply.swap(false, Ordering::SeqCst) {
            return Err(ClassifyError::Transient("connection reset".into()));
        }
        Ok(Created::Started)
    }

    async fn describe(&self, name: &str) -> Result<Option<JobStatus>, ClassifyError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .get(name)
            .map(|(req, state)| JobStatus {
                state: *state,
                failure_reason: matches!(state, JobState::Failed)
                    .then(|| "AlgorithmError: the container exited".to_string()),
                input_key: Some(req.input_key.clone()),
            }))
    }
}

impl FakeJobs {
    /// Runs every job in progress: reads its input, writes `<input>.out` with keyword labels.
    async fn run_jobs<S: ObjectStore>(&self, s: &S) {
        let running: Vec<JobRequest> = self
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|(_, st)| *st == JobState::InProgress)
            .map(|(r, _)| r.clone())
            .collect();
        for req in running {
            let end = if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                if self.stop.load(Ordering::SeqCst) {
                    JobState::Stopped
                } else {
                    JobState::Failed
                }
            } else {
                let input = s.get(&req.input_key).await.unwrap().unwrap().body;
                let out = keyword_output(&input, 2);
                s.put(
                    &output_key(&req.output_prefix, &req.input_key),
                    out,
                    store::Condition::None,
                )
                .await
                .unwrap();
                JobState::Completed
            };
            self.jobs.lock().unwrap().get_mut(&req.name).unwrap().1 = end;
        }
    }

    fn started(&self) -> u32 {
        self.started.load(Ordering::SeqCst)
    }
}

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    (dir, s)
}

fn transform() -> TransformSettings {
    TransformSettings::new("fake-model")
}

/// Runs and lets the jobs finish until the partition is labeled to the master's end with no
/// job left; answers how many runs that took.
async fn drive<S: ObjectStore>(s: &S, jobs: &FakeJobs, cfg: &Settings) -> u32 {
    for n in 1..=20 {
        let r = run(s, jobs, cfg, &transform(), today()).await.unwrap();
        assert!(!r.failed(), "{r:?}");
        let done = watermark(s, TODAY)
            .await
            .is_some_and(|w| w.pending.is_none())
            && r.counts.jobs_pending == 0
            && watermark(s, TODAY).await.unwrap().offset == master_size(s, TODAY).await;
        if done {
            return n;
        }
        jobs.run_jobs(s).await;
    }
    panic!("not done after 20 runs");
}

#[tokio::test]
async fn it_starts_a_job_waits_for_it_and_labels_its_rows_once() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    append(
        &s,
        TODAY,
        &[
            row(TODAY, "c1", "my bill is wrong"),
            row(TODAY, "c2", "cancel it"),
            row(TODAY, "c3", ""),
        ],
    )
    .await;
    let cfg = Settings::default();
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.jobs_started,
            r.counts.jobs_pending,
            r.counts.rows_pending
        ),
        (1, 1, 2)
    );
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.parts_written
        ),
        (0, 0, 0)
    );
    assert_eq!(r.model, "fake-model");
    // The input has one record per row to label; the record names the job.
    let state = transform_state(&s).await;
    assert_eq!(state.len(), 2, "{state:?}");
    let input = s
        .get(state.iter().find(|k| k.ends_with("rows.jsonl")).unwrap())
        .await
        .unwrap()
        .unwrap()
        .body;
    assert_eq!(
        input,
        b"{\"inputs\":\"my bill is wrong\"}\n{\"inputs\":\"cancel it\"}\n"
    );

    // Still running: nothing moves, no second job.
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.jobs_started,
            r.counts.jobs_pending,
            r.counts.rows_labeled
        ),
        (0, 1, 0)
    );
    assert_eq!(watermark(&s, TODAY).await.unwrap().offset, 0);

    jobs.run_jobs(&s).await;
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.rows_skipped,
            r.counts.parts_written
        ),
        (3, 2, 1, 1)
    );
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (0, 0));
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
    let rows = labeled(&s, TODAY).await;
    assert_eq!(rows[0]["label"], "billing");
    assert_eq!(rows[1]["label"], "cancellation");
    assert_eq!(rows[0]["model"], "fake-model");
    assert_eq!(rows[0]["score"], "0.75");
    assert!(transform_state(&s).await.is_empty(), "state is cleaned up");
    let wm = watermark(&s, TODAY).await.unwrap();
    assert_eq!(
        (wm.offset, wm.pending),
        (master_size(&s, TODAY).await, None)
    );

    // New rows get a new job; old ones are never sent again.
    append(&s, TODAY, &[row(TODAY, "c4", "bill again")]).await;
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_eq!((r.counts.jobs_started, r.counts.rows_pending), (1, 1));
    jobs.run_jobs(&s).await;
    run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_labeled_once(&s, TODAY, &["c1", "c2", "c4"]).await;
    assert_eq!(jobs.started(), 2);
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.jobs_started,
            r.counts.jobs_pending
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_crash_at_any_store_call_then_reruns_label_every_row_once_with_one_job_per_range() {
    let small = Settings {
        max_part_bytes: 400, // about two rows per range: several jobs one after the other
        ..Settings::default()
    };
    let ids: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    for lose_reply in [false, true] {
        for n in 1.. {
            let (_d, s) = store();
            let jobs = FakeJobs::default();
            let first: Vec<_> = ids[..4].iter().map(|id| row(TODAY, id, "bill")).collect();
            append(&s, TODAY, &first).await;
            let mut crashing = CrashAfter::new(s.clone(), n);
            if lose_reply {
                crashing = crashing.losing_reply();
            }
            // Run (and let jobs finish) until the crash, or until all is done without one.
            for _ in 0..10 {
                let r = run(&crashing, &jobs, &small, &transform(), today())
                    .await
                    .unwrap();
                if crashing.crashed() {
                    assert!(r.failed(), "n={n}");
                    break;
                }
                assert!(!r.failed(), "n={n}: {r:?}");
                if r.counts.jobs_pending == 0 {
                    break;
                }
                jobs.run_jobs(&s).await;
            }
            let crashed = crashing.crashed();

            let rest: Vec<_> = ids[4..].iter().map(|id| row(TODAY, id, "cancel")).collect();
            append(&s, TODAY, &rest).await;
            drive(&s, &jobs, &small).await;
            let want: Vec<&str> = ids.iter().map(String::as_str).collect();
            assert_labeled_once(&s, TODAY, &want).await;
            let parts = s
                .list(&format!("calltype/labeled/date={TODAY}/"))
                .await
                .unwrap();
            assert_eq!(
                jobs.started() as usize,
                parts.len(),
                "n={n} lose_reply={lose_reply}: one job per labeled range"
            );
            assert!(transform_state(&s).await.is_empty(), "n={n}");
            if !crashed {
                assert!(n > 20, "the runs made too few store calls to test much");
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_lost_create_reply_is_followed_not_repeated() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    append(&s, TODAY, &[row(TODAY, "c1", "bill")]).await;
    jobs.lose_create_reply.store(true, Ordering::SeqCst);
    let cfg = Settings::default();
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert!(r.failed());
    assert!(r.partitions.iter().any(|p| p.transient));
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert!(!r.failed());
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (0, 1));
    jobs.run_jobs(&s).await;
    run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert_labeled_once(&s, TODAY, &["c1"]).await;
    assert_eq!(jobs.started(), 1);
}

#[tokio::test]
async fn stopped_and_failed_jobs_are_retried_then_surface_their_reason() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "x")],
    )
    .await;
    let cfg = Settings::default();
    let t = TransformSettings {
        max_attempts: 2,
        ..transform()
    };
    jobs.fail.store(2, Ordering::SeqCst);
    jobs.stop.store(true, Ordering::SeqCst);
    run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    jobs.run_jobs(&s).await; // attempt 1 is stopped
    let r = run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    assert_eq!((r.counts.jobs_started, r.counts.jobs_pending), (1, 1));
    jobs.run_jobs(&s).await; // attempt 2 is stopped too
    let r = run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    assert!(r.failed());
    assert_eq!(r.counts.rows_failed, 2);
    let err = r.partitions[2].error.clone().unwrap();
    assert!(err.contains("Stopped on attempt 2 of 2"), "{err}");
    assert!(!r.partitions[2].transient);
    // The failure is reported on every run until the limit is raised.
    let r = run(&s, &jobs, &cfg, &t, today()).await.unwrap();
    assert!(r.failed());
    assert_eq!(jobs.started(), 2);
    let more = TransformSettings {
        max_attempts: 3,
        ..t
    };
    let r = run(&s, &jobs, &cfg, &more, today()).await.unwrap();
    assert_eq!((r.counts.jobs_started, r.failed_partitions), (1, 0));
    jobs.run_jobs(&s).await;
    run(&s, &jobs, &cfg, &more, today()).await.unwrap();
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
}

#[tokio::test]
async fn overlapping_runs_start_one_job_and_label_every_row_once() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    let small = Settings {
        max_part_bytes: 300,
        ..Settings::default()
    };
    let ids: Vec<String> = (0..8).map(|i| format!("c{i:02}")).collect();
    let rows: Vec<_> = ids.iter().map(|id| row(TODAY, id, "bill")).collect();
    append(&s, TODAY, &rows).await;
    let t = transform();
    for _ in 0..30 {
        let (a, b) = tokio::join!(
            run(&s, &jobs, &small, &t, today()),
            run(&s, &jobs, &small, &t, today())
        );
        let a = a.unwrap();
        assert!(!a.failed(), "{:?}", a.partitions);
        let b = b.unwrap();
        assert!(!b.failed(), "{:?}", b.partitions);
        if watermark(&s, TODAY).await.unwrap().offset == master_size(&s, TODAY).await {
            break;
        }
        jobs.run_jobs(&s).await;
    }
    let want: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_labeled_once(&s, TODAY, &want).await;
    let parts = s
        .list(&format!("calltype/labeled/date={TODAY}/"))
        .await
        .unwrap();
    assert_eq!(jobs.started() as usize, parts.len());
}

/// A view of a store in which, just before this run reads a job's output, another run
/// (on the same store) finishes the range: writes its part and deletes the output.
struct Overtaken<'a> {
    inner: &'a LocalStore,
    jobs: &'a FakeJobs,
    cfg: &'a Settings,
    armed: AtomicBool,
}

impl Hook for Overtaken<'_> {
    async fn before(&self, call: Call<'_>) -> store::Result<Then> {
        if call.method == Method::Get
            && call.key.ends_with(".out")
            && self.armed.swap(false, Ordering::SeqCst)
        {
            let r = run(self.inner, self.jobs, self.cfg, &transform(), today())
                .await
                .unwrap();
            assert_eq!(r.partitions[2].counts.parts_written, 1);
        }
        Ok(Then::Answer)
    }
}

#[tokio::test]
async fn a_run_overtaken_while_it_reads_the_output_finds_the_part_and_moves_on() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    let cfg = Settings::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "x")],
    )
    .await;
    run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    jobs.run_jobs(&s).await;
    let view = Hooked::with(
        s.clone(),
        Overtaken {
            inner: &s,
            jobs: &jobs,
            cfg: &cfg,
            armed: AtomicBool::new(true),
        },
    );
    let r = run(&view, &jobs, &cfg, &transform(), today())
        .await
        .unwrap();
    assert!(
        !view.hook().armed.load(Ordering::SeqCst),
        "the output was never read"
    );
    assert!(!r.failed(), "{:?}", r.partitions[2]);
    assert_eq!(
        (
            r.partitions[2].counts.parts_written,
            r.partitions[2].counts.parts_recovered
        ),
        (0, 1)
    );
    assert_eq!(r.counts.rows_failed, 0);
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
    assert!(transform_state(&s).await.is_empty());
    assert_eq!(jobs.started(), 1);
}

#[tokio::test]
async fn ranges_with_nothing_to_label_start_no_job() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    append(&s, TODAY, &[row(TODAY, "c1", "  ")]).await;
    let r = run(&s, &jobs, &Settings::default(), &transform(), today())
        .await
        .unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_skipped,
            r.counts.jobs_started
        ),
        (1, 1, 0)
    );
    assert_eq!(jobs.started(), 0);
    assert_eq!(
        watermark(&s, TODAY).await.unwrap().offset,
        master_size(&s, TODAY).await
    );
    assert!(transform_state(&s).await.is_empty());
}

#[tokio::test]
async fn an_output_with_the_wrong_number_of_lines_fails_the_partition() {
    let (_d, s) = store();
    let jobs = FakeJobs::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "x")],
    )
    .await;
    let cfg = Settings::default();
    run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    // The job "completes" with one answer for two records.
    let (req, _) = jobs.jobs.lock().unwrap().values().next().unwrap().clone();
    s.put(
        &output_key(&req.output_prefix, &req.input_key),
        b"{\"label\":\"billing\",\"score\":0.5}\n".to_vec(),
        store::Condition::None,
    )
    .await
    .unwrap();
    jobs.jobs.lock().unwrap().get_mut(&req.name).unwrap().1 = JobState::Completed;
    let r = run(&s, &jobs, &cfg, &transform(), today()).await.unwrap();
    assert!(r.failed());
    assert_eq!((r.counts.rows_failed, r.counts.rows_labeled), (2, 0));
    assert!(r.partitions[2]
        .error
        .as_deref()
        .unwrap()
        .contains("1 answers for 2 inputs"));
    assert!(labeled(&s, TODAY).await.is_empty());
    assert_eq!(watermark(&s, TODAY).await.unwrap().offset, 0);
}
