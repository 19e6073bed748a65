//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a decoder LLM. Every variant names the
/// file (and, where it applies, the tensor or key) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// Opening or reading the weights failed.
    #[error(transparent)]
    Model(#[from] sop_model::ModelError),

    /// The BERT calibration (of `sop-calib`) failed.
    #[error(transparent)]
    Calib(#[from] sop_calib::CalibError),

    /// The model's architecture has no forward pass here.
    #[error(
        "{path}: architecture `{arch}` has no forward pass here (implemented: the Llama family: \
         llama, mistral); `sop eval` and `sop quantize` without calibration still work on it"
    )]
    UnsupportedArchitecture {
        /// The model file or its `config.json`.
        path: PathBuf,
        /// The architecture as the file names it.
        arch: String,
    },

    /// A file the model needs is missing (`config.json`, `tokenizer.json`).
    #[error("{path}: {what} not found: {why}")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// What it is.
        what: &'static str,
        /// Why it is needed / what to do.
        why: String,
    },

    /// The hyper-parameters (GGUF metadata or `config.json`) are missing, malformed or
    /// inconsistent with the tensors.
    #[error("{path}: {reason}")]
    Config {
        /// The model file or `config.json`.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The tokenizer could not be built or failed on a text.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer's source (`tokenizer.json` or the GGUF file).
        path: PathBuf,
        /// The diagnosis.
        reason: String,
    },

    /// An input out of range (no tokens, a token id outside the vocabulary, ...).
    #[error("{0}")]
    Invalid(String),
}
