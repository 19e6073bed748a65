//! `sop-model`: reads real model weights for the SOP quantizer.
//!
//! Accepts a single `.safetensors` file, a Hugging Face model directory with
//! `model.safetensors`, a sharded one with `model.safetensors.index.json`, an ONNX model
//! (`.onnx`, whose `MatMul` / `Gemm` weight initializers are the linear layers), or a `.gguf`
//! file (llama.cpp's container; its block-quantized tensors are dequantized, see
//! [`Model::already_quantized`]). Files are
//! memory-mapped; headers are parsed and validated on [`Model::open`], tensor data is read only
//! by [`Model::load_f32`], which converts F32 / F16 / BF16 to row-major `f32`
//! ([`Weights2D`]) and refuses NaN/Inf unless a [`NonFinitePolicy`] says otherwise.
//! [`Model::linear_layers`] lists the weights a quantizer works on. [`resolve`] maps the aliases
//! `minilm` (all-MiniLM-L6-v2) and `smollm2` (SmolLM2-135M-Instruct, GGUF) to real weights,
//! fetching them on first use.
//!
//! ```no_run
//! use sop_model::{resolve, Model};
//! let model = Model::open(&resolve("minilm")?)?;
//! for t in model.linear_layers() {
//!     let w = model.load_f32(&t.name)?;
//!     println!("{} {}x{}", w.name, w.rows, w.cols);
//! }
//! # Ok::<(), sop_model::ModelError>(())
//! ```
//!
//! No input bytes make this crate panic; malformed input yields a [`ModelError`] that names the
//! file and, where it applies, the tensor.

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod convert;
mod error;
mod ggml_quants;
pub mod gguf;
mod gguf_model;
mod model;
mod natural;
mod onnx;
mod resolve;

pub use convert::NonFinitePolicy;
pub use error::ModelError;
pub use model::{is_linear_weight, DType, Model, TensorInfo, Weights2D, INDEX_FILE, SINGLE_FILE};
pub use natural::natural_cmp;
pub use onnx::{OnnxError, SkippedWeight};
pub use resolve::{
    alias_path, cache_dir, fetch_script, minilm_path, resolve, resolve_in, MINILM, SMOLLM2, SMOLLM2_FILE,
};
