//! Appends on the local-directory store: encoding, exactly-once, and the large-master path.

mod common;

use common::{assert_sound, ids, row, KEY};
use master_csv::encode::{decode_rows, encode_record, header};
use master_csv::{append_rows, Row, COLUMNS, LARGE_OBJECT_BYTES};
use store::cas::RetryPolicy;
use store::{LocalStore, ObjectStore};

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::new(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn it_quotes_per_rfc4180_and_never_writes_cr_or_lf_inside_a_field() {
    let rec = encode_record(["a,b", "say \"hi\"", "line1\r\nline2\nline3", "plain", "ünï"]);
    assert_eq!(
        String::from_utf8(rec).unwrap(),
        "\"a,b\",\"say \"\"hi\"\"\",line1  line2 line3,plain,ünï\n"
    );
    let h = String::from_utf8(header()).unwrap();
    assert_eq!(h.trim_end(), COLUMNS.join(","));
    assert!(h.starts_with("contact_id,"));
}

#[tokio::test]
async fn it_creates_the_master_with_one_header_and_appends_each_contact_once() {
    let (_d, s) = store();
    let p = RetryPolicy::default();
    let o = append_rows(
        &s,
        KEY,
        &[
            row("c1", "AGENT: hello, \"quoted\"\nCUSTOMER: hi"),
            row("c2", "x"),
        ],
        &p,
    )
    .await
    .unwrap();
    assert_eq!((o.appended, o.duplicates), (2, 0));
    let o = append_rows(
        &s,
        KEY,
        &[row("c2", "x"), row("c3", "y"), row("c3", "y")],
        &p,
    )
    .await
    .unwrap();
    assert_eq!((o.appended, o.duplicates), (1, 2));
    let body = s.get(KEY).await.unwrap().unwrap().body;
    let text = String::from_utf8(body.clone()).unwrap();
    assert_eq!(text.matches("contact_id,contact_date").count(), 1);
    assert_eq!(
        text.lines().count(),
        4,
        "header + 3 rows, no embedded newlines"
    );
    let rows = decode_rows(&body).unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.contact_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(rows[0].transcript, "AGENT: hello, \"quoted\" CUSTOMER: hi");
    assert_eq!(rows[0].sentiment_customer, Some(-1.5));
    assert_eq!(rows[0].sentiment_agent, None);
}

/// Another analysis of `r`'s contact: `redacted` copy, analysed at `ts`.
fn reanalysis(r: &Row, redacted: bool, ts: &str) -> Row {
    let mut other = r.clone();
    other.redacted = redacted;
    other.transcript = format!("{} (again)", r.transcript);
    let (dir, name) = if redacted {
        ("Redacted/", "analysis_redacted")
    } else {
        ("", "analysis")
    };
    other.source_key = format!(
        "Analysis/Voice/{dir}2026/11/20/{}_{name}_{ts}.json",
        r.contact_id
    );
    other
}

/// Appends a second analysis of every contact in `firsts` (the other copy for even ones, a
/// later timestamp for odd ones) and a redelivery of one, and checks that none is appended and
/// each is reported with the file that was kept.
async fn it_keeps_the_first_analysis_of_each_contact(s: &LocalStore, firsts: &[Row]) {
    let p = RetryPolicy::default();
    let before = decode_rows(&s.get(KEY).await.unwrap().unwrap().body).unwrap();
    let mut batch: Vec<Row> = firsts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i % 2 == 0 {
                reanalysis(r, !r.redacted, "2026-11-20T10:00:00Z")
            } else {
                reanalysis(r, r.redacted, "2026-11-20T23:59:59Z")
            }
        })
        .collect();
    batch.push(firsts[0].clone());
    let o = append_rows(s, KEY, &batch, &p).await.unwrap();
    assert_eq!(
        (o.appended, o.superseded, o.duplicates),
        (0, firsts.len(), 1)
    );
    for (r, first) in batch.iter().zip(firsts.iter().chain([&firsts[0]])) {
        let skipped = o
            .skipped
            .iter()
            .find(|k| k.source_key == r.source_key)
            .unwrap();
        assert_eq!(skipped.kept.as_deref(), Some(first.source_key.as_str()));
    }
    let after = decode_rows(&s.get(KEY).await.unwrap().unwrap().body).unwrap();
    assert_eq!(after, before, "the master is unchanged");
}

