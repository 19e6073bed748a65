//! The decode engine's mode register: which element path, code width and block-scale format
//! a layer streams with. One definition of the fields and of their bit layout, read by the
//! RTL generator (`rtl::engine`), the golden model ([`crate::model`]) and the co-simulation
//! driver (which writes the word through the load port before a layer streams).
//!
//! Word layout (8 bits, `load_mode`):
//!
//! | bits | field | values |
//! |---|---|---|
//! | 1:0 | element path | 0 LUT (tables + selection bit), 1 E2M1, 2 E2M3, 3 E3M2 (direct minifloat decode of the code) |
//! | 2 | code width | 0: 4-bit codes (the top two code bits are ignored), 1: 6-bit codes |
//! | 3 | scale family | 0: UE4M4, 1: E4M3 |
//! | 4 | scale signed | 1: the E4M3 sign bit is the scale's sign (SE4M3); reserved (0) with UE4M4 |
//! | 7:5 | reserved | 0 |
//!
//! The block size is not in the mode: the lanes take a `block_start` strobe with every
//! block's scale, so any block size (8 ... 64 and beyond) streams without a counter.

use sop_formats::point::{Element, OperatingPoint, ScaleFormat};

/// How an engine lane turns a code into an element value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementPath {
    /// Table lookup at `{sel, code}` (fixed and dynamic tables, per-block selection bit).
    Lut,
    /// The code is an OCP FP4 E2M1 word, decoded by logic (no table).
    E2M1,
    /// The code is an OCP FP6 E2M3 word, decoded by logic.
    E2M3,
    /// The code is an OCP FP6 E3M2 word, decoded by logic.
    E3M2,
}

impl ElementPath {
    /// Every path, in mode-field order (the field value is the index).
    pub const ALL: [ElementPath; 4] = [
        ElementPath::Lut,
        ElementPath::E2M1,
        ElementPath::E2M3,
        ElementPath::E3M2,
    ];

    /// The 2-bit mode field.
    pub const fn field(self) -> u8 {
        match self {
            ElementPath::Lut => 0,
            ElementPath::E2M1 => 1,
            ElementPath::E2M3 => 2,
            ElementPath::E3M2 => 3,
        }
    }

    /// The minifloat a direct path decodes (`None` for the LUT path).
    pub fn minifloat(self) -> Option<sop_formats::MiniFloat> {
        match self {
            ElementPath::Lut => None,
            ElementPath::E2M1 => Some(sop_formats::E2M1),
            ElementPath::E2M3 => Some(sop_formats::E2M3),
            ElementPath::E3M2 => Some(sop_formats::E3M2),
        }
    }

    /// Display name.
    pub const fn name(self) -> &'static str {
        match self {
            ElementPath::Lut => "LUT",
            ElementPath::E2M1 => "E2M1",
            ElementPath::E2M3 => "E2M3",
            ElementPath::E3M2 => "E3M2",
        }
    }
}

/// Bit position of the code-width field.
pub const CODE6_BIT: u32 = 2;
/// Bit position of the scale-family field (E4M3 when set).
pub const E4M3_BIT: u32 = 3;
/// Bit position of the scale-sign field (SE4M3 when set with [`E4M3_BIT`]).
pub const SIGNED_BIT: u32 = 4;
/// Mask of the bits a valid mode word may set.
pub const USED_MASK: u8 = 0x1f;

/// One engine mode: what the lanes decode until the next mode write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Element path.
    pub element: ElementPath,
    /// Code width in bits: 4 or 6.
    pub code_bits: u32,
    /// Block-scale format: UE4M4, E4M3 (sign bit ignored) or SE4M3.
    pub scale: ScaleFormat,
}

impl Mode {
    /// The 8-bit word written through `load_mode`.
    pub fn word(&self) -> u8 {
        let scale = match self.scale {
            ScaleFormat::E4M3 => 1 << E4M3_BIT,
            ScaleFormat::SE4M3 => (1 << E4M3_BIT) | (1 << SIGNED_BIT),
            _ => 0,
        };
        self.element.field() | (u8::from(self.code_bits == 6) << CODE6_BIT) | scale
    }

