//! Operating-point names: `<element>[+<dynamic>]s<scale>[b<block>][-<lut>]` or
//! `<element>-POT`.
//!
//! Examples: `E2M3sUE4M4` (block 16 by default, 6 + 8/16 = 6.5 bpw), `E2M1sE4M3b16`
//! (NVFP4-like, 4.5 bpw), `NF4+DD4sUE4M4b16` (a pair: 4 + (8 + 1)/16 bpw), `E4M3-POT`
//! (FP8 with one power-of-two scale per layer, 8.0 bpw), `NF4sF32b64`
//! (bitsandbytes-style, 4.5 bpw), `NF4+DD4sUE4M4-HIF7` (LUT entries in HIF7).
//! Names parse case-insensitively; [`OperatingPoint`]'s `Display` prints the canonical
//! form, which parses back to the same value (the default block 16 and the default LUT
//! entry format HIF8 are omitted).
//!
//! Bits per weight count every stored bit. [`OperatingPoint::nominal_bpw`] is the
//! per-weight part (codes, block scales, selection bits); [`OperatingPoint::layer_bits`]
//! adds the per-layer part (tensor scale, LUT contents) for a given shape.

use std::fmt;
use std::str::FromStr;

use crate::hif::HifFormat;

/// Default block size (weights per block scale).
pub const DEFAULT_BLOCK: u32 = 16;

/// What a weight code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Element {
    /// OCP FP4 E2M1 (4 bits).
    E2M1,
    /// OCP FP6 E2M3 (6 bits).
    E2M3,
    /// OCP FP6 E3M2 (6 bits).
    E3M2,
    /// OCP FP8 E4M3 (8 bits).
    E4M3,
    /// OCP FP8 E5M2 (8 bits).
    E5M2,
    /// NormalFloat4 (bitsandbytes), 16-entry LUT.
    NF4,
    /// Block-optimized float 4 (absmax-normalized), 16-entry LUT.
    BOF4,
    /// BOF4 with signed-absmax normalization, 16-entry LUT.
    BOF4S,
    /// 8 positive / 7 negative levels plus zero, for signed scales, 16-entry LUT.
    Split87,
    /// Symmetric levels for heavy-tailed blocks, 16-entry LUT.
    SH4,
    /// Symmetric INT4 levels, 16-entry LUT.
    INT4,
    /// Per-layer data-driven 16-entry codebook (the dynamic member of a pair).
    DD4,
    /// Per-layer data-driven 64-entry codebook drawn from HIF values (6-bit codes).
    DD6,
}

impl Element {
    /// Every element, in canonical order.
    pub const ALL: [Element; 13] = [
        Element::E2M1,
        Element::E2M3,
        Element::E3M2,
        Element::E4M3,
        Element::E5M2,
        Element::NF4,
        Element::BOF4,
        Element::BOF4S,
        Element::Split87,
        Element::SH4,
        Element::INT4,
        Element::DD4,
        Element::DD6,
    ];

    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Element::E2M1 => "E2M1",
            Element::E2M3 => "E2M3",
            Element::E3M2 => "E3M2",
            Element::E4M3 => "E4M3",
            Element::E5M2 => "E5M2",
            Element::NF4 => "NF4",
            Element::BOF4 => "BOF4",
            Element::BOF4S => "BOF4S",
            Element::Split87 => "Split87",
            Element::SH4 => "SH4",
            Element::INT4 => "INT4",
            Element::DD4 => "DD4",
            Element::DD6 => "DD6",
        }
    }

    /// Code width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Element::E2M3 | Element::E3M2 | Element::DD6 => 6,
            Element::E4M3 | Element::E5M2 => 8,
            _ => 4,
        }
    }

    /// Whether the element is decoded through a LUT (a codebook), rather than being a
    /// minifloat decoded by its format.
    pub const fn is_codebook(self) -> bool {
        !matches!(
            self,
            Element::E2M1 | Element::E2M3 | Element::E3M2 | Element::E4M3 | Element::E5M2
        )
    }

    /// Whether the element is fitted per layer (the dynamic member of a pair).
    pub const fn is_dynamic(self) -> bool {
        matches!(self, Element::DD4 | Element::DD6)
    }
}

