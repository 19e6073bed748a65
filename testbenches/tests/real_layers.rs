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

/// An engine on one model: each layer of the first encoder block at another option, so the
/// mode changes between layers (LUT path with UE4M4 and SE4M3 scales and 4- and 6-bit codes,
/// the three direct minifloat paths, E4M3 scales), with outliers and residuals on half of
/// them, and the stimulus' gaps, strobes, bubbles and mid-layer resets.
fn run_engine(name: &str, options: [&str; 6]) {
    let cfg = config(name);
    let mut h = harness(name, Variant::Plain);
    let layers: Vec<String> = sop_testbenches::minilm()
        .linear_layers()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with("encoder.layer.0."))
        .collect();
    assert_eq!(layers.len(), options.len(), "{layers:?}");
    let (mut expected, mut sparse) = (0u64, 0usize);
    let mut modes = std::collections::BTreeSet::new();
    for (i, (layer, o)) in layers.iter().zip(options).enumerate() {
        let w = load(layer);
        let opt: sop_quantize::sparse::MenuOption = o.parse().unwrap();
        let ql = sop_testbenches::quantize_option_at(&opt, &w);
        let stim = LayerStim::from_quantized(&ql, &cfg).expect("stimulus");
        modes.insert(stim.tables.mode.expect("an engine mode").word());
        sparse += stim.corr.len();
        expected += stim.weights();
        stream_layer(&mut h, &stim, StimulusOptions::default(), i as u64);
    }
    h.drain();
    assert_clean(&h);
    let n = h.counters();
    assert_eq!(n.checked, expected, "every weight checked exactly once ({n:?})");
    assert!(n.lost > 0, "the mid-layer resets dropped weights in flight ({n:?})");
    assert_eq!(modes.len(), options.len(), "a mode per option: {modes:?}");
    assert!(sparse > 1000, "{sparse} sparse entries");
}

#[test]
fn sop_engine_hif8_fp16() {
    run_engine(
        "sop_engine_hif8_fp16",
        [
            "NF4+DD4sUE4M4b16+O0.1%+R0.5%",
            "Split87+DD4sSE4M3b32",
            "E2M1sE4M3b16+R1%",
            "E2M3sUE4M4b64",
            "E3M2sUE4M4b8+O0.05%+R0.5%",
            "DD6sUE4M4",
        ],
    );
}

/// The FP16-LUT engine: the same modes, its LUT options with FP16 tables.
#[test]
fn sop_engine_fp16lut_fp16() {
    run_engine(
        "sop_engine_fp16lut_fp16",
        [
            "NF4+DD4sUE4M4b16-FP16+O0.1%+R0.5%",
            "Split87+DD4sSE4M3b32-FP16",
            "E2M1sE4M3b16+R1%",
            "E2M3sUE4M4b64",
            "E3M2sUE4M4b8+O0.05%+R0.5%",
            "DD6sUE4M4-FP16",
        ],
    );
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
        "sop_engine_hif8_fp16",
        "sop_engine_fp16lut_fp16",
    ];
    for c in compiled_configs() {
        assert!(covered.contains(&c.name.as_str()), "{} has no real-layer test", c.name);
    }
}
