//! Decode-lane configurations: what one generated top module is, and its file format.
//!
//! A configuration file is TOML: either one configuration as top-level keys, or several
//! as an array of `[[config]]` tables (see `docs/hardware.md`):
//!
//! ```toml
//! [[config]]
//! name = "sop_c4_hif8_ue4m4_fp16"
//! lanes = 4
//! code_bits = 4
//! block = 16
//! scale = "UE4M4"
//! lut = "HIF8"
//! output = "FP16"
//! ```
//!
//! Format names are the canonical names of `sop-formats` (case-insensitive on input,
//! `SE4M3` and `S+E4M3` both name the signed scale).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sop_formats::point::{Element, LutEntry, OperatingPoint, ScaleFormat, DEFAULT_BLOCK};
use sop_formats::Ieee16;

use crate::HwError;

/// Largest number of lanes a top may have.
pub const MAX_LANES: u32 = 64;
/// Largest block size a configuration may name.
pub const MAX_BLOCK: u32 = 1 << 16;

/// One generated decode top: `lanes` identical decode lanes sharing a table load port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    /// Top-module name (and file stem of the emitted Verilog); a plain Verilog identifier.
    pub name: String,
    /// Number of decode lanes (1 ..= [`MAX_LANES`]).
    pub lanes: u32,
    /// Code width in bits: 4 (16-entry tables) or 6 (64-entry tables).
    pub code_bits: u32,
    /// Weights per block scale (for documentation and stream drivers; the hardware takes
    /// a `block_start` strobe and does not count).
    #[serde(default = "default_block")]
    pub block: u32,
    /// Block-scale format: UE4M4, E4M3 (unsigned use, sign bit ignored) or SE4M3.
    #[serde(with = "scale_name")]
    pub scale: ScaleFormat,
    /// LUT entry format: HIF7, HIF8 or FP16 (the conventional baseline).
    #[serde(with = "lut_name")]
    pub lut: LutEntry,
    /// Output word format: FP16 or BF16.
    #[serde(with = "output_name")]
    pub output: Ieee16,
    /// A decode engine (`true`): a per-layer mode register ([`crate::mode`]) chooses the
    /// element path (LUT, or direct E2M1/E2M3/E3M2 decode), the code width (4 or 6; the
    /// tables have `2^code_bits` entries, so an engine has `code_bits = 6`) and the scale
    /// format; `scale` is then UE4M4, the exponent domain. A HIF engine feeds the direct
    /// decode into its shift-add multiplier, an FP16-LUT engine (the baseline) into its FP16
    /// multiplier as an FP16 word. `false`: a fixed lane.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub engine: bool,
}

fn default_block() -> u32 {
    DEFAULT_BLOCK
}

/// Reserved words a top-module name must not be (Verilog-2005 keywords that could pass the
/// identifier check, plus names the generator uses itself).
const RESERVED: &[&str] = &[
    "always",
    "and",
    "assign",
    "begin",
    "buf",
    "case",
    "casex",
    "casez",
    "default",
    "else",
    "end",
    "endcase",
    "endfunction",
    "endmodule",
    "for",
    "function",
    "if",
    "initial",
    "inout",
    "input",
    "integer",
    "localparam",
    "module",
    "nand",
    "negedge",
    "nor",
    "not",
    "or",
    "output",
    "parameter",
    "posedge",
    "reg",
    "signed",
    "time",
    "top",
    "wire",
    "xor",
    "xnor",
    "logic",
    "bit",
    "byte",
    "int",
    "config",
    "edge",
    "disable",
];

