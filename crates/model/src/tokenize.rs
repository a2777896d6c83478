//! Tokenization: a `tokenizer.json` with any baked-in truncation and padding removed, and our
//! own length handling (head+tail truncation, overlapping windows).

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::ModelError;

/// How texts longer than the token budget are handled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LongText {
    /// Keep the first `head_fraction` of the content budget and fill the rest from the end.
    HeadTail {
        /// Share of the content tokens (budget minus CLS/SEP) taken from the start, 0..=1.
        head_fraction: f32,
    },
    /// Overlapping windows over the whole text, their probabilities pooled.
    Windows {
        /// Tokens shared by consecutive windows (HF `stride`).
        overlap: usize,
        /// How the windows' probabilities become the text's.
        #[serde(default)]
        pool: Pool,
    },
}

/// How [`LongText::Windows`] pools the windows' probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// The mean over windows.
    #[default]
    Mean,
    /// Per label, the largest probability any window gives it, renormalised to sum to 1: the
    /// most confident window decides, however many windows hold only generic talk. This is
    /// the pooling `calltype train` learns end to end on long calls (`TrainConfig::bags`): a
    /// window of generic talk learns to spread its probability, so it speaks for no label.
    Max,
    /// [`Pool::Max`] over the call's familiar windows only: those whose features lie near a
    /// label's training sequences (within the radius of `centroids.safetensors`, or the
    /// nearest window when none does; `crate::familiar`). Windows of talk the model never
    /// trained on (greetings, holds, surveys in other words) cannot outvote the part of the
    /// call that decides it. What `calltype train` saves; a model without centroids pools
    /// like [`Pool::Max`].
    Familiar,
}

impl Default for LongText {
    fn default() -> Self {
        LongText::HeadTail { head_fraction: 0.5 }
    }
}

/// A WordPiece/BPE tokenizer from `tokenizer.json` plus the special ids an encoder needs.
#[derive(Clone)]
pub struct TextEncoder {
    tok: Tokenizer,
    cls: u32,
    sep: u32,
    pad: u32,
}

