//! The mutation check: `build.rs` compiles copies of two configurations' Verilog whose
//! packer rounds ties away from zero instead of to even (a checked text substitution; the
//! build fails if the pattern disappears). For the FP16-LUT lane (general packer),
//! co-simulation on a real layer must catch it, and the same layer must pass on the
//! committed Verilog. The HIF lane's normalized packer rounds only subnormal results, which
//! real weights hardly reach: the exhaustive word x scale sweep must catch it (the committed
//! Verilog passes the same sweep in `random.rs`).
//!
//! The engine has two mutants: its correction unit's adder rounding ties away from zero
//! (`Mutant`), caught on a real layer's residuals, and its mode decode forgetting to rebase
//! E4M3 scale exponents (`ModeMutant`), caught on a real layer with SE4M3 scales.

use sop_cosim::ffi::{CORR_MUTATION, ENGINE_MUTANT_CONFIG, HIF_MUTANT_CONFIG, MODE_MUTATION, MUTANT_CONFIG, MUTATION};
use sop_cosim::{LayerStim, MismatchKind, StimulusOptions, Variant};
use sop_quantize::sparse::MenuOption;
use sop_testbenches::{config, harness, load, quantize, quantize_option_at, stream_layer, sweep, SMALL_LAYER};

#[test]
fn mutated_rounding_is_caught_on_real_weights() {
    // The rounding rule uses the kept LSB (`qg[1]`; `qg[0]` is the guard bit); the mutant
    // drops it together with the sticky bit.
    assert!(
        MUTATION.0.contains("qg[32'h1]") && !MUTATION.1.contains("qg[32'h1]"),
        "{MUTATION:?}"
    );
    let cfg = config(MUTANT_CONFIG);
    let w = load(SMALL_LAYER);
    let ql = quantize(&cfg, &w);
    let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();

    let mut good = harness(MUTANT_CONFIG, Variant::Plain);
    stream_layer(&mut good, &stim, StimulusOptions::default(), 0);
    good.drain();
    assert_eq!(good.counters().mismatches, 0, "{:?}", good.mismatches().first());

    let mut bad = harness(MUTANT_CONFIG, Variant::Mutant);
    bad.set_keep(4);
    stream_layer(&mut bad, &stim, StimulusOptions::default(), 0);
    bad.drain();
    let n = bad.counters();
    assert!(n.mismatches > 0, "the mutated RTL passed: {n:?}");
    let m = &bad.mismatches()[0];
    assert_eq!(m.kind, MismatchKind::Word);
    let (e, a) = (m.expected.unwrap(), m.actual.unwrap());
    // Ties away instead of to even: the mutant rounds up where RNE kept the even word.
    assert_eq!(a, e + 1, "{m}");
    assert_eq!(e & 1, 0, "{m}");
    eprintln!(
        "mutant: {} mismatches in {} weights; first:\n{m}",
        n.mismatches, n.checked
    );
}

#[test]
fn mutated_hif_rounding_is_caught_by_the_sweep() {
    let cfg = config(HIF_MUTANT_CONFIG);
    let hf = cfg.lut.hif().expect("a HIF configuration");
    let words: Vec<u32> = (0..hf.num_codes()).collect();
    let scales: Vec<u8> = (0..=255).collect();
    let mut bad = harness(HIF_MUTANT_CONFIG, Variant::Mutant);
    bad.set_keep(4);
    // With bias 16 the products of the smaller scales fall below FP16's smallest normal
    // (2^-14) and have bits below its subnormal step (2^-24): they round, some of them ties.
    // (At bias 7 every HIF x UE4M4 product is a multiple of 2^-24: nothing rounds.)
    sweep(&mut bad, &cfg, &words, &scales, 16);
    bad.drain();
    let n = bad.counters();
    assert!(n.mismatches > 0, "the mutated HIF RTL passed the sweep: {n:?}");
    for m in bad.mismatches() {
        assert_eq!(m.kind, MismatchKind::Word, "{m}");
        // The report names the loaded inputs: the sweep's word at {sel, code} and bias 16.
        assert_eq!(m.bias, 16, "{m}");
        assert_eq!(m.entry % 32, u32::from(m.sel) * 16 + m.code, "{m}");
        let (e, a) = (m.expected.unwrap(), m.actual.unwrap());
        // A subnormal tie kept even by RNE, rounded up by the mutant.
        assert_eq!((a, e & 1, e & 0x7c00), (e + 1, 0, 0), "{m}");
    }
    eprintln!(
        "HIF mutant: {} mismatches in {} weights; first:\n{}",
        n.mismatches,
        n.checked,
        bad.mismatches()[0]
    );
}

