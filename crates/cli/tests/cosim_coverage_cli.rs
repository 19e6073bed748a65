//! `sop cosim --coverage` through the binary: the JSON report, the summary line, the shards'
//! reports merged by `sop cosim merge-coverage`, and the bad-input cases (each a clear error
//! and a non-zero exit). One real minilm layer (cached weights), a prefix, one configuration.

use std::process::{Command, Output};

const ARGS: [&str; 8] = [
    "cosim",
    "--model",
    "minilm",
    "--layers",
    "layer\\.0\\.attention\\.self\\.query\\.weight$",
    "--max-weights=1024",
    "--config",
    "CONFIG",
];

/// A configuration file with the committed `sop_c4_hif8_ue4m4_fp16` (4 lanes).
fn config(dir: &std::path::Path) -> String {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        "name = \"sop_c4_hif8_ue4m4_fp16\"\nlanes = 4\ncode_bits = 4\nblock = 16\nscale = \"UE4M4\"\nlut = \"HIF8\"\noutput = \"FP16\"\n",
    )
    .unwrap();
    p.display().to_string()
}

fn sop(dir: &std::path::Path, extra: &[&str]) -> Output {
    let cfg = config(dir);
    let args: Vec<String> = ARGS
        .iter()
        .map(|a| if *a == "CONFIG" { cfg.clone() } else { a.to_string() })
        .collect();
    Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(&args)
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn coverage_report_summary_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cov = d.join("cov.json");
    let out = sop(d, &["--coverage", cov.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    let line = so
        .lines()
        .find(|l| l.starts_with("coverage: "))
        .unwrap_or_else(|| panic!("no coverage line in {so}"));
    assert!(
        line.contains("reachable bins (100.0 %)") && line.ends_with(", 0 holes"),
        "{line}"
    );
    assert!(!so.contains("coverage hole:"), "{so}");
    assert!(so.lines().last().unwrap().starts_with("cosim: "), "{so}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cov).unwrap()).unwrap();
    assert_eq!(v["reachable"], v["hit"]);
    assert!(v["bins"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["hits"].as_u64().unwrap() > 0));

    // Without the directed item: holes, printed one per line.
    let real = d.join("real.json");
    let out = sop(d, &["--coverage", real.to_str().unwrap(), "--no-directed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(so.contains("coverage hole: sop_c4_hif8_ue4m4_fp16/lane/"), "{so}");

    // Two shards' reports merge into the whole run's.
    let mut files = Vec::new();
    for k in 1..=2 {
        let f = d.join(format!("s{k}.json"));
        let out = sop(d, &["--coverage", f.to_str().unwrap(), "--shard", &format!("{k}/2")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        files.push(f.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args([
            "cosim",
            "merge-coverage",
            merged.to_str().unwrap(),
            &files[1],
            &files[0],
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("merge-coverage: 2 files, 2 items"),
        "{}",
        text(&out.stdout)
    );
    let a: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(a, v, "merged shards = the whole run");

    // The same file twice: an overlap.
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args([
            "cosim",
            "merge-coverage",
            d.join("m2.json").to_str().unwrap(),
            &files[0],
            &files[0],
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("shards overlap or a file was given twice"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_coverage_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sop_bin = || Command::new(env!("CARGO_BIN_EXE_sop"));
    // --no-directed needs --coverage; --coverage does not go with --soak (argument errors).
    let out = sop_bin().args(["cosim", "--no-directed"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--coverage"), "{}", text(&out.stderr));
    let out = sop_bin()
        .args(["cosim", "--soak", "1", "--coverage", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--coverage"), "{}", text(&out.stderr));
    // A report that cannot be written names the file.
    let bad = d.join("no-such-dir").join("cov.json");
    let out = sop(d, &["--coverage", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cov.json"), "{}", text(&out.stderr));
    // merge-coverage: not JSON, not a coverage report, a missing file.
    let junk = d.join("junk.json");
    std::fs::write(&junk, "{ not json").unwrap();
    let other = d.join("other.json");
    std::fs::write(&other, "{\"a\": 1}").unwrap();
    for (input, want) in [
        (junk.to_str().unwrap(), "junk.json: not JSON"),
        (other.to_str().unwrap(), "other.json: no `bins` array"),
        ("/nonexistent/c.json", "cannot read /nonexistent/c.json"),
    ] {
        let out = sop_bin()
            .args(["cosim", "merge-coverage", d.join("m.json").to_str().unwrap(), input])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{input}");
        assert!(text(&out.stderr).contains(want), "{input}: {}", text(&out.stderr));
    }
}
