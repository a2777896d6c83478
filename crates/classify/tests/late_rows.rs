//! Rows appended to a partition far outside the look-back window (a backfill, a DLQ redrive
//! days later) are found through ingest's touched-partition record and labeled, and the record
//! is removed once the partition has caught up, without losing an append that races with that.

use classify::{run, Settings};
use master_csv::{append_rows, touched, Layout, Row};
use store::cas::RetryPolicy;
use store::{Call, Hook, Hooked, LocalStore, Method, ObjectStore, Then};

mod common;
use common::{assert_labeled_once, master, row, today, watermark, Constant};

const LATE: &str = "2024-03-01";

/// What ingest does for a batch of one partition: the append, then the touched record.
async fn ingest<S: ObjectStore>(s: &S, date: &str, rows: &[Row]) {
    let o = append_rows(s, &master(date), rows, &RetryPolicy::default())
        .await
        .unwrap();
    touched::mark(
        s,
        &Layout::default(),
        date,
        o.master_bytes,
        "2026-11-20T10:00:00Z",
    )
    .await
    .unwrap();
}

async fn touched_dates<S: ObjectStore>(s: &S) -> Vec<String> {
    touched::list(s, &Layout::default()).await.unwrap()
}

#[tokio::test]
async fn rows_of_a_partition_older_than_the_lookback_are_labeled_and_the_record_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    ingest(
        &s,
        LATE,
        &[row(LATE, "a", "bill"), row(LATE, "b", "cancel")],
    )
    .await;
    assert_eq!(touched_dates(&s).await, [LATE]);

    let r = run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert!(!r.failed(), "{r:?}");
    assert_eq!(r.counts.rows_labeled, 2);
    assert_labeled_once(&s, LATE, &["a", "b"]).await;
    assert!(touched_dates(&s).await.is_empty(), "caught up: no record");

    // A redrive a week later appends one more row to the same old partition.
    ingest(&s, LATE, &[row(LATE, "c", "bill")]).await;
    let r = run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert_eq!(r.counts.rows_labeled, 1);
    assert_labeled_once(&s, LATE, &["a", "b", "c"]).await;
    assert!(touched_dates(&s).await.is_empty());

    // With nothing new, the old partition is not looked at again.
    let r = run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert!(r.partitions.iter().all(|p| p.date != LATE));
}

/// A store on which an ingest of one row lands just before classify removes the touched
/// record of [`LATE`]: after classify saw the partition caught up, and after ingest's own
/// record write, which the removal then undoes.
struct RaceOnDelete {
    inner: LocalStore,
    raced: std::sync::atomic::AtomicBool,
}

impl Hook for RaceOnDelete {
    async fn before(&self, call: Call<'_>) -> store::Result<Then> {
        if call.method == Method::Delete
            && call.key == Layout::default().touched(LATE)
            && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            ingest(&self.inner, LATE, &[row(LATE, "late", "bill")]).await;
        }
        Ok(Then::Answer)
    }
}

#[tokio::test]
async fn an_append_racing_with_the_records_removal_keeps_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::new(dir.path()).unwrap();
    let s = Hooked::with(
        local.clone(),
        RaceOnDelete {
            inner: local,
            raced: Default::default(),
        },
    );
    ingest(&s, LATE, &[row(LATE, "a", "bill")]).await;
    run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert!(s.hook().raced.load(std::sync::atomic::Ordering::SeqCst));
    assert_labeled_once(&s, LATE, &["a"]).await;
    assert_eq!(
        touched_dates(&s).await,
        [LATE],
        "the racing append's row is unlabeled: its record must stay"
    );

    let r = run(&s, &Constant, &Settings::default(), today())
        .await
        .unwrap();
    assert_eq!(r.counts.rows_labeled, 1);
    assert_labeled_once(&s, LATE, &["a", "late"]).await;
    assert!(touched_dates(&s).await.is_empty());
    let size = s.head(&master(LATE)).await.unwrap().unwrap().size;
    assert_eq!(watermark(&s, LATE).await.unwrap().offset, size);
}

#[tokio::test]
async fn the_record_stays_while_rows_are_left() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    let rows: Vec<Row> = (0..5)
        .map(|i| row(LATE, &format!("r{i}"), "bill"))
        .collect();
    ingest(&s, LATE, &rows).await;
    // Two rows per part, and a deadline already passed after the first visit's claim: the
    // partition is left part-way, and its record must stay.
    let small = Settings {
        max_part_rows: 2,
        ..Settings::default()
    };
    let late = Settings {
        deadline: Some(std::time::Instant::now()),
        ..small.clone()
    };
    let r = run(&s, &Constant, &late, today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 0);
    assert_eq!(touched_dates(&s).await, [LATE]);
    run(&s, &Constant, &small, today()).await.unwrap();
    assert_labeled_once(&s, LATE, &["r0", "r1", "r2", "r3", "r4"]).await;
    assert!(touched_dates(&s).await.is_empty());
}
