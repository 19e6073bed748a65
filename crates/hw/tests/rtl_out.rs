//! The committed Verilog in `rtl-out/`: byte-for-byte what the generator emits, lint
//! clean under `verilator --lint-only -Wall` (waivers only in `rtl-out/verilator.vlt`),
//! and synthesizable by Yosys without latches. Missing tools fail the test, by name.

use std::path::PathBuf;
use std::process::Command;

use sop_hw::{
    default_configs,
    emit::{sdc, sdc_named, tile_name, tile_verilog, verilog, TILES, TILE_ROWS},
};

fn rtl_out() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rtl-out")
}

fn tool(name: &str) {
    let ok = Command::new(name)
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{name}` is not installed or not on PATH (apt-get install -y {name}); this test needs it"
    );
}

#[test]
fn committed_files_match_the_generator() {
    for c in default_configs() {
        let path = rtl_out().join(format!("{}.v", c.name));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with `cargo run -p sop-hw --example emit`",
                path.display()
            )
        });
        let fresh = verilog(&c).unwrap();
        assert!(
            committed == fresh,
            "{} differs from the generator output; regenerate with `cargo run -p sop-hw --example emit`",
            path.display()
        );
        assert_eq!(fresh, verilog(&c).unwrap(), "emission is not deterministic");
        // The timing constraints beside it (`sop rtl emit` writes both).
        let path = rtl_out().join(format!("{}.sdc", c.name));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with `cargo run -p sop-hw --example emit`",
                path.display()
            )
        });
        assert!(
            committed == sdc(&c),
            "{} differs from the generator output; regenerate with `cargo run -p sop-hw --example emit`",
            path.display()
        );
    }
}

#[test]
fn committed_tiles_match_the_generator() {
    for (kind, act) in TILES {
        let name = tile_name(kind, act);
        for (ext, fresh) in [("v", tile_verilog(kind, act, TILE_ROWS)), ("sdc", sdc_named(&name))] {
            let path = rtl_out().join(format!("{name}.{ext}"));
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with `cargo run -p sop-hw --example emit`",
                    path.display()
                )
            });
            assert!(
                committed == fresh,
                "{} differs from the generator output; regenerate with `cargo run -p sop-hw --example emit`",
                path.display()
            );
        }
    }
}

/// Every committed top: the lane configurations and the tiles.
fn tops() -> Vec<String> {
    default_configs()
        .into_iter()
        .map(|c| c.name)
        .chain(TILES.into_iter().map(|(k, a)| tile_name(k, a)))
        .collect()
}

#[test]
fn verilator_lint_clean() {
    tool("verilator");
    let vlt = rtl_out().join("verilator.vlt");
    assert!(vlt.exists(), "{} is missing", vlt.display());
    for name in tops() {
        let f = rtl_out().join(format!("{name}.v"));
        let out = Command::new("verilator")
            .args(["--lint-only", "-Wall", "--top-module", &name])
            .arg(&vlt)
            .arg(&f)
            .output()
            .expect("run verilator");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "verilator lint of {}:\n{text}",
            f.display()
        );
    }
}

#[test]
fn yosys_synthesizes_without_latches() {
    tool("yosys");
    let children: Vec<_> = tops()
        .into_iter()
        .map(|name| {
            let f = rtl_out().join(format!("{name}.v"));
            let script = format!(
                "read_verilog {}; synth -top {}; check -assert; select -assert-none t:$_DLATCH* t:$dlatch* t:$_SR_* t:$sr",
                f.display(),
                name
            );
            let child = Command::new("yosys")
                .args(["-q", "-p", &script])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run yosys");
            (name, child)
        })
        .collect();
    for (name, child) in children {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "yosys on {name}:\n{text}");
        assert!(
            !text.contains("Latch inferred"),
            "yosys inferred a latch in {name}:\n{text}"
        );
    }
}
