//! The classifier: tokenizer, DistilBERT/BERT encoders and classification heads in candle,
//! chunking of long calls, training, evaluation and Hugging Face layout I/O.
//!
//! Main types:
//! - [`Classifier`]: a saved model directory → [`Prediction`]s for a batch of texts.
//! - [`train`] with [`TrainConfig`]: fine-tunes a backbone, writes the best epoch in HF layout
//!   with `training_log.json`; [`evaluate`] gives an [`EvalReport`].
//! - [`encoder`]: our own BERT/DistilBERT encoders and heads with Hugging Face parameter names,
//!   a train mode (dropout; layer norm, attention and GELU with gradients) and an eval mode.
//!   They run on the crate's private speed code: `kernels`, the fused CPU ops both modes use
//!   (linear + activation + dropout, packed-QKV attention, layer norm, dropout, in-place
//!   AdamW), each a candle custom op with its backward written out, so that a training step is
//!   a few large passes instead of hundreds of small ones; and `packed`, matrix
//!   products over weights packed once when a model is loaded for inference.
//! - [`speed`]: the safe way in to that code for benchmarks and tests (whether the packed
//!   products run, a switch to turn them off, both products over checked slices).
//! - [`tokenize`]: `tokenizer.json` with head+tail truncation and windows.
//! - [`SentenceEmbedder`]: mean-pooled, unit-length sentence embeddings of an encoder (for
//!   `calltype suggest`).
//!
//! Model directories are Hugging Face layout (`config.json` with `id2label`/`label2id`,
//! `model.safetensors`, `tokenizer.json`), so what we train loads in `transformers` and the
//! reverse; our inference settings live in an extra `calltype.json`.
//!
//! Architecture invariant: `kernels` and `packed` are private to this crate; other crates,
//! its examples and its integration tests reach the speed code through [`speed`] only, which
//! asks no `unsafe` of them.
//!
//! Architecture invariant: no AWS, Lambda, CLI or object-store types here; the crate reads and
//! writes local directories only.

#![warn(missing_docs)]

pub mod alloc;
mod classifier;
pub mod config;
pub mod embed;
pub mod encoder;
mod error;
pub mod familiar;
pub(crate) mod kernels;
mod metrics;
pub mod nn;
pub mod optim;
pub(crate) mod packed;
pub mod rng;
mod simd;
pub mod speed;
pub mod tokenize;
mod train;
pub mod trainable;
pub mod weights;

pub use alloc::keep_freed_memory;
pub use classifier::{
    pool_logits, softmax, Classifier, InferenceSettings, Prediction, Windows, SETTINGS_FILE,
};
pub use embed::SentenceEmbedder;
pub use error::ModelError;
pub use metrics::{evaluate, report, ClassMetrics, EvalReport};
pub use tokenize::{LongText, Pool};
pub use train::{
    activation_bytes, default_long_text, default_schedule, fit_temperature, is_few_shot,
    plan_batches, step_bytes, train, BagTraining, DevStats, EpochLog, TrainConfig, TrainProgress,
    TrainReport, FEW_SHOT_PER_LABEL, TRAINING_LOG,
};
