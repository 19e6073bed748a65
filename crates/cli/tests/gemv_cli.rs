//! `sop gemv` end to end on the built-in minilm: real quantized layers and real held-out
//! activations through the Verilated dot-product tile, the summary line, JUnit and JSON; the
//! whole forward pass through the tile on one short sentence (cosine within 1e-4 of the
//! software-quantized model's, the issue's target); bad options fail with one clear error.

mod common;

use common::{one_line_error, sop};

/// `gemv: <L> layers, <T> tokens, <D> dot products, <K> mismatches, <R> M MAC/s`.
fn summary(stdout: &str) -> (u64, u64, u64, u64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("gemv: "))
        .unwrap_or_else(|| panic!("no summary line in: {stdout}"));
    let re = regex::Regex::new(
        r"^gemv: (\d+) layers, (\d+) tokens, (\d+) dot products, (\d+) mismatches, ([0-9.]+) M MAC/s$",
    )
    .unwrap();
    let c = re.captures(line).unwrap_or_else(|| panic!("malformed summary: {line}"));
    let n = |i: usize| c[i].parse::<u64>().unwrap();
    (n(1), n(2), n(3), n(4), c[5].parse().unwrap())
}

#[test]
fn real_layers_through_the_tile() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("gemv.xml");
    let json = dir.path().join("gemv.json");
    let (code, out, err) = sop(&[
        "gemv",
        "--layers",
        r"layer\.0\.(attention\.self\.value|intermediate)",
        "--sentences",
        "2",
        "--tokens",
        "3",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (layers, tokens, dots, mismatches, rate) = summary(&out);
    assert_eq!((layers, tokens, mismatches), (2, 3, 0), "{out}");
    // value 384 x 384, intermediate 1536 x 384, three tokens each.
    assert_eq!(dots, 3 * (384 + 1536));
    assert!(rate > 0.0);
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"2\" failures=\"0\""), "{x}");
    assert!(x.contains("name=\"encoder.layer.0.intermediate.dense.weight\""), "{x}");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["mismatches"], 0);
    assert_eq!(j["layers"][1]["macs"], 3 * 1536 * 384);
}

#[test]
fn the_forward_pass_through_the_tile() {
    let (code, out, err) = sop(&[
        "gemv",
        "--layers",
        "layer.5.output.dense",
        "--sentences",
        "1",
        "--max-seq-len",
        "8",
        "--tokens",
        "1",
        "--forward",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("model: "))
        .unwrap_or_else(|| panic!("no model line: {out}"));
    let re = regex::Regex::new(r"^model: output-embedding cosine hardware ([0-9.]+), software-quantized ([0-9.]+)$")
        .unwrap();
    let c = re.captures(line).unwrap_or_else(|| panic!("malformed: {line}"));
    let (hw, swq): (f64, f64) = (c[1].parse().unwrap(), c[2].parse().unwrap());
    assert!(hw > 0.99 && swq > 0.99, "{line}");
    assert!((hw - swq).abs() <= 1e-4, "{line}");
}

#[test]
fn bad_options_fail_clearly() {
    let (code, _, err) = sop(&["gemv", "--layers", "no_such_layer", "--sentences", "1", "--tokens", "1"]);
    one_line_error(code, &err, &["--layers", "no_such_layer"]);
    let (code, _, err) = sop(&["gemv", "--sentences", "100000"]);
    one_line_error(code, &err, &["--sentences 100000", "held-out"]);
    let (code, _, err) = sop(&["gemv", "--tokens", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("--tokens"), "{err}");
}
