//! Co-simulation testbenches of the SOP decode RTL (`sop-testbenches`).
//!
//! The tests live in `tests/`: `real_layers.rs` (real quantized minilm layers through every
//! committed configuration), `protocol.rs` (directed: idle gaps, reloads, resets, latency),
//! `random.rs` (proptest corner cases), `end_to_end.rs` (RTL word x tensor scale against the
//! quantizer's dequantized weights), `mutation.rs` (the broken RTL is caught), `cli_run.rs`
//! (the library entry point, JUnit and VCD), `shard.rs` (shards together are the whole run;
//! the same results at any thread count). The benchmarks are `benches/throughput.rs` (one
//! model) and `benches/parallel.rs` (1 vs 2 worker threads). This library holds their shared helpers. See `docs/cosim.md`.

#![warn(missing_docs)]

use std::sync::OnceLock;

use sop_cosim::{point_for, BeatStreams, Dut, Harness, LayerStim, LayerStream, StimulusOptions, Variant};
use sop_formats::OperatingPoint;
use sop_hw::{Beat, LaneConfig, Tables};
use sop_model::{Model, Weights2D};
use sop_quantize::{LayerRef, QuantOptions, QuantizedLayer, Quantizer};

/// The smallest linear layer of minilm (384 x 384), used by the default tests.
pub const SMALL_LAYER: &str = "encoder.layer.0.attention.self.query.weight";

/// The real minilm model (fetched into `$SOP_CACHE` on first use), opened once per process.
pub fn minilm() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        let p = sop_model::resolve("minilm").expect("minilm weights (scripts/fetch-weights minilm)");
        Model::open(&p).expect("open minilm")
    })
}

/// Loads one layer of minilm as f32.
pub fn load(layer: &str) -> Weights2D {
    minilm().load_f32(layer).expect("load layer")
}

/// The configuration of a compiled model by name.
pub fn config(name: &str) -> LaneConfig {
    sop_cosim::compiled_configs()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no compiled configuration {name}"))
}

/// Quantizes `w` at the operating point of `cfg` (default quantizer options).
pub fn quantize(cfg: &LaneConfig, w: &Weights2D) -> QuantizedLayer {
    quantize_at(point_for(cfg).expect("point"), w)
}

/// Quantizes `w` at `point` (default quantizer options).
pub fn quantize_at(point: OperatingPoint, w: &Weights2D) -> QuantizedLayer {
    let q = Quantizer::new(point, QuantOptions::default()).expect("quantizer");
    q.quantize(
        LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        },
        None,
    )
    .expect("quantize")
}

/// Quantizes `w` with menu option `opt` (its outliers and residuals included; default
/// quantizer options, no activation statistics).
pub fn quantize_option_at(opt: &sop_quantize::sparse::MenuOption, w: &Weights2D) -> QuantizedLayer {
    let q = Quantizer::new(opt.point, QuantOptions::default()).expect("quantizer");
    let layer = LayerRef {
        name: &w.name,
        rows: w.rows,
        cols: w.cols,
        data: &w.data,
    };
    sop_quantize::sparse::quantize_option(&q, opt, layer, None).expect("quantize")
}

/// A harness on a fresh, reset model.
pub fn harness(name: &str, variant: Variant) -> Harness {
    let mut h = Harness::new(Dut::with_variant(name, variant).expect("model"));
    h.reset();
    h
}

/// Streams one layer through `h`: table load, stream (with `opts`' gaps and mid-layer
/// reset; `index` selects the pseudo-random choices). Does not drain.
pub fn stream_layer(h: &mut Harness, stim: &LayerStim, opts: StimulusOptions, index: u64) {
    h.load_tables(&stim.tables).expect("tables");
    h.begin_stream(&stim.name, Some(stim.geometry()));
    let lanes = h.dut().lanes();
    let mut s = LayerStream::new(stim, lanes, opts, index);
    let resets: Vec<u64> = s.reset_offset(index).into_iter().collect();
    h.run(&mut s, &resets);
}

/// Panics with the mismatch reports when `h` found any.
pub fn assert_clean(h: &Harness) {
    let n = h.counters();
    if n.mismatches > 0 {
        let reports: Vec<String> = h.mismatches().iter().map(|m| m.to_string()).collect();
        panic!(
            "{} mismatches on {}; first ones:\n{}",
            n.mismatches,
            h.config().name,
            reports.join("\n")
        );
    }
}

/// Streams every (table word, scale code) pair through `h` (HIF tables with bias `bias`):
/// the words are loaded a table pair at a time, and each lane takes every `lanes`-th pair.
pub fn sweep(h: &mut Harness, cfg: &LaneConfig, words: &[u32], scales: &[u8], bias: i32) {
    let n = 1usize << cfg.code_bits;
    let lanes = h.dut().lanes();
    for chunk in words.chunks(2 * n) {
        let mut t = Tables::zeroed(cfg);
        for (i, &w) in chunk.iter().enumerate() {
            t.entries[i / n][i % n] = w;
        }
        if cfg.lut.hif().is_some() {
            t.bias = [bias, bias];
        }
        if let Some(m) = &mut t.mode {
            // An engine: its LUT path at the full code width, so every entry is read.
            m.code_bits = cfg.code_bits;
        }
        h.load_tables(&t).unwrap();
        let mut streams = vec![Vec::new(); lanes];
        let mut k = 0;
        for &s in scales {
            for sel in [false, true] {
                for code in 0..n as u32 {
                    let lane = &mut streams[k % lanes];
                    lane.push(Beat::start(code, s, sel));
                    k += 1;
                }
            }
        }
        let mut st = BeatStreams::new(streams);
        h.run(&mut st, &[]);
    }
}
