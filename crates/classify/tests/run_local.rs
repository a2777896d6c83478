//! The classify core on the local-directory store with a keyword classifier: exactly-once
//! labeling across appends, partial lines, crashes at every store call, transient classifier
//! failures, overlapping runs and the look-back window. The crash and overlap tests also run
//! with the model in-process (embedded mode: the tiny BERT from `../shared/parity`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use classify::{
    run, watermark_key, Classifier, ClassifyError, Label, ModelClassifier, Settings,
    LABELED_COLUMNS,
};
use master_csv::encode::{encode_rows, header};
use master_csv::{Layout, Row};
use store::{
    Call, Condition, CrashAfter, Hook, Hooked, LocalStore, Method, ObjectStore, StoreError, Then,
};

mod common;
use common::{append, master, master_size, row, today, watermark, TODAY};

/// Labels by keyword; counts texts; can be told to fail transiently.
#[derive(Default)]
struct Keywords {
    texts: AtomicU64,
    calls: AtomicU64,
    fail: AtomicBool,
    /// Fail transiently for any batch holding a text with this word.
    poison: Option<String>,
}

impl Classifier for Keywords {
    fn name(&self) -> &str {
        "keywords-v1"
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        let poisoned = self
            .poison
            .as_ref()
            .is_some_and(|p| texts.iter().any(|t| t.contains(p.as_str())));
        if self.fail.load(Ordering::SeqCst) || poisoned {
            return Err(ClassifyError::Transient(
                "HTTP 429 ThrottlingException".into(),
            ));
        }
        self.texts.fetch_add(texts.len() as u64, Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let label = if t.contains("bill") {
                    "billing"
                } else if t.contains("cancel") {
                    "cancellation"
                } else {
                    "other"
                };
                Label {
                    label: label.into(),
                    score: 0.9,
                    scores: None,
                }
            })
            .collect())
    }
}

/// The embedded classifier over the tiny BERT, or `None` (skip) outside CI without `../shared`.
fn tiny_model() -> Option<ModelClassifier> {
    let dir = testdata::shared("parity/tiny-bert")?;
    Some(ModelClassifier::load(&dir).expect("the tiny BERT loads"))
}

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    (dir, s)
}

fn settings() -> Settings {
    Settings::default()
}

/// Appends raw bytes to a master (creating it with its header if needed).
async fn append_bytes<S: ObjectStore>(s: &S, date: &str, bytes: &[u8]) {
    let key = master(date);
    let mut body = match s.get(&key).await.unwrap() {
        Some(o) => o.body,
        None => header(),
    };
    body.extend_from_slice(bytes);
    s.put(&key, body, Condition::None).await.unwrap();
}

/// Every labeled row of a partition, `(part key, record)`, checking one header per part.
async fn labeled<S: ObjectStore>(s: &S, date: &str) -> Vec<(String, HashMap<String, String>)> {
    let prefix = format!("calltype/labeled/date={date}/");
    let mut out = Vec::new();
    for meta in s.list(&prefix).await.unwrap() {
        let body = s.get(&meta.key).await.unwrap().unwrap().body;
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.starts_with(&LABELED_COLUMNS.join(",")), "{}", meta.key);
        assert_eq!(text.matches("contact_id,contact_date").count(), 1);
        let mut r = csv::Reader::from_reader(body.as_slice());
        let headers = r.headers().unwrap().clone();
        for rec in r.records() {
            let rec = rec.unwrap();
            let m = headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            out.push((meta.key.clone(), m));
        }
    }
    out
}

/// Asserts that each of `ids` is labeled exactly once in `date`, and nothing else is.
async fn assert_labeled_once<S: ObjectStore>(s: &S, date: &str, ids: &[&str]) {
    let rows = labeled(s, date).await;
    let mut got: Vec<String> = rows.iter().map(|(_, r)| r["contact_id"].clone()).collect();
    got.sort();
    let mut want: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "labeled rows of {date}");
}

