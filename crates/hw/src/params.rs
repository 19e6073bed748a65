//! Every number the datapath is built from, derived from `sop-formats` for one
//! configuration. The RTL generator takes its constants from here and nowhere else.
//!
//! Notation (see `docs/hardware.md`): a product leaves the multiplier as an integer
//! magnitude `p` and an offset exponent `x`, with value `p * 2^(x - xoff)`. The packer
//! works with `b = x + k` (`k` = position of the leading one of `p`), whose output
//! exponent field is `b - pack_off` (`pack_off = xoff - output bias`).

use sop_formats::hif::{HifFormat, MANT_EIGHTHS, MANT_TERMS};
use sop_formats::point::{LutEntry, ScaleFormat, LUT_BIAS_BITS};
use sop_formats::{Ieee16, MiniFloat, E4M3, UE4M4};

use crate::config::LaneConfig;

/// `log2` of the denominator of [`MANT_EIGHTHS`] (the HIF mantissas are in eighths).
pub const HIF_MANT_SHIFT: u32 = 3;

/// Width of the scale code and of the bias register.
pub const SCALE_BITS: u32 = 8;

/// Widest scale mantissa among the supported scale formats (UE4M4: 4, E4M3: 3); every
/// scale significand is left-aligned to `SCALE_MAN_ALIGNED + 1` bits.
pub const SCALE_MAN_ALIGNED: u32 = if UE4M4.man_bits > E4M3.man_bits {
    UE4M4.man_bits
} else {
    E4M3.man_bits
};

/// Width of the offset exponent `x` and of `b = x + k` in the packer.
pub const XW: u32 = 10;

/// Width of shift amounts and of the leading-one index in the packer.
pub const SW: u32 = 5;

/// The scale format as a minifloat, and whether its sign is used.
pub fn scale_format(s: ScaleFormat) -> (MiniFloat, bool) {
    match s {
        ScaleFormat::UE4M4 => (UE4M4, false),
        ScaleFormat::E4M3 => (E4M3, false),
        ScaleFormat::SE4M3 => (E4M3, true),
        other => panic!("scale format {} is not supported by the decode lane", other.name()),
    }
}

/// Parameters of the shift-add form of one HIF mantissa code:
/// `m * s = (s << sh_a) +- (s << sh_b)` in units of `2^-HIF_MANT_SHIFT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HifTerm {
    /// The mantissa code `c`.
    pub c: u32,
    /// Left shift of the first term (`HIF_MANT_SHIFT + a_shl`).
    pub sh_a: u32,
    /// Left shift of the second term (`HIF_MANT_SHIFT - b_shr`), when there is one.
    pub sh_b: Option<u32>,
    /// Whether the second term is subtracted.
    pub sub: bool,
}

/// The shift-add table of a HIF format, one entry per used mantissa code, from
/// `sop_formats::hif::MANT_TERMS` (checked against `MANT_EIGHTHS`).
pub fn hif_terms(h: HifFormat) -> Vec<HifTerm> {
    (0..h.mantissas())
        .map(|c| {
            let (a_shl, sub, b_shr) = MANT_TERMS[c as usize];
            let t = HifTerm {
                c,
                sh_a: HIF_MANT_SHIFT + a_shl,
                sh_b: b_shr.map(|b| HIF_MANT_SHIFT - b),
                sub,
            };
            let first = 1i64 << t.sh_a;
            let second = t.sh_b.map_or(0, |b| 1i64 << b);
            let m = if sub { first - second } else { first + second };
            assert_eq!(
                m, MANT_EIGHTHS[c as usize] as i64,
                "MANT_TERMS and MANT_EIGHTHS disagree at c = {c}"
            );
            t
        })
        .collect()
}

