//! Malformed quantized-model files: `from_bytes` (what `sop inspect` loads) returns an error
//! naming the file and the layer, and never panics; what it accepts dequantizes safely.
//! Regression tests for what fuzzing (`fuzz/`, target `qmodel_read`) found.

use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use sop_quantize::sparse::{quantize_option, MenuOption};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

/// A valid file: one 4 x 40 layer quantized with `option`.
fn valid(option: &str) -> Vec<u8> {
    let (rows, cols) = (4, 40);
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
        .collect();
    let opt: MenuOption = option.parse().unwrap();
    let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
    let w = LayerRef {
        name: "l.weight",
        rows,
        cols,
        data: &data,
    };
    let layer = quantize_option(&q, &opt, w, None).unwrap();
    sop_qmodel::to_bytes(&[(layer, opt)], &[]).unwrap()
}

/// Rewrites a file: `meta` edits the `layers` JSON, `tensor` the bytes of each tensor.
fn rewrite(bytes: &[u8], meta: impl Fn(&mut serde_json::Value), tensor: impl Fn(&str, &mut Vec<u8>)) -> Vec<u8> {
    let (_, md) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata = md.metadata().clone().unwrap();
    let mut layers: serde_json::Value = serde_json::from_str(&metadata["layers"]).unwrap();
    meta(&mut layers);
    metadata.insert("layers".into(), layers.to_string());
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let mut data = v.data().to_vec();
            tensor(&name, &mut data);
            (name, v.dtype(), data)
        })
        .collect();
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, b)| {
            let width = if *d == safetensors::Dtype::F32 { 4 } else { 1 };
            (n.clone(), TensorView::new(*d, vec![b.len() / width], b).unwrap())
        })
        .collect();
    safetensors::serialize(views, Some(metadata)).unwrap()
}

/// Asserts that loading fails with a message naming the file and containing `needle`.
fn assert_refused(bytes: &[u8], needle: &str) {
    let e = match sop_qmodel::from_bytes(bytes, Path::new("/q/bad.sop.safetensors")) {
        Ok(_) => panic!("accepted; expected an error containing `{needle}`"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("/q/bad.sop.safetensors"), "{e}");
    assert!(e.contains(needle), "expected `{needle}` in: {e}");
}

fn no_tensor_change(_: &str, _: &mut Vec<u8>) {}

#[test]
fn valid_files_load_and_dequantize() {
    for option in ["NF4+DD4sUE4M4b16+O1%+R2%", "E4M3-POT", "BOF4sF32b8-HIF7"] {
        let bytes = valid(option);
        let back = sop_qmodel::from_bytes(&rewrite(&bytes, |_| {}, no_tensor_change), Path::new("ok")).unwrap();
        assert_eq!(back.layers[0].0.dequantize().len(), 160, "{option}");
    }
}

/// Regression: the first crash of `qmodel_read` (a mutated seed whose outlier index points
/// far outside the layer) panicked with an index out of bounds when dequantized.
#[test]
fn fuzz_crash_outlier_index_out_of_range() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-outlier-index.bin")).unwrap();
    assert_refused(&bytes, "layer `layer.2.weight`: outliers: index 1220416361 is outside");
}

#[test]
fn sparse_indices_must_lie_inside_the_layer() {
    let bytes = valid("E2M3sUE4M4b32+O1%+R1%");
    for which in ["outliers", "residuals"] {
        let bad = rewrite(
            &bytes,
            |_| {},
            |name, data| {
                if name.ends_with(which) {
                    data[..4].copy_from_slice(&160u32.to_le_bytes());
                }
            },
        );
        assert_refused(&bad, &format!("{which}: index 160 is outside the 160 weights"));
    }
}

#[test]
fn sparse_entries_must_be_sorted_and_unique() {
    let bytes = valid("E2M3sUE4M4b32+O2%+R2%");
    for which in ["outliers", "residuals"] {
        // A repeat (entry 1 := entry 0's index), then out of order (entry 0 := entry 1 + 1).
        for repeat in [true, false] {
            let bad = rewrite(
                &bytes,
                |_| {},
                |name, data| {
                    if name.ends_with(which) {
                        let i0 = u32::from_le_bytes(data[..4].try_into().unwrap());
                        let i1 = u32::from_le_bytes(data[6..10].try_into().unwrap());
                        if repeat {
                            data[6..10].copy_from_slice(&i0.to_le_bytes());
                        } else {
                            data[..4].copy_from_slice(&(i1 + 1).to_le_bytes());
                        }
                    }
                },
            );
            assert_refused(&bad, &format!("{which}: index "));
            assert_refused(&bad, "sorted ascending without repeats");
        }
    }
}

