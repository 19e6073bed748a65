//! `--model FILE.onnx` end to end: `sop eval` on an ONNX graph carrying the real MiniLM weights
//! gives the same per-layer figures as on the safetensors checkpoint; `sop layers` lists the
//! skipped nodes; `sop quantize` and `sop export --model` take the ONNX file; each bad input is
//! one clear error. The models are written by `scripts/make-onnx-models.py` (PyPI `onnx`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{one_line_error, sop};

/// Runs `scripts/make-onnx-models.py` once per test process: (minilm models, small models),
/// kept in the build's test scratch directory (the script skips models it already wrote).
fn dirs() -> &'static (PathBuf, PathBuf) {
    static D: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    D.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-onnx-models.py");
        let ckpt = sop_model::resolve("minilm").unwrap_or_else(|e| panic!("minilm: {e}"));
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-models");
        let made = (root.join("minilm"), root.join("small"));
        let runs: [Vec<&std::ffi::OsStr>; 2] = [
            vec!["minilm".as_ref(), ckpt.as_os_str(), made.0.as_os_str()],
            vec!["small".as_ref(), made.1.as_os_str()],
        ];
        for args in runs {
            let st = std::process::Command::new("python3")
                .arg(&script)
                .args(&args)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("python3 (with numpy, ml_dtypes, onnx: scripts/install-deps)");
            assert!(st.success(), "{} {args:?}: {st}", script.display());
        }
        made
    })
}

fn big(name: &str) -> PathBuf {
    dirs().0.join(name)
}

fn small(name: &str) -> PathBuf {
    dirs().1.join(name)
}

/// ONNX layer name -> checkpoint tensor name, from the script's `expected.json`.
fn names(file: &str) -> BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(big("expected.json")).unwrap()).unwrap();
    v[file]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["layer"].as_str().unwrap().to_string(),
                l["checkpoint"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `sop eval --json` on `model`: (layer, format) -> the row's bpw, NMSE, SQNR and cosine.
fn eval_json(model: &str, dir: &Path, tag: &str) -> BTreeMap<(String, String), Vec<f64>> {
    let json = dir.join(format!("{tag}.json"));
    let (code, _, err) = sop(&[
        "eval",
        "--model",
        model,
        "--formats",
        "E4M3-POT,E2M1sE4M3b16",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let key = (
                l["name"].as_str().unwrap().to_string(),
                l["format"].as_str().unwrap().to_string(),
            );
            let figures = ["bpw", "nmse", "sqnr_db", "cosine"]
                .iter()
                .map(|k| l[*k].as_f64().unwrap())
                .chain(l["shape"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()))
                .collect();
            (key, figures)
        })
        .collect()
}

#[test]
fn eval_on_onnx_equals_eval_on_the_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let reference = eval_json("minilm", d.path(), "safetensors");
    assert_eq!(reference.len(), 37 * 2);
    for file in ["minilm.onnx", "minilm-external.onnx"] {
        let map = names(file);
        let got = eval_json(big(file).to_str().unwrap(), d.path(), file);
        assert_eq!(got.len(), reference.len(), "{file}");
        for ((layer, format), figures) in &got {
            let ckpt = &map[layer];
            let want = &reference[&(ckpt.clone(), format.clone())];
            // Same weights in the same orientation: the same figures, bit for bit.
            assert_eq!(figures, want, "{file}: {layer} ({ckpt}) at {format}");
        }
    }
}

#[test]
fn layers_lists_onnx_layers_and_skipped_nodes() {
    let (code, out, err) = sop(&["layers", "--model", big("minilm.onnx").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 37, "{out}");
    assert!(out.contains("MatMul_0\t384x384\tF32"), "{out}");
    assert!(
        out.contains("encoder.layer.0.output.dense.weight\t384x1536\tF32"),
        "{out}"
    );
    assert!(
        err.contains("skipped MatMul `/left/MatMul`: the initializer `left.weight` is input A"),
        "{err}"
    );
    assert!(err.contains("skipped MatMul `/batched/MatMul`: input B `batched.weight` is a 3-D initializer"));
    assert_eq!(err.matches("skipped ").count(), 5, "{err}");
    let (code, out, err) = sop(&[
        "layers",
        "--all",
        "--model",
        big("minilm-halves.onnx").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\tBF16") && out.contains("\tF16") && out.contains("\tF32"),
        "{out}"
    );
}

#[test]
fn quantize_and_export_take_an_onnx_model() {
    let d = tempfile::tempdir().unwrap();
    let model = small("external.onnx");
    let m = model.to_str().unwrap();
    let q = d.path().join("q");
    let (code, out, err) = sop(&[
        "quantize",
        "--model",
        m,
        "--target-bpw",
        "8",
        "--out",
        q.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote"), "{out}");
    let x = d.path().join("x.safetensors");
    let (code, _, err) = sop(&[
        "export",
        q.to_str().unwrap(),
        "--out",
        x.to_str().unwrap(),
        "--model",
        m,
        "--allow-software",
    ]);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&x).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    // The two quantized layers, and the Gemm's bias copied from the external data file.
    assert_eq!(names, ["ext.a", "ext.b", "ext.bias"]);
    for n in &names[..2] {
        assert_eq!(st.tensor(n).unwrap().shape(), [4, 6], "{n}");
    }
    let bias = st.tensor("ext.bias").unwrap();
    assert_eq!((bias.dtype(), bias.shape()), (safetensors::Dtype::F32, &[4][..]));
    let want: Vec<u8> = [0.5f32, -1.0, 2.0, 0.25].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(bias.data(), want);
}

#[test]
fn onnx_bad_input_is_one_clear_error() {
    let (code, _, err) = sop(&["eval", "--model", small("no-weights.onnx").to_str().unwrap()]);
    one_line_error(
        code,
        &err,
        &["no-weights.onnx", "no MatMul or Gemm node", "graph input"],
    );

    let d = tempfile::tempdir().unwrap();
    let cut = d.path().join("cut.onnx");
    let bytes = std::fs::read(small("typed.onnx")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 9]).unwrap();
    let (code, _, err) = sop(&["eval", "--model", cut.to_str().unwrap()]);
    one_line_error(
        code,
        &err,
        &["cut.onnx", "not a valid ONNX model", "truncated or corrupt"],
    );

    let alone = d.path().join("external.onnx");
    std::fs::copy(small("external.onnx"), &alone).unwrap();
    let (code, _, err) = sop(&["layers", "--model", alone.to_str().unwrap()]);
    one_line_error(code, &err, &["external.onnx", "external.bin", "does not exist"]);

    let (code, _, err) = sop(&["eval", "--model", small("double.onnx").to_str().unwrap()]);
    one_line_error(code, &err, &["`w64`", "DOUBLE", "only F32, F16 and BF16"]);
}
