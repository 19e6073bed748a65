//! The HIF error target of docs/qor.md, measured on the real MiniLM weights in the normal
//! suite: the weight reconstruction error (median NMSE over every linear layer) of the
//! operating point the main HIF lane `sop_c4_hif8_ue4m4_fp16` decodes is within 5 % of the
//! point its FP16-LUT twin `sop_c4_fp16lut_ue4m4_fp16` decodes (same codes, block scales and
//! selection bits; only the LUT entry word differs).
//!
//! The figure is computed here by `sop_qor::recon::reconstruction_error`, the function
//! behind `scripts/qor --recon minilm` that produced the number docs/qor.md quotes, with the
//! HIF7 lane left out (not a target). It lives beside the quantizer's MiniLM tests
//! (quantize_cli.rs) because it needs the same cached weights, not the hardware tools of
//! crates/qor's tests.

use sop_qor::recon::{reconstruction_error, LANE_POINTS};

/// The target of docs/qor.md: the main HIF lane's median NMSE at most this much above the
/// FP16-LUT lane's.
const HIF_ERROR_MARGIN: f64 = 0.05;

/// The operating point a lane configuration decodes, from [`LANE_POINTS`].
fn point_of(config: &str) -> &'static str {
    LANE_POINTS
        .iter()
        .find(|(c, _)| *c == config)
        .unwrap_or_else(|| panic!("{config} not in LANE_POINTS"))
        .1
}

/// `sop_c4_hif8_ue4m4_fp16` against `sop_c4_fp16lut_ue4m4_fp16` on every linear layer of
/// MiniLM: median NMSE within 5 % (the target), measured on the same layers with the
/// reference quantizer options. Also reports the all-weights NMSE ratio (not a target).
#[test]
fn minilm_hif_error_within_5_percent_of_fp16_lut() {
    let hif = point_of("sop_c4_hif8_ue4m4_fp16");
    let fp16 = point_of("sop_c4_fp16lut_ue4m4_fp16");
    let t0 = std::time::Instant::now();
    // The last point is the reference of the relative columns.
    let rows = reconstruction_error("minilm", &[hif, fp16], false).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let (h, f) = (&rows[0], &rows[1]);
    eprintln!(
        "{} ({}): median NMSE {:.4e} vs {:.4e} ({}): {:+.2} % (target <= +{:.0} %); all weights {:+.2} %; \
         {} layers, {secs:.1} s",
        h.config,
        h.point,
        h.median_nmse,
        f.median_nmse,
        f.config,
        100.0 * h.median_vs_reference,
        100.0 * HIF_ERROR_MARGIN,
        100.0 * h.total_vs_reference,
        h.layers
    );
    // Every linear layer of all-MiniLM-L6-v2, both points on the same ones, same bits.
    assert_eq!((h.layers, f.layers), (37, 37));
    assert_eq!(
        (h.config.as_str(), f.config.as_str()),
        ("sop_c4_hif8_ue4m4_fp16", "sop_c4_fp16lut_ue4m4_fp16")
    );
    assert!((h.bpw - f.bpw).abs() < 0.01, "bpw {} vs {}", h.bpw, f.bpw);
    assert!(h.median_nmse > 0.0 && f.median_nmse > 0.0);
    assert!(
        h.median_vs_reference <= HIF_ERROR_MARGIN,
        "HIF median NMSE {:.4e} is {:+.2} % of the FP16-LUT lane's {:.4e} (target <= +{:.0} %)",
        h.median_nmse,
        100.0 * h.median_vs_reference,
        f.median_nmse,
        100.0 * HIF_ERROR_MARGIN
    );
}
