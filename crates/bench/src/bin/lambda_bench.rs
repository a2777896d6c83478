//! The ingest Lambda binary under a fake Lambda Runtime API: time from process start to
//! ready (its first `GET .../invocation/next`), time to handle one S3-notification event for
//! one file stored in moto (cold: the first event; warm: a second file in the same process),
//! and peak RSS (`VmHWM`, read when it asks for a third event, just before it is stopped).
//!
//! Usage: lambda_bench INGEST_BINARY FILE_JSON [--starts N]
//! Prints one JSON object. Needs `moto_server` (see moto-harness).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use bench::lambda_api::{lambda_command, rss_kib, stop, RuntimeApi};
use bench::median;
use serde_json::json;
use store::{Condition, ObjectStore};

const DATE_FOLDER: &str = "2022/06/22";

/// An S3 notification naming `key` (URL-encoded, as S3 sends it) in `bucket`.
fn s3_event(bucket: &str, key: &str, size: usize) -> String {
    let encoded = key.replace(':', "%3A");
    json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2022-06-22T17:05:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "bench",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": encoded, "size": size } } }] })
    .to_string()
}

struct Run {
    ready_s: f64,
    cold_event_s: f64,
    warm_event_s: f64,
    peak_rss_kib: u64,
}

/// A copy of the file under another contact id, and its analysis key.
fn variant(body: &[u8], contact_id: &str, n: usize) -> (Vec<u8>, String) {
    let new_id = format!("{}{:04}", &contact_id[..contact_id.len() - 4], n);
    let text = String::from_utf8_lossy(body).replace(contact_id, &new_id);
    let key = format!("Analysis/Voice/{DATE_FOLDER}/{new_id}_analysis_2022-06-22T16:55:00Z.json");
    (text.into_bytes(), key)
}

fn one_start(
    api: &RuntimeApi,
    binary: &Path,
    endpoint: &str,
    bucket: &str,
    files: [(&str, usize); 2],
    n: usize,
) -> anyhow::Result<Run> {
    let t0 = Instant::now();
    let child = lambda_command(binary, api, "ingest", 512, endpoint)
        .env("CALLTYPE_BUCKET", bucket)
        .env("CALLTYPE_COPY", "raw")
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let result = (|| {
        let ready = api.expect_next()?;
        let mut handle = Vec::new();
        for (i, (key, size)) in files.iter().enumerate() {
            if i > 0 {
                api.expect_next()?;
            }
            let id = format!("req-{n}-{i}");
            let sent = Instant::now();
            api.events
                .send(Some((id.clone(), s3_event(bucket, key, *size))))?;
            let (done, body) = api.expect_response(&id)?;
            ensure!(
                body.contains("\"appended\":1"),
                "the event did not append one row: {body}"
            );
            handle.push(done.duration_since(sent).as_secs_f64());
        }
        api.expect_next()?;
        let (peak, _) = rss_kib(child.id())?;
        Ok(Run {
            ready_s: ready.duration_since(t0).as_secs_f64(),
            cold_event_s: handle[0],
            warm_event_s: handle[1],
            peak_rss_kib: peak,
        })
    })();
    stop(api, child);
    result
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = PathBuf::from(
        args.next()
            .context("usage: lambda_bench INGEST FILE_JSON")?,
    );
    let file = PathBuf::from(
        args.next()
            .context("usage: lambda_bench INGEST FILE_JSON")?,
    );
    let mut starts = 10usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--starts" => starts = args.next().context("--starts N")?.parse()?,
            other => bail!("unexpected argument {other}"),
        }
    }
    let body = std::fs::read(&file).with_context(|| file.display().to_string())?;
    let doc: serde_json::Value = serde_json::from_slice(&body)?;
    let contact_id = doc["CustomerMetadata"]["ContactId"]
        .as_str()
        .context("the file has no CustomerMetadata.ContactId")?
        .to_string();

    let rt = tokio::runtime::Runtime::new()?;
    let moto = moto_harness::MotoServer::start();
    let api = RuntimeApi::start()?;
    let mut runs = Vec::new();
    for n in 0..starts {
        let (bucket, keys) = rt.block_on(async {
            let store = moto.fresh_bucket("bench-ingest").await;
            let mut keys = Vec::new();
            for i in 0..2 {
                let (bytes, key) = variant(&body, &contact_id, n * 2 + i);
                store.put(&key, bytes, Condition::None).await?;
                keys.push(key);
            }
            anyhow::Ok((store.bucket().to_string(), keys))
        })?;
        let files = [
            (keys[0].as_str(), body.len()),
            (keys[1].as_str(), body.len()),
        ];
        let run = one_start(&api, &binary, &moto.endpoint(), &bucket, files, n)
            .with_context(|| format!("start {n}"))?;
        eprintln!(
            "  start {n}: ready {:.1} ms, cold event {:.1} ms, warm event {:.1} ms, peak RSS {} KiB",
            run.ready_s * 1e3,
            run.cold_event_s * 1e3,
            run.warm_event_s * 1e3,
            run.peak_rss_kib
        );
        runs.push(run);
    }
    let col = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let peak: Vec<f64> = col(|r| r.peak_rss_kib as f64);
    println!(
        "{}",
        json!({
            "starts": starts,
            "file_bytes": body.len(),
            "binary_bytes": std::fs::metadata(&binary)?.len(),
            "ready_s": median(&col(|r| r.ready_s)),
            "cold_event_s": median(&col(|r| r.cold_event_s)),
            "warm_event_s": median(&col(|r| r.warm_event_s)),
            "peak_rss_kib_median": median(&peak),
            "peak_rss_kib_max": peak.iter().cloned().fold(0.0, f64::max),
            "ready_s_all": col(|r| r.ready_s),
            "cold_event_s_all": col(|r| r.cold_event_s),
        })
    );
    Ok(())
}
