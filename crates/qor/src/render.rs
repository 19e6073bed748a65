//! Markdown and JSON renderings of the results.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::{QorRow, StdCellStats};

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".to_string())
}

fn r2(x: f64) -> String {
    format!("{x:.2}")
}

fn int(x: f64) -> String {
    format!("{x:.0}")
}

type Cell<'a> = Box<dyn Fn(&QorRow) -> Option<String> + 'a>;

/// Writes a Markdown table with the given `(header, alignment, cell)` columns.
fn table(rows: &[&QorRow], cols: &[(&str, &str, Cell<'_>)]) -> String {
    let mut s = String::from("|");
    for (h, _, _) in cols {
        let _ = write!(s, " {h} |");
    }
    s.push_str("\n|");
    for (_, a, _) in cols {
        let _ = write!(s, "{a}|");
    }
    s.push('\n');
    for r in rows {
        s.push('|');
        for (_, _, f) in cols {
            let _ = write!(s, " {} |", f(r).unwrap_or_else(|| "–".to_string()));
        }
        s.push('\n');
    }
    s
}

/// The results as Markdown: a measurement table (gate figures per lane of the full top;
/// FPGA figures for a 1-lane top; the columns of a flow that ran for no row are left out,
/// a `–` marks a flow that did not run for that row) and a table of the ratios to the
/// baselines.
pub fn markdown(rows: &[QorRow]) -> String {
    let all: Vec<&QorRow> = rows.iter().collect();
    let lanes = |r: &QorRow| f64::from(r.lanes.max(1));
    let mut cols: Vec<(&str, &str, Cell<'_>)> = vec![
        ("configuration", "---", Box::new(|r| Some(format!("`{}`", r.config)))),
        ("lanes", "--:", Box::new(|r| Some(r.lanes.to_string()))),
        (
            "LUT bits/table",
            "---",
            Box::new(|r| Some(format!("{}x{} = {}", r.lut_entries, r.lut_width, r.lut_bits_per_table))),
        ),
    ];
    if rows.iter().any(|r| r.gates.is_some()) {
        cols.push((
            "gates/lane",
            "--:",
            Box::new(|r| r.gates.as_ref().map(|g| int(g.gates_per_lane))),
        ));
        cols.push((
            "FFs/lane",
            "--:",
            Box::new(move |r| r.gates.as_ref().map(|g| int(g.ffs as f64 / lanes(r)))),
        ));
        cols.push((
            "transistors/lane",
            "--:",
            Box::new(|r| r.gates.as_ref().map(|g| int(g.transistors_per_lane))),
        ));
    }
    if rows.iter().any(|r| r.ice40.is_some()) {
        cols.push((
            "iCE40 LUT4",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| i.lut4.to_string())),
        ));
        cols.push((
            "iCE40 carry",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| i.carries.to_string())),
        ));
        cols.push((
            "iCE40 FF",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| i.ffs.to_string())),
        ));
        cols.push((
            "iCE40 BRAM",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| i.brams.to_string())),
        ));
        cols.push((
            "iCE40 Fmax MHz",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| r2(i.fmax_mhz))),
        ));
        cols.push((
            "icetime MHz",
            "--:",
            Box::new(|r| r.ice40.as_ref().map(|i| r2(i.icetime_mhz))),
        ));
    }
    if rows.iter().any(|r| r.ecp5.is_some()) {
        cols.push((
            "ECP5 LUT4",
            "--:",
            Box::new(|r| r.ecp5.as_ref().map(|e| e.lut4.to_string())),
        ));
        cols.push((
            "ECP5 COMB",
            "--:",
            Box::new(|r| r.ecp5.as_ref().map(|e| e.comb.to_string())),
        ));
        cols.push((
            "ECP5 DSP",
            "--:",
            Box::new(|r| r.ecp5.as_ref().map(|e| e.dsps.to_string())),
        ));
        cols.push((
            "ECP5 BRAM",
            "--:",
            Box::new(|r| r.ecp5.as_ref().map(|e| e.brams.to_string())),
        ));
        cols.push((
            "ECP5 Fmax MHz",
            "--:",
            Box::new(|r| r.ecp5.as_ref().map(|e| r2(e.fmax_mhz))),
        ));
    }
    let mut s = table(&all, &cols);

    let with: Vec<&QorRow> = rows.iter().filter(|r| r.vs_baseline.is_some()).collect();
    if !with.is_empty() {
        let ratio = |f: fn(&crate::Ratios) -> Option<f64>| -> Cell<'_> {
            Box::new(move |r: &QorRow| r.vs_baseline.as_ref().and_then(f).map(r2))
        };
        let mut cols: Vec<(&str, &str, Cell<'_>)> = vec![
            ("configuration", "---", Box::new(|r| Some(format!("`{}`", r.config)))),
            (
                "baseline",
                "---",
                Box::new(|r| r.vs_baseline.as_ref().map(|b| format!("`{}`", b.baseline))),
            ),
        ];
        if rows.iter().any(|r| r.gates.is_some()) {
            cols.push(("gates", "--:", ratio(|b| b.gates)));
            cols.push(("gates+FFs", "--:", ratio(|b| b.cells)));
            cols.push(("transistors", "--:", ratio(|b| b.transistors)));
        }
        if rows.iter().any(|r| r.ice40.is_some()) {
            cols.push(("iCE40 LUT4", "--:", ratio(|b| b.ice40_lut4)));
            cols.push(("iCE40 Fmax", "--:", ratio(|b| b.ice40_fmax)));
        }
        if rows.iter().any(|r| r.ecp5.is_some()) {
            cols.push(("ECP5 COMB", "--:", ratio(|b| b.ecp5_comb)));
            cols.push(("ECP5 Fmax", "--:", ratio(|b| b.ecp5_fmax)));
        }
        if rows.iter().any(|r| r.sky130.is_some()) {
            cols.push(("SKY130 area", "--:", ratio(|b| b.sky130_area)));
            cols.push(("SKY130 min period", "--:", ratio(|b| b.sky130_period)));
            cols.push(("SKY130 power", "--:", ratio(|b| b.sky130_power)));
        }
        if rows.iter().any(|r| r.asap7.is_some()) {
            cols.push(("ASAP7 area", "--:", ratio(|b| b.asap7_area)));
            cols.push(("ASAP7 min period", "--:", ratio(|b| b.asap7_period)));
            cols.push(("ASAP7 power", "--:", ratio(|b| b.asap7_power)));
        }
        s.push_str("\nRatios to the FP16-LUT baseline (this / baseline):\n\n");
        s.push_str(&table(&with, &cols));
    }
    for (title, get) in [
        (
            "SKY130 HD",
            (|r: &QorRow| r.sky130.as_ref()) as fn(&QorRow) -> Option<&StdCellStats>,
        ),
        ("ASAP7 RVT", |r: &QorRow| r.asap7.as_ref()),
    ] {
        s.push_str(&markdown_stdcell(rows, title, get));
    }
    s
}

