//! Quality of results of the dot-product tiles: the HIF tile and its conventional baseline
//! (`sop_hw::tile_sim::TileKind`), measured by the same flows as the lanes, with the figures
//! a tile is judged by: MACs per cycle, Fmax, and MACs per second per unit area.
//!
//! - [`crate::Flow::Gates`], [`crate::Flow::Sky130`], [`crate::Flow::Asap7`]: the committed
//!   4-row tile ([`sop_hw::emit::TILE_ROWS`]).
//! - [`crate::Flow::Ice40`], [`crate::Flow::Ecp5`]: a 1-row tile (as the lanes' FPGA figures
//!   are for one lane), so that the figures compare per row.
//!
//! A tile takes one weight per row per cycle, so its MAC rate is `rows x Fmax`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sop_hw::emit::{emit_tile, TILE_ROWS};
use sop_hw::tile::ActFormat;
use sop_hw::tile_sim::TileKind;

use crate::flows::{self, Ecp5Stats, GateStats, Ice40Stats};
use crate::stdcell::{self, StdCellStats};
use crate::{liberty, Flow, QorError, QorOptions};

/// Results for one tile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileQorRow {
    /// Top-module name (`sop_tile_hif8_bf16`, `sop_tile_fp16lut_bf16`).
    pub tile: String,
    /// `Hif` or `Conventional`.
    pub kind: String,
    /// Activation format.
    pub act: String,
    /// Rows of the measured top (gates and standard cells; the FPGA flows map one row).
    pub rows: u32,
    /// Multiply-accumulates per clock cycle of that top (one weight per row per cycle).
    pub macs_per_cycle: u32,
    /// Generic gates of the whole top ([`Flow::Gates`]).
    pub gates: Option<GateStats>,
    /// iCE40 HX8K, one row.
    pub ice40: Option<Ice40Stats>,
    /// ECP5 25k, one row.
    pub ecp5: Option<Ecp5Stats>,
    /// SKY130 HD, whole top (pre-layout).
    pub sky130: Option<StdCellStats>,
    /// ASAP7, whole top (pre-layout).
    pub asap7: Option<StdCellStats>,
}

impl TileQorRow {
    /// `rows x Fmax` of a standard-cell result, in GMAC/s, per mm^2 of cell area.
    pub fn gmacs_per_mm2(&self, s: &StdCellStats) -> f64 {
        f64::from(self.macs_per_cycle) * s.fmax_mhz * 1e-3 / (s.area_um2 * 1e-6)
    }

    /// MAC/s per ECP5 LUT4 of the 1-row tile, in MMAC/s.
    pub fn ecp5_mmacs_per_lut(s: &Ecp5Stats) -> f64 {
        s.fmax_mhz / s.lut4.max(1) as f64
    }
}