/// Format of a per-block scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum ScaleFormat {
    /// UE4M4 (8 bits, unsigned, subnormals).
    UE4M4,
    /// UE8M0 (8 bits, power of two; MX).
    UE8M0,
    /// E4M3 used as an unsigned scale (NVFP4 style): its sign bit is spare.
    E4M3,
    /// E4M3 with its sign used: a signed scale (`S+E4M3`).
    SE4M3,
    /// IEEE binary32 absmax (bitsandbytes style); sign bit spare.
    F32,
}

impl ScaleFormat {
    /// Every scale format, in canonical order.
    pub const ALL: [ScaleFormat; 5] = [
        ScaleFormat::UE4M4,
        ScaleFormat::UE8M0,
        ScaleFormat::E4M3,
        ScaleFormat::SE4M3,
        ScaleFormat::F32,
    ];

    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            ScaleFormat::UE4M4 => "UE4M4",
            ScaleFormat::UE8M0 => "UE8M0",
            ScaleFormat::E4M3 => "E4M3",
            ScaleFormat::SE4M3 => "SE4M3",
            ScaleFormat::F32 => "F32",
        }
    }

    /// Stored width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            ScaleFormat::F32 => 32,
            _ => 8,
        }
    }

    /// Whether negative scales are meaningful.
    pub const fn is_signed(self) -> bool {
        matches!(self, ScaleFormat::SE4M3)
    }

    /// Whether the stored word has a spare bit (the unused sign of a positive scale) that
    /// can carry a pair's selection bit for free.
    pub const fn has_spare_bit(self) -> bool {
        matches!(self, ScaleFormat::E4M3 | ScaleFormat::F32)
    }
}

/// Format of a LUT entry (the word a codebook table stores).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum LutEntry {
    /// HIF7 words (7 bits).
    Hif7,
    /// HIF8 words (8 bits), the default.
    Hif8,
    /// IEEE FP16 words (16 bits): the conventional baseline.
    Fp16,
}

impl LutEntry {
    /// Canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            LutEntry::Hif7 => "HIF7",
            LutEntry::Hif8 => "HIF8",
            LutEntry::Fp16 => "FP16",
        }
    }

    /// Entry width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            LutEntry::Hif7 => 7,
            LutEntry::Hif8 => 8,
            LutEntry::Fp16 => 16,
        }
    }

    /// The HIF format, if this is one.
    pub const fn hif(self) -> Option<HifFormat> {
        match self {
            LutEntry::Hif7 => Some(HifFormat::Hif7),
            LutEntry::Hif8 => Some(HifFormat::Hif8),
            LutEntry::Fp16 => None,
        }
    }
}

/// Width of a LUT's bias register (per table), in bits.
pub const LUT_BIAS_BITS: u64 = 8;
/// Width of the per-tensor FP32 scale of block formats, in bits.
pub const TENSOR_SCALE_BITS: u64 = 32;
/// Width of the per-layer power-of-two exponent of `-POT` points, in bits.
pub const POT_EXPONENT_BITS: u64 = 8;

/// A named quantization operating point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OperatingPoint {
    /// One power-of-two scale per layer: `2^ceil(log2(amax / max))`, then RNE.
    Pot {
        /// Element format (a minifloat).
        element: Element,
    },
    /// Block-scaled codes, optionally a pair selected by one bit per block.
    Block {
        /// The element (or the fixed member of a pair).
        element: Element,
        /// The dynamic member of a pair (DD4 / DD6), selected per block.
        dynamic: Option<Element>,
        /// Per-block scale format.
        scale: ScaleFormat,
        /// Weights per block along the input dimension.
        block: u32,
        /// LUT entry format for codebook elements.
        lut: LutEntry,
    },
}

/// Why a name is not an operating point.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid operating point '{name}': {reason}")]
pub struct PointError {
    /// The name given.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl OperatingPoint {
    /// Bits per weight without per-layer overhead: code bits plus (scale bits plus the
    /// selection bit, unless it rides in a spare scale bit) divided by the block size.
    pub fn nominal_bpw(&self) -> f64 {
        match *self {
            OperatingPoint::Pot { element } => element.bits() as f64,
            OperatingPoint::Block {
                element, scale, block, ..
            } => element.bits() as f64 + (scale.bits() + self.selection_bits()) as f64 / block as f64,
        }
    }

    /// Selection bits stored per block: 1 for a pair, 0 when the scale has a spare bit or
    /// there is no pair.
    pub fn selection_bits(&self) -> u32 {
        match *self {
            OperatingPoint::Block {
                dynamic: Some(_),
                scale,
                ..
            } if !scale.has_spare_bit() => 1,
            _ => 0,
        }
    }

