//! Bit-accurate software (golden) model of the decode lane.
//!
//! Every value is computed through `sop-formats`: the LUT entry by
//! [`sop_formats::HifFormat::decode`] (with the table bias) or [`Ieee16::Fp16`] decode, the block scale
//! by the scale's [`MiniFloat`] decode, their product exactly in `f64` (both factors are
//! dyadic with at most 11 and 5 significant bits), and the output word by
//! [`Ieee16::encode`] of that product as an `f32` -- exact, because within
//! [`BIAS_MIN`]`..=`[`BIAS_MAX`] every product has at most 16 significant bits and an
//! exponent inside the `f32` range (checked by a test) -- followed by the packer rules:
//!
//! - overflow saturates to the largest finite output (never Inf);
//! - a zero product (zero entry or zero scale) gives `+0`; a non-zero product keeps
//!   sign = entry sign XOR scale sign, also when it rounds to zero;
//! - an FP16 LUT entry with exponent field 31 (Inf or NaN; never written by the
//!   quantizer) counts as an overflow: `+-max` finite output, or `+0` with a zero scale;
//! - the E4M3 code `S.1111.111` (NaN; never emitted by the quantizer) is taken as given,
//!   as the number its fields spell: `1.875 * 2^8 = 480`;
//! - with an unsigned E4M3 scale the sign bit of the scale code is ignored.

use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::{Ieee16, MiniFloat};

use crate::config::LaneConfig;
use crate::coverage::PackOutcome;
use crate::mode::Mode;
use crate::params::{scale_format, Params};
use crate::sparse::{correct, Correction};
use crate::HwError;

/// Smallest table bias the model (and the test benches) use: the bottom of the domain of
/// [`sop_formats::HifFormat::decode`]. The hardware register takes any 8-bit value.
pub const BIAS_MIN: i32 = -100;
/// Largest table bias the model uses (top of the domain of [`sop_formats::HifFormat::decode`]).
pub const BIAS_MAX: i32 = 100;

/// Contents of the two tables of a lane: table 0 is the fixed codebook, table 1 the
/// dynamic (DD4/DD6) one. Entries are raw LUT words (HIF7, HIF8 or FP16 bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// `entries[t][code]`, `2^code_bits` words per table.
    pub entries: [Vec<u32>; 2],
    /// Per-table bias (HIF only; ignored for FP16 tables), in [`BIAS_MIN`]`..=`[`BIAS_MAX`].
    pub bias: [i32; 2],
    /// The engine's mode register (`Some` exactly for engine configurations): written
    /// through the same load port, it says how codes are decoded (see [`crate::mode`]).
    pub mode: Option<Mode>,
}

impl Tables {
    /// All-zero tables (every entry the word 0) with bias 0, sized for `cfg`.
    pub fn zeroed(cfg: &LaneConfig) -> Tables {
        let n = 1usize << cfg.code_bits;
        Tables {
            entries: [vec![0; n], vec![0; n]],
            bias: [0, 0],
            mode: cfg.reset_mode(),
        }
    }

