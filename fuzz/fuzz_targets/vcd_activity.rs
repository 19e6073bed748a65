//! Fuzzes the VCD activity reader (`sop-qor`: `activity::read_vcd`, what `sop rtl qor
//! --activity` reads).
//!
//! Input: the VCD file (of the top module `top`). Checks: no panic, no unbounded allocation;
//! an accepted file has at least one cycle, and every bit a finite, non-negative activity and
//! a duty between 0 and 1.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.vcd");
    std::fs::write(&path, data).unwrap();
    let Ok(a) = sop_qor::activity::read_vcd(&path, "top") else { return };
    assert!(a.cycles > 0);
    for (name, b) in &a.bits {
        assert!(b.activity.is_finite() && b.activity >= 0.0, "{name}: {b:?}");
        assert!((0.0..=1.0).contains(&b.duty), "{name}: {b:?}");
    }
});