/// A standard-cell table (one library, whole N-lane tops): area, cells, worst paths,
/// Fmax and power; empty when the flow did not run for any row.
fn markdown_stdcell(rows: &[QorRow], title: &str, get: fn(&QorRow) -> Option<&StdCellStats>) -> String {
    let measured: Vec<&QorRow> = rows.iter().filter(|r| get(r).is_some()).collect();
    let Some(first) = measured.first().and_then(|r| get(r)) else {
        return String::new();
    };
    let path = |p: &Option<crate::sta::WorstPath>| {
        p.as_ref()
            .map(|p| format!("`{}` -> `{}` {:.3}", p.start, p.end, p.arrival_ns))
    };
    let cols: Vec<(&str, &str, Cell<'_>)> = vec![
        ("configuration", "---", Box::new(|r| Some(format!("`{}`", r.config)))),
        ("area um^2", "--:", Box::new(move |r| get(r).map(|x| int(x.area_um2)))),
        (
            "seq. um^2",
            "--:",
            Box::new(move |r| get(r).map(|x| int(x.seq_area_um2))),
        ),
        (
            "comb. um^2",
            "--:",
            Box::new(move |r| get(r).map(|x| int(x.comb_area_um2))),
        ),
        ("cells", "--:", Box::new(move |r| get(r).map(|x| x.cells.to_string()))),
        ("FFs", "--:", Box::new(move |r| get(r).map(|x| x.ffs.to_string()))),
        (
            "table FFs",
            "--:",
            Box::new(move |r| get(r).map(|x| x.table_ffs.to_string())),
        ),
        (
            "min period ns (limit)",
            "--:",
            Box::new(move |r| get(r).map(|x| format!("{:.3} ({})", x.min_period_ns, x.limiting))),
        ),
        (
            "Fmax MHz",
            "--:",
            Box::new(move |r| get(r).map(|x| format!("{:.0}", x.fmax_mhz))),
        ),
        (
            "power mW: int. / sw. / leak. / total",
            "--:",
            Box::new(move |r| {
                get(r).map(|x| {
                    format!(
                        "{:.4} / {:.4} / {:.2e} / **{:.4}**",
                        x.power.internal_mw, x.power.switching_mw, x.power.leakage_mw, x.power.total_mw
                    )
                })
            }),
        ),
        (
            "activity",
            "---",
            Box::new(move |r| {
                get(r).map(|x| match &x.recorded {
                    Some(_) => "recorded".to_string(),
                    None => format!("default {}", crate::stdcell::INPUT_ACTIVITY),
                })
            }),
        ),
    ];
    let mut s = format!(
        "\n{title} standard cells ({}), full tops, pre-layout (ideal clock, no placement or routing); power at {:.0} MHz; \
         activity `default`: inputs {} transitions/cycle, duty 0.5, propagated by OpenSTA; `recorded`: see below:\n\n",
        first.library,
        1000.0 / first.clock_period_ns,
        crate::stdcell::INPUT_ACTIVITY,
    );
    s.push_str(&table(&measured, &cols));
    let recorded: Vec<&QorRow> = measured
        .iter()
        .copied()
        .filter(|r| get(r).is_some_and(|x| x.recorded.is_some()))
        .collect();
    if !recorded.is_empty() {
        fn rec(get: fn(&QorRow) -> Option<&StdCellStats>, r: &QorRow) -> Option<&crate::activity::ActivityCoverage> {
            get(r).and_then(|x| x.recorded.as_ref())
        }
        let act: Vec<(&str, &str, Cell<'_>)> = vec![
            ("configuration", "---", Box::new(|r| Some(format!("`{}`", r.config)))),
            (
                "recorded from",
                "---",
                Box::new(move |r| rec(get, r).map(|c| c.source.clone())),
            ),
            (
                "cycles",
                "--:",
                Box::new(move |r| rec(get, r).map(|c| c.cycles.to_string())),
            ),
            (
                "input bits annotated",
                "--:",
                Box::new(move |r| rec(get, r).map(|c| format!("{}/{}", c.inputs, c.inputs_total))),
            ),
            (
                "flip-flops annotated",
                "--:",
                Box::new(move |r| rec(get, r).map(|c| format!("{}/{}", c.registers, c.registers_total))),
            ),
        ];
        s.push_str(&format!(
            "\n{title} recorded activity (a traced Verilator run; inputs and flip-flops annotated, the rest propagated by OpenSTA):\n\n"
        ));
        s.push_str(&table(&recorded, &act));
    }
    let paths: Vec<(&str, &str, Cell<'_>)> = vec![
        ("configuration", "---", Box::new(|r| Some(format!("`{}`", r.config)))),
        (
            "worst reg -> reg path: start -> end, arrival ns",
            "---",
            Box::new(move |r| get(r).and_then(|x| path(&x.reg2reg))),
        ),
        (
            "worst input -> reg (incl. input delay)",
            "---",
            Box::new(move |r| get(r).and_then(|x| path(&x.in2reg))),
        ),
    ];
    s.push_str(&format!("\n{title} worst paths:\n\n"));
    s.push_str(&table(&measured, &paths));
    s
}