    /// Checks sizes, word widths and the bias range against `cfg`.
    pub fn check(&self, cfg: &LaneConfig) -> Result<(), HwError> {
        let n = 1usize << cfg.code_bits;
        let wmax = 1u32 << cfg.lut.bits();
        for (t, e) in self.entries.iter().enumerate() {
            if e.len() != n {
                return Err(HwError::Tables(format!(
                    "table {t} has {} entries, expected {n}",
                    e.len()
                )));
            }
            if let Some((i, w)) = e.iter().enumerate().find(|(_, w)| **w >= wmax) {
                return Err(HwError::Tables(format!(
                    "table {t} entry {i} = {w:#x} is wider than {} bits",
                    cfg.lut.bits()
                )));
            }
        }
        if self.mode.is_some() != cfg.engine {
            return Err(HwError::Tables(format!(
                "a mode register is {} for {} configuration",
                if cfg.engine { "required" } else { "not possible" },
                if cfg.engine { "an engine" } else { "a fixed-lane" }
            )));
        }
        if cfg.lut.hif().is_some() {
            for (t, b) in self.bias.iter().enumerate() {
                if !(BIAS_MIN..=BIAS_MAX).contains(b) {
                    return Err(HwError::Tables(format!(
                        "table {t} bias {b} is outside {BIAS_MIN}..={BIAS_MAX}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The 8-bit two's-complement code of table `t`'s bias register.
    pub fn bias_code(&self, t: usize) -> u8 {
        self.bias[t] as i8 as u8
    }
}

/// One cycle of a lane's input stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Beat {
    /// A weight code is presented this cycle.
    pub valid: bool,
    /// Block start: latch `scale` and `sel` (they apply to this cycle's weight already).
    pub block_start: bool,
    /// Block-scale code (read when `block_start`).
    pub scale: u8,
    /// Selection bit: table 0 or 1 (read when `block_start`).
    pub sel: bool,
    /// Weight code (read when `valid`).
    pub code: u32,
    /// The weight's sparse correction (outlier or residual; engines only, which have a
    /// correction unit): the stream driver turns it into the unit's position-based entry.
    pub corr: Option<Correction>,
}

impl Beat {
    /// A weight that continues the current block.
    pub fn weight(code: u32) -> Beat {
        Beat {
            valid: true,
            code,
            ..Beat::default()
        }
    }

    /// A weight that starts a block with the given scale and selection bit.
    pub fn start(code: u32, scale: u8, sel: bool) -> Beat {
        Beat {
            valid: true,
            block_start: true,
            scale,
            sel,
            code,
            corr: None,
        }
    }

    /// A cycle without a weight.
    pub fn idle() -> Beat {
        Beat::default()
    }
}

/// Exact value of a block-scale code, with the hardware's rules (unsigned E4M3 ignores
/// the sign bit; the E4M3 NaN code is taken as given).
pub fn scale_value(cfg: &LaneConfig, code: u8) -> f64 {
    scale_value_in(cfg.scale, code)
}

/// Exact value of a block-scale code in format `format` (rules of [`scale_value`]).
pub fn scale_value_in(format: ScaleFormat, code: u8) -> f64 {
    let (mf, signed) = scale_format(format);
    let mag_mask = (1u32 << (mf.exp_bits + mf.man_bits)) - 1;
    let neg = signed && (code as u32 & !mag_mask) != 0;
    let mag = code as u32 & mag_mask;
    let v = mf.decode(mag);
    let v = if v.is_finite() { v as f64 } else { as_given(&mf, mag) };
    if neg {
        -v
    } else {
        v
    }
}

/// The number a minifloat magnitude code's fields spell, ignoring special-value rules.
fn as_given(mf: &MiniFloat, mag: u32) -> f64 {
    let e = (mag >> mf.man_bits) as i32;
    let m = mag & ((1 << mf.man_bits) - 1);
    let (sig, exp) = if e == 0 {
        (m, 1 - mf.bias)
    } else {
        (m | (1 << mf.man_bits), e - mf.bias)
    };
    sig as f64 * (2f64).powi(exp - mf.man_bits as i32)
}

/// Exact value of a LUT word with bias `bias` (`None` for an FP16 Inf/NaN word, which
/// the lane treats as an overflow; the sign is then returned in the `Err`).
pub fn entry_value(lut: LutEntry, word: u32, bias: i32) -> Result<f64, bool> {
    match lut.hif() {
        Some(h) => Ok(h.decode(word, bias) as f64),
        None => {
            let v = Ieee16::Fp16.decode(word);
            if v.is_finite() {
                Ok(v as f64)
            } else {
                Err(word & 0x8000 != 0)
            }
        }
    }
}

/// Rounds an exact product to the output word with the packer's rules (saturation, `+0`
/// for an exact zero).
pub fn pack(output: Ieee16, prod: f64) -> u16 {
    pack_outcome(output, prod).0
}

/// [`pack`], and what the packer did to reach the word ([`crate::coverage::PackOutcome`]):
/// one computation, so that the functional coverage classifies exactly the rounding the
/// golden model performs.
pub fn pack_outcome(output: Ieee16, prod: f64) -> (u16, PackOutcome) {
    if prod == 0.0 {
        return (0, PackOutcome::Zero);
    }
    let f = prod as f32;
    debug_assert!(
        f as f64 == prod || f.is_infinite(),
        "product {prod} is not exact in f32"
    );
    let w = output.encode(f);
    let sign = w & 0x8000;
    let mag = w & 0x7fff;
    if mag > output.max_code() {
        return ((sign | output.max_code()) as u16, PackOutcome::OverflowMax);
    }
    let a = prod.abs();
    // Tiny before rounding (IEEE's underflow): below the smallest normal output.
    let tiny = a < (output.decode(1 << output.man_bits()) as f64);
    let v = output.decode(mag) as f64;
    let outcome = if v == a {
        if tiny {
            PackOutcome::SubExact
        } else {
            PackOutcome::Exact
        }
    } else if mag == 0 {
        PackOutcome::UnderflowZero
    } else {
        // The two neighbours of the product: the kept word and the one on the other side
        // (magnitude codes are monotonic); their midpoint is exact in f64.
        let up = v > a;
        let other = output.decode(if up { mag - 1 } else { mag + 1 }) as f64;
        let tie = (v + other) / 2.0 == a;
        match (tiny, tie, up) {
            (false, false, false) => PackOutcome::Down,
            (false, false, true) => PackOutcome::Up,
            (false, true, false) => PackOutcome::TieDown,
            (false, true, true) => PackOutcome::TieUp,
            (true, false, false) => PackOutcome::SubDown,
            (true, false, true) => PackOutcome::SubUp,
            (true, true, false) => PackOutcome::SubTieDown,
            (true, true, true) => PackOutcome::SubTieUp,
        }
    };
    (w as u16, outcome)
}

/// The output word for LUT word `word` (of a table with bias `bias`; ignored for FP16
/// entries) times the block scale `scale_code`, packed into the output format.
pub fn decode_entry(cfg: &LaneConfig, word: u32, bias: i32, scale_code: u8) -> u16 {
    decode_entry_in(cfg, cfg.scale, word, bias, scale_code)
}

/// [`decode_entry`] with the block scale in format `scale` (an engine's runtime format).
pub fn decode_entry_in(cfg: &LaneConfig, scale: ScaleFormat, word: u32, bias: i32, scale_code: u8) -> u16 {
    let s = scale_value_in(scale, scale_code);
    match entry_value(cfg.lut, word, bias) {
        Ok(e) => pack(cfg.output, e * s),
        Err(neg) => pack_overflow(cfg.output, neg, s),
    }
}

/// The word for an FP16 Inf/NaN entry (sign `neg`) times scale `s`: `+0` for a zero
/// scale, else the largest finite output of the product's sign.
pub(crate) fn pack_overflow(output: Ieee16, neg: bool, s: f64) -> u16 {
    if s == 0.0 {
        0
    } else {
        let sign = if neg != (s < 0.0) { 0x8000 } else { 0 };
        (sign | output.max_code()) as u16
    }
}

/// The output word for one weight: entry `code` of table `sel` (with that table's bias)
/// times the block scale `scale_code`, packed into the output format.
///
/// An engine ([`Tables::mode`] set) first keeps the low `mode.code_bits` bits of the code;
/// the LUT path then reads the table as a fixed lane does (with the mode's scale format), a
/// direct path decodes the low bits of the code that its minifloat has (4 for E2M1, 6 for
/// E2M3 and E3M2) as that minifloat's value (no table; the selection bit is unused).
pub fn decode_word(cfg: &LaneConfig, tables: &Tables, sel: bool, code: u32, scale_code: u8) -> u16 {
    let scale = tables.mode.map_or(cfg.scale, |m| m.scale);
    match element_value(cfg, tables, sel, code) {
        Ok(e) => pack(cfg.output, e * scale_value_in(scale, scale_code)),
        Err(neg) => pack_overflow(cfg.output, neg, scale_value_in(scale, scale_code)),
    }
}

/// The exact value of the element weight `code` stands for (before the block scale), as
/// [`decode_word`] reads it: entry `code` of table `sel` with that table's bias, or on an
/// engine's direct path the minifloat value of the code's low bits. `Err(sign)` for an FP16
/// Inf/NaN table word (the lanes treat it as an overflow).
pub fn element_value(cfg: &LaneConfig, tables: &Tables, sel: bool, code: u32) -> Result<f64, bool> {
    let t = sel as usize;
    let Some(mode) = tables.mode else {
        return entry_value(cfg.lut, tables.entries[t][code as usize], tables.bias[t]);
    };
    let code = code & ((1 << mode.code_bits) - 1);
    match mode.element.minifloat() {
        None => entry_value(cfg.lut, tables.entries[t][code as usize], tables.bias[t]),
        Some(mf) => Ok(mf.decode(code & ((1 << mf.bits()) - 1)) as f64),
    }
}

/// Runs a lane's input stream: the block registers start at their reset state (scale
/// code 0, table 0), and each valid beat yields one output word, in order. An engine
/// applies each weight's sparse correction ([`crate::sparse::correct`]).
///
/// # Panics
/// On a correction for a fixed lane (it has no correction unit).
pub fn run_lane(cfg: &LaneConfig, tables: &Tables, beats: &[Beat]) -> Vec<u16> {
    let mut scale = 0u8;
    let mut sel = false;
    let mut out = Vec::new();
    for b in beats {
        if b.block_start {
            scale = b.scale;
            sel = b.sel;
        }
        if b.valid {
            assert!(
                cfg.engine || b.corr.is_none(),
                "{}: no sparse correction unit",
                cfg.name
            );
            out.push(correct(
                cfg.output,
                decode_word(cfg, tables, sel, b.code, scale),
                b.corr,
            ));
        }
    }
    out
}

/// The exact product range check behind the model: every HIF value with a bias in
/// [`BIAS_MIN`]`..=`[`BIAS_MAX`] times every scale value is an `f32` (no rounding).
pub fn products_exact_in_f32(cfg: &LaneConfig) -> bool {
    let p = Params::new(cfg);
    let scales: Vec<f64> = (0..=255u8).map(|c| scale_value(cfg, c)).collect();
    let check = |e: f64| scales.iter().all(|s| ((e * s) as f32) as f64 == e * s);
    match p.hif() {
        Some(h) => (BIAS_MIN..=BIAS_MAX).all(|b| (0..h.num_codes()).all(|w| check(h.decode(w, b) as f64))),
        None => (0..1u32 << 16)
            .filter_map(|w| entry_value(cfg.lut, w, 0).ok())
            .all(check),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_configs;
    use sop_formats::hif::HifFormat;

    #[test]
    fn e4m3_nan_as_given() {
        let mut c = default_configs()[0].clone();
        c.scale = sop_formats::point::ScaleFormat::E4M3;
        assert_eq!(scale_value(&c, 0x7f), 480.0);
        assert_eq!(scale_value(&c, 0xff), 480.0);
        assert_eq!(scale_value(&c, 0x80), 0.0);
        c.scale = sop_formats::point::ScaleFormat::SE4M3;
        assert_eq!(scale_value(&c, 0xff), -480.0);
        assert_eq!(scale_value(&c, 0xb8), -1.0);
    }

    #[test]
    fn block_latch_semantics() {
        let c = &default_configs()[0];
        let mut t = Tables::zeroed(c);
        t.entries[0][1] = HifFormat::Hif8.encode(1.0, 7);
        t.entries[1][1] = HifFormat::Hif8.encode(-0.5, 7);
        t.bias = [7, 7];
        let one = sop_formats::UE4M4.encode(1.0) as u8;
        let two = sop_formats::UE4M4.encode(2.0) as u8;
        let beats = [
            Beat::weight(1),            // before any block: scale 0 -> +0
            Beat::start(1, one, false), // 1.0
            Beat::weight(1),            // 1.0
            Beat {
                valid: false,
                block_start: true,
                scale: two,
                sel: true,
                code: 0,
                corr: None,
            },
            Beat::weight(1), // -0.5 * 2 = -1
        ];
        let out = run_lane(c, &t, &beats);
        assert_eq!(out, vec![0, 0x3c00, 0x3c00, 0xbc00]);
    }
}
