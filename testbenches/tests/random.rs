//! Corner cases real weights rarely hit, on every committed configuration:
//!
//! - proptest (engines: every mode, sparse corrections on a third of the weights): random
//!   tables and biases (zero entries, FP16 Inf/NaN entries, biases over the
//!   model's whole domain -100..=100), random lane streams with strobes in idle cycles, zero
//!   scales, subnormal scales, the largest scale codes, negative signed scales, and resets at
//!   random cycles;
//! - exhaustive: every LUT word times every scale code (HIF: at six biases; FP16: 20 scale
//!   codes including zero, subnormals and the largest), through the full pipeline; on the
//!   engines (HIF and FP16-LUT), every mode x every scale code x every code x both tables.

use proptest::prelude::*;
use sop_cosim::{compiled_configs, BeatStreams, Dut, Harness};
use sop_hw::mode::{all_modes, ElementPath, Mode};
use sop_hw::sparse::Correction;
use sop_hw::{Beat, LaneConfig, Tables};
use sop_testbenches::{assert_clean, sweep};

/// Scale codes weighted towards the corners.
fn scale_code() -> impl Strategy<Value = u8> {
    prop_oneof![
        2 => Just(0u8),                 // zero scale
        3 => 1u8..16,                   // subnormal (UE4M4 exponent 0; E4M3 small)
        2 => 0x81u8..0x88,              // SE4M3: negative subnormal
        2 => prop_oneof![Just(0xffu8), Just(0x7f), Just(0xfe), Just(0xf7), Just(0x7e)], // largest
        3 => 0x80u8..=0xff,             // SE4M3: negative; UE4M4: large
        4 => any::<u8>(),
    ]
}

/// LUT words (masked to the entry width later): zeros, all ones, anything.
fn word() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        1 => Just(0x8000u32),           // FP16 -0
        1 => 0x7c00u32..0x7c08,         // FP16 Inf / NaN
        1 => 0xfc00u32..0xfc08,
        1 => Just(0x7bffu32),           // FP16 max
        1 => 0u32..0x400,               // FP16 subnormal
        6 => any::<u32>(),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    words: Vec<u32>,
    bias: (i32, i32),
    lanes: Vec<Vec<(u8, u8, bool, u32)>>,
    resets: Vec<u64>,
    /// Engine mode word (any of the valid modes).
    mode: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(word(), 128),
        (-100i32..=100, -100i32..=100),
        prop::collection::vec(
            prop::collection::vec((0u8..10, scale_code(), any::<bool>(), any::<u32>()), 0..120),
            4,
        ),
        prop::collection::vec(0u64..140, 0..3),
        prop::sample::select(sop_hw::mode::all_modes().iter().map(|m| m.word()).collect::<Vec<u8>>()),
    )
        .prop_map(|(words, bias, lanes, mut resets, mode)| {
            resets.sort_unstable();
            resets.dedup();
            Case {
                words,
                bias,
                lanes,
                resets,
                mode,
            }
        })
}

fn tables_of(cfg: &LaneConfig, c: &Case) -> Tables {
    let n = 1usize << cfg.code_bits;
    let mask = (1u32 << cfg.lut.bits()) - 1;
    let mut t = Tables::zeroed(cfg);
    for (k, e) in t.entries.iter_mut().enumerate() {
        for (i, w) in e.iter_mut().enumerate() {
            *w = c.words[(k * n + i) % c.words.len()] & mask;
        }
    }
    if cfg.lut.hif().is_some() {
        t.bias = [c.bias.0, c.bias.1];
    }
    if cfg.engine {
        t.mode = Some(Mode::from_word(c.mode).expect("a valid mode word"));
    }
    t
}

