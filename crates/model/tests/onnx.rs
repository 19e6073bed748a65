//! ONNX models: the real all-MiniLM-L6-v2 weights in MatMul / Gemm graphs written by the PyPI
//! `onnx` package (`scripts/make-onnx-models.py`), read back through `Model::open`.
//!
//! Checks: every layer equals the safetensors checkpoint's tensor bit for bit (float32, raw and
//! external data) or its float16 / bfloat16 rounding (raw and typed fields); the orientation
//! against onnx's reference evaluator (numpy) running the graph; names (node names for
//! anonymous initializers); the skipped nodes; and one clear error per bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sop_model::{DType, Model, ModelError, OnnxError};

/// The models, written by the script into the build's test scratch directory on first use
/// and kept there for later runs (the script rewrites them when it changes): (minilm dir,
/// small dir).
fn models() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-onnx-models.py");
        let minilm = sop_model::resolve("minilm").unwrap_or_else(|e| panic!("minilm weights unavailable: {e}"));
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-models");
        let (big, small) = (root.join("minilm"), root.join("small"));
        for args in [
            vec!["minilm".into(), minilm.into_os_string(), big.clone().into_os_string()],
            vec!["small".into(), small.clone().into_os_string()],
        ] {
            let out = Command::new("python3")
                .arg(&script)
                .args(&args)
                .output()
                .expect("python3 runs (scripts/install-deps installs it with numpy, ml_dtypes and onnx)");
            assert!(
                out.status.success(),
                "{} {args:?} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        (big, small)
    })
}

fn big(name: &str) -> PathBuf {
    models().0.join(name)
}

fn small(name: &str) -> PathBuf {
    models().1.join(name)
}

#[derive(serde::Deserialize)]
struct Expected {
    layers: Vec<Layer>,
    skipped: Vec<Skip>,
    #[serde(default)]
    probe: Vec<Probe>,
}

#[derive(serde::Deserialize)]
struct Layer {
    layer: String,
    checkpoint: String,
    dtype: String,
}

#[derive(serde::Deserialize)]
struct Skip {
    node: String,
    reason: String,
}

#[derive(serde::Deserialize)]
struct Probe {
    layer: String,
    x: Vec<f64>,
    y: Vec<f64>,
}

fn expected() -> &'static BTreeMap<String, Expected> {
    static E: OnceLock<BTreeMap<String, Expected>> = OnceLock::new();
    E.get_or_init(|| serde_json::from_slice(&std::fs::read(big("expected.json")).unwrap()).unwrap())
}

fn checkpoint() -> Model {
    Model::open(&sop_model::resolve("minilm").unwrap()).unwrap()
}

