//! The combinational datapath (scale decoder, multiplier, packer) in rust-hdl's
//! simulator against the golden model: exhaustive over every HIF word and every scale
//! code for several biases, sampled for FP16 entries.

use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::Ieee16;
use sop_hw::model::decode_entry;
use sop_hw::sim::Datapath;
use sop_hw::LaneConfig;

fn cfg(lut: LutEntry, scale: ScaleFormat, output: Ieee16) -> LaneConfig {
    LaneConfig {
        name: "t".into(),
        lanes: 1,
        code_bits: 4,
        block: 16,
        scale,
        lut,
        output,
        engine: false,
    }
}

fn exhaustive(c: &LaneConfig, biases: &[i32]) {
    let mut dp = Datapath::new(c).unwrap();
    let words = 1u32 << c.lut.bits();
    let mut bad = Vec::new();
    for &bias in biases {
        for w in 0..words {
            for s in 0..=255u8 {
                let got = dp.eval(w, bias as i8 as u8, s);
                let want = decode_entry(c, w, bias, s);
                if got != want && bad.len() < 10 {
                    bad.push(format!(
                        "word {w:#x} bias {bias} scale {s:#04x}: rtl {got:#06x} model {want:#06x}"
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}: {:#?}", c.summary(), bad);
    // The comparison is not vacuous: the datapath produces many distinct words.
    let distinct: std::collections::BTreeSet<u16> = (0..words).map(|w| dp.eval(w, 7, 0x70)).collect();
    assert!(distinct.len() > 60, "only {} distinct outputs", distinct.len());
}

#[test]
fn hif8_ue4m4_fp16_every_word_every_scale() {
    exhaustive(
        &cfg(LutEntry::Hif8, ScaleFormat::UE4M4, Ieee16::Fp16),
        &[7, 0, 100, -100, 20, -12],
    );
}

#[test]
fn hif7_se4m3_bf16_every_word_every_scale() {
    exhaustive(&cfg(LutEntry::Hif7, ScaleFormat::SE4M3, Ieee16::Bf16), &[7, 100, -100]);
}

#[test]
fn hif8_e4m3_fp16_every_word_every_scale() {
    exhaustive(&cfg(LutEntry::Hif8, ScaleFormat::E4M3, Ieee16::Fp16), &[7, 25, -5]);
}

fn fp16_sampled(c: &LaneConfig) {
    let mut dp = Datapath::new(c).unwrap();
    let scales = [
        0u8, 1, 2, 3, 0x0f, 0x10, 0x11, 0x38, 0x70, 0x77, 0x7e, 0x7f, 0x80, 0x81, 0xa5, 0xb8, 0xf0, 0xfe, 0xff,
    ];
    let mut n = 0u64;
    let mut check = |w: u32, s: u8| {
        let got = dp.eval(w, 0, s);
        let want = decode_entry(c, w, 0, s);
        assert_eq!(got, want, "{}: word {w:#06x} scale {s:#04x}", c.summary());
        n += 1;
    };
    for w in 0..1u32 << 16 {
        for &s in &scales {
            check(w, s);
        }
    }
    for w in (0..1u32 << 16).step_by(61) {
        for s in 0..=255u8 {
            check(w, s);
        }
    }
    assert!(n > 1_000_000);
}

#[test]
fn fp16lut_ue4m4_fp16_every_word_sampled_scales() {
    fp16_sampled(&cfg(LutEntry::Fp16, ScaleFormat::UE4M4, Ieee16::Fp16));
}

#[test]
fn fp16lut_se4m3_bf16_every_word_sampled_scales() {
    fp16_sampled(&cfg(LutEntry::Fp16, ScaleFormat::SE4M3, Ieee16::Bf16));
}
