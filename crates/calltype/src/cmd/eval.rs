//! `calltype eval --model DIR --data CSV|DIR --report DIR`: metrics of a trained model on
//! labelled data, as `report.json`, `confusion.csv`, `predictions.csv` and PNG pictures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use model::{Classifier, EvalReport, LongText, Pool, Windows, TRAINING_LOG};
use serde_json::{json, Value};

use super::data::{self, warn, Example};
use crate::plot::{self, EpochPoint};

/// Texts per call into the model (one progress-bar tick).
const CHUNK: usize = 64;

#[derive(clap::Args)]
pub struct Args {
    /// A trained model directory (Hugging Face layout), or a Hugging Face model id.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    input: data::LabelledData,
    /// Directory for report.json, confusion.csv, predictions.csv and the PNGs.
    #[arg(long)]
    report: PathBuf,
    /// Override the model's long-call strategy: `head-tail[:HEAD_FRACTION]` (e.g. head-tail:0.5)
    /// or `windows[:OVERLAP_TOKENS[:mean|max|familiar]]` (e.g. windows:64:max), to compare
    /// strategies on the same data.
    #[arg(long, value_parser = parse_long_text)]
    long_text: Option<LongText>,
    /// Override the model's token budget per sequence ([CLS]/[SEP] included).
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Also write every call's window logits (before pooling and temperature), one JSON line
    /// a call: `{"contact_id", "label", "windows": [[logit per label]…], "distances": […]}`
    /// (distances from the nearest label centre, when the model has centroids), to study how
    /// long calls are pooled (docs/long-calls.md).
    #[arg(long)]
    windows_out: Option<PathBuf>,
}

/// `head-tail[:F]` or `windows[:N]` as a [`LongText`].
pub fn parse_long_text(s: &str) -> Result<LongText, String> {
    let (kind, arg) = s.split_once(':').map_or((s, None), |(k, a)| (k, Some(a)));
    match kind {
        "head-tail" => {
            let head_fraction = arg
                .map_or(Ok(0.5), str::parse::<f32>)
                .map_err(|e| e.to_string())?;
            if !(0.0..=1.0).contains(&head_fraction) {
                return Err("the head fraction must be in [0, 1]".into());
            }
            Ok(LongText::HeadTail { head_fraction })
        }
        "windows" => {
            let (overlap, pool) = arg.map_or((None, None), |a| match a.split_once(':') {
                Some((o, p)) => (Some(o), Some(p)),
                None => (Some(a), None),
            });
            let overlap = overlap
                .map_or(Ok(32), str::parse::<usize>)
                .map_err(|e| e.to_string())?;
            let pool = match pool {
                None | Some("mean") => Pool::Mean,
                Some("max") => Pool::Max,
                Some("familiar") => Pool::Familiar,
                Some(p) => {
                    return Err(format!(
                        "window pooling is mean, max or familiar, not {p:?}"
                    ))
                }
            };
            Ok(LongText::Windows { overlap, pool })
        }
        _ => Err(format!(
            "expected head-tail[:FRACTION] or windows[:OVERLAP[:mean|max|familiar]], not {s:?}"
        )),
    }
}

