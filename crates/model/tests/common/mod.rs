//! Helpers shared by the integration tests: hand-written safetensors files.
#![allow(dead_code)]

use std::path::Path;

/// One tensor to write: name, dtype string as in the header, shape, raw little-endian bytes.
pub struct T {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

pub fn t(name: &str, dtype: &str, shape: &[usize], bytes: Vec<u8>) -> T {
    T {
        name: name.into(),
        dtype: dtype.into(),
        shape: shape.to_vec(),
        bytes,
    }
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f16s(v: &[half::f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bf16s(v: &[half::bf16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An f32 tensor of the given shape with values 0.5, 1.5, 2.5, ...
pub fn ramp(name: &str, shape: &[usize]) -> T {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
    t(name, "F32", shape, f32s(&v))
}

/// Serializes tensors into safetensors bytes, by hand: 8-byte LE header length, JSON header,
/// data in the given order.
pub fn bytes(tensors: &[T]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut off = 0usize;
    let mut data = Vec::new();
    for x in tensors {
        header.insert(
            x.name.clone(),
            serde_json::json!({
                "dtype": x.dtype,
                "shape": x.shape,
                "data_offsets": [off, off + x.bytes.len()],
            }),
        );
        off += x.bytes.len();
        data.extend_from_slice(&x.bytes);
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

pub fn write(path: &Path, tensors: &[T]) {
    std::fs::write(path, bytes(tensors)).unwrap();
}

/// Length of the header JSON of a file made by [`bytes`].
pub fn header_len(b: &[u8]) -> usize {
    u64::from_le_bytes(b[..8].try_into().unwrap()) as usize
}

/// The Python interpreter (`$PYTHON` or `python3`) with llama.cpp's gguf-py importable:
/// installs the pinned PyPI `gguf` with pip when it is missing and fails loudly when it cannot
/// (the independent cross-check must not be skipped).
pub fn gguf_py() -> String {
    const GGUF_PY: &str = "gguf==0.19.0";
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = || {
        std::process::Command::new(&py)
            .args(["-c", "import gguf, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        eprintln!("gguf-py is missing: installing {GGUF_PY} with pip (the cross-check needs it)");
        let st = std::process::Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", GGUF_PY, "numpy"])
            .status();
        assert!(importable(), "gguf cannot be imported by {py} even after `pip install {GGUF_PY}` ({st:?}): the independent cross-check cannot run");
    }
    py
}

/// `scripts/gguf_ref.py`, the gguf-py reference of the GGUF tests.
pub fn gguf_ref_script() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gguf_ref.py")
}