impl LaneConfig {
    /// Checks that the configuration describes hardware this crate can build; the error
    /// names the configuration, the offending field and why.
    pub fn validate(&self) -> Result<(), HwError> {
        let err = |reason: String| {
            Err(HwError::Config {
                name: self.name.clone(),
                reason,
            })
        };
        let ident_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident_ok {
            return err(format!(
                "name '{}' is not a plain Verilog identifier (letters, digits, '_', not starting with a digit, at most 64 characters): it becomes the top-module and file name",
                self.name
            ));
        }
        if RESERVED.contains(&self.name.to_ascii_lowercase().as_str()) {
            return err(format!("name '{}' is a reserved word", self.name));
        }
        if self.lanes == 0 || self.lanes > MAX_LANES {
            return err(format!(
                "lanes = {} is out of range 1..={MAX_LANES} (a top needs at least one lane; above {MAX_LANES} the per-lane ports and table copies make no sense for one load port)",
                self.lanes
            ));
        }
        if self.code_bits != 4 && self.code_bits != 6 {
            return err(format!(
                "code_bits = {} is not supported: the decode tables are addressed by 4-bit (16-entry) or 6-bit (64-entry) codes",
                self.code_bits
            ));
        }
        if self.block == 0 || self.block > MAX_BLOCK {
            return err(format!("block = {} is out of range 1..={MAX_BLOCK}", self.block));
        }
        match self.scale {
            ScaleFormat::UE4M4 | ScaleFormat::E4M3 | ScaleFormat::SE4M3 => {}
            ScaleFormat::UE8M0 => {
                return err("scale UE8M0 is not supported by the decode lane: its 2^-127..2^127 range needs a wider exponent path than the 8-bit-scale datapath (UE4M4, E4M3, SE4M3)".into())
            }
            ScaleFormat::F32 => {
                return err("scale F32 is not supported by the decode lane: block scales are 8-bit words (UE4M4, E4M3, SE4M3)".into())
            }
        }
        if self.engine {
            if self.code_bits != 6 {
                return err(format!(
                    "an engine has code_bits = 6 (64-entry tables; 4-bit layers use the first 16), not {}",
                    self.code_bits
                ));
            }
            if self.scale != ScaleFormat::UE4M4 {
                return err(format!(
                    "an engine's scale format is chosen per layer by its mode; its configuration names UE4M4 (the exponent domain every scale format is rebased into), not {}",
                    self.scale.name()
                ));
            }
        }
        Ok(())
    }

    /// The engine's mode register before any write (word 0: LUT path, 4-bit codes, UE4M4,
    /// as the tables start all zero); `None` for a fixed lane.
    pub fn reset_mode(&self) -> Option<crate::mode::Mode> {
        self.engine
            .then(|| crate::mode::Mode::from_word(0).expect("word 0 is a valid mode"))
    }

    /// Whether this configuration decodes, bit for bit, every layer quantized at `point`
    /// (its dense part: codes, selection bits, block scales, tables). `Err` says what the
    /// hardware lacks, in a phrase that completes "cannot decode <point>: ...".
    ///
    /// The block size is not a hardware parameter (the lanes take a `block_start` strobe),
    /// so any block size decodes. A minifloat element is decoded through an FP16 table
    /// holding its values (exact for E2M1, E2M3 and E3M2). An unsigned E4M3 scale code (sign
    /// bit 0) decodes on a signed SE4M3 configuration with the same value.
    pub fn decodes(&self, point: &OperatingPoint) -> Result<(), String> {
        if self.engine {
            let mode = crate::mode::Mode::for_point(point)?;
            if let (crate::mode::ElementPath::Lut, OperatingPoint::Block { lut, .. }) = (mode.element, point) {
                if *lut != self.lut {
                    return Err(format!(
                        "its table entries are {}, the engine's {}",
                        lut.name(),
                        self.lut.name()
                    ));
                }
            }
            return Ok(());
        }
        let OperatingPoint::Block {
            element,
            dynamic,
            scale,
            lut,
            ..
        } = *point
        else {
            return Err(format!(
                "it has no block scales (a per-tensor power-of-two point with {}-bit codes); every decode lane multiplies by an 8-bit block scale",
                point.code_bits()
            ));
        };
        if point.code_bits() != self.code_bits {
            return Err(format!(
                "its codes are {} bits, the configuration's {} bits",
                point.code_bits(),
                self.code_bits
            ));
        }
        let scale_ok = scale == self.scale || (scale == ScaleFormat::E4M3 && self.scale == ScaleFormat::SE4M3);
        if !scale_ok {
            return Err(format!(
                "its block scales are {}, the configuration's {}",
                scale.name(),
                self.scale.name()
            ));
        }
        if element.is_codebook() {
            if lut != self.lut {
                return Err(format!(
                    "its table entries are {}, the configuration's {}",
                    lut.name(),
                    self.lut.name()
                ));
            }
            return Ok(());
        }
        if dynamic.is_some() {
            return Err(format!(
                "a pair with a minifloat member ({}) needs a table for the minifloat and one for the dynamic codebook in one entry format; no configuration pairs them",
                element.name()
            ));
        }
        if !matches!(element, Element::E2M1 | Element::E2M3 | Element::E3M2) {
            return Err(format!("its element {} is not a 4- or 6-bit minifloat", element.name()));
        }
        if self.lut != LutEntry::Fp16 {
            return Err(format!(
                "its element {} is a minifloat whose values are not all {} values: it needs FP16 table entries",
                element.name(),
                self.lut.name()
            ));
        }
        Ok(())
    }