/// All constants of one configuration's datapath.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Code width.
    pub code_bits: u32,
    /// LUT entry format.
    pub lut: LutEntry,
    /// LUT entry width in bits.
    pub entry_bits: u32,
    /// Scale minifloat (UE4M4 or E4M3).
    pub scale: MiniFloat,
    /// Whether the scale's sign bit is used (SE4M3).
    pub scale_signed: bool,
    /// Whether the lane works on normalized factors (HIF tables): the scale decoder
    /// normalizes a subnormal scale significand (its top bit is then always 1, the
    /// exponent drops by the shift), and every non-zero product has its leading one at
    /// [`Params::k_min`] or `k_min + 1`, so the packer needs no leading-one detector and
    /// shifts once (`rtl::npack`). FP16 tables hold subnormals: their lanes use the
    /// general packer (`rtl::pack`).
    pub normalized: bool,
    /// Mask of the scale sign bit (0 when the sign is not used).
    pub scale_sign_mask: u32,
    /// `SCALE_MAN_ALIGNED - scale.man_bits`: left shift aligning the scale significand.
    pub scale_align: u32,
    /// Output format.
    pub output: Ieee16,
    /// Product magnitude width `PW` (9 for HIF, 16 for FP16 entries).
    pub pw: u32,
    /// Packer working width `WW = PW + 1`: the product with one guard bit below it, which
    /// packer B shifts right for rounding.
    pub ww: u32,
    /// Whether a *normal* result can need rounding: the product has more significant bits
    /// than the output significand (`PW > man_bits + 1`). When false (HIF products into
    /// FP16), only subnormal results round, a normal result is exact, and a rounding
    /// carry can never reach the Inf exponent: the packer omits the logic for both.
    pub normal_rounds: bool,
    /// Constant added to the multiplier's exponent sum so that `pack_off >= 0`; for a
    /// normalized lane also so that the low `exp_bits` bits of `x + t` (`t` = 1 when the
    /// product's leading one is at `k_min + 1`) are the output exponent field of a normal
    /// result (minus one when normal results round), which then needs no subtractor.
    pub xpad: u32,
    /// Exponent offset of the multiplier output: value = `p * 2^(x - xoff)`.
    pub xoff: u32,
    /// Packer offset: output biased exponent = `b - pack_off`.
    pub pack_off: u32,
    /// Largest packer right shift: everything further rounds to zero (`PW + 1` for the
    /// general packer; `PW + ls_max + 1` for the normalized one, which shifts the product
    /// left-aligned by `ls_max`).
    pub rs_max: u32,
    /// Bits of a right shift (`0 ..= rs_max`); packer B uses only these bits of `rs`.
    pub rs_bits: u32,
    /// Lowest possible leading-one position of a non-zero product: the smallest non-zero
    /// entry significand (HIF: the smallest of `MANT_EIGHTHS`; FP16: a subnormal's 1)
    /// times the smallest non-zero scale significand (`1 << scale_align`, or
    /// `1 << SCALE_MAN_ALIGNED` when normalized).
    pub k_min: u32,
    /// Largest packer left shift, `man_bits - k_min` (a normal result shifts left by
    /// `man_bits - k`, a subnormal one by less).
    pub ls_max: u32,
    /// Bits of a left shift (`0 ..= ls_max`); packer B uses only these bits of `ls`.
    pub ls_bits: u32,
    /// Pipeline latency in cycles (register stages from `valid_in` to `valid_out`).
    pub latency: u32,
    /// A decode engine ([`LaneConfig::engine`]): `scale` is then UE4M4, the exponent domain
    /// every runtime scale format is rebased into ([`engine_scale_rebase`]).
    pub engine: bool,
}

/// The exponent-domain constant of a normalized scale decoder: a scale value is
/// `sig * 2^(exp - scale_off)` ([`crate::rtl`]'s `ScaleDec`, normalized form).
fn norm_scale_off(s: &MiniFloat) -> u32 {
    s.bias as u32 + SCALE_MAN_ALIGNED + s.man_bits - 1
}

/// The exponent-domain constant of a general (not normalized) scale decoder: a scale value
/// is `sig_aligned * 2^(max(e, 1) - scale_off)`.
fn general_scale_off(s: &MiniFloat) -> u32 {
    s.bias as u32 + SCALE_MAN_ALIGNED
}

/// What an engine adds to the exponent of a scale in format `s` so that it is in the
/// engine's (UE4M4) exponent domain. Normalized decoders (HIF engines): 0 for UE4M4, 1 for
/// E4M3 and SE4M3 (one mantissa bit fewer, same bias). General decoders (FP16-LUT engines,
/// whose significands are left-aligned to the same width): 0 for all three (same bias). The
/// engine's packer constants are those of UE4M4.
pub fn engine_scale_rebase(s: ScaleFormat, normalized: bool) -> u32 {
    let (mf, _) = scale_format(s);
    let (domain, _) = scale_format(ScaleFormat::UE4M4);
    let off = if normalized { norm_scale_off } else { general_scale_off };
    let d = off(&domain) as i64 - off(&mf) as i64;
    assert!(d >= 0, "UE4M4 has the largest normalized scale offset");
    d as u32
}

/// The exponent an engine's direct path gives a minifloat element in the HIF domain
/// (`value = (8 + m) / 8 * 2^(E - 127)`, as a HIF word `e` with bias `b` has `E = e + 127 - b`):
/// `127 + e - bias` for a normal code with exponent field `e`, and for a subnormal one with
/// its leading mantissa bit at `j`, `128 - bias - (man_bits - j)`.
pub fn direct_exponent(mf: &MiniFloat, e_field: u32, lead: Option<u32>) -> u32 {
    let hif_off = (1i64 << (LUT_BIAS_BITS - 1)) - 1;
    let e = match lead {
        None => hif_off + e_field as i64 - mf.bias as i64,
        Some(j) => hif_off + 1 - mf.bias as i64 - (mf.man_bits as i64 - j as i64),
    };
    assert!(e >= 0, "direct exponent below the domain");
    e as u32
}

