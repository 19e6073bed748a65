//! Real quantized minilm layers through every committed configuration: every output word
//! compared with the golden model, with idle gaps, early strobes, bubbles, a mid-layer reset
//! and a table reload between layers.
//!
//! Default: the six linear layers of minilm's first encoder block (q, k, v, attention
//! output: 384 x 384; intermediate: 1536 x 384; output: 384 x 1536; 1.77 M weights), in
//! full, one after the other on the same model per configuration (each table reload overlaps
//! the previous layer's drain). `SOP_COSIM_FULL=1` streams all 37 linear layers of minilm
//! (10.8 M weights per configuration) instead.

use sop_cosim::{compiled_configs, LayerStim, StimulusOptions, Variant};
use sop_testbenches::{assert_clean, config, harness, load, quantize, stream_layer, SMALL_LAYER};

fn full() -> bool {
    std::env::var_os("SOP_COSIM_FULL").is_some_and(|v| v != "0")
}

fn run_config(name: &str) {
    let cfg = config(name);
    let mut h = harness(name, Variant::Plain);
    let opts = StimulusOptions::default();
    let layers: Vec<String> = sop_testbenches::minilm()
        .linear_layers()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| full() || n.starts_with("encoder.layer.0."))
        .collect();
    assert!(
        layers.len() >= 6 && layers.iter().any(|l| l == SMALL_LAYER),
        "{layers:?}"
    );
    let mut expected = 0u64;
    for (i, layer) in layers.iter().enumerate() {
        let w = load(layer);
        let ql = quantize(&cfg, &w);
        let stim = LayerStim::from_quantized(&ql, &cfg).expect("stimulus");
        assert_eq!(stim.weights(), (w.rows * w.cols) as u64);
        expected += stim.weights();
        stream_layer(&mut h, &stim, opts, i as u64);
    }
    h.drain();
    assert_clean(&h);
    let n = h.counters();
    assert_eq!(n.checked, expected, "every weight checked exactly once ({n:?})");
    assert!(n.lost > 0, "the mid-layer reset dropped weights in flight ({n:?})");
    assert!(n.cycles > expected / cfg.lanes as u64, "idle cycles happened ({n:?})");
}

#[test]
fn sop_c4_hif8_ue4m4_fp16() {
    run_config("sop_c4_hif8_ue4m4_fp16");
}

#[test]
fn sop_c4_hif7_ue4m4_fp16() {
    run_config("sop_c4_hif7_ue4m4_fp16");
}

#[test]
fn sop_c4_hif8_se4m3_fp16() {
    run_config("sop_c4_hif8_se4m3_fp16");
}

#[test]
fn sop_c4_fp16lut_ue4m4_fp16() {
    run_config("sop_c4_fp16lut_ue4m4_fp16");
}

#[test]
fn sop_c6_fp16lut_ue4m4_bf16() {
    run_config("sop_c6_fp16lut_ue4m4_bf16");
}

#[test]
fn sop_c6_hif8_ue4m4_bf16() {
    run_config("sop_c6_hif8_ue4m4_bf16");
}

/// Every committed configuration has a test above (a new rtl-out/ file needs one).
#[test]
fn every_committed_config_is_covered() {
    let covered = [
        "sop_c4_hif8_ue4m4_fp16",
        "sop_c4_hif7_ue4m4_fp16",
        "sop_c4_hif8_se4m3_fp16",
        "sop_c4_fp16lut_ue4m4_fp16",
        "sop_c6_fp16lut_ue4m4_bf16",
        "sop_c6_hif8_ue4m4_bf16",
    ];
    for c in compiled_configs() {
        assert!(covered.contains(&c.name.as_str()), "{} has no real-layer test", c.name);
    }
}
