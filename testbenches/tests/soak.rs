//! The soak's stimulus on a small slice (two real layers, a prefix of each): mid-layer table
//! reloads, interleaves of another layer's tables and blocks, pauses, resets and the round
//! seeds run clean through every configuration; the soak catches the mutated RTL; and a
//! table reload that the hardware does not apply is caught.

use sop_cosim::ffi::MUTANT_CONFIG;
use sop_cosim::{soak, stream_layer, CosimOptions, LayerStim, StimulusOptions};
use sop_testbenches::{assert_clean, config, harness, load, quantize, SMALL_LAYER};

const LAYERS: &str = r"^encoder\.layer\.0\.attention\.self\.(query|key)\.weight$";

#[test]
fn soak_rounds_on_a_slice_are_clean_and_exercise_every_event() {
    let opts = CosimOptions {
        layers: Some(LAYERS.into()),
        max_weights: Some(12_288),
        ..CosimOptions::default()
    };
    let mut seeds = Vec::new();
    let s = soak(&opts, 3, |r| {
        assert_eq!(r.mismatches, 0);
        seeds.push(r.seed);
    })
    .unwrap();
    let nc = sop_cosim::compiled_configs().len();
    assert_eq!((s.rounds, s.layers, s.configs), (3, 2, nc));
    assert_eq!(s.mismatches, 0, "{s}");
    seeds.dedup();
    assert_eq!(seeds.len(), 3, "every round has its own seed");
    // Every own weight once per layer, configuration and round, plus the interleaved ones.
    assert_eq!(s.weights, 3 * nc as u64 * 2 * 12_288 + s.events.other_weights, "{s}");
    let e = &s.events;
    assert!(
        e.resets > 0 && e.reloads > 0 && e.interleaves > 0 && e.pauses > 0,
        "{e:?}"
    );
    assert!(e.other_weights > 0);
    assert!(s.line().starts_with("soak: 3 rounds, "), "{}", s.line());
}

#[test]
fn soak_catches_the_mutant() {
    let opts = CosimOptions {
        layers: Some(format!("^{}$", SMALL_LAYER.replace('.', "\\."))),
        only: vec![MUTANT_CONFIG.into()],
        max_weights: Some(20_000),
        max_mismatches: 5,
        mutant: true,
        ..CosimOptions::default()
    };
    let s = soak(&opts, 2, |_| {}).unwrap();
    assert_eq!(s.mismatches, 5, "{s}");
    assert_eq!(s.rounds, 1, "the limit stops the soak");
    assert_eq!(s.mismatch_reports.len(), 5);
}

fn stims() -> (LayerStim, LayerStim) {
    let cfg = config(MUTANT_CONFIG);
    let a = LayerStim::from_quantized(&quantize(&cfg, &load(SMALL_LAYER)), &cfg).unwrap();
    let b = LayerStim::from_quantized(
        &quantize(&cfg, &load("encoder.layer.0.attention.self.key.weight")),
        &cfg,
    )
    .unwrap();
    (a, b)
}

/// Interleaves (every reload is one) with the given stimulus; `drop_reload` makes the
/// model keep the interleaved layer's tables when the stream returns to its own.
fn interleaved(a: &LayerStim, b: &LayerStim, drop_reload: bool) -> sop_cosim::Harness {
    let mut h = harness(MUTANT_CONFIG, sop_cosim::Variant::Plain);
    let opts = StimulusOptions {
        reloads_per_layer: 3,
        interleave_per_mille: 1000,
        pauses_per_layer: 2,
        ..StimulusOptions::default()
    };
    h.load_tables(&a.tables).unwrap();
    let sid = h.begin_stream(&a.name, Some(a.geometry()));
    if drop_reload {
        // The hardware missed the reload: it still holds b's tables, the golden model a's.
        h.drain();
        h.dut_mut().load_tables(&b.tables).unwrap();
        let ev = stream_layer(&mut h, a, None, StimulusOptions::default(), 7, sid, u64::MAX).unwrap();
        assert_eq!(ev.interleaves, 0);
    } else {
        let ev = stream_layer(&mut h, a, Some(b), opts, 7, sid, u64::MAX).unwrap();
        assert_eq!(ev.interleaves, 3, "{ev:?}");
        assert_eq!(ev.pauses, 2);
        assert_eq!(ev.streams.len(), 3);
    }
    h.drain();
    h
}

#[test]
fn interleaved_reloads_are_clean_and_a_missed_reload_is_caught() {
    let (a, b) = stims();
    let h = interleaved(&a, &b, false);
    assert_clean(&h);
    assert!(h.counters().checked > a.weights());
    let h = interleaved(&a, &b, true);
    assert!(
        h.counters().mismatches > 1000,
        "a reload the hardware did not apply went unnoticed: {} mismatches",
        h.counters().mismatches
    );
}