    /// Short human-readable summary of the parameters (used in the Verilog header).
    pub fn summary(&self) -> String {
        format!(
            "{}lanes={} code_bits={} block={} scale={} lut={} output={}",
            if self.engine { "engine " } else { "" },
            self.lanes,
            self.code_bits,
            self.block,
            self.scale.name(),
            self.lut.name(),
            self.output.name()
        )
    }

    /// Serializes this configuration as a TOML document (one configuration, top-level keys).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a LaneConfig always serializes")
    }
}

/// The default configurations emitted into `rtl-out/` (names are the stable top-module
/// names):
///
/// - `sop_c4_hif8_ue4m4_fp16`: 4-bit codes, HIF8 tables, UE4M4 scales, FP16 out.
/// - `sop_c4_hif7_ue4m4_fp16`: the same with HIF7 tables.
/// - `sop_c4_hif8_se4m3_fp16`: HIF8 tables with signed E4M3 block scales.
/// - `sop_c6_hif8_ue4m4_bf16`: 6-bit codes (DD6-style 64-entry HIF tables), BF16 out.
/// - `sop_c6_fp16lut_ue4m4_bf16`: 6-bit codes for E2M3 elements with FP16 LUT entries
///   (E2M3 values are not all HIF values; FP16 holds them exactly), BF16 out.
/// - `sop_c4_fp16lut_ue4m4_fp16`: the conventional baseline, FP16 LUT and a real
///   significand multiplier.
/// - `sop_engine_hif8_fp16`: the decode engine (per-layer mode, sparse correction unit),
///   HIF8 tables, FP16 out: what runs a quantized model.
/// - `sop_engine_fp16lut_fp16`: the same engine with FP16 tables and the FP16 multiplier,
///   the baseline the HIF engine's QoR is measured against.
///
/// All have 4 lanes and block 16.
pub fn default_configs() -> Vec<LaneConfig> {
    let mk = |name: &str, code_bits, scale, lut, output| LaneConfig {
        name: name.into(),
        lanes: 4,
        code_bits,
        block: DEFAULT_BLOCK,
        scale,
        lut,
        output,
        engine: false,
    };
    vec![
        mk(
            "sop_c4_hif8_ue4m4_fp16",
            4,
            ScaleFormat::UE4M4,
            LutEntry::Hif8,
            Ieee16::Fp16,
        ),
        mk(
            "sop_c4_hif7_ue4m4_fp16",
            4,
            ScaleFormat::UE4M4,
            LutEntry::Hif7,
            Ieee16::Fp16,
        ),
        mk(
            "sop_c4_hif8_se4m3_fp16",
            4,
            ScaleFormat::SE4M3,
            LutEntry::Hif8,
            Ieee16::Fp16,
        ),
        mk(
            "sop_c6_hif8_ue4m4_bf16",
            6,
            ScaleFormat::UE4M4,
            LutEntry::Hif8,
            Ieee16::Bf16,
        ),
        mk(
            "sop_c6_fp16lut_ue4m4_bf16",
            6,
            ScaleFormat::UE4M4,
            LutEntry::Fp16,
            Ieee16::Bf16,
        ),
        mk(
            "sop_c4_fp16lut_ue4m4_fp16",
            4,
            ScaleFormat::UE4M4,
            LutEntry::Fp16,
            Ieee16::Fp16,
        ),
        LaneConfig {
            engine: true,
            ..mk(
                "sop_engine_hif8_fp16",
                6,
                ScaleFormat::UE4M4,
                LutEntry::Hif8,
                Ieee16::Fp16,
            )
        },
        LaneConfig {
            engine: true,
            ..mk(
                "sop_engine_fp16lut_fp16",
                6,
                ScaleFormat::UE4M4,
                LutEntry::Fp16,
                Ieee16::Fp16,
            )
        },
    ]
}

