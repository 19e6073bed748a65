//! HIF: the hardware-friendly LUT output word of SOP.
//!
//! Every non-zero HIF value is `(-1)^s * 2^(e - bias) * m`, where the 3-bit exponent
//! field `e` selects one of eight octaves above a per-table `bias` register and the
//! mantissa `m` is a sum or a difference of two powers of two:
//!
//! | c (mantissa code) | m       | as shifts            | HIF7 | HIF8 |
//! |-------------------|---------|----------------------|------|------|
//! | 0                 | 1       | `x`                  | yes  | yes  |
//! | 1                 | 1 + 1/2 | `x + x>>1`           | yes  | yes  |
//! | 2                 | 1 + 1/4 | `x + x>>2`           | yes  | yes  |
//! | 3                 | 1 + 1/8 | `x + x>>3`           | yes  | yes  |
//! | 4                 | 2 - 1/4 | `x<<1 - x>>2`        | yes  | yes  |
//! | 5                 | 2 - 1/8 | `x<<1 - x>>3`        | zero | yes  |
//! | other             | 0       | (zero word)          | zero | zero |
//!
//! So multiplying a HIF value by anything (the block scale here, the activation in the
//! MAC array) is two shifts and one add or subtract: no multiplier.
//! Word layouts (MSB first): HIF7 = `s | e[2:0] | c[2:0]` (7 bits), HIF8 =
//! `s | e[2:0] | c[3:0]` (8 bits). HIF7 has 8 x 5 x 2 = **80** non-zero values, HIF8
//! 8 x 6 x 2 = **96** (plus zero), the counts reported for the paper's formats. The
//! canonical zero is `c` all ones, `e = 0`; every other code with an unused `c` also
//! decodes to (signed) zero, so decoding is total.
//!
//! Rounding ([`HifFormat::encode`]) picks the nearest value; a tie goes to the value
//! with the fewer significant bits (zero, then `m = 1` or `2`, then `1.5`, then `1.25` /
//! `1.75`, then `1.125` / `1.875`): the analogue of ties-to-even. Magnitudes above the
//! largest value saturate; below the smallest (`2^-bias`) they round to `2^-bias` or
//! zero (a tie at `2^-bias / 2` goes to zero).

use crate::minifloat::pow2;

/// A HIF word format (HIF7 or HIF8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HifFormat {
    /// 7-bit word, 5 mantissas per octave.
    Hif7,
    /// 8-bit word, 6 mantissas per octave.
    Hif8,
}

/// Default per-table bias: octaves `2^-7 .. 2^0`, so a codebook normalized to
/// `max |level| = 1` fits with 1.0 exactly representable.
pub const DEFAULT_BIAS: i32 = 7;

/// Number of octaves the 3-bit exponent field spans.
pub const OCTAVES: u32 = 8;

/// Mantissa of code `c`, in eighths (`m = MANT_EIGHTHS[c] / 8`), for `c < 6`.
pub const MANT_EIGHTHS: [u32; 6] = [8, 12, 10, 9, 14, 15];

/// The two shift-add terms of a mantissa code: `m * x = (x << a_shl) +- (x >> b_shr)`
/// with `a_shl` in {0, 1}; `(a_shl, subtract, b_shr)`, `b_shr = None` for a single term.
/// This is the table the hardware implements; [`MANT_EIGHTHS`] must agree with it
/// (checked by a test).
pub const MANT_TERMS: [(u32, bool, Option<u32>); 6] = [
    (0, false, None),
    (0, false, Some(1)),
    (0, false, Some(2)),
    (0, false, Some(3)),
    (1, true, Some(2)),
    (1, true, Some(3)),
];

