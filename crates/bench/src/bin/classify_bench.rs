//! The classify Lambda binary in embedded mode under a fake Lambda Runtime API: time from
//! process start to ready (its first `GET .../invocation/next`, so the model has been read,
//! unpacked and loaded), with the model read from S3 (a `model.tar.gz` in moto) and from a
//! directory; then one scheduled run labeling a master CSV of long calls, and the peak RSS
//! (`VmHWM`) after it.
//!
//! Usage: classify_bench CLASSIFY_BINARY MODEL_DIR TEXTS_JSONL [--starts N] [--calls N]
//!        [--words W] [--memory-mb MB]
//!
//! Calls are made of the texts in TEXTS_JSONL (`{"text": ...}` per line, e.g. `model_bench
//! texts`), joined until each has W words. The function gets `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`
//! MB (default 3,538: two threads). Prints one JSON object. Needs `moto_server`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use bench::lambda_api::{lambda_command, rss_kib, stop, RuntimeApi};
use bench::median;
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use store::{Condition, LocalStore, ObjectStore};

/// Where the model comes from in one start.
#[derive(Clone, Copy, PartialEq)]
enum From {
    S3,
    Dir,
}

struct Start {
    ready_s: f64,
    label_s: Option<f64>,
    peak_rss_kib: u64,
}

/// A `model.tar.gz` of `dir`, as `calltype package` writes it (files at the root).
fn package(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::default()));
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for p in names.iter().filter(|p| p.is_file()) {
        tar.append_path_with_name(p, p.file_name().context("a file name")?)?;
    }
    Ok(tar.into_inner()?.finish()?)
}

