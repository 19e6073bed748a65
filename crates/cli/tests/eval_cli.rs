//! End-to-end tests of `sop eval`: the table, the summary and the JSON on real MiniLM layers,
//! and one-line errors for bad input (missing file, corrupt safetensors, a non-2-D tensor,
//! an unknown format, NaN weights).

mod common;

use common::{f32s, one_line_error, safetensors, sop};

use std::path::Path;

/// A hand-written safetensors file: `layer.weight` (2 x 16 F32, given values) and
/// `layer.bias` (16 F32).
fn write_model(path: &Path, weight: &[f32]) {
    let tensors = [
        (
            "layer.weight".to_string(),
            "F32",
            vec![2, 16],
            f32s(weight.iter().copied()),
        ),
        (
            "layer.bias".to_string(),
            "F32",
            vec![16],
            f32s((0..16).map(|i| i as f32)),
        ),
    ];
    std::fs::write(path, safetensors(&tensors).0).unwrap();
}

#[test]
fn eval_minilm_layers_table_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let svg = dir.path().join("nmse.svg");
    let (code, out, err) = sop(&[
        "eval",
        "--model",
        "minilm",
        "--formats",
        "E4M3-POT,E2M3sUE4M4,NF4+DD4sUE4M4b16",
        "--layers",
        r"layer\.0\.attention\.self",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("[3/3]") && err.contains("uniform"), "{err}");
    // 3 layers x 3 formats rows, then the summary.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("encoder.layer.0.attention.self"))
        .collect();
    assert_eq!(rows.len(), 9, "{out}");
    assert!(rows.iter().all(|r| r.contains("384x384")));
    assert!(
        out.contains("median NMSE") && out.contains("E2M3sUE4M4 vs NF4+DD4sUE4M4: 3 - 0"),
        "{out}"
    );
    assert!(out.contains("E4M3-POT vs E2M3sUE4M4: 0 - 3"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9);
    for l in layers {
        for k in ["name", "shape", "format", "bpw", "nmse", "sqnr_db", "cosine"] {
            assert!(!l[k].is_null(), "{k} missing in {l}");
        }
    }
    assert_eq!(layers[0]["shape"], serde_json::json!([384, 384]));
    assert_eq!(layers[1]["format"], "E2M3sUE4M4");
    assert!((layers[1]["bpw"].as_f64().unwrap() - 6.5).abs() < 1e-3);
    assert_eq!(v["summary"]["formats"].as_array().unwrap().len(), 3);
    // The chart: one row per format, one dot per layer, the summary's medians.
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"), "{svg}");
    assert!(svg.contains("Per-layer NMSE: minilm, 3 layers"), "{svg}");
    assert_eq!(svg.matches("<circle").count(), 9, "{svg}");
    for f in v["summary"]["formats"].as_array().unwrap() {
        let label = format!(">{}</text>", f["format"].as_str().unwrap());
        assert!(svg.contains(&label), "{label}: {svg}");
        let median = format!("median {:.3e}</text>", f["median_nmse"].as_f64().unwrap());
        assert!(svg.contains(&median), "{median}: {svg}");
    }
}

#[test]
fn eval_small_file_and_nonfinite_policy() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.safetensors");
    let mut w: Vec<f32> = (0..32).map(|i| (i as f32 - 15.5) / 10.0).collect();
    write_model(&f, &w);
    let (code, out, err) = sop(&["eval", "--model", f.to_str().unwrap(), "--formats", "E2M3sUE4M4"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("layer.weight") && out.contains("2x16"), "{out}");

    w[17] = f32::NAN;
    write_model(&f, &w);
    let (code, _, err) = sop(&["eval", "--model", f.to_str().unwrap(), "--formats", "E2M3sUE4M4"]);
    one_line_error(code, &err, &["layer.weight", "index 17", "--allow-nonfinite"]);
    let (code, out, err) = sop(&[
        "eval",
        "--model",
        f.to_str().unwrap(),
        "--formats",
        "E2M3sUE4M4",
        "--allow-nonfinite",
        "zero",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("layer.weight"));
    let (code, _, err) = sop(&["eval", "--model", f.to_str().unwrap(), "--allow-nonfinite", "maybe"]);
    assert_ne!(code, 0);
    assert!(err.contains("maybe"), "{err}");
}

#[test]
fn eval_bad_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let (code, _, err) = sop(&["eval", "--model", missing.to_str().unwrap()]);
    one_line_error(code, &err, &["nope.safetensors", "does not exist"]);

    let corrupt = dir.path().join("bad.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    let (code, _, err) = sop(&["eval", "--model", corrupt.to_str().unwrap()]);
    one_line_error(code, &err, &["bad.safetensors"]);

    let good = dir.path().join("m.safetensors");
    write_model(&good, &[0.25; 32]);
    let (code, _, err) = sop(&["eval", "--model", good.to_str().unwrap(), "--layers", "layer.bias"]);
    one_line_error(code, &err, &["layer.bias", "[16]", "2-D"]);
    let (code, _, err) = sop(&["eval", "--model", good.to_str().unwrap(), "--layers", "attention"]);
    one_line_error(code, &err, &["--layers", "matches none"]);

    let (code, _, err) = sop(&[
        "eval",
        "--model",
        good.to_str().unwrap(),
        "--formats",
        "E2M3sUE4M4,E9M9sXYZ",
    ]);
    one_line_error(code, &err, &["--formats", "E9M9sXYZ"]);
    let (code, _, err) = sop(&["eval", "--model", good.to_str().unwrap(), "--search-radius", "99"]);
    one_line_error(code, &err, &["--search-radius 99", "out of range"]);
}