#[tokio::test]
async fn it_appends_one_row_per_contact_whatever_the_copy_or_the_analysis() {
    let (_d, s) = store();
    let p = RetryPolicy::default();
    let mut raw = row("c2", "raw text");
    raw.redacted = false;
    raw.source_key = "Analysis/Voice/2026/11/20/c2_analysis_2026-11-20T09:00:00Z.json".into();
    let firsts = [row("c1", "x"), raw];
    // Within one batch, the first analysis of a contact wins too.
    let mut batch = firsts.to_vec();
    batch.push(reanalysis(&firsts[0], false, "2026-11-20T10:00:00Z"));
    let o = append_rows(&s, KEY, &batch, &p).await.unwrap();
    assert_eq!((o.appended, o.superseded, o.duplicates), (2, 1, 0));
    it_keeps_the_first_analysis_of_each_contact(&s, &firsts).await;
}

#[tokio::test]
async fn it_appends_one_row_per_contact_on_the_large_path_too() {
    let (_d, s) = store();
    let p = RetryPolicy::default();
    let big = "word ".repeat(2_000);
    let mut rows: Vec<Row> = (0..600).map(|i| row(&format!("big-{i}"), &big)).collect();
    for r in rows.iter_mut().step_by(3) {
        *r = reanalysis(r, false, "2026-11-20T08:00:00Z");
    }
    append_rows(&s, KEY, &rows, &p).await.unwrap();
    // The first large append marks the whole master; the second reads only markers.
    let firsts = [
        rows[0].clone(),
        rows[1].clone(),
        rows[3].clone(),
        rows[4].clone(),
    ];
    let o = append_rows(&s, KEY, &[row("new-1", "n")], &p)
        .await
        .unwrap();
    assert_eq!(o.appended, 1);
    it_keeps_the_first_analysis_of_each_contact(&s, &firsts).await;
    // And again with the rows past a lost checkpoint, read from the master's tail.
    let state = master_csv::append::state_prefix(KEY);
    s.delete(&format!("{state}checkpoint")).await.unwrap();
    it_keeps_the_first_analysis_of_each_contact(&s, &firsts).await;
}

#[tokio::test]
async fn it_appends_past_the_large_threshold_without_duplicates_even_after_a_lost_checkpoint() {
    let (_d, s) = store();
    let p = RetryPolicy::default();
    let big = "word ".repeat(2_000); // ~10 KB per row
    let rows: Vec<Row> = (0..600).map(|i| row(&format!("big-{i}"), &big)).collect();
    let o = append_rows(&s, KEY, &rows, &p).await.unwrap();
    assert!(o.master_bytes >= LARGE_OBJECT_BYTES, "{}", o.master_bytes);
    // A later batch, partly redelivered, takes the large path.
    let batch = vec![row("big-3", &big), row("new-1", "n1")];
    let o = append_rows(&s, KEY, &batch, &p).await.unwrap();
    assert_eq!((o.appended, o.duplicates), (1, 1));
    // Simulate a crash after the master append and before its markers and checkpoint were
    // written: drop new-1's marker and the checkpoint.
    let state = master_csv::append::state_prefix(KEY);
    assert_eq!(state, "calltype/state/ingest/date=2026-11-20/");
    s.delete(&format!("{state}ids/new-1.redacted"))
        .await
        .unwrap();
    s.delete(&format!("{state}checkpoint")).await.unwrap();
    let o = append_rows(&s, KEY, &[row("new-1", "n1"), row("new-2", "n2")], &p)
        .await
        .unwrap();
    assert_eq!((o.appended, o.duplicates), (1, 1));
    let all = decode_rows(&s.get(KEY).await.unwrap().unwrap().body).unwrap();
    assert_eq!(all.len(), 602);
    let mut want = ids(&rows);
    want.extend(["new-1".to_string(), "new-2".to_string()]);
    assert_sound(&s, KEY, &want, "after the lost checkpoint").await;
}

