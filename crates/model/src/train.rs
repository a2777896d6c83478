//! Fine-tuning a backbone into a sequence classifier.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::classifier::{Classifier, InferenceSettings};
use crate::familiar::{Centroids, CENTROIDS_FILE};
use crate::metrics::evaluate;
use crate::nn::{Batch, Ctx};
use crate::optim::{clip_scale, decays, linear_schedule, AdamWParams};
use crate::rng::Rng;
use crate::tokenize::{LongText, Pool, TextEncoder};
use crate::trainable::Trainable;
use crate::weights::{load_backbone, save_classifier};
use crate::ModelError;

/// File beside the saved model with the configuration and per-epoch results.
pub const TRAINING_LOG: &str = "training_log.json";

/// Training settings. Defaults follow common BERT fine-tuning practice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay (not applied to biases and layer-norm weights).
    pub weight_decay: f64,
    /// Share of the optimiser steps spent warming up linearly from 0; then linear decay to 0.
    pub warmup_ratio: f64,
    /// Token budget per training example, `[CLS]`/`[SEP]` included (head+tail truncation).
    pub max_tokens: usize,
    /// Share of the content budget taken from the start of a long text.
    pub head_fraction: f32,
    /// Seed of head initialisation, shuffling and dropout.
    pub seed: u64,
    /// Global gradient-norm clip; `None` disables clipping.
    pub grad_clip: Option<f64>,
    /// Overrides every dropout probability of the backbone config when set.
    pub dropout: Option<f32>,
    /// Label smoothing of the training loss, in `[0, 1)` (0: plain cross-entropy); see
    /// [`Trainable::set_label_smoothing`]. Dev loss is always plain cross-entropy.
    pub label_smoothing: f64,
    /// Memory a training step may use, in bytes (parameters, gradients, AdamW moments and the
    /// activations of one micro-batch, estimated by [`activation_bytes`]). When a micro-batch of
    /// `batch_size` would not fit, it is split and gradients accumulated so that the optimiser
    /// still sees `batch_size × grad_accum` examples a step ([`plan_batches`]). `None`: no limit.
    pub memory_limit: Option<u64>,
    /// Inference strategy for long texts saved with the model. `None`: overlapping windows (a
    /// quarter of the budget shared) with max pooling, [`default_long_text`], the strategy that
    /// held up both on plain calls and on calls buried in generic talk (docs/long-calls.md).
    /// Dev evaluation during training uses head+tail, the form the model trains on; after
    /// training, when a dev text is over budget, the saved model is also evaluated on dev with
    /// head+tail and both window poolings, for the log ([`TrainReport::long_text_trials`]).
    pub long_text: Option<LongText>,
    /// How a long call trains. `Some` (`calltype train --long-calls bags`): a call of at least
    /// [`BagTraining::from_windows`] windows as the bag of all its windows, each label's
    /// largest window log-probability taken ([`Pool::Max`]), the loss on the call's label
    /// (multiple-instance learning; [`BagTraining`]), and dev is evaluated with that pooling;
    /// shorter calls head+tail. `None` (the default until bags show a gain on the long-call
    /// benchmark, docs/long-calls.md): every call cut head+tail to `max_tokens`, dev
    /// evaluated head+tail. The saved model labels long calls with max-pooled windows in both
    /// cases.
    pub bags: Option<BagTraining>,
}

/// Multiple-instance training of long calls, with a bounded cost. A call of at least
/// `from_windows` windows is a bag: every `refresh_steps` optimiser steps, the current
/// weights score (in eval mode, with the fast inference path) at most `scored` of its
/// windows — the windows chosen last time plus a random sample of the others — and the call
/// trains on up to `trained` of them: the window with the largest probability for the call's
/// label, then, for each competing label whose pooled probability is at least
/// [`RIVAL_MIN`], the window that gives it its largest probability. The max pooling's
/// gradient reaches exactly those windows, and a label that barely competes gets a gradient
/// of its pooled probability, so back-propagating through them alone loses little. A call of
/// fewer windows trains head+tail, one window, as without bags: it costs what it always did.
///
/// Cost on STAR at 128 tokens with a third of the calls wrapped in 500-2,700 words of generic
/// talk (BENCHMARKS-MODEL.md): plain calls (2-4 windows) train as before; a wrapped call costs
/// `scored` inference windows (about a seventh of a training window each) and one or two
/// training windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BagTraining {
    /// Windows of a call scored per refresh, at most.
    pub scored: usize,
    /// Windows of a call back-propagated per step, at most.
    pub trained: usize,
    /// Optimiser steps between two scorings of the windows.
    pub refresh_steps: usize,
    /// A call of at least this many windows trains as a bag; a shorter one head+tail.
    pub from_windows: usize,
}