    /// The mode a word spells; `Err` for reserved bits or field combinations.
    pub fn from_word(w: u8) -> Result<Mode, String> {
        if w & !USED_MASK != 0 {
            return Err(format!("mode word {w:#04x} sets reserved bits 7:5"));
        }
        let scale = match ((w >> E4M3_BIT) & 1, (w >> SIGNED_BIT) & 1) {
            (0, 0) => ScaleFormat::UE4M4,
            (1, 0) => ScaleFormat::E4M3,
            (1, 1) => ScaleFormat::SE4M3,
            _ => return Err(format!("mode word {w:#04x}: a signed UE4M4 scale is reserved")),
        };
        Ok(Mode {
            element: ElementPath::ALL[(w & 3) as usize],
            code_bits: if (w >> CODE6_BIT) & 1 == 1 { 6 } else { 4 },
            scale,
        })
    }

    /// The mode that decodes layers quantized at `point`, if an engine can: a codebook
    /// element (one table, or a pair with a dynamic codebook) through the LUT path, or an
    /// E2M1/E2M3/E3M2 element without a dynamic member through its direct path; 8-bit
    /// block scales (UE4M4, E4M3, SE4M3). `Err` says what is missing, in a phrase that
    /// completes "cannot decode <point>: ...".
    pub fn for_point(point: &OperatingPoint) -> Result<Mode, String> {
        let OperatingPoint::Block {
            element,
            dynamic,
            scale,
            ..
        } = *point
        else {
            return Err(format!(
                "it has no block scales (a per-tensor power-of-two point with {}-bit codes); every decode lane multiplies by an 8-bit block scale",
                point.code_bits()
            ));
        };
        if !matches!(scale, ScaleFormat::UE4M4 | ScaleFormat::E4M3 | ScaleFormat::SE4M3) {
            return Err(format!(
                "its block scales are {}, the engine's are UE4M4, E4M3 or SE4M3 (8-bit words)",
                scale.name()
            ));
        }
        let code_bits = point.code_bits();
        if code_bits != 4 && code_bits != 6 {
            return Err(format!("its codes are {code_bits} bits, the engine's 4 or 6"));
        }
        let path = if element.is_codebook() {
            ElementPath::Lut
        } else {
            if dynamic.is_some() {
                return Err(format!(
                    "a pair with a minifloat member ({}) needs a table for the minifloat and one for the dynamic codebook; the engine decodes minifloats directly, without a second table",
                    element.name()
                ));
            }
            match element {
                Element::E2M1 => ElementPath::E2M1,
                Element::E2M3 => ElementPath::E2M3,
                Element::E3M2 => ElementPath::E3M2,
                other => return Err(format!("its element {} is not a 4- or 6-bit minifloat", other.name())),
            }
        };
        Ok(Mode {
            element: path,
            code_bits,
            scale,
        })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} c{} {} (word {:#04x})",
            self.element.name(),
            self.code_bits,
            self.scale.name(),
            self.word()
        )
    }
}

/// Every valid mode (4 paths x 2 code widths x 3 scale formats), in word order.
pub fn all_modes() -> Vec<Mode> {
    (0..=USED_MASK).filter_map(|w| Mode::from_word(w).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        let all = all_modes();
        assert_eq!(all.len(), 24);
        for m in all {
            assert_eq!(Mode::from_word(m.word()).unwrap(), m);
        }
        assert!(Mode::from_word(0x20).is_err());
        assert!(Mode::from_word(1 << SIGNED_BIT).is_err());
    }

    #[test]
    fn modes_of_points() {
        let m = |s: &str| Mode::for_point(&s.parse().unwrap());
        let e = m("E2M3sUE4M4").unwrap();
        assert_eq!(
            (e.element, e.code_bits, e.scale),
            (ElementPath::E2M3, 6, ScaleFormat::UE4M4)
        );
        let e = m("NF4+DD4sSE4M3b32").unwrap();
        assert_eq!(
            (e.element, e.code_bits, e.scale),
            (ElementPath::Lut, 4, ScaleFormat::SE4M3)
        );
        assert_eq!(m("E2M1sE4M3b16").unwrap().element, ElementPath::E2M1);
        assert_eq!(m("DD6sUE4M4").unwrap().code_bits, 6);
        assert!(m("E4M3-POT").unwrap_err().contains("no block scales"));
        assert!(m("NF4sUE8M0b32").unwrap_err().contains("UE8M0"));
    }
}
