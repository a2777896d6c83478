//! Sentence embeddings from an encoder: the mean of the last hidden states over a sequence's
//! tokens (padding left out), L2-normalised, which is how sentence-transformers' all-MiniLM
//! models embed a sentence. `calltype suggest` uses them to spread the first calls it asks a
//! person to label over the kinds of calls there are.

use std::path::Path;

use candle_core::Device;

use crate::classifier::batches;
use crate::encoder::Encoder;
use crate::nn::{Batch, Ctx};
use crate::tokenize::TextEncoder;
use crate::weights::load_backbone;
use crate::ModelError;

/// Sequences per forward pass (fewer for long ones: the classifier's attention budget).
const BATCH: usize = 32;

/// An eval-mode encoder with its tokenizer, giving one unit vector per sequence.
pub struct SentenceEmbedder {
    encoder: Encoder,
    text: TextEncoder,
    max_positions: usize,
}

impl SentenceEmbedder {
    /// Loads the encoder of a backbone or classifier directory in Hugging Face layout (a
    /// classification head, if there is one, is not used).
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let (config, weights) = load_backbone(dir, 1, 0)?;
        let mut encoder = Encoder::load(&weights, &config.encoder)?;
        encoder.prepare_inference()?;
        Ok(Self {
            encoder,
            text: TextEncoder::load(dir)?,
            max_positions: config.encoder.max_positions,
        })
    }

    /// The tokenizer, to cut texts into windows ([`TextEncoder::windows_with_spans`]).
    pub fn text_encoder(&self) -> &TextEncoder {
        &self.text
    }

    /// The longest sequence the encoder takes.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// One unit vector per `[CLS] … [SEP]` sequence, in input order.
    pub fn embed(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        // On the rayon pool, as `Classifier::probabilities` runs, for the same reason.
        rayon::scope(|_| {
            let mut order: Vec<usize> = (0..seqs.len()).collect();
            order.sort_by_key(|&j| seqs[j].len());
            let mut out = vec![Vec::new(); seqs.len()];
            let ctx = Ctx::eval();
            for chunk in batches(&order, |j| seqs[j].len(), BATCH) {
                let rows: Vec<&[u32]> = chunk.iter().map(|&j| seqs[j].as_slice()).collect();
                let batch = Batch::new(&rows, self.text.pad_id(), &Device::Cpu)?;
                let hidden: Vec<Vec<Vec<f32>>> = self.encoder.forward(&batch, &ctx)?.to_vec3()?;
                for ((&j, states), &len) in chunk.iter().zip(hidden).zip(&batch.lengths) {
                    out[j] = mean_unit(&states[..len.max(1).min(states.len())]);
                }
            }
            Ok(out)
        })
    }
}

/// The mean of `rows`, scaled to length 1 (left as it is when it is zero).
fn mean_unit(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut mean = vec![0f32; rows.first().map_or(0, Vec::len)];
    for r in rows {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|m| *m /= norm);
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_is_scaled_to_a_unit_vector() {
        let v = mean_unit(&[vec![3.0, 0.0], vec![3.0, 8.0]]);
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6,
            "{v:?}"
        );
        assert_eq!(mean_unit(&[vec![0.0, 0.0]]), vec![0.0, 0.0]);
    }
}