/// A competing label's pooled probability (renormalised over labels) below which its
/// loudest window is not back-propagated: its share of the gradient is that probability.
pub const RIVAL_MIN: f32 = 0.05;

impl Default for BagTraining {
    fn default() -> Self {
        Self {
            scored: 12,
            trained: 2,
            refresh_steps: 32,
            from_windows: 5,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 16,
            grad_accum: 1,
            lr: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_tokens: 256,
            head_fraction: 0.5,
            seed: 42,
            grad_clip: Some(1.0),
            dropout: None,
            label_smoothing: 0.0,
            memory_limit: Some(8 << 30),
            long_text: None,
            bags: None,
        }
    }
}

/// Mean training examples per label below which a set counts as few-shot for
/// [`default_schedule`].
pub const FEW_SHOT_PER_LABEL: usize = 32;
/// Optimiser steps a few-shot set trains for at the least ([`default_schedule`]).
pub const FEW_SHOT_MIN_STEPS: usize = 960;
/// The peak learning rate of a few-shot set ([`default_schedule`]).
pub const FEW_SHOT_LR: f64 = 2e-4;

/// Whether `examples` over `labels` is a few-shot set: under [`FEW_SHOT_PER_LABEL`] examples a
/// label on average ([`default_schedule`]).
pub fn is_few_shot(examples: usize, labels: usize) -> bool {
    examples < FEW_SHOT_PER_LABEL * labels.max(1)
}

/// The epochs and peak learning rate a training set of `examples` over `labels` gets when the
/// user names neither: [`TrainConfig`]'s defaults (5 epochs at 5e-5) from
/// [`FEW_SHOT_PER_LABEL`] examples per label up; a smaller, few-shot set trains at
/// [`FEW_SHOT_LR`] for enough epochs to make [`FEW_SHOT_MIN_STEPS`] optimiser steps (5 to 40).
/// Why: with 10 examples for each of Banking77's 77 intents (770, batch 16) the defaults make
/// 245 steps at 5e-5, in which a fresh 77-way head hardly moves (dev accuracy 0.48, train loss
/// 3.87 of ln 77 = 4.34); 2e-4 for 20 epochs (980 steps) reaches the accuracy in the issue-22
/// note (`docs/few-labels.md`).
pub fn default_schedule(
    examples: usize,
    labels: usize,
    batch_size: usize,
    grad_accum: usize,
) -> (usize, f64) {
    let d = TrainConfig::default();
    if !is_few_shot(examples, labels) {
        return (d.epochs, d.lr);
    }
    let per_step = (batch_size * grad_accum).max(1);
    let steps_per_epoch = examples.div_ceil(per_step).max(1);
    let epochs = FEW_SHOT_MIN_STEPS.div_ceil(steps_per_epoch).clamp(5, 40);
    (epochs, FEW_SHOT_LR)
}

/// The long-text strategy a trained model is saved with unless told otherwise: windows of
/// `max_tokens` sharing a quarter of the content budget, probabilities max-pooled over the
/// familiar windows ([`Pool::Familiar`], with the centroids `train` fits). On the long-call
/// benchmark (STAR dev calls inside 1,000-5,000 words of generic talk) the plain STAR model
/// reaches macro-F1 0.97 with it against 0.68 with max pooling over every window, and the
/// same 0.994 on plain calls (docs/long-calls.md).
pub fn default_long_text(max_tokens: usize) -> LongText {
    LongText::Windows {
        overlap: max_tokens.saturating_sub(2) / 4,
        pool: Pool::Familiar,
    }
}

/// Bytes that one example of `tokens` tokens keeps alive through a training step: per layer,
/// 11 `tokens × hidden` f32 activations (input, packed QKV, context, the two projections, the
/// residual sums and layer-norm outputs, the second feed-forward output), 2 `tokens ×
/// intermediate` (the feed-forward pre-activation and output) and the `heads × tokens²`
/// attention probabilities; and as much again for the gradients and temporaries of backward.
/// Measured with MiniLM at 512 tokens (`examples/train_step.rs`, peak RSS): 1.46 GiB at 4
/// examples, 5.24 GiB at 16, i.e. 338 MB an example; this gives 335 MB.
pub fn activation_bytes(enc: &crate::config::EncoderConfig, tokens: usize) -> u64 {
    let (t, h) = (tokens as u64, enc.hidden as u64);
    let ff = enc.intermediate as u64;
    // 11 tokens × hidden and 2 tokens × intermediate, as written out above.
    let per_layer = t * h * 11 + t * ff * 2 + enc.heads as u64 * t * t;
    let embeddings = 3 * t * h;
    4 * (per_layer * enc.layers as u64 + embeddings) * 2
}

