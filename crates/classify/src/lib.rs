//! The classify Lambda's library: partitions → watermark → classifier → labeled parts.
//!
//! What it owns:
//! * [`Classifier`], the classifier port (a batch of texts → one [`Label`] each), with
//!   [`ClassifyError`] telling transient failures (throttling, 5xx, timeouts) from permanent ones;
//! * [`EndpointClassifier`], the adapter over a SageMaker real-time endpoint, and its
//!   [`wire`] formats (Hugging Face inference-toolkit JSON and JSON Lines);
//! * [`run`], the core: for each partition (contact date) of the look-back window or with a
//!   touched record from ingest ([`master_csv::touched`]), label the master CSV's bytes past the
//!   partition's watermark and write them as an immutable part
//!   `labeled/date=YYYY-MM-DD/part-<from>-<to>.csv` (columns [`LABELED_COLUMNS`]), in claims
//!   sized to the run's time and shared fairly between partitions;
//! * [`transform`], batch-transform mode: the same ranges and parts, labeled by SageMaker batch
//!   transform jobs that outlive a run, through the [`TransformJobs`] port and its adapter
//!   [`SageMakerJobs`] (aws-sdk-sagemaker); job state lives under `state/transform/`;
//! * [`embedded`], embedded mode: the model in-process ([`ModelClassifier`]), read at cold
//!   start from the `model.tar.gz` that `calltype package` writes or from a directory;
//! * [`Config`], read from the environment at cold start.
//!
//! Exactly once: the range `[from, to)` is claimed in the watermark (compare-and-swap) before
//! it is classified, the part's name is derived from that range and written with
//! `If-None-Match: *`, and the watermark moves to `to` (compare-and-swap) only once the part
//! exists. A rerun after a crash anywhere resumes the claimed range, finds its part if it was
//! written and then only moves the watermark, so no row is lost or labeled twice; only complete
//! records (up to the last `\n`) are ever claimed. See [`pipeline`] for the steps.
//!
//! Architecture invariants: no Lambda types outside [`handler`] and `main.rs`; I/O only through
//! [`store::ObjectStore`], [`Classifier`] and [`TransformJobs`]; the `model` crate only through [`embedded`]. Transcript text is never
//! logged.

pub mod classifier;
pub mod config;
pub mod embedded;
pub mod endpoint;
pub mod handler;
pub mod parts;
pub mod pipeline;
pub mod report;
pub mod transform;
pub mod transform_jobs;
pub mod watermark;
pub mod wire;

pub use crate::classifier::{Classifier, ClassifyError, Label};
pub use crate::config::{
    Clock, Config, ConfigError, EmbeddedSettings, EndpointSettings, Mode, Settings,
    TransformSettings,
};
pub use crate::embedded::{EmbeddedError, ModelClassifier, ModelSource};
pub use crate::endpoint::{EndpointClassifier, EndpointOptions};
pub use crate::parts::{part_key, LABELED_COLUMNS, TRANSCRIPT_COLUMN};
pub use crate::pipeline::run;
pub use crate::report::{Counts, PartitionReport, RunReport};
pub use crate::transform::{
    Created, JobKeys, JobRecord, JobRequest, JobState, JobStatus, TransformJobs,
};
pub use crate::transform_jobs::SageMakerJobs;
pub use crate::watermark::{watermark_key, ByteRange, Watermark};
pub use crate::wire::WireFormat;