/// Measures tile `(kind, act)` with the flows and seeds of `opts`, work files under `dir`,
/// standard-cell libraries from `libs` (prepared by [`crate::prepare_libraries`]).
pub fn run_tile(
    kind: TileKind,
    act: ActFormat,
    opts: &QorOptions,
    dir: &Path,
    libs: &BTreeMap<Flow, liberty::Library>,
) -> Result<TileQorRow, QorError> {
    let name = kind.name(act);
    let tdir = dir.join(&name);
    let note = |what: &str, secs: f64| {
        if opts.progress {
            eprintln!("  {name}: {what} ({secs:.1} s)");
        }
    };
    let mut row = TileQorRow {
        tile: name.clone(),
        kind: format!("{kind:?}"),
        act: act.name().to_string(),
        rows: TILE_ROWS as u32,
        macs_per_cycle: TILE_ROWS as u32,
        gates: None,
        ice40: None,
        ecp5: None,
        sky130: None,
        asap7: None,
    };
    if opts.flows.contains(&Flow::Gates) {
        let d = tdir.join("gates");
        let v = emit_tile(kind, act, TILE_ROWS, &d)?;
        let g = flows::gates_flow(&v, &name, TILE_ROWS as u32, &d)?;
        note(
            &format!("gates {} ({:.0}/row), FFs {}", g.gates, g.gates_per_lane, g.ffs),
            g.seconds,
        );
        row.gates = Some(g);
    }
    if opts.flows.contains(&Flow::Ice40) {
        let d = tdir.join("ice40");
        let v = emit_tile(kind, act, 1, &d)?;
        let s = flows::ice40_flow(&v, &name, opts.seeds, &d)?;
        note(
            &format!("iCE40 (1 row) LUT4 {}, Fmax {:.2} MHz", s.lut4, s.fmax_mhz),
            s.seconds,
        );
        row.ice40 = Some(s);
    }
    if opts.flows.contains(&Flow::Ecp5) {
        let d = tdir.join("ecp5");
        let v = emit_tile(kind, act, 1, &d)?;
        let s = flows::ecp5_flow(&v, &name, opts.seeds, &d)?;
        note(
            &format!(
                "ECP5 (1 row) LUT4 {}, DSP {}, Fmax {:.2} MHz",
                s.lut4, s.dsps, s.fmax_mhz
            ),
            s.seconds,
        );
        row.ecp5 = Some(s);
    }
    for (flow, lib) in libs {
        let pdk = flow.pdk().expect("standard-cell flow");
        let d = tdir.join(flow.name());
        let v = emit_tile(kind, act, TILE_ROWS, &d)?;
        let s = stdcell::stdcell_flow(&v, &v.with_extension("sdc"), &name, pdk, lib, &d, None)?;
        // The flows merge the rows' table copies on purpose: one copy is left.
        stdcell::check_one_table_copy(&s, &kind.engine(), flow.name(), &name, &d)?;
        note(
            &format!(
                "{} area {:.0} um^2, {} FFs, min period {:.3} ns ({}), Fmax {:.1} MHz, {:.1} GMAC/s/mm^2",
                flow.name(),
                s.area_um2,
                s.ffs,
                s.min_period_ns,
                s.limiting,
                s.fmax_mhz,
                row.gmacs_per_mm2(&s)
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

/// The ratios of the HIF tile to the conventional one (`hif / conventional`) per figure:
/// `(figure, ratio)`, where both were measured.
pub fn ratios(hif: &TileQorRow, conv: &TileQorRow) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    let mut push = |what: &str, a: f64, b: f64| {
        if b > 0.0 {
            v.push((what.to_string(), a / b));
        }
    };
    if let (Some(a), Some(b)) = (&hif.gates, &conv.gates) {
        push("gates", a.gates as f64, b.gates as f64);
        push("gates + FFs", (a.gates + a.ffs) as f64, (b.gates + b.ffs) as f64);
    }
    if let (Some(a), Some(b)) = (&hif.ice40, &conv.ice40) {
        push("iCE40 LUT4 (1 row)", a.lut4 as f64, b.lut4 as f64);
        push("iCE40 Fmax", a.fmax_mhz, b.fmax_mhz);
    }
    if let (Some(a), Some(b)) = (&hif.ecp5, &conv.ecp5) {
        push("ECP5 LUT4 (1 row)", a.lut4 as f64, b.lut4 as f64);
        push("ECP5 Fmax", a.fmax_mhz, b.fmax_mhz);
        push(
            "ECP5 MAC/s per LUT4",
            TileQorRow::ecp5_mmacs_per_lut(a),
            TileQorRow::ecp5_mmacs_per_lut(b),
        );
    }
    for (lib, a, b) in [
        ("SKY130", &hif.sky130, &conv.sky130),
        ("ASAP7", &hif.asap7, &conv.asap7),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            push(&format!("{lib} area"), a.area_um2, b.area_um2);
            push(&format!("{lib} Fmax"), a.fmax_mhz, b.fmax_mhz);
            push(
                &format!("{lib} MAC/s per area"),
                hif.gmacs_per_mm2(a),
                conv.gmacs_per_mm2(b),
            );
            push(&format!("{lib} power"), a.power.total_mw, b.power.total_mw);
        }
    }
    v
}

/// The tiles as Markdown: one table of figures (a `–` where a flow did not run) and, when
/// both kinds of one activation format were measured, their ratios.
pub fn markdown(rows: &[TileQorRow]) -> String {
    use std::fmt::Write as _;
    let dash = || "–".to_string();
    let mut s = String::from(
        "| tile | MACs/cycle | gates + FFs | iCE40 LUT4 / Fmax (1 row) | ECP5 LUT4 / DSP / Fmax (1 row) | SKY130 um^2 / Fmax / GMAC/s/mm^2 | ASAP7 um^2 / Fmax / GMAC/s/mm^2 |\n|---|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let std = |x: &Option<StdCellStats>| {
            x.as_ref().map_or_else(dash, |x| {
                format!("{:.0} / {:.0} MHz / {:.1}", x.area_um2, x.fmax_mhz, r.gmacs_per_mm2(x))
            })
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            r.tile,
            r.macs_per_cycle,
            r.gates.as_ref().map_or_else(dash, |g| (g.gates + g.ffs).to_string()),
            r.ice40
                .as_ref()
                .map_or_else(dash, |x| format!("{} / {:.1} MHz", x.lut4, x.fmax_mhz)),
            r.ecp5
                .as_ref()
                .map_or_else(dash, |x| format!("{} / {} / {:.1} MHz", x.lut4, x.dsps, x.fmax_mhz)),
            std(&r.sky130),
            std(&r.asap7),
        );
    }
    for hif in rows.iter().filter(|r| r.kind == "Hif") {
        if let Some(conv) = rows.iter().find(|r| r.kind == "Conventional" && r.act == hif.act) {
            let rs = ratios(hif, conv);
            if !rs.is_empty() {
                let _ = writeln!(
                    s,
                    "\n`{}` / `{}`:\n\n| figure | ratio |\n|---|--:|",
                    hif.tile, conv.tile
                );
                for (what, x) in rs {
                    let _ = writeln!(s, "| {what} | {x:.2} |");
                }
            }
        }
    }
    s
}