/// The configuration of `configs` that decodes layers quantized at `point` (see
/// [`LaneConfig::decodes`]): the first HIF engine that does, else the first FP16-LUT engine,
/// else the first fixed lane (an engine is what runs a quantized model, the HIF one being
/// the efficient datapath; the FP16-LUT engine is its QoR baseline; the fixed lanes are
/// regression references). The order of `configs` matters only within each of the three.
/// `sparse` says whether the layers carry outlier or residual entries. `Err` names every
/// configuration with what it lacks, for the user.
pub fn decoder_for<'a>(
    configs: &'a [LaneConfig],
    point: &OperatingPoint,
    sparse: bool,
) -> Result<&'a LaneConfig, String> {
    // Configurations that lack the same thing are named together.
    let mut why: Vec<(String, Vec<&str>)> = Vec::new();
    let hif_engine = |c: &&LaneConfig| c.engine && c.lut.hif().is_some();
    let engines_first = configs
        .iter()
        .filter(hif_engine)
        .chain(configs.iter().filter(|c| c.engine && !hif_engine(c)))
        .chain(configs.iter().filter(|c| !c.engine));
    for c in engines_first {
        let decodes = if sparse && !c.engine {
            Err("its outlier or residual entries need a sparse correction unit, which only engines have".to_string())
        } else {
            c.decodes(point)
        };
        match decodes {
            Ok(()) => return Ok(c),
            Err(e) => match why.iter_mut().find(|(r, _)| *r == e) {
                Some((_, names)) => names.push(&c.name),
                None => why.push((e, vec![&c.name])),
            },
        }
    }
    if why.is_empty() {
        return Err(format!("no configuration is available to decode {point}"));
    }
    let parts: Vec<String> = why
        .iter()
        .map(|(r, names)| format!("{}: {r}", names.join(", ")))
        .collect();
    Err(format!("no configuration decodes {point} ({})", parts.join("; ")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    config: Vec<LaneConfig>,
}

/// Parses a TOML configuration document (one configuration as top-level keys, or an array
/// of `[[config]]` tables) and validates every configuration; names must be unique.
pub fn parse_configs(text: &str) -> Result<Vec<LaneConfig>, HwError> {
    let value: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let configs = if value.contains_key("config") {
        let f: ConfigFile = value.try_into().map_err(|e| toml_error(text, &e))?;
        f.config
    } else {
        let c: LaneConfig = value.try_into().map_err(|e| toml_error(text, &e))?;
        vec![c]
    };
    if configs.is_empty() {
        return Err(HwError::Parse("no configuration in the file".into()));
    }
    for (i, c) in configs.iter().enumerate() {
        c.validate()?;
        if configs[..i].iter().any(|d| d.name == c.name) {
            return Err(HwError::Config {
                name: c.name.clone(),
                reason: "name used by two configurations".into(),
            });
        }
    }
    Ok(configs)
}

/// A TOML error as one line (toml's own `Display` spans several): `line L, column C:
/// message` for a syntax error, `` `key`: message `` for a value of the wrong type or range.
fn toml_error(text: &str, e: &toml::de::Error) -> HwError {
    let shown = e.to_string();
    let lines: Vec<&str> = shown.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    HwError::Parse(match (e.span(), lines.split_last()) {
        (Some(span), _) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let msg: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            format!("line {line}, column {col}: {}", msg.join(" "))
        }
        (None, Some((last, rest))) if last.starts_with("in `") && !rest.is_empty() => {
            format!("{}: {}", &last[3..], rest.join(" "))
        }
        (None, _) => lines.join(" "),
    })
}

