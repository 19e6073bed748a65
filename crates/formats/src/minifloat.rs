//! Small binary floating-point formats described by their field widths.
//!
//! One generic codec serves every minifloat of the project (E2M1, E2M3, E3M2, E4M3,
//! E5M2, UE8M0, UE4M4): a [`MiniFloat`] is a plain description (sign bit or not,
//! exponent and mantissa widths, bias, special-value rule) and `encode`/`decode` are
//! written once against it. Encoding is round-to-nearest-even on the combined
//! exponent-mantissa field (so a tie that carries into the exponent is handled exactly as
//! IEEE 754 and `ml_dtypes` do) and saturates to the largest finite value.

/// Which codes of a format are not finite numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Specials {
    /// Every code is a finite number (E2M1, E2M3, E3M2, UE4M4).
    None,
    /// Only the all-ones magnitude (`S.1111.111`) is NaN; no infinities (OCP E4M3 "fn").
    NanAllOnes,
    /// IEEE-754 style: maximum exponent field means Inf (mantissa 0) or NaN (E5M2).
    Ieee,
    /// The all-ones code is NaN and there is no zero (OCP UE8M0 scale: `2^(code-127)`).
    E8M0,
}

/// A binary minifloat of at most 8 bits, with OCP MX semantics.
///
/// Invariants: `sign as u32 + exp_bits + man_bits <= 8`, `exp_bits >= 1`. Values are
/// `(-1)^s * 2^(e - bias) * 1.m` for exponent field `e >= 1`, and subnormals
/// `(-1)^s * 2^(1 - bias) * 0.m` for `e == 0` (except [`Specials::E8M0`], which has no
/// subnormals: field 0 is `2^-bias`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MiniFloat {
    /// Canonical name, e.g. `"E2M3"`.
    pub name: &'static str,
    /// Whether the top bit is a sign bit.
    pub signed: bool,
    /// Exponent field width in bits.
    pub exp_bits: u32,
    /// Mantissa (fraction) field width in bits.
    pub man_bits: u32,
    /// Exponent bias.
    pub bias: i32,
    /// Which codes are NaN/Inf.
    pub specials: Specials,
}

