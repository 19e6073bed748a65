//! `sop rtl qor --flows sky130` when a tool is missing or fails: one clear error naming the
//! tool and what to install (or quoting its output), exit status non-zero. The tools are
//! hidden or replaced by running the binary with a `PATH` that holds only stand-ins.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Links the real program `name` (found on the test's own PATH) into `dir`.
fn link_real(dir: &Path, name: &str) {
    let path = std::env::var_os("PATH").unwrap();
    let real = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed (scripts/install-deps installs it)"));
    std::os::unix::fs::symlink(real, dir.join(name)).unwrap();
}

fn qor(bin: &Path, work: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(["rtl", "qor", "--flows", "sky130", "--work-dir"])
        .arg(work)
        .env("PATH", bin)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn missing_sta_names_opensta() {
    let t = tempfile::tempdir().unwrap();
    link_real(t.path(), "yosys");
    link_real(t.path(), "gzip");
    let (ok, err) = qor(t.path(), &t.path().join("work"));
    assert!(!ok);
    assert!(
        err.contains("`sta`") && err.contains("apt-get install -y opensta"),
        "{err}"
    );
}

#[test]
fn missing_yosys_names_it() {
    let t = tempfile::tempdir().unwrap();
    link_real(t.path(), "sta");
    link_real(t.path(), "gzip");
    let (ok, err) = qor(t.path(), &t.path().join("work"));
    assert!(!ok);
    assert!(
        err.contains("`yosys`") && err.contains("apt-get install -y yosys"),
        "{err}"
    );
}

#[test]
fn failing_sta_is_quoted() {
    let t = tempfile::tempdir().unwrap();
    link_real(t.path(), "yosys");
    link_real(t.path(), "gzip");
    // Debian's Yosys runs ABC as the separate program `berkeley-abc`.
    link_real(t.path(), "berkeley-abc");
    // Answers the version check, fails on the timing script.
    script(
        t.path(),
        "sta",
        "if [ \"$1\" = -version ]; then echo 2.0.17; exit 0; fi\necho 'Error: sta stand-in broke'; exit 3",
    );
    let (ok, err) = qor(t.path(), &t.path().join("work"));
    assert!(!ok);
    assert!(err.contains("sta") && err.contains("sta stand-in broke"), "{err}");
}

#[test]
fn failing_yosys_is_quoted() {
    let t = tempfile::tempdir().unwrap();
    link_real(t.path(), "sta");
    link_real(t.path(), "gzip");
    script(
        t.path(),
        "yosys",
        "if [ \"$1\" = -V ]; then echo 'Yosys 0.23'; exit 0; fi\necho 'ERROR: yosys stand-in broke'; exit 1",
    );
    let (ok, err) = qor(t.path(), &t.path().join("work"));
    assert!(!ok);
    assert!(err.contains("yosys") && err.contains("yosys stand-in broke"), "{err}");
}
