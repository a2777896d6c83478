//! The model side of the benchmarks, one measurement per process so that peak RSS is that
//! measurement's own: texts from Contact Lens files, a classifier directory with a seeded
//! head, inference throughput, and training throughput. `scripts/bench/model.sh` runs it
//! interleaved with `scripts/bench/torch_bench.py` (the same steps in PyTorch + transformers).
//!
//! Usage:
//!   model_bench texts --calls DIR --labels CSV --out FILE.jsonl
//!       One JSON line per file (sorted by name): `{"id", "text", "label", "split"}`, the text
//!       being the transcript ingest extracts (`contact_lens::parse`, all participants).
//!   model_bench make-classifier --backbone DIR --labels a,b,c --out DIR [--seed N]
//!       The backbone with a fresh seeded head, saved in Hugging Face layout.
//!   model_bench infer --model DIR --texts FILE.jsonl --max-tokens N --batch N [--limit N]
//!       [--model-batch N] [--dump FILE.json]
//!       One warm-up call, then `Classifier::predict` over the texts in calls of `batch` texts
//!       (tokenization included), `model-batch` sequences per forward pass (default `batch`);
//!       prints texts/s and peak RSS, dumps the probabilities.
//!   model_bench train --backbone DIR --texts FILE.jsonl --split NAME --max-tokens N
//!       --batch N [--grad-accum N] [--epochs N] [--limit N] --out DIR
//!       `model::train` without dev data; examples/s over every optimiser step but the first
//!       (the timer restarts after each epoch's save), and peak RSS.
//!   model_bench peak [--threads N]
//!       The measured fp32 FMA peak (GFLOP/s) on one thread and on N (default BENCH_THREADS),
//!       the best of 5 tries each.
//!
//! Each subcommand prints one JSON object on stdout. `BENCH_ISA=avx2` (or `baseline`) caps the
//! instruction sets of the model crate's own kernels, so that an AVX-512 machine runs them as
//! an AVX2-only CPU would (`model::speed::set_isa_ceiling`; the `gemm` crate keeps its own);
//! `BENCH_PACKED=0` turns the packed products off (the `gemm` crate's path everywhere).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use contact_lens::Participants;
use model::{Classifier, InferenceSettings, TrainConfig, TrainProgress};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TextRow {
    id: String,
    text: String,
    label: String,
    split: String,
}

/// `--name value` pairs after the subcommand.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(rest: &[String]) -> anyhow::Result<Args> {
        let mut map = HashMap::new();
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let Some(name) = k.strip_prefix("--") else {
                bail!("unexpected argument {k:?}");
            };
            let v = it.next().with_context(|| format!("{k} needs a value"))?;
            map.insert(name.to_string(), v.clone());
        }
        Ok(Args(map))
    }

    fn str(&self, name: &str) -> anyhow::Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("--{name} is required"))
    }

    fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        Ok(PathBuf::from(self.str(name)?))
    }

    fn num(&self, name: &str, default: Option<usize>) -> anyhow::Result<usize> {
        match (self.0.get(name), default) {
            (Some(v), _) => v.parse().with_context(|| format!("--{name} {v:?}")),
            (None, Some(d)) => Ok(d),
            (None, None) => bail!("--{name} is required"),
        }
    }
}

/// Peak resident set size of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Minor page faults and seconds in the kernel of this process so far, from one read of
/// `/proc/self/stat` (fields 10 and 15; `stime` is in USER_HZ, 100 ticks a second).
fn faults_and_system_s() -> (u64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces; the first
    // of them is field 3.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let field = |n: usize| {
        rest.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(10), field(15) as f64 / 100.0)
}

fn read_texts(path: &Path) -> anyhow::Result<Vec<TextRow>> {
    let data = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    data.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a texts line"))
        .collect()
}

