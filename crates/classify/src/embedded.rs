//! Embedded mode: the trained model runs inside the process that labels (the classify Lambda
//! with `CALLTYPE_MODE=embedded`, and `calltype classify --model DIR`).
//!
//! * [`ModelClassifier`], the in-process [`Classifier`] adapter over [`model::Classifier`], run on
//!   the blocking pool so the async runtime keeps serving store calls;
//! * the cold-start steps: [`fetch_model`] reads the `model.tar.gz` that `calltype package`
//!   writes through the object-store port and [`unpack_model`] unpacks it, refusing anything
//!   that is not a calltype / Hugging Face classifier with a one-line reason;
//! * [`lambda_threads`], the threads a Lambda function's memory buys.
//!
//! The partition loop, claims, parts and watermark are [`crate::run`]'s, as in endpoint mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use store::ObjectStore;

use crate::classifier::{Classifier, ClassifyError, Label};

/// Files a model directory must hold to be loaded (what `calltype package` checks too).
pub const MODEL_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];

/// A model artifact that cannot be used, with a reason that fits on one line.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The artifact could not be read (missing object, access denied, I/O).
    #[error("cannot read the model artifact {what}: {reason}")]
    Read { what: String, reason: String },
    /// The bytes are not a gzip-compressed tar archive, or an entry escapes the directory.
    #[error("the model artifact {what} is not a model.tar.gz: {reason}")]
    Archive { what: String, reason: String },
    /// The files are there but are not a classifier this crate can load.
    #[error("{what} is not a calltype or Hugging Face classifier: {reason}")]
    NotAModel { what: String, reason: String },
}

/// Flattens an error's text to one line (model errors may quote files).
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The in-process adapter: a trained model directory, loaded once.
pub struct ModelClassifier {
    model: Arc<model::Classifier>,
    name: String,
}

impl ModelClassifier {
    /// Loads the model in `dir`; its name (the `model` column) is the directory's name.
    pub fn load(dir: &Path) -> Result<Self, EmbeddedError> {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into());
        Self::load_named(dir, name)
    }

    /// Loads the model in `dir` under `name`.
    pub fn load_named(dir: &Path, name: impl Into<String>) -> Result<Self, EmbeddedError> {
        let what = dir.display().to_string();
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                return Err(EmbeddedError::NotAModel {
                    what,
                    reason: format!("it has no {f}"),
                });
            }
        }
        let model = model::Classifier::load(dir).map_err(|e| EmbeddedError::NotAModel {
            what,
            reason: one_line(e),
        })?;
        Ok(Self {
            model: Arc::new(model),
            name: name.into(),
        })
    }

    /// The labels the model knows, in output order.
    pub fn labels(&self) -> &[String] {
        self.model.labels()
    }
}

impl Classifier for ModelClassifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn classify(&self, texts: &[String]) -> Result<Vec<Label>, ClassifyError> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let labels = model.labels().to_vec();
            model
                .predict(&refs)
                .map(|ps| {
                    ps.into_iter()
                        .map(|p| Label {
                            label: p.label,
                            score: p.score,
                            scores: Some(labels.iter().cloned().zip(p.scores).collect()),
                        })
                        .collect()
                })
                .map_err(|e| ClassifyError::Permanent(format!("model: {e}")))
        })
        .await
        .map_err(|e| ClassifyError::Permanent(format!("model task failed: {e}")))?
    }
}

/// Where embedded mode finds its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// `CALLTYPE_MODEL_S3_URI=s3://BUCKET/KEY`: a `model.tar.gz`, read and unpacked at cold start.
    S3 { bucket: String, key: String },
    /// `CALLTYPE_MODEL_DIR`: a model directory packaged with the function.
    Dir(PathBuf),
}