/// Layer names, skipped nodes and every value against the checkpoint, for one model file.
fn check_against_checkpoint(file: &str) {
    let exp = &expected()[file];
    let m = Model::open(&big(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let ckpt = checkpoint();
    let mut got: Vec<String> = m.linear_layers().into_iter().map(|t| t.name).collect();
    let mut want: Vec<String> = exp.layers.iter().map(|l| l.layer.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{file}: layer names");
    for l in &exp.layers {
        let w = m.load_f32(&l.layer).unwrap();
        let c = ckpt.load_f32(&l.checkpoint).unwrap();
        assert_eq!((w.rows, w.cols), (c.rows, c.cols), "{file}: {}", l.layer);
        assert_eq!(m.tensor(&l.layer).unwrap().shape, vec![c.rows, c.cols]);
        let want: Vec<f32> = match l.dtype.as_str() {
            "FLOAT" => c.data.clone(),
            "FLOAT16" => c.data.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
            "BFLOAT16" => c.data.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect(),
            other => panic!("{other}"),
        };
        let same = w.data.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{file}: layer {} ({}) differs from {}",
            l.layer, l.dtype, l.checkpoint
        );
        let dtype = m.tensor(&l.layer).unwrap().dtype.clone();
        let want_dtype = match l.dtype.as_str() {
            "FLOAT" => DType::F32,
            "FLOAT16" => DType::F16,
            _ => DType::BF16,
        };
        assert_eq!(dtype, want_dtype, "{file}: {}", l.layer);
    }
    let skipped = m.skipped_weights();
    assert_eq!(skipped.len(), exp.skipped.len(), "{file}: {skipped:?}");
    for (s, e) in skipped.iter().zip(&exp.skipped) {
        assert_eq!(s.node, e.node);
        assert!(
            s.reason.contains(&e.reason),
            "{}: `{}` lacks `{}`",
            s.node,
            s.reason,
            e.reason
        );
    }
}

#[test]
fn float32_layers_equal_the_checkpoint() {
    check_against_checkpoint("minilm.onnx");
    let m = Model::open(&big("minilm.onnx")).unwrap();
    // 37 linear layers; the other initializers (biases, the position embeddings, the weights
    // of skipped nodes) are listed under their own names and stored shapes.
    assert_eq!(m.linear_layers().len(), 37);
    let pos = m.tensor("embeddings.position_embeddings.weight").unwrap();
    assert_eq!(pos.shape, vec![512, 384]);
    assert!(m.linear_layers().iter().all(|t| t.name != pos.name));
    assert_eq!(m.tensor("batched.weight").unwrap().shape, vec![2, 3, 4]);
    // Node names stand in for anonymous initializers; a node without a name gives `<op>_<index>`.
    assert!(m.tensor("MatMul_0").is_some());
    assert!(m.tensor("/encoder/layer/1/attention/self/query/MatMul").is_some());
    assert!(m.tensors().iter().all(|t| !t.name.starts_with("onnx::")));
    assert_eq!(m.files(), vec![big("minilm.onnx").as_path()]);
}

#[test]
fn external_data_equals_the_checkpoint() {
    check_against_checkpoint("minilm-external.onnx");
    let m = Model::open(&big("minilm-external.onnx")).unwrap();
    let data = big("minilm-external.onnx.data");
    assert_eq!(m.files(), vec![big("minilm-external.onnx").as_path(), data.as_path()]);
    assert!(m.linear_layers().iter().all(|t| t.file == data));
}

#[test]
fn float16_bfloat16_raw_and_typed_equal_the_rounded_checkpoint() {
    check_against_checkpoint("minilm-halves.onnx");
    let exp = &expected()["minilm-halves.onnx"];
    for d in ["FLOAT16", "BFLOAT16", "FLOAT"] {
        assert!(exp.layers.iter().any(|l| l.dtype == d), "{d} not covered");
    }
}

/// y = W x with W as loaded, against onnx's reference evaluator running the graph (numpy):
/// the orientation is the one the ONNX operators define, not only the one the script stored.
#[test]
fn orientation_matches_the_onnx_reference_evaluator() {
    let exp = &expected()["minilm.onnx"];
    assert_eq!(exp.probe.len(), 37);
    let m = Model::open(&big("minilm.onnx")).unwrap();
    for p in &exp.probe {
        let w = m.load_f32(&p.layer).unwrap();
        assert_eq!((w.cols, w.rows), (p.x.len(), p.y.len()), "{}", p.layer);
        let wx: Vec<f64> = (0..w.rows)
            .map(|r| w.row(r).iter().zip(&p.x).map(|(&a, b)| f64::from(a) * b).sum())
            .collect();
        let err: f64 = wx.iter().zip(&p.y).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let norm: f64 = p.y.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(err <= 1e-5 * norm, "{}: |Wx - y| = {err:e}, |y| = {norm:e}", p.layer);
        if w.rows == w.cols {
            // The check can fail: the transposed matrix gives a different product.
            let wtx: Vec<f64> = (0..w.cols)
                .map(|c| (0..w.rows).map(|r| f64::from(w.get(r, c)) * p.x[r]).sum())
                .collect();
            let err_t: f64 = wtx.iter().zip(&p.y).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            assert!(err_t > 0.1 * norm, "{}: W^T x matches too", p.layer);
        }
    }
}

#[test]
fn raw_tensor_is_in_the_listed_orientation() {
    let m = Model::open(&big("minilm-halves.onnx")).unwrap();
    for t in m.linear_layers() {
        let w = m.load_f32(&t.name).unwrap();
        let (dtype, bytes) = m.raw_tensor(&t.name).unwrap();
        let values: Vec<f32> = match dtype {
            safetensors::Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            safetensors::Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => panic!("{}: {other:?}", t.name),
        };
        assert_eq!(values, w.data, "{}", t.name);
    }
}

#[test]
fn small_models_typed_fields_and_external_offsets() {
    let w: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) / 8.0).collect();
    let m = Model::open(&small("typed.onnx")).unwrap();
    let w16 = m.load_f32("w16").unwrap();
    assert_eq!((w16.rows, w16.cols), (4, 6));
    let rounded: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert_eq!(w16.data, rounded);
    assert_eq!(m.load_f32("wf").unwrap().data, w);
    let m = Model::open(&small("external.onnx")).unwrap();
    assert_eq!(m.load_f32("ext.a").unwrap().data, w);
    assert_eq!(m.load_f32("ext.b").unwrap().data, w);
    assert_eq!(m.files().len(), 2);
    assert_eq!(m.tensor("ext.bias").unwrap().shape, vec![4]);
    assert_eq!(m.linear_layers().len(), 2);
}

