//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, opening or loading a model.
///
/// Every variant names the file (and, where it applies, the tensor) it is about, so that the
/// message alone tells a user what to look at. No input bytes make this crate panic: malformed
/// input always ends up as one of these variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The given path (file or directory) does not exist.
    #[error("model path {path} does not exist")]
    NotFound {
        /// The path that was asked for.
        path: PathBuf,
    },

    /// An I/O error while reading or memory-mapping a file.
    #[error("{path}: I/O error: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a valid safetensors file: too short, truncated, header length larger than
    /// the file, header not UTF-8 / not JSON, unknown dtype name, offsets that do not cover the
    /// data exactly, and so on.
    #[error("{path}: not a valid safetensors file (truncated, corrupt or not safetensors): {source}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// The parser's diagnosis.
        #[source]
        source: safetensors::SafeTensorError,
    },

    /// A directory was given that holds neither `model.safetensors` nor
    /// `model.safetensors.index.json`.
    #[error("directory {path} contains neither model.safetensors nor model.safetensors.index.json")]
    NoWeightsInDir {
        /// The directory.
        path: PathBuf,
    },

    /// The file is not a valid GGUF model: bad magic, unsupported version, truncated header or
    /// tensor data, a shape that is not a whole number of blocks, and so on.
    #[error("{path}: not a valid GGUF model file: {reason}")]
    Gguf {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A GGUF tensor of a ggml type that is not converted to f32.
    #[error(
        "{file}: tensor `{tensor}` has type {ggml_type}, which cannot be loaded; supported: F32, F16, BF16 \
         and (dequantized) Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"
    )]
    UnsupportedGgmlType {
        /// The GGUF file.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The type, e.g. `IQ2_XXS (ggml type 16)`.
        ggml_type: String,
    },

    /// A tensor name that the model does not contain.
    #[error("model {model}: no tensor named `{name}`")]
    UnknownTensor {
        /// The model path given to [`crate::Model::open`].
        model: PathBuf,
        /// The requested name.
        name: String,
    },

    /// The tensor's element type cannot be converted to f32 (only F32, F16 and BF16 can).
    #[error("{file}: tensor `{tensor}` has dtype {dtype}; only F32, F16 and BF16 can be loaded as f32")]
    UnsupportedDtype {
        /// The safetensors file that holds the tensor.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The dtype as written in the file header (e.g. `I32`).
        dtype: String,
    },

    /// The tensor is not 2-D, so it is not a linear-layer weight matrix.
    #[error("{file}: tensor `{tensor}` has shape {shape:?} (rank {}), expected a 2-D [out, in] matrix", shape.len())]
    NotTwoD {
        /// The safetensors file that holds the tensor.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// The tensor is 2-D but has no elements (a zero dimension).
    #[error("{file}: tensor `{tensor}` has shape {shape:?} with no elements")]
    ZeroSize {
        /// The safetensors file that holds the tensor.
        file: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// A NaN or infinite weight, refused under [`crate::NonFinitePolicy::Refuse`].
    /// Only the first one (lowest flat index) is reported.
    #[error(
        "tensor `{tensor}`: non-finite value {value} at flat index {index} (row {row}, col {col}); \
         refused (NonFinitePolicy::Zero or ::Clamp loads it anyway; CLI: `sop eval --allow-nonfinite zero|clamp`)"
    )]
    NonFinite {
        /// The tensor name.
        tensor: String,
        /// Row-major flat index of the first non-finite element.
        index: usize,
        /// Its row (`index / cols`, the output feature).
        row: usize,
        /// Its column (`index % cols`, the input feature).
        col: usize,
        /// The value itself (NaN, +inf or -inf).
        value: f32,
    },

    /// `model.safetensors.index.json` is malformed: not JSON, no `weight_map`, a shard name that
    /// is not a plain file name, a tensor listed in the index that its shard lacks, a tensor that
    /// appears in two shards.
    #[error("{path}: bad sharded-model index: {reason}")]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// `model.safetensors.index.json` names a shard file that does not exist.
    #[error("{index}: shard {shard} listed in the index does not exist")]
    ShardMissing {
        /// The index file.
        index: PathBuf,
        /// The missing shard (full path).
        shard: PathBuf,
    },

    /// An ONNX model that cannot be read (see [`crate::OnnxError`]; each variant names the file).
    #[error(transparent)]
    Onnx(#[from] crate::OnnxError),

    /// A model alias (e.g. `minilm`) could not be made available; the message says which command
    /// to run by hand.
    #[error("{0}")]
    Fetch(String),
}
