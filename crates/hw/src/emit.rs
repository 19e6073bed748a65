//! Verilog emission: one self-contained file `<name>.v` per configuration, top module
//! `<name>`, and its timing constraints `<name>.sdc` beside it ([`sdc`]); deterministic
//! byte for byte.
//!
//! rust-hdl names the top `top` and every instance `top$path$to$instance`; arrays of
//! ports become `name$i`. The emitter renames, at the identifier level only: `top` and
//! `top$...` to `<name>` and `<name>$...`; the top's per-lane ports `port$i` to
//! `port_i`; the single-element optional ports `load_bias$0`, `load_bias_we$0`,
//! `bias0$0`, `bias1$0` to their plain names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sop_formats::point::LutEntry;
use sop_formats::Ieee16;

use crate::config::{default_configs, LaneConfig};
use crate::params::Params;
use crate::tile::ActFormat;
use crate::tile_sim::TileKind;
use crate::HwError;

/// Ports of the top that exist once per lane (`<port>_<lane>`); the `sp_` ones on engines
/// only (the sparse stream of each lane's correction unit).
pub const LANE_PORTS: [&str; 12] = [
    "valid_in",
    "block_start",
    "scale",
    "sel",
    "code",
    "sp_valid",
    "sp_pos",
    "sp_outlier",
    "sp_value",
    "sp_ready",
    "data_out",
    "valid_out",
];

/// Top-level port list of a configuration: `(name, direction, width, meaning)`, in the
/// order of the emitted module header (per-lane ports grouped by port, lane 0 first).
pub fn ports(cfg: &LaneConfig) -> Vec<(String, &'static str, u32, String)> {
    let c = cfg.code_bits;
    let w = cfg.lut.bits();
    let mut v = vec![
        ("clock".to_string(), "input", 1, "clock, rising edge".to_string()),
        (
            "reset".into(),
            "input",
            1,
            "synchronous reset, active high: clears valid pipeline and block registers".into(),
        ),
        (
            "load_table".into(),
            "input",
            1,
            "load port: table select (0 fixed codebook, 1 dynamic)".into(),
        ),
        ("load_addr".into(), "input", c, "load port: entry address (code)".into()),
        (
            "load_data".into(),
            "input",
            w,
            format!("load port: {} entry word", cfg.lut.name()),
        ),
        (
            "load_we".into(),
            "input",
            1,
            "load port: write load_data to entry load_addr of table load_table in every lane".into(),
        ),
    ];
    if cfg.lut.hif().is_some() {
        v.push((
            "load_bias".into(),
            "input",
            8,
            "load port: bias of table load_table, 8-bit two's complement".into(),
        ));
        v.push((
            "load_bias_we".into(),
            "input",
            1,
            "load port: write load_bias to the bias register of table load_table".into(),
        ));
    }
    if cfg.engine {
        v.push((
            "load_mode".into(),
            "input",
            8,
            "load port: mode word (element path 1:0, 6-bit codes 2, E4M3 scale 3, signed scale 4; docs/hardware.md)"
                .into(),
        ));
        v.push((
            "load_mode_we".into(),
            "input",
            1,
            "load port: write load_mode to the mode register (all lanes)".into(),
        ));
    }
    let mut per_lane: Vec<(&str, &str, u32, String)> = vec![
        ("valid_in", "input", 1, "a weight code is presented".into()),
        (
            "block_start",
            "input",
            1,
            "block start: latch scale and sel (they apply to this cycle's weight)".into(),
        ),
        (
            "scale",
            "input",
            8,
            if cfg.engine {
                "block-scale code in the mode's format (read with block_start)".to_string()
            } else {
                format!("{} block-scale code (read with block_start)", cfg.scale.name())
            },
        ),
        ("sel", "input", 1, "table selection bit (read with block_start)".into()),
        ("code", "input", c, "weight code".into()),
        ("data_out", "output", 16, format!("{} output word", cfg.output.name())),
        (
            "valid_out",
            "output",
            1,
            format!("data_out is valid ({} cycles after valid_in)", Params::new(cfg).latency),
        ),
    ];
    if cfg.engine {
        let sparse: [(&str, &str, u32, String); 5] = [
            ("sp_valid", "input", 1, "sparse stream: an entry is presented".into()),
            (
                "sp_pos",
                "input",
                32,
                "sparse stream: the entry's position (the lane's words since reset, from 0)".into(),
            ),
            (
                "sp_outlier",
                "input",
                1,
                "sparse stream: 1 outlier (replaces the word), 0 residual (added, one rounding)".into(),
            ),
            ("sp_value", "input", 16, "sparse stream: the entry's BF16 value".into()),
            (
                "sp_ready",
                "output",
                1,
                "sparse stream: the entry is taken at this edge (sorted, unique positions)".into(),
            ),
        ];
        per_lane.splice(5..5, sparse);
    }
    for (n, d, wd, m) in &per_lane {
        for i in 0..cfg.lanes {
            v.push((format!("{n}_{i}"), *d, *wd, format!("lane {i}: {m}")));
        }
    }
    v
}