impl ModelSource {
    /// Parses `s3://BUCKET/KEY` (`None` if it is not such a URI).
    pub fn parse_s3_uri(uri: &str) -> Option<Self> {
        let rest = uri.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty() && !key.ends_with('/')).then(|| ModelSource::S3 {
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    /// The name written to the `model` column: the archive's name without `.tar.gz`, or its
    /// folder's when the archive is the usual `model.tar.gz`; the directory's name for a
    /// directory.
    pub fn model_name(&self) -> String {
        match self {
            ModelSource::S3 { key, .. } => {
                let mut parts = key.rsplit('/');
                let file = parts.next().unwrap_or(key);
                let stem = file
                    .strip_suffix(".tar.gz")
                    .or_else(|| file.strip_suffix(".tgz"))
                    .unwrap_or(file);
                match (stem, parts.next()) {
                    ("model", Some(folder)) if !folder.is_empty() => folder.into(),
                    _ => stem.into(),
                }
            }
            ModelSource::Dir(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into()),
        }
    }
}

/// Cold start: the model `source` names, ready to label. A `model.tar.gz` is read through
/// `artifacts` (a store over the artifact's bucket) and unpacked into `unpack_to`; a directory
/// is loaded where it is. Any problem is an [`EmbeddedError`] with a one-line reason, so a bad
/// deploy fails at init rather than at the first invocation.
pub async fn load_model<S: ObjectStore>(
    source: &ModelSource,
    artifacts: Option<&S>,
    unpack_to: &Path,
) -> Result<ModelClassifier, EmbeddedError> {
    match source {
        ModelSource::S3 { bucket, key } => {
            let what = format!("s3://{bucket}/{key}");
            let Some(store) = artifacts else {
                return Err(EmbeddedError::Read {
                    what,
                    reason: "no S3 client to read it with".into(),
                });
            };
            fetch_model(store, &what, key, unpack_to).await?;
            ModelClassifier::load_named(unpack_to, source.model_name()).map_err(|e| match e {
                EmbeddedError::NotAModel { reason, .. } => {
                    EmbeddedError::NotAModel { what, reason }
                }
                other => other,
            })
        }
        ModelSource::Dir(dir) => ModelClassifier::load_named(dir, source.model_name()),
    }
}

/// Reads the archive `key` through `store` (the artifact's bucket) and unpacks it into `to`.
/// `to` is emptied first, so a warm container never mixes two models.
pub async fn fetch_model<S: ObjectStore>(
    store: &S,
    what: &str,
    key: &str,
    to: &Path,
) -> Result<(), EmbeddedError> {
    let object = store.get(key).await.map_err(|e| EmbeddedError::Read {
        what: what.into(),
        reason: one_line(e),
    })?;
    let Some(object) = object else {
        return Err(EmbeddedError::Read {
            what: what.into(),
            reason: "no such object".into(),
        });
    };
    unpack_model(&object.body, what, to)
}

/// Unpacks a gzip-compressed tar archive with the model files at its root into `to` (made
/// empty first), then checks that [`MODEL_FILES`] are there. Entries that would land outside
/// `to` (absolute paths, `..`) refuse the whole archive.
pub fn unpack_model(archive: &[u8], what: &str, to: &Path) -> Result<(), EmbeddedError> {
    let io = |e: std::io::Error| EmbeddedError::Read {
        what: to.display().to_string(),
        reason: one_line(e),
    };
    let bad = |reason: String| EmbeddedError::Archive {
        what: what.into(),
        reason,
    };
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(io)?;
    }
    std::fs::create_dir_all(to).map_err(io)?;
    // Stream the archive (no decompressed copy of the weights in memory); a foreign file is
    // told by gzip's magic bytes, a truncated one fails as a bad entry below.
    if !archive.starts_with(&[0x1f, 0x8b]) {
        return Err(bad("not gzip data (no gzip header)".into()));
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a tar archive ({})", one_line(e))))?;
    let mut unpacked = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a tar archive ({})", one_line(e))))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(bad(format!(
                "it holds a link or special file ({})",
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
        let inside = entry
            .unpack_in(to)
            .map_err(|e| bad(format!("cannot unpack ({})", one_line(e))))?;
        if !inside {
            return Err(bad("an entry's path leaves the model directory".into()));
        }
        unpacked += 1;
    }
    if unpacked == 0 {
        return Err(bad("the archive is empty".into()));
    }
    for f in MODEL_FILES {
        if !to.join(f).is_file() {
            return Err(EmbeddedError::NotAModel {
                what: what.into(),
                reason: format!("the archive has no {f} at its root"),
            });
        }
    }
    Ok(())
}

/// Lambda gives a function one vCPU per 1,769 MB of memory, up to 6 at 10,240 MB.
pub const LAMBDA_MB_PER_VCPU: u32 = 1_769;

/// The threads to label with on a Lambda function of `memory_mb`: the vCPUs its memory buys,
/// rounded to the nearest whole one, at least 1 and at most 6. (`/proc/cpuinfo` inside
/// Lambda shows the host's CPUs, not the share the function gets.)
pub fn lambda_threads(memory_mb: u32) -> usize {
    let vcpus = (f64::from(memory_mb) / f64::from(LAMBDA_MB_PER_VCPU)).round() as usize;
    vcpus.clamp(1, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_the_memory_not_the_host() {
        for (mb, threads) in [
            (128, 1),
            (1_024, 1),
            (1_769, 1),
            (3_008, 2),
            (3_538, 2),
            (5_307, 3),
            (8_846, 5),
            (10_240, 6),
        ] {
            assert_eq!(lambda_threads(mb), threads, "{mb} MB");
        }
    }

    #[test]
    fn s3_uris_parse_and_name_the_model() {
        let s = ModelSource::parse_s3_uri("s3://b/models/star-v3/model.tar.gz").unwrap();
        assert_eq!(
            s,
            ModelSource::S3 {
                bucket: "b".into(),
                key: "models/star-v3/model.tar.gz".into()
            }
        );
        assert_eq!(s.model_name(), "star-v3");
        let s = ModelSource::parse_s3_uri("s3://b/star-v4.tar.gz").unwrap();
        assert_eq!(s.model_name(), "star-v4");
        let s = ModelSource::parse_s3_uri("s3://b/model.tar.gz").unwrap();
        assert_eq!(s.model_name(), "model");
        for bad in [
            "b/model.tar.gz",
            "s3://b",
            "s3:///k",
            "s3://b/",
            "s3://b/dir/",
        ] {
            assert_eq!(ModelSource::parse_s3_uri(bad), None, "{bad}");
        }
        assert_eq!(ModelSource::Dir("/opt/m/ours".into()).model_name(), "ours");
    }

    #[test]
    fn errors_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }
}