/// Reads and parses a TOML configuration file (see [`parse_configs`]).
pub fn load_configs(path: &std::path::Path) -> Result<Vec<LaneConfig>, HwError> {
    let text = std::fs::read_to_string(path).map_err(|e| HwError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_configs(&text)
}

/// Parses a scale-format name (case-insensitive; `SE4M3` = `S+E4M3`).
pub fn parse_scale(s: &str) -> Option<ScaleFormat> {
    let up = s.trim().to_ascii_uppercase();
    let up = if up == "S+E4M3" { "SE4M3".to_string() } else { up };
    ScaleFormat::ALL.into_iter().find(|f| f.name() == up)
}

/// Parses a LUT-entry format name (case-insensitive).
pub fn parse_lut(s: &str) -> Option<LutEntry> {
    let up = s.trim().to_ascii_uppercase();
    [LutEntry::Hif7, LutEntry::Hif8, LutEntry::Fp16]
        .into_iter()
        .find(|f| f.name() == up)
}

/// Parses an output format name (case-insensitive).
pub fn parse_output(s: &str) -> Option<Ieee16> {
    let up = s.trim().to_ascii_uppercase();
    [Ieee16::Fp16, Ieee16::Bf16].into_iter().find(|f| f.name() == up)
}

macro_rules! name_serde {
    ($module:ident, $ty:ty, $parse:ident, $what:literal) => {
        mod $module {
            use super::*;
            pub fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(v.name())
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                $parse(&s).ok_or_else(|| serde::de::Error::custom(format!(concat!("unknown ", $what, " '{}'"), s)))
            }
        }
    };
}

