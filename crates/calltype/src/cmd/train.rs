//! `calltype train --backbone DIR --data CSV|DIR --out DIR`: fine-tunes a backbone into a
//! call-type classifier in Hugging Face layout.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use model::{DevStats, LongText, TrainConfig, TrainProgress};

use super::data::{self, label_counts, warn, Example};

#[derive(clap::Args)]
pub struct Args {
    /// The backbone to fine-tune: a Hugging Face model directory (e.g. models/all-MiniLM-L6-v2)
    /// or a model id (e.g. distilbert-base-uncased), fetched into the Hugging Face cache.
    #[arg(long)]
    backbone: PathBuf,
    #[command(flatten)]
    input: data::LabelledData,
    /// Dev data in the same forms; without it, a seeded stratified split of --data.
    #[arg(long)]
    dev: Option<PathBuf>,
    /// With a --dev directory: its labels CSV.
    #[arg(long)]
    dev_labels: Option<PathBuf>,
    /// Keep only the dev rows whose `split` column is this.
    #[arg(long)]
    dev_split: Option<String>,
    /// Share of each label's examples held out for dev when --dev is not given (0: none).
    #[arg(long, default_value_t = 0.1)]
    dev_fraction: f64,
    /// Labels with fewer examples than this are left out (and reported).
    #[arg(long, default_value_t = 2)]
    min_examples: usize,
    /// Seed of the split, head initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Passes over the training set [default: 5; a few-shot set, under 32 examples a label on
    /// average, trains for about a thousand optimiser steps, 5 to 40 epochs].
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per micro-batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate [default: 5e-5; 2e-4 for a few-shot set, see --epochs].
    #[arg(long)]
    lr: Option<f64>,
    /// Token budget per sequence, [CLS]/[SEP] included: a call over it trains as the bag of
    /// its windows of this size (see --long-calls).
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Label smoothing of the training loss, in [0, 1): the target puts 1 - S on the label and
    /// S spread evenly over all labels (as the Hugging Face Trainer's label_smoothing_factor).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// How long calls train: `bags` (a call of five windows or more as all its windows, each
    /// label's largest window probability, learned end to end; shorter calls head+tail;
    /// docs/long-calls.md) or `head-tail` (every call cut to its first and last tokens; the
    /// default until bags show a gain on the long-call benchmark).
    #[arg(long, value_enum, default_value_t = LongCalls::HeadTail)]
    long_calls: LongCalls,
    /// How the saved model reads calls longer than --max-tokens:
    /// `windows[:N[:mean|max|familiar]]` (overlapping windows sharing N tokens, probabilities
    /// pooled) or `head-tail[:F]`. Default: windows sharing a quarter of the budget,
    /// max-pooled over the familiar windows, those near a label's training centre
    /// (centroids.safetensors, fitted after training; docs/long-calls.md).
    #[arg(long, value_parser = super::eval::parse_long_text)]
    long_text: Option<LongText>,
    /// Memory a training step may use, in GiB; a batch that would not fit is split into
    /// micro-batches with gradient accumulation (same examples per step). 0: no limit.
    #[arg(long, default_value_t = 8.0)]
    memory_limit_gb: f64,
    /// Where the model is written (Hugging Face layout plus training_log.json).
    #[arg(long)]
    out: PathBuf,
}

/// The values of `--long-calls`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LongCalls {
    Bags,
    HeadTail,
}

