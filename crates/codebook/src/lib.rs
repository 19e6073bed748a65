//! Codebooks for SOP block quantization.
//!
//! A [`Codebook`] is a sorted table of `2^bits` reconstruction levels in normalized units
//! (the block scale maps the block's extreme weight to magnitude 1, so every table has
//! `max |level| == 1`). This crate provides
//!
//! * the fixed codebooks: [`nf4`], [`bof4`], [`bof4_s`], [`split87`], [`sh4`] (16 levels)
//!   and the format baselines [`e2m1`], [`int4`] (16) and [`e2m3`] (64);
//! * a weighted 1-D Lloyd-Max fitter with fixed levels and optional rounding
//!   ([`lloyd_max`], [`WeightedSamples`]), used for the per-layer data-driven DD4 tables;
//! * the deterministic constructions behind the block-optimized tables ([`Family`]).
//!
//! Which tables follow a published source and which are this project's reconstruction
//! is listed in `docs/codebooks.md`.
//!
//! ```
//! use sop_codebook::{bof4, lloyd_max, LloydOptions, NF4_LEVELS};
//!
//! // Quantize one block with absmax scaling.
//! let block = [0.3f32, -1.2, 0.05, 0.9];
//! let scale = block.iter().fold(0.0f32, |m, w| m.max(w.abs()));
//! let cb = bof4(64);
//! let codes: Vec<u8> = block.iter().map(|w| cb.nearest(w / scale)).collect();
//! assert_eq!(cb.level(codes[1]) * scale, -1.2);
//!
//! // Fit a data-driven 16-level table, keeping -1, 0 and +1.
//! let samples: Vec<f32> = (0..1000).map(|i| (i as f32 / 500.0 - 1.0).powi(3)).collect();
//! let fit = lloyd_max(&samples, &[], &NF4_LEVELS, &[-1.0, 0.0, 1.0], &LloydOptions::default())
//!     .unwrap();
//! assert_eq!(fit.levels.len(), 16);
//! ```

#![warn(missing_docs)]

mod books;
mod codebook;
mod construct;
mod lloyd;
mod tables;

pub use books::{bof4, bof4_s, e2m1, e2m3, family_codebook, int4, nf4, sh4, split87};
pub use codebook::{Codebook, CodebookError};
pub use construct::{BlockModel, Family, Normalization, SourceDist, SH4_NU};
pub use lloyd::{lloyd_max, LloydError, LloydOptions, LloydResult, WeightedSamples};
pub use tables::NF4_LEVELS;