/// Bytes a parameter keeps through training: the f32 value, its gradient and two AdamW moments.
const BYTES_PER_PARAM: u64 = 16;

/// Estimated peak bytes of a training step: `params` parameters with their optimiser state,
/// and the activations of `micro_batch` examples of `tokens` tokens ([`activation_bytes`]).
pub fn step_bytes(
    enc: &crate::config::EncoderConfig,
    params: usize,
    tokens: usize,
    micro_batch: usize,
) -> u64 {
    BYTES_PER_PARAM * params as u64 + micro_batch as u64 * activation_bytes(enc, tokens)
}

/// `(micro_batch, accumulation)` for `batch_size × grad_accum` examples a step of at most
/// `tokens` tokens within `limit` bytes, the parameters (`params` f32 values, each with a
/// gradient and two AdamW moments) included. The micro-batch is the largest divisor of the
/// step's examples that fits, so that every step still has exactly that many examples;
/// 1 when nothing fits (then the limit is exceeded, and the caller should say so).
pub fn plan_batches(
    enc: &crate::config::EncoderConfig,
    params: usize,
    tokens: usize,
    batch_size: usize,
    grad_accum: usize,
    limit: Option<u64>,
) -> (usize, usize) {
    let Some(limit) = limit else {
        return (batch_size, grad_accum);
    };
    let fixed = step_bytes(enc, params, tokens, 0);
    let per_example = activation_bytes(enc, tokens).max(1);
    let fit = (limit.saturating_sub(fixed) / per_example) as usize;
    if fit >= batch_size {
        return (batch_size, grad_accum);
    }
    let step = batch_size * grad_accum;
    let micro = (1..=fit.max(1))
        .rev()
        .find(|d| step.is_multiple_of(*d))
        .unwrap_or(1);
    (micro, step / micro)
}

/// Dev-set results after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DevStats {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro-F1.
    pub macro_f1: f64,
    /// Expected calibration error of the winning label's score.
    #[serde(default)]
    pub ece: f64,
}

impl DevStats {
    fn of(r: &crate::metrics::EvalReport) -> Self {
        Self {
            loss: r.loss,
            accuracy: r.accuracy,
            macro_f1: r.macro_f1,
            ece: r.ece,
        }
    }
}

/// One epoch's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch (dropout on).
    pub train_loss: f64,
    /// Dev results, when a dev set was given.
    pub dev: Option<DevStats>,
    /// Wall-clock seconds of the epoch, evaluation included.
    pub seconds: f64,
    /// Whether this epoch's weights were written to the output directory.
    pub saved: bool,
}

/// Progress events for a CLI progress bar.
#[derive(Debug, Clone)]
pub enum TrainProgress {
    /// Training is about to start.
    Started {
        /// Training examples.
        examples: usize,
        /// Optimiser steps in total.
        total_steps: usize,
        /// Examples per forward/backward pass (below `batch_size` when the memory limit
        /// required splitting).
        micro_batch: usize,
        /// Micro-batches per optimiser step.
        grad_accum: usize,
        /// Estimated peak bytes of a step (parameters, optimiser state, one micro-batch).
        estimated_bytes: u64,
    },
    /// An optimiser step finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// Optimiser steps done so far.
        step: usize,
        /// Optimiser steps in total.
        total_steps: usize,
        /// Loss of the step's batch.
        loss: f32,
        /// Learning rate used.
        lr: f64,
    },
    /// An epoch finished (dev evaluated, maybe saved).
    Epoch(EpochLog),
}

/// The outcome of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Labels in id order.
    pub labels: Vec<String>,
    /// Per-epoch results.
    pub epochs: Vec<EpochLog>,
    /// The epoch whose weights are saved (lowest dev loss; the last one without dev data).
    pub best_epoch: usize,
    /// Where the model was written.
    pub out_dir: PathBuf,
    /// Long-text strategy saved in `calltype.json`.
    pub long_text: LongText,
    /// Dev results of the saved model with each long-text strategy (head+tail, windows with
    /// mean and with max pooling); empty when no dev text is over budget. Information only:
    /// a plain dev set cannot show how a strategy fares on calls buried in generic talk.
    pub long_text_trials: Vec<(LongText, DevStats)>,
    /// Temperature saved in `calltype.json` (fitted on dev; 1 without dev data).
    pub temperature: f32,
    /// Dev results of the saved model before and after temperature scaling.
    pub calibration: Option<(DevStats, DevStats)>,
    /// Total wall-clock seconds.
    pub seconds: f64,
}

