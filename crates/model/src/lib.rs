//! The classifier: tokenizer, DistilBERT/BERT encoders and classification heads in candle,
//! chunking of long calls, training, evaluation and Hugging Face layout I/O.
//!
//! Architecture invariant: no AWS, Lambda or object-store types here.
