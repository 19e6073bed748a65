//! Verilator missing: the co-simulation needs it at build time only (the models are
//! Verilated and linked by `build.rs`; `sop cosim` runs without it). This runs the compiled
//! build script of this package with a `PATH` that lacks `verilator` and checks that it
//! stops with one error naming the tool and how to install it, before writing anything.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The most recently built `build-script-build` of this package (cargo puts it in a sibling
/// of `OUT_DIR`'s parent: `target/<profile>/build/sop-cosim-<hash>/`).
fn build_script() -> PathBuf {
    let build = Path::new(env!("OUT_DIR")).parent().unwrap().parent().unwrap();
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(build)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sop-cosim-"))
        .filter_map(|e| {
            let p = e.path().join("build-script-build");
            let t = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((t, p))
        })
        .collect();
    found.sort();
    found.pop().expect("the build script of sop-cosim").1
}

#[test]
fn build_without_verilator_names_the_tool_and_its_install() {
    let dir = std::env::temp_dir().join(format!("sop-cosim-no-verilator-{}", std::process::id()));
    let out = dir.join("out");
    let empty = dir.join("bin");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let run = Command::new(build_script())
        .env_clear()
        .env("PATH", &empty)
        .env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .env("OUT_DIR", &out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for needle in [
        "the tool `verilator` is required",
        "apt-get install verilator",
        "SOP_VERILATOR",
    ] {
        assert!(lines[0].contains(needle), "'{needle}' missing from: {}", lines[0]);
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "the build script wrote files"
    );
    // The same with SOP_VERILATOR pointing nowhere: the message names the path given.
    let run = Command::new(build_script())
        .env_clear()
        .env("PATH", &empty)
        .env("SOP_VERILATOR", "/nonexistent/verilator")
        .env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .env("OUT_DIR", &out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(err.contains("`/nonexistent/verilator` could not be run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