name_serde!(scale_name, ScaleFormat, parse_scale, "scale format");
name_serde!(lut_name, LutEntry, parse_lut, "LUT entry format (HIF7, HIF8, FP16)");
name_serde!(output_name, Ieee16, parse_output, "output format (FP16, BF16)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_committed_configuration_decodes() {
        let cfgs = default_configs();
        let pick = |p: &str| {
            let p: OperatingPoint = p.parse().unwrap();
            decoder_for(&cfgs, &p, false).map(|c| c.name.clone())
        };
        let eng = "sop_engine_hif8_fp16";
        for p in [
            "NF4+DD4sUE4M4b16",
            "NF4+DD4sUE4M4b8",
            "Split87+DD4sSE4M3b16",
            "NF4+DD4sE4M3b16",
            "DD6sUE4M4",
            "E2M3sUE4M4b32",
            "E3M2sUE4M4",
            "E2M1sUE4M4b16",
            "E2M1sE4M3b16",
        ] {
            assert_eq!(pick(p).unwrap(), eng, "{p}");
        }
        // What the engine lacks, the fixed lanes still decode.
        assert_eq!(pick("BOF4+DD4sUE4M4b64-HIF7").unwrap(), "sop_c4_hif7_ue4m4_fp16");
        // FP16 tables: the FP16-LUT engine (engines come first), else the fixed baseline.
        assert_eq!(pick("NF4+DD4sUE4M4b16-FP16").unwrap(), "sop_engine_fp16lut_fp16");
        let fixed: Vec<LaneConfig> = cfgs.iter().filter(|c| !c.engine).cloned().collect();
        let fp16 = "NF4+DD4sUE4M4b16-FP16".parse().unwrap();
        assert_eq!(
            decoder_for(&fixed, &fp16, false).unwrap().name,
            "sop_c4_fp16lut_ue4m4_fp16"
        );
        let e3m2 = "E3M2sUE4M4".parse().unwrap();
        assert_eq!(
            decoder_for(&fixed, &e3m2, false).unwrap().name,
            "sop_c6_fp16lut_ue4m4_bf16"
        );
        let e = pick("E4M3-POT").unwrap_err();
        assert!(e.contains("no block scales"), "{e}");
        let e = pick("E2M1+DD4sUE4M4b16").unwrap_err();
        assert!(
            e.contains("sop_engine_hif8_fp16, sop_engine_fp16lut_fp16: a pair with a minifloat member"),
            "{e}"
        );
        let e = pick("NF4sUE8M0b32").unwrap_err();
        assert!(e.contains("UE8M0"), "{e}");
        let p: OperatingPoint = "NF4+DD4sUE4M4b16".parse().unwrap();
        assert_eq!(decoder_for(&cfgs, &p, true).unwrap().name, eng);
        assert!(decoder_for(&fixed, &p, true)
            .unwrap_err()
            .contains("sparse correction unit"));
    }

    #[test]
    fn hif_engines_come_first_whatever_the_order() {
        let mut cfgs = default_configs();
        // By name (as the co-simulation library lists them) the FP16-LUT engine comes first.
        cfgs.sort_by(|a, b| a.name.cmp(&b.name));
        let at = |hif: bool| cfgs.iter().position(|c| c.engine && c.lut.hif().is_some() == hif);
        assert!(at(false) < at(true));
        let p: OperatingPoint = "E2M3sUE4M4".parse().unwrap();
        assert_eq!(decoder_for(&cfgs, &p, true).unwrap().name, "sop_engine_hif8_fp16");
    }

    #[test]
    fn defaults_validate_and_round_trip() {
        for c in default_configs() {
            c.validate().unwrap();
            let back = parse_configs(&c.to_toml()).unwrap();
            assert_eq!(back, vec![c]);
        }
    }

    #[test]
    fn array_form_and_errors() {
        let text = "[[config]]\nname = \"a\"\nlanes = 2\ncode_bits = 6\nscale = \"s+e4m3\"\nlut = \"hif7\"\noutput = \"bf16\"\n";
        let c = parse_configs(text).unwrap();
        assert_eq!(c[0].scale, ScaleFormat::SE4M3);
        assert_eq!(c[0].block, DEFAULT_BLOCK);
        let bad = text.replace("lanes = 2", "lanes = 0");
        let e = parse_configs(&bad).unwrap_err().to_string();
        assert!(e.contains("lanes = 0"), "{e}");
        let bad = text.replace("code_bits = 6", "code_bits = 5");
        assert!(parse_configs(&bad).unwrap_err().to_string().contains("code_bits = 5"));
        let bad = text.replace("s+e4m3", "UE8M0");
        assert!(parse_configs(&bad).unwrap_err().to_string().contains("UE8M0"));
        let bad = text.replace("hif7", "HIF9");
        assert!(parse_configs(&bad).unwrap_err().to_string().contains("HIF9"));
        let bad = text.replace("\"a\"", "\"9a\"");
        assert!(parse_configs(&bad).unwrap_err().to_string().contains("identifier"));
        let twice = format!("{text}{text}");
        assert!(parse_configs(&twice)
            .unwrap_err()
            .to_string()
            .contains("two configurations"));
    }
}
