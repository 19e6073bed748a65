//! The mutation check: `build.rs` compiles a copy of one configuration's Verilog whose
//! packer rounds ties away from zero instead of to even (a checked text substitution; the
//! build fails if the pattern disappears). Co-simulation on a real layer must catch it, and
//! the same layer must pass on the committed Verilog.

use sop_cosim::ffi::{MUTANT_CONFIG, MUTATION};
use sop_cosim::{LayerStim, MismatchKind, StimulusOptions, Variant};
use sop_testbenches::{config, harness, load, quantize, stream_layer, SMALL_LAYER};

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