    /// Code width in bits.
    pub fn code_bits(&self) -> u32 {
        match *self {
            OperatingPoint::Pot { element } | OperatingPoint::Block { element, .. } => element.bits(),
        }
    }

    /// Block size (`None` for `-POT`).
    pub fn block(&self) -> Option<u32> {
        match *self {
            OperatingPoint::Pot { .. } => None,
            OperatingPoint::Block { block, .. } => Some(block),
        }
    }

    /// Number of LUTs the layer stores (0 for minifloat elements, 1 for a single
    /// codebook, 2 for a pair).
    pub fn tables(&self) -> u32 {
        match *self {
            OperatingPoint::Pot { .. } => 0,
            OperatingPoint::Block { element, dynamic, .. } => element.is_codebook() as u32 + dynamic.is_some() as u32,
        }
    }

    /// Exact stored bits of a `rows x cols` layer: codes (`rows * cols`, no padding),
    /// one scale (+ selection bit) per block (`ceil(cols / block)` blocks per row, the
    /// last one short when `cols` is not a multiple), the per-tensor scale, and every LUT
    /// entry plus its bias register. Outliers and residuals are counted by the quantizer.
    pub fn layer_bits(&self, rows: u64, cols: u64) -> u64 {
        let codes = rows * cols * self.code_bits() as u64;
        match *self {
            OperatingPoint::Pot { .. } => codes + POT_EXPONENT_BITS,
            OperatingPoint::Block { scale, block, lut, .. } => {
                let blocks = rows * cols.div_ceil(block as u64);
                let per_block = (scale.bits() + self.selection_bits()) as u64;
                let entries = 1u64 << self.code_bits();
                let tables = self.tables() as u64 * (entries * lut.bits() as u64 + LUT_BIAS_BITS);
                codes + blocks * per_block + TENSOR_SCALE_BITS + tables
            }
        }
    }

    /// Exact bits per weight of a `rows x cols` layer ([`Self::layer_bits`] / weights).
    pub fn layer_bpw(&self, rows: u64, cols: u64) -> f64 {
        self.layer_bits(rows, cols) as f64 / (rows * cols).max(1) as f64
    }
}

impl fmt::Display for OperatingPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OperatingPoint::Pot { element } => write!(f, "{}-POT", element.name()),
            OperatingPoint::Block {
                element,
                dynamic,
                scale,
                block,
                lut,
            } => {
                write!(f, "{}", element.name())?;
                if let Some(d) = dynamic {
                    write!(f, "+{}", d.name())?;
                }
                // `BOF4` + `sSE4M3` would read back as `BOF4S` + `sE4M3` (names are
                // case-insensitive): write the signed scale as `S+E4M3` whenever the element
                // followed by `S` is the start of another element's name.
                let ambiguous = scale == ScaleFormat::SE4M3
                    && dynamic.is_none()
                    && Element::ALL.iter().any(|e| {
                        e.name().len() > element.name().len()
                            && e.name()
                                .to_ascii_uppercase()
                                .starts_with(&format!("{}S", element.name().to_ascii_uppercase()))
                    });
                let scale_name = if ambiguous { "S+E4M3" } else { scale.name() };
                write!(f, "s{scale_name}")?;
                if block != DEFAULT_BLOCK {
                    write!(f, "b{block}")?;
                }
                if lut != LutEntry::Hif8 {
                    write!(f, "-{}", lut.name())?;
                }
                Ok(())
            }
        }
    }
}

const SCALE_NAMES: [(&str, ScaleFormat); 7] = [
    ("S+E4M3", ScaleFormat::SE4M3),
    ("UE4M4", ScaleFormat::UE4M4),
    ("UE8M0", ScaleFormat::UE8M0),
    ("SE4M3", ScaleFormat::SE4M3),
    ("FP32", ScaleFormat::F32),
    ("E4M3", ScaleFormat::E4M3),
    ("F32", ScaleFormat::F32),
];

const LUT_NAMES: [(&str, LutEntry); 3] = [
    ("HIF7", LutEntry::Hif7),
    ("HIF8", LutEntry::Hif8),
    ("FP16", LutEntry::Fp16),
];

impl FromStr for OperatingPoint {
    type Err = PointError;