fn texts(a: &Args) -> anyhow::Result<serde_json::Value> {
    let calls = a.path("calls")?;
    let labels_path = a.path("labels")?;
    let mut labels: HashMap<String, (String, String)> = HashMap::new();
    let mut rd = csv::Reader::from_path(&labels_path)?;
    let headers = rd.headers()?.clone();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (id_col, label_col) = (
        col("contact_id").context("labels CSV needs contact_id")?,
        col("label").context("labels CSV needs label")?,
    );
    let split_col = col("split");
    for rec in rd.records() {
        let rec = rec?;
        let split = split_col.and_then(|i| rec.get(i)).unwrap_or("").to_string();
        labels.insert(rec[id_col].to_string(), (rec[label_col].to_string(), split));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&calls)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = String::new();
    let mut n = 0;
    for f in &files {
        let bytes = std::fs::read(f)?;
        let contact = contact_lens::parse(&bytes, None)
            .map_err(|e| anyhow::anyhow!("{}: {}", f.display(), e.reason()))?;
        let Some((label, split)) = labels.get(&contact.contact_id) else {
            continue;
        };
        let row = TextRow {
            id: contact.contact_id.clone(),
            text: contact.transcript(Participants::All),
            label: label.clone(),
            split: split.clone(),
        };
        out.push_str(&serde_json::to_string(&row)?);
        out.push('\n');
        n += 1;
    }
    std::fs::write(a.path("out")?, out)?;
    Ok(json!({ "texts": n }))
}

fn make_classifier(a: &Args) -> anyhow::Result<serde_json::Value> {
    let backbone = a.path("backbone")?;
    let labels: Vec<String> = a.str("labels")?.split(',').map(str::to_string).collect();
    let out = a.path("out")?;
    let seed = a.num("seed", Some(42))? as u64;
    let (config, weights) = model::weights::load_backbone(&backbone, labels.len(), seed)?;
    model::weights::save_classifier(&out, &config, &labels, &weights, &backbone)?;
    Ok(json!({ "out": out, "labels": labels.len() }))
}

fn infer(a: &Args) -> anyhow::Result<serde_json::Value> {
    let mut rows = read_texts(&a.path("texts")?)?;
    let limit = a.num("limit", Some(rows.len()))?;
    rows.truncate(limit);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let max_tokens = a.num("max-tokens", None)?;
    let batch = a.num("batch", None)?;
    let t_load = Instant::now();
    let mut clf = Classifier::load(&a.path("model")?)?;
    let load_s = t_load.elapsed().as_secs_f64();
    // Sequences per forward pass: the call size unless `--model-batch` says otherwise.
    let model_batch = a.num("model-batch", Some(batch))?;
    clf.set_settings(InferenceSettings {
        max_tokens,
        batch_size: model_batch,
        ..*clf.settings()
    });
    let rss_loaded = peak_rss();
    // Warm-up: one call of `batch` texts (allocator, thread pool, page faults).
    clf.predict(&texts[..batch.min(texts.len())])?;
    let started = Instant::now();
    let mut probs: Vec<Vec<f32>> = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch) {
        probs.extend(clf.predict(chunk)?.into_iter().map(|p| p.scores));
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(dump) = a.0.get("dump") {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let body = json!({ "labels": clf.labels(), "ids": ids, "probs": probs });
        std::fs::write(dump, serde_json::to_vec(&body)?)?;
    }
    Ok(json!({
        "side": "candle",
        "max_tokens": max_tokens,
        "batch": batch,
        "model_batch": model_batch,
        "texts": texts.len(),
        "seconds": seconds,
        "texts_per_s": texts.len() as f64 / seconds,
        "load_s": load_s,
        "rss_after_load": rss_loaded,
        "peak_rss": peak_rss(),
        "threads": candle_core::utils::get_num_threads(),
        "packed_isa": model::speed::packed_isa(),
    }))
}