#[derive(Serialize, Clone)]
struct LogFile<'a> {
    backbone: String,
    config: &'a TrainConfig,
    labels: &'a [String],
    train_examples: usize,
    dev_examples: usize,
    total_steps: usize,
    micro_batch: usize,
    grad_accum: usize,
    best_epoch: usize,
    epochs: &'a [EpochLog],
    long_text: Option<LongText>,
    long_text_trials: &'a [(LongText, DevStats)],
    temperature: f32,
    calibration: Option<&'a (DevStats, DevStats)>,
}

fn validate(cfg: &TrainConfig) -> Result<(), ModelError> {
    let bad = |m: &str| Err(ModelError::TrainConfig(m.to_string()));
    if cfg.epochs == 0 {
        return bad("epochs must be at least 1");
    }
    if cfg.batch_size == 0 || cfg.grad_accum == 0 {
        return bad("batch_size and grad_accum must be at least 1");
    }
    if !cfg.lr.is_finite()
        || cfg.lr <= 0.0
        || cfg.weight_decay < 0.0
        || !(0.0..1.0).contains(&cfg.warmup_ratio)
    {
        return bad("lr must be > 0, weight_decay >= 0, warmup_ratio in [0, 1)");
    }
    if cfg.max_tokens < 3 {
        return bad("max_tokens must be at least 3");
    }
    if let Some(p) = cfg.dropout {
        if !(0.0..1.0).contains(&p) {
            return bad("dropout must be in [0, 1)");
        }
    }
    if !(0.0..1.0).contains(&cfg.label_smoothing) {
        return bad("label_smoothing must be in [0, 1)");
    }
    if cfg.memory_limit == Some(0) {
        return bad("memory_limit must be positive");
    }
    if let Some(b) = cfg.bags {
        if b.trained == 0 || b.scored < b.trained || b.refresh_steps == 0 || b.from_windows < 2 {
            return bad(
                "bags need trained >= 1, scored >= trained, refresh_steps >= 1 and from_windows >= 2",
            );
        }
    }
    Ok(())
}