#[tokio::test]
async fn it_labels_rows_appended_in_two_steps_exactly_once() {
    let (_d, s) = store();
    let c = Keywords::default();
    append(
        &s,
        TODAY,
        &[
            row(TODAY, "c1", "my bill is wrong"),
            row(TODAY, "c2", "cancel it"),
        ],
    )
    .await;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.parts_written
        ),
        (2, 2, 1)
    );
    assert!(!r.failed());

    append(
        &s,
        TODAY,
        &[
            row(TODAY, "c3", "hello, \"world\"\nagain"),
            row(TODAY, "c4", "bill"),
        ],
    )
    .await;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.parts_written
        ),
        (2, 2, 1)
    );

    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!((r.counts.rows_read, r.counts.parts_written), (0, 0));
    assert_eq!(c.texts.load(Ordering::SeqCst), 4);

    assert_labeled_once(&s, TODAY, &["c1", "c2", "c3", "c4"]).await;
    let rows = labeled(&s, TODAY).await;
    let by_id: HashMap<_, _> = rows
        .iter()
        .map(|(_, r)| (r["contact_id"].as_str(), r))
        .collect();
    assert_eq!(by_id["c1"]["label"], "billing");
    assert_eq!(by_id["c2"]["label"], "cancellation");
    assert_eq!(by_id["c3"]["label"], "other");
    assert_eq!(by_id["c1"]["model"], "keywords-v1");
    assert_eq!(by_id["c1"]["redacted"], "true");
    assert_eq!(
        by_id["c1"]["source_key"],
        "Analysis/Voice/Redacted/c1_analysis.json"
    );
    assert!(!by_id["c1"].contains_key("transcript"));

    let wm = watermark(&s, TODAY).await.unwrap();
    assert_eq!(wm.offset, master_size(&s, TODAY).await);
    assert_eq!(wm.pending, None);
    // Part names are the master's byte ranges, and they tile it.
    let parts = s
        .list(&format!("calltype/labeled/date={TODAY}/"))
        .await
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].key.contains("part-00000000000000000000-"));
    let first_to = parts[0]
        .key
        .rsplit('-')
        .next()
        .unwrap()
        .trim_end_matches(".csv")
        .to_string();
    assert!(parts[1].key.contains(&format!("part-{first_to}-")));
}

#[tokio::test]
async fn it_waits_for_a_partial_trailing_line() {
    let (_d, s) = store();
    let c = Keywords::default();
    let whole = encode_rows(&[
        row(TODAY, "c1", "bill"),
        row(TODAY, "c2", "cancel"),
        row(TODAY, "c3", "bill me"),
    ]);
    let cut = whole.len() - 7;
    append_bytes(&s, TODAY, &whole[..cut]).await;

    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 2);
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
    assert!(watermark(&s, TODAY).await.unwrap().offset < master_size(&s, TODAY).await);

    // Still partial: nothing happens.
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!((r.counts.rows_read, r.counts.parts_written), (0, 0));

    append_bytes(&s, TODAY, &whole[cut..]).await;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 1);
    assert_labeled_once(&s, TODAY, &["c1", "c2", "c3"]).await;
    let rows = labeled(&s, TODAY).await;
    assert!(rows
        .iter()
        .any(|(_, r)| r["contact_id"] == "c3" && r["label"] == "billing"));
}

/// Fails the `n`-th put of a watermark (1-based), as if the process died right there.
struct FailWatermarkPut {
    n: u64,
    seen: AtomicU64,
}

impl Hook for FailWatermarkPut {
    async fn before(&self, call: Call<'_>) -> store::Result<Then> {
        if call.method == Method::Put
            && call.key.ends_with("watermark.json")
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n
        {
            return Err(StoreError::Transient("injected crash".into()));
        }
        Ok(Then::Answer)
    }
}

#[tokio::test]
async fn a_crash_between_part_and_watermark_is_recovered_without_relabeling() {
    let (_d, s) = store();
    let c = Keywords::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "cancel")],
    )
    .await;
    // Put 1 claims the range, put 2 would advance the watermark: it dies.
    let crashing = Hooked::with(
        s.clone(),
        FailWatermarkPut {
            n: 2,
            seen: AtomicU64::new(0),
        },
    );
    let r = run(&crashing, &c, &settings(), today()).await.unwrap();
    assert!(r.failed());
    assert!(r
        .partitions
        .iter()
        .any(|p| p.transient && p.error.is_some()));
    assert_labeled_once(&s, TODAY, &["c1", "c2"]).await;
    let wm = watermark(&s, TODAY).await.unwrap();
    assert_eq!(wm.offset, 0);
    assert!(wm.pending.is_some());

    // The master grows meanwhile: the rerun must still find the old range's part.
    append(&s, TODAY, &[row(TODAY, "c3", "bill")]).await;
    let before = c.texts.load(Ordering::SeqCst);
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert!(!r.failed());
    assert_eq!(
        (
            r.counts.parts_recovered,
            r.counts.parts_written,
            r.counts.rows_labeled
        ),
        (1, 1, 1)
    );
    assert_eq!(
        c.texts.load(Ordering::SeqCst) - before,
        1,
        "only the new row is classified"
    );
    assert_labeled_once(&s, TODAY, &["c1", "c2", "c3"]).await;
    assert_eq!(
        watermark(&s, TODAY).await.unwrap().offset,
        master_size(&s, TODAY).await
    );
}