/// Pipeline latency of a decode lane: LUT read, multiply, normalize, round/pack. An engine
/// adds its sparse correction unit's [`CORR_LATENCY`] ([`Params::latency`]).
pub const LATENCY: u32 = 4;

/// Latency of the sparse correction unit in clock cycles (stage A: match, unpack, align;
/// stage B1: add, leading-one index; stage B2: normalize, round, pack): a word presented
/// with `in_valid` in cycle `n` appears on `out_word` with `out_valid` in cycle `n + 3`
/// (`docs/hardware.md`, "Sparse correction unit").
pub const CORR_LATENCY: u32 = 3;

/// Minimum number of cycles between two adds into one bank of the four-stage FP32
/// accumulator (`FpAccDepth::SHALLOW`, the conventional tile's; `docs/hardware.md`, "FP32
/// block accumulator"): an add presented in cycle `n` is in the accumulator from cycle
/// `n + 4`. The HIF tile's deep pipeline adds to it (`FpAccDepth::spacing`).
pub const FPACC_SPACING: u32 = 4;

impl Params {
    /// Derives the parameters of a (validated) configuration.
    pub fn new(cfg: &LaneConfig) -> Params {
        let domain = if cfg.engine { ScaleFormat::UE4M4 } else { cfg.scale };
        let (scale, scale_signed) = scale_format(domain);
        assert!(
            scale.bits() == SCALE_BITS && scale.has_subnormals(),
            "scale formats are 8-bit with subnormals"
        );
        let scale_sign_mask = if scale_signed {
            1 << (scale.exp_bits + scale.man_bits)
        } else {
            0
        };
        let scale_align = SCALE_MAN_ALIGNED - scale.man_bits;
        let normalized = cfg.lut.hif().is_some();
        // Scale value = sig_aligned * 2^(ef - scale.bias - SCALE_MAN_ALIGNED), ef = max(e, 1).
        // Normalized: sig_aligned << sh * 2^(es - (man_bits - 1) - scale.bias -
        // SCALE_MAN_ALIGNED) with es = ef - sh + man_bits - 1 >= 0 (`ScaleDec`).
        let scale_off = scale.bias as u32 + SCALE_MAN_ALIGNED + if normalized { scale.man_bits - 1 } else { 0 };
        let (pw, base) = match cfg.lut.hif() {
            // HIF: x = e + ef + (127 - bias); value exponent = e - bias - 3 + ef - scale_off.
            Some(_) => {
                let max_m = *MANT_EIGHTHS.iter().max().unwrap();
                let max_s = (1u32 << (SCALE_MAN_ALIGNED + 1)) - 1;
                let pw = 32 - (max_m * max_s).leading_zeros();
                (pw, ((1u32 << (LUT_BIAS_BITS - 1)) - 1) + HIF_MANT_SHIFT + scale_off)
            }
            // FP16: x = max(fe, 1) + ef; value exponent = fe' - 15 - 10 + ef - scale_off.
            None => {
                let f = Ieee16::Fp16;
                let sig_bits = f.man_bits() + 1;
                (
                    sig_bits + SCALE_MAN_ALIGNED + 1,
                    f.bias() as u32 + f.man_bits() + scale_off,
                )
            }
        };
        let obias = cfg.output.bias() as u32;
        let normal_rounds = pw > cfg.output.man_bits() + 1;
        let min_entry_sig = match cfg.lut.hif() {
            Some(_) => *MANT_EIGHTHS.iter().min().unwrap(),
            None => 1,
        };
        let min_scale_sig = if normalized {
            1 << SCALE_MAN_ALIGNED
        } else {
            1 << scale_align
        };
        let k_min = 31 - (min_entry_sig * min_scale_sig).leading_zeros();
        let mut xpad = obias.saturating_sub(base);
        if normalized {
            // Output field = x + k - pack_off with k = k_min + (p >> k_min); make
            // pack_off = k_min - d (mod 2^exp_bits), d = 1 when the field minus one is wanted.
            let m = 1u32 << cfg.output.exp_bits();
            let want = (k_min + m - u32::from(normal_rounds)) % m;
            while (base + xpad - obias) % m != want {
                xpad += 1;
            }
        }
        let xoff = base + xpad;
        let ww = pw + 1;
        let ls_max = cfg.output.man_bits().saturating_sub(k_min);
        let rs_max = pw + 1 + if normalized { ls_max } else { 0 };
        let bits_for = |v: u32| 32 - v.leading_zeros();
        let p = Params {
            code_bits: cfg.code_bits,
            lut: cfg.lut,
            entry_bits: cfg.lut.bits(),
            scale,
            scale_signed,
            normalized,
            scale_sign_mask,
            scale_align,
            output: cfg.output,
            pw,
            ww,
            normal_rounds,
            xpad,
            xoff,
            pack_off: xoff - obias,
            rs_max,
            rs_bits: bits_for(rs_max),
            k_min,
            ls_max,
            ls_bits: bits_for(ls_max),
            latency: LATENCY + if cfg.engine { CORR_LATENCY } else { 0 },
            engine: cfg.engine,
        };
        assert!(p.x_max() + p.pw < (1 << XW), "exponent path too narrow");
        assert!(p.rs_max < (1 << SW) && cfg.output.man_bits() < (1 << SW));
        assert!(p.rs_bits <= SW && p.ls_bits <= SW);
        p
    }

