//! Whole tops in rust-hdl's simulator (pipeline, block registers, table load port,
//! reset) against the golden model.

use proptest::prelude::*;
use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::Ieee16;
use sop_hw::model::{run_lane, Beat, Tables, BIAS_MAX, BIAS_MIN};
use sop_hw::sim::RtlSim;
use sop_hw::sparse::Correction;
use sop_hw::{default_configs, LaneConfig, LATENCY};

use sop_hw::rng::XorShift as Rng;

fn random_tables(c: &LaneConfig, r: &mut Rng) -> Tables {
    let mut t = Tables::zeroed(c);
    for e in t.entries.iter_mut() {
        for w in e.iter_mut() {
            *w = r.below(1 << c.lut.bits()) as u32;
        }
    }
    if c.lut.hif().is_some() {
        // Mostly realistic biases, sometimes extreme ones (overflow / underflow paths).
        for b in t.bias.iter_mut() {
            *b = match r.below(4) {
                0 => (BIAS_MIN as i64 + r.below((BIAS_MAX - BIAS_MIN + 1) as u64) as i64) as i32,
                _ => 2 + r.below(12) as i32,
            };
        }
    }
    t
}

fn random_stream(c: &LaneConfig, r: &mut Rng, len: usize) -> Vec<Beat> {
    (0..len)
        .map(|_| Beat {
            valid: r.below(8) != 0,
            block_start: r.below(5) == 0,
            scale: r.next() as u8,
            sel: r.below(2) == 1,
            code: r.below(1 << c.code_bits) as u32,
            // Engines: a sparse correction on about a quarter of the weights (random BF16
            // values, also next to each other).
            corr: (c.engine && r.below(4) == 0).then(|| Correction {
                outlier: r.below(2) == 1,
                value: r.next() as u16 & 0x7f7f | (r.below(2) as u16) << 15,
            }),
        })
        .collect()
}

fn check(c: &LaneConfig, t: &Tables, streams: &[Vec<Beat>]) {
    let mut sim = RtlSim::new(c).unwrap();
    sim.reset();
    sim.load_tables(t).unwrap();
    let got = sim.run(streams).unwrap();
    for (i, s) in streams.iter().enumerate() {
        let want = run_lane(c, t, s);
        assert_eq!(got[i], want, "{} lane {i}", c.name);
    }
}

#[test]
fn every_default_config_random_streams() {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    for c in default_configs() {
        let t = random_tables(&c, &mut r);
        let streams: Vec<Vec<Beat>> = (0..c.lanes).map(|_| random_stream(&c, &mut r, 48)).collect();
        check(&c, &t, &streams);
    }
}

#[test]
fn latency_is_fixed() {
    let c = &default_configs()[0];
    let mut sim = RtlSim::new(c).unwrap();
    sim.reset();
    let mut r = Rng(7);
    sim.load_tables(&random_tables(c, &mut r)).unwrap();
    let mut beats = vec![Beat::idle(); c.lanes as usize];
    beats[0] = Beat::start(3, 0x70, false);
    let first = sim.step(&beats);
    assert!(first.iter().all(Option::is_none));
    let idle = vec![Beat::idle(); c.lanes as usize];
    for k in 1..=LATENCY {
        let o = sim.step(&idle);
        assert_eq!(o[0].is_some(), k == LATENCY, "cycle {k}");
        assert!(o[1..].iter().all(Option::is_none));
    }
}

#[test]
fn reset_clears_pipeline_and_block_registers() {
    let c = &default_configs()[0];
    let mut r = Rng(99);
    let t = random_tables(c, &mut r);
    let mut sim = RtlSim::new(c).unwrap();
    sim.reset();
    sim.load_tables(&t).unwrap();
    let n = c.lanes as usize;
    // Fill the pipeline and latch a block scale, then reset mid-stream.
    for k in 0..3 {
        sim.step(&vec![Beat::start(k, 0x75, true); n]);
    }
    sim.reset();
    // Nothing in flight comes out; the block registers are back to scale 0 / table 0.
    let mut outs = Vec::new();
    let stream = vec![
        Beat::weight(5),
        Beat::weight(6),
        Beat::idle(),
        Beat::idle(),
        Beat::idle(),
        Beat::idle(),
    ];
    for b in &stream {
        outs.push(sim.step(&vec![*b; n])[0]);
    }
    let valid: Vec<u16> = outs.into_iter().flatten().collect();
    assert_eq!(valid, run_lane(c, &t, &stream[..2]));
    assert_eq!(valid, vec![0, 0], "scale code 0 after reset gives +0");
}

