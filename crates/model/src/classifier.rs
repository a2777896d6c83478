//! The inference API: a saved model directory → labels and probabilities for texts.

use std::path::Path;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::encoder::SequenceClassifier;
use crate::familiar::Centroids;
use crate::nn::{Batch, Ctx, Weights};
use crate::tokenize::{LongText, Pool, TextEncoder};
use crate::weights::load_classifier;
use crate::ModelError;

/// File beside the HF files holding our inference settings (optional; defaults apply).
pub const SETTINGS_FILE: &str = "calltype.json";

/// How [`Classifier::predict`] turns texts into model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InferenceSettings {
    /// Token budget per sequence, `[CLS]` and `[SEP]` included.
    pub max_tokens: usize,
    /// What to do with texts over budget.
    pub long_text: LongText,
    /// Sequences per forward pass, at most; long sequences get fewer (rows × tokens² is capped
    /// at 32 × 128², since attention scores grow with the square of the length).
    pub batch_size: usize,
    /// Logits are divided by this before the softmax (temperature scaling, fitted on dev data
    /// by `calltype train` so that a label's score is a calibrated probability; 1: none).
    pub temperature: f32,
}

impl Default for InferenceSettings {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            long_text: LongText::default(),
            batch_size: 32,
            temperature: 1.0,
        }
    }
}

impl InferenceSettings {
    /// Reads `dir/calltype.json`, or the defaults when it is absent.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| ModelError::Json { path, source: e })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ModelError::io(path, e)),
        }
    }

    /// Writes `dir/calltype.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(SETTINGS_FILE);
        let json = serde_json::to_string_pretty(self).expect("settings serialise");
        std::fs::write(&path, json + "\n").map_err(|e| ModelError::io(path, e))
    }
}

/// One text's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub score: f32,
    /// Probabilities of all labels, in [`Classifier::labels`] order.
    pub scores: Vec<f32>,
}

/// An eval-mode sequence classifier with its tokenizer, labels and inference settings.
pub struct Classifier {
    model: SequenceClassifier,
    encoder: TextEncoder,
    labels: Vec<String>,
    settings: InferenceSettings,
    max_positions: usize,
    centroids: Option<Centroids>,
}

/// Logits and features, one row per sequence, in input order.
type RowsPair = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// One text's sequences as the model scored them: each window's logits (temperature not
/// applied) and, when the model has centroids, its distance from the nearest label centre
/// (`crate::familiar`; empty otherwise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Windows {
    /// Per sequence, one logit per label.
    pub logits: Vec<Vec<f32>>,
    /// Per sequence, its distance from the nearest label centre; empty without centroids.
    pub distances: Vec<f32>,
}