impl HifFormat {
    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            HifFormat::Hif7 => "HIF7",
            HifFormat::Hif8 => "HIF8",
        }
    }

    /// Word width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            HifFormat::Hif7 => 7,
            HifFormat::Hif8 => 8,
        }
    }

    /// Width of the mantissa-code field `c`.
    pub const fn c_bits(self) -> u32 {
        self.bits() - 4
    }

    /// Number of mantissa codes in use (5 or 6); codes `>=` this decode to zero.
    pub const fn mantissas(self) -> u32 {
        match self {
            HifFormat::Hif7 => 5,
            HifFormat::Hif8 => 6,
        }
    }

    /// Number of distinct non-zero values (80 for HIF7, 96 for HIF8).
    pub const fn nonzero_values(self) -> u32 {
        2 * OCTAVES * self.mantissas()
    }

    /// Number of codes, `2^bits`.
    pub const fn num_codes(self) -> u32 {
        1 << self.bits()
    }

    /// The canonical zero word (`s = 0`, `e = 0`, `c` all ones).
    pub const fn zero_code(self) -> u32 {
        (1 << self.c_bits()) - 1
    }

    /// Splits a word into `(sign, e, c)`.
    pub const fn fields(self, code: u32) -> (bool, u32, u32) {
        let cb = self.c_bits();
        let code = code & (self.num_codes() - 1);
        (code >> (cb + 3) != 0, (code >> cb) & 7, code & ((1 << cb) - 1))
    }

    /// Assembles a word from its fields.
    pub const fn word(self, sign: bool, e: u32, c: u32) -> u32 {
        let cb = self.c_bits();
        ((sign as u32) << (cb + 3)) | ((e & 7) << cb) | (c & ((1 << cb) - 1))
    }

    /// Whether the word decodes to (signed) zero.
    pub const fn is_zero(self, code: u32) -> bool {
        self.fields(code).2 >= self.mantissas()
    }

    /// Exact value of `code` with table bias `bias` (`-100 <= bias <= 100`).
    pub fn decode(self, code: u32, bias: i32) -> f32 {
        let (s, e, c) = self.fields(code);
        let mag = if c >= self.mantissas() {
            0.0
        } else {
            MANT_EIGHTHS[c as usize] as f32 * pow2(e as i32 - bias - 3)
        };
        if s {
            -mag
        } else {
            mag
        }
    }

    /// Largest finite magnitude with bias `bias`.
    pub fn max(self, bias: i32) -> f32 {
        self.decode(self.word(false, 7, self.largest_c()), bias)
    }

    /// Smallest positive value with bias `bias`: `2^-bias`.
    pub fn min_positive(self, bias: i32) -> f32 {
        pow2(-bias)
    }

    fn largest_c(self) -> u32 {
        self.mantissas() - 1 // the 2 - 1/4 or 2 - 1/8 mantissa
    }

    /// The largest bias whose largest value still covers `max_abs` (so no table entry
    /// saturates) -- that is, the bias with the finest resolution. `max_abs <= 0` or
    /// non-finite gives [`DEFAULT_BIAS`].
    pub fn bias_for(self, max_abs: f32) -> i32 {
        if !(max_abs.is_finite() && max_abs > 0.0) {
            return DEFAULT_BIAS;
        }
        let mut bias = 100;
        while bias > -100 && self.max(bias) < max_abs {
            bias -= 1;
        }
        bias
    }

    /// Rounds `x` to the nearest HIF value with bias `bias` (rule in the module doc) and
    /// returns its word. NaN gives the canonical zero (callers reject NaN before); +-Inf
    /// saturate; -0 keeps its sign.
    pub fn encode(self, x: f32, bias: i32) -> u32 {
        if x.is_nan() {
            return self.zero_code();
        }
        let sign = x.is_sign_negative();
        let a = x.abs() as f64;
        let min = pow2(-bias) as f64;
        if a == 0.0 || a <= min / 2.0 {
            return self.word(sign, 0, self.zero_code());
        }
        if a >= self.max(bias) as f64 {
            return self.word(sign, 7, self.largest_c());
        }
        if a < min {
            return self.word(sign, 0, 0);
        }
        // Octave index e in 0..=7 with 2^(e-bias) <= a < 2^(e-bias+1).
        let mut e = (a.log2().floor() as i32) + bias;
        // log2 may be off by one at exact powers of two: fix up exactly.
        while e > 0 && a < pow2(e - bias) as f64 {
            e -= 1;
        }
        while e < 7 && a >= pow2(e + 1 - bias) as f64 {
            e += 1;
        }
        let e = e as u32;
        let m8 = a / pow2(e as i32 - bias - 3) as f64; // in eighths, [8, 16)
                                                       // Candidates within the octave, plus 16/8 (next octave's m = 1) below the top.
        let mut best: (f64, u32, u32, u32) = (f64::INFINITY, 0, 0, u32::MAX); // (dist, e, c, bits)
        for c in 0..self.mantissas() {
            let v = MANT_EIGHTHS[c as usize] as f64;
            consider(&mut best, (m8 - v).abs(), e, c, sig_bits(MANT_EIGHTHS[c as usize]));
        }
        if e < 7 {
            consider(&mut best, (16.0 - m8).abs(), e + 1, 0, 1);
        }
        self.word(sign, best.1, best.2)
    }

    /// All distinct values with bias `bias`, ascending (zero once).
    pub fn values(self, bias: i32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..self.num_codes())
            .map(|c| self.decode(c, bias))
            .map(|x| if x == 0.0 { 0.0 } else { x })
            .collect();
        v.sort_by(f32::total_cmp);
        v.dedup();
        v
    }
}

/// Significant bits of a mantissa given in eighths (8 -> 1, 12 -> 2, 10/14 -> 3, 9/15 -> 4).
fn sig_bits(eighths: u32) -> u32 {
    let t = eighths >> eighths.trailing_zeros();
    32 - t.leading_zeros()
}

fn consider(best: &mut (f64, u32, u32, u32), dist: f64, e: u32, c: u32, bits: u32) {
    if dist < best.0 || (dist == best.0 && bits < best.3) {
        *best = (dist, e, c, bits);
    }
}
