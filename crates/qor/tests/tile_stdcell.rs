//! The SKY130 standard-cell flow (Yosys + OpenSTA, pre-layout) on both dot-product tiles in
//! one run: the HIF tile against its conventional baseline at equal MACs per cycle, the
//! figures docs/qor.md ("The dot-product tiles") states. A missing tool or PDK fails the
//! test naming what to install (CI installs them: scripts/install-deps).

use sop_qor::{run_tiles, tile, Flow, QorOptions};

/// The tile issue's Fmax target (HIF >= 1.2 x the conventional tile) is met in SKY130 and
/// held here; its area target (<= 0.5 x) is not (0.65 x measured), so the area is held at
/// the measured level (<= 0.70 x, a regression guard) until the generator gets there. Both
/// tiles also keep one shared table copy (checked inside the flow) and report a
/// register-to-register critical path.
#[test]
fn hif_tile_sky130_against_the_conventional_tile() {
    let opts = QorOptions {
        flows: vec![Flow::Sky130],
        tiles: sop_hw::emit::TILES.to_vec(),
        progress: false,
        ..QorOptions::default()
    };
    let rows = run_tiles(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let s = r.sky130.as_ref().expect("sky130 flow ran");
        assert_eq!(r.macs_per_cycle, 4, "{}", r.tile);
        let rr = s.reg2reg.as_ref().expect("a register-to-register path");
        assert!(rr.start.ends_with("_reg") && rr.end.ends_with("_reg"), "{rr:?}");
        assert!(s.area_um2 > 0.0 && s.fmax_mhz > 0.0, "{s:?}");
    }
    let ratio = |what: &str| {
        tile::ratios(&rows[0], &rows[1])
            .into_iter()
            .find(|(w, _)| w == what)
            .unwrap_or_else(|| panic!("no ratio {what}"))
            .1
    };
    let (fmax, area) = (ratio("SKY130 Fmax"), ratio("SKY130 area"));
    assert!(
        fmax >= 1.2,
        "SKY130 Fmax {fmax:.3} x the conventional tile (target >= 1.2; 1.22 measured when this test was written)"
    );
    assert!(
        area <= 0.70,
        "SKY130 area {area:.3} x the conventional tile (target 0.5; 0.65 measured when this test was written)"
    );
    assert!(ratio("SKY130 MAC/s per area") > 1.5);
}
