//! The standard-cell flows ([`crate::Flow::Sky130`], [`crate::Flow::Asap7`]): Yosys maps
//! the full N-lane top to a Liberty library (`dfflibmap`, `abc -liberty` with a delay
//! target, driving cell and load, conventional cell exclusions; `stat -liberty`), then
//! OpenSTA times the netlist with the configuration's emitted SDC (`<name>.sdc`, see
//! `sop_hw::emit::sdc`) plus the library's driving cell and output load, and reports power
//! at a stated input activity.
//!
//! Everything is **pre-layout**: ideal clock, no wire parasitics, no placement (there is no
//! OpenROAD here). The figures compare configurations in one library; they are not a
//! sign-off.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::activity::{self, ActivityCoverage, ActivityFile};
use crate::liberty::{self, Library};
use crate::sta::{self, PowerRow, WorstPath};
use crate::tools::{run_tool, STA, YOSYS};
use crate::QorError;

/// One open standard-cell library and how the flow uses it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pdk {
    /// Flow name (`sky130`, `asap7`).
    pub flow: &'static str,
    /// What it is, for the tables.
    pub title: &'static str,
    /// The Liberty files, relative to the PDK directory (see [`pdk_dir`]); one library.
    pub files: &'static [&'static str],
    /// Cells excluded from mapping (globs; OpenROAD-flow-scripts' `DONT_USE_CELLS`).
    pub dont_use: &'static [&'static str],
    /// Cell and output pin that drive every input (ABC and OpenSTA).
    pub driver: (&'static str, &'static str),
    /// Load on every output and on ABC's outputs, in fF.
    pub load_ff: f64,
    /// Buffer cell with its input and output pin (`insbuf`: no bare `assign` in the netlist).
    pub buffer: (&'static str, &'static str, &'static str),
    /// Tie-high cell and pin.
    pub tie_hi: (&'static str, &'static str),
    /// Tie-low cell and pin.
    pub tie_lo: (&'static str, &'static str),
    /// Clock period of the analysis, in ns: ABC's delay target and the frequency of the
    /// power figures (the timing report's Fmax does not depend on it).
    pub clock_period_ns: f64,
}

/// SkyWater SKY130 high-density cells, typical corner (25 C, 1.80 V); ORFS's platform
/// settings (`sky130hd`): driver `buf_1`, load 5 fF, probe and low-power-flow cells
/// excluded. Clock 10 ns (100 MHz).
pub const SKY130: Pdk = Pdk {
    flow: "sky130",
    title: "SKY130 HD (typical, 25 C, 1.80 V)",
    files: &["sky130_fd_sc_hd__tt_025C_1v80.lib.gz"],
    dont_use: &[
        "sky130_fd_sc_hd__probe_p_8",
        "sky130_fd_sc_hd__probec_p_8",
        "sky130_fd_sc_hd__lpflow_*",
    ],
    driver: ("sky130_fd_sc_hd__buf_1", "X"),
    load_ff: 5.0,
    buffer: ("sky130_fd_sc_hd__buf_1", "A", "X"),
    tie_hi: ("sky130_fd_sc_hd__conb_1", "HI"),
    tie_lo: ("sky130_fd_sc_hd__conb_1", "LO"),
    clock_period_ns: 10.0,
};

/// ASAP7 7.5-track predictive 7 nm cells, regular Vt, typical corner (0.7 V); ORFS's
/// platform settings (`asap7`): driver `BUFx2`, load 3.898 fF, fractional-drive, scan and
/// clock-gating cells excluded. Its five files are merged into one. Clock 1 ns (1 GHz).
pub const ASAP7: Pdk = Pdk {
    flow: "asap7",
    title: "ASAP7 RVT (typical, 0.7 V)",
    files: &[
        "asap7/asap7sc7p5t_AO_RVT_TT_nldm_211120.lib.gz",
        "asap7/asap7sc7p5t_INVBUF_RVT_TT_nldm_220122.lib.gz",
        "asap7/asap7sc7p5t_OA_RVT_TT_nldm_211120.lib.gz",
        "asap7/asap7sc7p5t_SEQ_RVT_TT_nldm_220123.lib.gz",
        "asap7/asap7sc7p5t_SIMPLE_RVT_TT_nldm_211120.lib.gz",
    ],
    dont_use: &["*x1p*_ASAP7*", "*xp*_ASAP7*", "SDF*", "ICG*"],
    driver: ("BUFx2_ASAP7_75t_R", "Y"),
    load_ff: 3.898,
    buffer: ("BUFx2_ASAP7_75t_R", "A", "Y"),
    tie_hi: ("TIEHIx1_ASAP7_75t_R", "H"),
    tie_lo: ("TIELOx1_ASAP7_75t_R", "L"),
    clock_period_ns: 1.0,
};