    /// Largest offset exponent `x` the multiplier can produce.
    pub fn x_max(&self) -> u32 {
        let ef_max = (1 << self.scale.exp_bits) - 1 + if self.normalized { self.scale.man_bits - 1 } else { 0 };
        match self.lut.hif() {
            Some(_) => (sop_formats::hif::OCTAVES - 1) + ef_max + ((1 << LUT_BIAS_BITS) - 1) + self.xpad,
            None => ((1 << Ieee16::Fp16.exp_bits()) - 1) + ef_max + self.xpad,
        }
    }

    /// Output exponent-field value meaning Inf/NaN (`2^exp_bits - 1`).
    pub fn out_emax_field(&self) -> u32 {
        (1 << self.output.exp_bits()) - 1
    }

    /// The HIF format of the tables, if any.
    pub fn hif(&self) -> Option<HifFormat> {
        self.lut.hif()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_configs;

    #[test]
    fn terms_match_eighths() {
        for h in [HifFormat::Hif7, HifFormat::Hif8] {
            assert_eq!(hif_terms(h).len() as u32, h.mantissas());
        }
    }

    #[test]
    fn widths() {
        // The defaults, plus the HIF scale/output pairs they lack.
        let extra =
            [(ScaleFormat::E4M3, Ieee16::Bf16), (ScaleFormat::E4M3, Ieee16::Fp16)].map(|(scale, output)| LaneConfig {
                name: "extra".into(),
                lanes: 1,
                code_bits: 4,
                block: 16,
                scale,
                lut: LutEntry::Hif8,
                output,
                engine: false,
            });
        for c in default_configs().into_iter().chain(extra) {
            let p = Params::new(&c);
            match c.lut {
                LutEntry::Fp16 => assert_eq!((p.pw, p.ww), (16, 17)),
                _ => assert_eq!((p.pw, p.ww), (9, 10)),
            }
            // HIF products (9 bits) fit FP16's 11-bit significand, not BF16's 8 bits.
            let hif_fp16 = c.lut != LutEntry::Fp16 && c.output == Ieee16::Fp16;
            assert_eq!(p.normal_rounds, !hif_fp16, "{}", c.name);
            // Smallest HIF mantissa 1 (8 eighths) times a normalized scale significand
            // (>= 16); an FP16 subnormal entry can be 1, times the smallest UE4M4
            // significand 1 (E4M3: 1 << 1).
            let k_min = match (c.lut, c.scale) {
                (LutEntry::Fp16, ScaleFormat::UE4M4) => 0,
                (LutEntry::Fp16, _) => 1,
                _ => 7,
            };
            assert_eq!(p.k_min, k_min, "{}", c.name);
            assert_eq!(p.ls_max, c.output.man_bits() - k_min);
            assert_eq!(p.rs_bits, if c.lut == LutEntry::Fp16 { 5 } else { 4 });
            assert_eq!(p.normalized, c.lut != LutEntry::Fp16);
            if p.normalized {
                // The low exponent-field bits of x + t are the field (minus one if rounding).
                let m = 1 << c.output.exp_bits();
                assert_eq!((p.pack_off + u32::from(p.normal_rounds)) % m, p.k_min % m, "{}", c.name);
                // The values docs/hardware.md quotes.
                let xpad = match (c.scale, c.output) {
                    (ScaleFormat::UE4M4, Ieee16::Fp16) => 6,
                    (ScaleFormat::UE4M4, _) => 245,
                    (_, Ieee16::Fp16) => 7,
                    _ => 246,
                };
                assert_eq!(p.xpad, xpad, "{}", c.name);
            }
        }
    }
}
