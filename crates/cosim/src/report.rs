//! Mismatch reports.

use std::fmt;

use sop_formats::point::LutEntry;
use sop_formats::Ieee16;
use sop_hw::model::{entry_value, scale_value};
use sop_hw::LaneConfig;

/// What went wrong with one output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MismatchKind {
    /// `valid_out` was set as expected but the word differs.
    Word,
    /// A weight was issued but `valid_out` stayed low in the cycle its word was due.
    Missing,
    /// `valid_out` was set in a cycle with no weight due.
    Unexpected,
}

/// Where a weight came from in its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightPos {
    /// Flat block index (`row * blocks_per_row + block_in_row`).
    pub block: usize,
    /// Row (output feature).
    pub row: usize,
    /// Column (input feature).
    pub col: usize,
}

/// One output word that differs from the golden model, with everything needed to reproduce
/// it by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Configuration (top module) name.
    pub config: String,
    /// Layer (tensor) name, or the stream's name for synthetic stimulus.
    pub layer: String,
    /// What kind of mismatch.
    pub kind: MismatchKind,
    /// Lane.
    pub lane: usize,
    /// Cycle in which the output was visible (and sampled).
    pub cycle: u64,
    /// Cycle in which the weight was driven (`cycle - LATENCY`); for
    /// [`MismatchKind::Unexpected`] the cycle a weight would have been driven.
    pub issue_cycle: u64,
    /// Position in the layer (real layers), if known.
    pub pos: Option<WeightPos>,
    /// Stream tag of the weight (flat weight index in its layer, or beat index).
    pub tag: u32,
    /// Weight code.
    pub code: u32,
    /// Latched selection bit (table).
    pub sel: bool,
    /// Latched block-scale code.
    pub scale: u8,
    /// The LUT word at `{sel, code}`.
    pub entry: u32,
    /// The bias of table `sel` (HIF only).
    pub bias: i32,
    /// The weight's sparse correction, if any (engines).
    pub correction: Option<sop_hw::sparse::Correction>,
    /// The engine's mode when the weight was issued (None for fixed lanes).
    pub mode: Option<sop_hw::mode::Mode>,
    /// Expected word (None for [`MismatchKind::Unexpected`]).
    pub expected: Option<u16>,
    /// Actual word (None for [`MismatchKind::Missing`]).
    pub actual: Option<u16>,
    /// Scale format (for printing values).
    pub(crate) cfg: LaneConfig,
}

/// A value as decimal text: Rust's shortest round-trip form of the value as an `f64` (every
/// value printed here is a short dyadic fraction, so this is its exact decimal expansion
/// unless it has more than about 16 significant digits).
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        format!("{v}")
    }
}

fn value_of(out: Ieee16, w: u16) -> String {
    format!("{} {}", out.name(), num(out.decode(w as u32) as f64))
}

fn bits16(w: u16) -> String {
    let b = format!("{w:016b}");
    format!("{} {} {} {}", &b[0..4], &b[4..8], &b[8..12], &b[12..16])
}

impl Mismatch {
    /// The value of the entry with its table bias, as text.
    fn entry_text(&self) -> String {
        match entry_value(self.cfg.lut, self.entry, self.bias) {
            Ok(v) => num(v),
            Err(neg) => format!("{}Inf/NaN", if neg { "-" } else { "+" }),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            MismatchKind::Word => "wrong word",
            MismatchKind::Missing => "missing output (valid_out low)",
            MismatchKind::Unexpected => "unexpected output (valid_out high with no weight due)",
        };
        writeln!(f, "MISMATCH ({what}): config {}, layer {}", self.config, self.layer)?;
        match self.pos {
            Some(p) => write!(f, "  block {} (row {}, col {}), ", p.block, p.row, p.col)?,
            None => write!(f, "  beat {}, ", self.tag)?,
        }
        writeln!(
            f,
            "lane {}, issued in cycle {}, output in cycle {}",
            self.lane, self.issue_cycle, self.cycle
        )?;
        if self.kind != MismatchKind::Unexpected {
            let lut = self.cfg.lut;
            let wbits = lut.bits() as usize;
            let bias = if matches!(lut, LutEntry::Fp16) {
                String::new()
            } else {
                format!(" (bias {})", self.bias)
            };
            writeln!(
                f,
                "  inputs: code {:#x}, sel {}, scale code {:#04x} ({} {}), table {} entry {:#x} = {:0wbits$b} ({}{} {})",
                self.code,
                self.sel as u8,
                self.scale,
                self.cfg.scale.name(),
                num(scale_value(&self.cfg, self.scale)),
                self.sel as u8,
                self.entry,
                self.entry,
                lut.name(),
                bias,
                self.entry_text(),
            )?;
        }
        if let Some(m) = self.mode {
            writeln!(
                f,
                "  engine mode {m} (the scale code is {} in this mode)",
                m.scale.name()
            )?;
        }
        if let Some(c) = self.correction {
            writeln!(
                f,
                "  sparse {} BF16 {:#06x} ({})",
                if c.outlier { "outlier" } else { "residual" },
                c.value,
                value_of(Ieee16::Bf16, c.value)
            )?;
        }
        let out = self.cfg.output;
        match self.expected {
            Some(w) => writeln!(f, "  expected {w:#06x} = {} ({})", bits16(w), value_of(out, w))?,
            None => writeln!(f, "  expected no output")?,
        }
        match self.actual {
            Some(w) => write!(f, "  actual   {w:#06x} = {} ({})", bits16(w), value_of(out, w)),
            None => write!(f, "  actual   no output (valid_out low)"),
        }
    }
}
