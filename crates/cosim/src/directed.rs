//! The directed coverage stimulus (`sop cosim --coverage`, one work item per configuration,
//! named [`DIRECTED_LAYER`]): for every element path of the configuration (every mode of
//! an engine), the first input of every reachable word class ([`crate::coverage::reach`])
//! loaded into the tables and streamed with both selection bits, plus a stretch of stream
//! events (early strobes, idle gaps, a reset mid-block with words in flight, a block
//! continued across a table load, and on engines an outlier and a residual). Every word
//! is checked against the golden model like any other; the coverage counts what was
//! checked.

use std::collections::BTreeMap;

use sop_hw::sparse::Correction;
use sop_hw::{Beat, LaneConfig, Tables};

use crate::coverage::{reach, PathKey, Source};
use crate::harness::{BeatStreams, Harness};
use crate::CosimError;

/// The layer name of the directed coverage items (reports, JUnit).
pub const DIRECTED_LAYER: &str = "(directed coverage)";

/// One table load and the beats streamed under it (one sequence, spread over the lanes).
struct Segment {
    tables: Tables,
    beats: Vec<Beat>,
}

/// The segments of `cfg`'s directed stimulus, in order.
fn segments(cfg: &LaneConfig) -> Vec<Segment> {
    let mut out = Vec::new();
    for (mode, _, key) in PathKey::of(cfg) {
        let r = reach(key);
        let mut base = Tables::zeroed(cfg);
        if let Some(w) = mode {
            base.mode = Some(sop_hw::mode::Mode::from_word(w).expect("a mode of all_modes"));
        }
        let n = base.mode.map_or(1usize << cfg.code_bits, |m| 1 << m.code_bits);
        match key.source {
            Source::Lut(_) => {
                // Per bias: the distinct words and the (word, scale) inputs to play.
                let mut by_bias: BTreeMap<i32, BTreeMap<u32, Vec<u8>>> = BTreeMap::new();
                for w in r.classes.values() {
                    by_bias
                        .entry(w.bias)
                        .or_default()
                        .entry(w.element)
                        .or_default()
                        .push(w.scale);
                }
                for (bias, words) in by_bias {
                    let words: Vec<(u32, Vec<u8>)> = words.into_iter().collect();
                    for chunk in words.chunks(n) {
                        let mut t = base.clone();
                        for (i, (w, _)) in chunk.iter().enumerate() {
                            t.entries[0][i] = *w;
                            t.entries[1][i] = *w;
                        }
                        if cfg.lut.hif().is_some() {
                            t.bias = [bias, bias];
                        }
                        let mut beats = Vec::new();
                        for (i, (_, scales)) in chunk.iter().enumerate() {
                            for &s in scales {
                                for sel in [false, true] {
                                    beats.push(Beat::start(i as u32, s, sel));
                                }
                            }
                        }
                        out.push(Segment { tables: t, beats });
                    }
                }
            }
            Source::Direct(..) => {
                let beats = r
                    .classes
                    .values()
                    .map(|w| Beat::start(w.element, w.scale, false))
                    .collect();
                out.push(Segment { tables: base, beats });
            }
        }
    }
    out
}

/// Weights the directed item of `cfg` streams and checks (for the balance of shards).
pub fn directed_weights(cfg: &LaneConfig, lanes: usize) -> u64 {
    let words: usize = segments(cfg).iter().map(|s| s.beats.len()).sum();
    // The event stretch: per lane 6 + 3 + 2 weights (the reset loses some of the first 6).
    (words + 11 * lanes) as u64
}

/// Spreads `beats` over `lanes` lanes, round robin, with an early strobe (a `block_start`
/// without `valid_in`, then the weight without a strobe) and an idle cycle at the start of
/// every lane.
fn spread(beats: &[Beat], lanes: usize) -> Vec<Vec<Beat>> {
    let mut v: Vec<Vec<Beat>> = vec![Vec::new(); lanes];
    for (k, b) in beats.iter().enumerate() {
        let lane = &mut v[k % lanes];
        if lane.is_empty() {
            lane.push(Beat::idle());
            lane.push(Beat { valid: false, ..*b });
            lane.push(Beat {
                block_start: false,
                ..*b
            });
        } else {
            lane.push(*b);
        }
    }
    v
}

/// Runs `cfg`'s directed stimulus on `h` (reset, nothing in flight): the event stretch,
/// then every segment (its table load while the previous words drain, its beats). Does not
/// drain. Returns the weights issued.
pub fn run_directed(h: &mut Harness) -> Result<u64, CosimError> {
    let cfg = h.config().clone();
    let lanes = h.dut().lanes();
    let segs = segments(&cfg);
    let before = h.counters().issued;
    if let Some(first) = segs.first() {
        h.load_tables(&first.tables)?;
        let b0 = first
            .beats
            .first()
            .copied()
            .unwrap_or_else(|| Beat::start(0, 0x70, false));
        let corr = |outlier: bool, value: u16| Some(Correction { outlier, value });
        // A block of 6 on every lane, reset in its fourth cycle: words in flight, mid-block.
        let block: Vec<Beat> = (0..6)
            .map(|k| if k == 0 { b0 } else { Beat::weight(b0.code) })
            .collect();
        h.run(&mut BeatStreams::new(vec![block; lanes]), &[3]);
        // A block interrupted by a load of the same tables, continued without a strobe
        // (engines: an outlier and a residual in it).
        let mut part = vec![b0, Beat::weight(b0.code), Beat::weight(b0.code)];
        if cfg.engine {
            part[1].corr = corr(true, 0x3f80);
            part[2].corr = corr(false, 0x3c00);
        }
        h.run(&mut BeatStreams::new(vec![part; lanes]), &[]);
        h.load_tables(&first.tables)?;
        let rest = vec![Beat::weight(b0.code); 2];
        h.run(&mut BeatStreams::new(vec![rest; lanes]), &[]);
    }
    for s in &segs {
        if h.stopped() {
            break;
        }
        h.load_tables(&s.tables)?;
        h.run(&mut BeatStreams::new(spread(&s.beats, lanes)), &[]);
    }
    Ok(h.counters().issued - before)
}