/// A real layer at an option with outliers and residuals, streamed through the engine: the
/// committed Verilog passes, the correction unit whose adder rounds ties away from zero
/// (`Mutant`) is caught on a residual.
#[test]
fn mutated_correction_unit_is_caught_on_real_sparse_entries() {
    assert!(CORR_MUTATION.0.contains("sig & one_w") && !CORR_MUTATION.1.contains("sig & one_w"));
    let cfg = config(ENGINE_MUTANT_CONFIG);
    let w = load(SMALL_LAYER);
    let opt: MenuOption = "NF4+DD4sUE4M4b16+O0.5%+R5%".parse().unwrap();
    let ql = quantize_option_at(&opt, &w);
    assert!(!ql.outliers.is_empty() && !ql.residuals.is_empty());
    let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();
    assert_eq!(stim.corr.len(), ql.outliers.len() + ql.residuals.len());

    let mut good = harness(ENGINE_MUTANT_CONFIG, Variant::Plain);
    stream_layer(&mut good, &stim, StimulusOptions::default(), 0);
    good.drain();
    assert_eq!(good.counters().mismatches, 0, "{:?}", good.mismatches().first());

    let mut bad = harness(ENGINE_MUTANT_CONFIG, Variant::Mutant);
    bad.set_keep(4);
    stream_layer(&mut bad, &stim, StimulusOptions::default(), 0);
    bad.drain();
    let n = bad.counters();
    assert!(n.mismatches > 0, "the mutated correction unit passed: {n:?}");
    for m in bad.mismatches() {
        let c = m.correction.expect("only corrected words differ");
        assert!(!c.outlier, "{m}");
        assert_eq!(m.actual.unwrap(), m.expected.unwrap() + 1, "{m}");
    }
    eprintln!(
        "correction-unit mutant: {} mismatches in {} weights ({} sparse entries); first:\n{}",
        n.mismatches,
        n.checked,
        stim.corr.len(),
        bad.mismatches()[0]
    );
}

/// A real layer with signed E4M3 block scales (the engine's LUT path in SE4M3 mode): the
/// committed Verilog passes, the engine that forgets to rebase E4M3 scale exponents
/// (`ModeMutant`) is caught on every non-zero weight.
#[test]
fn mutated_mode_decode_is_caught_on_real_weights() {
    assert_eq!(MODE_MUTATION.0.replace(" + rebase", ""), MODE_MUTATION.1);
    let cfg = config(ENGINE_MUTANT_CONFIG);
    let w = load(SMALL_LAYER);
    let opt: MenuOption = "Split87+DD4sSE4M3b16".parse().unwrap();
    let ql = quantize_option_at(&opt, &w);
    let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();
    assert_eq!(stim.tables.mode.unwrap().scale, sop_formats::point::ScaleFormat::SE4M3);

    let mut good = harness(ENGINE_MUTANT_CONFIG, Variant::Plain);
    stream_layer(&mut good, &stim, StimulusOptions::default(), 0);
    good.drain();
    assert_eq!(good.counters().mismatches, 0, "{:?}", good.mismatches().first());

    let mut bad = harness(ENGINE_MUTANT_CONFIG, Variant::ModeMutant);
    bad.set_keep(4);
    stream_layer(&mut bad, &stim, StimulusOptions::default(), 0);
    bad.drain();
    let n = bad.counters();
    assert!(n.mismatches > n.checked / 2, "the mutated mode decode passed: {n:?}");
    let m = &bad.mismatches()[0];
    assert_eq!(m.kind, MismatchKind::Word);
    let out = cfg.output;
    let (e, a) = (
        out.decode(m.expected.unwrap() as u32),
        out.decode(m.actual.unwrap() as u32),
    );
    assert_eq!(a * 2.0, e, "{m}");
}