#[tokio::test]
async fn a_part_without_watermark_is_adopted_not_rewritten() {
    let (_d, s) = store();
    let c = Keywords::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "bill"), row(TODAY, "c2", "cancel")],
    )
    .await;
    run(&s, &c, &settings(), today()).await.unwrap();
    // As if the part had been written and the watermark never: remove the watermark.
    s.delete(&watermark_key(&Layout::default(), TODAY))
        .await
        .unwrap();
    append(&s, TODAY, &[row(TODAY, "c3", "bill")]).await;
    let before = c.texts.load(Ordering::SeqCst);
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!((r.counts.parts_recovered, r.counts.parts_written), (1, 1));
    assert_eq!(c.texts.load(Ordering::SeqCst) - before, 1);
    assert_labeled_once(&s, TODAY, &["c1", "c2", "c3"]).await;
}

#[tokio::test]
async fn a_crash_at_any_store_call_then_a_rerun_labels_every_row_once() {
    crash_at_every_store_call(&Keywords::default()).await;
}

#[tokio::test]
async fn embedded_a_crash_at_any_store_call_then_a_rerun_labels_every_row_once() {
    if let Some(c) = tiny_model() {
        crash_at_every_store_call(&c).await;
    }
}

/// Crashes the run at its n-th store call (the call done or its reply lost), for every n
/// until a run completes, then checks that a rerun labels every row once.
async fn crash_at_every_store_call<C: Classifier>(c: &C) {
    let small = Settings {
        max_part_bytes: 400, // about two rows per part: several parts per run
        ..settings()
    };
    let ids: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
    for lose_reply in [false, true] {
        for n in 1.. {
            let (_d, s) = store();
            let first: Vec<Row> = ids[..4].iter().map(|id| row(TODAY, id, "bill")).collect();
            append(&s, TODAY, &first).await;
            let mut crashing = CrashAfter::new(s.clone(), n);
            if lose_reply {
                crashing = crashing.losing_reply();
            }
            let r = run(&crashing, c, &small, today()).await.unwrap();
            let crashed = crashing.crashed();
            assert_eq!(r.failed(), crashed, "n={n} lose_reply={lose_reply}");

            let rest: Vec<Row> = ids[4..].iter().map(|id| row(TODAY, id, "cancel")).collect();
            append(&s, TODAY, &rest).await;
            let r = run(&s, c, &small, today()).await.unwrap();
            assert!(!r.failed(), "n={n}: {r:?}");
            let want: Vec<&str> = ids.iter().map(String::as_str).collect();
            assert_labeled_once(&s, TODAY, &want).await;
            assert_eq!(
                watermark(&s, TODAY).await.unwrap().offset,
                master_size(&s, TODAY).await
            );
            if !crashed {
                assert!(n > 5, "the run made too few store calls to test much");
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_transient_classifier_failure_leaves_the_watermark_and_others_proceed() {
    let (_d, s) = store();
    let c = Keywords {
        poison: Some("throttle-me".into()),
        ..Keywords::default()
    };
    let yesterday = "2026-11-19";
    append(
        &s,
        yesterday,
        &[
            row(yesterday, "y1", "bill"),
            row(yesterday, "y2", "throttle-me"),
        ],
    )
    .await;
    append(&s, TODAY, &[row(TODAY, "t1", "cancel")]).await;

    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert!(r.failed());
    assert_eq!(
        (
            r.failed_partitions,
            r.counts.rows_failed,
            r.counts.rows_labeled
        ),
        (1, 2, 1)
    );
    let failed = r.partitions.iter().find(|p| p.date == yesterday).unwrap();
    assert!(failed.transient);
    assert!(watermark(&s, yesterday).await.unwrap().offset == 0);
    assert!(labeled(&s, yesterday).await.is_empty());
    assert_labeled_once(&s, TODAY, &["t1"]).await;
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["failed_partitions"], 1);
    // The report names no transcript text.
    assert!(!json.to_string().contains("throttle-me"));

    // Everything failing: nothing moves.
    c.fail.store(true, Ordering::SeqCst);
    append(&s, TODAY, &[row(TODAY, "t2", "bill")]).await;
    let wm_before = watermark(&s, TODAY).await.unwrap().offset;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(r.failed_partitions, 2);
    assert_eq!(watermark(&s, TODAY).await.unwrap().offset, wm_before);

    // Healthy again: everything is labeled, once.
    let healthy = Keywords::default();
    let r = run(&s, &healthy, &settings(), today()).await.unwrap();
    assert!(!r.failed());
    assert_labeled_once(&s, yesterday, &["y1", "y2"]).await;
    assert_labeled_once(&s, TODAY, &["t1", "t2"]).await;
}

#[tokio::test]
async fn it_respects_the_lookback_window() {
    let (_d, s) = store();
    let c = Keywords::default();
    for (date, id) in [
        ("2026-11-20", "a"),
        ("2026-11-18", "b"),
        ("2026-11-17", "c"),
        ("2026-11-21", "future"),
    ] {
        append(&s, date, &[row(date, id, "bill")]).await;
    }
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(r.partitions.len(), 3);
    assert_eq!(r.counts.rows_labeled, 2);
    assert_labeled_once(&s, "2026-11-20", &["a"]).await;
    assert_labeled_once(&s, "2026-11-18", &["b"]).await;
    assert_labeled_once(&s, "2026-11-17", &[]).await;
    assert_labeled_once(&s, "2026-11-21", &[]).await;

    let wide = Settings {
        lookback_days: 4,
        ..settings()
    };
    let r = run(&s, &c, &wide, today()).await.unwrap();
    assert_eq!(r.counts.rows_labeled, 1);
    assert_labeled_once(&s, "2026-11-17", &["c"]).await;
}

#[tokio::test]
async fn it_appends_the_transcript_only_when_configured_and_skips_empty_ones() {
    let (_d, s) = store();
    let c = Keywords::default();
    append(
        &s,
        TODAY,
        &[row(TODAY, "c1", "my bill, \"again\""), row(TODAY, "c2", "")],
    )
    .await;
    let cfg = Settings {
        include_transcript: true,
        ..settings()
    };
    let r = run(&s, &c, &cfg, today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_labeled,
            r.counts.rows_skipped
        ),
        (2, 1, 1)
    );
    let rows = labeled(&s, TODAY).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1["transcript"], "my bill, \"again\"");
    let part = s.get(&rows[0].0).await.unwrap().unwrap().body;
    let head = String::from_utf8(part)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(head.ends_with(",labeled_at,transcript"));
}

#[tokio::test]
async fn overlapping_runs_label_every_row_once() {
    overlapping_runs(Keywords::default, Keywords::default).await;
}

#[tokio::test]
async fn embedded_overlapping_runs_label_every_row_once() {
    if let (Some(a), Some(b)) = (tiny_model(), tiny_model()) {
        overlapping_runs(|| a, || b).await;
    }
}

/// Two runs at once over one partition, each with its own classifier.
async fn overlapping_runs<C: Classifier>(one: impl FnOnce() -> C, two: impl FnOnce() -> C) {
    let (_d, s) = store();
    let small = Settings {
        max_part_bytes: 300,
        ..settings()
    };
    let ids: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
    let rows: Vec<Row> = ids.iter().map(|id| row(TODAY, id, "bill")).collect();
    append(&s, TODAY, &rows).await;
    let (c1, c2) = (one(), two());
    let (a, b) = tokio::join!(run(&s, &c1, &small, today()), run(&s, &c2, &small, today()));
    assert!(!a.unwrap().failed());
    assert!(!b.unwrap().failed());
    let want: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_labeled_once(&s, TODAY, &want).await;
    assert_eq!(
        watermark(&s, TODAY).await.unwrap().offset,
        master_size(&s, TODAY).await
    );
}

#[tokio::test]
async fn a_bare_header_or_skipped_rows_write_no_part_but_move_the_watermark() {
    let (_d, s) = store();
    let c = Keywords::default();
    append_bytes(&s, TODAY, b"").await;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!((r.counts.rows_read, r.counts.parts_written), (0, 0));
    assert_eq!(
        watermark(&s, TODAY).await.unwrap().offset,
        master_size(&s, TODAY).await
    );
    append(&s, TODAY, &[row(TODAY, "c1", " ")]).await;
    let r = run(&s, &c, &settings(), today()).await.unwrap();
    assert_eq!(
        (
            r.counts.rows_read,
            r.counts.rows_skipped,
            r.counts.parts_written
        ),
        (1, 1, 0)
    );
    assert!(labeled(&s, TODAY).await.is_empty());
    append(&s, TODAY, &[row(TODAY, "c2", "bill")]).await;
    run(&s, &c, &settings(), today()).await.unwrap();
    assert_labeled_once(&s, TODAY, &["c2"]).await;
    assert_eq!(c.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_passed_deadline_starts_nothing_and_the_next_run_catches_up() {
    let (_d, s) = store();
    let c = Keywords::default();
    append(&s, TODAY, &[row(TODAY, "c1", "bill")]).await;
    let late = Settings {
        deadline: Some(std::time::Instant::now()),
        ..settings()
    };
    let r = run(&s, &c, &late, today()).await.unwrap();
    assert!(!r.failed());
    assert_eq!(r.counts.rows_read, 0);
    assert!(r.partitions.iter().any(|p| p.out_of_time));
    run(&s, &c, &settings(), today()).await.unwrap();
    assert_labeled_once(&s, TODAY, &["c1"]).await;
}