    fn from_str(name: &str) -> Result<Self, PointError> {
        let err = |reason: String| PointError {
            name: name.to_string(),
            reason,
        };
        let up = name.trim().to_ascii_uppercase();
        if up.is_empty() {
            return Err(err("empty name".into()));
        }
        if let Some(el) = up.strip_suffix("-POT") {
            let element = Element::ALL
                .into_iter()
                .find(|e| e.name().eq_ignore_ascii_case(el))
                .ok_or_else(|| {
                    err(format!(
                        "unknown element '{el}' (expected one of {})",
                        names(&Element::ALL.map(|e| e.name()))
                    ))
                })?;
            if element.is_codebook() {
                return Err(err(format!(
                    "-POT takes a minifloat element, not the codebook {}",
                    element.name()
                )));
            }
            return Ok(OperatingPoint::Pot { element });
        }
        // Longest element prefix first, backtracking so that e.g. `BOF4sUE4M4` works.
        let mut candidates: Vec<Element> = Element::ALL
            .into_iter()
            .filter(|e| up.starts_with(&e.name().to_ascii_uppercase()))
            .collect();
        candidates.sort_by_key(|e| std::cmp::Reverse(e.name().len()));
        let mut last_err = None;
        for element in candidates {
            match parse_rest(element, &up[element.name().len()..]) {
                Ok(p) => return validate(p).map_err(err),
                Err(e) => last_err = Some(e),
            }
        }
        Err(err(last_err.unwrap_or_else(|| {
            format!(
                "unknown element (expected one of {}, or <element>-POT)",
                names(&Element::ALL.map(|e| e.name()))
            )
        })))
    }
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

fn parse_rest(element: Element, mut rest: &str) -> Result<OperatingPoint, String> {
    let mut dynamic = None;
    if let Some(r) = rest.strip_prefix('+') {
        let d = Element::ALL
            .into_iter()
            .filter(|e| r.starts_with(&e.name().to_ascii_uppercase()))
            .max_by_key(|e| e.name().len())
            .ok_or_else(|| "expected a dynamic codebook (DD4 or DD6) after '+'".to_string())?;
        dynamic = Some(d);
        rest = &r[d.name().len()..];
    }
    rest = rest
        .strip_prefix('S')
        .ok_or_else(|| format!("expected 's<scale>' after the element, found '{rest}'"))?;
    let (sname, scale) = SCALE_NAMES.iter().find(|(n, _)| rest.starts_with(n)).ok_or_else(|| {
        format!(
            "unknown scale format at '{rest}' (expected one of {})",
            names(&ScaleFormat::ALL.map(|s| s.name()))
        )
    })?;
    rest = &rest[sname.len()..];
    let mut block = DEFAULT_BLOCK;
    if let Some(r) = rest.strip_prefix('B') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        block = digits
            .parse()
            .map_err(|_| format!("expected a block size after 'b', found '{r}'"))?;
        rest = &r[digits.len()..];
    }
    let mut lut = LutEntry::Hif8;
    if let Some(r) = rest.strip_prefix('-') {
        lut = LUT_NAMES
            .iter()
            .find(|(n, _)| *n == r)
            .map(|&(_, l)| l)
            .ok_or_else(|| format!("unknown LUT entry format '{r}' (expected HIF7, HIF8 or FP16)"))?;
        rest = "";
    }
    if !rest.is_empty() {
        return Err(format!("unexpected trailing text '{rest}'"));
    }
    Ok(OperatingPoint::Block {
        element,
        dynamic,
        scale: *scale,
        block,
        lut,
    })
}

fn validate(p: OperatingPoint) -> Result<OperatingPoint, String> {
    if let OperatingPoint::Block {
        element,
        dynamic,
        block,
        ..
    } = p
    {
        if !(1..=4096).contains(&block) {
            return Err(format!("block size {block} is out of range (1..=4096)"));
        }
        if element.is_dynamic() && dynamic.is_some() {
            return Err("the first member of a pair must be a fixed codebook or format".into());
        }
        if let Some(d) = dynamic {
            if !d.is_dynamic() {
                return Err(format!(
                    "the second member of a pair must be DD4 or DD6, not {}",
                    d.name()
                ));
            }
            if d.bits() != element.bits() {
                return Err(format!(
                    "pair members differ in code width: {} has {} bits, {} has {}",
                    element.name(),
                    element.bits(),
                    d.name(),
                    d.bits()
                ));
            }
        }
    }
    Ok(p)
}