fn beats_of(cfg: &LaneConfig, lane: &[(u8, u8, bool, u32)]) -> Vec<Beat> {
    let cmask = (1u32 << cfg.code_bits) - 1;
    lane.iter()
        .map(|&(kind, scale, sel, raw)| {
            let code = raw & cmask;
            let mut b = match kind {
                0 => Beat::idle(),
                1 => Beat {
                    valid: false,
                    block_start: true,
                    scale,
                    sel,
                    code,
                    corr: None,
                },
                2 | 3 => Beat::start(code, scale, sel),
                _ => Beat::weight(code),
            };
            // Engines: a sparse correction on about a third of the weights, from the high
            // bits of the random word (any BF16 value: Inf/NaN ones saturate).
            if cfg.engine && b.valid && (raw >> 8) % 3 == 0 {
                b.corr = Some(Correction {
                    outlier: (raw >> 10) & 1 == 1,
                    value: (raw >> 16) as u16,
                });
            }
            b
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_every_config(c in case()) {
        for cfg in compiled_configs() {
            let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
            h.reset();
            h.load_tables(&tables_of(&cfg, &c)).unwrap();
            let n = h.dut().lanes();
            let lanes: Vec<Vec<Beat>> = (0..n).map(|i| beats_of(&cfg, &c.lanes[i % c.lanes.len()])).collect();
            let mut s = BeatStreams::new(lanes);
            h.run(&mut s, &c.resets);
            // Reload different tables right away, then stream again (no reset in between).
            let mut c2 = c.clone();
            c2.words.rotate_left(5);
            h.load_tables(&tables_of(&cfg, &c2)).unwrap();
            let lanes: Vec<Vec<Beat>> = (0..n).map(|i| beats_of(&cfg, &c.lanes[(i + 1) % c.lanes.len()])).collect();
            let mut s = BeatStreams::new(lanes);
            h.run(&mut s, &[]);
            h.drain();
            prop_assert_eq!(h.counters().mismatches, 0, "{}", h.mismatches().first().map(|m| m.to_string()).unwrap_or_default());
        }
    }
}

#[test]
fn every_lut_word_times_every_scale() {
    for cfg in compiled_configs() {
        let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
        h.reset();
        let expected = match cfg.lut.hif() {
            Some(hf) => {
                let words: Vec<u32> = (0..hf.num_codes()).collect();
                let scales: Vec<u8> = (0..=255).collect();
                // 16: subnormal results that round (at 7 every product is exact in FP16).
                let biases = [-100, -7, 0, 7, 16, 100];
                for bias in biases {
                    sweep(&mut h, &cfg, &words, &scales, bias);
                }
                biases.len() * words.len().div_ceil(2 << cfg.code_bits) * scales.len() * (2 << cfg.code_bits)
            }
            None => {
                let words: Vec<u32> = (0..1 << 16).collect();
                let scales = [
                    0u8, 1, 2, 7, 8, 15, 16, 0x17, 0x38, 0x70, 0x77, 0x78, 0x7e, 0x7f, 0x80, 0x81, 0xb8, 0xef, 0xfe,
                    0xff,
                ];
                sweep(&mut h, &cfg, &words, &scales, 0);
                words.len() / (2 << cfg.code_bits) * scales.len() * (2 << cfg.code_bits)
            }
        };
        h.drain();
        assert_clean(&h);
        assert_eq!(h.counters().checked, expected as u64, "{}", cfg.name);
    }
}

/// Each engine in every mode: every scale code x every code (all 64, also in 4-bit modes,
/// whose top bits the lanes must ignore) x both selection bits; LUT modes with tables holding
/// every HIF word at six biases (HIF engines) or 256 FP16 words spanning every exponent field
/// (the FP16-LUT engine), direct modes with tables of all ones (which they must not read).
#[test]
fn engine_every_mode_every_code_every_scale() {
    let engines: Vec<LaneConfig> = compiled_configs().into_iter().filter(|c| c.engine).collect();
    assert!(!engines.is_empty(), "no engine configuration is compiled");
    for cfg in engines {
        let mut h = Harness::new(Dut::new(&cfg.name).unwrap());
        h.reset();
        let n = 1usize << cfg.code_bits;
        let lanes = h.dut().lanes();
        let mut expected = 0u64;
        for mode in all_modes() {
            let lut = mode.element == ElementPath::Lut;
            let biases: &[i32] = if lut && cfg.lut.hif().is_some() {
                &[-100, -7, 0, 7, 16, 100]
            } else {
                &[0]
            };
            let words: Vec<u32> = if lut {
                match cfg.lut.hif() {
                    Some(hf) => (0..hf.num_codes()).collect(),
                    // FP16 tables: every exponent field (subnormal, normal, Inf/NaN) with
                    // four mantissas and both signs; every_lut_word_times_every_scale
                    // sweeps all 65,536 words in the reset mode.
                    None => (0..2u32)
                        .flat_map(|s| (0..32u32).flat_map(move |e| [0, 1, 0x200, 0x3ff].map(|m| s << 15 | e << 10 | m)))
                        .collect(),
                }
            } else {
                vec![(1 << cfg.lut.bits()) - 1; 2 * n]
            };
            for &bias in biases {
                for chunk in words.chunks(2 * n) {
                    let mut t = Tables::zeroed(&cfg);
                    for (i, &w) in chunk.iter().enumerate() {
                        t.entries[i / n][i % n] = w;
                    }
                    t.bias = [bias, bias];
                    t.mode = Some(mode);
                    h.load_tables(&t).unwrap();
                    let mut streams = vec![Vec::new(); lanes];
                    let mut k = 0;
                    for s in 0..=255u8 {
                        for sel in [false, true] {
                            for code in 0..n as u32 {
                                streams[k % lanes].push(Beat::start(code, s, sel));
                                k += 1;
                            }
                        }
                    }
                    expected += k as u64;
                    h.run(&mut BeatStreams::new(streams), &[]);
                }
            }
        }
        h.drain();
        assert_clean(&h);
        assert_eq!(h.counters().checked, expected, "{}", cfg.name);
    }
}