/// `n` calls of at least `words` words each, made of the texts in order, cycled.
fn calls(texts_jsonl: &Path, n: usize, words: usize) -> anyhow::Result<Vec<String>> {
    let texts: Vec<String> = std::fs::read_to_string(texts_jsonl)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            Ok(v["text"].as_str().unwrap_or_default().to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(!texts.is_empty(), "no texts in {}", texts_jsonl.display());
    let mut it = texts.iter().cycle();
    Ok((0..n)
        .map(|_| {
            let mut call = String::new();
            while call.split_whitespace().count() < words {
                call.push_str(it.next().expect("cycled"));
                call.push(' ');
            }
            call
        })
        .collect())
}

/// A local bucket holding today's master CSV with `calls`.
async fn bucket(dir: &Path, calls: &[String], today: &str) -> anyhow::Result<()> {
    let store = LocalStore::new(dir)?;
    let mut body = master_csv::encode::header();
    for (i, text) in calls.iter().enumerate() {
        let mut fields = vec![String::new(); master_csv::COLUMNS.len()];
        fields[0] = format!("bench-{i:05}");
        fields[1] = today.to_string();
        fields[12] = text.clone();
        body.extend(master_csv::encode::encode_record(
            fields.iter().map(String::as_str),
        ));
    }
    let key = master_csv::Layout::default().master(today);
    store.put(&key, body, Condition::None).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn one_start(
    api: &RuntimeApi,
    binary: &Path,
    from: From,
    model_dir: &Path,
    model_uri: &str,
    moto: &str,
    bucket_dir: Option<&Path>,
    memory_mb: u32,
    n: usize,
) -> anyhow::Result<Start> {
    let tmp = tempfile::tempdir()?;
    let empty = tempfile::tempdir()?;
    let data = bucket_dir.unwrap_or(empty.path());
    let mut cmd = lambda_command(binary, api, "classify", memory_mb, moto);
    cmd.env("TMPDIR", tmp.path())
        .env("CALLTYPE_BUCKET", "bench")
        .env("CALLTYPE_LOCAL_DIR", data)
        .env("CALLTYPE_MODE", "embedded");
    match from {
        From::S3 => cmd.env("CALLTYPE_MODEL_S3_URI", model_uri),
        From::Dir => cmd.env("CALLTYPE_MODEL_DIR", model_dir),
    };
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let result = (|| {
        let ready = api.expect_next()?;
        let ready_s = ready.duration_since(t0).as_secs_f64();
        let mut label_s = None;
        if bucket_dir.is_some() {
            let id = format!("run-{n}");
            let sent = Instant::now();
            api.events.send(Some((id.clone(), "{}".into())))?;
            let (done, body) = api.expect_response(&id)?;
            let report: Value = serde_json::from_str(&body)?;
            ensure!(
                report["rows_failed"] == 0 && report["rows_labeled"].as_u64().unwrap_or(0) > 0,
                "the run did not label: {body}"
            );
            label_s = Some(done.duration_since(sent).as_secs_f64());
            api.expect_next()?;
        }
        let (peak, _) = rss_kib(child.id())?;
        Ok(Start {
            ready_s,
            label_s,
            peak_rss_kib: peak,
        })
    })();
    stop(api, child);
    result
}

fn main() -> anyhow::Result<()> {
    let usage = "usage: classify_bench CLASSIFY MODEL_DIR TEXTS_JSONL [--starts N] [--calls N] [--words W] [--memory-mb MB]";
    let mut args = std::env::args().skip(1);
    let binary = PathBuf::from(args.next().context(usage)?);
    let model_dir = std::path::absolute(PathBuf::from(args.next().context(usage)?))?;
    let texts = PathBuf::from(args.next().context(usage)?);
    let (mut starts, mut n_calls, mut words, mut memory_mb) = (5usize, 32usize, 1000usize, 3538u32);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--starts" => starts = val()?.parse()?,
            "--calls" => n_calls = val()?.parse()?,
            "--words" => words = val()?.parse()?,
            "--memory-mb" => memory_mb = val()?.parse()?,
            other => bail!("unexpected argument {other}; {usage}"),
        }
    }
    let archive = package(&model_dir)?;
    let calls = calls(&texts, n_calls, words)?;
    let today = chrono::Utc::now().date_naive().to_string();

    let rt = tokio::runtime::Runtime::new()?;
    let moto = moto_harness::MotoServer::start();
    let (art_bucket, key) = ("bench-models", "models/bench/model.tar.gz");
    let model_uri = rt.block_on(async {
        let store = moto.fresh_bucket(art_bucket).await;
        store.put(key, archive.clone(), Condition::None).await?;
        anyhow::Ok(format!("s3://{}/{key}", store.bucket()))
    })?;
    let api = RuntimeApi::start()?;
    let mut out = serde_json::Map::new();
    for (from, name) in [(From::S3, "s3"), (From::Dir, "dir")] {
        let mut runs = Vec::new();
        for n in 0..starts {
            // The last start of each source also labels the calls.
            let labels = n + 1 == starts;
            let data = tempfile::tempdir()?;
            if labels {
                rt.block_on(bucket(data.path(), &calls, &today))?;
            }
            let run = one_start(
                &api,
                &binary,
                from,
                &model_dir,
                &model_uri,
                &moto.endpoint(),
                labels.then_some(data.path()),
                memory_mb,
                n,
            )
            .with_context(|| format!("{name} start {n}"))?;
            eprintln!(
                "  {name} start {n}: ready {:.0} ms{}, peak RSS {} KiB",
                run.ready_s * 1e3,
                run.label_s
                    .map(|s| format!(", {n_calls} calls labeled in {s:.2} s"))
                    .unwrap_or_default(),
                run.peak_rss_kib
            );
            runs.push(run);
        }
        let ready: Vec<f64> = runs.iter().map(|r| r.ready_s).collect();
        let last = runs.last().context("--starts must be at least 1")?;
        // Peak RSS once the model is loaded, before any labeling (every start but the last).
        let loaded: Vec<f64> = match &runs[..runs.len() - 1] {
            [] => vec![last.peak_rss_kib as f64],
            idle => idle.iter().map(|r| r.peak_rss_kib as f64).collect(),
        };
        let label_s = last.label_s.context("the last start labels")?;
        out.insert(
            name.into(),
            json!({
                "ready_s": median(&ready),
                "ready_s_all": ready,
                "label_s": label_s,
                "per_call_s": label_s / n_calls as f64,
                "peak_rss_kib": last.peak_rss_kib,
                "peak_rss_kib_loaded": median(&loaded),
            }),
        );
    }
    let settings = model::InferenceSettings::load(&model_dir)?;
    println!(
        "{}",
        json!({
            "starts": starts,
            "calls": n_calls,
            "words_per_call": words,
            "mean_words": calls.iter().map(|c| c.split_whitespace().count()).sum::<usize>() as f64
                / n_calls as f64,
            "memory_mb": memory_mb,
            "threads": classify::embedded::lambda_threads(memory_mb),
            "archive_bytes": archive.len(),
            "binary_bytes": std::fs::metadata(&binary)?.len(),
            "max_tokens": settings.max_tokens,
            "long_text": serde_json::to_value(settings.long_text)?,
            "sources": out,
        })
    );
    Ok(())
}