fn open_err(path: &Path) -> (ModelError, String) {
    let e = Model::open(path).expect_err("must fail");
    let s = e.to_string();
    (e, s)
}

#[test]
fn a_graph_without_matmul_or_gemm_weights_is_refused() {
    let p = small("no-weights.onnx");
    let (e, s) = open_err(&p);
    assert!(
        matches!(e, ModelError::Onnx(OnnxError::NoLinearWeights { nodes: 1, .. })),
        "{e:?}"
    );
    assert!(
        s.contains(&p.display().to_string()) && s.contains("no MatMul or Gemm node"),
        "{s}"
    );
    assert!(s.contains("`mm`") && s.contains("graph input"), "{s}");
}

#[test]
fn truncated_or_corrupt_protobuf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(big("minilm.onnx")).unwrap();
    for (name, data) in [
        ("cut.onnx", &bytes[..bytes.len() / 2]),
        ("cut-header.onnx", &bytes[..7]),
        ("garbage.onnx", &[0xff_u8, 0xff, 0xff, 0xff, 0x0f, 0x01][..]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        let (e, s) = open_err(&p);
        assert!(matches!(e, ModelError::Onnx(OnnxError::Decode { .. })), "{name}: {e:?}");
        assert!(s.contains(name) && s.contains("truncated or corrupt protobuf"), "{s}");
    }
    // An empty file decodes to a model without a graph.
    let p = dir.path().join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    let (e, s) = open_err(&p);
    assert!(matches!(e, ModelError::Onnx(OnnxError::NoGraph { .. })), "{e:?}");
    assert!(s.contains("empty.onnx") && s.contains("no graph"), "{s}");
    let (e, _) = open_err(&dir.path().join("absent.onnx"));
    assert!(matches!(e, ModelError::NotFound { .. }), "{e:?}");
}

#[test]
fn a_missing_external_data_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("minilm-external.onnx");
    std::fs::copy(big("minilm-external.onnx"), &p).unwrap();
    let (e, s) = open_err(&p);
    assert!(
        matches!(e, ModelError::Onnx(OnnxError::ExternalMissing { .. })),
        "{e:?}"
    );
    let data = dir.path().join("minilm-external.onnx.data");
    assert!(
        s.contains(&data.display().to_string()) && s.contains("does not exist"),
        "{s}"
    );
    assert!(s.contains("initializer `"), "{s}");
}

#[test]
fn external_data_past_the_end_or_outside_the_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("external.onnx");
    std::fs::copy(small("external.onnx"), &p).unwrap();
    let data = std::fs::read(small("external.bin")).unwrap();
    std::fs::write(dir.path().join("external.bin"), &data[..100]).unwrap();
    let (e, s) = open_err(&p);
    assert!(matches!(e, ModelError::Onnx(OnnxError::BadExternal { .. })), "{e:?}");
    assert!(
        s.contains("ext.b") && s.contains("past the end") && s.contains("(100 bytes)"),
        "{s}"
    );
    let (e, s) = open_err(&small("escape.onnx"));
    assert!(matches!(e, ModelError::Onnx(OnnxError::BadExternal { .. })), "{e:?}");
    assert!(s.contains("outside.weight") && s.contains("../outside.bin"), "{s}");
}

#[test]
fn data_that_does_not_match_the_shape_is_refused() {
    let (e, s) = open_err(&small("bad-size.onnx"));
    assert!(matches!(e, ModelError::Onnx(OnnxError::BadTensor { .. })), "{e:?}");
    assert!(s.contains("short.weight") && s.contains("20 data bytes"), "{s}");
}

#[test]
fn an_unsupported_data_type_names_the_tensor() {
    let m = Model::open(&small("double.onnx")).unwrap();
    let t = &m.linear_layers()[0];
    assert_eq!((t.name.as_str(), &t.dtype), ("w64", &DType::Other("DOUBLE".into())));
    let e = m.load_f32("w64").unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, ModelError::UnsupportedDtype { .. }), "{e:?}");
    assert!(
        s.contains("`w64`") && s.contains("DOUBLE") && s.contains("double.onnx"),
        "{s}"
    );
    // Its bytes can still be copied (safetensors has F64), transposed to the listed shape.
    let (dtype, bytes) = m.raw_tensor("w64").unwrap();
    assert_eq!((dtype, bytes.len()), (safetensors::Dtype::F64, 24 * 8));
    let first_row: Vec<f64> = bytes[..6 * 8]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<f64> = (0..6).map(|i| (f64::from(i) - 11.5) / 8.0).collect();
    assert_eq!(first_row, want);
}
