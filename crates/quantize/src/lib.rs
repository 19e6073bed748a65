//! `sop-quantize`: the software reference quantizer of SOP.
//!
//! A 2-D weight (rows = output features, cols = input features) is cut into blocks of `B`
//! consecutive weights along the input dimension. Each block gets a scale word (UE4M4, E4M3,
//! S+E4M3, UE8M0 or FP32) under one FP32 per-tensor scale, and each weight a code: a minifloat
//! bit pattern (E2M1, E2M3, E3M2, E4M3) or an index into a LUT of levels stored in HIF7/HIF8
//! or FP16 (NF4, BOF4, BOF4S, Split87, SH4, INT4, and the per-layer data-driven DD4/DD6).
//! Pairs (`NF4+DD4sUE4M4b16`) choose per block, with one selection bit, the member with the
//! lower activation-weighted error. Baselines: `E4M3-POT` (one power-of-two scale per layer),
//! MX (`E2M1sUE8M0b32`, OCP scale rule), NVFP4-like `E2M1sE4M3b16`, bitsandbytes-like
//! `NF4sF32b64`.
//!
//! * [`Quantizer`]: an [`OperatingPoint`](sop_formats::OperatingPoint) prepared once, applied to
//!   layers ([`LayerRef`]) with optional per-column weights `a_j`.
//! * [`QuantizedLayer`]: the result as plain data (codes, selection bits, scale words, LUTs,
//!   tensor scale) with exact [`bits`](QuantizedLayer::bits) and
//!   [`dequantize`](QuantizedLayer::dequantize).
//! * [`metrics()`]: MSE, NMSE, SQNR, cosine and their activation-weighted forms.
//! * [`eval`]: several points over many layers, with a summary.
//! * [`sparse`]: menu options with outliers (`+O<p>%`) and sparse residuals (`+R<p>%`).
//! * [`mckp`]: one option per layer under an average-bpw budget (exact DP and convex-hull
//!   greedy).
//!
//! Every format rule comes from `sop-formats` and every fixed table from `sop-codebook`. The
//! decisions (tensor-scale rule, scale search, padding, ties, DD fit, pairs, baselines) are
//! documented in `docs/quantizer.md`.
//!
//! ```
//! use sop_quantize::{LayerRef, QuantOptions, Quantizer};
//! let data: Vec<f32> = (0..64).map(|i| ((i * 37 % 29) as f32 - 14.0) / 10.0).collect();
//! let q = Quantizer::new("E2M3sUE4M4".parse().unwrap(), QuantOptions::default()).unwrap();
//! let ql = q.quantize(LayerRef { name: "w", rows: 2, cols: 32, data: &data }, None).unwrap();
//! assert_eq!(ql.bpw(), (64.0 * 6.0 + 4.0 * 8.0 + 32.0) / 64.0);
//! let w_hat = ql.dequantize();
//! let m = sop_quantize::metrics(&data, &w_hat, 32, None);
//! assert!(m.nmse < 1e-2);
//! ```

#![warn(missing_docs)]

mod dd;
mod error;
pub mod eval;
mod layer;
pub mod mckp;
mod member;
mod metrics;
mod quantizer;
mod scale;
pub mod sparse;

pub use dd::{NBINS as DD_HIST_BINS, RANGE as DD_HIST_RANGE};
pub use error::QuantError;
pub use layer::{decode_entry, decode_scale, Lut, QuantizedLayer, SparseEntry, SPARSE_ENTRY_BITS};
pub use member::minifloat_of;
pub use metrics::{metrics, Metrics};
pub use quantizer::{LayerRef, QuantOptions, Quantizer, CHUNK_WEIGHTS, TABLE_TOPS};
pub use scale::{pot_exponent, MAX_RADIUS};
