//! Directed tests of the stimulus protocol and of the harness itself, on every committed
//! configuration: latency and `valid_out` timing against `sop_hw::model::run_lane` (driving
//! the `Dut` directly, without the harness), `block_start` in idle cycles, reset with weights
//! in flight, table reloads while the pipeline drains, and the harness's mismatch kinds and
//! report format.

use sop_cosim::{compiled_configs, BeatStreams, Dut, Harness, LoadOp, MismatchKind};
use sop_hw::model::run_lane;
use sop_hw::{Beat, LaneConfig, Tables};
use sop_testbenches::assert_clean;

/// Deterministic tables with every entry non-zero where the format allows.
fn tables(cfg: &LaneConfig, seed: u32) -> Tables {
    let mut t = Tables::zeroed(cfg);
    let wmax = 1u32 << cfg.lut.bits();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for e in t.entries.iter_mut() {
        for w in e.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut v = x % wmax;
            if cfg.lut.hif().is_none() && (v >> 10) & 0x1f == 0x1f {
                v &= !0x4000; // no Inf/NaN (tested separately)
            }
            *w = v;
        }
    }
    if cfg.lut.hif().is_some() {
        t.bias = [7, -3];
    }
    t
}

fn scale_one(cfg: &LaneConfig) -> u8 {
    let mf = match cfg.scale {
        sop_formats::ScaleFormat::UE4M4 => sop_formats::UE4M4,
        _ => sop_formats::E4M3,
    };
    mf.encode(1.0) as u8
}

/// Latency and valid_out timing, driving the Dut directly and comparing with `run_lane`.
#[test]
fn latency_and_valid_timing_against_run_lane() {
    for cfg in compiled_configs() {
        let mut d = Dut::new(&cfg.name).unwrap();
        d.reset();
        let t = tables(&cfg, 3);
        d.load_tables(&t).unwrap();
        let one = scale_one(&cfg);
        let n = d.lanes();
        // Lane i: a weight before any strobe (scale 0 -> +0), then blocks with gaps, a strobe
        // in an idle cycle, and table switches.
        let streams: Vec<Vec<Beat>> = (0..n)
            .map(|i| {
                let c = |k: u32| (k * 7 + i as u32) % (1 << cfg.code_bits);
                vec![
                    Beat::weight(c(1)),
                    Beat::start(c(2), one, false),
                    Beat::weight(c(3)),
                    Beat::idle(),
                    Beat {
                        valid: false,
                        block_start: true,
                        scale: one.wrapping_add(3 + i as u8),
                        sel: true,
                        code: 0,
                        corr: None,
                    },
                    Beat::weight(c(4)),
                    Beat::weight(c(5)),
                    Beat::start(c(6), one.wrapping_sub(17), i % 2 == 0),
                    Beat::idle(),
                    Beat::weight(c(7)),
                ]
            })
            .collect();
        let len = streams[0].len();
        let lat = d.latency() as usize;
        let mut got = vec![Vec::new(); n];
        for k in 0..len + lat + 2 {
            let beats: Vec<Beat> = streams.iter().map(|s| s.get(k).copied().unwrap_or_default()).collect();
            let out = d.step(&beats);
            for i in 0..n {
                let due = k >= lat && streams[i].get(k - lat).is_some_and(|b| b.valid);
                assert_eq!(out[i].is_some(), due, "{}: lane {i} valid_out in cycle {k}", cfg.name);
                if let Some(w) = out[i] {
                    got[i].push(w);
                }
            }
        }
        for i in 0..n {
            assert_eq!(got[i], run_lane(&cfg, &t, &streams[i]), "{} lane {i}", cfg.name);
            assert_eq!(got[i][0], 0, "{}: weight before the first strobe is +0", cfg.name);
        }
    }
}

/// A reset with weights in flight: their outputs never appear, the block registers return
/// to table 0 / scale 0, and the harness re-sends nothing for fixed streams.
#[test]
fn reset_drops_in_flight_weights_and_clears_block_registers() {
    for cfg in compiled_configs() {
        let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
        h.reset();
        h.load_tables(&tables(&cfg, 5)).unwrap();
        let one = scale_one(&cfg);
        let n = h.dut().lanes();
        let mut beats = vec![Beat::start(1, one, true)];
        beats.extend((0..20).map(|k| Beat::weight(k % 3 + 1)));
        let mut s = BeatStreams::new(vec![beats; n]);
        h.run(&mut s, &[10]);
        h.drain();
        assert_clean(&h);
        let c = h.counters();
        // Weights issued in the `latency - 1` cycles before the reset edge are lost, on every
        // lane (3 on a lane, 5 on an engine with its correction unit).
        assert_eq!(c.lost, (h.latency() - 1) * n as u64, "{}: {c:?}", cfg.name);
        assert_eq!(c.checked, c.issued - c.lost);
        // After the reset the remaining weights had no strobe: they decode with scale 0.
        let mut d = Dut::new(&cfg.name).unwrap();
        d.reset();
        d.load_tables(&tables(&cfg, 5)).unwrap();
        d.step(&vec![Beat::start(1, one, true); n]);
        d.reset();
        let mut zeros = 0;
        for _ in 0..d.latency() + 1 {
            zeros += d
                .step(&vec![Beat::weight(1); n])
                .iter()
                .filter(|o| **o == Some(0))
                .count();
        }
        assert_eq!(zeros, n, "{}: one +0 per lane after the reset", cfg.name);
    }
}