/// Toggle rate of every data input in the power analysis (transitions per clock cycle,
/// OpenSTA's `set_power_activity -input`; duty 0.5). OpenSTA propagates it through the
/// logic and the registers; the clock toggles twice per cycle.
pub const INPUT_ACTIVITY: f64 = 0.1;

/// The environment variable that overrides the PDK directory.
pub const PDK_DIR_ENV: &str = "SOP_PDK_DIR";

/// The directory of the Liberty files: `$SOP_PDK_DIR` if set, else `shared/pdk` beside the
/// repository root (`<root>/../shared/pdk`; the root is found upward from the current
/// directory, then from this crate's source directory).
pub fn pdk_dir() -> Result<PathBuf, QorError> {
    if let Some(d) = std::env::var_os(PDK_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    let mut tried = Vec::new();
    let starts = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            // The repository root holds sop_rtl.core and rtl-out/.
            if dir.join("sop_rtl.core").is_file() && dir.join("rtl-out").is_dir() {
                let pdk = dir.join("../shared/pdk");
                if pdk.is_dir() {
                    return Ok(pdk);
                }
                tried.push(pdk);
                break;
            }
        }
    }
    Err(QorError::Usage(format!(
        "no PDK directory with the Liberty files: looked for {} (set {PDK_DIR_ENV}=DIR, or give the \
         files with --liberty)",
        if tried.is_empty() {
            "<repository root>/../shared/pdk, but found no repository root".to_string()
        } else {
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    )))
}

/// Prepares `pdk`'s library (from `files`, or its default files under [`pdk_dir`]) into
/// `dir` and checks that it has every cell the flow uses.
pub fn prepare_library(pdk: &Pdk, files: &[PathBuf], dir: &Path) -> Result<Library, QorError> {
    let sources: Vec<PathBuf> = if files.is_empty() {
        let base = pdk_dir()?;
        pdk.files.iter().map(|f| base.join(f)).collect()
    } else {
        files.to_vec()
    };
    let lib = liberty::prepare(&sources, pdk.dont_use, &dir.join(format!("{}.lib", pdk.flow)))?;
    lib.require_flip_flop()?;
    lib.require_cell(pdk.driver.0, &[pdk.driver.1], "input driver")?;
    lib.require_cell(pdk.buffer.0, &[pdk.buffer.1, pdk.buffer.2], "buffer")?;
    lib.require_cell(pdk.tie_hi.0, &[pdk.tie_hi.1], "tie-high")?;
    lib.require_cell(pdk.tie_lo.0, &[pdk.tie_lo.1], "tie-low")?;
    Ok(lib)
}

