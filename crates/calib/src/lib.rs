//! `sop-calib`: real activation statistics for the SOP quantizer.
//!
//! The activation-weighted cosine of the SOP quantizer weights every input column `j` of a
//! linear layer by `a_j = E[x_j^2]`, the mean square of that column's input over calibration
//! tokens. This crate measures those statistics on real text and stores them in llama.cpp's
//! importance-matrix format, the ecosystem's exchange format for exactly this quantity:
//!
//! - [`calibrate`] runs a BERT encoder (all-MiniLM-L6-v2 and other Hugging Face `BertModel`
//!   checkpoints) on a text set (by default [`builtin_texts`], 520 public-domain sentences) and
//!   records, for every linear layer, the per-column sums of `x^2` (and of `x`) and the token
//!   count. The forward pass is plain Rust f32 ([`Encoder`], checked against an independent
//!   numpy reference); tokenization uses the model's own `tokenizer.json`.
//! - [`ImatrixStats`] holds the statistics; [`ImatrixStats::read`] reads `imatrix.gguf` (and
//!   the legacy `imatrix.dat`), [`ImatrixStats::write`] writes `imatrix.gguf` atomically, and
//!   [`ImatrixStats::column_weights`] hands the quantizer `E[x_j^2]` for one layer.
//! - [`hf_to_gguf`] / [`gguf_to_hf`] map Llama-style Hugging Face tensor names to the GGUF
//!   names of imatrix files made by llama.cpp.
//!
//! ```no_run
//! use sop_calib::{builtin_texts, calibrate, CalibOptions, ImatrixStats};
//! let model = sop_model::resolve("minilm")?;
//! let stats = calibrate(&model, &builtin_texts(), &CalibOptions::default(), &mut |_| {})?;
//! stats.write(std::path::Path::new("minilm.imatrix.gguf"))?;
//! let back = ImatrixStats::read(std::path::Path::new("minilm.imatrix.gguf"))?;
//! let a = back.column_weights("encoder.layer.0.output.dense.weight", 1536)?;
//! assert_eq!(a.map(|v| v.len()), Some(1536));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/calibration.md` for the method, the file-format subset and the text set.

#![warn(missing_docs)]

mod bert;
mod calibrate;
mod error;
mod imatrix;
mod kernels;
mod names;

pub use bert::{model_dir, Acc, Bert, BertConfig, F32Linear, LinearExec, LinearRef};
pub use calibrate::{
    builtin_texts, calibrate, heldout_texts, read_texts, CalibOptions, Encoder, Progress, BUILTIN_DATASET,
    BUILTIN_TEXT, DEFAULT_LLM_TOKENS, DEFAULT_MAX_SEQ_LEN, HELDOUT_TEXT,
};
pub use error::CalibError;
pub use imatrix::{
    to_legacy_bytes, Coverage, ImatrixFormat, ImatrixStats, LayerStats, KEY_CHUNK_COUNT, KEY_CHUNK_SIZE, KEY_DATASETS,
    KEY_TYPE, SUFFIX_COUNTS, SUFFIX_SUM, SUFFIX_SUM2,
};
pub use names::{gguf_to_hf, hf_to_gguf};
/// The GGUF container reader and writer (it lives in `sop-model`, which also reads GGUF models;
/// re-exported here because importance matrices are GGUF files too).
pub use sop_model::gguf;
