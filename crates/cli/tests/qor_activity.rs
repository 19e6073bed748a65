//! `sop rtl qor --flows sky130 --activity minilm`: power from the switching activity of a
//! real MiniLM layer co-simulated through the traced Verilated model, on the main HIF lane
//! and its FP16-LUT baseline; and its errors on bad input (activity file missing,
//! unreadable, of another design; an OpenSTA without the annotation command). Needs
//! yosys, sta (Debian `opensta`) and the minilm weights, like the other standard-cell tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MAIN: &str = "sop_c4_hif8_ue4m4_fp16";
const BASELINE: &str = "sop_c4_fp16lut_ue4m4_fp16";

/// A configuration file holding the main HIF lane (the run adds its baseline).
fn main_config(dir: &Path) -> PathBuf {
    let c = sop_hw::default_configs().into_iter().find(|c| c.name == MAIN).unwrap();
    let p = dir.join("main.toml");
    std::fs::write(&p, format!("[[config]]\n{}\n", c.to_toml())).unwrap();
    p
}

fn sop(args: &[&str], path: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sop"));
    cmd.args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `sop rtl qor --flows sky130 --config CFG ARGS...`, with `PATH` replaced when given.
fn qor_sky130(cfg: &Path, args: &[&str], path: Option<&Path>) -> (bool, String, String) {
    let mut all = vec!["rtl", "qor", "--flows", "sky130", "--config", s(cfg)];
    all.extend_from_slice(args);
    sop(&all, path)
}

fn rows(json: &Path) -> Vec<sop_qor::QorRow> {
    sop_qor::from_json(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The recorded-activity power of both lanes is read back, annotates every input bit and
/// nearly every flip-flop, and differs from the default-activity power of the same netlist.
#[test]
fn minilm_activity_changes_the_power() {
    let t = tempfile::tempdir().unwrap();
    let cfg = main_config(t.path());
    let (rec_json, def_json, work) = (t.path().join("rec.json"), t.path().join("def.json"), t.path().join("w"));
    let (ok, out, err) = qor_sky130(
        &cfg,
        &[
            "--activity",
            "minilm",
            "--activity-weights",
            "8192",
            "--json",
            s(&rec_json),
            "--work-dir",
            s(&work),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("recorded activity") && out.contains("| recorded |"),
        "{out}"
    );
    let (ok, _, err) = qor_sky130(&cfg, &["--json", s(&def_json)], None);
    assert!(ok, "{err}");
    let (rec, def) = (rows(&rec_json), rows(&def_json));
    assert_eq!(
        rec.iter().map(|r| r.config.as_str()).collect::<Vec<_>>(),
        [MAIN, BASELINE]
    );
    for (r, d) in rec.iter().zip(&def) {
        let (rs, ds) = (r.sky130.as_ref().unwrap(), d.sky130.as_ref().unwrap());
        assert!(
            ds.recorded.is_none() && ds.activity.starts_with("default"),
            "{}",
            ds.activity
        );
        let c = rs.recorded.as_ref().expect("recorded activity");
        assert!(
            c.source.contains("minilm") && c.source.contains("8192 weights"),
            "{}",
            c.source
        );
        assert!(c.cycles > 8192 / 4, "{c:?}");
        assert_eq!(c.inputs, c.inputs_total, "{c:?}");
        assert_eq!(c.registers_total, rs.ffs, "{c:?}");
        assert!(c.registers * 100 >= c.registers_total * 95, "{c:?}");
        assert!(c.loads >= c.registers, "{c:?}");
        // The same netlist, another activity.
        assert_eq!((rs.area_um2, rs.cells), (ds.area_um2, ds.cells));
        assert_eq!(rs.power.leakage_mw, ds.power.leakage_mw);
        let (pr, pd) = (rs.power.total_mw, ds.power.total_mw);
        assert!(
            pr > 0.0 && (pr - pd).abs() > 0.02 * pd,
            "{}: recorded {pr} mW vs default {pd} mW",
            r.config
        );
        assert!(std::fs::read_to_string(work.join(&r.config).join("sky130/sta.log"))
            .unwrap()
            .contains("@@ activity"));
    }
    // Power ratios only at the same kind of activity.
    assert!(rec[0].vs_baseline.as_ref().unwrap().sky130_power.is_some());
}

/// Missing, unreadable and foreign activity files: one error naming the file, exit status
/// non-zero, before any tool runs.
#[test]
fn bad_activity_files_are_named() {
    let t = tempfile::tempdir().unwrap();
    let cfg = main_config(t.path());
    let run = |act: &str| {
        let (ok, _, err) = qor_sky130(&cfg, &["--activity", act], None);
        assert!(!ok, "--activity {act} succeeded");
        err
    };
    let missing = t.path().join("no-such.vcd");
    let e = run(&format!("{MAIN}={}", missing.display()));
    assert!(
        e.contains("activity file") && e.contains("no-such.vcd") && e.contains("cannot read it"),
        "{e}"
    );

    let junk = t.path().join("junk.vcd");
    std::fs::write(&junk, "not a waveform\n").unwrap();
    let e = run(&format!("{MAIN}={}", junk.display()));
    assert!(e.contains("junk.vcd") && e.contains("not a VCD"), "{e}");

    // A VCD of another design (the baseline's top).
    let other = t.path().join("other.vcd");
    std::fs::write(
        &other,
        format!("$scope module TOP $end\n$scope module {BASELINE} $end\n$var wire 1 ! clock $end\n$upscope $end\n$upscope $end\n$enddefinitions $end\n#0\n0!\n#5\n1!\n"),
    )
    .unwrap();
    let e = run(&format!("{MAIN}={}", other.display()));
    assert!(
        e.contains("other.vcd") && e.contains(&format!("no scope `{MAIN}`")),
        "{e}"
    );

    let e = run("nonsense");
    assert!(e.contains("--activity nonsense") && e.contains("minilm"), "{e}");
    let e = run(&format!("sop_no_such_config={}", junk.display()));
    assert!(e.contains("sop_no_such_config") && e.contains("not in the run"), "{e}");
}

/// An OpenSTA without `sta::set_power_pin_activity` (the real one with the command
/// removed): one error naming the command and what to install.
#[test]
fn sta_without_the_annotation_command_is_named() {
    let t = tempfile::tempdir().unwrap();
    let cfg = main_config(t.path());
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap();
    let find = |name: &str| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("`{name}` is not installed (scripts/install-deps installs it)"))
    };
    for tool in ["yosys", "gzip", "berkeley-abc"] {
        std::os::unix::fs::symlink(find(tool), bin.join(tool)).unwrap();
    }
    // The stand-in runs the real sta on the flow's script after removing the command.
    let sta = bin.join("sta");
    std::fs::write(
        &sta,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -version ]; then exec {real} -version; fi\n\
             printf 'rename ::sta::set_power_pin_activity {{}}\\nsource sta.tcl\\n' > old-sta.tcl\n\
             exec {real} -no_init -no_splash -exit old-sta.tcl\n",
            real = find("sta").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&sta, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A short recording of the main lane (minilm, 256 weights).
    let vcd = t.path().join("main.vcd");
    sop_cosim::record_activity(MAIN, "minilm", "layer.0.attention.self.query", Some(256), &vcd).unwrap();
    let (ok, _, err) = qor_sky130(&cfg, &["--activity", &format!("{MAIN}={}", vcd.display())], Some(&bin));
    assert!(!ok);
    assert!(
        err.contains("set_power_pin_activity") && err.contains("apt-get install -y opensta"),
        "{err}"
    );
}
