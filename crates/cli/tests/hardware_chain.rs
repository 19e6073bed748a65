//! The quantizer and the hardware meet in the model file: `sop quantize --hw` chooses among
//! what the committed configurations decode, `sop cosim --quantized` streams the file as
//! stored through the Verilated RTL, `sop export` writes what the hardware delivers.

mod common;

use std::path::Path;

use common::{f32s, linear_tensor, one_line_error, safetensors, sop};

/// Two linear layers (one with a few large weights) and a non-linear tensor.
fn write_model(path: &Path) {
    let tensors = [
        linear_tensor("a.weight", 32, 64),
        linear_tensor("b.weight", 48, 40),
        ("a.bias".to_string(), "F32", vec![32], f32s((0..32).map(|i| i as f32))),
    ];
    std::fs::write(path, safetensors(&tensors).0).unwrap();
}

/// The f32 tensors of a safetensors file, by name.
fn read_f32(path: &Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let b = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&b).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, t)| {
            assert_eq!(t.dtype(), safetensors::Dtype::F32, "{n}");
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, (t.shape().to_vec(), v))
        })
        .collect()
}

#[test]
fn quantize_for_the_hardware_cosimulate_the_file_and_export() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.safetensors");
    write_model(&model);
    let (m, q) = (model.to_str().unwrap(), d.path().join("q"));
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "5.5",
        "--out",
        q.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = sop(&["cosim", "--quantized", q.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("cosim: 3968 weights, 2 layers, "), "{out}");
    assert!(last.contains(" 0 mismatches, "), "{out}");
    // One line per option, the weights adding up to the layers'.
    let per_option: u64 = lines
        .iter()
        .filter(|l| l.ends_with(" sparse entries"))
        .map(|l| {
            let w = l.split(", ").nth(1).unwrap();
            w.strip_suffix(" weights").unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(per_option, 3968, "{out}");

    let e = d.path().join("e.safetensors");
    let (code, out, err) = sop(&[
        "export",
        q.to_str().unwrap(),
        "--out",
        e.to_str().unwrap(),
        "--model",
        m,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("export: 2 layers (2 decoded by the hardware model, 0 software)"),
        "{out}"
    );
    let exported = read_f32(&e);
    let original = read_f32(&model);
    assert_eq!(exported.keys().collect::<Vec<_>>(), original.keys().collect::<Vec<_>>());
    assert_eq!(exported["a.bias"], original["a.bias"], "copied through unchanged");
    for name in ["a.weight", "b.weight"] {
        let (s, x) = &exported[name];
        let (s0, w) = &original[name];
        assert_eq!(s, s0);
        let err: f64 = x.iter().zip(w).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let pow: f64 = w.iter().map(|b| (*b as f64).powi(2)).sum();
        assert!(err / pow < 0.02, "{name}: NMSE {}", err / pow);
    }
}

#[test]
fn options_no_hardware_decodes_are_refused_or_named() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.safetensors");
    write_model(&model);
    let m = model.to_str().unwrap();
    let q = d.path().join("q");
    let qs = q.to_str().unwrap();
    // Default --hw committed: the FP8 per-tensor point is not decodable.
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "8",
        "--menu",
        "E4M3-POT",
        "--out",
        qs,
    ]);
    one_line_error(code, &err, &["--menu E4M3-POT", "no block scales", "--hw none"]);
    assert!(!q.exists());
    // Sparse residuals need a correction unit no configuration has.
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "8",
        "--menu",
        "E2M3sUE4M4+R1%",
        "--hw",
        "sop_c6_fp16lut_ue4m4_bf16",
        "--out",
        qs,
    ]);
    one_line_error(code, &err, &["E2M3sUE4M4+R1%", "sparse correction unit"]);
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "8",
        "--hw",
        "sop_c9",
        "--out",
        qs,
    ]);
    one_line_error(code, &err, &["--hw sop_c9", "sop_c4_hif8_ue4m4_fp16"]);

    // A software-only model: quantize says so in the metadata; cosim and export name the layer.
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "8.00405",
        "--menu",
        "E4M3-POT",
        "--hw",
        "none",
        "--out",
        qs,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sop(&["cosim", "--quantized", qs]);
    one_line_error(code, &err, &["layer a.weight", "option E4M3-POT", "no block scales"]);
    let e = d.path().join("e.safetensors");
    let es = e.to_str().unwrap();
    let (code, _, err) = sop(&["export", qs, "--out", es]);
    one_line_error(code, &err, &["layer `a.weight`", "E4M3-POT", "--allow-software"]);
    assert!(!e.exists());
    let (code, out, err) = sop(&["export", qs, "--out", es, "--allow-software", "--dtype", "bf16"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("SOFTWARE reconstruction"), "{err}");
    assert!(out.contains("(0 decoded by the hardware model, 2 software)"), "{out}");
}

#[test]
fn cosim_of_a_missing_or_foreign_model_file_names_it() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nothing");
    let (code, _, err) = sop(&["cosim", "--quantized", missing.to_str().unwrap()]);
    one_line_error(code, &err, &["nothing"]);
    let foreign = d.path().join("m.safetensors");
    write_model(&foreign);
    let (code, _, err) = sop(&["cosim", "--quantized", foreign.to_str().unwrap()]);
    one_line_error(code, &err, &["m.safetensors", "format"]);
    // Truncated.
    let q = d.path().join("q");
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        foreign.to_str().unwrap(),
        "--target-bpw",
        "5",
        "--out",
        q.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let f = q.join("model.sop.safetensors");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() - 7]).unwrap();
    let (code, _, err) = sop(&["cosim", "--quantized", q.to_str().unwrap()]);
    one_line_error(code, &err, &["model.sop.safetensors"]);
}

/// The minilm model quantized for the committed hardware at 4.75 and 6.5 bpw (calibrated,
/// the default hardware-aware menu, sparse options included), and the paper's FP6 point
/// alone at 6.5, co-simulated from the file: every word of all 37 layers matches, on the
/// decode engine, outliers and residuals included.
#[test]
fn minilm_quantized_models_cosimulate_with_zero_mismatches() {
    let d = tempfile::tempdir().unwrap();
    let im = d.path().join("minilm.imatrix.gguf");
    let (code, _, err) = sop(&["calibrate", "--model", "minilm", "--out", im.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut sparse = 0u64;
    for (t, menu) in [("4.75", None), ("6.5", None), ("6.5", Some("E2M3sUE4M4"))] {
        let q = d.path().join(format!("{t}-{}", menu.unwrap_or("default")));
        let mut args = vec![
            "quantize",
            "--model",
            "minilm",
            "--imatrix",
            im.to_str().unwrap(),
            "--target-bpw",
            t,
            "--out",
            q.to_str().unwrap(),
        ];
        if let Some(m) = menu {
            args.extend(["--menu", m]);
        }
        let (code, _, err) = sop(&args);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = sop(&["cosim", "--quantized", q.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}\n{out}");
        let last = out.lines().last().unwrap();
        assert!(last.starts_with("cosim: ") && last.contains(" 37 layers, "), "{out}");
        assert!(last.contains(" 0 mismatches, "), "{out}");
        // Every layer ran on the engine (the fixed lanes are references only).
        assert!(err.contains("sop_engine_hif8_fp16"), "{err}");
        assert!(!err.contains("sop_c6_fp16lut"), "E2M3 on the HIF engine: {err}");
        sparse += out
            .lines()
            .filter_map(|l| l.strip_suffix(" sparse entries"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum::<u64>();
    }
    assert!(sparse > 0, "no layer with outliers or residuals was co-simulated");
}