#[test]
fn block_start_without_valid_latches() {
    for c in default_configs().iter().filter(|c| c.lut == LutEntry::Hif8).take(1) {
        let mut r = Rng(3);
        let t = random_tables(c, &mut r);
        let s = vec![
            Beat::weight(1),
            Beat {
                valid: false,
                block_start: true,
                scale: 0x68,
                sel: true,
                code: 0,
                corr: None,
            },
            Beat::weight(2),
            Beat::start(3, 0x71, false),
            Beat::weight(3),
        ];
        let streams: Vec<Vec<Beat>> = (0..c.lanes).map(|_| s.clone()).collect();
        check(c, &t, &streams);
    }
}

/// Every combination of code width, LUT format, scale format and output format (one
/// lane each), not only the defaults.
#[test]
fn every_format_combination() {
    let mut r = Rng(0xc0ffee);
    for code_bits in [4, 6] {
        for lut in [LutEntry::Hif7, LutEntry::Hif8, LutEntry::Fp16] {
            for scale in [ScaleFormat::UE4M4, ScaleFormat::E4M3, ScaleFormat::SE4M3] {
                for output in [Ieee16::Fp16, Ieee16::Bf16] {
                    let c = LaneConfig {
                        name: "combo".into(),
                        lanes: 1,
                        code_bits,
                        block: 16,
                        scale,
                        lut,
                        output,
                        engine: false,
                    };
                    let t = random_tables(&c, &mut r);
                    let streams = vec![random_stream(&c, &mut r, 96)];
                    check(&c, &t, &streams);
                }
            }
        }
    }
}

fn arb_case() -> impl Strategy<Value = (usize, u32, u64, usize)> {
    (0..default_configs().len(), 1u32..=4, any::<u64>(), 8usize..160)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn random_tables_and_streams((ci, lanes, seed, len) in arb_case()) {
        let mut c = default_configs()[ci].clone();
        c.lanes = lanes;
        let mut r = Rng(seed | 1);
        let t = random_tables(&c, &mut r);
        let streams: Vec<Vec<Beat>> = (0..c.lanes).map(|_| random_stream(&c, &mut r, len)).collect();
        check(&c, &t, &streams);
    }
}

/// The engine (HIF8 with FP16 and BF16 out, HIF7 with FP16 out, the FP16-LUT engine with
/// FP16 and BF16 out) in every mode (element path
/// x code width x scale format), one lane, random
/// tables and streams with sparse corrections: the mode register, the direct decoders, the
/// scale-format select and the correction unit against the golden model (the exhaustive
/// sweep runs under Verilator, testbenches).
#[test]
fn engine_every_mode_random_streams() {
    let mut r = Rng(0xe9e1_0e00_0000_0001);
    let base = default_configs()
        .into_iter()
        .find(|c| c.engine)
        .expect("an engine is committed");
    for (lut, output) in [
        (LutEntry::Hif8, Ieee16::Fp16),
        (LutEntry::Hif8, Ieee16::Bf16),
        (LutEntry::Hif7, Ieee16::Fp16),
        (LutEntry::Fp16, Ieee16::Fp16),
        (LutEntry::Fp16, Ieee16::Bf16),
    ] {
        let c = LaneConfig {
            lanes: 1,
            lut,
            output,
            ..base.clone()
        };
        let mut sim = RtlSim::new(&c).unwrap();
        for mode in sop_hw::mode::all_modes() {
            // The golden stream starts from the block registers' reset state.
            sim.reset();
            let mut t = random_tables(&c, &mut r);
            t.mode = Some(mode);
            sim.load_tables(&t).unwrap();
            // Any code: the lanes must ignore what the mode's width masks off.
            let s: Vec<Beat> = random_stream(&c, &mut r, 40);
            let got = sim.run(std::slice::from_ref(&s)).unwrap();
            assert_eq!(got[0], run_lane(&c, &t, &s), "{lut:?} {output:?} {mode}");
        }
    }
}
