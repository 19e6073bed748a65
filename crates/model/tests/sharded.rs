//! Sharded Hugging Face directories (`model.safetensors.index.json`).

mod common;

use std::path::Path;

use common::*;
use sop_model::{Model, ModelError};

const S1: &str = "model-00001-of-00002.safetensors";
const S2: &str = "model-00002-of-00002.safetensors";

fn write_index(dir: &Path, map: &[(&str, &str)]) {
    let wm: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let j = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": wm});
    std::fs::write(dir.join("model.safetensors.index.json"), j.to_string()).unwrap();
}

/// Two shards: layers 0..2 in S1, layers 2..4 and lm_head in S2.
fn sharded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join(S1),
        &[ramp("layers.0.weight", &[2, 3]), ramp("layers.1.weight", &[3, 2])],
    );
    write(
        &dir.path().join(S2),
        &[
            ramp("layers.10.weight", &[4, 2]),
            ramp("layers.2.weight", &[2, 2]),
            ramp("lm_head.weight", &[5, 2]),
        ],
    );
    write_index(
        dir.path(),
        &[
            ("layers.0.weight", S1),
            ("layers.1.weight", S1),
            ("layers.2.weight", S2),
            ("layers.10.weight", S2),
            ("lm_head.weight", S2),
        ],
    );
    dir
}

#[test]
fn loads_tensors_from_all_shards() {
    let dir = sharded();
    // A stray model.safetensors is ignored: the index takes precedence.
    write(&dir.path().join("model.safetensors"), &[ramp("stray.weight", &[1, 1])]);
    let m = Model::open(dir.path()).unwrap();
    let names: Vec<String> = m.tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "layers.0.weight",
            "layers.1.weight",
            "layers.2.weight",
            "layers.10.weight",
            "lm_head.weight"
        ]
    );
    assert_eq!(m.files().len(), 2);
    assert_eq!(m.tensor("layers.1.weight").unwrap().file, dir.path().join(S1));
    assert_eq!(m.tensor("layers.10.weight").unwrap().file, dir.path().join(S2));
    let w = m.load_f32("layers.1.weight").unwrap();
    assert_eq!((w.rows, w.cols), (3, 2));
    assert_eq!(w.data, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
    let w = m.load_f32("lm_head.weight").unwrap();
    assert_eq!((w.rows, w.cols), (5, 2));
    assert_eq!(w.data[9], 9.5);
    assert_eq!(m.linear_layers().len(), 5);
}

#[test]
fn missing_shard_is_named() {
    let dir = sharded();
    std::fs::remove_file(dir.path().join(S2)).unwrap();
    let e = Model::open(dir.path()).unwrap_err();
    match &e {
        ModelError::ShardMissing { shard, index } => {
            assert_eq!(shard, &dir.path().join(S2));
            assert!(index.ends_with("model.safetensors.index.json"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains(S2), "{e}");
}

#[test]
fn malformed_index_json() {
    let dir = sharded();
    let idx = dir.path().join("model.safetensors.index.json");
    for bad in [
        "{not json",
        "[]",
        "{\"weight_map\": 3}",
        "{\"metadata\": {}}",
        "",
        "{\"weight_map\": {}}",
    ] {
        std::fs::write(&idx, bad).unwrap();
        let e = Model::open(dir.path()).unwrap_err();
        assert!(matches!(e, ModelError::BadIndex { .. }), "{bad:?}: {e}");
        assert!(e.to_string().contains("model.safetensors.index.json"), "{e}");
    }
}

#[test]
fn index_lists_tensor_its_shard_lacks() {
    let dir = sharded();
    write_index(
        dir.path(),
        &[("layers.0.weight", S1), ("layers.2.weight", S1), ("ghost.weight", S2)],
    );
    let e = Model::open(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::BadIndex { .. }), "{e}");
    let s = e.to_string();
    assert!(s.contains("layers.2.weight") || s.contains("ghost.weight"), "{s}");
}

#[test]
fn tensor_in_two_shards() {
    let dir = sharded();
    write(&dir.path().join(S2), &[ramp("layers.0.weight", &[2, 3])]);
    write_index(dir.path(), &[("layers.0.weight", S1), ("layers.1.weight", S2)]);
    let e = Model::open(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::BadIndex { .. }), "{e}");
    assert!(e.to_string().contains("layers.0.weight"), "{e}");
}

#[test]
fn shard_name_must_be_plain() {
    let dir = sharded();
    for bad in ["../x.safetensors", "/etc/passwd", "sub/x.safetensors", ".."] {
        write_index(dir.path(), &[("layers.0.weight", bad)]);
        let e = Model::open(dir.path()).unwrap_err();
        assert!(matches!(e, ModelError::BadIndex { .. }), "{bad}: {e}");
    }
}

#[test]
fn corrupt_shard_names_the_shard() {
    let dir = sharded();
    let p = dir.path().join(S2);
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 3]).unwrap();
    let e = Model::open(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::Format { .. }), "{e}");
    assert!(e.to_string().contains(S2), "{e}");
}