/// Results of one standard-cell flow for a whole N-lane top (pre-layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StdCellStats {
    /// Library: the PDK's title and the Liberty `library` name of its (first) file, with
    /// the number of files merged.
    pub library: String,
    /// Cell area, um^2 (sum of the Liberty `area` of every cell; equals Yosys's chip area).
    pub area_um2: f64,
    /// Area of the sequential cells (flip-flops), um^2.
    pub seq_area_um2: f64,
    /// Area of the combinational cells (incl. buffers and tie cells), um^2.
    pub comb_area_um2: f64,
    /// Cells.
    pub cells: u64,
    /// Flip-flops (cells with an `ff` group).
    pub ffs: u64,
    /// Flip-flops of the LUT tables (`*.lut.mem[..]` registers): one shared copy is
    /// `2 * entries * width` (docs/hardware.md, "Table storage").
    pub table_ffs: u64,
    /// Cells by library cell.
    pub by_type: BTreeMap<String, u64>,
    /// Worst register-to-register path (arrival = clock-to-Q + logic).
    pub reg2reg: Option<WorstPath>,
    /// Worst input-to-register path (arrival includes the SDC input delay).
    pub in2reg: Option<WorstPath>,
    /// Worst register-to-output path.
    pub reg2out: Option<WorstPath>,
    /// Shortest clock period at which every path meets its constraint, ns (from the slacks
    /// at the analysed period; input and output delays scale with the period, as the SDC
    /// states them as a fraction of it).
    pub min_period_ns: f64,
    /// Which group sets [`StdCellStats::min_period_ns`] (`reg2reg`, `in2reg`, `reg2out`).
    pub limiting: String,
    /// `1000 / min_period_ns`, MHz.
    pub fmax_mhz: f64,
    /// Clock period of the analysis and the power figures, ns.
    pub clock_period_ns: f64,
    /// The activity of the power figures: the stated default, or the recorded activity and
    /// how much of the netlist it annotated.
    pub activity: String,
    /// The recorded activity the power figures use (`None`: the stated default input
    /// activity, [`INPUT_ACTIVITY`], propagated by OpenSTA).
    #[serde(default)]
    pub recorded: Option<ActivityCoverage>,
    /// Power at that clock and activity: the whole top.
    pub power: PowerRow,
    /// Power of the sequential cells.
    pub power_seq: PowerRow,
    /// Seconds Yosys and OpenSTA took.
    pub seconds: f64,
}

/// Table storage is one shared copy (docs/hardware.md "Table storage"): fails loudly when
/// synthesis kept private copies or lost the tables, i.e. when `s` does not hold exactly one
/// flip-flop per bit of both tables of `cfg` (`dir`: the work files, for the message).
pub fn check_one_table_copy(
    s: &StdCellStats,
    cfg: &sop_hw::LaneConfig,
    flow: &str,
    top: &str,
    dir: &Path,
) -> Result<(), QorError> {
    let one_copy = 2 * (1u64 << cfg.code_bits) * u64::from(cfg.lut.bits());
    if s.table_ffs == one_copy {
        return Ok(());
    }
    Err(QorError::Unparsed {
        tool: "yosys".into(),
        what: format!(
            "one shared table copy ({one_copy} flip-flops named *.lut.mem[..]) in the {flow} netlist of {top}"
        ),
        output: format!("found {} table flip-flops (work files: {})", s.table_ffs, dir.display()),
    })
}

/// The Yosys script of the flow: synthesis, flip-flop and logic mapping, netlist clean-up
/// for OpenSTA, `stat -liberty`, netlist.
fn yosys_script(file: &str, top: &str, pdk: &Pdk, lib: &str) -> String {
    let d_ps = (pdk.clock_period_ns * 1000.0).round();
    format!(
        "read_verilog {file}\n\
         synth -flatten -top {top}\n\
         # Table storage (docs/hardware.md): every lane's table copy is written by the one load\n\
         # port, so the copies are equal by construction and the decision is one shared copy\n\
         # (one write port, N read ports). Merge them here on purpose; the flow then checks\n\
         # that one copy is left.\n\
         opt_merge -share_all\n\
         opt_clean\n\
         # Name each flip-flop after the register it holds, for the timing report.\n\
         rename -wire -suffix _reg t:$_*DFF*\n\
         dfflibmap -liberty {lib}\n\
         abc -D {d_ps} -liberty {lib} -constr abc.constr\n\
         opt_clean -purge\n\
         # OpenSTA (2019) rejects concatenations on the left of an assign.\n\
         setundef -zero\n\
         splitnets\n\
         opt_clean -purge\n\
         hilomap -singleton -hicell {hi} {hip} -locell {lo} {lop}\n\
         insbuf -buf {buf} {bi} {bo}\n\
         tee -q -o stat.txt stat -liberty {lib}\n\
         write_verilog -noattr -noexpr -nohex -nodec netlist.v\n",
        hi = pdk.tie_hi.0,
        hip = pdk.tie_hi.1,
        lo = pdk.tie_lo.0,
        lop = pdk.tie_lo.1,
        buf = pdk.buffer.0,
        bi = pdk.buffer.1,
        bo = pdk.buffer.2,
    )
}