/// Fine-tunes the backbone in `backbone_dir` (HF layout; a bare encoder or a classifier whose
/// head is replaced) on `(text, label)` pairs, evaluates on `dev` after every epoch and
/// writes the epoch with the lowest dev loss to `out_dir` in HF layout, with
/// `calltype.json` and `training_log.json`. Labels are the sorted distinct training labels.
pub fn train(
    backbone_dir: &Path,
    train: &[(String, String)],
    dev: &[(String, String)],
    cfg: &TrainConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<TrainReport, ModelError> {
    validate(cfg)?;
    let started = Instant::now();
    if train.is_empty() {
        return Err(ModelError::Data("no training examples".into()));
    }
    let labels: Vec<String> = train
        .iter()
        .map(|(_, l)| l.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if labels.len() < 2 {
        return Err(ModelError::Data(
            "training data needs at least two labels".into(),
        ));
    }
    if let Some((_, l)) = dev.iter().find(|(_, l)| !labels.contains(l)) {
        return Err(ModelError::Data(format!(
            "dev label {l:?} does not occur in the training data"
        )));
    }
    let label_id: HashMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();

    let (base_config, weights) = load_backbone(backbone_dir, labels.len(), cfg.seed)?;
    let mut config = base_config.clone();
    if let Some(p) = cfg.dropout {
        config.encoder.hidden_dropout = p;
        config.encoder.attention_dropout = p;
        config.encoder.classifier_dropout = p;
    }
    let max_tokens = cfg.max_tokens.min(config.encoder.max_positions);
    let text_encoder = TextEncoder::load(backbone_dir)?;
    let head_tail = LongText::HeadTail {
        head_fraction: cfg.head_fraction,
    };
    // A call of `from_windows` windows or more is the bag of its windows; any other call is
    // its head and tail (one window when it fits).
    let mut examples: Vec<Example> = Vec::with_capacity(train.len());
    for (text, label) in train {
        let mut windows = text_encoder.encode(text, max_tokens, head_tail)?;
        if let Some(b) = cfg.bags {
            let all = text_encoder.encode(text, max_tokens, default_long_text(max_tokens))?;
            if all.len() >= b.from_windows {
                windows = all;
            }
        }
        examples.push(Example {
            chosen: (0..windows.len().min(1)).collect(),
            windows,
            label: label_id[label.as_str()],
        });
    }
    // Dev evaluation while training: as the model is trained (bags: the saved pooling).
    let saved_long = cfg
        .long_text
        .unwrap_or_else(|| default_long_text(max_tokens));
    let settings = InferenceSettings {
        max_tokens,
        long_text: if cfg.bags.is_some() {
            saved_long
        } else {
            head_tail
        },
        ..InferenceSettings::default()
    };
    let saved = InferenceSettings {
        long_text: saved_long,
        ..settings
    };

    // Centroids of an earlier model in the same directory must not meet these weights.
    match std::fs::remove_file(out_dir.join(CENTROIDS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ModelError::io(out_dir.join(CENTROIDS_FILE), e))
        }
        _ => {}
    }
    let mut model = Trainable::new(config.clone(), labels.clone(), &weights)?;
    model.set_label_smoothing(cfg.label_smoothing);
    let params: usize = weights.values().map(|t| t.elem_count()).sum();
    drop(weights);
    let mut opt = model.optimizer(
        AdamWParams {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..AdamWParams::default()
        },
        decays,
    )?;
    let longest = examples.iter().map(Example::longest).max().unwrap_or(1);
    // A long call trains on up to `trained` windows: its activations count that many times.
    let rows = match cfg.bags {
        Some(b) if examples.iter().any(|e| e.windows.len() > 1) => b.trained,
        _ => 1,
    };
    let fixed = step_bytes(&config.encoder, params, longest, 0);
    let limit = cfg
        .memory_limit
        .map(|l| fixed + l.saturating_sub(fixed) / rows as u64);
    let (micro, accum) = plan_batches(
        &config.encoder,
        params,
        longest,
        cfg.batch_size,
        cfg.grad_accum,
        limit,
    );
    let estimated_bytes =
        fixed + (step_bytes(&config.encoder, params, longest, micro) - fixed) * rows as u64;
    let batches_per_epoch = examples.len().div_ceil(micro);
    let steps_per_epoch = batches_per_epoch.div_ceil(accum);
    let total_steps = steps_per_epoch * cfg.epochs;
    let warmup = (total_steps as f64 * cfg.warmup_ratio).ceil() as usize;
    progress(TrainProgress::Started {
        examples: examples.len(),
        total_steps,
        micro_batch: micro,
        grad_accum: accum,
        estimated_bytes,
    });

    let mut rng = Rng::new(cfg.seed ^ 0x7261_696e);
    let mut step = 0usize;
    let mut epochs: Vec<EpochLog> = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(usize, f64)> = None;
    // What `training_log.json` says of the whole run; each write adds the epochs so far, and
    // the last one the long-text trials and the calibration.
    let run_log = LogFile {
        backbone: backbone_dir.display().to_string(),
        config: cfg,
        labels: &labels,
        train_examples: train.len(),
        dev_examples: dev.len(),
        total_steps,
        micro_batch: micro,
        grad_accum: accum,
        best_epoch: 0,
        epochs: &[],
        long_text: None,
        long_text_trials: &[],
        temperature: 1.0,
        calibration: None,
    };
    let lens: Vec<usize> = examples.iter().map(Example::longest).collect();
    // An eval-mode classifier with the current weights (dev evaluation, scoring windows).
    let snapshot = |model: &Trainable| {
        Classifier::from_parts(
            &config,
            labels.clone(),
            &model.weights()?,
            text_encoder.clone(),
            settings,
        )
    };
    for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let batches = epoch_batches(&lens, micro, &mut rng);
        let ctx = Ctx::train(rng.next_u64(), true);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        let refresh = cfg.bags.map_or(usize::MAX, |b| b.refresh_steps);
        for (n, group) in batches.chunks(accum).enumerate() {
            if let Some(bags) = cfg.bags.filter(|_| n % refresh == 0) {
                let coming: Vec<usize> = batches[n * accum..]
                    .iter()
                    .take(refresh.saturating_mul(accum))
                    .flatten()
                    .copied()
                    .filter(|&i| examples[i].windows.len() > 1)
                    .collect();
                if !coming.is_empty() {
                    let scorer = snapshot(&model)?;
                    choose_windows(&scorer, &mut examples, &coming, bags, &mut rng)?;
                }
            }
            let group_examples: usize = group.iter().map(Vec::len).sum();
            let mut acc: HashMap<String, Tensor> = HashMap::new();
            let mut group_loss = 0f64;
            for idx in group {
                let mut seqs: Vec<&[u32]> = Vec::with_capacity(idx.len());
                let mut bags = Vec::with_capacity(idx.len());
                for &i in idx {
                    let start = seqs.len();
                    let e = &examples[i];
                    seqs.extend(e.chosen.iter().map(|&w| e.windows[w].as_slice()));
                    bags.push(start..seqs.len());
                }
                let targets: Vec<u32> = idx.iter().map(|&i| examples[i].label).collect();
                let batch = Batch::new(&seqs, text_encoder.pad_id(), &Device::Cpu)?;
                // Weight each micro-batch by its size so the step sees the group's mean loss.
                let scale = idx.len() as f64 / group_examples as f64;
                let (loss, grads) =
                    model.bag_loss_and_grads(&batch, &bags, &targets, &ctx, scale)?;
                group_loss += loss as f64 * scale;
                loss_sum += loss as f64 * idx.len() as f64;
                seen += idx.len();
                for (name, g) in grads {
                    match acc.get_mut(&name) {
                        Some(a) => *a = (&*a + &g)?,
                        None => {
                            acc.insert(name, g);
                        }
                    }
                }
            }
            let scale = match cfg.grad_clip {
                Some(max) => clip_scale(&acc, max)?.0,
                None => 1.0,
            };
            let lr = linear_schedule(cfg.lr, step, warmup, total_steps);
            opt.params.lr = lr;
            opt.step_scaled(&acc, scale)?;
            step += 1;
            progress(TrainProgress::Step {
                epoch,
                step,
                total_steps,
                loss: group_loss as f32,
                lr,
            });
        }
        let train_loss = loss_sum / seen.max(1) as f64;

        let dev_stats = if dev.is_empty() {
            None
        } else {
            Some(DevStats::of(&evaluate(&snapshot(&model)?, dev)?))
        };
        let score = dev_stats.as_ref().map_or(f64::NEG_INFINITY, |d| d.loss);
        let improved = match best {
            None => true,
            Some((_, b)) => dev_stats.is_none() || score < b,
        };
        if improved {
            best = Some((epoch, score));
            save_classifier(
                out_dir,
                &base_config,
                &labels,
                &model.weights()?,
                backbone_dir,
            )?;
            saved.save(out_dir)?;
        }
        let log = EpochLog {
            epoch,
            train_loss,
            dev: dev_stats,
            seconds: t0.elapsed().as_secs_f64(),
            saved: improved,
        };
        epochs.push(log.clone());
        progress(TrainProgress::Epoch(log));
        write_log(
            out_dir,
            &LogFile {
                best_epoch: best.map_or(0, |b| b.0),
                epochs: &epochs,
                ..run_log.clone()
            },
        )?;
    }

    // The label centres familiar windows are judged by: the features, under the saved
    // weights, of the sequence each call trained on last (its head+tail, or a long call's
    // window most sure of its label).
    let centroids = {
        let mut clf = Classifier::load(out_dir)?;
        clf.set_centroids(None);
        let seqs: Vec<Vec<u32>> = examples
            .iter()
            .map(|e| e.windows[e.chosen.first().copied().unwrap_or(0)].clone())
            .collect();
        let features = clf.sequence_features(&seqs)?;
        let ids: Vec<usize> = examples.iter().map(|e| e.label as usize).collect();
        Centroids::fit(&features, &ids, labels.len())?
    };
    centroids.save(out_dir)?;

    let budget = max_tokens - 2;
    let mut trials = Vec::new();
    let any_long = dev.iter().any(|(t, _)| {
        text_encoder
            .content_ids(t)
            .is_ok_and(|ids| ids.len() > budget)
    });
    if any_long {
        let mut clf = Classifier::load(out_dir)?;
        let windows = |pool| LongText::Windows {
            overlap: budget / 4,
            pool,
        };
        for cand in [
            head_tail,
            windows(Pool::Mean),
            windows(Pool::Max),
            windows(Pool::Familiar),
        ] {
            clf.set_settings(InferenceSettings {
                long_text: cand,
                ..settings
            });
            trials.push((cand, DevStats::of(&evaluate(&clf, dev)?)));
        }
    }
    // Temperature scaling on dev, so that a score of 0.8 is right about 80% of the time.
    let mut temperature = 1.0;
    let mut calibration = None;
    // Head+tail and max pooling apply the temperature after pooling, where it can be fitted
    // from the pooled probabilities alone; mean pooling applies it to each window.
    let logit_pool = matches!(
        saved.long_text,
        LongText::HeadTail { .. }
            | LongText::Windows {
                pool: Pool::Max | Pool::Familiar,
                ..
            }
    );
    if !dev.is_empty() && logit_pool {
        let mut clf = Classifier::load(out_dir)?;
        let before = evaluate(&clf, dev)?;
        let texts: Vec<&str> = dev.iter().map(|(t, _)| t.as_str()).collect();
        let probs = clf.probabilities(&texts)?;
        let truth: Vec<usize> = dev
            .iter()
            .map(|(_, l)| label_id[l.as_str()] as usize)
            .collect();
        temperature = fit_temperature(&probs, &truth);
        clf.set_settings(InferenceSettings {
            temperature,
            ..saved
        });
        let after = evaluate(&clf, dev)?;
        clf.settings().save(out_dir)?;
        calibration = Some((DevStats::of(&before), DevStats::of(&after)));
    }
    let long_text = saved.long_text;
    write_log(
        out_dir,
        &LogFile {
            best_epoch: best.map_or(0, |b| b.0),
            epochs: &epochs,
            long_text: Some(long_text),
            long_text_trials: &trials,
            temperature,
            calibration: calibration.as_ref(),
            ..run_log
        },
    )?;
    Ok(TrainReport {
        labels,
        best_epoch: best.map_or(0, |b| b.0),
        epochs,
        out_dir: out_dir.to_path_buf(),
        long_text,
        long_text_trials: trials,
        temperature,
        calibration,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One training call: its windows (one when it fits, or its head and tail), the windows it
/// trains on now, and its label id.
struct Example {
    windows: Vec<Vec<u32>>,
    chosen: Vec<usize>,
    label: u32,
}

impl Example {
    fn longest(&self) -> usize {
        self.windows.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// Picks the windows each of `which` trains on next ([`BagTraining`]): scores a sample of
/// its windows (those chosen last time included) with `scorer`, then keeps `bags.trained` of
/// them ([`select`]).
fn choose_windows(
    scorer: &Classifier,
    examples: &mut [Example],
    which: &[usize],
    bags: BagTraining,
    rng: &mut Rng,
) -> Result<(), ModelError> {
    let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(which.len());
    let mut seqs: Vec<Vec<u32>> = Vec::new();
    for &i in which {
        let e = &examples[i];
        let n = e.windows.len();
        let mut pick: Vec<usize> = if n <= bags.scored {
            (0..n).collect()
        } else {
            let mut rest: Vec<usize> = (0..n).filter(|w| !e.chosen.contains(w)).collect();
            rng.shuffle(&mut rest);
            let mut pick = e.chosen.clone();
            pick.extend(
                rest.into_iter()
                    .take(bags.scored.saturating_sub(pick.len())),
            );
            pick
        };
        pick.sort_unstable();
        seqs.extend(pick.iter().map(|&w| e.windows[w].clone()));
        candidates.push(pick);
    }
    let logits = scorer.sequence_logits(&seqs)?;
    let mut at = 0;
    for (&i, pick) in which.iter().zip(candidates) {
        let rows = &logits[at..at + pick.len()];
        at += pick.len();
        let e = &mut examples[i];
        e.chosen = select(rows, e.label as usize, bags.trained)
            .into_iter()
            .map(|r| pick[r])
            .collect();
    }
    Ok(())
}

/// Rows of `logits` (windows × labels) to train on, `k` distinct rows at most: the row most
/// sure of `label` (largest log-probability), then, by descending pooled probability, the
/// row that gives each other label its largest probability, for labels whose pooled
/// probability (renormalised over labels) is at least [`RIVAL_MIN`]: the windows the max
/// pooling's gradient reaches with some weight.
fn select(logits: &[Vec<f32>], label: usize, k: usize) -> Vec<usize> {
    let log_p: Vec<Vec<f32>> = logits.iter().map(|l| log_softmax(l)).collect();
    let best_row = |c: usize| {
        (0..log_p.len())
            .max_by(|&a, &b| log_p[a][c].total_cmp(&log_p[b][c]))
            .unwrap_or(0)
    };
    let labels = log_p.first().map_or(0, Vec::len);
    let pooled: Vec<f32> = (0..labels)
        .map(|c| log_p.iter().map(|r| r[c]).fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let pooled = log_softmax(&pooled);
    let mut rivals: Vec<usize> = (0..labels)
        .filter(|&c| c != label && pooled[c] >= RIVAL_MIN.ln())
        .collect();
    rivals.sort_by(|&a, &b| pooled[b].total_cmp(&pooled[a]));
    let mut out = Vec::with_capacity(k);
    for r in std::iter::once(label).chain(rivals).map(best_row) {
        if out.len() >= k {
            break;
        }
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let z: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    logits.iter().map(|&x| x - max - z.ln()).collect()
}

/// The temperature that minimises the cross-entropy of `probs` (computed at temperature 1)
/// against `truth`: golden-section search over log T in [1/20, 20]. Dividing logits by T is
/// `softmax(ln p / T)`, so the probabilities are all that is needed.
pub fn fit_temperature(probs: &[Vec<f32>], truth: &[usize]) -> f32 {
    let logs: Vec<Vec<f64>> = probs
        .iter()
        .map(|p| p.iter().map(|&x| (x.max(1e-38) as f64).ln()).collect())
        .collect();
    let nll = |log_t: f64| {
        let t = log_t.exp();
        logs.iter()
            .zip(truth)
            .map(|(l, &y)| {
                let max = l.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x / t));
                let z: f64 = l.iter().map(|&x| (x / t - max).exp()).sum();
                -(l[y] / t - max - z.ln())
            })
            .sum::<f64>()
    };
    let (mut a, mut b) = ((1.0f64 / 20.0).ln(), 20f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (c, d) = (b - g * (b - a), a + g * (b - a));
        if nll(c) < nll(d) {
            b = d;
        } else {
            a = c;
        }
    }
    ((a + b) / 2.0).exp() as f32
}

/// Shuffles, then sorts by length within pools of 8 batches (less padding) and shuffles the
/// batch order, all from `rng`.
fn epoch_batches(lens: &[usize], batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch_size * 8) {
        pool.sort_by_key(|&i| lens[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

fn write_log(dir: &Path, log: &LogFile<'_>) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let path = dir.join(TRAINING_LOG);
    let json = serde_json::to_string_pretty(log).expect("log serialises");
    std::fs::write(&path, json + "\n").map_err(|e| ModelError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Arch, EncoderConfig};

    fn encoder(hidden: usize, layers: usize, heads: usize) -> EncoderConfig {
        EncoderConfig {
            arch: Arch::Bert,
            vocab_size: 30522,
            hidden,
            layers,
            heads,
            intermediate: 4 * hidden,
            max_positions: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_dropout: 0.1,
            attention_dropout: 0.1,
            classifier_dropout: 0.1,
            initializer_range: 0.02,
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn batches_are_split_only_when_they_would_not_fit() {
        let minilm = encoder(384, 6, 12);
        let bert_base = encoder(768, 12, 12);
        // MiniLM (22.7M parameters): 16 × 512 tokens fits in 8 GiB as one pass.
        assert_eq!(
            plan_batches(&minilm, 22_700_000, 512, 16, 1, Some(8 * GIB)),
            (16, 1)
        );
        // BERT-base (110M): it does not; the step keeps its 16 examples.
        let (micro, accum) = plan_batches(&bert_base, 110_000_000, 512, 16, 1, Some(8 * GIB));
        assert!(micro < 16 && micro * accum == 16, "{micro} x {accum}");
        let fixed = 16 * 110_000_000u64;
        assert!(fixed + micro as u64 * activation_bytes(&bert_base, 512) <= 8 * GIB);
        // Short sequences fit whole; no limit changes nothing; nothing fitting gives 1 × all.
        assert_eq!(
            plan_batches(&bert_base, 110_000_000, 128, 16, 2, Some(8 * GIB)),
            (16, 2)
        );
        assert_eq!(
            plan_batches(&bert_base, 110_000_000, 512, 16, 1, None),
            (16, 1)
        );
        assert_eq!(
            plan_batches(&bert_base, 110_000_000, 512, 16, 2, Some(GIB)),
            (1, 32)
        );
    }

    #[test]
    fn a_bag_trains_its_label_window_and_only_rivals_that_compete() {
        // Three windows, three labels; the call's label is 0.
        let ln = |p: [f32; 3]| p.iter().map(|x| x.ln()).collect::<Vec<f32>>();
        let generic = ln([0.34, 0.33, 0.33]);
        let decisive = ln([0.98, 0.01, 0.01]);
        // Label 1 fires loudly in the last window: it competes and its window trains.
        let loud = ln([0.02, 0.96, 0.02]);
        assert_eq!(
            select(&[generic.clone(), decisive.clone(), loud], 0, 2),
            [1, 2]
        );
        // No other label reaches RIVAL_MIN of the pooled probability (0.05 / 1.08 each):
        // only the decisive window trains, one window's cost.
        let (a, b) = (ln([0.96, 0.02, 0.02]), ln([0.9, 0.05, 0.05]));
        assert_eq!(select(&[a, decisive, b], 0, 2), [1]);
    }

    #[test]
    fn activation_estimate_grows_with_the_square_of_the_length() {
        let m = encoder(384, 6, 12);
        let (a, b) = (activation_bytes(&m, 256), activation_bytes(&m, 512));
        assert!(b > 2 * a && b < 4 * a, "{a} {b}");
    }

    #[test]
    fn few_shot_sets_train_longer_and_faster_than_the_defaults() {
        let d = TrainConfig::default();
        // 32 or more examples a label: the defaults.
        assert_eq!(default_schedule(77 * 32, 77, 16, 1), (d.epochs, d.lr));
        assert_eq!(default_schedule(10_000, 77, 16, 1), (d.epochs, d.lr));
        // Banking77 at 10 a label: 49 steps an epoch, 20 epochs for 960 steps.
        assert_eq!(default_schedule(770, 77, 16, 1), (20, FEW_SHOT_LR));
        // Tiny sets stop at 40 epochs; a large set just under the line at 5.
        assert_eq!(default_schedule(24, 6, 16, 1), (40, FEW_SHOT_LR));
        assert_eq!(default_schedule(600 * 31, 600, 16, 1).0, 5);
        // Accumulation makes fewer steps an epoch.
        assert_eq!(default_schedule(770, 77, 8, 2), (20, FEW_SHOT_LR));
    }
}
