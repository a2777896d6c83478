//! `config.json` in Hugging Face layout: the encoder shape and the label set.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::ModelError;

/// Which encoder family a config describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `model_type: "bert"` (bert-base, all-MiniLM-L6-v2, ...).
    Bert,
    /// `model_type: "distilbert"`.
    DistilBert,
}

impl Arch {
    /// The Hugging Face parameter-name prefix of the encoder (`bert` or `distilbert`).
    pub fn prefix(self) -> &'static str {
        match self {
            Arch::Bert => "bert",
            Arch::DistilBert => "distilbert",
        }
    }

    /// The `architectures` entry of a sequence classifier of this family.
    pub fn classifier_class(self) -> &'static str {
        match self {
            Arch::Bert => "BertForSequenceClassification",
            Arch::DistilBert => "DistilBertForSequenceClassification",
        }
    }
}

/// Encoder hyper-parameters, normalised over BERT and DistilBERT names.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    /// Encoder family.
    pub arch: Arch,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size (`hidden_size` / `dim`).
    pub hidden: usize,
    /// Number of transformer layers.
    pub layers: usize,
    /// Number of attention heads.
    pub heads: usize,
    /// Feed-forward inner size (`intermediate_size` / `hidden_dim`).
    pub intermediate: usize,
    /// Number of learned positions.
    pub max_positions: usize,
    /// Token-type vocabulary (BERT only; 0 for DistilBERT).
    pub type_vocab_size: usize,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
    /// Dropout on hidden states.
    pub hidden_dropout: f32,
    /// Dropout on attention probabilities.
    pub attention_dropout: f32,
    /// Dropout before the classifier.
    pub classifier_dropout: f32,
    /// Std of the normal initialisation of fresh weights.
    pub initializer_range: f64,
}

/// A parsed `config.json`: the encoder shape, the labels (possibly none, for a bare
/// backbone) and the raw JSON, kept so that saving preserves fields we do not use.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Encoder hyper-parameters.
    pub encoder: EncoderConfig,
    /// Labels in id order (from `id2label`); empty for a backbone without a head.
    pub labels: Vec<String>,
    /// The file as read.
    pub raw: Value,
}

fn get_usize(v: &Value, keys: &[&str]) -> Result<usize, ModelError> {
    for k in keys {
        if let Some(x) = v.get(*k).and_then(Value::as_u64) {
            return Ok(x as usize);
        }
    }
    Err(ModelError::Config(format!(
        "config.json lacks {}",
        keys.join(" / ")
    )))
}

fn get_f64(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

impl ModelConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))?;
        let raw: Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Json { path, source: e })?;
        Self::from_json(raw)
    }

    /// Parses a config already read.
    pub fn from_json(raw: Value) -> Result<Self, ModelError> {
        let model_type = raw.get("model_type").and_then(Value::as_str).unwrap_or("");
        let encoder = match model_type {
            "bert" => {
                let act = raw
                    .get("hidden_act")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu");
                if act != "gelu" {
                    return Err(ModelError::Config(format!("hidden_act {act} (only gelu)")));
                }
                let pos = raw
                    .get("position_embedding_type")
                    .and_then(Value::as_str)
                    .unwrap_or("absolute");
                if pos != "absolute" {
                    return Err(ModelError::Config(format!("position_embedding_type {pos}")));
                }
                let hidden_dropout = get_f64(&raw, "hidden_dropout_prob", 0.1) as f32;
                EncoderConfig {
                    arch: Arch::Bert,
                    vocab_size: get_usize(&raw, &["vocab_size"])?,
                    hidden: get_usize(&raw, &["hidden_size"])?,
                    layers: get_usize(&raw, &["num_hidden_layers"])?,
                    heads: get_usize(&raw, &["num_attention_heads"])?,
                    intermediate: get_usize(&raw, &["intermediate_size"])?,
                    max_positions: get_usize(&raw, &["max_position_embeddings"])?,
                    type_vocab_size: get_usize(&raw, &["type_vocab_size"]).unwrap_or(2),
                    layer_norm_eps: get_f64(&raw, "layer_norm_eps", 1e-12),
                    hidden_dropout,
                    attention_dropout: get_f64(&raw, "attention_probs_dropout_prob", 0.1) as f32,
                    classifier_dropout: raw
                        .get("classifier_dropout")
                        .and_then(Value::as_f64)
                        .map(|x| x as f32)
                        .unwrap_or(hidden_dropout),
                    initializer_range: get_f64(&raw, "initializer_range", 0.02),
                }
            }
            "distilbert" => {
                let act = raw
                    .get("activation")
                    .and_then(Value::as_str)
                    .unwrap_or("gelu");
                if act != "gelu" {
                    return Err(ModelError::Config(format!("activation {act} (only gelu)")));
                }
                EncoderConfig {
                    arch: Arch::DistilBert,
                    vocab_size: get_usize(&raw, &["vocab_size"])?,
                    hidden: get_usize(&raw, &["dim"])?,
                    layers: get_usize(&raw, &["n_layers"])?,
                    heads: get_usize(&raw, &["n_heads"])?,
                    intermediate: get_usize(&raw, &["hidden_dim"])?,
                    max_positions: get_usize(&raw, &["max_position_embeddings"])?,
                    type_vocab_size: 0,
                    layer_norm_eps: 1e-12,
                    hidden_dropout: get_f64(&raw, "dropout", 0.1) as f32,
                    attention_dropout: get_f64(&raw, "attention_dropout", 0.1) as f32,
                    classifier_dropout: get_f64(&raw, "seq_classif_dropout", 0.2) as f32,
                    initializer_range: get_f64(&raw, "initializer_range", 0.02),
                }
            }
            other => {
                return Err(ModelError::Config(format!(
                    "model_type {other:?} (supported: bert, distilbert)"
                )))
            }
        };
        if encoder.heads == 0 || encoder.hidden % encoder.heads != 0 {
            return Err(ModelError::Config(format!(
                "hidden size {} not divisible by {} heads",
                encoder.hidden, encoder.heads
            )));
        }
        let labels = parse_labels(&raw)?;
        Ok(Self {
            encoder,
            labels,
            raw,
        })
    }

    /// The config as a sequence classifier over `labels`, ready to write as `config.json`.
    pub fn to_classifier_json(&self, labels: &[String]) -> Value {
        let mut raw = match &self.raw {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        let id2label: Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), json!(l)))
            .collect();
        let label2id: Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), json!(i)))
            .collect();
        raw.insert("id2label".into(), Value::Object(id2label));
        raw.insert("label2id".into(), Value::Object(label2id));
        raw.remove("num_labels");
        raw.insert(
            "architectures".into(),
            json!([self.encoder.arch.classifier_class()]),
        );
        if labels.len() > 1 {
            raw.insert("problem_type".into(), json!("single_label_classification"));
        }
        Value::Object(raw)
    }
}

fn parse_labels(raw: &Value) -> Result<Vec<String>, ModelError> {
    let Some(map) = raw.get("id2label").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let id: usize = k
            .parse()
            .map_err(|_| ModelError::Config(format!("id2label key {k:?} is not an integer")))?;
        let label = v
            .as_str()
            .ok_or_else(|| ModelError::Config(format!("id2label[{k}] is not a string")))?;
        pairs.push((id, label.to_string()));
    }
    pairs.sort();
    for (i, (id, _)) in pairs.iter().enumerate() {
        if *id != i {
            return Err(ModelError::Config("id2label ids are not 0..n".into()));
        }
    }
    Ok(pairs.into_iter().map(|(_, l)| l).collect())
}
