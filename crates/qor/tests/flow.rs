//! The gate and iCE40 flows on one configuration (the main HIF8 lane): the parsed figures
//! are positive and consistent with each other and with the configuration. The full
//! six-configuration run with ECP5 is the documented command in docs/qor.md. A missing
//! tool fails the test, naming it and its install command.

use sop_qor::{run, Flow, QorOptions};

#[test]
fn gates_and_ice40_on_one_configuration() {
    let cfg = sop_hw::default_configs()
        .into_iter()
        .find(|c| c.name == "sop_c4_hif8_ue4m4_fp16")
        .unwrap();
    let opts = QorOptions {
        configs: vec![cfg.clone()],
        flows: vec![Flow::Gates, Flow::Ice40],
        seeds: 2,
        add_baseline: false,
        ..QorOptions::default()
    };
    let rows = run(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.config.as_str(), r.lanes, r.lut_bits_per_table),
        (cfg.name.as_str(), 4, 128)
    );
    assert!(r.ecp5.is_none() && r.vs_baseline.is_none());

    let g = r.gates.as_ref().expect("gate flow ran");
    assert!(g.gates > 0 && g.ffs > 0 && g.transistors > 0, "{g:?}");
    let lanes = f64::from(r.lanes);
    assert_eq!(g.gates_per_lane * lanes, g.gates as f64);
    assert_eq!(g.cells_per_lane * lanes, (g.gates + g.ffs) as f64);
    let by_type_total: u64 = g.by_type.values().sum();
    assert_eq!(by_type_total, g.gates + g.ffs, "{:?}", g.by_type);
    // Every lane needs its pipeline registers; the tables (two of 16 x 8 bits) exist at
    // least once (the lanes' identical copies may be merged).
    assert!(g.ffs >= 2 * 128 + 4 * 16, "{g:?}");
    // A 2-input NAND/NOR is 4 transistors, an inverter 2: the CMOS netlist of the same
    // logic cannot have fewer than 2 per generic gate.
    assert!(g.transistors >= 2 * g.gates, "{g:?}");
    for block in ["LUT tables + read", "multiplier", "packer A", "packer B"] {
        assert!(g.blocks.get(block).copied().unwrap_or(0) > 0, "{block}: {:?}", g.blocks);
    }
    // The hierarchical netlist cannot share logic across blocks, so it is not smaller.
    assert!(g.blocks.values().sum::<u64>() >= g.gates + g.ffs, "{:?}", g.blocks);

    let i = r.ice40.as_ref().expect("iCE40 flow ran");
    assert!(i.lut4 > 0 && i.carries > 0 && i.ffs > 0, "{i:?}");
    // Each LUT4 and each flip-flop occupies a logic cell (they may share one).
    assert!(
        i.logic_cells >= i.lut4.max(i.ffs) && i.logic_cells <= i.lut4 + i.ffs + i.carries,
        "{i:?}"
    );
    assert_eq!(i.fmax_mhz_seeds.len(), 2);
    assert!(i.fmax_mhz_seeds.contains(&i.fmax_mhz));
    for f in i.fmax_mhz_seeds.iter().chain([&i.icetime_mhz]) {
        assert!(*f > 5.0 && *f < 500.0, "{i:?}");
    }

    let md = sop_qor::markdown(&rows);
    assert!(md.contains("`sop_c4_hif8_ue4m4_fp16` | 4 | 16x8 = 128"), "{md}");
    let back: Vec<sop_qor::QorRow> = serde_json::from_str(&sop_qor::to_json(&rows)).unwrap();
    assert_eq!(back, rows);
}

/// The area and frequency targets for the main HIF lane, measured against the
/// FP16-LUT lane the run adds as its baseline: at most 0.5 x the gates per lane and at
/// least 1.2 x the iCE40 Fmax (one nextpnr seed each: the margin, 0.46 x and 1.8 x in
/// docs/qor.md, is far above the spread of a placement). An area or timing regression of
/// the generator fails here. The error target needs minilm's weights and minutes of
/// quantization: `scripts/qor --recon minilm` (docs/qor.md).
#[test]
fn main_hif_lane_meets_the_area_and_fmax_targets() {
    let cfg = sop_hw::default_configs()
        .into_iter()
        .find(|c| c.name == "sop_c4_hif8_ue4m4_fp16")
        .unwrap();
    let opts = QorOptions {
        configs: vec![cfg],
        flows: vec![Flow::Gates, Flow::Ice40],
        seeds: 1,
        add_baseline: true,
        ..QorOptions::default()
    };
    let rows = run(&opts).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = rows.iter().map(|r| r.config.as_str()).collect();
    assert_eq!(names, ["sop_c4_hif8_ue4m4_fp16", "sop_c4_fp16lut_ue4m4_fp16"]);
    let v = rows[0].vs_baseline.as_ref().expect("ratios to the baseline");
    assert_eq!(v.baseline, "sop_c4_fp16lut_ue4m4_fp16");
    let gates = v.gates.expect("gate ratio");
    let fmax = v.ice40_fmax.expect("iCE40 Fmax ratio");
    assert!(
        gates <= 0.5,
        "gates per lane {gates:.3} x the FP16-LUT lane (target <= 0.5)"
    );
    assert!(fmax >= 1.2, "iCE40 Fmax {fmax:.3} x the FP16-LUT lane (target >= 1.2)");
}
