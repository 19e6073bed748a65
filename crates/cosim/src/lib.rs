//! `sop-cosim`: Verilator co-simulation of the SOP decode RTL (`rtl-out/*.v`) against the
//! bit-accurate golden model (`sop_hw::model`), driven by real quantized weights.
//!
//! - [`ffi`]: the Verilated models linked by `build.rs` ([`models`], [`Variant`]) and
//!   [`Dut`], a safe wrapper (reset, table loads, one cycle per call, VCD).
//! - [`golden`]: the golden model as a per-table-load lookup table ([`ProductTable`]).
//! - [`harness`]: [`Harness`], which clocks a [`Dut`] from a [`Stimulus`] and checks every
//!   output word in the cycle it is due.
//! - [`stimulus`]: configuration -> operating point ([`point_for`]), quantized layer ->
//!   tables and stream ([`LayerStim`], [`LayerStream`]) with idle gaps and resets.
//! - [`report`]: [`Mismatch`] reports.
//! - [`export`]: the weights exactly as the hardware delivers them ([`export::hardware_values`]).
//! - [`run()`]: the whole co-simulation of a model ([`CosimOptions`] -> [`CosimSummary`]) as
//!   independent layer x configuration work items on worker threads, [`junit`] XML (and the
//!   merge of shards' files). The `sop cosim` command line lives in `crates/cli`
//!   (`cosim_cmd.rs`).
//! - [`select`]: the layers and configurations a run covers; [`summary`]: what it reports
//!   ([`CosimSummary`], [`LayerReport`], [`SoakSummary`]); [`soak()`]: the soak; the VCD replay
//!   of the first mismatch is a private module (`replay`).
//! - [`coverage`]: functional coverage (bins, reachability by enumeration, hits, JSON,
//!   merge); [`directed`]: the directed stimulus that reaches every reachable bin.
//! - [`activity`]: a real layer streamed through a traced model, the whole run dumped to a
//!   VCD ([`record_activity`]) for the standard-cell power analysis (`sop rtl qor --activity`).
//! - [`shard`]: work items, `--shard K/N` ([`Shard`]) and the partition balanced by weights
//!   ([`partition`]).
//!
//! Build, protocol, mapping and figures: `docs/cosim.md`.
//!
//! ```no_run
//! use sop_cosim::{run, CosimOptions};
//! let opts = CosimOptions { layers: Some("layer\\.0\\.".into()), ..CosimOptions::default() };
//! let summary = run(&opts, |_| {})?;
//! println!("{summary}");
//! # Ok::<(), sop_cosim::CosimError>(())
//! ```
#![warn(missing_docs)]

pub mod activity;
pub mod coverage;
pub mod directed;
mod error;
pub mod export;
pub mod ffi;
pub mod gemv;
pub mod golden;
pub mod harness;
pub mod junit;
mod replay;
pub mod report;
pub mod run;
pub mod select;
pub mod shard;
mod soak;
pub mod stimulus;
pub mod summary;
pub mod tile;
mod xml;

pub use activity::{record_activity, ActivityRecord};
pub use error::CosimError;
pub use ffi::{compiled_configs, load_ops, models, raw_stimulus, Dut, LoadOp, ModelInfo, Variant};
pub use golden::ProductTable;
pub use harness::{BeatStreams, Counters, Geometry, Harness, Stimulus};
pub use report::{Mismatch, MismatchKind, WeightPos};
pub use run::{effective_threads, reload_tables, run, run_quantized, stream_layer, CosimOptions, EventCounts};
pub use select::{select_configs, select_layers};
pub use shard::{partition, Shard, WorkItem};
pub use soak::soak;
pub use stimulus::{point_for, tables_for, LayerStim, LayerStream, StimulusOptions, StreamEvent};
pub use summary::{CosimSummary, LayerReport, OptionCount, Progress, SoakRound, SoakSummary, VcdReport};
pub use tile::{tile_names, TileDut};
