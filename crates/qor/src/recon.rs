//! Weight reconstruction error of the lane formats on a real model, through the reference
//! quantizer (`sop-quantize`): the error side of the QoR trade-off.
//!
//! The three 4-bit UE4M4 lanes decode the same operating point with different LUT entry
//! words ([`LANE_POINTS`]): `NF4+DD4sUE4M4b16` (HIF8 entries), `...-HIF7` and `...-FP16`.

use serde::{Deserialize, Serialize};
use sop_formats::OperatingPoint;
use sop_model::{Model, NonFinitePolicy};
use sop_quantize::eval::{evaluate_layer, median, LayerEval};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

use crate::QorError;

/// Configurations and the operating point their lane decodes (same codes, block scales and
/// selection bits; only the LUT entry word differs).
pub const LANE_POINTS: [(&str, &str); 3] = [
    ("sop_c4_hif8_ue4m4_fp16", "NF4+DD4sUE4M4b16"),
    ("sop_c4_hif7_ue4m4_fp16", "NF4+DD4sUE4M4b16-HIF7"),
    ("sop_c4_fp16lut_ue4m4_fp16", "NF4+DD4sUE4M4b16-FP16"),
];

/// Reconstruction error of one operating point over a model's linear layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointError {
    /// Configuration whose lane decodes the point (from [`LANE_POINTS`], else empty).
    pub config: String,
    /// Canonical operating-point name.
    pub point: String,
    /// Linear layers evaluated.
    pub layers: usize,
    /// Median over the layers of the per-layer NMSE (`sum e^2 / sum w^2`).
    pub median_nmse: f64,
    /// NMSE over all layers together: `sum e^2 / sum w^2` over every weight.
    pub total_nmse: f64,
    /// Bits per weight (all layers).
    pub bpw: f64,
    /// `median_nmse / median_nmse(reference) - 1` against the last point (the FP16 entries
    /// in [`LANE_POINTS`]).
    pub median_vs_reference: f64,
    /// `total_nmse / total_nmse(reference) - 1`.
    pub total_vs_reference: f64,
}

fn err(e: impl std::fmt::Display) -> QorError {
    QorError::Recon(e.to_string())
}

/// Quantizes every linear layer of `model` (a path or the alias `minilm`, see
/// `sop_model::resolve`) at each of `points` with the reference options and measures the
/// reconstruction. The last point is the reference of the relative columns. Progress on
/// standard error when `progress`.
pub fn reconstruction_error(model: &str, points: &[&str], progress: bool) -> Result<Vec<PointError>, QorError> {
    if points.is_empty() {
        return Err(QorError::Usage("no operating point given".into()));
    }
    let quantizers = points
        .iter()
        .map(|p| {
            let point: OperatingPoint = p.parse().map_err(|e| err(format!("operating point '{p}': {e}")))?;
            Quantizer::new(point, QuantOptions::default()).map_err(|e| err(format!("operating point '{p}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let path = sop_model::resolve(model).map_err(|e| err(format!("model '{model}': {e}")))?;
    let m = Model::open(&path).map_err(err)?;
    let layers = m.linear_layers();
    if layers.is_empty() {
        return Err(err(format!("{}: no linear layers", path.display())));
    }
    let mut evals: Vec<LayerEval> = Vec::new();
    let mut energy = Vec::new();
    for (i, t) in layers.iter().enumerate() {
        let w = m.load_f32_with(&t.name, NonFinitePolicy::Refuse).map_err(err)?;
        if progress {
            eprintln!("  [{}/{}] {} {}x{}", i + 1, layers.len(), w.name, w.rows, w.cols);
        }
        let ww: f64 = w.data.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
        energy.push(ww);
        let layer = LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        };
        evals.extend(evaluate_layer(layer, None, &quantizers).map_err(err)?);
    }
    let total_energy: f64 = energy.iter().sum();
    let mut out: Vec<PointError> = quantizers
        .iter()
        .enumerate()
        .map(|(k, q)| {
            let name = q.point().to_string();
            let mine: Vec<&LayerEval> = evals.iter().skip(k).step_by(quantizers.len()).collect();
            let nmse: Vec<f64> = mine.iter().map(|e| e.metrics.nmse).collect();
            let err_energy: f64 = mine.iter().zip(&energy).map(|(e, ww)| e.metrics.nmse * ww).sum();
            let weights: f64 = mine.iter().map(|e| (e.shape[0] * e.shape[1]) as f64).sum();
            let bits: f64 = mine.iter().map(|e| e.bpw * (e.shape[0] * e.shape[1]) as f64).sum();
            let config = LANE_POINTS
                .iter()
                .find(|(_, p)| p.parse::<OperatingPoint>().ok() == Some(q.point()))
                .map(|(c, _)| c.to_string())
                .unwrap_or_default();
            PointError {
                config,
                point: name,
                layers: mine.len(),
                median_nmse: median(&nmse),
                total_nmse: err_energy / total_energy,
                bpw: bits / weights,
                median_vs_reference: 0.0,
                total_vs_reference: 0.0,
            }
        })
        .collect();
    let (rm, rt) = {
        let r = out.last().expect("non-empty");
        (r.median_nmse, r.total_nmse)
    };
    for p in &mut out {
        p.median_vs_reference = p.median_nmse / rm - 1.0;
        p.total_vs_reference = p.total_nmse / rt - 1.0;
    }
    Ok(out)
}

/// The reconstruction errors as a Markdown table.
pub fn markdown_errors(rows: &[PointError]) -> String {
    let mut s = String::from(
        "| configuration | operating point | layers | bpw | median NMSE | total NMSE | median vs ref. | total vs ref. |\n\
         |---|---|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| `{}` | `{}` | {} | {:.4} | {:.4e} | {:.4e} | {:+.2}% | {:+.2}% |\n",
            r.config,
            r.point,
            r.layers,
            r.bpw,
            r.median_nmse,
            r.total_nmse,
            100.0 * r.median_vs_reference,
            100.0 * r.total_vs_reference
        ));
    }
    s
}