#[tokio::test]
async fn it_loses_and_duplicates_nothing_under_concurrent_appenders() {
    let (_d, s) = store();
    let p = RetryPolicy {
        max_attempts: 200,
        ..RetryPolicy::default()
    };
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (s, p) = (s.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            // Every contact is also sent by a second writer.
            let rows = vec![
                row(&format!("c{i}"), "t"),
                row(&format!("c{}", (i + 1) % 50), "t"),
            ];
            append_rows(&s, KEY, &rows, &p).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = (0..50).map(|i| format!("c{i}")).collect();
    assert_sound(&s, KEY, &want, "50 appenders").await;
}

#[test]
fn it_keeps_ingest_state_outside_the_prefix_athena_reads() {
    use master_csv::append::state_prefix;
    assert_eq!(
        state_prefix("transcripts/date=2026-01-02/transcripts.csv"),
        "state/ingest/date=2026-01-02/"
    );
    assert_eq!(
        state_prefix("x/y/transcripts/date=2026-01-02/transcripts.csv"),
        "x/y/state/ingest/date=2026-01-02/"
    );
    assert_eq!(state_prefix("other.csv"), "other.csv.state/");
}

#[tokio::test]
async fn check_invariants_names_each_broken_invariant() {
    use master_csv::append::state_prefix;
    use master_csv::encode::encode_rows;
    use master_csv::{check_invariants, Identity, Violation};
    use store::Condition;

    let (_d, s) = store();
    let state = state_prefix(KEY);
    let mut body = header();
    body.extend_from_slice(&encode_rows(&[row("a", "x"), row("b", "y"), row("a", "z")]));
    let a_end = (header().len() + encode_rows(&[row("a", "x")]).len()) as u64;
    s.put(KEY, body.clone(), Condition::None).await.unwrap();
    let marker = |name: &str| format!("{state}ids/{name}.redacted");
    s.put(&marker("a"), Vec::new(), Condition::None)
        .await
        .unwrap();
    s.put(&marker("gone"), Vec::new(), Condition::None)
        .await
        .unwrap();
    let checkpoint = format!("{state}checkpoint");
    let at = |n: u64| format!("length={n}\n").into_bytes();
    s.put(&checkpoint, at(body.len() as u64), Condition::None)
        .await
        .unwrap();
    let id = |c: &str| Identity {
        contact_id: c.into(),
        redacted: true,
    };
    let v = check_invariants(&s, KEY).await.unwrap();
    assert_eq!(
        v,
        [
            Violation::Doubled(id("a")),
            Violation::Unmarked {
                identity: id("b"),
                row_end: a_end + encode_rows(&[row("b", "y")]).len() as u64,
                checkpoint: body.len() as u64,
            },
            Violation::Orphan {
                marker: marker("gone")
            },
        ]
    );

    // A checkpoint at a row's end is sound; one inside a row is not.
    s.put(&checkpoint, at(a_end), Condition::None)
        .await
        .unwrap();
    let v = check_invariants(&s, KEY).await.unwrap();
    assert!(
        !v.iter()
            .any(|v| matches!(v, Violation::CheckpointOff { .. })),
        "{v:?}"
    );
    s.put(&checkpoint, at(a_end + 1), Condition::None)
        .await
        .unwrap();
    let v = check_invariants(&s, KEY).await.unwrap();
    assert!(v.contains(&Violation::CheckpointOff {
        checkpoint: a_end + 1,
        master_bytes: body.len() as u64
    }));
}