/// Tables reloaded right after the last weight of a stream, while its outputs drain: the
/// in-flight words still use the old tables (the LUT is read in stage 1).
#[test]
fn reload_while_draining() {
    for cfg in compiled_configs() {
        let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
        h.reset();
        let one = scale_one(&cfg);
        let n = h.dut().lanes();
        for round in 0..4u32 {
            h.load_tables(&tables(&cfg, 11 + round)).unwrap();
            h.begin_stream(&format!("round {round}"), None);
            let beats: Vec<Beat> = (0..16)
                .map(|k| {
                    if k == 0 {
                        Beat::start(0, one.wrapping_add(round as u8), round % 2 == 1)
                    } else {
                        Beat::weight(k % (1 << cfg.code_bits))
                    }
                })
                .collect();
            let mut s = BeatStreams::new(vec![beats; n]);
            h.run(&mut s, &[]);
            // No drain: the next load starts in the very next cycle.
        }
        h.drain();
        assert_clean(&h);
        assert_eq!(h.counters().checked, 4 * 16 * n as u64);
    }
}

/// The harness reports the three mismatch kinds with everything needed to reproduce them.
#[test]
fn mismatch_kinds_and_report_format() {
    let cfg = &compiled_configs()[0];
    let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
    h.reset();
    h.load_tables(&tables(cfg, 9)).unwrap();
    let one = scale_one(cfg);
    // Unexpected: a weight driven behind the harness's back.
    h.dut_mut().set_lane(0, &Beat::start(2, one, false));
    h.dut_mut().tick();
    h.dut_mut().set_lane(0, &Beat::idle());
    h.idle(h.latency() + 1);
    // Missing: the harness issues weights, then a reset behind its back drops them.
    let n = h.dut().lanes();
    let mut s = BeatStreams::new(vec![vec![Beat::start(3, one, true), Beat::weight(4)]; n]);
    h.run(&mut s, &[]);
    h.dut_mut().set_reset(true);
    h.dut_mut().tick();
    h.dut_mut().set_reset(false);
    h.idle(h.latency() + 1);
    let kinds: Vec<MismatchKind> = h.mismatches().iter().map(|m| m.kind).collect();
    assert!(kinds.contains(&MismatchKind::Unexpected), "{kinds:?}");
    assert!(kinds.contains(&MismatchKind::Missing), "{kinds:?}");
    let missing = h.mismatches().iter().find(|m| m.kind == MismatchKind::Missing).unwrap();
    let text = missing.to_string();
    for needle in [
        "MISMATCH",
        &cfg.name,
        "lane ",
        "issued in cycle",
        "output in cycle",
        "code 0x3",
        "sel 1",
        "scale code",
        "entry",
        "expected 0x",
        "actual   no output",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    assert!(missing.expected.is_some() && missing.actual.is_none());
}

/// Bias writes and table writes go to every lane; a write to table 1 does not touch table 0.
#[test]
fn load_port_reaches_every_lane() {
    for cfg in compiled_configs() {
        let mut d = Dut::new(&cfg.name).unwrap();
        d.reset();
        let mut t = tables(&cfg, 21);
        d.load_tables(&t).unwrap();
        // Rewrite one entry of table 1 only.
        let new = (t.entries[1][1] + 1) % (1 << cfg.lut.bits());
        d.set_load(Some(LoadOp::Entry {
            table: 1,
            addr: 1,
            word: new,
        }));
        d.tick();
        d.set_load(None);
        t.entries[1][1] = new;
        let one = scale_one(&cfg);
        let n = d.lanes();
        let streams: Vec<Vec<Beat>> = (0..n)
            .map(|i| {
                vec![
                    Beat::start(1, one, i % 2 == 1),
                    Beat::weight(1),
                    Beat::start(1, one, i % 2 == 0),
                ]
            })
            .collect();
        for i in 0..n {
            let mut out = Vec::new();
            let mut dd = Dut::new(&cfg.name).unwrap();
            dd.reset();
            dd.load_tables(&t).unwrap();
            for k in 0..streams[i].len() + dd.latency() as usize {
                let mut beats = vec![Beat::idle(); n];
                beats[i] = streams[i].get(k).copied().unwrap_or_default();
                if let Some(w) = dd.step(&beats)[i] {
                    out.push(w);
                }
            }
            assert_eq!(out, run_lane(&cfg, &t, &streams[i]), "{} lane {i}", cfg.name);
        }
    }
}
