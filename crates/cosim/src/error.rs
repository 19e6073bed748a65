//! The error type of this crate.

use std::path::PathBuf;

use crate::ffi::Variant;

/// Errors of the co-simulation.
#[derive(Debug, thiserror::Error)]
pub enum CosimError {
    /// No Verilated model of that name and variant is linked into this build.
    #[error("no Verilated model `{name}` ({variant:?}) in this build; compiled: {}. Emit the configuration into rtl-out/ (`sop rtl emit`) and rebuild", available.join(", "))]
    NoModel {
        /// The configuration asked for.
        name: String,
        /// The variant asked for.
        variant: Variant,
        /// The configurations that have that variant.
        available: Vec<String>,
    },
    /// A model could not be created or does not have the expected ports.
    #[error("Verilated model: {0}")]
    Model(String),
    /// A configuration error (from `sop-hw`).
    #[error(transparent)]
    Hw(#[from] sop_hw::HwError),
    /// Reading the model weights failed.
    #[error(transparent)]
    Weights(#[from] sop_model::ModelError),
    /// Quantization failed.
    #[error(transparent)]
    Quant(#[from] sop_quantize::QuantError),
    /// A configuration cannot be co-simulated with the requested options.
    #[error("{0}")]
    Config(String),
    /// A quantized layer does not fit a configuration.
    #[error("layer {layer} on {config}: {reason}")]
    Layer {
        /// The layer.
        layer: String,
        /// The configuration.
        config: String,
        /// Why it does not fit.
        reason: String,
    },
    /// A coverage model, report or merge is inconsistent (a hit on an excluded bin, reports
    /// of different runs, an overlap, a file that is not a coverage report).
    #[error("coverage: {0}")]
    Coverage(String),
    /// Writing a waveform failed.
    #[error("VCD: {0}")]
    Vcd(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
