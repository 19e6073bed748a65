//! GGUF model files: reading checked bit for bit against an independent implementation,
//! llama.cpp's gguf-py (PyPI `gguf`, `gguf.quants.dequantize`), which also writes the test
//! file (`scripts/gguf_ref.py`); the linear-layer rule on llama.cpp names; bad input.
//!
//! The test installs `gguf` with pip when it is missing and fails loudly when it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use sop_model::{DType, Model, ModelError};

mod common;

fn run_ref(args: &[&std::ffi::OsStr]) {
    let out = Command::new(common::gguf_py())
        .arg(common::gguf_ref_script())
        .args(args)
        .output()
        .expect("run gguf_ref.py");
    assert!(
        out.status.success(),
        "gguf_ref.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The reference file written by gguf-py, in a fresh temporary directory.
fn reference_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ref.gguf");
    run_ref(&["make".as_ref(), p.as_os_str()]);
    (dir, p)
}

#[test]
fn every_type_matches_gguf_py_bit_for_bit() {
    let (dir, p) = reference_file();
    let deq = dir.path().join("deq");
    run_ref(&["dequant".as_ref(), p.as_os_str(), deq.as_os_str()]);
    let m = Model::open(&p).unwrap();
    let index = std::fs::read_to_string(deq.join("index.txt")).unwrap();
    let mut types = Vec::new();
    for line in index.lines() {
        let mut it = line.split(' ');
        let (name, ty) = (it.next().unwrap(), it.next().unwrap());
        let shape: Vec<usize> = it.map(|d| d.parse().unwrap()).collect();
        let info = m.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(info.shape, shape, "{name}");
        assert_eq!(info.dtype.to_string(), ty, "{name}");
        let want: Vec<u32> = std::fs::read(deq.join(format!("{name}.f32")))
            .unwrap()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if shape.len() != 2 {
            continue;
        }
        let got = m.load_f32(name).unwrap();
        assert_eq!(want.len(), got.data.len(), "{name}");
        for (i, (w, g)) in want.iter().zip(&got.data).enumerate() {
            assert_eq!(
                *w,
                g.to_bits(),
                "{name} ({ty}) element {i}: gguf-py {} vs ours {g}",
                f32::from_bits(*w)
            );
        }
        types.push(ty.to_string());
    }
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        ["BF16", "F16", "F32", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "Q8_0"]
    );
}

#[test]
fn linear_layers_by_llama_cpp_names_and_the_quantized_note() {
    let (_dir, p) = reference_file();
    let m = Model::open(&p).unwrap();
    let names: Vec<String> = m.linear_layers().into_iter().map(|t| t.name).collect();
    // token_embd, output and the 1-D norms are not linear layers; natural order.
    assert_eq!(
        names,
        [
            "blk.0.attn_k.weight",
            "blk.0.attn_output.weight",
            "blk.0.attn_q.weight",
            "blk.0.attn_v.weight",
            "blk.0.ffn_down.weight",
            "blk.0.ffn_gate.weight",
            "blk.0.ffn_up.weight",
            "blk.1.attn_k.weight",
            "blk.1.attn_q.weight",
            "blk.1.odd.weight",
        ]
    );
    assert_eq!(
        m.tensor("blk.0.ffn_up.weight").unwrap().dtype,
        DType::Quantized("Q4_K".into())
    );
    assert_eq!(
        m.tensor("blk.1.odd.weight").unwrap().dtype,
        DType::Other("IQ2_XXS".into())
    );
    let q = m.already_quantized();
    let want: Vec<(String, usize)> = [
        ("Q4_0", 1),
        ("Q4_1", 1),
        ("Q4_K", 1),
        ("Q5_K", 1),
        ("Q6_K", 1),
        ("Q8_0", 2),
    ]
    .iter()
    .map(|(t, n)| (t.to_string(), *n))
    .collect();
    assert_eq!(q, want);
    let note = m.quantized_source_note().unwrap();
    assert!(
        note.contains("already quantized") && note.contains("2 x Q8_0"),
        "{note}"
    );
    assert!(m
        .gguf_metadata()
        .unwrap()
        .iter()
        .any(|(k, _)| k == "general.architecture"));
    // Float tensors copy through with their safetensors dtype; block types cannot.
    assert_eq!(m.raw_tensor("blk.0.attn_k.weight").unwrap().0, safetensors::Dtype::F16);
    assert!(m.raw_tensor("blk.0.ffn_up.weight").is_err());
}

#[test]
fn unsupported_tensor_type_names_the_type_and_the_tensor() {
    let (_dir, p) = reference_file();
    let m = Model::open(&p).unwrap();
    let e = m.load_f32("blk.1.odd.weight").unwrap_err();
    assert!(matches!(e, ModelError::UnsupportedGgmlType { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("blk.1.odd.weight") && msg.contains("IQ2_XXS"), "{msg}");
    assert!(msg.contains("Q4_K"), "the message lists what is supported: {msg}");
}

fn open_err(p: &Path) -> String {
    let e = Model::open(p).unwrap_err();
    assert!(matches!(e, ModelError::Gguf { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn unsupported_version_is_refused() {
    let (dir, p) = reference_file();
    let mut b = std::fs::read(&p).unwrap();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    let bad = dir.path().join("v1.gguf");
    std::fs::write(&bad, &b).unwrap();
    let msg = open_err(&bad);
    assert!(
        msg.contains("unsupported GGUF version 1") && msg.contains("v1.gguf"),
        "{msg}"
    );
}

#[test]
fn truncated_file_is_refused_naming_the_tensor() {
    let (dir, p) = reference_file();
    let b = std::fs::read(&p).unwrap();
    let bad = dir.path().join("cut.gguf");
    // Cut inside the data section: the header parses, a tensor's data is missing.
    std::fs::write(&bad, &b[..b.len() - 3000]).unwrap();
    let msg = open_err(&bad);
    assert!(msg.contains("truncated") && msg.contains("tensor `"), "{msg}");
    // Cut inside the header.
    std::fs::write(&bad, &b[..200]).unwrap();
    assert!(open_err(&bad).contains("truncated"));
    // Every cut point gives an error, never a panic.
    for n in (0..b.len()).step_by(997) {
        std::fs::write(&bad, &b[..n]).unwrap();
        assert!(Model::open(&bad).is_err(), "cut at {n}");
    }
}
