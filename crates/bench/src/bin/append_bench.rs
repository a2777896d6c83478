//! Bytes moved per append against the master's size: a 10-row batch appended to masters of
//! about 1, 10 and 100 MiB, through `CountingStore` over a moto `S3Store` (or `LocalStore`
//! with `--store local`). Requests and bytes on the append state (the per-contact markers and
//! the checkpoint under `state/ingest/`, see `master_csv::append`) are also counted on their own.
//!
//! A large master's first append reads it once and writes a marker per row it holds; in
//! production that happens once per partition, when its master first passes 5 MiB. Here the
//! master is seeded in one piece, so that first append is timed and reported on its own
//! (`first_append`), and the medians are over the appends after it.
//!
//! Usage: append_bench [--store moto|local] [--sizes-mib 1,10,100] [--appends N]
//! Prints one JSON object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bench::median;
use master_csv::append::state_prefix;
use master_csv::encode::encode_rows;
use master_csv::{append_rows, Row, LARGE_OBJECT_BYTES};
use serde_json::json;
use store::cas::RetryPolicy;
use store::{Condition, CountingStore, LocalStore, Object, ObjectMeta, ObjectStore};

const MASTER: &str = "calltype/transcripts/date=2022-06-22/transcripts.csv";
const BATCH: usize = 10;

