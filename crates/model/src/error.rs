use std::path::PathBuf;

/// Everything that can go wrong in the model crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing a model file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (config.json, calltype.json, ...) is malformed or unreadable.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The model config is valid JSON but not a supported or consistent model.
    #[error("unsupported model config: {0}")]
    Config(String),
    /// A parameter the architecture needs is absent from the weights.
    #[error("missing weight {name} in {path}")]
    MissingWeight {
        /// Hugging Face parameter name.
        name: String,
        /// The weights file.
        path: PathBuf,
    },
    /// A parameter has the wrong shape for the config.
    #[error("weight {name} has shape {actual:?}, expected {expected:?}")]
    WeightShape {
        /// Hugging Face parameter name.
        name: String,
        /// Shape found in the file.
        actual: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A tensor operation failed.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Training or evaluation data is unusable (empty, unknown labels, ...).
    #[error("invalid data: {0}")]
    Data(String),
    /// Training settings are inconsistent.
    #[error("invalid training config: {0}")]
    TrainConfig(String),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
