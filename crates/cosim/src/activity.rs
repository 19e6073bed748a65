//! The switching activity of a real layer: one linear layer of a model, quantized at a
//! configuration's operating point, streamed back to back through the configuration's
//! traced Verilated model with every output word checked, and the whole run (reset, table
//! load, stream, drain) dumped to a VCD. `sop rtl qor --activity minilm` annotates the
//! standard-cell power analysis with it (`sop_qor::activity`).

use std::path::{Path, PathBuf};

use sop_formats::point::{Element, OperatingPoint, ScaleFormat};
use sop_model::Model;
use sop_quantize::{QuantOptions, Quantizer};

use crate::ffi::{compiled_configs, Dut, Variant};
use crate::harness::Harness;
use crate::replay::{commit_vcd, open_vcd};
use crate::run::{item_body, layer_stim};
use crate::select::select_layers;
use crate::stimulus::{point_for, StimulusOptions};
use crate::CosimError;

/// What [`record_activity`] co-simulated.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityRecord {
    /// The VCD file written.
    pub path: PathBuf,
    /// Configuration (top module).
    pub config: String,
    /// The layer streamed (its tensor name).
    pub layer: String,
    /// The operating point it was quantized at.
    pub point: String,
    /// Weights streamed (each output word checked).
    pub weights: u64,
    /// Clock cycles dumped (reset to the end of the drain).
    pub cycles: u64,
}

/// Quantizes the first linear layer of `model` (a safetensors file, a Hugging Face
/// directory, or `minilm`) whose name matches `layer` at the operating point of the
/// compiled configuration `config` ([`point_for`]; an engine: its 4-bit table mode,
/// `NF4+DD4sUE4M4` with its own table entries), streams at most `max_weights` of its weights (whole
/// blocks; all when `None`) back to back through the configuration's traced model, and
/// writes the whole run to the VCD `path` (atomically). Every output word is checked against
/// the golden model: a mismatch is an error, so the activity is that of a correct run.
pub fn record_activity(
    config: &str,
    model: &str,
    layer: &str,
    max_weights: Option<u64>,
    path: &Path,
) -> Result<ActivityRecord, CosimError> {
    let compiled = compiled_configs();
    let cfg = compiled
        .iter()
        .find(|c| c.name == config)
        .ok_or_else(|| CosimError::NoModel {
            name: config.to_string(),
            variant: Variant::Traced,
            available: compiled.iter().map(|c| c.name.clone()).collect(),
        })?;
    let m = Model::open(&sop_model::resolve(model)?)?;
    let name = select_layers(&m, Some(layer))?
        .into_iter()
        .next()
        .ok_or_else(|| CosimError::Config(format!("no linear layer of {model} matches '{layer}'")))?;
    // An engine runs its 4-bit table mode (NF4 + DD4 codes, UE4M4 scales) with its own
    // table entries, so that the HIF engine and its FP16-LUT baseline stream the same codes
    // and scales (the co-simulation's `point_for` gives the HIF engine its E2M3 path).
    let point = if cfg.engine {
        OperatingPoint::Block {
            element: Element::NF4,
            dynamic: Some(Element::DD4),
            scale: ScaleFormat::UE4M4,
            block: cfg.block,
            lut: cfg.lut,
        }
    } else {
        point_for(cfg)?
    };
    cfg.decodes(&point)
        .map_err(|e| CosimError::Config(format!("{config} does not decode {point}: {e}")))?;
    let q = Quantizer::new(point, QuantOptions::default())?;
    let w = m.load_f32(&name)?;
    let stim = layer_stim(&q, &w, cfg, max_weights)?;

    let mut dut = Dut::with_variant(&cfg.name, Variant::Traced)?;
    // On an early return the harness (declared later) drops first and closes the tracer, then
    // `out` removes the temporary.
    let out = open_vcd(&mut dut, path)?;
    let mut h = Harness::new(dut);
    h.set_max_mismatches(1);
    h.set_vcd_window(0, u64::MAX);
    h.reset();
    item_body(&mut h, &stim, None, StimulusOptions::dense(), 0, u64::MAX)?;
    h.drain();
    let cycles = h.cycle();
    if let Some(m) = h.mismatches().first() {
        return Err(CosimError::Config(format!(
            "{config}: layer {name} mismatched the golden model while recording its activity: {m}"
        )));
    }
    h.dut_mut().vcd_close();
    drop(h);
    commit_vcd(out, path)?;
    Ok(ActivityRecord {
        path: path.to_path_buf(),
        config: cfg.name.clone(),
        layer: name,
        point: point.to_string(),
        weights: stim.weights(),
        cycles,
    })
}