/// Counts requests and body bytes on the append state (keys under the master's state prefix).
#[derive(Clone)]
struct StateTraffic<S> {
    inner: S,
    prefix: Arc<str>,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

impl<S> StateTraffic<S> {
    fn new(inner: S, prefix: String) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
            read: Arc::default(),
            written: Arc::default(),
            calls: Arc::default(),
        }
    }
    /// (bytes read, bytes written, calls) since the last take.
    fn take(&self) -> (u64, u64, u64) {
        (
            self.read.swap(0, Ordering::Relaxed),
            self.written.swap(0, Ordering::Relaxed),
            self.calls.swap(0, Ordering::Relaxed),
        )
    }
    fn is_state(&self, key: &str) -> bool {
        let hit = key.starts_with(&*self.prefix);
        if hit {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

impl<S: ObjectStore> ObjectStore for StateTraffic<S> {
    async fn get(&self, key: &str) -> store::Result<Option<Object>> {
        let out = self.inner.get(key).await;
        if let (true, Ok(Some(o))) = (self.is_state(key), &out) {
            self.read.fetch_add(o.body.len() as u64, Ordering::Relaxed);
        }
        out
    }
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: Option<u64>,
    ) -> store::Result<Option<Object>> {
        let out = self.inner.get_range(key, start, end).await;
        if let (true, Ok(Some(o))) = (self.is_state(key), &out) {
            self.read.fetch_add(o.body.len() as u64, Ordering::Relaxed);
        }
        out
    }
    async fn head(&self, key: &str) -> store::Result<Option<ObjectMeta>> {
        self.is_state(key);
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, condition: Condition) -> store::Result<String> {
        if self.is_state(key) {
            self.written.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        self.inner.put(key, body, condition).await
    }
    async fn list(&self, prefix: &str) -> store::Result<Vec<ObjectMeta>> {
        self.is_state(prefix);
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> store::Result<()> {
        self.is_state(key);
        self.inner.delete(key).await
    }
    async fn append_large(&self, key: &str, etag: &str, tail: Vec<u8>) -> store::Result<String> {
        self.is_state(key);
        self.inner.append_large(key, etag, tail).await
    }
}

/// A realistic row: a ~1.5 KB transcript, a unique contact id.
fn row(n: u64) -> Row {
    let mut transcript = String::new();
    for i in 0..12 {
        let who = if i % 2 == 0 { "AGENT" } else { "CUSTOMER" };
        transcript.push_str(&format!(
            "{who}: thank you for calling, I can help you with order {n} and the delivery date of item {i}, \
             please hold on while I check the account. "
        ));
    }
    Row {
        contact_id: format!("{:08x}-5b7d-4e8f-9a0b-{:012x}", n >> 16, n),
        contact_date: "2022-06-22".into(),
        channel: "VOICE".into(),
        redacted: false,
        language: "en-US".into(),
        version: "1.1.0".into(),
        duration_ms: Some(300_000 + n % 1000),
        turns: 12,
        sentiment_customer: Some(0.8),
        sentiment_agent: Some(0.0),
        categories: String::new(),
        summary: String::new(),
        transcript: transcript.trim_end().to_string(),
        source_key: format!(
            "Analysis/Voice/2022/06/22/{n:08x}-5b7d-4e8f-9a0b-000000000000_analysis_2022-06-22T16:55:00Z.json"
        ),
        instance_id: "5f046746-5931-45cc-a614-43b75eca2a5f".into(),
        ingested_at: "2026-01-01T00:00:00Z".into(),
    }
}

/// One measured append of the next batch: the master's size after it, and what it moved.
async fn one<S: ObjectStore>(
    counting: &CountingStore<StateTraffic<S>>,
    state: &StateTraffic<S>,
    policy: &RetryPolicy,
    next: &mut u64,
) -> anyhow::Result<(u64, serde_json::Value)> {
    let batch: Vec<Row> = (*next..*next + BATCH as u64).map(row).collect();
    *next += BATCH as u64;
    counting.reset();
    state.take();
    let t = Instant::now();
    let o = append_rows(counting, MASTER, &batch, policy).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(o.appended == BATCH, "appended {} of {BATCH}", o.appended);
    let s = counting.stats();
    let (sr, sw, sc) = state.take();
    Ok((
        o.master_bytes,
        json!({
            "bytes_read": s.bytes_read,
            "bytes_written": s.bytes_written,
            "state_bytes_read": sr,
            "state_bytes_written": sw,
            "state_calls": sc,
            "calls": s.calls(),
            "puts": s.puts,
            "heads": s.heads,
            "append_larges": s.append_larges,
            "seconds": secs,
        }),
    ))
}

async fn measure<S: ObjectStore + Clone>(
    base: S,
    target: u64,
    appends: usize,
) -> anyhow::Result<serde_json::Value> {
    let policy = RetryPolicy::default();
    let row_bytes = encode_rows(&[row(0)]).len() as u64;
    let n_rows = target / row_bytes;
    let seed: Vec<Row> = (0..n_rows).map(row).collect();
    let t = Instant::now();
    let seeded = append_rows(&base, MASTER, &seed, &policy).await?;
    let seed_s = t.elapsed().as_secs_f64();
    drop(seed);

    let state = StateTraffic::new(base, state_prefix(MASTER));
    let counting = CountingStore::new(state.clone());
    let mut next = n_rows;
    let mut before = seeded.master_bytes;
    let (after, mut first) = one(&counting, &state, &policy, &mut next).await?;
    first["master_bytes_before"] = json!(before);
    before = after;
    let mut per = Vec::new();
    for _ in 0..appends {
        let (after, mut p) = one(&counting, &state, &policy, &mut next).await?;
        p["master_bytes_before"] = json!(before);
        p["master_bytes_after"] = json!(after);
        before = after;
        per.push(p);
    }
    let m = |k: &str| {
        median(
            &per.iter()
                .map(|p| p[k].as_f64().unwrap())
                .collect::<Vec<_>>(),
        )
    };
    let moved = m("bytes_read") + m("bytes_written");
    Ok(json!({
        "target_bytes": target,
        "master_bytes": seeded.master_bytes,
        "rows": n_rows,
        "mode": if seeded.master_bytes >= LARGE_OBJECT_BYTES { "server-side (UploadPartCopy)" } else { "rewrite" },
        "batch_rows": BATCH,
        "batch_csv_bytes": encode_rows(&(0..BATCH as u64).map(row).collect::<Vec<_>>()).len(),
        "seed_seconds": seed_s,
        "bytes_read": m("bytes_read"),
        "bytes_written": m("bytes_written"),
        "state_bytes_read": m("state_bytes_read"),
        "state_bytes_written": m("state_bytes_written"),
        "state_calls": m("state_calls"),
        "calls": m("calls"),
        "seconds": m("seconds"),
        "moved_over_master": moved / seeded.master_bytes as f64,
        "first_append": first,
        "appends": per,
    }))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut backend = "moto".to_string();
    let mut sizes = vec![1u64, 10, 100];
    let mut appends = 5usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--store" => backend = args.next().context("--store moto|local")?,
            "--sizes-mib" => {
                sizes = args
                    .next()
                    .context("--sizes-mib 1,10,100")?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--appends" => appends = args.next().context("--appends N")?.parse()?,
            other => bail!("unexpected argument {other}"),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    let moto = (backend == "moto").then(moto_harness::MotoServer::start);
    let mut results = Vec::new();
    for mib in sizes {
        let target = mib * 1024 * 1024;
        let t = Instant::now();
        let r = rt.block_on(async {
            match &moto {
                Some(moto) => {
                    measure(moto.fresh_bucket("bench-append").await, target, appends).await
                }
                None => {
                    let dir = tempfile::tempdir()?;
                    measure(LocalStore::new(dir.path())?, target, appends).await
                }
            }
        })?;
        eprintln!(
            "  {mib} MiB master: {} read + {} written per append ({:.4} of the master), {:.1} s",
            r["bytes_read"],
            r["bytes_written"],
            r["moved_over_master"],
            t.elapsed().as_secs_f64()
        );
        results.push(r);
    }
    if !matches!(backend.as_str(), "moto" | "local") {
        bail!("--store moto|local");
    }
    println!("{}", json!({ "store": backend, "sizes": results }));
    Ok(())
}
