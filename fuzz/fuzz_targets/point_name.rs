//! Fuzzes the operating-point and menu-option name parsers (`sop-formats`, `sop-quantize`)
//! and the format-name parser.
//!
//! Input: a name as UTF-8 text (e.g. `NF4+DD4sUE4M4b16-HIF8`, `E4M3-POT`,
//! `E2M3sUE4M4b32+O0.5%+R1%`). Checks: no panic; an accepted name prints to a canonical
//! name that parses back to the same point / option, and its bits per weight are finite and
//! at least the code width.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sop_formats::{Format, OperatingPoint};
use sop_quantize::sparse::MenuOption;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if let Ok(f) = name.parse::<Format>() {
        assert_eq!(f.name().parse::<Format>().map(|g| g.name()), Ok(f.name()));
    }
    if let Ok(p) = name.parse::<OperatingPoint>() {
        let canonical = p.to_string();
        assert_eq!(canonical.parse::<OperatingPoint>(), Ok(p), "{name} -> {canonical}");
        let bpw = p.nominal_bpw();
        assert!(bpw.is_finite() && bpw >= p.code_bits() as f64, "{name}: {bpw}");
        for (rows, cols) in [(1, 1), (3, 17), (4096, 4096)] {
            assert!(p.layer_bits(rows, cols) >= rows * cols * p.code_bits() as u64);
        }
    }
    if let Ok(o) = name.parse::<MenuOption>() {
        let canonical = o.to_string();
        assert_eq!(canonical.parse::<MenuOption>(), Ok(o), "{name} -> {canonical}");
    }
});
