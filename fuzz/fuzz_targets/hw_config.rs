//! Fuzzes the decode-lane configuration parser (`sop-hw`, TOML `[[config]]` files).
//!
//! Input: the text of a configuration file (non-UTF-8 inputs are skipped: the loader reads a
//! `String`). Checks: no panic; every accepted configuration validates, and its own TOML
//! (`LaneConfig::to_toml`) parses back to the same configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sop_hw::config::{parse_configs, parse_lut, parse_output, parse_scale};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = (parse_scale(text), parse_lut(text), parse_output(text));
    let Ok(configs) = parse_configs(text) else { return };
    assert!(!configs.is_empty());
    for c in &configs {
        c.validate().expect("accepted configuration validates");
        let back = parse_configs(&c.to_toml()).expect("a configuration's own TOML parses");
        assert_eq!(back, vec![c.clone()]);
        let _ = c.summary();
    }
});
