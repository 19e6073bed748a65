//! Determinism: `sop calibrate`, `sop quantize` and `sop eval --json` on the real MiniLM give
//! byte-identical output files at 1, 2 and 8 worker threads (`--threads`). Needs the cached
//! weights (`minilm`, fetched on first use).

mod common;

use common::files;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

const THREADS: [&str; 3] = ["1", "2", "8"];

/// Runs `sop --threads <threads> <args>` and asserts success.
fn sop(threads: &str, args: &[&str]) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .arg("--threads")
        .arg(threads)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sop --threads {threads} {args:?}: {err}");
    eprintln!(
        "sop --threads {threads} {}: {:.1} s",
        args[0],
        t0.elapsed().as_secs_f64()
    );
}

/// Asserts that every run wrote the same set of files with the same bytes.
fn assert_identical(what: &str, runs: &[BTreeMap<String, Vec<u8>>]) {
    assert!(!runs[0].is_empty(), "{what}: no output");
    for (t, r) in THREADS.iter().zip(runs).skip(1) {
        assert_eq!(
            r.keys().collect::<Vec<_>>(),
            runs[0].keys().collect::<Vec<_>>(),
            "{what}: files at {t} threads"
        );
        for (name, bytes) in r {
            assert!(
                bytes == &runs[0][name],
                "{what}: {name} differs between 1 and {t} threads"
            );
        }
    }
}

#[test]
fn same_bytes_at_1_2_and_8_threads() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    // Calibration: activation sums over real text, parallel inside every matmul and sum.
    let mut cal = Vec::new();
    for t in THREADS {
        let dir = root.join(format!("cal{t}"));
        std::fs::create_dir(&dir).unwrap();
        let out = dir.join("imatrix.gguf");
        sop(
            t,
            &[
                "calibrate",
                "--model",
                "minilm",
                "--max-sentences",
                "48",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        cal.push(files(&dir));
    }
    assert_identical("calibrate", &cal);
    let imatrix = root.join("cal1/imatrix.gguf");
    let imatrix = imatrix.to_str().unwrap();

    // Quantization of the first encoder block (six real layers, 1.8 M weights) with the
    // default menu and search: model file and both reports.
    let mut quant = Vec::new();
    for t in THREADS {
        let out = root.join(format!("q{t}"));
        sop(
            t,
            &[
                "quantize",
                "--model",
                "minilm",
                "--imatrix",
                imatrix,
                "--layers",
                r"^encoder\.layer\.0\.",
                "--target-bpw",
                "4.75",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        quant.push(files(&out));
    }
    assert_identical("quantize", &quant);
    assert_eq!(
        quant[0].keys().collect::<Vec<_>>(),
        ["model.sop.safetensors", "report.json", "report.md"]
    );
    let report: serde_json::Value = serde_json::from_slice(&quant[0]["report.json"]).unwrap();
    assert_eq!(report["layers"].as_array().unwrap().len(), 6, "{report}");

    // Evaluation JSON (the metrics are parallel reductions).
    let mut eval = Vec::new();
    for t in THREADS {
        let dir = root.join(format!("eval{t}"));
        std::fs::create_dir(&dir).unwrap();
        let json = dir.join("eval.json");
        sop(
            t,
            &[
                "eval",
                "--model",
                "minilm",
                "--imatrix",
                imatrix,
                "--layers",
                r"^encoder\.layer\.1\.",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        eval.push(files(&dir));
    }
    assert_identical("eval", &eval);
}

#[test]
fn threads_zero_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(["--threads", "0", "formats", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--threads"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
