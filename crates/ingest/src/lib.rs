//! The ingest Lambda's library: Contact Lens analysis files named by S3, SQS or EventBridge
//! events become rows of the master CSVs, exactly once, with bad files quarantined.
//!
//! * [`events`]: the accepted event shapes, read leniently.
//! * [`core::ingest_batch`]: keys → rows → one append per partition, generic over
//!   [`store::ObjectStore`]; the CLI's `calltype ingest` calls the same function.
//! * [`handler::handle`]: the thin Lambda adapter (partial batch failures for SQS).
//! * [`config::Config`]: typed configuration read at cold start.
//!
//! Architecture invariant: Lambda types appear only in `handler` and `main.rs`; the core
//! knows the store only through its port.

pub mod config;
pub mod core;
pub mod events;
pub mod handler;

pub use config::{Config, Copy, Settings};
pub use core::{ingest_batch, BatchReport, Fate};
