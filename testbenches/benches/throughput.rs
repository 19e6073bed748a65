//! Co-simulation throughput: weights per second through a Verilated model with the Rust
//! harness checking every output word against the golden model, against the same model
//! clocked in a pure C++ loop on the same stimulus (the shim's `raw_stream` function: the
//! same tables loaded, the same per-cycle lane inputs replayed from a buffer, nothing
//! checked). The difference is the harness overhead (stimulus generation, FFI, checks).
//!
//! ```sh
//! cargo bench -p sop-testbenches --bench throughput            # every configuration
//! cargo bench -p sop-testbenches --bench throughput -- sop_c4_hif8_ue4m4_fp16
//! ```
//!
//! Stimulus: the real minilm layer `encoder.layer.0.intermediate.dense.weight` (1536 x 384)
//! quantized at each configuration's operating point, streamed densely (no gaps or resets)
//! `REPEAT` times with a table reload each time. Each figure is the best of `TRIALS` runs.
//!
//! Columns: `checked` (dense stream, every output checked), `gapped` (the default stream of
//! `sop cosim`: idle gaps, early strobes, bubbles; weights per cycle drop accordingly),
//! `traced` (the `--trace` build, checked, not dumping), `raw C++` (the same dense stimulus
//! replayed by the C++ loop, unchecked) and `ratio` = checked / raw.

use std::time::Instant;

use sop_cosim::{
    compiled_configs, raw_stimulus, Dut, Harness, LayerStim, LayerStream, Stimulus, StimulusOptions, Variant,
};
use sop_testbenches::{config, load, quantize};

const LAYER: &str = "encoder.layer.0.intermediate.dense.weight";
const REPEAT: u64 = 8;
const TRIALS: usize = 3;

fn checked_rate(name: &str, variant: Variant, stim: &LayerStim, opts: StimulusOptions) -> (f64, u64) {
    let mut best = 0.0f64;
    let mut checked = 0;
    for _ in 0..TRIALS {
        let mut h = Harness::new(Dut::with_variant(name, variant).unwrap());
        h.reset();
        let lanes = h.dut().lanes();
        let t = Instant::now();
        for i in 0..REPEAT {
            h.load_tables(&stim.tables).unwrap();
            h.begin_stream(&stim.name, Some(stim.geometry()));
            let mut s = LayerStream::new(stim, lanes, opts, i);
            h.run(&mut s, &[]);
        }
        h.drain();
        let secs = t.elapsed().as_secs_f64();
        let n = h.counters();
        assert_eq!(n.mismatches, 0, "{:?}", h.mismatches().first());
        assert_eq!(n.checked, REPEAT * stim.weights());
        checked = n.checked;
        best = best.max(n.checked as f64 / secs);
    }
    (best, checked)
}

fn raw_rate(name: &str, stim: &LayerStim) -> (f64, u32) {
    let mut d = Dut::new(name).unwrap();
    let lanes = d.lanes();
    // The same dense stream as the checked run, recorded once.
    let mut s = LayerStream::new(stim, lanes, StimulusOptions::dense(), 0);
    let mut beats = Vec::new();
    while !s.done() {
        for l in 0..lanes {
            beats.push(s.next(l).0);
        }
    }
    let buf = raw_stimulus(beats);
    let mut best = 0.0f64;
    for _ in 0..TRIALS {
        d.reset();
        d.load_tables(&stim.tables).unwrap();
        let t = Instant::now();
        let mut sum = 0u64;
        for _ in 0..REPEAT {
            sum = sum.wrapping_add(d.raw_stream(&buf));
        }
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((REPEAT * stim.weights()) as f64 / secs);
    }
    (best, lanes as u32)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter: Vec<String> = args.iter().filter(|a| !a.starts_with('-')).cloned().collect();
    // For profiling one side alone: `--checked-only` / `--raw-only`.
    let checked_only = args.iter().any(|a| a == "--checked-only");
    let raw_only = args.iter().any(|a| a == "--raw-only");
    let w = load(LAYER);
    println!(
        "{:<26} {:>5} {:>13} {:>12} {:>12} {:>13} {:>6}",
        "configuration", "lanes", "checked Mw/s", "gapped Mw/s", "traced Mw/s", "raw C++ Mw/s", "ratio"
    );
    for cfg in compiled_configs() {
        if !filter.is_empty() && !filter.iter().any(|f| cfg.name.contains(f.as_str())) {
            continue;
        }
        let cfg = config(&cfg.name);
        let ql = quantize(&cfg, &w);
        let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();
        let (dense, gapped, traced) = if raw_only {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (
                checked_rate(&cfg.name, Variant::Plain, &stim, StimulusOptions::dense()).0,
                checked_rate(&cfg.name, Variant::Plain, &stim, StimulusOptions::default()).0,
                checked_rate(&cfg.name, Variant::Traced, &stim, StimulusOptions::dense()).0,
            )
        };
        let (raw, lanes) = if checked_only {
            (f64::NAN, cfg.lanes)
        } else {
            raw_rate(&cfg.name, &stim)
        };
        println!(
            "{:<26} {:>5} {:>13.1} {:>12.1} {:>12.1} {:>13.1} {:>6.2}",
            cfg.name,
            lanes,
            dense / 1e6,
            gapped / 1e6,
            traced / 1e6,
            raw / 1e6,
            dense / raw
        );
    }
}