pub fn run(mut args: Args) -> Result<()> {
    args.model = crate::hub::resolve(&args.model)?;
    let examples = args.input.load()?;
    let mut classifier = Classifier::load(&args.model)
        .with_context(|| format!("cannot load the model in {}", args.model.display()))?;
    if args.long_text.is_some() || args.max_tokens.is_some() {
        let mut settings = *classifier.settings();
        settings.long_text = args.long_text.unwrap_or(settings.long_text);
        settings.max_tokens = args.max_tokens.unwrap_or(settings.max_tokens);
        classifier.set_settings(settings);
    }

    // Labels the model does not know still count: they are misses it cannot avoid.
    let mut labels: Vec<String> = classifier.labels().to_vec();
    let unknown: BTreeSet<&str> = examples
        .iter()
        .map(|e| e.label.as_str())
        .filter(|l| !labels.iter().any(|m| m == l))
        .collect();
    if !unknown.is_empty() {
        let n = examples
            .iter()
            .filter(|e| unknown.contains(e.label.as_str()))
            .count();
        warn(format!(
            "{n} example(s) have labels the model does not know ({}); they count as errors",
            unknown.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    let unknown: Vec<String> = unknown.into_iter().map(str::to_string).collect();
    labels.extend(unknown.iter().cloned());

    let started = std::time::Instant::now();
    let windows = window_logits(&classifier, &examples)?;
    let seconds = started.elapsed().as_secs_f64();
    let sequences: usize = windows.iter().map(|w| w.logits.len()).sum();
    let probs: Vec<Vec<f32>> = windows.iter().map(|w| classifier.pool(w)).collect();
    let truth: Vec<usize> = examples
        .iter()
        .map(|e| {
            labels
                .iter()
                .position(|l| *l == e.label)
                .expect("label listed")
        })
        .collect();
    let pred: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let p_true: Vec<f32> = probs
        .iter()
        .zip(&truth)
        .map(|(p, &t)| p.get(t).copied().unwrap_or(0.0))
        .collect();
    let p_pred: Vec<f32> = probs
        .iter()
        .zip(&pred)
        .map(|(p, &i)| p.get(i).copied().unwrap_or(0.0))
        .collect();
    let report = model::report(&labels, &truth, &pred, &p_true, &p_pred);
    if let Some(path) = &args.windows_out {
        write_window_logits(path, &examples, &windows)?;
    }

    std::fs::create_dir_all(&args.report)
        .with_context(|| format!("cannot create {}", args.report.display()))?;
    let json = json!({
        "model": args.model.display().to_string(),
        "data": args.input.data.display().to_string(),
        "split": args.input.split,
        "examples": report.examples,
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "loss": report.loss,
        "ece": report.ece,
        "labels": report.labels,
        "unknown_labels": unknown,
        "per_class": report.per_class,
        "confusion": report.confusion,
        "inference": classifier.settings(),
        "sequences": sequences,
        "seconds": seconds,
    });
    write(
        &args.report.join("report.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    write_confusion_csv(&args.report.join("confusion.csv"), &report)?;
    write_predictions_csv(
        &args.report.join("predictions.csv"),
        &examples,
        &labels,
        &pred,
        &probs,
    )?;
    plot::confusion_png(
        &args.report.join("confusion.png"),
        &report.labels,
        &report.confusion,
    )?;
    let log = args.model.join(TRAINING_LOG);
    let curve = if log.is_file() {
        let points = read_training_log(&log)?;
        plot::training_curve_png(&args.report.join("training_curve.png"), &points)?;
        true
    } else {
        false
    };

    println!(
        "accuracy {:.4}, macro-F1 {:.4}, calibration error {:.4} on {} examples ({} labels)",
        report.accuracy,
        report.macro_f1,
        report.ece,
        report.examples,
        report.labels.len()
    );
    println!(
        "{} sequences in {seconds:.1} s ({:.1} a second, {:.3} s a text)",
        sequences,
        sequences as f64 / seconds.max(1e-9),
        seconds / report.examples.max(1) as f64
    );
    let mut worst: Vec<&model::ClassMetrics> =
        report.per_class.iter().filter(|c| c.support > 0).collect();
    worst.sort_by(|a, b| a.f1.total_cmp(&b.f1).then(b.support.cmp(&a.support)));
    let worst: Vec<String> = worst
        .iter()
        .take(3)
        .filter(|c| c.f1 < 1.0)
        .map(|c| {
            format!(
                "{} F1 {:.3} (precision {:.3}, recall {:.3}, {} examples)",
                c.label, c.f1, c.precision, c.recall, c.support
            )
        })
        .collect();
    if !worst.is_empty() {
        println!("worst classes: {}", worst.join("; "));
    }
    let pictures = if curve {
        "confusion.png, training_curve.png"
    } else {
        "confusion.png"
    };
    println!(
        "report written to {} (report.json, confusion.csv, predictions.csv, {pictures})",
        args.report.display()
    );
    Ok(())
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Every example's window logits ([`Classifier::window_logits`]), in chunks with a progress bar.
fn window_logits(classifier: &Classifier, examples: &[Example]) -> Result<Vec<Windows>> {
    let bar = ProgressBar::new(examples.len() as u64).with_style(
        ProgressStyle::with_template("eval {bar:30} {pos}/{len} texts {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        out.extend(classifier.window_logits(&texts)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// One JSON line a call with the logits of each of its windows, in text order.
fn write_window_logits(path: &Path, examples: &[Example], windows: &[Windows]) -> Result<()> {
    let mut out = String::new();
    for (e, w) in examples.iter().zip(windows) {
        let line = json!({
            "contact_id": e.id,
            "label": e.label,
            "windows": w.logits,
            "distances": w.distances,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    write(path, out)
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// `true_label` then one column per predicted label; one row per true label.
fn write_confusion_csv(path: &Path, report: &EvalReport) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["true_label".to_string()];
    header.extend(report.labels.iter().cloned());
    w.write_record(&header)?;
    for (label, row) in report.labels.iter().zip(&report.confusion) {
        let mut record = vec![label.clone()];
        record.extend(row.iter().map(usize::to_string));
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

/// One row per example: contact id (when known), true label, predicted label and its score.
fn write_predictions_csv(
    path: &Path,
    examples: &[Example],
    labels: &[String],
    pred: &[usize],
    probs: &[Vec<f32>],
) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(["contact_id", "label", "predicted", "score", "correct"])?;
    for ((e, &p), probs) in examples.iter().zip(pred).zip(probs) {
        w.write_record([
            e.id.as_deref().unwrap_or(""),
            &e.label,
            &labels[p],
            &format!("{:.6}", probs[p]),
            if e.label == labels[p] {
                "true"
            } else {
                "false"
            },
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The per-epoch results of a `training_log.json`.
fn read_training_log(path: &Path) -> Result<Vec<EpochPoint>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let log: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let epochs = log
        .get("epochs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let dev = |e: &Value, k: &str| e.get("dev").and_then(|d| d.get(k)).and_then(Value::as_f64);
    Ok(epochs
        .iter()
        .filter_map(|e| {
            Some(EpochPoint {
                epoch: e.get("epoch")?.as_u64()? as usize,
                train_loss: e.get("train_loss")?.as_f64()?,
                dev_loss: dev(e, "loss"),
                dev_accuracy: dev(e, "accuracy"),
                dev_macro_f1: dev(e, "macro_f1"),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_flags_parse() {
        assert_eq!(
            parse_long_text("head-tail"),
            Ok(LongText::HeadTail { head_fraction: 0.5 })
        );
        assert_eq!(
            parse_long_text("head-tail:0.25"),
            Ok(LongText::HeadTail {
                head_fraction: 0.25
            })
        );
        assert_eq!(
            parse_long_text("windows:64"),
            Ok(LongText::Windows {
                overlap: 64,
                pool: Pool::Mean
            })
        );
        assert_eq!(
            parse_long_text("windows"),
            Ok(LongText::Windows {
                overlap: 32,
                pool: Pool::Mean
            })
        );
        assert_eq!(
            parse_long_text("windows:31:max"),
            Ok(LongText::Windows {
                overlap: 31,
                pool: Pool::Max
            })
        );
        assert!(parse_long_text("windows:31:median").is_err());
        assert!(parse_long_text("head-tail:2").is_err());
        assert!(parse_long_text("windows:x").is_err());
        assert!(parse_long_text("middle").is_err());
    }
}