impl TextEncoder {
    /// Loads `dir/tokenizer.json`, switching off its truncation and padding.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("tokenizer.json");
        let mut tok = Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        tok.with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        tok.with_padding(None);
        let id = |names: &[&str]| -> Result<u32, ModelError> {
            names
                .iter()
                .find_map(|n| tok.token_to_id(n))
                .ok_or_else(|| ModelError::Tokenizer(format!("vocabulary lacks {}", names[0])))
        };
        let cls = id(&["[CLS]", "<s>"])?;
        let sep = id(&["[SEP]", "</s>"])?;
        let pad = id(&["[PAD]", "<pad>"])?;
        Ok(Self { tok, cls, sep, pad })
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// Content token ids of `text`, without special tokens and without any length limit.
    pub fn content_ids(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tok
            .encode_fast(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    fn wrap(&self, content: &[u32]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(content.len() + 2);
        ids.push(self.cls);
        ids.extend_from_slice(content);
        ids.push(self.sep);
        ids
    }

    /// `[CLS] text [SEP]` with no truncation.
    pub fn encode_full(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self.wrap(&self.content_ids(text)?))
    }

    /// `[CLS] head … tail [SEP]` within `max_tokens` (≥ 3) tokens.
    pub fn encode_head_tail(
        &self,
        text: &str,
        max_tokens: usize,
        head_fraction: f32,
    ) -> Result<Vec<u32>, ModelError> {
        let content = self.content_ids(text)?;
        Ok(self.wrap(&head_tail(
            &content,
            max_tokens.saturating_sub(2),
            head_fraction,
        )))
    }

    /// The windows of `text` that [`LongText::Windows`] with this `overlap` makes, each with
    /// the part of `text` it covers: to show a reader the part of a call that decided.
    pub fn windows_with_spans(
        &self,
        text: &str,
        max_tokens: usize,
        overlap: usize,
    ) -> Result<Vec<Window>, ModelError> {
        let enc = self
            .tok
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let (ids, offsets) = (enc.get_ids(), enc.get_offsets());
        let budget = max_tokens.saturating_sub(2).max(1);
        Ok(window_ranges(ids.len(), budget, overlap)
            .into_iter()
            .map(|r| {
                let span = match (
                    offsets.get(r.start),
                    r.end.checked_sub(1).and_then(|e| offsets.get(e)),
                ) {
                    (Some(first), Some(last)) if !r.is_empty() => first.0..last.1.max(first.0),
                    _ => 0..0,
                };
                Window {
                    ids: self.wrap(&ids[r]),
                    span,
                }
            })
            .collect())
    }

    /// One or more `[CLS] … [SEP]` sequences of at most `max_tokens` covering `text`, per
    /// the long-text strategy.
    pub fn encode(
        &self,
        text: &str,
        max_tokens: usize,
        long: LongText,
    ) -> Result<Vec<Vec<u32>>, ModelError> {
        let content = self.content_ids(text)?;
        let budget = max_tokens.saturating_sub(2).max(1);
        Ok(match long {
            LongText::HeadTail { head_fraction } => {
                vec![self.wrap(&head_tail(&content, budget, head_fraction))]
            }
            LongText::Windows { overlap, .. } => windows(&content, budget, overlap)
                .into_iter()
                .map(|w| self.wrap(w))
                .collect(),
        })
    }
}

/// Keeps `budget` tokens: the first `round(budget * head_fraction)` and the last ones.
pub fn head_tail(content: &[u32], budget: usize, head_fraction: f32) -> Vec<u32> {
    if content.len() <= budget {
        return content.to_vec();
    }
    let head = ((budget as f32) * head_fraction.clamp(0.0, 1.0)).round() as usize;
    let head = head.min(budget);
    let tail = budget - head;
    let mut out = Vec::with_capacity(budget);
    out.extend_from_slice(&content[..head]);
    out.extend_from_slice(&content[content.len() - tail..]);
    out
}

/// Windows of `budget` tokens, consecutive ones sharing `overlap` tokens; the last window
/// ends at the end of the text. A text within budget gives one window.
pub fn windows(content: &[u32], budget: usize, overlap: usize) -> Vec<&[u32]> {
    window_ranges(content.len(), budget, overlap)
        .into_iter()
        .map(|r| &content[r])
        .collect()
}

/// The token ranges of [`windows`] over `len` tokens.
pub fn window_ranges(len: usize, budget: usize, overlap: usize) -> Vec<Range<usize>> {
    if len <= budget {
        #[allow(clippy::single_range_in_vec_init)] // one window: the whole text
        return vec![0..len];
    }
    let step = budget.saturating_sub(overlap).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + budget).min(len);
        out.push(start..end);
        if end == len {
            break;
        }
        start += step;
        if start + budget > len {
            start = len - budget;
        }
    }
    out
}

/// One window of a text: its `[CLS] … [SEP]` ids and the bytes of the text it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `[CLS] … [SEP]`, at most the `max_tokens` asked for.
    pub ids: Vec<u32>,
    /// The byte range of the text its content tokens come from.
    pub span: Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tail_keeps_both_ends() {
        let ids: Vec<u32> = (0..10).collect();
        assert_eq!(head_tail(&ids, 4, 0.5), vec![0, 1, 8, 9]);
        assert_eq!(head_tail(&ids, 4, 1.0), vec![0, 1, 2, 3]);
        assert_eq!(head_tail(&ids, 4, 0.0), vec![6, 7, 8, 9]);
        assert_eq!(head_tail(&ids, 20, 0.5), ids);
    }

    #[test]
    fn windows_cover_everything_with_overlap() {
        let ids: Vec<u32> = (0..10).collect();
        let w = windows(&ids, 4, 1);
        assert_eq!(w, vec![&ids[0..4], &ids[3..7], &ids[6..10]]);
        let w = windows(&ids, 4, 0);
        assert_eq!(w, vec![&ids[0..4], &ids[4..8], &ids[6..10]]);
        assert_eq!(windows(&ids, 12, 2), vec![&ids[..]]);
        assert_eq!(window_ranges(10, 4, 1), vec![0..4, 3..7, 6..10]);
        assert_eq!(window_ranges(0, 4, 1), vec![0..0]);
    }
}
