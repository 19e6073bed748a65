//! Reading the reports of the standard-cell flows: Yosys's `stat -liberty` (cells and chip
//! area) and OpenSTA's `report_checks` (one worst path per group) and `report_power`.
//! The flow script prints a marker line `@@ <group>` before each report, so that every
//! figure is read from the section it belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::parse::excerpt;
use crate::QorError;

fn unparsed(tool: &str, what: &str, text: &str) -> QorError {
    QorError::Unparsed {
        tool: tool.to_string(),
        what: what.to_string(),
        output: excerpt(text),
    }
}

/// Yosys `stat -liberty` of a flat netlist: cells by type and the chip area.
#[derive(Clone, Debug, PartialEq)]
pub struct LibertyStat {
    /// Cells by library cell name.
    pub by_type: BTreeMap<String, u64>,
    /// `Chip area for module ...` (library area unit).
    pub chip_area: f64,
}

/// Parses Yosys 0.23's `stat -liberty` text for module `top`: the `<cell> <count>` lines
/// whose cell is one of `known` (the library's cells) and the chip-area line.
pub fn yosys_liberty_stat(text: &str, top: &str, known: &dyn Fn(&str) -> bool) -> Result<LibertyStat, QorError> {
    let mut by_type = BTreeMap::new();
    let mut chip_area = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Chip area for module ") {
            let (module, area) = rest
                .rsplit_once(':')
                .ok_or_else(|| unparsed("yosys", "the chip area", line))?;
            if module.trim().trim_matches('\'').trim_start_matches('\\') == top {
                chip_area = Some(
                    area.trim()
                        .parse::<f64>()
                        .map_err(|_| unparsed("yosys", "the chip area figure", line))?,
                );
            }
            continue;
        }
        let mut parts = t.split_whitespace();
        if let (Some(cell), Some(n), None) = (parts.next(), parts.next(), parts.next()) {
            if known(cell) {
                if let Ok(n) = n.parse::<u64>() {
                    *by_type.entry(cell.to_string()).or_insert(0) += n;
                }
            }
        }
    }
    let chip_area = chip_area.ok_or_else(|| unparsed("yosys", &format!("`Chip area for module '\\{top}'`"), text))?;
    if by_type.is_empty() {
        return Err(unparsed("yosys", "library cells in `stat -liberty`", text));
    }
    Ok(LibertyStat { by_type, chip_area })
}

/// The worst path of one group of `report_checks -path_delay max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstPath {
    /// Start point (a register instance, named `<RTL register>[bit]_reg`, or an input port).
    pub start: String,
    /// End point (a register instance or an output port).
    pub end: String,
    /// Data arrival time at the end point (ns, from the launching clock edge; includes the
    /// input delay of a path from an input).
    pub arrival_ns: f64,
    /// Slack at the analysed clock period (ns).
    pub slack_ns: f64,
}

/// The sections `@@ <name>` of a report, by name.
pub fn sections(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@ ") {
            if let Some((n, t)) = cur.take() {
                out.insert(n, t);
            }
            cur = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, t)) = cur.as_mut() {
            t.push_str(line);
            t.push('\n');
        }
    }
    if let Some((n, t)) = cur {
        out.insert(n, t);
    }
    out
}

fn first_number(s: &str) -> Option<f64> {
    s.split_whitespace().find_map(|t| t.parse::<f64>().ok())
}

/// Parses one `report_checks` (full format) section: the worst path, or `None` when
/// OpenSTA found no path in the group (`No paths found.`).
pub fn worst_path(section: &str) -> Result<Option<WorstPath>, QorError> {
    if section.contains("No paths found") || section.trim().is_empty() {
        return Ok(None);
    }
    let point = |key: &str| -> Result<String, QorError> {
        let line = section
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .ok_or_else(|| unparsed("sta", &format!("the `{key}` line of report_checks"), section))?;
        // `Startpoint: NAME (rising edge-triggered ...)` or `... NAME (input port ...)`.
        let name = line.split(" (").next().unwrap_or(line).trim();
        Ok(name.to_string())
    };
    let arrival = section
        .lines()
        .find(|l| l.trim_end().ends_with("data arrival time"))
        .and_then(first_number)
        .ok_or_else(|| unparsed("sta", "the `data arrival time` of report_checks", section))?;
    let slack = section
        .lines()
        .find(|l| l.contains("slack (MET)") || l.contains("slack (VIOLATED)"))
        .and_then(first_number)
        .ok_or_else(|| unparsed("sta", "the slack of report_checks", section))?;
    Ok(Some(WorstPath {
        start: point("Startpoint:")?,
        end: point("Endpoint:")?,
        arrival_ns: arrival,
        slack_ns: slack,
    }))
}

/// Power of one `report_power` row, in mW.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PowerRow {
    /// Internal power (short-circuit and cell-internal capacitance), mW.
    pub internal_mw: f64,
    /// Switching power (charging the nets' load capacitance), mW.
    pub switching_mw: f64,
    /// Leakage power, mW.
    pub leakage_mw: f64,
    /// Sum, mW.
    pub total_mw: f64,
}