fn header(cfg: &LaneConfig) -> String {
    let p = Params::new(cfg);
    let (sf, signed) = crate::params::scale_format(cfg.scale);
    let lut = match cfg.lut {
        LutEntry::Fp16 => "FP16 (IEEE binary16 words; 11x5-bit significand multiplier)".to_string(),
        l => {
            let h = l.hif().unwrap();
            format!(
                "{} ({}-bit word s|e[2:0]|c[{}:0], per-table 8-bit bias register; shift-add multiplier)",
                h.name(),
                h.bits(),
                h.c_bits() - 1
            )
        }
    };
    let scale = format!(
        "{} ({}, {} exponent bits bias {}, {} mantissa bits, subnormals{})",
        cfg.scale.name(),
        if signed { "signed" } else { "unsigned" },
        sf.exp_bits,
        sf.bias,
        sf.man_bits,
        if sf.name == "E4M3" {
            ", NaN code taken as given (480)"
        } else {
            ""
        }
    );
    let mut h = String::new();
    h.push_str(&format!("// {}.v -- SOP weight-decode top `{}`.\n", cfg.name, cfg.name));
    h.push_str("// generated by `sop rtl emit`, do not edit (source: crates/hw, docs/hardware.md).\n");
    h.push_str("//\n// Parameters:\n");
    h.push_str(&format!("//   lanes     = {}\n", cfg.lanes));
    if cfg.engine {
        h.push_str("//   engine    = yes (per-layer mode register: element path LUT/E2M1/E2M3/E3M2, 4- or 6-bit codes, scale UE4M4/E4M3/SE4M3)\n");
    }
    h.push_str(&format!(
        "//   code_bits = {} (two tables of {} entries per lane; address = {{sel, code}})\n",
        cfg.code_bits,
        1u32 << cfg.code_bits
    ));
    h.push_str(&format!(
        "//   block     = {} (weights per block scale; the lanes follow block_start)\n",
        cfg.block
    ));
    h.push_str(&format!("//   scale     = {scale}\n"));
    h.push_str(&format!("//   lut       = {lut}\n"));
    h.push_str(&format!(
        "//   output    = {} (round to nearest even, overflow saturates to max finite, zero product gives +0)\n",
        cfg.output.name()
    ));
    h.push_str(&format!(
        "//   latency   = {} cycles from valid_in to valid_out, one weight per cycle per lane\n",
        p.latency
    ));
    h.push_str(&format!(
        "//   internal  = product {} bits, exponent offset {}, packer offset {}, packer width {}\n",
        p.pw, p.xoff, p.pack_off, p.ww
    ));
    h.push_str("//\n// Ports:\n");
    for (n, d, w, m) in ports(cfg) {
        let width = if w == 1 {
            String::new()
        } else {
            format!("[{}:0]", w - 1)
        };
        h.push_str(&format!("//   {d:<6} {width:<6} {n:<16} {m}\n"));
    }
    h.push_str("//\n// Lint waivers (Verilator): rtl-out/verilator.vlt.\n");
    h
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Renames identifiers of rust-hdl's Verilog (see the module documentation).
fn rename(raw: &str, name: &str, lanes: u32) -> String {
    rename_with(raw, name, lanes, &LANE_PORTS)
}

/// [`rename`] with the per-index ports `indexed` (`port$i` to `port_i`, `i < n`).
fn rename_with(raw: &str, name: &str, n: u32, indexed: &[&str]) -> String {
    let lanes = n;
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for p in indexed {
        for i in 0..lanes {
            map.insert(format!("{p}${i}"), format!("{p}_{i}"));
        }
    }
    for p in [
        "load_bias",
        "load_bias_we",
        "bias0",
        "bias1",
        "load_mode",
        "load_mode_we",
        "mode",
    ] {
        map.insert(format!("{p}$0"), p.to_string());
    }
    let mut out = String::with_capacity(raw.len() + 1024);
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_ident = (c.is_ascii_alphabetic() || c == '_')
            && (i == 0 || !is_ident_char(chars[i - 1]))
            && (i == 0 || chars[i - 1] != '\'');
        if starts_ident {
            let mut j = i;
            while j < chars.len() && is_ident_char(chars[j]) {
                j += 1;
            }
            let tok: String = chars[i..j].iter().collect();
            if let Some(r) = map.get(&tok) {
                out.push_str(r);
            } else if tok == "top" || tok.starts_with("top$") {
                out.push_str(name);
                out.push_str(&tok[3..]);
            } else {
                out.push_str(&tok);
            }
            i = j;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The complete Verilog text of a configuration (validated first).
pub fn verilog(cfg: &LaneConfig) -> Result<String, HwError> {
    cfg.validate()?;
    let mut top = crate::sim::build(cfg);
    let raw = top.verilog();
    let mut text = header(cfg);
    push_collapsed(&mut text, &rename(&raw, &cfg.name, cfg.lanes));
    Ok(text)
}

/// Appends `body` to `text` with trailing blanks trimmed and runs of blank lines collapsed
/// to one (rust-hdl emits many).
fn push_collapsed(text: &mut String, body: &str) {
    let mut blank = false;
    for l in body.lines().map(|l| l.trim_end()) {
        if l.is_empty() {
            if !blank {
                text.push('\n');
            }
            blank = true;
        } else {
            text.push_str(l);
            text.push('\n');
            blank = false;
        }
    }
}

/// Module name of the standalone sparse correction unit for lane words in format `out`:
/// `sop_corr_fp16` or `sop_corr_bf16`.
pub fn corr_unit_name(out: Ieee16) -> String {
    format!("sop_corr_{}", out.name().to_lowercase())
}

/// The Verilog text of the sparse correction unit on its own (top module
/// [`corr_unit_name`]; ports as in `docs/hardware.md`, "Sparse correction unit"), for lint,
/// synthesis and area measurements. Deterministic.
pub fn corr_unit_verilog(out: Ieee16) -> String {
    let name = corr_unit_name(out);
    let raw = crate::rtl::corr_verilog(out);
    let mut text = format!(
        "// {name}.v -- SOP sparse correction unit, {} lane words, BF16 entries, latency {} cycles.\n\
         // generated by sop-hw (crates/hw/src/rtl/corr.rs), do not edit; see docs/hardware.md.\n",
        out.name(),
        crate::params::CORR_LATENCY
    );
    push_collapsed(&mut text, &rename(&raw, &name, 0));
    text
}

/// Default clock period of the emitted SDC, in ns (100 MHz); a flow may preset the Tcl
/// variable `clk_period` before reading the file to use another one.
pub const SDC_CLOCK_PERIOD_NS: f64 = 10.0;

/// Input and output delays of the emitted SDC as a fraction of the clock period
/// (OpenROAD-flow-scripts' `clk_io_pct` convention): the inputs arrive this long after the
/// rising edge, the outputs must be stable this long before the next one.
pub const SDC_IO_PCT: f64 = 0.2;

/// The SDC timing constraints of a configuration's top (`<name>.sdc`, written by [`emit`]
/// beside the Verilog): one clock on port `clock` (rising edge; `reset` is synchronous, so
/// it is a data input like the others), every other input delayed and every output
/// required [`SDC_IO_PCT`] of a period from the edge. Times are in ns; the period is
/// [`SDC_CLOCK_PERIOD_NS`] unless the Tcl variable `clk_period` already exists. Driving
/// cell and load are library-specific and left to the flow. Deterministic.
pub fn sdc(cfg: &LaneConfig) -> String {
    sdc_named(&cfg.name)
}

/// [`sdc`] for the top module `name` (a lane top or a tile).
pub fn sdc_named(name: &str) -> String {
    format!(
        "# {name}.sdc -- timing constraints of the SOP top `{name}` ({name}.v).\n\
         # generated by `sop rtl emit`, do not edit (source: crates/hw/src/emit.rs; docs/qor.md).\n\
         #\n\
         # Times in ns: with a library in ps (ASAP7) run `set_cmd_units -time ns` before reading.\n\
         # One clock, port `clock`, rising edge, ideal until clock-tree synthesis; `reset` is\n\
         # synchronous and active high (a data input). Inputs arrive and outputs are required\n\
         # clk_io_pct of a period from the edge (OpenROAD-flow-scripts' constraint.sdc\n\
         # convention). Set `clk_period` (ns) before reading to use another period. Driving cell\n\
         # and output load depend on the library: the flow sets them (sop rtl qor: docs/qor.md).\n\
         if {{![info exists clk_period]}} {{\n\
         \x20 set clk_period {period:.1}\n\
         }}\n\
         set clk_name clock\n\
         set clk_port [get_ports clock]\n\
         set clk_io_pct {pct:.2}\n\
         create_clock -name $clk_name -period $clk_period $clk_port\n\
         set non_clock_inputs [delete_from_list [all_inputs] $clk_port]\n\
         set_input_delay [expr {{$clk_period * $clk_io_pct}}] -clock $clk_name $non_clock_inputs\n\
         set_output_delay [expr {{$clk_period * $clk_io_pct}}] -clock $clk_name [all_outputs]\n",
        name = name,
        period = SDC_CLOCK_PERIOD_NS,
        pct = SDC_IO_PCT,
    )
}

fn write_file(path: &Path, text: &str) -> Result<(), HwError> {
    sop_atomic_write::write(path, text.as_bytes()).map_err(|e| HwError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })
}

/// Writes `<out_dir>/<name>.v` and its constraints `<out_dir>/<name>.sdc` ([`sdc`]) for one
/// configuration, each whole or not at all (temporary file, fsync, rename), and returns the
/// Verilog's path.
pub fn emit(cfg: &LaneConfig, out_dir: &Path) -> Result<PathBuf, HwError> {
    let text = verilog(cfg)?;
    std::fs::create_dir_all(out_dir).map_err(|e| HwError::Io {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    let path = out_dir.join(format!("{}.v", cfg.name));
    write_file(&path, &text)?;
    write_file(&out_dir.join(format!("{}.sdc", cfg.name)), &sdc(cfg))?;
    Ok(path)
}

/// Writes the Verilog of every [`default_configs`] entry and of every committed tile
/// ([`TILES`]) into `out_dir`.
pub fn emit_all(out_dir: &Path) -> Result<Vec<PathBuf>, HwError> {
    let mut v: Vec<PathBuf> = default_configs()
        .iter()
        .map(|c| emit(c, out_dir))
        .collect::<Result<_, _>>()?;
    for (kind, act) in TILES {
        v.push(emit_tile(kind, act, TILE_ROWS, out_dir)?);
    }
    Ok(v)
}

/// Rows of the committed dot-product tiles.
pub const TILE_ROWS: usize = 4;

/// The committed dot-product tiles: the HIF tile and its conventional baseline, BF16
/// activations.
pub const TILES: [(TileKind, ActFormat); 2] = [
    (TileKind::Hif, ActFormat::Bf16),
    (TileKind::Conventional, ActFormat::Bf16),
];

/// Module name of a tile ([`TileKind::name`]).
pub fn tile_name(kind: TileKind, act: ActFormat) -> String {
    kind.name(act)
}

/// Ports of a tile top that exist once per row (`<port>_<row>`).
pub const TILE_ROW_PORTS: [&str; 4] = ["scale", "sel", "code", "acc"];

/// The complete Verilog text of a dot-product tile ([`crate::tile_sim`], docs/hardware.md
/// "Dot-product tile") of kind `kind` with `rows` rows and activations in `act`.
/// Deterministic.
pub fn tile_verilog(kind: TileKind, act: ActFormat, rows: usize) -> String {
    let name = kind.name(act);
    let cfg = kind.engine();
    let g = crate::tile_sim::TileGeom::new(&crate::tile_sim::tile_engine(), act);
    let (raw, datapath, acc, source) = match kind {
        TileKind::Hif => (
            crate::tile_sim::TileSim::new(act, rows).verilog(),
            format!(
                "HIF8 tables, direct E2M1/E2M3/E3M2, scales UE4M4/E4M3/SE4M3; elements x activations by shift-add, activations aligned per block with {} fraction bits (truncated), exact {}-bit block sum, one block-scale multiply per block",
                crate::tile::ALIGN_BITS,
                crate::rtl::tile::SWD
            ),
            "FP32, one round-to-nearest-even per block",
            "crates/hw/src/rtl/tile.rs",
        ),
        TileKind::Conventional => (
            crate::tile_sim::ConvTileSim::new(act, rows).verilog(),
            "FP16 tables, direct E2M1/E2M3/E3M2, scales UE4M4/E4M3/SE4M3; weights decoded to FP16 (block scale per weight), FP16 x activation significand multipliers".to_string(),
            "FP32, one round-to-nearest-even per product into 4 interleaved banks, banks summed in order",
            "crates/hw/src/rtl/tile_conv.rs",
        ),
    };
    let mut text = format!(
        "// {name}.v -- SOP dot-product tile `{name}`.\n\
         // generated by `sop rtl emit`, do not edit (source: {source}, docs/hardware.md).\n\
         //\n// Parameters:\n\
         //   kind      = tile\n\
         //   tile      = {kind:?}\n\
         //   rows      = {rows} (dot products in parallel, one weight per row per cycle)\n\
         //   engine    = {engine} (mode register; {datapath})\n\
         //   act       = {act} (activations)\n\
         //   block     = {minb} ..= {maxb} weights (block_start strobes); rows of {minc} or more columns\n\
         //   acc       = {acc}; the tensor scale is the consumer's\n\
         //   latency   = {lat} cycles from a row's last weight to out_valid\n\
         //\n// Lint waivers (Verilator): rtl-out/verilator.vlt.\n",
        engine = cfg.name,
        act = act.name(),
        minb = crate::tile_sim::TILE_MIN_BLOCK,
        maxb = g.max_block,
        minc = kind.min_cols(),
        lat = kind.latency(),
    );
    push_collapsed(&mut text, &rename_with(&raw, &name, rows as u32, &TILE_ROW_PORTS));
    text
}

/// Writes `<out_dir>/<tile name>.v` and its SDC ([`sdc_named`]); returns the Verilog's path.
pub fn emit_tile(kind: TileKind, act: ActFormat, rows: usize, out_dir: &Path) -> Result<PathBuf, HwError> {
    let name = kind.name(act);
    std::fs::create_dir_all(out_dir).map_err(|e| HwError::Io {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    let path = out_dir.join(format!("{name}.v"));
    write_file(&path, &tile_verilog(kind, act, rows))?;
    write_file(&out_dir.join(format!("{name}.sdc")), &sdc_named(&name))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn rename_identifiers_only() {
        let raw = "module top(code$0,load_bias$0);\nreg [7:0] top$x; wire stop; x = 8'htop0;\ntop$lanes$0 lanes$0(.bias0$0(lanes$0$bias0$0));\nendmodule // top";
        let r = rename(raw, "n", 1);
        assert_eq!(
            r,
            "module n(code_0,load_bias);\nreg [7:0] n$x; wire stop; x = 8'htop0;\nn$lanes$0 lanes$0(.bias0(lanes$0$bias0$0));\nendmodule // n"
        );
    }
}
