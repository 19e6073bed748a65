//! The FuseSoC package `sop_rtl.core` (repository root) lists exactly the committed
//! generated Verilog, every file it names exists, and every target's top module is defined
//! in its files. (The FuseSoC run itself is documented in docs/qor.md; the board flow is
//! checked in tests/board.rs.)

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(fileset, path)` for every file line of the `filesets:` section.
fn core_files(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_filesets = false;
    let mut fileset = String::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_filesets = line.trim_end() == "filesets:";
            continue;
        }
        if !in_filesets {
            continue;
        }
        let t = line.trim();
        if line.starts_with("  ") && !line.starts_with("   ") && t.ends_with(':') {
            fileset = t.trim_end_matches(':').to_string();
        } else if let Some(item) = t.strip_prefix("- ") {
            let path = item.split(" : ").next().unwrap().trim().to_string();
            out.push((fileset.clone(), path));
        }
    }
    out
}

#[test]
fn core_file_matches_the_repository() {
    let text = std::fs::read_to_string(root().join("sop_rtl.core")).unwrap();
    assert!(text.starts_with("CAPI=2:"), "not a CAPI2 core file");
    let files = core_files(&text);
    assert!(!files.is_empty());
    for (set, f) in &files {
        assert!(root().join(f).is_file(), "fileset {set}: {f} does not exist");
    }
    let listed: BTreeSet<String> = files
        .iter()
        .filter(|(s, _)| s == "rtl")
        .map(|(_, f)| f.clone())
        .collect();
    let committed: BTreeSet<String> = std::fs::read_dir(root().join("rtl-out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".v"))
        .map(|n| format!("rtl-out/{n}"))
        .collect();
    assert_eq!(listed, committed, "fileset rtl must list exactly rtl-out/*.v");
    let defaults: BTreeSet<String> = sop_hw::default_configs()
        .iter()
        .map(|c| c.name.clone())
        .chain(
            sop_hw::emit::TILES
                .into_iter()
                .map(|(k, a)| sop_hw::emit::tile_name(k, a)),
        )
        .map(|n| format!("rtl-out/{n}.v"))
        .collect();
    assert_eq!(listed, defaults);
    // The SDC of every top, for an ASIC flow (fileset `sdc`, target `asic`).
    let sdc: BTreeSet<String> = files
        .iter()
        .filter(|(s, _)| s == "sdc")
        .map(|(_, f)| f.clone())
        .collect();
    let want: BTreeSet<String> = defaults.iter().map(|f| f.replace(".v", ".sdc")).collect();
    assert_eq!(sdc, want, "fileset sdc must list exactly rtl-out/<top>.sdc");

    // Every toplevel is a module of the core's files.
    let mut modules = BTreeSet::new();
    for (_, f) in &files {
        if f.ends_with(".v") {
            let v = std::fs::read_to_string(root().join(f)).unwrap();
            for l in v.lines() {
                if let Some(rest) = l.trim_start().strip_prefix("module ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
                        .collect();
                    modules.insert(name);
                }
            }
        }
    }
    let tops: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("toplevel:").nth(1))
        .map(|t| t.trim().trim_end_matches('}').trim())
        .collect();
    assert!(tops.len() >= 7, "{tops:?}");
    for t in tops {
        assert!(modules.contains(t), "toplevel {t} is not defined in the core's files");
    }
}
