//! Unit tests of each block in rust-hdl's simulator against the golden model's pieces.

use rust_hdl::prelude::*;
use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::Ieee16;

use super::mul::{Fp16Mul, HifMul, ScaleDec};
use super::npack::{NormPackA, NormPackB};
use super::pack::{PackA, PackB};
use super::prims::{Lut, RegR};
use crate::config::LaneConfig;
use crate::model::{entry_value, pack, scale_value};
use crate::params::{Params, SCALE_MAN_ALIGNED};

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

fn settle<B: Block>(b: &mut B) {
    assert!(simulate(b, 100));
}

fn decoded_scale(d: &mut ScaleDec, code: u8) -> (u64, u64, bool, bool) {
    d.code.next = (code as u64).into();
    settle(d);
    (
        d.sig.val().to_u64(),
        d.exp.val().to_u64(),
        d.neg.val(),
        d.zero.first().is_some_and(|z| z.val()),
    )
}

#[test]
fn scale_decoder_every_code() {
    for sf in [ScaleFormat::UE4M4, ScaleFormat::E4M3, ScaleFormat::SE4M3] {
        for lut in [LutEntry::Hif8, LutEntry::Fp16] {
            let c = cfg(lut, sf, Ieee16::Fp16);
            let p = Params::new(&c);
            assert_eq!(p.normalized, lut != LutEntry::Fp16);
            let mut d = ScaleDec::new(&p);
            // Normalized exponents are offset by man_bits - 1 (so that they are >= 0).
            let eoff =
                p.scale.bias + SCALE_MAN_ALIGNED as i32 + if p.normalized { p.scale.man_bits as i32 - 1 } else { 0 };
            for code in 0..=255u8 {
                let (s, e, neg, zero) = decoded_scale(&mut d, code);
                let v = s as f64 * 2f64.powi(e as i32 - eoff);
                let want = scale_value(&c, code);
                assert_eq!(if neg { -v } else { v }, want, "{sf:?} {lut:?} code {code:#x}");
                if p.normalized {
                    assert_eq!(zero, want == 0.0, "{sf:?} code {code:#x}");
                }
                assert!(s < 32);
                if p.normalized {
                    assert!(zero || s >= 16, "{sf:?} code {code:#x}: significand {s} not normalized");
                } else {
                    assert!(e >= 1);
                }
            }
        }
    }
}

fn mul_value(p: &Params, neg: bool, m: u64, x: u64) -> f64 {
    let v = m as f64 * 2f64.powi(x as i32 - p.xoff as i32);
    if neg {
        -v
    } else {
        v
    }
}