impl Classifier {
    /// Loads a model directory in Hugging Face layout (`config.json` with `id2label`,
    /// `model.safetensors`, `tokenizer.json`) plus optional `calltype.json`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let (config, weights) = load_classifier(dir)?;
        let encoder = TextEncoder::load(dir)?;
        let settings = InferenceSettings::load(dir)?;
        let mut clf =
            Self::from_parts(&config, config.labels.clone(), &weights, encoder, settings)?;
        clf.centroids = Centroids::load(dir)?;
        if let Some(c) = &clf.centroids {
            if c.centres.len() != clf.labels.len() {
                return Err(ModelError::Data(format!(
                    "{} has {} centres for {} labels",
                    crate::familiar::CENTROIDS_FILE,
                    c.centres.len(),
                    clf.labels.len()
                )));
            }
        }
        Ok(clf)
    }

    /// Replaces the label centres familiar windows are judged by ([`Pool::Familiar`]).
    pub fn set_centroids(&mut self, centroids: Option<Centroids>) {
        self.centroids = centroids;
    }

    /// The label centres, when the model has them.
    pub fn centroids(&self) -> Option<&Centroids> {
        self.centroids.as_ref()
    }

    /// Builds a classifier from weights already in memory.
    pub fn from_parts(
        config: &ModelConfig,
        labels: Vec<String>,
        weights: &Weights,
        encoder: TextEncoder,
        settings: InferenceSettings,
    ) -> Result<Self, ModelError> {
        let mut model = SequenceClassifier::load(weights, &config.encoder, labels.len())?;
        model.prepare_inference()?;
        let mut clf = Self {
            model,
            encoder,
            labels,
            settings,
            max_positions: config.encoder.max_positions,
            centroids: None,
        };
        clf.set_settings(settings);
        Ok(clf)
    }

    /// The tokenizer, to cut texts into windows ([`TextEncoder::windows_with_spans`]).
    pub fn text_encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// Labels in id order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The inference settings in use.
    pub fn settings(&self) -> &InferenceSettings {
        &self.settings
    }

    /// Replaces the inference settings (e.g. to compare long-text strategies); `max_tokens`
    /// is clamped to what the model's position table allows.
    pub fn set_settings(&mut self, settings: InferenceSettings) {
        self.settings = settings;
        self.settings.max_tokens = self.settings.max_tokens.clamp(3, self.max_positions);
        self.settings.batch_size = self.settings.batch_size.max(1);
    }

    /// Class probabilities per text, in label order. Sequences are grouped by length so that
    /// padding is small; a text split into windows gets its windows' probabilities pooled.
    pub fn probabilities(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        // On a thread of the rayon pool, so that the kernels' parallel loops are shared with
        // the other workers as they go, instead of each one being handed over to the pool and
        // waited for (a wake-up per loop, hundreds a forward pass).
        rayon::scope(|_| self.probabilities_on_pool(texts))
    }

    fn probabilities_on_pool(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self
            .window_logits_on_pool(texts)?
            .iter()
            .map(|w| self.pool(w))
            .collect())
    }

    /// Per text, its sequences' logits and distances ([`Windows`]): what [`Self::pool`]
    /// turns into probabilities.
    pub fn window_logits(&self, texts: &[&str]) -> Result<Vec<Windows>, ModelError> {
        rayon::scope(|_| self.window_logits_on_pool(texts))
    }

    fn window_logits_on_pool(&self, texts: &[&str]) -> Result<Vec<Windows>, ModelError> {
        let s = self.settings;
        let mut owner: Vec<usize> = Vec::new();
        let mut segments: Vec<Vec<u32>> = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            for ids in self.encoder.encode(t, s.max_tokens, s.long_text)? {
                owner.push(i);
                segments.push(ids);
            }
        }
        let (logits, features) = self.outputs_on_pool(&segments, self.centroids.is_some())?;
        let mut out: Vec<Windows> = vec![Windows::default(); texts.len()];
        for (j, (text, l)) in owner.into_iter().zip(logits).enumerate() {
            out[text].logits.push(l);
            if let Some(c) = &self.centroids {
                out[text].distances.push(c.distance(&features[j]));
            }
        }
        Ok(out)
    }

    /// One text's probabilities from its [`Windows`], with the settings' pooling and
    /// temperature ([`pool_logits`]); [`Pool::Familiar`] pools the familiar windows only
    /// when the model has centroids.
    pub fn pool(&self, windows: &Windows) -> Vec<f32> {
        let pool = match self.settings.long_text {
            LongText::Windows { pool, .. } => pool,
            LongText::HeadTail { .. } => Pool::Mean,
        };
        self.pool_as(windows, pool)
    }

    /// [`Self::pool`] with `pool` in place of the settings' pooling.
    pub fn pool_as(&self, windows: &Windows, pool: Pool) -> Vec<f32> {
        let bag: Vec<&[f32]> = match (&self.centroids, pool) {
            (Some(c), Pool::Familiar) if windows.distances.len() == windows.logits.len() => c
                .familiar(&windows.distances)
                .into_iter()
                .map(|i| windows.logits[i].as_slice())
                .collect(),
            _ => windows.logits.iter().map(Vec::as_slice).collect(),
        };
        pool_logits(&bag, pool, self.settings.temperature, self.labels.len())
    }

    /// [`Windows`] of already tokenized sequences (one text's windows, say).
    pub fn score_sequences(&self, seqs: &[Vec<u32>]) -> Result<Windows, ModelError> {
        rayon::scope(|_| {
            let with = self.centroids.is_some();
            let (logits, features) = self.outputs_on_pool(seqs, with)?;
            let distances = match &self.centroids {
                Some(c) => features.iter().map(|f| c.distance(f)).collect(),
                None => Vec::new(),
            };
            Ok(Windows { logits, distances })
        })
    }

    /// Logits of already tokenized sequences, in input order, and their features when
    /// `features` is set (else empty). Sequences are grouped by length so that padding is
    /// small. Must run on the rayon pool (see [`Self::probabilities`]).
    fn outputs_on_pool(&self, seqs: &[Vec<u32>], features: bool) -> Result<RowsPair, ModelError> {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&j| seqs[j].len());
        let mut logits = vec![Vec::new(); seqs.len()];
        let mut feats = vec![Vec::new(); if features { seqs.len() } else { 0 }];
        let ctx = Ctx::eval();
        for chunk in batches(&order, |j| seqs[j].len(), self.settings.batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&j| seqs[j].as_slice()).collect();
            let batch = Batch::new(&rows, self.encoder.pad_id(), &Device::Cpu)?;
            let f = self.model.features(&batch, &ctx)?;
            let l: Vec<Vec<f32>> = self.model.logits_of(&f)?.to_vec2()?;
            for (&j, l) in chunk.iter().zip(l) {
                logits[j] = l;
            }
            if features {
                for (&j, f) in chunk.iter().zip(f.to_vec2::<f32>()?) {
                    feats[j] = f;
                }
            }
        }
        Ok((logits, feats))
    }

    /// Features ([`SequenceClassifier::features`]) of token-id sequences, in input order:
    /// what `train` fits the centroids on.
    pub fn sequence_features(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        rayon::scope(|_| Ok(self.outputs_on_pool(seqs, true)?.1))
    }

    /// Logits of token-id sequences (`[CLS] … [SEP]`, within the model's positions), in
    /// input order, temperature not applied: what training uses to pick a long call's windows.
    pub fn sequence_logits(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        rayon::scope(|_| Ok(self.outputs_on_pool(seqs, false)?.0))
    }

    /// Best label, its probability and all probabilities for each text.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>, ModelError> {
        Ok(self
            .probabilities(texts)?
            .into_iter()
            .map(|scores| {
                let best = argmax(&scores);
                Prediction {
                    label: self.labels[best].clone(),
                    score: scores[best],
                    scores,
                }
            })
            .collect())
    }
}

