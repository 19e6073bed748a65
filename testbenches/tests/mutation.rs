//! The mutation check: `build.rs` compiles copies of two configurations' Verilog whose
//! packer rounds ties away from zero instead of to even (a checked text substitution; the
//! build fails if the pattern disappears). For the FP16-LUT lane (general packer),
//! co-simulation on a real layer must catch it, and the same layer must pass on the
//! committed Verilog. The HIF lane's normalized packer rounds only subnormal results, which
//! real weights hardly reach: the exhaustive word x scale sweep must catch it (the committed
//! Verilog passes the same sweep in `random.rs`).

use sop_cosim::ffi::{HIF_MUTANT_CONFIG, MUTANT_CONFIG, MUTATION};
use sop_cosim::{LayerStim, MismatchKind, StimulusOptions, Variant};
use sop_testbenches::{config, harness, load, quantize, stream_layer, sweep, SMALL_LAYER};

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
