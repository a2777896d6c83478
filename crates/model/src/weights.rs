//! Hugging Face layout I/O: `model.safetensors` with HF parameter names, `config.json`,
//! tokenizer files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::encoder::parameter_shapes;
use crate::nn::{Weights, DTYPE};
use crate::rng::Rng;
use crate::ModelError;

/// Tokenizer files copied next to a saved model when present in the source directory.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

fn read_tensors(dir: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let path = dir.join("model.safetensors");
    if !path.is_file() {
        return Err(ModelError::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no model.safetensors"),
        ));
    }
    Ok(candle_core::safetensors::load(&path, &Device::Cpu)?)
}

/// Removes `name` from `tensors`, also trying it without the encoder `prefix` (a bare
/// `BertModel` checkpoint) and with the legacy layer-norm names `gamma`/`beta`.
fn take(tensors: &mut HashMap<String, Tensor>, name: &str, prefix: &str) -> Option<Tensor> {
    let mut candidates = vec![name.to_string()];
    if let Some(bare) = name.strip_prefix(prefix) {
        candidates.push(bare.to_string());
    }
    if name.contains("LayerNorm.") || name.contains("layer_norm.") {
        let legacy: Vec<String> = candidates
            .iter()
            .filter_map(|c| {
                c.strip_suffix(".weight")
                    .map(|b| format!("{b}.gamma"))
                    .or_else(|| c.strip_suffix(".bias").map(|b| format!("{b}.beta")))
            })
            .collect();
        candidates.extend(legacy);
    }
    candidates.iter().find_map(|c| tensors.remove(c))
}

fn check_shape(name: &str, t: &Tensor, shape: &[usize]) -> Result<(), ModelError> {
    if t.dims() != shape {
        return Err(ModelError::WeightShape {
            name: name.to_string(),
            actual: t.dims().to_vec(),
            expected: shape.to_vec(),
        });
    }
    Ok(())
}

/// Loads a complete sequence classifier saved in HF layout: every parameter must be present.
pub fn load_classifier(dir: &Path) -> Result<(ModelConfig, Weights), ModelError> {
    let config = ModelConfig::load(dir)?;
    if config.labels.is_empty() {
        return Err(ModelError::Config(format!(
            "{}: config.json has no id2label; not a classifier",
            dir.display()
        )));
    }
    let mut tensors = read_tensors(dir)?;
    let prefix = format!("{}.", config.encoder.arch.prefix());
    let mut weights = Weights::new();
    for (name, shape) in parameter_shapes(&config.encoder, config.labels.len(), true) {
        let t = take(&mut tensors, &name, &prefix).ok_or_else(|| ModelError::MissingWeight {
            name: name.clone(),
            path: dir.join("model.safetensors"),
        })?;
        check_shape(&name, &t, &shape)?;
        weights.insert(name, t.to_dtype(DTYPE)?);
    }
    Ok((config, weights))
}

fn fresh(shape: &[usize], std: f64, rng: &mut Rng, bias: bool) -> Result<Tensor, ModelError> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = if bias {
        vec![0.0; n]
    } else {
        (0..n).map(|_| (rng.normal() * std) as f32).collect()
    };
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// Loads a pre-trained encoder (a bare `BertModel`/`DistilBertModel` without prefix, a
/// `*ForMaskedLM`, or a classifier) and initialises a fresh head for `labels`:
/// weights ~ N(0, initializer_range), biases 0, seeded. A missing BERT pooler is
/// initialised the same way. Encoder weights must all be present.
pub fn load_backbone(
    dir: &Path,
    num_labels: usize,
    seed: u64,
) -> Result<(ModelConfig, Weights), ModelError> {
    let config = ModelConfig::load(dir)?;
    let mut tensors = read_tensors(dir)?;
    let prefix = format!("{}.", config.encoder.arch.prefix());
    let mut rng = Rng::new(seed);
    let mut weights = Weights::new();
    for (name, shape) in parameter_shapes(&config.encoder, num_labels, true) {
        let is_head = !name.starts_with(&prefix)
            || (config.encoder.arch == Arch::Bert && name.starts_with("bert.pooler."));
        let found = if name.starts_with("classifier.") || name.starts_with("pre_classifier.") {
            None
        } else {
            take(&mut tensors, &name, &prefix)
        };
        let t = match found {
            Some(t) => {
                check_shape(&name, &t, &shape)?;
                t.to_dtype(DTYPE)?
            }
            None if is_head => fresh(
                &shape,
                config.encoder.initializer_range,
                &mut rng,
                name.ends_with(".bias"),
            )?,
            None => {
                return Err(ModelError::MissingWeight {
                    name,
                    path: dir.join("model.safetensors"),
                })
            }
        };
        weights.insert(name, t);
    }
    Ok((config, weights))
}

/// Writes `weights` as `dir/model.safetensors` (HF names, `format: pt` metadata),
/// `config.json` as a classifier over `labels`, and copies the tokenizer files from `src_dir`.
pub fn save_classifier(
    dir: &Path,
    config: &ModelConfig,
    labels: &[String],
    weights: &Weights,
    src_dir: &Path,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut tensors = Vec::with_capacity(weights.len());
    for (name, t) in weights {
        tensors.push((name.clone(), t.detach().contiguous()?));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let path = dir.join("model.safetensors");
    let tmp = dir.join("model.safetensors.tmp");
    safetensors::serialize_to_file(tensors, Some(meta), &tmp)
        .map_err(|e| ModelError::io(&tmp, std::io::Error::other(e.to_string())))?;
    std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))?;
    let json = serde_json::to_string_pretty(&config.to_classifier_json(labels))
        .expect("a JSON value serialises");
    let cfg_path = dir.join("config.json");
    std::fs::write(&cfg_path, json + "\n").map_err(|e| ModelError::io(&cfg_path, e))?;
    if src_dir != dir {
        for f in TOKENIZER_FILES {
            let from = src_dir.join(f);
            if from.is_file() {
                std::fs::copy(&from, dir.join(f)).map_err(|e| ModelError::io(&from, e))?;
            }
        }
    }
    Ok(())
}
