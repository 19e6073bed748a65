//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while calibrating or reading/writing an importance matrix.
///
/// Every variant names the file (and, where it applies, the tensor) it is about. No input bytes
/// make this crate panic: malformed input always ends up as one of these variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibError {
    /// An I/O error while reading or writing a file.
    #[error("{path}: I/O error: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file as a whole is not a valid importance matrix (wrong magic, unsupported GGUF
    /// version, truncated header, bad metadata, ...).
    #[error("{path}: {reason}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// One tensor (entry) of an importance matrix is unusable: unknown or wrong dtype, data out
    /// of bounds, sums without counts, non-finite values, a column count that does not match
    /// the layer it is used for, and so on.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    Tensor {
        /// The importance-matrix file (or `(in-memory statistics)`).
        path: PathBuf,
        /// The tensor or layer name.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The importance matrix does not belong to the model: none of its entries names a linear
    /// layer of the model.
    #[error("{path}: no entry matches a linear layer of model {model} (imatrix entries such as {examples}; model layers such as {model_examples})")]
    NoMatchingLayer {
        /// The importance-matrix file.
        path: PathBuf,
        /// The model path.
        model: PathBuf,
        /// A few entry names of the imatrix.
        examples: String,
        /// A few layer names of the model.
        model_examples: String,
    },

    /// Opening or reading the model weights failed.
    #[error(transparent)]
    Model(#[from] sop_model::ModelError),

    /// The tokenizer (`tokenizer.json`) could not be loaded or failed on a text.
    #[error("{path}: tokenizer error: {reason}")]
    Tokenizer {
        /// The `tokenizer.json` file.
        path: PathBuf,
        /// The tokenizer's diagnosis.
        reason: String,
    },

    /// The model is not one this crate can run (only BERT encoders have a forward pass here).
    #[error("{path}: cannot calibrate this model: {reason}")]
    UnsupportedModel {
        /// The model file or directory (or its `config.json`).
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The calibration text set is empty, or an option is out of range.
    #[error("invalid calibration input: {0}")]
    Invalid(String),
}

impl CalibError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CalibError::Io {
            path: path.into(),
            source,
        }
    }
}