/// OpenSTA's `report_power` table (W) as mW: the `Sequential`, `Combinational` and `Total`
/// rows.
pub fn power(section: &str) -> Result<BTreeMap<String, PowerRow>, QorError> {
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let mut parts = line.split_whitespace();
        let Some(group) = parts.next() else { continue };
        if !matches!(group, "Sequential" | "Combinational" | "Total") {
            continue;
        }
        let v: Vec<f64> = parts.take(4).filter_map(|t| t.parse::<f64>().ok()).collect();
        if v.len() != 4 {
            return Err(unparsed(
                "sta",
                &format!("the four figures of the `{group}` power row"),
                section,
            ));
        }
        out.insert(
            group.to_string(),
            PowerRow {
                internal_mw: v[0] * 1e3,
                switching_mw: v[1] * 1e3,
                leakage_mw: v[2] * 1e3,
                total_mw: v[3] * 1e3,
            },
        );
    }
    if !out.contains_key("Total") {
        return Err(unparsed("sta", "the `Total` row of report_power", section));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from OpenSTA 2.0.17 (Debian opensta 0~20191111), SKY130 HD, abridged.
    const REPORT: &str = "@@ reg2reg
Startpoint: lanes$2.lut.rdata[0]_reg
            (rising edge-triggered flip-flop clocked by clock)
Endpoint: lanes$2.s2_p.q[7]_reg
          (rising edge-triggered flip-flop clocked by clock)
Path Group: clock
Path Type: max

    Delay      Time   Description
-------------------------------------------------------------
   0.0000    0.0000   clock clock (rise edge)
   0.3579    0.3579 ^ lanes$2.lut.rdata[0]_reg/Q (sky130_fd_sc_hd__dfxtp_1)
   0.0035    3.2923 v lanes$2.s2_p.q[7]_reg/D (sky130_fd_sc_hd__dfxtp_1)
             3.2923   data arrival time

  10.0000   10.0000   clock clock (rise edge)
  -0.1223    9.8777   library setup time
             9.8777   data required time
-------------------------------------------------------------
             9.8777   data required time
            -3.2923   data arrival time
-------------------------------------------------------------
             6.5854   slack (MET)


@@ in2out
No paths found.
@@ power
Group                    Internal    Switching      Leakage        Total
                            Power        Power        Power        Power
------------------------------------------------------------------------
Sequential           5.615559e-03 1.047364e-04 5.535717e-09 5.720302e-03  84.3%
Combinational        8.310392e-04 2.366781e-04 6.940519e-09 1.067724e-03  15.7%
Macro                0.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00   0.0%
------------------------------------------------------------------------
Total                6.446604e-03 3.414151e-04 1.247623e-08 6.788031e-03 100.0%
                            95.0%         5.0%         0.0%
";

    #[test]
    fn paths_and_power() {
        let s = sections(REPORT);
        assert_eq!(s.len(), 3);
        let p = worst_path(&s["reg2reg"]).unwrap().unwrap();
        assert_eq!(p.start, "lanes$2.lut.rdata[0]_reg");
        assert_eq!(p.end, "lanes$2.s2_p.q[7]_reg");
        assert_eq!((p.arrival_ns, p.slack_ns), (3.2923, 6.5854));
        assert_eq!(worst_path(&s["in2out"]).unwrap(), None);
        let w = power(&s["power"]).unwrap();
        assert!((w["Total"].total_mw - 6.788031).abs() < 1e-9);
        assert!((w["Sequential"].internal_mw - 5.615559).abs() < 1e-9);
        assert!((w["Combinational"].leakage_mw - 6.940519e-6).abs() < 1e-15);
    }

    #[test]
    fn bad_reports_quote_the_output() {
        let e = worst_path("Startpoint: a\nError: something\n").unwrap_err().to_string();
        assert!(e.contains("sta") && e.contains("Error: something"), "{e}");
        let e = power("Error: no liberty\n").unwrap_err().to_string();
        assert!(e.contains("Total") && e.contains("no liberty"), "{e}");
        let e = power("Total 1 2 x\n").unwrap_err().to_string();
        assert!(e.contains("four figures"), "{e}");
    }

    #[test]
    fn liberty_stat() {
        let text = "   Number of cells:                  3
     sky130_fd_sc_hd__dfxtp_1        2
     sky130_fd_sc_hd__inv_1          1

   Chip area for module '\\top': 45.043200
";
        let known = |c: &str| c.starts_with("sky130_");
        let s = yosys_liberty_stat(text, "top", &known).unwrap();
        assert_eq!(s.by_type["sky130_fd_sc_hd__dfxtp_1"], 2);
        assert_eq!(s.chip_area, 45.0432);
        let e = yosys_liberty_stat(text, "other", &known).unwrap_err().to_string();
        assert!(e.contains("Chip area"), "{e}");
    }
}
