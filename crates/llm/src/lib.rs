//! `sop-llm`: a Llama-family decoder LLM in plain Rust f32, for calibration and end-to-end
//! fidelity of quantized decoder models.
//!
//! - [`Llama`] loads a model from a GGUF file (metadata `llama.*`, llama.cpp tensor names) or
//!   a Hugging Face directory (`config.json`, safetensors), and runs the forward pass
//!   (RMSNorm, RoPE with the file's base and pairing convention, grouped-query causal
//!   attention, SwiGLU, tied or separate output head) with its linear layers through a
//!   [`sop_calib::LinearExec`], deterministic at any thread count. It is checked against an
//!   independent numpy reference on the real SmolLM2-135M weights (`tests/smollm2.rs`).
//! - [`LlmTokenizer`]: `tokenizer.json`, or GPT-2 byte-level BPE from GGUF metadata.
//! - [`fidelity`]: perplexity, KL divergence and top-1 agreement of a quantized model against
//!   the original on the same tokens.

#![warn(missing_docs)]

mod calibrate;
mod config;
mod error;
pub mod fidelity;
mod llama;
mod tokenizer;

pub use calibrate::{calibrate_any, calibrate_llm, is_decoder, Recorder};
pub use config::{LlamaConfig, RopeStyle};
pub use error::LlmError;
pub use llama::{argmax, Llama};
pub use tokenizer::LlmTokenizer;