fn train(a: &Args) -> anyhow::Result<serde_json::Value> {
    // As `calltype train` does, unless `--malloc glibc` asks for the allocator's defaults (the
    // side-by-side of scripts/bench/model.sh, section 4).
    let malloc = a.0.get("malloc").map_or("keep", String::as_str);
    let kept = match malloc {
        "keep" => model::keep_freed_memory(),
        "glibc" => false,
        other => bail!("--malloc {other:?}: keep or glibc"),
    };
    let split = a.str("split")?;
    let mut rows: Vec<TextRow> = read_texts(&a.path("texts")?)?
        .into_iter()
        .filter(|r| r.split == split)
        .collect();
    let limit = a.num("limit", Some(rows.len()))?;
    rows.truncate(limit);
    let pairs: Vec<(String, String)> = rows.into_iter().map(|r| (r.text, r.label)).collect();
    let cfg = TrainConfig {
        epochs: a.num("epochs", Some(1))?,
        batch_size: a.num("batch", None)?,
        grad_accum: a.num("grad-accum", Some(1))?,
        max_tokens: a.num("max-tokens", None)?,
        // Fixed so that no dev evaluation or long-text choice runs after training.
        long_text: Some(model::LongText::default()),
        ..TrainConfig::default()
    };
    let out = a.path("out")?;
    let mut last: Option<Instant> = None;
    let mut step_times: Vec<f64> = Vec::new();
    let mut first = true;
    let mut examples_per_step: Vec<usize> = Vec::new();
    let per_step = cfg.batch_size * cfg.grad_accum;
    let n = pairs.len();
    let steps_per_epoch = n.div_ceil(cfg.batch_size).div_ceil(cfg.grad_accum);
    let mut step_in_epoch = 0usize;
    let started = Instant::now();
    let report = model::train(
        &a.path("backbone")?,
        &pairs,
        &[],
        &cfg,
        &out,
        &mut |p| match p {
            TrainProgress::Started { .. } => last = Some(Instant::now()),
            TrainProgress::Step { .. } => {
                let now = Instant::now();
                step_in_epoch += 1;
                // Examples in this step: full steps, except the epoch's last one.
                let ex = if step_in_epoch == steps_per_epoch {
                    n - per_step * (steps_per_epoch - 1)
                } else {
                    per_step
                };
                if let Some(t) = last {
                    if !first {
                        step_times.push((now - t).as_secs_f64());
                        examples_per_step.push(ex);
                    }
                }
                first = false;
                last = Some(now);
            }
            TrainProgress::Epoch(_) => {
                // The epoch's save is not training; the next step is timed from here.
                step_in_epoch = 0;
                last = Some(Instant::now());
            }
        },
    )?;
    let total_s = started.elapsed().as_secs_f64();
    let timed_s: f64 = step_times.iter().sum();
    let timed_ex: usize = examples_per_step.iter().sum();
    let losses: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
    let (faults, system_s) = faults_and_system_s();
    Ok(json!({
        "side": "candle",
        "max_tokens": cfg.max_tokens,
        "batch": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "epochs": cfg.epochs,
        "examples": n,
        "timed_steps": step_times.len(),
        "timed_examples": timed_ex,
        "timed_s": timed_s,
        "examples_per_s": if timed_s > 0.0 { timed_ex as f64 / timed_s } else { 0.0 },
        "step_s": step_times,
        "total_s": total_s,
        "train_loss": losses,
        "peak_rss": peak_rss(),
        "minor_faults": faults,
        "system_s": system_s,
        "malloc": malloc,
        "keep_freed_memory": kept,
        "threads": candle_core::utils::get_num_threads(),
    }))
}

/// The measured fp32 FMA peak on one thread and on `--threads` (default `BENCH_THREADS`, 2),
/// the best of 5 tries each: the roofline's ceiling (`model::speed::fma_peak_gflops`).
fn peak(a: &Args) -> anyhow::Result<serde_json::Value> {
    let threads = a.num(
        "threads",
        Some(
            std::env::var("BENCH_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
        ),
    )?;
    // A peak is a maximum: the best of 5 tries, as a shared vCPU can lose a try to a neighbour.
    let best = |t: usize| {
        (0..5)
            .filter_map(|_| model::speed::fma_peak_gflops(t, 0.3))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let (one, all) = (best(1), best(threads));
    Ok(json!({
        "threads": threads,
        "isa": all.map(|(_, isa)| isa),
        "gflops_one_thread": one.map(|(g, _)| g),
        "gflops": all.map(|(g, _)| g),
    }))
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        bail!("usage: model_bench texts|make-classifier|infer|train|peak --name value ...");
    };
    let a = Args::parse(&argv[1..])?;
    if let Ok(isa) = std::env::var("BENCH_ISA") {
        model::speed::set_isa_ceiling(isa.parse().map_err(anyhow::Error::msg)?);
    }
    if std::env::var("BENCH_PACKED").is_ok_and(|v| v == "0") {
        model::speed::set_packed_enabled(false);
    }
    let out = match cmd.as_str() {
        "texts" => texts(&a)?,
        "make-classifier" => make_classifier(&a)?,
        "infer" => infer(&a)?,
        "train" => train(&a)?,
        "peak" => peak(&a)?,
        other => bail!("unknown subcommand {other:?}"),
    };
    println!("{out}");
    Ok(())
}