#[test]
fn sparse_values_must_be_finite() {
    let bytes = valid("E2M3sUE4M4b32+O1%+R1%");
    for which in ["outliers", "residuals"] {
        // +inf, -inf, a quiet NaN and a NaN with a payload: every bf16 with exponent all ones.
        for bits in [0x7f80u16, 0xff80, 0x7fc0, 0xff81] {
            let bad = rewrite(
                &bytes,
                |_| {},
                |name, data| {
                    if name.ends_with(which) {
                        data[4..6].copy_from_slice(&bits.to_le_bytes());
                    }
                },
            );
            assert_refused(&bad, &format!("{which}: index "));
            assert_refused(&bad, &format!("non-finite value 0x{bits:04x}"));
        }
    }
}

#[test]
fn residuals_must_not_sit_at_outlier_positions() {
    let bytes = valid("E2M3sUE4M4b32+O2%+R2%");
    let ok = sop_qmodel::from_bytes(&bytes, Path::new("ok")).unwrap();
    let (l, _) = &ok.layers[0];
    assert!(!l.outliers.is_empty() && !l.residuals.is_empty());
    // Move residual entry 0 onto outlier entry 0's position, keeping the residuals sorted.
    let o = l.outliers[0].index;
    let (i, _) = l
        .residuals
        .iter()
        .enumerate()
        .find(|(i, e)| {
            e.index != o
                && (*i == 0 || l.residuals[i - 1].index < o)
                && l.residuals.get(i + 1).is_none_or(|n| o < n.index)
        })
        .expect("a residual slot that keeps the order");
    let bad = rewrite(
        &bytes,
        |_| {},
        |name, data| {
            if name.ends_with("residuals") {
                data[6 * i..6 * i + 4].copy_from_slice(&o.to_le_bytes());
            }
        },
    );
    assert_refused(&bad, "layer `l.weight`: residuals: index ");
    assert_refused(&bad, &format!("index {o} is also an outlier"));
}

#[test]
fn other_format_versions_are_refused() {
    let bytes = valid("E2M3sUE4M4b32+O1%+R1%");
    for (format, needle) in [
        (
            "sop-quantized/1",
            "the file is `sop-quantized/1`, another format version",
        ),
        ("sop-quantized/3", "another format version"),
        ("pt", "metadata key `format` is not `sop-quantized/2`"),
    ] {
        let (_, md) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut metadata = md.metadata().clone().unwrap();
        metadata.insert("format".into(), format.into());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let views: Vec<(String, TensorView<'_>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, TensorView::new(v.dtype(), v.shape().to_vec(), v.data()).unwrap()))
            .collect();
        let bad = safetensors::serialize(views, Some(metadata)).unwrap();
        assert_refused(&bad, "metadata key `format` is not `sop-quantized/2`");
        assert_refused(&bad, needle);
    }
    assert_eq!(sop_qmodel::FORMAT, "sop-quantized/2");
}

#[test]
fn shapes_that_overflow_or_are_empty_are_refused() {
    let bytes = valid("E2M3sUE4M4");
    for (rows, cols) in [(u64::MAX, 2u64), (1 << 40, 1 << 40), (4, 0), (0, 40)] {
        let bad = rewrite(
            &bytes,
            |m| {
                m[0]["rows"] = rows.into();
                m[0]["cols"] = cols.into();
            },
            no_tensor_change,
        );
        assert_refused(&bad, &format!("shape {rows}x{cols} is empty or too large"));
    }
}

#[test]
fn table_metadata_must_match_the_point() {
    let bytes = valid("NF4+DD4sUE4M4b16");
    let one_table = rewrite(
        &bytes,
        |m| {
            m[0]["tables"].as_array_mut().unwrap().pop();
        },
        no_tensor_change,
    );
    assert_refused(&one_table, "1 LUTs recorded, option NF4+DD4sUE4M4 has 2");
    for bias in [1000, -101, i64::from(i32::MIN)] {
        let bad = rewrite(&bytes, |m| m[0]["tables"][1]["bias"] = bias.into(), no_tensor_change);
        assert_refused(&bad, &format!("LUT 1 bias {bias} is outside -100..=100"));
    }
    let short = rewrite(
        &bytes,
        |_| {},
        |name, data| {
            if name.ends_with(".lut0") {
                data.pop();
            }
        },
    );
    assert_refused(&short, "LUT 0 has 31 bytes, expected 16 16-bit words");
}

#[test]
fn duplicate_layers_and_bad_options_are_refused() {
    let bytes = valid("E2M3sUE4M4");
    let twice = rewrite(
        &bytes,
        |m| {
            let l = m[0].clone();
            m.as_array_mut().unwrap().push(l);
        },
        no_tensor_change,
    );
    assert_refused(&twice, "appears twice");
    let bad = rewrite(&bytes, |m| m[0]["option"] = "E2M3sUE4M4+é%".into(), no_tensor_change);
    assert_refused(&bad, "layer `l.weight`: option");
}
