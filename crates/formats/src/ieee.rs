//! IEEE FP16 and BF16, through the `half` crate (round-to-nearest-even, IEEE overflow).
//!
//! Unlike the OCP minifloats these keep IEEE semantics: overflow gives infinity, NaN
//! stays NaN. They are the MAC-array output words of the decode lane, whose packer
//! saturates before it reaches them (see `docs/spec.md`).

use half::{bf16, f16};

/// A 16-bit IEEE-style format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ieee16 {
    /// IEEE 754 binary16: 5 exponent bits (bias 15), 10 mantissa bits.
    Fp16,
    /// bfloat16: 8 exponent bits (bias 127), 7 mantissa bits.
    Bf16,
}

impl Ieee16 {
    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Ieee16::Fp16 => "FP16",
            Ieee16::Bf16 => "BF16",
        }
    }

    /// Exponent field width.
    pub const fn exp_bits(self) -> u32 {
        match self {
            Ieee16::Fp16 => 5,
            Ieee16::Bf16 => 8,
        }
    }

    /// Mantissa field width.
    pub const fn man_bits(self) -> u32 {
        15 - self.exp_bits()
    }

    /// Exponent bias.
    pub const fn bias(self) -> i32 {
        (1 << (self.exp_bits() - 1)) - 1
    }

    /// Largest finite magnitude code.
    pub const fn max_code(self) -> u32 {
        (((1 << self.exp_bits()) - 1) << self.man_bits()) - 1
    }

    /// Exact value of a 16-bit code.
    pub fn decode(self, code: u32) -> f32 {
        let c = code as u16;
        match self {
            Ieee16::Fp16 => f16::from_bits(c).to_f32(),
            Ieee16::Bf16 => bf16::from_bits(c).to_f32(),
        }
    }

    /// Round `x` to nearest even (IEEE: overflow gives Inf, NaN stays NaN).
    pub fn encode(self, x: f32) -> u32 {
        match self {
            Ieee16::Fp16 => f16::from_f32(x).to_bits() as u32,
            Ieee16::Bf16 => bf16::from_f32(x).to_bits() as u32,
        }
    }
}
