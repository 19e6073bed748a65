//! Fuzzes the safetensors / Hugging Face model-directory loader (`sop-model`) through its
//! public API, the way the quantizer uses it: open, list the linear layers, convert each to f32
//! under every `NonFinitePolicy`.
//!
//! Input: one mode byte, then
//! - even mode: the bytes of one `.safetensors` file;
//! - odd mode: a model directory: length-prefixed parts (u32 LE length, clamped to what is
//!   left), the first written as `model.safetensors.index.json`, the others as shards
//!   `s0.safetensors`, `s1.safetensors`, ... (at most 4).
//!
//! Checks: no panic; a loaded matrix has `rows * cols` values equal to its header shape; under
//! `Refuse` every value is finite, under `Zero` / `Clamp` too.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sop_model::{Model, NonFinitePolicy, INDEX_FILE};

/// Splits `data` into at most `max` parts, each a u32 LE length (clamped) and that many bytes.
fn parts(mut data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 && out.len() < max {
        let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let rest = &data[4..];
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}

/// Opens `path` and loads every linear layer the way `sop quantize` does.
fn exercise(path: &Path) {
    let Ok(model) = Model::open(path) else { return };
    let _ = model.files();
    let tensors = model.tensors();
    for t in &tensors {
        assert_eq!(model.tensor(&t.name).map(|i| &i.shape), Some(&t.shape));
    }
    for t in model.linear_layers() {
        for policy in [NonFinitePolicy::Refuse, NonFinitePolicy::Zero, NonFinitePolicy::Clamp] {
            if let Ok(w) = model.load_f32_with(&t.name, policy) {
                assert_eq!(t.shape, vec![w.rows, w.cols], "{}", t.name);
                assert_eq!(w.data.len(), w.rows * w.cols, "{}", t.name);
                assert!(
                    w.data.iter().all(|v| v.is_finite()),
                    "{}: non-finite value loaded",
                    t.name
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    if mode.is_multiple_of(2) {
        let p = dir.path().join("fuzz.safetensors");
        std::fs::write(&p, rest).expect("write input");
        exercise(&p);
    } else {
        let ps = parts(rest, 5);
        let Some((index, shards)) = ps.split_first() else {
            return;
        };
        std::fs::write(dir.path().join(INDEX_FILE), index).expect("write index");
        for (i, s) in shards.iter().enumerate() {
            std::fs::write(dir.path().join(format!("s{i}.safetensors")), s).expect("write shard");
        }
        exercise(dir.path());
    }
});
