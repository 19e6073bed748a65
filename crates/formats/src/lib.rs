//! Bit-exact number formats of SOP: the single source of truth for every format the
//! quantizer, the bit-accurate hardware model and the RTL generator use.
//!
//! - [`minifloat`]: OCP MX minifloats (E2M1, E2M3, E3M2, E4M3, E5M2) and the UE8M0 and
//!   UE4M4 scales, one generic RNE-saturating codec.
//! - [`ieee`]: IEEE FP16 and BF16 through the `half` crate.
//! - [`hif`]: HIF7/HIF8, the shift-add LUT output words.
//! - [`pack`]: LSB-first bit packing of code streams.
//! - [`point`]: operating-point names and their exact bits per weight.
//!
//! [`Format`] names every format for the command line (`sop formats ...`).

pub mod hif;
pub mod ieee;
pub mod minifloat;
pub mod pack;
pub mod point;

use std::fmt;
use std::str::FromStr;

pub use hif::HifFormat;
pub use ieee::Ieee16;
pub use minifloat::{EncodeError, MiniFloat, Rounder, Specials, E2M1, E2M3, E3M2, E4M3, E5M2, UE4M4, UE8M0};
pub use point::{Element, LutEntry, OperatingPoint, ScaleFormat};

/// Every format the project defines, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A minifloat element or scale format.
    Mini(MiniFloat),
    /// E4M3 used as a signed block scale (`S+E4M3`): the E4M3 codes, sign included.
    SE4M3,
    /// IEEE FP16 or BF16.
    Ieee(Ieee16),
    /// A HIF LUT word with a table bias.
    Hif(HifFormat, i32),
}

/// Why a format name is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}' (known: E2M1, E2M3, E3M2, E4M3, E5M2, UE8M0, UE4M4, S+E4M3, FP16, BF16, HIF7, HIF8)")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Every format (HIF with the default bias), in listing order.
    pub fn all() -> Vec<Format> {
        vec![
            Format::Mini(E2M1),
            Format::Mini(E2M3),
            Format::Mini(E3M2),
            Format::Mini(E4M3),
            Format::Mini(E5M2),
            Format::Mini(UE8M0),
            Format::Mini(UE4M4),
            Format::SE4M3,
            Format::Ieee(Ieee16::Fp16),
            Format::Ieee(Ieee16::Bf16),
            Format::Hif(HifFormat::Hif7, hif::DEFAULT_BIAS),
            Format::Hif(HifFormat::Hif8, hif::DEFAULT_BIAS),
        ]
    }

    /// Canonical name.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Mini(m) => m.name,
            Format::SE4M3 => "S+E4M3",
            Format::Ieee(i) => i.name(),
            Format::Hif(h, _) => h.name(),
        }
    }

    /// Code width in bits.
    pub fn bits(&self) -> u32 {
        match self {
            Format::Mini(m) => m.bits(),
            Format::SE4M3 => E4M3.bits(),
            Format::Ieee(_) => 16,
            Format::Hif(h, _) => h.bits(),
        }
    }

    /// Number of codes.
    pub fn num_codes(&self) -> u32 {
        1 << self.bits()
    }

    /// Exact value of `code`; `code` must be below [`Self::num_codes`] (checked by
    /// callers that take codes from users).
    pub fn decode(&self, code: u32) -> f32 {
        match self {
            Format::Mini(m) => m.decode(code),
            Format::SE4M3 => E4M3.decode(code),
            Format::Ieee(i) => i.decode(code),
            Format::Hif(h, bias) => h.decode(code, *bias),
        }
    }

    /// Rounds `x` to a code (RNE, saturating; see each format for NaN), or says why the
    /// value has no code.
    pub fn try_encode(&self, x: f32) -> Result<u32, EncodeError> {
        match self {
            Format::Mini(m) => m.try_encode(x),
            Format::SE4M3 => E4M3.try_encode(x),
            Format::Ieee(i) => Ok(i.encode(x)),
            Format::Hif(h, bias) => {
                if x.is_nan() {
                    Err(EncodeError::Nan(h.name()))
                } else {
                    Ok(h.encode(x, *bias))
                }
            }
        }
    }

    /// Largest finite value.
    pub fn max(&self) -> f32 {
        match self {
            Format::Mini(m) => m.max(),
            Format::SE4M3 => E4M3.max(),
            Format::Ieee(i) => i.decode(i.max_code()),
            Format::Hif(h, bias) => h.max(*bias),
        }
    }

    /// Smallest positive value (smallest subnormal where the format has subnormals).
    pub fn min_positive(&self) -> f32 {
        match self {
            Format::Mini(m) => m.min_positive(),
            Format::SE4M3 => E4M3.min_positive(),
            Format::Ieee(i) => i.decode(1),
            Format::Hif(h, bias) => h.min_positive(*bias),
        }
    }

    /// `(exponent bits, mantissa bits, bias)` as listed by `sop formats list`; for HIF the
    /// mantissa column is the width of the mantissa-code field.
    pub fn fields(&self) -> (u32, u32, i32) {
        match self {
            Format::Mini(m) => (m.exp_bits, m.man_bits, m.bias),
            Format::SE4M3 => (E4M3.exp_bits, E4M3.man_bits, E4M3.bias),
            Format::Ieee(i) => (i.exp_bits(), i.man_bits(), i.bias()),
            Format::Hif(h, bias) => (3, h.c_bits(), *bias),
        }
    }

    /// Whether the format has a sign bit.
    pub fn signed(&self) -> bool {
        match self {
            Format::Mini(m) => m.signed,
            _ => true,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Case-insensitive; `SE4M3` and `S+E4M3` name the signed scale, `F16`/`FP16`,
    /// `BF16`, `HIF7`/`HIF8` (default bias).
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        let up = s.trim().to_ascii_uppercase();
        let f = match up.as_str() {
            "E2M1" | "FP4" => Format::Mini(E2M1),
            "E2M3" => Format::Mini(E2M3),
            "E3M2" => Format::Mini(E3M2),
            "E4M3" | "E4M3FN" => Format::Mini(E4M3),
            "E5M2" => Format::Mini(E5M2),
            "UE8M0" | "E8M0" => Format::Mini(UE8M0),
            "UE4M4" => Format::Mini(UE4M4),
            "S+E4M3" | "SE4M3" => Format::SE4M3,
            "FP16" | "F16" | "HALF" => Format::Ieee(Ieee16::Fp16),
            "BF16" => Format::Ieee(Ieee16::Bf16),
            "HIF7" => Format::Hif(HifFormat::Hif7, hif::DEFAULT_BIAS),
            "HIF8" => Format::Hif(HifFormat::Hif8, hif::DEFAULT_BIAS),
            _ => return Err(UnknownFormat(s.to_string())),
        };
        Ok(f)
    }
}

/// Formats `x` so that parsing the text gives back exactly `x` (Rust's shortest
/// round-trip representation); NaN prints as `nan`, infinities as `inf` / `-inf`.
pub fn exact_text(x: f32) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}
