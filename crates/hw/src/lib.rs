//! SOP weight-decode hardware: the decode lane described with rust-hdl, its bit-accurate
//! golden model, and Verilog emission.
//!
//! - [`config`]: [`LaneConfig`] (what one generated top is), TOML files, the defaults.
//! - [`model`]: the golden model ([`model::decode_word`], [`model::run_lane`]), computed
//!   through `sop-formats`.
//! - [`coverage`]: the functional-coverage class of a decoded weight (element, scale,
//!   packer outcome), from the golden model's intermediate values.
//! - [`mode`]: the decode engine's mode register (element path, code width, scale format).
//! - [`params`]: every datapath constant, derived from `sop-formats`.
//! - [`sim`]: rust-hdl simulation of a top ([`sim::RtlSim`]) and of the combinational
//!   datapath ([`sim::Datapath`]).
//! - [`mod@emit`]: Verilog files ([`emit()`], [`emit_all()`]).
//! - [`sparse`]: golden model of the sparse correction unit ([`sparse::correct`]) that
//!   applies outliers and residuals to lane output words.
//! - [`tile`]: golden model of the block dot-product tile's arithmetic (activation
//!   alignment, exact block sums, one rounding per block into an FP32 accumulator).
//! - [`tile_sim`]: the dot-product tile's port protocol, one driver for rust-hdl's
//!   simulation and the Verilated model, and the golden results of a job.
//! - [`rng`]: the deterministic random stream of the tests' stimulus.
//!
//! The hardware description itself (module `rtl`, private) is the only code that
//! touches rust-hdl's block types; see `docs/hardware.md` for the datapath.

#![warn(missing_docs)]

pub mod config;
pub mod coverage;
pub mod emit;
pub mod mode;
pub mod model;
pub mod params;
pub mod rng;
mod rtl;
pub mod sim;
pub mod sparse;
pub mod tile;
pub mod tile_sim;

use std::path::PathBuf;

pub use config::{default_configs, LaneConfig};
pub use emit::{emit, emit_all};
pub use model::{decode_word, run_lane, Beat, Tables};
pub use params::{CORR_LATENCY, LATENCY};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// A configuration describes hardware that cannot be built.
    #[error("configuration '{name}': {reason}")]
    Config {
        /// Configuration name.
        name: String,
        /// What is wrong and why.
        reason: String,
    },
    /// A configuration file does not parse.
    #[error("configuration file: {0}")]
    Parse(String),
    /// Table contents do not fit the configuration.
    #[error("tables: {0}")]
    Tables(String),
    /// A simulation check failed.
    #[error("simulation: {0}")]
    Sim(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