pub fn run(mut args: Args) -> Result<()> {
    // Steps reuse the pages of the step before instead of faulting in fresh ones (model::alloc).
    let kept = model::keep_freed_memory();
    tracing::debug!(kept, "allocator keeps freed memory");
    args.backbone = crate::hub::resolve(&args.backbone)?;
    if !(0.0..1.0).contains(&args.dev_fraction) {
        bail!("--dev-fraction must be in [0, 1)");
    }
    let columns = args.input.columns();
    let pool = args.input.load()?;
    let pool = drop_rare(pool, args.min_examples);
    let (train, dev) = match &args.dev {
        Some(dev) => {
            let dev = data::load_labelled(
                dev,
                args.dev_labels.as_deref(),
                &columns,
                args.dev_split.as_deref(),
            )?;
            (pool, dev)
        }
        None => data::stratified_split(pool, args.dev_fraction, args.seed),
    };
    let known: BTreeSet<&str> = train.iter().map(|e| e.label.as_str()).collect();
    let (dev, orphans): (Vec<Example>, Vec<Example>) = dev
        .into_iter()
        .partition(|e| known.contains(e.label.as_str()));
    if !orphans.is_empty() {
        let labels: BTreeSet<&str> = orphans.iter().map(|e| e.label.as_str()).collect();
        warn(format!(
            "{} dev example(s) left out: their label has no training example ({})",
            orphans.len(),
            labels.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if known.len() < 2 {
        bail!(
            "training needs at least two labels with {} or more examples; found {}",
            args.min_examples,
            known.len()
        );
    }
    eprintln!(
        "training on {} examples ({} labels), dev {} examples",
        train.len(),
        known.len(),
        dev.len()
    );
    let (epochs, lr) =
        model::default_schedule(train.len(), known.len(), args.batch_size, args.grad_accum);
    if model::is_few_shot(train.len(), known.len()) && (args.epochs.is_none() || args.lr.is_none())
    {
        eprintln!(
            "few labels ({:.1} examples a label): {} epochs at lr {:e} unless --epochs/--lr say \
             otherwise",
            train.len() as f64 / known.len() as f64,
            args.epochs.unwrap_or(epochs),
            args.lr.unwrap_or(lr)
        );
    }

    let cfg = TrainConfig {
        epochs: args.epochs.unwrap_or(epochs),
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        lr: args.lr.unwrap_or(lr),
        max_tokens: args.max_tokens,
        seed: args.seed,
        label_smoothing: args.label_smoothing,
        long_text: args.long_text,
        bags: match args.long_calls {
            LongCalls::Bags => Some(model::BagTraining::default()),
            LongCalls::HeadTail => None,
        },
        memory_limit: (args.memory_limit_gb > 0.0)
            .then_some((args.memory_limit_gb * (1u64 << 30) as f64) as u64),
        ..TrainConfig::default()
    };
    let pairs = |xs: &[Example]| -> Vec<(String, String)> {
        xs.iter()
            .map(|e| (e.text.clone(), e.label.clone()))
            .collect()
    };
    let (train_pairs, dev_pairs) = (pairs(&train), pairs(&dev));
    drop((train, dev));
    std::fs::create_dir_all(&args.out)?;
    let mut bar = Bar::new(&cfg);
    let report = model::train(
        &args.backbone,
        &train_pairs,
        &dev_pairs,
        &cfg,
        &args.out,
        &mut |p| bar.update(p),
    );
    bar.finish();
    let report = report?;

    println!(
        "trained {} epoch(s) in {:.1} s on {} examples, {} labels; dev {} examples",
        report.epochs.len(),
        report.seconds,
        train_pairs.len(),
        report.labels.len(),
        dev_pairs.len()
    );
    let best = &report.epochs[report.best_epoch.max(1) - 1];
    match &best.dev {
        Some(d) => println!("best epoch {}: {}", report.best_epoch, dev_line(d)),
        None => println!(
            "no dev data: the last epoch ({}) is saved",
            report.best_epoch
        ),
    }
    let trials: Vec<String> = report
        .long_text_trials
        .iter()
        .map(|(lt, d)| {
            format!(
                "{} dev loss {:.4}, accuracy {:.3}",
                long_text_name(lt),
                d.loss,
                d.accuracy
            )
        })
        .collect();
    if trials.is_empty() {
        println!("long calls: {}", long_text_name(&report.long_text));
    } else {
        println!(
            "long calls: {} (on dev: {})",
            long_text_name(&report.long_text),
            trials.join(", ")
        );
    }
    if let Some((before, after)) = &report.calibration {
        println!(
            "scores: temperature {:.3} fitted on dev, calibration error {:.4} -> {:.4}",
            report.temperature, before.ece, after.ece
        );
    }
    println!("model written to {}", report.out_dir.display());
    Ok(())
}

/// Leaves out the labels with fewer than `min` examples, saying which.
fn drop_rare(pool: Vec<Example>, min: usize) -> Vec<Example> {
    let rare: Vec<(String, usize)> = label_counts(&pool)
        .into_iter()
        .filter(|(_, n)| *n < min)
        .map(|(l, n)| (l.to_string(), n))
        .collect();
    if rare.is_empty() {
        return pool;
    }
    let list: Vec<String> = rare.iter().map(|(l, n)| format!("{l:?} ({n})")).collect();
    warn(format!(
        "{} label(s) have fewer than {min} examples and were left out: {}",
        rare.len(),
        list.join(", ")
    ));
    let rare: BTreeSet<String> = rare.into_iter().map(|(l, _)| l).collect();
    pool.into_iter()
        .filter(|e| !rare.contains(&e.label))
        .collect()
}

fn dev_line(d: &DevStats) -> String {
    format!(
        "dev loss {:.4}, accuracy {:.3}, macro-F1 {:.3}, calibration error {:.4}",
        d.loss, d.accuracy, d.macro_f1, d.ece
    )
}

fn long_text_name(lt: &LongText) -> String {
    match lt {
        LongText::HeadTail { head_fraction } => format!("head+tail (head {head_fraction})"),
        LongText::Windows { overlap, pool } => {
            format!("windows (overlap {overlap} tokens, {pool:?} pooling)")
        }
    }
}

/// The progress bar: steps, a smoothed loss, examples per second; a line per epoch.
struct Bar {
    bar: ProgressBar,
    epochs: usize,
    examples_per_step: usize,
    batch: usize,
    memory_limit: Option<u64>,
    examples: usize,
    steps_per_epoch: usize,
    epoch_started: Instant,
    loss: Option<f32>,
    /// When stderr is not a terminal the bar is hidden; a plain line is printed this often.
    last_line: Instant,
}

/// How often a progress line is printed when the bar cannot be drawn (logs, CI, nohup).
const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Bar {
    fn new(cfg: &TrainConfig) -> Self {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("train {bar:30} {pos}/{len} steps {msg} eta {eta}")
                .expect("valid template"),
        );
        Self {
            bar,
            epochs: cfg.epochs,
            examples_per_step: cfg.batch_size * cfg.grad_accum,
            batch: cfg.batch_size,
            memory_limit: cfg.memory_limit,
            examples: 0,
            steps_per_epoch: 1,
            epoch_started: Instant::now(),
            loss: None,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, p: TrainProgress) {
        match p {
            TrainProgress::Started {
                examples,
                total_steps,
                micro_batch,
                grad_accum,
                estimated_bytes,
            } => {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                if micro_batch != self.batch {
                    eprintln!(
                        "memory: {micro_batch} example(s) a pass x {grad_accum} accumulated a step (estimated {:.1} GiB)",
                        gib(estimated_bytes)
                    );
                }
                if let Some(limit) = self.memory_limit.filter(|&l| estimated_bytes > l) {
                    warn(format!(
                        "even one example a pass is estimated at {:.1} GiB, over the {:.1} GiB memory limit",
                        gib(estimated_bytes),
                        gib(limit)
                    ));
                }
                self.examples = examples;
                self.steps_per_epoch = (total_steps / self.epochs.max(1)).max(1);
                self.bar.set_length(total_steps as u64);
                self.epoch_started = Instant::now();
            }
            TrainProgress::Step {
                epoch, step, loss, ..
            } => {
                let smoothed = match self.loss {
                    Some(l) => 0.9 * l + 0.1 * loss,
                    None => loss,
                };
                self.loss = Some(smoothed);
                let in_epoch = step - (epoch - 1) * self.steps_per_epoch;
                let seen = (in_epoch * self.examples_per_step).min(self.examples);
                let rate = seen as f64 / self.epoch_started.elapsed().as_secs_f64().max(1e-9);
                self.bar.set_position(step as u64);
                let msg = format!(
                    "epoch {epoch}/{} loss {smoothed:.4} {rate:.1} ex/s",
                    self.epochs
                );
                if self.bar.is_hidden() && self.last_line.elapsed() >= LINE_EVERY {
                    eprintln!("step {step}/{}: {msg}", self.bar.length().unwrap_or(0));
                    self.last_line = Instant::now();
                }
                self.bar.set_message(msg);
            }
            TrainProgress::Epoch(log) => {
                let dev = log
                    .dev
                    .as_ref()
                    .map(dev_line)
                    .unwrap_or_else(|| "no dev".into());
                let saved = if log.saved { ", saved" } else { "" };
                self.bar.suspend(|| {
                    eprintln!(
                        "epoch {}/{}: train loss {:.4}, {dev} ({:.1} s{saved})",
                        log.epoch, self.epochs, log.train_loss, log.seconds
                    )
                });
                self.epoch_started = Instant::now();
            }
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
