//! Fuzzes the ONNX model reader (`sop-model`: `Model::open` on a `.onnx` file) through its
//! public API, the way the quantizer and `sop export` use it: open, list, load every linear
//! layer as f32 under every `NonFinitePolicy`, copy every tensor's bytes (`raw_tensor`).
//!
//! Input: one mode byte, then
//! - even mode: the bytes of one `model.onnx`;
//! - odd mode: two u32-LE-length-prefixed parts (lengths clamped to what is left): `model.onnx`
//!   and its external data file `external.bin` (the location the seeds use).
//!
//! Checks: no panic; every listed tensor is found by name with the same shape; a loaded layer
//! has `rows * cols` values matching its listed `[out, in]` shape, all finite; copied bytes are
//! a whole number of elements of the listed shape.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sop_model::{Model, NonFinitePolicy};

fn exercise(path: &Path) {
    let Ok(model) = Model::open(path) else { return };
    let _ = model.files();
    let _ = model.skipped_weights();
    let tensors = model.tensors();
    for t in &tensors {
        assert_eq!(model.tensor(&t.name).map(|i| &i.shape), Some(&t.shape));
        if let Ok((dtype, bytes)) = model.raw_tensor(&t.name) {
            let bits = dtype.bitsize();
            assert_eq!(bytes.len() * 8, t.numel() * bits, "{}: {dtype:?}", t.name);
        }
    }
    for t in model.linear_layers() {
        assert_eq!(t.shape.len(), 2, "{}", t.name);
        for policy in [NonFinitePolicy::Refuse, NonFinitePolicy::Zero, NonFinitePolicy::Clamp] {
            if let Ok(w) = model.load_f32_with(&t.name, policy) {
                assert_eq!(t.shape, vec![w.rows, w.cols], "{}", t.name);
                assert_eq!(w.data.len(), w.rows * w.cols, "{}", t.name);
                assert!(w.data.iter().all(|v| v.is_finite()), "{}: non-finite value loaded", t.name);
            }
        }
    }
}

/// The first u32-LE-length-prefixed part of `data` and the rest.
fn part(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 4 {
        return (&[], &[]);
    }
    let n = (u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize).min(data.len() - 4);
    data[4..].split_at(n)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let model = dir.path().join("model.onnx");
    if mode.is_multiple_of(2) {
        std::fs::write(&model, rest).expect("write input");
    } else {
        let (m, rest) = part(rest);
        let (d, _) = part(rest);
        std::fs::write(&model, m).expect("write model");
        std::fs::write(dir.path().join("external.bin"), d).expect("write external data");
    }
    exercise(&model);
});
