//! The golden model (which goes through `sop-formats` and f32/`half`) against an
//! independent integer-only formula written from the bit layouts, exhaustively.

use sop_formats::hif::{HifFormat, MANT_EIGHTHS};
use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::Ieee16;
use sop_hw::model::{decode_entry, products_exact_in_f32, BIAS_MAX, BIAS_MIN};
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

/// A finite value `(-1)^neg * sig * 2^exp`, or an overflow marker.
enum V {
    Num(bool, u64, i32),
    Inf(bool),
}

fn entry(lut: LutEntry, w: u32, bias: i32) -> V {
    match lut {
        LutEntry::Fp16 => {
            let (s, e, m) = (w >> 15 != 0, (w >> 10) & 31, (w & 1023) as u64);
            if e == 31 {
                V::Inf(s)
            } else if e == 0 {
                V::Num(s, m, 1 - 25)
            } else {
                V::Num(s, m | 1024, e as i32 - 25)
            }
        }
        _ => {
            let (bits, used) = if lut == LutEntry::Hif7 { (7, 5) } else { (8, 6) };
            let cb = bits - 4;
            let (s, e, c) = (w >> (bits - 1) != 0, (w >> cb) & 7, w & ((1 << cb) - 1));
            if c >= used {
                V::Num(s, 0, 0)
            } else {
                V::Num(s, MANT_EIGHTHS[c as usize] as u64, e as i32 - bias - 3)
            }
        }
    }
}

fn scale(f: ScaleFormat, code: u8) -> (bool, u64, i32) {
    let c = code as u32;
    match f {
        ScaleFormat::UE4M4 => {
            let (e, m) = (c >> 4, (c & 15) as u64);
            if e == 0 {
                (false, m, 1 - 7 - 4)
            } else {
                (false, m | 16, e as i32 - 7 - 4)
            }
        }
        _ => {
            let neg = f == ScaleFormat::SE4M3 && c & 0x80 != 0;
            let (e, m) = ((c >> 3) & 15, (c & 7) as u64);
            if e == 0 {
                (neg, m, 1 - 7 - 3)
            } else {
                (neg, m | 8, e as i32 - 7 - 3)
            }
        }
    }
}

fn round(out: Ieee16, neg: bool, sig: u64, exp: i32) -> u16 {
    let (eb, mb, bias) = match out {
        Ieee16::Fp16 => (5i32, 10i32, 15i32),
        Ieee16::Bf16 => (8, 7, 127),
    };
    let sign = if neg { 0x8000u16 } else { 0 };
    let max = (((1u32 << eb) - 1) << mb) as u16 - 1;
    if sig == 0 {
        return 0;
    }
    let lead = 63 - sig.leading_zeros() as i32;
    let u = exp + lead;
    let emin = 1 - bias;
    let mut q = u.max(emin) - mb;
    let shift = q - exp;
    let mut n = if shift <= 0 {
        sig << (-shift)
    } else if shift > 62 {
        0
    } else {
        let (fl, rem, half) = (sig >> shift, sig & ((1 << shift) - 1), 1u64 << (shift - 1));
        if rem > half || (rem == half && fl & 1 == 1) {
            fl + 1
        } else {
            fl
        }
    };
    if n >= 2 << mb {
        n >>= 1;
        q += 1;
    }
    if n < 1 << mb {
        return sign | n as u16;
    }
    let fe = q + mb + bias;
    if fe >= (1 << eb) - 1 {
        return sign | max;
    }
    sign | ((fe as u16) << mb) | (n as u16 & ((1 << mb) - 1))
}

fn reference(c: &LaneConfig, w: u32, bias: i32, s: u8) -> u16 {
    let (sn, ss, se) = scale(c.scale, s);
    match entry(c.lut, w, bias) {
        V::Inf(en) => {
            if ss == 0 {
                0
            } else {
                let max = if c.output == Ieee16::Fp16 { 0x7bff } else { 0x7f7f };
                if en != sn {
                    0x8000 | max
                } else {
                    max
                }
            }
        }
        V::Num(en, es, ee) => round(c.output, en != sn, es * ss, ee + se),
    }
}

#[test]
fn hif_every_word_scale_and_bias() {
    for lut in [LutEntry::Hif7, LutEntry::Hif8] {
        for sf in [ScaleFormat::UE4M4, ScaleFormat::E4M3, ScaleFormat::SE4M3] {
            for out in [Ieee16::Fp16, Ieee16::Bf16] {
                let c = cfg(lut, sf, out);
                for bias in (BIAS_MIN..=BIAS_MAX).step_by(3).chain([BIAS_MAX, 0, 7, -1]) {
                    for w in 0..1u32 << lut.bits() {
                        for s in 0..=255u8 {
                            assert_eq!(
                                decode_entry(&c, w, bias, s),
                                reference(&c, w, bias, s),
                                "{} w {w:#x} bias {bias} s {s:#x}",
                                c.summary()
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn fp16_every_word_and_scale() {
    for (sf, out) in [
        (ScaleFormat::UE4M4, Ieee16::Fp16),
        (ScaleFormat::SE4M3, Ieee16::Bf16),
        (ScaleFormat::E4M3, Ieee16::Fp16),
    ] {
        let c = cfg(LutEntry::Fp16, sf, out);
        for w in 0..1u32 << 16 {
            for s in 0..=255u8 {
                assert_eq!(
                    decode_entry(&c, w, 0, s),
                    reference(&c, w, 0, s),
                    "{} w {w:#x} s {s:#x}",
                    c.summary()
                );
            }
        }
    }
}

#[test]
fn products_are_exact_in_f32() {
    for lut in [LutEntry::Hif7, LutEntry::Hif8, LutEntry::Fp16] {
        for sf in [ScaleFormat::UE4M4, ScaleFormat::E4M3, ScaleFormat::SE4M3] {
            assert!(products_exact_in_f32(&cfg(lut, sf, Ieee16::Fp16)), "{lut:?} {sf:?}");
        }
    }
}

#[test]
fn hif_layout_matches_formats() {
    // The reference above hard-codes the HIF layout; check it against sop-formats.
    for h in [HifFormat::Hif7, HifFormat::Hif8] {
        let lut = if h == HifFormat::Hif7 {
            LutEntry::Hif7
        } else {
            LutEntry::Hif8
        };
        for w in 0..h.num_codes() {
            let want = h.decode(w, 7) as f64;
            let got = match entry(lut, w, 7) {
                V::Num(n, s, e) => (if n { -1.0 } else { 1.0 }) * s as f64 * 2f64.powi(e),
                V::Inf(_) => unreachable!(),
            };
            assert_eq!(got, want, "{w:#x}");
        }
    }
}