/// The OpenSTA script: library, netlist, the emitted SDC at the flow's period, driving
/// cell and load, activity (the default input activity, then the recorded activity of
/// `activity.tcl` when `recorded`), one worst path per group, power.
fn sta_script(top: &str, sdc: &str, pdk: &Pdk, lib: &str, recorded: bool) -> String {
    format!(
        "read_liberty {lib}\n\
         read_verilog netlist.v\n\
         link_design {top}\n\
         # SDC and commands in ns and pF whatever the library's units (ASAP7: ps, fF).\n\
         set_cmd_units -time ns -capacitance pF\n\
         set clk_period {period}\n\
         read_sdc {sdc}\n\
         set_driving_cell -lib_cell {drv} -pin {drvp} $non_clock_inputs\n\
         set_load {load_pf} [all_outputs]\n\
         set_power_activity -input -activity {INPUT_ACTIVITY} -duty 0.5\n\
         {annotate}\
         set regs_clk [all_registers -clock_pins]\n\
         set regs_d [all_registers -data_pins]\n\
         puts \"@@ reg2reg\"\n\
         report_checks -path_delay max -from $regs_clk -to $regs_d -digits 4 -no_line_splits\n\
         puts \"@@ in2reg\"\n\
         report_checks -path_delay max -from $non_clock_inputs -to $regs_d -digits 4 -no_line_splits\n\
         puts \"@@ reg2out\"\n\
         report_checks -path_delay max -from $regs_clk -to [all_outputs] -digits 4 -no_line_splits\n\
         puts \"@@ in2out\"\n\
         report_checks -path_delay max -from $non_clock_inputs -to [all_outputs] -digits 4 -no_line_splits\n\
         puts \"@@ power\"\n\
         report_power -digits 6\n\
         puts \"@@ end\"\n",
        period = pdk.clock_period_ns,
        drv = pdk.driver.0,
        drvp = pdk.driver.1,
        load_pf = pdk.load_ff / 1000.0,
        annotate = if recorded { "source activity.tcl\n" } else { "" },
    )
}