/// One text's probabilities from the logits of its windows (one window for head+tail).
///
/// [`Pool::Max`]: per label the largest log-probability of any window, `z`, then
/// `softmax(z / temperature)` (at temperature 1: each label's largest window probability,
/// renormalised), the pooling training uses; [`Pool::Familiar`] is the same over the bag it is
/// given ([`Classifier::pool`] gives it the familiar windows). [`Pool::Mean`] (and head+tail's one window): the
/// mean of the windows' `softmax(logits / temperature)`. With one window every pooling gives
/// `softmax(logits / temperature)`.
pub fn pool_logits(bag: &[&[f32]], pool: Pool, temperature: f32, labels: usize) -> Vec<f32> {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    if bag.is_empty() {
        return vec![1.0 / labels as f32; labels];
    }
    if matches!(pool, Pool::Max | Pool::Familiar) {
        let mut z = vec![f64::NEG_INFINITY; labels];
        for l in bag {
            for (m, lp) in z.iter_mut().zip(log_softmax(l)) {
                *m = m.max(lp);
            }
        }
        let z: Vec<f32> = z.into_iter().map(|x| x as f32).collect();
        return softmax(&z, t);
    }
    let mut sums = vec![0f64; labels];
    for l in bag {
        for (acc, p) in sums.iter_mut().zip(softmax(l, t)) {
            *acc += p as f64;
        }
    }
    sums.into_iter()
        .map(|x| (x / bag.len() as f64) as f32)
        .collect()
}

/// `log(softmax(logits))`, in f64.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let z: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let lz = max + z.ln();
    logits.iter().map(|&x| x as f64 - lz).collect()
}

/// `softmax(logits / temperature)`, computed in f64.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature as f64;
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64 / t));
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 / t - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| (e / total) as f32).collect()
}

/// Rows × tokens² allowed in one eval forward pass: 32 sequences of 128 tokens. Attention
/// scores are rows × heads × tokens², so long sequences get fewer rows per pass, which at 512
/// tokens is faster and smaller than 32 rows, while 32 rows stay best at 128 tokens (measured
/// with `scripts/bench/model.sh`; the figures are in BENCHMARKS-MODEL.md, "Kernel timings
/// formerly in code comments").
const ATTENTION_BUDGET: usize = 32 * 128 * 128;

/// Splits `order` (sorted by ascending length) into consecutive batches of at most `max_rows`
/// rows whose rows × longest² stays within [`ATTENTION_BUDGET`] (at least one row each).
pub(crate) fn batches(
    order: &[usize],
    len: impl Fn(usize) -> usize,
    max_rows: usize,
) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && end - start < max_rows {
            let longest = len(order[end]);
            if (end + 1 - start) * longest * longest > ATTENTION_BUDGET {
                break;
            }
            end += 1;
        }
        out.push(&order[start..end]);
        start = end;
    }
    out
}

/// Index of the largest value (the first on ties).
pub(crate) fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_for_long_sequences() {
        let order: Vec<usize> = (0..40).collect();
        let sizes = |len: usize, max: usize| -> Vec<usize> {
            batches(&order, |_| len, max)
                .iter()
                .map(|b| b.len())
                .collect()
        };
        assert_eq!(sizes(128, 32), vec![32, 8]);
        assert_eq!(sizes(512, 32), vec![2; 20]);
        assert_eq!(sizes(256, 4), vec![4; 10]);
        assert_eq!(sizes(4096, 32), vec![1; 40]);
        assert!(batches(&[], |_| 1, 8).is_empty());
    }

    #[test]
    fn classifier_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Classifier>();
    }

    #[test]
    fn settings_default_when_fields_are_missing() {
        let s: InferenceSettings = serde_json::from_str(r#"{"max_tokens": 128}"#).expect("json");
        assert_eq!(s.max_tokens, 128);
        assert_eq!(s.long_text, LongText::default());
        let w: InferenceSettings =
            serde_json::from_str(r#"{"long_text": {"kind": "windows", "overlap": 32}}"#)
                .expect("json");
        assert_eq!(
            w.long_text,
            LongText::Windows {
                overlap: 32,
                pool: Pool::Mean
            }
        );
    }
}
