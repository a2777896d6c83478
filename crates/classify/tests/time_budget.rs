//! Classify runs against a slow classifier and a Lambda-like deadline, on a clock the test
//! drives: every run must finish inside its time and move the watermark of every partition
//! that has rows left, however big the backlog, until every row is labeled exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use classify::{run, Classifier, ClassifyError, Clock, Label, RunReport, Settings};
use store::LocalStore;

mod common;
use common::{append, assert_labeled_once, master_size, row, today, watermark, TODAY};

/// A monotonic clock that only moves when told to.
#[derive(Clone)]
struct FakeTime {
    base: Instant,
    nanos: Arc<AtomicU64>,
}

impl FakeTime {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            nanos: Arc::default(),
        }
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    fn clock(&self) -> Clock {
        let t = self.clone();
        Clock::new(move || t.now())
    }
}

/// A CPU endpoint: each text takes `per_row` of the test's clock. Past `kill_at` the Lambda
/// is killed: the classifier signals it and never answers.
struct Slow {
    time: FakeTime,
    per_row: Duration,
    kill_at: Mutex<Option<Instant>>,
    killed: tokio::sync::Notify,
}

impl Classifier for Slow {
    fn name(&self) -> &str {
        "slow-cpu"
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        for _ in texts {
            self.time.advance(self.per_row);
            let kill_at = *self.kill_at.lock().unwrap();
            if kill_at.is_some_and(|k| self.time.now() > k) {
                self.killed.notify_one();
                std::future::pending::<()>().await;
            }
        }
        Ok(texts
            .iter()
            .map(|_| Label {
                label: "other".into(),
                score: 0.5,
                scores: None,
            })
            .collect())
    }
}

/// One scheduled run as the Lambda makes it: the core stops starting work at `soft`, and the
/// function is killed at `hard` (the timeout). `None`: the run was killed.
async fn lambda_run(s: &LocalStore, c: &Slow, soft: Duration, hard: Duration) -> Option<RunReport> {
    let start = c.time.now();
    *c.kill_at.lock().unwrap() = Some(start + hard);
    let cfg = Settings {
        deadline: Some(start + soft),
        clock: c.time.clock(),
        ..Settings::default()
    };
    tokio::select! {
        r = run(s, c, &cfg, today()) => Some(r.unwrap()),
        _ = c.killed.notified() => None,
    }
}

fn ids(prefix: &str, from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("{prefix}{i:05}")).collect()
}

#[tokio::test]
async fn a_backlog_bigger_than_a_run_advances_every_run_and_never_starves_a_newer_partition() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let time = FakeTime::new();
    // About 10 rows a second, as a CPU endpoint labels long calls.
    let c = Slow {
        time: time.clone(),
        per_row: Duration::from_millis(100),
        kill_at: Mutex::new(None),
        killed: tokio::sync::Notify::new(),
    };
    let old = "2026-11-19";
    // 3,000 rows: one claimed range today (well under CALLTYPE_MAX_PART_BYTES), 300 s of work
    // against a run that may work 60 s and is killed at 90 s.
    let backlog = ids("old", 0, 3000);
    let rows: Vec<_> = backlog
        .iter()
        .map(|id| row(old, id, "please check my bill"))
        .collect();
    append(&s, old, &rows).await;

    let mut new_ids = Vec::new();
    let mut runs = 0;
    loop {
        // The newer partition grows before every run, for the first ten runs.
        if runs < 10 {
            let more = ids(&format!("new{runs:02}-"), 0, 5);
            let rows: Vec<_> = more.iter().map(|id| row(TODAY, id, "cancel it")).collect();
            append(&s, TODAY, &rows).await;
            new_ids.extend(more);
        }
        let mut before = Vec::new();
        for date in [old, TODAY] {
            let offset = watermark(&s, date).await.map_or(0, |w| w.offset);
            before.push((date, offset, master_size(&s, date).await));
        }
        if before.iter().all(|&(_, offset, size)| offset >= size) {
            break;
        }
        runs += 1;
        assert!(runs <= 40, "still not caught up after 40 runs");
        let report = lambda_run(&s, &c, Duration::from_secs(60), Duration::from_secs(90)).await;
        let report = report.unwrap_or_else(|| panic!("run {runs} was killed at the timeout"));
        assert!(!report.failed(), "run {runs}: {report:?}");
        for (date, offset, size) in before {
            if offset < size {
                let after = watermark(&s, date).await.map_or(0, |w| w.offset);
                assert!(
                    after > offset,
                    "run {runs}: the watermark of {date} stayed at {offset} (master {size} bytes)"
                );
            }
        }
    }
    let backlog: Vec<&str> = backlog.iter().map(String::as_str).collect();
    assert_labeled_once(&s, old, &backlog).await;
    let new_ids: Vec<&str> = new_ids.iter().map(String::as_str).collect();
    assert_labeled_once(&s, TODAY, &new_ids).await;
}