#[test]
fn hif_multiplier_every_word_and_scale() {
    for (lut, sf, out) in [
        (LutEntry::Hif8, ScaleFormat::UE4M4, Ieee16::Fp16),
        (LutEntry::Hif7, ScaleFormat::SE4M3, Ieee16::Bf16),
    ] {
        let c = cfg(lut, sf, out);
        let p = Params::new(&c);
        let mut d = ScaleDec::new(&p);
        let mut m7 = HifMul::<7, 9>::new(&Params::new(&cfg(LutEntry::Hif7, sf, out)));
        let mut m8 = HifMul::<8, 9>::new(&Params::new(&cfg(LutEntry::Hif8, sf, out)));
        for bias in [-100i32, -3, 0, 7, 100] {
            for code in 0..=255u8 {
                let (s, e, sn, sz) = decoded_scale(&mut d, code);
                for w in 0..1u32 << lut.bits() {
                    macro_rules! run {
                        ($m:expr) => {{
                            $m.entry.next = (w as u64).into();
                            $m.ssig.next = s.into();
                            $m.sexp.next = e.into();
                            $m.sneg.next = sn;
                            $m.szero.next = sz;
                            $m.bias.next = (bias as i8 as u8 as u64).into();
                            settle(&mut $m);
                            (
                                $m.neg.val(),
                                $m.p.val().to_u64(),
                                $m.x.val().to_u64(),
                                $m.zero.val(),
                            )
                        }};
                    }
                    let (neg, pm, x, zero) = if lut == LutEntry::Hif7 { run!(m7) } else { run!(m8) };
                    let want = entry_value(lut, w, bias).unwrap() * scale_value(&c, code);
                    let what = format!("{lut:?} w {w:#x} bias {bias} scale {code:#x}");
                    assert_eq!(zero, want == 0.0, "{what}");
                    if !zero {
                        // Normalized: the leading one at k_min or k_min + 1.
                        assert!((1 << p.k_min..1 << (p.k_min + 2)).contains(&pm), "{what}: p = {pm}");
                        assert_eq!(mul_value(&p, neg, pm, x), want, "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn fp16_multiplier_sampled() {
    let c = cfg(LutEntry::Fp16, ScaleFormat::SE4M3, Ieee16::Bf16);
    let p = Params::new(&c);
    let mut d = ScaleDec::new(&p);
    let mut m = Fp16Mul::<16, 16>::new(&p);
    for code in [0u8, 1, 7, 8, 0x38, 0x7e, 0x7f, 0x80, 0xb9, 0xff] {
        let (s, e, sn, _) = decoded_scale(&mut d, code);
        for w in (0..1u32 << 16).step_by(7) {
            m.entry.next = (w as u64).into();
            m.ssig.next = s.into();
            m.sexp.next = e.into();
            m.sneg.next = sn;
            settle(&mut m);
            match entry_value(c.lut, w, 0) {
                Ok(ev) => {
                    assert!(!m.inf.val());
                    let got = mul_value(&p, m.neg.val(), m.p.val().to_u64(), m.x.val().to_u64());
                    let want = ev * scale_value(&c, code);
                    assert!(got == want || (got == 0.0 && want == 0.0), "w {w:#x} scale {code:#x}");
                }
                Err(_) => assert!(m.inf.val(), "w {w:#x}"),
            }
        }
    }
}

#[test]
fn packer_against_model_pack() {
    // The general packer (FP16-LUT lanes, 16-bit products): every exponent offset the FP16
    // multiplier produces, products sampled across every leading-one position.
    for out in [Ieee16::Fp16, Ieee16::Bf16] {
        let c = cfg(LutEntry::Fp16, ScaleFormat::UE4M4, out);
        let p = Params::new(&c);
        let mut a = PackA::<16>::new(&p);
        let mut b = PackB::<16, 17>::new(&p);
        let products: Vec<u64> = std::iter::once(0)
            .chain((0..16).flat_map(|k| [1u64 << k, (1 << k) | 1, (2 << k) - 1, (3 << k) >> 1]))
            .chain((1..1u64 << 16).step_by(251))
            .filter(|&m| m < 1 << 16)
            .collect();
        for x in 0..=p.x_max() as u64 {
            for &pm in &products {
                for neg in [false, true] {
                    a.p.next = pm.into();
                    a.x.next = x.into();
                    a.inf.next = false;
                    settle(&mut a);
                    b.neg.next = neg;
                    b.p.next = pm.into();
                    b.zero.next = a.zero.val();
                    b.sat.next = a.sat.val();
                    b.rs.next = a.rs.val();
                    b.ls.next = a.ls.val();
                    b.fe.next = a.fe.val();
                    settle(&mut b);
                    let v = mul_value(&p, neg, pm, x);
                    assert_eq!(
                        b.word.val().to_u64() as u16,
                        pack(out, v),
                        "{out:?} p {pm} x {x} neg {neg}"
                    );
                }
            }
        }
    }
}

#[test]
fn normalized_packer_against_model_pack() {
    // Every product a normalized (HIF) lane can form -- leading one at k_min or k_min + 1
    // -- and a zero product, at every exponent offset the HIF multiplier produces (x >= xpad;
    // the model's f32 covers every bias in BIAS_MIN..=BIAS_MAX and more).
    for (sf, out) in [
        (ScaleFormat::UE4M4, Ieee16::Fp16),
        (ScaleFormat::UE4M4, Ieee16::Bf16),
        (ScaleFormat::E4M3, Ieee16::Fp16),
        (ScaleFormat::E4M3, Ieee16::Bf16),
    ] {
        let c = cfg(LutEntry::Hif8, sf, out);
        let p = Params::new(&c);
        let mut a = NormPackA::<9>::new(&p);
        let mut b = NormPackB::<9>::new(&p);
        let products = std::iter::once(None).chain((1u64 << p.k_min..1 << (p.k_min + 2)).map(Some));
        for pm in products {
            for x in p.xpad as u64..=p.x_max() as u64 {
                for neg in [false, true] {
                    a.p.next = pm.unwrap_or(0x1a5).into();
                    a.x.next = x.into();
                    a.zero.next = pm.is_none();
                    a.neg.next = neg;
                    settle(&mut a);
                    b.p.next = pm.unwrap_or(0x1a5).into();
                    b.r.next = a.r.val();
                    b.fb.next = a.fb.val();
                    b.normal.next = a.normal.val();
                    b.sat.next = a.sat.val();
                    b.sign.next = a.sign.val();
                    settle(&mut b);
                    let v = pm.map_or(0.0, |m| mul_value(&p, neg, m, x));
                    assert_eq!(
                        b.word.val().to_u64() as u16,
                        pack(out, v),
                        "{sf:?} {out:?} p {pm:?} x {x} neg {neg}"
                    );
                }
            }
        }
    }
}

#[test]
fn lut_memory_write_then_read() {
    let mut l = Lut::<5, 8>::default();
    let edge = |l: &mut Lut<5, 8>| {
        l.clock.next = Clock { clk: true };
        settle(l);
        l.clock.next = Clock { clk: false };
        settle(l);
    };
    for a in 0..32u64 {
        l.we.next = true;
        l.waddr.next = a.into();
        l.wdata.next = (a * 7 + 3).into();
        edge(&mut l);
    }
    l.we.next = true;
    l.waddr.next = 5u64.into();
    l.wdata.next = 0xeeu64.into();
    l.raddr.next = 5u64.into();
    edge(&mut l);
    assert_eq!(
        l.rdata.val().to_u64(),
        5 * 7 + 3,
        "read during write returns the old word"
    );
    l.we.next = false;
    edge(&mut l);
    assert_eq!(l.rdata.val().to_u64(), 0xee);
    l.raddr.next = 31u64.into();
    edge(&mut l);
    assert_eq!(l.rdata.val().to_u64(), 31 * 7 + 3);
}

#[test]
fn register_synchronous_reset() {
    let mut r = RegR::<Bits<8>>::default();
    let edge = |r: &mut RegR<Bits<8>>| {
        r.clock.next = Clock { clk: true };
        settle(r);
        r.clock.next = Clock { clk: false };
        settle(r);
    };
    r.d.next = 0x5au64.into();
    edge(&mut r);
    assert_eq!(r.q.val().to_u64(), 0x5a);
    r.reset.next = true;
    settle(&mut r);
    assert_eq!(r.q.val().to_u64(), 0x5a, "reset is synchronous");
    edge(&mut r);
    assert_eq!(r.q.val().to_u64(), 0);
}