/// Cells (gates and flip-flops) per lane by block, from the hierarchical gate-set
/// netlist (the gate flow), one column per configuration; empty when the gate flow did not
/// run. Shared logic of the top is divided by the lanes as well.
pub fn markdown_blocks(rows: &[QorRow]) -> String {
    let measured: Vec<&QorRow> = rows.iter().filter(|r| r.gates.is_some()).collect();
    if measured.is_empty() {
        return String::new();
    }
    let blocks: BTreeSet<&str> = measured
        .iter()
        .flat_map(|r| r.gates.as_ref().expect("filtered").blocks.keys().map(String::as_str))
        .collect();
    let mut s = String::from("| block |");
    for r in &measured {
        let _ = write!(s, " `{}` |", r.config);
    }
    s.push_str("\n|---|");
    s.push_str(&"--:|".repeat(measured.len()));
    s.push('\n');
    let per_lane = |r: &QorRow, n: u64| n as f64 / f64::from(r.lanes.max(1));
    for b in &blocks {
        let _ = write!(s, "| {b} |");
        for r in &measured {
            let n = r.gates.as_ref().expect("filtered").blocks.get(*b).copied();
            let _ = write!(s, " {} |", opt(n, |n| int(per_lane(r, n))));
        }
        s.push('\n');
    }
    s.push_str("| **total** |");
    for r in &measured {
        let t: u64 = r.gates.as_ref().expect("filtered").blocks.values().sum();
        let _ = write!(s, " **{}** |", int(per_lane(r, t)));
    }
    s.push('\n');
    s
}

/// Reads rows written by [`to_json`].
pub fn from_json(text: &str) -> Result<Vec<QorRow>, serde_json::Error> {
    serde_json::from_str(text)
}

/// The rows as pretty-printed JSON (an array of [`QorRow`]), with a final newline.
pub fn to_json(rows: &[QorRow]) -> String {
    serde_json::to_string_pretty(rows).expect("QorRow always serializes") + "\n"
}
