//! The importance-matrix file formats: round trips, name mapping, and bad input of every kind
//! (each a clear error naming the file and, where it applies, the tensor; never a panic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sop_calib::gguf::{self, OutTensor, Value};
use sop_calib::{to_legacy_bytes, CalibError, ImatrixFormat, ImatrixStats, LayerStats};

fn sample() -> ImatrixStats {
    let mut per_layer = BTreeMap::new();
    per_layer.insert(
        "encoder.layer.0.attention.self.query.weight".to_string(),
        LayerStats {
            sum_x2: vec![1.5, 0.25, 3.0, 0.0],
            sum_x: Some(vec![-1.0, 0.5, 2.0, 0.0]),
            count: 10,
        },
    );
    per_layer.insert(
        "encoder.layer.0.output.dense.weight".to_string(),
        LayerStats {
            sum_x2: (0..16).map(|i| f64::from(i as f32 * 0.1)).collect(),
            sum_x: None,
            count: 7,
        },
    );
    ImatrixStats {
        per_layer,
        datasets: vec!["a.txt".into(), "b.txt".into()],
        chunks: 3,
        chunk_size: 256,
        ..ImatrixStats::new()
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn read_bytes(bytes: &[u8]) -> Result<ImatrixStats, CalibError> {
    ImatrixStats::from_bytes(bytes, Path::new("/x/bad.imatrix"))
}

fn err_of(bytes: &[u8]) -> String {
    let e = read_bytes(bytes).expect_err("must fail").to_string();
    assert!(e.contains("/x/bad.imatrix"), "message must name the file: {e}");
    e
}

/// Position of the tensor-info fields right after the name `name` in a GGUF file.
fn after_name(bytes: &[u8], name: &str) -> usize {
    let pat = name.as_bytes();
    bytes.windows(pat.len()).position(|w| w == pat).unwrap() + pat.len()
}

#[test]
fn gguf_round_trip_bit_exact() {
    let s = sample();
    let d = tmp();
    let p = d.path().join("s.gguf");
    s.write(&p).unwrap();
    let back = ImatrixStats::read(&p).unwrap();
    assert_eq!(back.per_layer, s.per_layer);
    assert_eq!(back.datasets, s.datasets);
    assert_eq!((back.chunks, back.chunk_size), (3, 256));
    assert_eq!(back.format, ImatrixFormat::Gguf);
    assert_eq!(back.source.as_deref(), Some(p.as_path()));
    let w = back
        .column_weights("encoder.layer.0.attention.self.query.weight", 4)
        .unwrap()
        .unwrap();
    assert_eq!(w, vec![0.15, 0.025, 0.3, 0.0]);
}

#[test]
fn written_layout_is_llama_cpp_s() {
    let bytes = sample().to_gguf_bytes();
    let g = gguf::Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.get("general.type"), Some(&Value::Str("imatrix".into())));
    assert_eq!(g.get("imatrix.chunk_count"), Some(&Value::U32(3)));
    assert_eq!(g.get("imatrix.chunk_size"), Some(&Value::U32(256)));
    assert_eq!(
        g.get("imatrix.datasets"),
        Some(&Value::Array(
            8,
            vec![Value::Str("a.txt".into()), Value::Str("b.txt".into())]
        ))
    );
    let names: Vec<(&str, &[u64])> = g.tensors.iter().map(|t| (t.name.as_str(), t.ne.as_slice())).collect();
    assert_eq!(
        names,
        vec![
            ("encoder.layer.0.attention.self.query.weight.in_sum2", &[4u64][..]),
            ("encoder.layer.0.attention.self.query.weight.counts", &[1][..]),
            ("encoder.layer.0.attention.self.query.weight.in_sum", &[4][..]),
            ("encoder.layer.0.output.dense.weight.in_sum2", &[16][..]),
            ("encoder.layer.0.output.dense.weight.counts", &[1][..]),
        ]
    );
    assert!(g
        .tensors
        .iter()
        .all(|t| t.ggml_type == gguf::GGML_TYPE_F32 && t.offset % 32 == 0));
}

#[test]
fn two_d_tensors_as_llama_cpp_may_write_are_read() {
    // [cols, 1] and [1, 1] shapes (a 2-D tensor with one matrix).
    let kv = vec![("general.type".to_string(), Value::Str("imatrix".into()))];
    let t = vec![
        OutTensor {
            name: "blk.0.attn_q.weight.in_sum2".into(),
            ne: vec![3, 1],
            data: vec![2.0, 4.0, 6.0],
        },
        OutTensor {
            name: "blk.0.attn_q.weight.counts".into(),
            ne: vec![1, 1],
            data: vec![2.0],
        },
        OutTensor {
            name: "token_embd.weight".into(),
            ne: vec![2],
            data: vec![0.0, 0.0],
        },
    ];
    let s = read_bytes(&gguf::write(&kv, &t)).unwrap();
    assert_eq!(s.len(), 1);
    // Llama-style HF names find the GGUF entries.
    let w = s
        .column_weights("model.layers.0.self_attn.q_proj.weight", 3)
        .unwrap()
        .unwrap();
    assert_eq!(w, vec![1.0, 2.0, 3.0]);
    assert_eq!(
        s.column_weights("model.layers.1.self_attn.q_proj.weight", 3).unwrap(),
        None
    );
    let layers = vec![
        sop_model::TensorInfo {
            name: "model.layers.0.self_attn.q_proj.weight".into(),
            shape: vec![3, 3],
            dtype: sop_model::DType::F32,
            file: PathBuf::from("m.safetensors"),
        },
        sop_model::TensorInfo {
            name: "model.layers.0.mlp.down_proj.weight".into(),
            shape: vec![3, 5],
            dtype: sop_model::DType::F32,
            file: PathBuf::from("m.safetensors"),
        },
    ];
    let cov = s.match_model(Path::new("m"), &layers).unwrap();
    assert_eq!(
        cov.matched,
        vec![(
            "model.layers.0.self_attn.q_proj.weight".to_string(),
            "blk.0.attn_q.weight".to_string()
        )]
    );
    assert_eq!(cov.missing, vec!["model.layers.0.mlp.down_proj.weight".to_string()]);
    assert!(cov.unused.is_empty());
}

#[test]
fn legacy_dat_is_read() {
    let s = sample();
    let bytes = to_legacy_bytes(&s);
    let back = read_bytes(&bytes).unwrap();
    assert_eq!(back.format, ImatrixFormat::LegacyDat);
    assert_eq!(back.chunks, 3);
    assert_eq!(back.datasets, vec!["b.txt".to_string()]);
    for (name, l) in &s.per_layer {
        let want: Vec<f32> = l.mean_x2().iter().map(|&m| m as f32).collect();
        assert_eq!(back.column_weights(name, l.cols()).unwrap().unwrap(), want, "{name}");
    }
    // Without the optional trailer.
    let mut short = bytes.clone();
    short.truncate(bytes.len() - (4 + 4 + "b.txt".len()));
    assert_eq!(read_bytes(&short).unwrap().len(), 2);
    // Every other truncation fails cleanly.
    for n in 0..bytes.len() {
        if n != short.len() && n != bytes.len() {
            err_of(&bytes[..n]);
        }
    }
}

#[test]
fn truncated_gguf_is_an_error_naming_file() {
    let bytes = sample().to_gguf_bytes();
    // The file ends with `...output.dense.weight.in_sum2` (16 f32 = 64 bytes) and
    // `...output.dense.weight.counts` (one f32 padded to 32 bytes).
    let data_end = bytes.len() - 28;
    for n in 0..data_end {
        let e = err_of(&bytes[..n]);
        assert!(!e.is_empty());
    }
    // Cut inside tensor data: the message names the tensor.
    let e = err_of(&bytes[..bytes.len() - 32 - 8]);
    assert!(
        e.contains("tensor `encoder.layer.0.output.dense.weight.") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn wrong_magic_and_version() {
    let mut b = sample().to_gguf_bytes();
    b[..4].copy_from_slice(b"GGML");
    let e = err_of(&b);
    assert!(
        e.contains("no GGUF magic") && e.contains("not an importance matrix"),
        "{e}"
    );
    let mut b = sample().to_gguf_bytes();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(err_of(&b).contains("unsupported GGUF version 1"));
    b[4..8].copy_from_slice(&4u32.to_le_bytes());
    assert!(err_of(&b).contains("unsupported GGUF version 4"));
    assert!(err_of(b"").contains("not an importance matrix"));
}

#[test]
fn unknown_and_wrong_dtypes_name_the_tensor() {
    let name = "encoder.layer.0.output.dense.weight.in_sum2";
    for (ty, word) in [(1u32, "F16 (ggml type 1)"), (77, "unknown ggml type 77"), (30, "BF16")] {
        let mut b = sample().to_gguf_bytes();
        let p = after_name(&b, name) + 4 + 8; // n_dims, one dimension
        b[p..p + 4].copy_from_slice(&ty.to_le_bytes());
        let e = err_of(&b);
        assert!(e.contains(name) && e.contains(word), "{e}");
    }
}

#[test]
fn inconsistent_entries_are_errors() {
    let kv = vec![("general.type".to_string(), Value::Str("imatrix".into()))];
    let t = |name: &str, ne: Vec<u64>, data: Vec<f32>| OutTensor {
        name: name.into(),
        ne,
        data,
    };
    // Sums without counts.
    let b = gguf::write(&kv, &[t("l.weight.in_sum2", vec![2], vec![1.0, 1.0])]);
    let e = err_of(&b);
    assert!(e.contains("l.weight.in_sum2") && e.contains("l.weight.counts"), "{e}");
    // Counts without sums.
    let b = gguf::write(&kv, &[t("l.weight.counts", vec![1], vec![1.0])]);
    assert!(err_of(&b).contains("has no matching `l.weight.in_sum2`"));
    // Mixture-of-experts entries (several counts).
    let b = gguf::write(
        &kv,
        &[
            t("l.weight.in_sum2", vec![2, 2], vec![1.0; 4]),
            t("l.weight.counts", vec![1, 2], vec![1.0, 1.0]),
        ],
    );
    assert!(err_of(&b).contains("mixture-of-experts"));
    // Negative / NaN sums, negative counts.
    for (s, c) in [(-1.0f32, 1.0f32), (f32::NAN, 1.0), (1.0, -2.0), (1.0, f32::INFINITY)] {
        let b = gguf::write(
            &kv,
            &[
                t("l.weight.in_sum2", vec![1], vec![s]),
                t("l.weight.counts", vec![1], vec![c]),
            ],
        );
        let e = err_of(&b);
        assert!(e.contains("tensor `l.weight."), "{e}");
    }
    // in_sum of another length.
    let b = gguf::write(
        &kv,
        &[
            t("l.weight.in_sum2", vec![2], vec![1.0; 2]),
            t("l.weight.counts", vec![1], vec![1.0]),
            t("l.weight.in_sum", vec![3], vec![1.0; 3]),
        ],
    );
    assert!(err_of(&b).contains("l.weight.in_sum"));
    // A model GGUF, not an imatrix.
    let kv2 = vec![("general.type".to_string(), Value::Str("model".into()))];
    assert!(err_of(&gguf::write(&kv2, &[])).contains("not \"imatrix\""));
    // Datasets of the wrong type.
    let kv3 = vec![("imatrix.datasets".to_string(), Value::U32(3))];
    assert!(err_of(&gguf::write(&kv3, &[])).contains("imatrix.datasets"));
}

#[test]
fn column_count_and_model_mismatches() {
    let s = sample();
    let d = tmp();
    let p = d.path().join("s.gguf");
    s.write(&p).unwrap();
    let s = ImatrixStats::read(&p).unwrap();
    let e = s
        .column_weights("encoder.layer.0.attention.self.query.weight", 384)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(
        e.contains("encoder.layer.0.attention.self.query.weight") && e.contains("384"),
        "{e}"
    );
    // Against a model none of whose layers it names.
    let layers = vec![sop_model::TensorInfo {
        name: "model.layers.0.mlp.up_proj.weight".into(),
        shape: vec![8, 4],
        dtype: sop_model::DType::F32,
        file: PathBuf::from("m.safetensors"),
    }];
    let e = s.match_model(Path::new("some/model"), &layers).unwrap_err();
    assert!(matches!(e, CalibError::NoMatchingLayer { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("some/model") && e.contains("model.layers.0.mlp.up_proj.weight"),
        "{e}"
    );
}

#[test]
fn atomic_write_replaces_and_cleans_up() {
    let d = tmp();
    let p = d.path().join("out.gguf");
    std::fs::write(&p, b"old").unwrap();
    sample().write(&p).unwrap();
    assert_eq!(ImatrixStats::read(&p).unwrap().len(), 2);
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let bad = d.path().join("no/such/dir/out.gguf");
    let e = sample().write(&bad).unwrap_err().to_string();
    assert!(e.contains("no/such/dir/out.gguf"), "{e}");
    let e = ImatrixStats::read(&d.path().join("missing.gguf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.gguf"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), gguf_magic in any::<bool>()) {
        let mut b = bytes;
        if gguf_magic {
            let mut h = b"GGUF".to_vec();
            h.extend_from_slice(&3u32.to_le_bytes());
            h.extend_from_slice(&b);
            b = h;
        }
        if let Err(e) = read_bytes(&b) {
            prop_assert!(e.to_string().contains("/x/bad.imatrix"));
        }
    }

    #[test]
    fn mutated_files_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(), legacy in any::<bool>()) {
        let s = sample();
        let mut b = if legacy { to_legacy_bytes(&s) } else { s.to_gguf_bytes() };
        let i = pos.index(b.len());
        b[i] = byte;
        let n = cut.index(b.len() + 1);
        for bytes in [&b[..], &b[..n]] {
            match read_bytes(bytes) {
                Ok(st) => {
                    for (name, l) in &st.per_layer {
                        // Whatever parses is usable or gives a clean error.
                        match st.column_weights(name, l.cols()) {
                            Ok(Some(w)) => prop_assert!(w.iter().all(|v| v.is_finite() && *v >= 0.0)),
                            Ok(None) => prop_assert_eq!(l.count, 0),
                            Err(e) => prop_assert!(e.to_string().contains(name.as_str())),
                        }
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("/x/bad.imatrix")),
            }
        }
    }
}

/// A file written by llama.cpp's own GGUF writer (PyPI `gguf`, see
/// `scripts/make-imatrix-fixture.py`), with GGUF tensor names of a Llama model.
#[test]
fn reads_file_from_llama_cpp_gguf_writer() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama_imatrix.gguf");
    let s = ImatrixStats::read(&p).unwrap();
    assert_eq!(s.datasets, vec!["wiki.train.raw".to_string()]);
    assert_eq!((s.chunks, s.chunk_size), (4, 512));
    let names: Vec<&str> = s.per_layer.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"]
    );
    for (k, (name, hf, cols)) in [
        ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", 8usize),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", 12),
        ("output.weight", "lm_head.weight", 8),
    ]
    .into_iter()
    .enumerate()
    {
        let l = &s.per_layer[name];
        assert_eq!(l.count, 4 * (k as u64 + 1));
        let want_sum: Vec<f64> = (0..cols).map(|j| j as f64 - 1.0).collect();
        assert_eq!(l.sum_x.as_deref(), Some(&want_sum[..]));
        let want: Vec<f32> = (0..cols).map(|j| (j as f32 + 1.0) / 4.0).collect();
        assert_eq!(s.column_weights(hf, cols).unwrap().unwrap(), want, "{hf}");
        assert_eq!(s.column_weights(name, cols).unwrap().unwrap(), want, "{name}");
    }
}
