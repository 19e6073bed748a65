//! `sop formats ...`: code tables, encoding from stdin, and the format list.

use std::io::{self, BufRead, BufWriter, Write};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sop_formats::{exact_text, Format};

#[derive(Subcommand)]
pub enum FormatsCmd {
    /// Print every code of FORMAT with its exact value, one `code<TAB>value` per line.
    ///
    /// Codes are decimal; values print so that they parse back to the exact f32
    /// (`nan` for NaN codes, `inf`/`-inf` for infinities).
    Table(FormatArg),
    /// Round f32 values read from stdin (one per line) to FORMAT, printing one code per
    /// line.
    ///
    /// A line is a decimal number (`0.3`, `-1e-3`, `inf`, `nan`) or a 0x-prefixed 32-bit
    /// IEEE pattern (`0x3f800000`). Rounding is to nearest, ties to even, saturating to
    /// the largest finite value. NaN into a format without NaN is an error.
    Encode(FormatArg),
    /// Decode codes read from stdin (decimal or 0x-prefixed, one per line) to values.
    Decode(FormatArg),
    /// List every format with its widths, bias, largest value and smallest positive value.
    List,
}

#[derive(Args)]
pub struct FormatArg {
    /// Format name: E2M1, E2M3, E3M2, E4M3, E5M2, UE8M0, UE4M4, S+E4M3, FP16, BF16, HIF7, HIF8.
    format: String,
    /// Table bias register for HIF formats (value = 2^(e - bias) * m).
    #[arg(long, allow_hyphen_values = true)]
    bias: Option<i32>,
}

impl FormatArg {
    fn format(&self) -> Result<Format> {
        let mut f: Format = self.format.parse()?;
        if let Some(b) = self.bias {
            match &mut f {
                Format::Hif(_, bias) if (-100..=100).contains(&b) => *bias = b,
                Format::Hif(..) => bail!("--bias {b} is out of range (-100..=100)"),
                _ => bail!("--bias applies only to HIF7/HIF8, not {}", f.name()),
            }
        }
        Ok(f)
    }
}

pub fn run(cmd: FormatsCmd) -> Result<()> {
    let out = io::stdout();
    let mut out = BufWriter::new(out.lock());
    match cmd {
        FormatsCmd::Table(a) => {
            let f = a.format()?;
            for code in 0..f.num_codes() {
                writeln!(out, "{code}\t{}", exact_text(f.decode(code)))?;
            }
        }
        FormatsCmd::Encode(a) => {
            let f = a.format()?;
            for (i, line) in io::stdin().lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                let x = parse_f32(t).with_context(|| format!("stdin line {}", i + 1))?;
                let code = f
                    .try_encode(x)
                    .with_context(|| format!("stdin line {}: '{t}'", i + 1))?;
                writeln!(out, "{code}")?;
            }
        }
        FormatsCmd::Decode(a) => {
            let f = a.format()?;
            for (i, line) in io::stdin().lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                let t = line.trim();
                if t.is_empty() {
                    continue;
                }
                let code = parse_code(t).with_context(|| format!("stdin line {}", i + 1))?;
                if code >= f.num_codes() as u64 {
                    bail!(
                        "stdin line {}: code {t} is out of range for {} (0..={})",
                        i + 1,
                        f.name(),
                        f.num_codes() - 1
                    );
                }
                writeln!(out, "{}", exact_text(f.decode(code as u32)))?;
            }
        }
        FormatsCmd::List => {
            writeln!(
                out,
                "{:<7} {:>4} {:>4} {:>4} {:>5} {:>14} {:>14}  specials",
                "format", "bits", "exp", "man", "bias", "max", "min_positive"
            )?;
            for f in Format::all() {
                let (e, m, b) = f.fields();
                let specials = match f {
                    Format::Mini(mf) => format!("{:?}", mf.specials),
                    Format::SE4M3 => "NanAllOnes (signed scale)".into(),
                    Format::Ieee(_) => "Ieee".into(),
                    Format::Hif(h, _) => format!(
                        "{} non-zero values; man = mantissa-code bits; per-table bias",
                        h.nonzero_values()
                    ),
                };
                writeln!(
                    out,
                    "{:<7} {:>4} {:>4} {:>4} {:>5} {:>14} {:>14}  {specials}",
                    f.name(),
                    f.bits(),
                    e,
                    m,
                    b,
                    exact_text(f.max()),
                    exact_text(f.min_positive())
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn parse_f32(t: &str) -> Result<f32> {
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let bits =
            u32::from_str_radix(hex, 16).map_err(|_| anyhow::anyhow!("'{t}' is not a 0x-prefixed 32-bit pattern"))?;
        return Ok(f32::from_bits(bits));
    }
    t.parse::<f32>()
        .map_err(|_| anyhow::anyhow!("cannot parse '{t}' as an f32 (decimal, or a 0x-prefixed 32-bit pattern)"))
}

fn parse_code(t: &str) -> Result<u64> {
    let r = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else {
        t.parse::<u64>()
    };
    r.map_err(|_| anyhow::anyhow!("cannot parse '{t}' as a code (decimal or 0x-prefixed)"))
}
