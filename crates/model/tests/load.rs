//! Loading single files and directories: dtypes, shapes, ordering, linear-layer rule, policies.

mod common;

use common::*;
use half::{bf16, f16};
use sop_model::{DType, Model, ModelError, NonFinitePolicy};

fn open_one(tensors: &[T]) -> (tempfile::TempDir, std::path::PathBuf, Model) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    write(&p, tensors);
    let m = Model::open(&p).unwrap();
    (dir, p, m)
}

#[test]
fn f32_values_exact_and_row_major() {
    let v: Vec<f32> = vec![1.0, -2.5, 3.25, f32::MIN_POSITIVE, -0.0, 1e-40];
    let (_d, p, m) = open_one(&[t("fc.weight", "F32", &[2, 3], f32s(&v))]);
    let w = m.load_f32("fc.weight").unwrap();
    assert_eq!((w.name.as_str(), w.rows, w.cols), ("fc.weight", 2, 3));
    assert_eq!(
        w.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(w.row(1), &v[3..6]);
    assert_eq!(w.get(0, 2), 3.25);
    let info = m.tensor("fc.weight").unwrap();
    assert_eq!(info.dtype, DType::F32);
    assert_eq!(info.shape, vec![2, 3]);
    assert_eq!(info.file, p);
    assert_eq!(m.files(), vec![p.as_path()]);
}

#[test]
fn f16_values_exact() {
    // Every finite f16 bit pattern, as a 2 x N matrix.
    let vals: Vec<f16> = (0..=u16::MAX)
        .map(f16::from_bits)
        .filter(|x| x.is_finite())
        .take(2 * 30000)
        .collect();
    let (_d, _p, m) = open_one(&[t("h.weight", "F16", &[2, vals.len() / 2], f16s(&vals))]);
    assert_eq!(m.tensor("h.weight").unwrap().dtype, DType::F16);
    let w = m.load_f32("h.weight").unwrap();
    assert_eq!(w.data.len(), vals.len());
    for (got, want) in w.data.iter().zip(&vals) {
        assert_eq!(got.to_bits(), want.to_f32().to_bits());
    }
    // Spot-check known values independently of `half`.
    let spot = [f16::from_bits(0x3C00), f16::from_bits(0xC000), f16::from_bits(0x0001)];
    let (_d, _p, m) = open_one(&[t("s.weight", "F16", &[1, 3], f16s(&spot))]);
    assert_eq!(m.load_f32("s.weight").unwrap().data, [1.0, -2.0, 2f32.powi(-24)]);
}

#[test]
fn bf16_values_exact() {
    let vals: Vec<bf16> = (0..=u16::MAX)
        .step_by(3)
        .map(bf16::from_bits)
        .filter(|x| x.is_finite())
        .collect();
    let n = vals.len() / 4 * 4;
    let (_d, _p, m) = open_one(&[t("b.weight", "BF16", &[4, n / 4], bf16s(&vals[..n]))]);
    assert_eq!(m.tensor("b.weight").unwrap().dtype, DType::BF16);
    let w = m.load_f32("b.weight").unwrap();
    for (got, want) in w.data.iter().zip(&vals[..n]) {
        assert_eq!(got.to_bits(), (want.to_bits() as u32) << 16);
    }
    let spot = [bf16::from_bits(0x3F80), bf16::from_bits(0xC0A0)];
    let (_d, _p, m) = open_one(&[t("s.weight", "BF16", &[2, 1], bf16s(&spot))]);
    assert_eq!(m.load_f32("s.weight").unwrap().data, [1.0, -5.0]);
}

#[test]
fn file_written_by_safetensors_crate_loads() {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let a = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f16s(&[f16::from_f32(0.5), f16::from_f32(-8.0)]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.safetensors");
    let views = vec![
        ("a.weight", TensorView::new(Dtype::F32, vec![3, 2], &a).unwrap()),
        ("b.weight", TensorView::new(Dtype::F16, vec![1, 2], &b).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, &p).unwrap();
    let m = Model::open(&p).unwrap();
    let w = m.load_f32("a.weight").unwrap();
    assert_eq!((w.rows, w.cols), (3, 2));
    assert_eq!(w.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(m.load_f32("b.weight").unwrap().data, [0.5, -8.0]);
}

#[test]
fn directory_with_model_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("model.safetensors"), &[ramp("l.weight", &[2, 2])]);
    let m = Model::open(dir.path()).unwrap();
    assert_eq!(m.path(), dir.path());
    assert_eq!(m.load_f32("l.weight").unwrap().data, [0.5, 1.5, 2.5, 3.5]);
}

#[test]
fn directory_without_weights_and_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = Model::open(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::NoWeightsInDir { .. }), "{e}");
    assert!(e.to_string().contains(&dir.path().display().to_string()));

    let missing = dir.path().join("nope.safetensors");
    let e = Model::open(&missing).unwrap_err();
    assert!(matches!(e, ModelError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope.safetensors"), "{e}");
}

#[test]
fn tensors_sorted_naturally_and_deterministically() {
    // Written in a scrambled order; data offsets follow that order.
    let names = [
        "layer.10.weight",
        "layer.2.weight",
        "emb.weight",
        "layer.1.weight",
        "layer.2.bias",
    ];
    let ts: Vec<T> = names.iter().map(|n| ramp(n, &[1, 1])).collect();
    let (_d, _p, m) = open_one(&ts);
    let got: Vec<String> = m.tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(
        got,
        [
            "emb.weight",
            "layer.1.weight",
            "layer.2.bias",
            "layer.2.weight",
            "layer.10.weight"
        ]
    );
}

#[test]
fn linear_layers_rule() {
    let ts = vec![
        ramp("embeddings.word_embeddings.weight", &[10, 4]),
        ramp("embeddings.position_embeddings.weight", &[8, 4]),
        ramp("embeddings.LayerNorm.weight", &[4]),
        ramp("model.embed_tokens.weight", &[10, 4]),
        ramp("transformer.wte.weight", &[10, 4]),
        ramp("transformer.wpe.weight", &[8, 4]),
        ramp("transformer.h.0.ln_1.weight", &[4]),
        ramp("model.layers.0.input_layernorm.weight", &[4]),
        ramp("model.layers.0.self_attn.q_proj.weight", &[4, 4]),
        ramp("model.layers.0.self_attn.q_proj.bias", &[4]),
        ramp("model.layers.0.mlp.up_proj.weight", &[6, 4]),
        ramp("model.layers.10.mlp.up_proj.weight", &[6, 4]),
        ramp("model.layers.2.mlp.down_proj.weight", &[4, 6]),
        ramp("conv.weight", &[2, 2, 2]),
        ramp("empty.weight", &[0, 4]),
        ramp("weird_weight", &[2, 2]),
        ramp("lm_head.weight", &[10, 4]),
        t("int.weight", "I32", &[2, 2], vec![0; 16]),
    ];
    let (_d, _p, m) = open_one(&ts);
    let got: Vec<String> = m.linear_layers().into_iter().map(|t| t.name).collect();
    assert_eq!(
        got,
        [
            "int.weight",
            "lm_head.weight",
            "model.layers.0.mlp.up_proj.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.10.mlp.up_proj.weight",
        ]
    );
    for l in m.linear_layers() {
        assert_eq!(l.shape.len(), 2);
    }
    assert_eq!(m.tensors().len(), ts.len());
}

#[test]
fn non_2d_and_zero_size_are_refused() {
    let ts = vec![
        ramp("bias", &[4]),
        ramp("cube.weight", &[2, 2, 2]),
        ramp("scalar", &[]),
        ramp("empty.weight", &[0, 4]),
        ramp("empty2.weight", &[3, 0]),
    ];
    let (_d, p, m) = open_one(&ts);
    for (name, rank) in [("bias", 1), ("cube.weight", 3), ("scalar", 0)] {
        let e = m.load_f32(name).unwrap_err();
        assert!(matches!(e, ModelError::NotTwoD { .. }), "{e}");
        let s = e.to_string();
        assert!(s.contains(name) && s.contains(&format!("rank {rank}")), "{s}");
        assert!(s.contains(&p.display().to_string()), "{s}");
    }
    for name in ["empty.weight", "empty2.weight"] {
        let e = m.load_f32(name).unwrap_err();
        assert!(matches!(e, ModelError::ZeroSize { .. }), "{e}");
        assert!(e.to_string().contains(name));
    }
    let e = m.load_f32("no.such.weight").unwrap_err();
    assert!(matches!(e, ModelError::UnknownTensor { .. }), "{e}");
    assert!(e.to_string().contains("no.such.weight"));
}

#[test]
fn unsupported_dtypes_are_named() {
    let ts = vec![
        t("i.weight", "I32", &[2, 2], vec![1; 16]),
        t("d.weight", "F64", &[1, 2], vec![0; 16]),
        t("q.weight", "F8_E4M3", &[2, 2], vec![0; 4]),
        t("u.weight", "U8", &[2, 2], vec![0; 4]),
    ];
    let (_d, p, m) = open_one(&ts);
    for (name, dt) in [
        ("i.weight", "I32"),
        ("d.weight", "F64"),
        ("q.weight", "F8_E4M3"),
        ("u.weight", "U8"),
    ] {
        assert_eq!(m.tensor(name).unwrap().dtype, DType::Other(dt.into()));
        let e = m.load_f32(name).unwrap_err();
        match &e {
            ModelError::UnsupportedDtype { file, tensor, dtype } => {
                assert_eq!((file, tensor.as_str(), dtype.as_str()), (&p, name, dt));
            }
            other => panic!("unexpected {other}"),
        }
        let s = e.to_string();
        assert!(s.contains(name) && s.contains(dt) && s.contains("m.safetensors"), "{s}");
    }
}

fn with_nonfinite() -> Vec<f32> {
    // 3 x 4; finite range [-7, 5].
    vec![
        1.0,
        -7.0,
        5.0,
        0.25,
        2.0,
        f32::INFINITY,
        -1.0,
        f32::NAN,
        f32::NEG_INFINITY,
        3.0,
        -2.0,
        4.0,
    ]
}

#[test]
fn nonfinite_refused_with_location() {
    let (_d, _p, m) = open_one(&[t("bad.weight", "F32", &[3, 4], f32s(&with_nonfinite()))]);
    let e = m.load_f32("bad.weight").unwrap_err();
    match &e {
        ModelError::NonFinite {
            tensor,
            index,
            row,
            col,
            value,
        } => {
            assert_eq!(tensor, "bad.weight");
            assert_eq!((*index, *row, *col), (5, 1, 1));
            assert_eq!(*value, f32::INFINITY);
        }
        other => panic!("unexpected {other}"),
    }
    let s = e.to_string();
    assert!(s.contains("bad.weight") && s.contains("flat index 5") && s.contains("row 1, col 1"));
    // Explicit Refuse is the same.
    assert!(m.load_f32_with("bad.weight", NonFinitePolicy::Refuse).is_err());

    // NaN first, and in f16 / bf16 data too.
    let h = [f16::from_f32(1.0), f16::from_f32(2.0), f16::NAN, f16::INFINITY];
    let b = [bf16::from_f32(1.0), bf16::NEG_INFINITY];
    let (_d, _p, m) = open_one(&[
        t("h.weight", "F16", &[2, 2], f16s(&h)),
        t("b.weight", "BF16", &[1, 2], bf16s(&b)),
    ]);
    let e = m.load_f32("h.weight").unwrap_err();
    assert!(
        matches!(e, ModelError::NonFinite { index: 2, row: 1, col: 0, value, .. } if value.is_nan()),
        "{e}"
    );
    let e = m.load_f32("b.weight").unwrap_err();
    assert!(
        matches!(e, ModelError::NonFinite { index: 1, row: 0, col: 1, value, .. } if value == f32::NEG_INFINITY),
        "{e}"
    );
}

#[test]
fn nonfinite_zero_policy() {
    let (_d, _p, m) = open_one(&[t("bad.weight", "F32", &[3, 4], f32s(&with_nonfinite()))]);
    let w = m.load_f32_with("bad.weight", NonFinitePolicy::Zero).unwrap();
    let mut want = with_nonfinite();
    for i in [5, 7, 8] {
        want[i] = 0.0;
    }
    assert_eq!(w.data, want);
}

#[test]
fn nonfinite_clamp_policy() {
    let (_d, _p, m) = open_one(&[t("bad.weight", "F32", &[3, 4], f32s(&with_nonfinite()))]);
    let w = m.load_f32_with("bad.weight", NonFinitePolicy::Clamp).unwrap();
    let mut want = with_nonfinite();
    want[5] = 5.0; // +Inf -> largest finite positive
    want[7] = 0.0; // NaN -> 0
    want[8] = -7.0; // -Inf -> most negative finite
    assert_eq!(w.data, want);
    assert!(w.data.iter().all(|x| x.is_finite()));
}

#[test]
fn finite_data_unchanged_by_policies() {
    let (_d, _p, m) = open_one(&[ramp("ok.weight", &[3, 5])]);
    let a = m.load_f32("ok.weight").unwrap();
    for p in [NonFinitePolicy::Zero, NonFinitePolicy::Clamp] {
        assert_eq!(m.load_f32_with("ok.weight", p).unwrap(), a);
    }
}

#[test]
fn model_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Model>();
    check::<ModelError>();
}
