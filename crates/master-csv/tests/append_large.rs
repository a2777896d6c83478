//! The large-master path (markers and checkpoint) under contention and crashes, on the local
//! store, whose conditional writes answer like S3's (412 on a lost compare-and-swap). After
//! every scenario the invariants are checked, not only the census.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_sound, ids, row, rows, KEY};
use master_csv::{append_rows, check_invariants, Row, LARGE_OBJECT_BYTES};
use store::cas::RetryPolicy;
use store::{CountingStore, CrashAfter, LocalStore, ObjectStore};

fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1_000,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    }
}

/// Rows that make a master just past [`LARGE_OBJECT_BYTES`]: 6 rows of ~880 kB (few rows, so
/// that the first large append has few markers to write and crash at).
fn large_seed() -> Vec<Row> {
    rows("old", 6, (LARGE_OBJECT_BYTES / 6 + 3_000) as usize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_appenders_on_a_large_master_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let seed = large_seed();
    let o = append_rows(&s, KEY, &seed, &patient()).await.unwrap();
    assert!(o.master_bytes > LARGE_OBJECT_BYTES, "{}", o.master_bytes);
    let mut want = ids(&seed);

    // Round one switches the master to the large path under contention; round two is the
    // steady state. Every contact is sent by three appenders, and some old ones come again.
    const WRITERS: usize = 16;
    for round in ["first", "second"] {
        let mut tasks = Vec::new();
        for i in 0..WRITERS {
            let batch: Vec<Row> = [i, (i + 1) % WRITERS, (i + 5) % WRITERS]
                .iter()
                .map(|j| row(&format!("{round}-{j}"), "t"))
                .chain([row(&format!("old-{}", i % seed.len()), "again")])
                .collect();
            want.extend(ids(&batch));
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                append_rows(&s, KEY, &batch, &patient()).await.unwrap()
            }));
        }
        let mut appended = 0;
        for t in tasks {
            appended += t.await.unwrap().appended;
        }
        assert_eq!(appended, WRITERS, "{round} round: rows written");
        assert_sound(&s, KEY, &want, &format!("{round} round")).await;
    }
}

/// A master as a test needs it before the crashing append: built once, copied per run.
struct Scenario {
    name: &'static str,
    template: tempfile::TempDir,
    before: BTreeSet<String>,
    batch: Vec<Row>,
}

impl Scenario {
    async fn new(name: &'static str, seeds: &[Vec<Row>], batch: Vec<Row>) -> Arc<Self> {
        let template = tempfile::tempdir().unwrap();
        let s = LocalStore::new(template.path()).unwrap();
        let mut before = BTreeSet::new();
        for seed in seeds {
            append_rows(&s, KEY, seed, &patient()).await.unwrap();
            before.extend(ids(seed));
        }
        Arc::new(Self {
            name,
            template,
            before,
            batch,
        })
    }

    fn fresh(&self) -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(self.template.path(), dir.path());
        let s = LocalStore::new(dir.path()).unwrap();
        (dir, s)
    }

    /// Crashes the append of the batch at every store call, before the call ("it never
    /// landed") and after it ("it landed, the reply was lost"); then redelivers the batch and
    /// sends a new one. Every state in between keeps the invariants.
    async fn crash_everywhere(self: Arc<Self>) {
        let p = patient();
        let (_probe_dir, probe) = self.fresh();
        let counting = CountingStore::new(probe);
        append_rows(&counting, KEY, &self.batch, &p).await.unwrap();
        let total = counting.stats().calls();
        assert!(total >= 3, "{}: {total} calls", self.name);

        let after: BTreeSet<String> = self.before.union(&ids(&self.batch)).cloned().collect();
        let next = vec![row("next-0", "n"), self.batch[0].clone()];
        let last: BTreeSet<String> = after.union(&ids(&next)).cloned().collect();
        let runs: Vec<(bool, u64)> = [false, true]
            .into_iter()
            .flat_map(|lose_reply| (1..=total).map(move |n| (lose_reply, n)))
            .collect();
        let expected = Arc::new((after, next, last));
        // Runs are independent (a directory each): half of them on each of two tasks.
        let mut halves = Vec::new();
        for half in 0..2 {
            let (scenario, expected) = (self.clone(), expected.clone());
            let mine: Vec<(bool, u64)> = runs.iter().copied().skip(half).step_by(2).collect();
            halves.push(tokio::spawn(async move {
                for (lose_reply, n) in mine {
                    scenario.crash_at(n, lose_reply, total, &expected).await;
                }
            }));
        }
        for h in halves {
            h.await.unwrap();
        }
    }

    /// One run of [`Scenario::crash_everywhere`]; `expected` is the census after the
    /// redelivery, the new batch, and the census after it.
    async fn crash_at(
        &self,
        n: u64,
        lose_reply: bool,
        total: u64,
        expected: &(BTreeSet<String>, Vec<Row>, BTreeSet<String>),
    ) {
        let (after, next, last) = expected;
        let p = patient();
        let context = format!(
            "{}: crash at call {n}/{total}, lose_reply={lose_reply}",
            self.name
        );
        let (_dir, s) = self.fresh();
        let mut crashing = CrashAfter::new(s.clone(), n);
        if lose_reply {
            crashing = crashing.losing_reply();
        }
        let _ = append_rows(&crashing, KEY, &self.batch, &p).await;
        assert!(crashing.crashed(), "{context}");
        let violations = check_invariants(&s, KEY).await.unwrap();
        assert!(
            violations.is_empty(),
            "{context}, after the crash: {violations:?}"
        );

        let o = append_rows(&s, KEY, &self.batch, &p).await.unwrap();
        assert_eq!(o.appended + o.duplicates, self.batch.len(), "{context}");
        assert_sound(&s, KEY, after, &format!("{context}, redelivered")).await;
        append_rows(&s, KEY, next, &p).await.unwrap();
        assert_sound(&s, KEY, last, &format!("{context}, then a new batch")).await;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The batch: one contact the master already holds (a redelivery) and two new ones.
fn batch_with(old: &str) -> Vec<Row> {
    vec![row(old, "again"), row("new-0", "a"), row("new-1", "b")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_the_rewrite_of_a_small_master_loses_and_doubles_nothing() {
    Scenario::new("small rewrite", &[rows("old", 5, 200)], batch_with("old-2"))
        .await
        .crash_everywhere()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_the_first_switch_to_the_large_path_loses_and_doubles_nothing() {
    let s = Scenario::new("first large append", &[large_seed()], batch_with("old-3")).await;
    let (_d, probe) = s.fresh();
    let state = master_csv::append::state_prefix(KEY);
    assert!(
        probe.list(&state).await.unwrap().is_empty(),
        "no markers yet"
    );
    s.crash_everywhere().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_steady_large_append_loses_and_doubles_nothing() {
    let warm = vec![row("warm", "w")];
    Scenario::new(
        "steady large append",
        &[large_seed(), warm],
        batch_with("old-4"),
    )
    .await
    .crash_everywhere()
    .await;
}