/// Why a value has no code in a format.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// NaN given to a format that has no NaN code.
    #[error("NaN has no code in {0} (the format has no NaN)")]
    Nan(&'static str),
    /// A negative value given to an unsigned format.
    #[error("negative value {1} has no code in unsigned format {0}")]
    Negative(&'static str, f32),
    /// Zero given to a format without zero (UE8M0).
    #[error("zero has no code in {0} (the format has no zero)")]
    Zero(&'static str),
}

impl MiniFloat {
    /// Total code width in bits.
    pub const fn bits(&self) -> u32 {
        self.signed as u32 + self.exp_bits + self.man_bits
    }

    /// Number of codes, `2^bits`.
    pub const fn num_codes(&self) -> u32 {
        1 << self.bits()
    }

    const fn mag_mask(&self) -> u32 {
        (1 << (self.exp_bits + self.man_bits)) - 1
    }

    const fn sign_bit(&self) -> u32 {
        1 << (self.exp_bits + self.man_bits)
    }

    /// Whether the format has subnormals (exponent field 0 with no implicit one).
    pub const fn has_subnormals(&self) -> bool {
        !matches!(self.specials, Specials::E8M0)
    }

    /// Largest finite magnitude code (exponent and mantissa fields, sign clear).
    pub const fn max_code(&self) -> u32 {
        match self.specials {
            Specials::None => self.mag_mask(),
            Specials::NanAllOnes | Specials::E8M0 => self.mag_mask() - 1,
            Specials::Ieee => ((1 << self.exp_bits) - 2) << self.man_bits | ((1 << self.man_bits) - 1),
        }
    }

    /// The canonical NaN code, if the format has one.
    pub const fn nan_code(&self) -> Option<u32> {
        match self.specials {
            Specials::None => None,
            Specials::NanAllOnes | Specials::E8M0 => Some(self.mag_mask()),
            // Quiet NaN: all-ones exponent, top mantissa bit set (E5M2: 0x7E).
            Specials::Ieee => Some((((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))),
        }
    }

    /// Smallest exponent of a normal number, `1 - bias` (or `-bias` without subnormals).
    pub const fn emin(&self) -> i32 {
        if self.has_subnormals() {
            1 - self.bias
        } else {
            -self.bias
        }
    }

    /// Largest finite value.
    pub fn max(&self) -> f32 {
        self.decode(self.max_code())
    }

    /// Smallest positive value (the smallest subnormal, or `2^-bias` without subnormals).
    pub fn min_positive(&self) -> f32 {
        if self.has_subnormals() {
            self.decode(1)
        } else {
            self.decode(0)
        }
    }

    /// Smallest positive normal value, `2^emin`.
    pub fn min_normal(&self) -> f32 {
        (self.emin() as f32).exp2()
    }

    /// Exact value of `code` (bits above [`Self::bits`] are ignored). NaN codes give NaN,
    /// Inf codes give infinities. Never rounds: every code of every format is an f32.
    pub fn decode(&self, code: u32) -> f32 {
        let code = code & (self.num_codes() - 1);
        let neg = self.signed && code & self.sign_bit() != 0;
        let mag = code & self.mag_mask();
        let e = (mag >> self.man_bits) as i32;
        let m = mag & ((1 << self.man_bits) - 1);
        let v = match self.specials {
            Specials::NanAllOnes | Specials::E8M0 if mag == self.mag_mask() => f32::NAN,
            Specials::Ieee if e == (1 << self.exp_bits) - 1 => {
                if m == 0 {
                    f32::INFINITY
                } else {
                    f32::NAN
                }
            }
            _ => {
                let (sig, exp) = if e == 0 && self.has_subnormals() {
                    (m, 1 - self.bias)
                } else {
                    (m | (1 << self.man_bits), e - self.bias)
                };
                // sig < 2^9 and exp within f32 range: the product is exact.
                sig as f32 * pow2(exp - self.man_bits as i32)
            }
        };
        if neg {
            -v
        } else {
            v
        }
    }

    /// Round `x` to the nearest code: round-to-nearest-even, saturating to the largest
    /// finite value (also for +-Inf).
    ///
    /// Values the format cannot hold map as follows (documented, never a panic):
    /// NaN gives the NaN code, or +0 for formats without NaN; a negative value in an
    /// unsigned format gives the smallest code (zero for UE4M4); zero in UE8M0 gives the
    /// smallest code `2^-127`. Use [`Self::try_encode`] to get these cases as errors.
    /// UE8M0 has no mantissa bits, so ties-to-even on the significand means a tie
    /// (`1.5 * 2^k`) rounds up, exactly as `ml_dtypes` does.
    pub fn encode(&self, x: f32) -> u32 {
        match self.try_encode(x) {
            Ok(c) => c,
            Err(EncodeError::Nan(_)) => 0,
            Err(EncodeError::Negative(..)) | Err(EncodeError::Zero(_)) => 0,
        }
    }

    /// Like [`Self::encode`], but NaN without a NaN code, negatives in an unsigned format
    /// and zero in UE8M0 are errors.
    pub fn try_encode(&self, x: f32) -> Result<u32, EncodeError> {
        if x.is_nan() {
            return self.nan_code().ok_or(EncodeError::Nan(self.name));
        }
        let neg = x.is_sign_negative();
        if neg && !self.signed {
            if x == 0.0 && self.has_subnormals() {
                return Ok(0);
            }
            return Err(EncodeError::Negative(self.name, x));
        }
        let bits = x.to_bits() & 0x7fff_ffff;
        let sign = if neg { self.sign_bit() } else { 0 };
        if bits == 0 {
            if !self.has_subnormals() {
                return Err(EncodeError::Zero(self.name));
            }
            return Ok(sign);
        }
        Ok(sign | self.round_magnitude(bits))
    }

    /// RNE of a positive finite-or-infinite f32 (given by its bits) to a magnitude code.
    fn round_magnitude(&self, bits: u32) -> u32 {
        if bits >= 0x7f80_0000 {
            return self.max_code();
        }
        let fe = (bits >> 23) as i32;
        let fm = bits & 0x7f_ffff;
        // value = sig * 2^(exp2 - 23), sig has its leading one at bit `lead`.
        let (sig, exp2) = if fe == 0 {
            (fm, -126)
        } else {
            (fm | 0x80_0000, fe - 127)
        };
        let lead = 31 - sig.leading_zeros() as i32; // 23 for normal f32
        let value_exp = exp2 + lead - 23; // floor(log2(value))
        let m = self.man_bits as i32;
        // Quantum of the target at this magnitude: 2^q.
        let q = value_exp.max(self.emin()) - m;
        let shift = q - (exp2 - 23); // >= 0 always (m <= 23, emin >= -127)
        let n = rne_shift(sig as u64, shift as u32);
        // n is the significand in units of 2^q; may have carried to 2^(m+1).
        let (field_e, mant) = if n < (1u64 << m) {
            if self.has_subnormals() {
                (0u64, n) // subnormal (only when q == emin - m) or zero
            } else {
                // No subnormals: everything below 2^emin rounds within [0, 2^emin].
                // n < 1 only possible when n == 0 (m == 0): below half of 2^-bias.
                return 0;
            }
        } else {
            let (n, q) = if n >= (2u64 << m) { (n >> 1, q + 1) } else { (n, q) };
            let unbiased = q + m;
            let fe = unbiased + self.bias;
            if fe >= (1 << self.exp_bits) {
                return self.max_code();
            }
            (fe as u64, n - (1u64 << m))
        };
        let code = ((field_e << m) | mant) as u32;
        code.min(self.max_code())
    }
}

/// A precomputed, branch-light RNE rounder of f32 values to the values of one minifloat
/// (see [`MiniFloat::rounder`]): the hot path of block quantization, where a weight is
/// rounded under many candidate scales and only the rounded *value* is needed.
///
/// For every finite or infinite `x`, `round(x)` is bit-for-bit
/// `format.decode(format.encode(x))` (round to nearest, ties to even, saturating to the
/// largest finite value, sign of zero kept; negatives give `+0` in an unsigned format).
/// NaN inputs give an unspecified finite value (callers reject NaN first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rounder {
    /// Largest finite value of the format.
    max: f32,
    /// Smallest normal exponent `emin`.
    emin: i32,
    /// Mantissa width.
    man_bits: i32,
    /// Exponent bias.
    bias: i32,
    /// Position of the sign bit in a code (`exp_bits + man_bits`).
    sign_shift: u32,
    /// Whether the format has a sign bit.
    signed: bool,
}

impl Rounder {
    /// Nearest format value to `x` (module rules; equal to `decode(encode(x))`).
    ///
    /// Branch-free, so that loops over blocks vectorize: the quantum exponent is
    /// `clamp(floor(log2 |x|), emin, 100) - m` (every format's maximum is far below `2^100`, so
    /// the upper clamp only affects inputs that saturate anyway), `|x| / 2^e` is rounded to an
    /// integer by adding and subtracting `2^23` (exact IEEE nearest-even), and the result is
    /// clamped to `max`, which also covers +Inf and the NaN-reserved top code of E4M3.
    #[inline]
    pub fn round(&self, x: f32) -> f32 {
        const MAGIC: f32 = 8_388_608.0; // 2^23
        let bits = x.to_bits();
        let sign = bits & 0x8000_0000;
        let abits = bits & 0x7fff_ffff;
        let a = f32::from_bits(abits);
        let e = (((abits >> 23) as i32) - 127).max(self.emin).min(100) - self.man_bits;
        // a / 2^e < 2^(m+1) is exact (or huge, for saturating inputs).
        let y = a * pow2_normal(-e);
        let r = (y + MAGIC) - MAGIC;
        let v = (r * pow2_normal(e)).min(self.max);
        let v = f32::from_bits(v.to_bits() | sign);
        if self.signed || sign == 0 {
            v
        } else {
            0.0
        }
    }

    /// The code of [`Self::round`]`(x)`: bit for bit `format.encode(x)` for every non-NaN `x`
    /// (the rounded value's f32 fields repacked into the format's fields).
    #[inline]
    pub fn encode(&self, x: f32) -> u32 {
        self.code_of(self.round(x))
    }

    /// The code of `v`, which must be a value of the format (for instance a result of
    /// [`Self::round`]); the result is unspecified for other inputs. Branch-free.
    #[inline]
    pub fn code_of(&self, v: f32) -> u32 {
        let bits = v.to_bits();
        let sign = ((bits >> 31) << self.sign_shift) & (self.signed as u32).wrapping_neg();
        let a = bits & 0x7fff_ffff;
        let fe = (a >> 23) as i32 - 127;
        // Subnormal or zero: an integer number n < 2^m of quanta 2^(emin - m); adding 2^23 puts
        // n in the low mantissa bits exactly (branch-free, unlike a saturating float-to-int).
        const MAGIC: f32 = 8_388_608.0; // 2^23
        let sub = (f32::from_bits(a) * pow2_normal(self.man_bits - self.emin) + MAGIC).to_bits() - MAGIC.to_bits();
        let norm =
            (((fe + self.bias) as u32) << self.man_bits) | ((a >> (23 - self.man_bits)) & ((1 << self.man_bits) - 1));
        // All ones when fe < emin (subnormal or zero), else zero: a mask select, no branch.
        let is_sub = ((fe - self.emin) >> 31) as u32;
        sign | (sub & is_sub) | (norm & !is_sub)
    }

    /// Largest finite value of the format (the saturation value).
    pub fn max(&self) -> f32 {
        self.max
    }
}

impl MiniFloat {
    /// A fast value rounder for this format, or `None` for formats without subnormals
    /// (UE8M0), whose grid the rounder does not model. Requires `man_bits >= 1`,
    /// `emin - man_bits >= -126`, `man_bits - emin <= 127` and `max < 2^100` (true for every
    /// format of this crate that has subnormals).
    pub fn rounder(&self) -> Option<Rounder> {
        if !self.has_subnormals() {
            return None;
        }
        Some(Rounder {
            max: self.max(),
            emin: self.emin(),
            man_bits: self.man_bits as i32,
            bias: self.bias,
            sign_shift: self.exp_bits + self.man_bits,
            signed: self.signed,
        })
    }
}

/// `2^e` for a normal exponent `-126 <= e <= 127` (no range check: callers guarantee it).
#[inline]
fn pow2_normal(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// `2^e` as an f32 for `-149 <= e <= 127`, exactly.
pub(crate) fn pow2(e: i32) -> f32 {
    if e >= -126 {
        f32::from_bits(((e + 127) as u32) << 23)
    } else {
        f32::from_bits(1u32 << (e + 149))
    }
}

/// `x / 2^shift` rounded to nearest, ties to even.
pub(crate) fn rne_shift(x: u64, shift: u32) -> u64 {
    if shift == 0 {
        return x;
    }
    if shift > 63 {
        return 0; // x < 2^25 here, far below half an ulp
    }
    let q = x >> shift;
    let rem = x & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// OCP FP4 E2M1: bias 1, max 6, no NaN/Inf.
pub const E2M1: MiniFloat = MiniFloat {
    name: "E2M1",
    signed: true,
    exp_bits: 2,
    man_bits: 1,
    bias: 1,
    specials: Specials::None,
};
/// OCP FP6 E2M3: bias 1, max 7.5, no NaN/Inf.
pub const E2M3: MiniFloat = MiniFloat {
    name: "E2M3",
    signed: true,
    exp_bits: 2,
    man_bits: 3,
    bias: 1,
    specials: Specials::None,
};
/// OCP FP6 E3M2: bias 3, max 28, no NaN/Inf.
pub const E3M2: MiniFloat = MiniFloat {
    name: "E3M2",
    signed: true,
    exp_bits: 3,
    man_bits: 2,
    bias: 3,
    specials: Specials::None,
};
/// OCP FP8 E4M3 ("fn"): bias 7, max 448, `S.1111.111` is NaN, no Inf.
pub const E4M3: MiniFloat = MiniFloat {
    name: "E4M3",
    signed: true,
    exp_bits: 4,
    man_bits: 3,
    bias: 7,
    specials: Specials::NanAllOnes,
};
/// OCP FP8 E5M2: bias 15, IEEE-like (Inf and NaN), max 57344.
pub const E5M2: MiniFloat = MiniFloat {
    name: "E5M2",
    signed: true,
    exp_bits: 5,
    man_bits: 2,
    bias: 15,
    specials: Specials::Ieee,
};
/// OCP UE8M0 scale: `2^(code - 127)`, 0xFF is NaN, no zero, no sign.
pub const UE8M0: MiniFloat = MiniFloat {
    name: "UE8M0",
    signed: false,
    exp_bits: 8,
    man_bits: 0,
    bias: 127,
    specials: Specials::E8M0,
};
/// UE4M4 scale: unsigned, bias 7, subnormals, code 0 is zero, all 256 codes finite (max 496).
pub const UE4M4: MiniFloat = MiniFloat {
    name: "UE4M4",
    signed: false,
    exp_bits: 4,
    man_bits: 4,
    bias: 7,
    specials: Specials::None,
};