fn write(path: &Path, text: &str) -> Result<(), QorError> {
    fs::write(path, text).map_err(|e| QorError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn copy_into(src: &Path, dir: &Path) -> Result<String, QorError> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dest = dir.join(&name);
    if dest != src {
        fs::copy(src, &dest).map_err(|e| QorError::Io {
            path: src.to_path_buf(),
            source: e,
        })?;
    }
    Ok(name)
}

/// Flip-flops of the LUT tables in a netlist written by `write_verilog`: instances of a
/// sequential cell whose name holds `.lut.mem[`.
fn table_ffs(netlist: &str, lib: &Library) -> u64 {
    netlist
        .lines()
        .filter(|l| {
            let mut t = l.split_whitespace();
            match (t.next(), t.next()) {
                (Some(cell), Some(inst)) => {
                    lib.cells.get(cell).is_some_and(|c| c.sequential) && inst.contains(".lut.mem[")
                }
                _ => false,
            }
        })
        .count() as u64
}

/// The shortest period at which every analysed path meets its constraint, and the group
/// that sets it. At period `t0` a register-to-register path with slack `s` needs `t0 - s`;
/// a path from an input or to an output, whose external delay is `io_pct * t`, needs
/// `t0 - s / (1 - io_pct)`, one through both `t0 - s / (1 - 2 io_pct)`.
pub fn min_period(t0: f64, io_pct: f64, groups: &[(&str, Option<&WorstPath>)]) -> Option<(f64, String)> {
    groups
        .iter()
        .filter_map(|(g, p)| {
            let s = (*p)?.slack_ns;
            let t = match *g {
                "reg2reg" => t0 - s,
                "in2out" => t0 - s / (1.0 - 2.0 * io_pct),
                _ => t0 - s / (1.0 - io_pct),
            };
            Some((t, g.to_string()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Maps `verilog` (top `top`, its SDC `sdc` beside it) to `lib` and times it (work files
/// in `dir`); the power uses the recorded activity `recorded` when given (see
/// [`crate::activity`]), else the default input activity.
pub fn stdcell_flow(
    verilog: &Path,
    sdc: &Path,
    top: &str,
    pdk: &Pdk,
    lib: &Library,
    dir: &Path,
    recorded: Option<&ActivityFile>,
) -> Result<StdCellStats, QorError> {
    fs::create_dir_all(dir).map_err(|e| QorError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    // Read the recording first: a bad file fails before the tools run.
    let act = recorded.map(|r| activity::read_vcd(&r.vcd, top)).transpose()?;
    let file = copy_into(verilog, dir)?;
    let sdc_file = copy_into(sdc, dir)?;
    let lib_path = lib.path.canonicalize().map_err(|e| QorError::Io {
        path: lib.path.clone(),
        source: e,
    })?;
    let lib_s = lib_path.to_string_lossy();
    write(
        &dir.join("abc.constr"),
        &format!("set_driving_cell {}\nset_load {}\n", pdk.driver.0, pdk.load_ff),
    )?;
    write(&dir.join("synth.ys"), &yosys_script(&file, top, pdk, &lib_s))?;
    let y = run_tool(YOSYS, &["-q", "-l", "synth.log", "-s", "synth.ys"], dir)?;
    let stat_text = fs::read_to_string(dir.join("stat.txt")).map_err(|e| QorError::Unparsed {
        tool: "yosys".into(),
        what: format!("its output file stat.txt ({e})"),
        output: crate::parse::excerpt(&y.text),
    })?;
    let known = |c: &str| lib.cells.contains_key(c);
    let stat = sta::yosys_liberty_stat(&stat_text, top, &known)?;
    let (mut seq, mut comb, mut ffs) = (0.0, 0.0, 0);
    for (cell, n) in &stat.by_type {
        let info = &lib.cells[cell];
        if info.sequential {
            seq += info.area * *n as f64;
            ffs += n;
        } else {
            comb += info.area * *n as f64;
        }
    }
    let netlist = fs::read_to_string(dir.join("netlist.v")).map_err(|e| QorError::Io {
        path: dir.join("netlist.v"),
        source: e,
    })?;
    if let Some(a) = &act {
        let log = fs::read_to_string(dir.join("synth.log")).map_err(|e| QorError::Io {
            path: dir.join("synth.log"),
            source: e,
        })?;
        let regs = activity::register_pins(&log);
        if regs.is_empty() {
            return Err(QorError::Unparsed {
                tool: "yosys".into(),
                what: "the flip-flop cell mapping of `dfflibmap` (needed to annotate the flip-flops)".into(),
                output: crate::parse::excerpt(&log),
            });
        }
        write(&dir.join("activity.tcl"), &activity::annotation_tcl(a, &regs)?)?;
    }
    write(
        &dir.join("sta.tcl"),
        &sta_script(top, &sdc_file, pdk, &lib_s, act.is_some()),
    )?;
    let s = run_tool(STA, &["-no_init", "-no_splash", "-exit", "sta.tcl"], dir)?;
    write(&dir.join("sta.log"), &s.text)?;
    let sec = sta::sections(&s.text);
    if sec.contains_key("activity-unsupported") {
        return Err(QorError::MissingCommand {
            tool: STA.program.into(),
            command: "sta::set_power_pin_activity / sta::set_power_input_port_activity".into(),
            need: "the recorded-activity power analysis (--activity) annotates pins with them; use the \
                   Debian package's OpenSTA 2.0.17 (`apt-get install -y opensta`) or run without --activity"
                .into(),
        });
    }
    let cover = match (&act, recorded) {
        (Some(a), Some(r)) => {
            let c = activity::coverage(sec.get("activity").map(String::as_str).unwrap_or(""), a, &r.source)?;
            // No register matched means the names did not survive or the file is another
            // design's: the figure would be the default activity in disguise.
            if c.registers == 0 || c.inputs == 0 {
                return Err(QorError::Activity {
                    path: r.vcd.clone(),
                    problem: format!(
                        "its signals annotate {} of {} input bits and {} of {} flip-flops of the {top} netlist: \
                         not a recording of this design (unmatched: {})",
                        c.inputs,
                        c.inputs_total,
                        c.registers,
                        c.registers_total,
                        c.unmatched.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            Some(c)
        }
        _ => None,
    };
    if !sec.contains_key("end") {
        return Err(QorError::Unparsed {
            tool: "sta".into(),
            what: "the end of the timing and power reports (the script stopped early)".into(),
            output: crate::parse::excerpt(&s.text),
        });
    }
    let get = |g: &str| -> Result<Option<WorstPath>, QorError> { sec.get(g).map_or(Ok(None), |t| sta::worst_path(t)) };
    let (rr, ir, ro, io) = (get("reg2reg")?, get("in2reg")?, get("reg2out")?, get("in2out")?);
    let power = sta::power(sec.get("power").map(String::as_str).unwrap_or(""))?;
    let (min_p, limiting) = min_period(
        pdk.clock_period_ns,
        sop_hw::emit::SDC_IO_PCT,
        &[
            ("reg2reg", rr.as_ref()),
            ("in2reg", ir.as_ref()),
            ("reg2out", ro.as_ref()),
            ("in2out", io.as_ref()),
        ],
    )
    .ok_or_else(|| QorError::Unparsed {
        tool: "sta".into(),
        what: "at least one timed path".into(),
        output: crate::parse::excerpt(&s.text),
    })?;
    Ok(StdCellStats {
        library: match lib.sources.len() {
            1 => format!("{}, `{}`", pdk.title, lib.name),
            n => format!("{}, `{}` and {} more files merged", pdk.title, lib.name, n - 1),
        },
        area_um2: seq + comb,
        seq_area_um2: seq,
        comb_area_um2: comb,
        cells: stat.by_type.values().sum(),
        ffs,
        table_ffs: table_ffs(&netlist, lib),
        by_type: stat.by_type,
        reg2reg: rr,
        in2reg: ir,
        reg2out: ro,
        min_period_ns: min_p,
        limiting,
        fmax_mhz: 1000.0 / min_p,
        clock_period_ns: pdk.clock_period_ns,
        activity: match &cover {
            None => format!("default activity: inputs {INPUT_ACTIVITY} transitions/cycle, duty 0.5, propagated by OpenSTA"),
            Some(c) => format!(
                "recorded activity ({}, {} cycles): {}/{} input bits and {}/{} flip-flops annotated, the rest propagated by OpenSTA",
                c.source, c.cycles, c.inputs, c.inputs_total, c.registers, c.registers_total
            ),
        },
        recorded: cover,
        power: power["Total"],
        power_seq: power.get("Sequential").copied().unwrap_or_default(),
        seconds: y.seconds + s.seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(slack: f64) -> WorstPath {
        WorstPath {
            start: "a".into(),
            end: "b".into(),
            arrival_ns: 0.0,
            slack_ns: slack,
        }
    }

    #[test]
    fn min_period_scales_io_paths() {
        let (rr, inp) = (path(6.0), path(4.0));
        // reg2reg needs 10 - 6 = 4 ns; in2reg 10 - 4 / 0.8 = 5 ns.
        let (t, g) = min_period(10.0, 0.2, &[("reg2reg", Some(&rr)), ("in2reg", Some(&inp))]).unwrap();
        assert!((t - 5.0).abs() < 1e-12 && g == "in2reg", "{t} {g}");
        let (t, g) = min_period(10.0, 0.2, &[("reg2reg", Some(&rr)), ("in2out", None)]).unwrap();
        assert!((t - 4.0).abs() < 1e-12 && g == "reg2reg");
        assert!(min_period(10.0, 0.2, &[("reg2reg", None)]).is_none());
    }

    #[test]
    fn pdk_cells_are_consistent() {
        for p in [SKY130, ASAP7] {
            assert!(!p.files.is_empty() && p.clock_period_ns > 0.0 && p.load_ff > 0.0);
            assert_eq!(p.driver.0, p.buffer.0, "{}: the driver is the buffer cell", p.flow);
        }
    }
}
