//! The classifier: tokenizer, DistilBERT/BERT encoders and classification heads in candle,
//! chunking of long calls, training, evaluation and Hugging Face layout I/O.
//!
//! Architecture invariant: no AWS, Lambda or object-store types here.

pub mod config;
pub mod encoder;
mod error;
pub mod nn;
pub mod optim;
pub mod rng;
pub mod tokenize;
pub mod trainable;
pub mod weights;

pub use error::ModelError;
