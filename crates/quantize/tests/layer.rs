//! Layer-level behaviour and bad input: short last blocks, all-zero blocks, a huge outlier,
//! NaN/Inf, empty and mis-shaped tensors, column weights, and the baselines' exact rules.

mod common;

use common::{reconstruct, SplitMix};
use sop_formats::{E2M1, E2M3, E4M3, UE4M4, UE8M0};
use sop_quantize::{metrics, LayerRef, QuantError, QuantOptions, Quantizer, TABLE_TOPS};

fn q(name: &str) -> Quantizer {
    Quantizer::new(name.parse().unwrap(), QuantOptions::default()).unwrap()
}

fn run(name: &str, rows: usize, cols: usize, data: &[f32]) -> sop_quantize::QuantizedLayer {
    q(name)
        .quantize(
            LayerRef {
                name: "t",
                rows,
                cols,
                data,
            },
            None,
        )
        .unwrap()
}

#[test]
fn short_last_block_uses_only_its_own_weights() {
    // 37 columns in blocks of 16: blocks of 16, 16 and 5 weights per row.
    let (rows, cols) = (3, 37);
    let mut g = SplitMix(1);
    let mut data = g.gaussians(rows * cols, 1.0);
    // Make the short block of row 1 tiny: its scale must follow its own amax, not a padded
    // neighbour's.
    for c in 32..37 {
        data[cols + c] *= 1e-3;
    }
    let ql = run("E2M3sUE4M4", rows, cols, &data);
    assert_eq!(ql.blocks_per_row(), 3);
    assert_eq!(ql.num_blocks(), 9);
    assert_eq!(ql.codes.len(), rows * cols);
    assert_eq!(ql.block_of(1, 36), Some(5));
    // Bits: codes + 9 scale bytes + the FP32 tensor scale, no padding codes.
    assert_eq!(ql.bits(), (rows * cols * 6 + 9 * 8 + 32) as u64);
    let amax = data[cols + 32..cols + 37].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let s = ql.block_scale(5) * ql.tensor_scale;
    let ratio = amax / (s * E2M3.max());
    assert!((0.8..1.25).contains(&ratio), "short block scale {s} vs its amax {amax}");
    let m = metrics(
        &data[cols + 32..cols + 37],
        &ql.dequantize()[cols + 32..cols + 37],
        5,
        None,
    );
    assert!(m.nmse < 1e-2, "short block nmse {}", m.nmse);
    // Block sizes that divide nothing: b7 on 37 columns.
    let ql = run("NF4sUE4M4b7", rows, cols, &data);
    assert_eq!(ql.blocks_per_row(), 6);
    assert_eq!(ql.bits(), ql.point.layer_bits(3, 37));
}

#[test]
fn all_zero_tensor_and_all_zero_blocks() {
    for p in [
        "E2M3sUE4M4",
        "NF4+DD4sUE4M4",
        "E2M1sUE8M0b32",
        "Split87sSE4M3",
        "NF4sF32b64",
        "E4M3-POT",
        "DD6sUE4M4",
    ] {
        let data = vec![0.0f32; 4 * 48];
        let ql = run(p, 4, 48, &data);
        assert!(ql.dequantize().iter().all(|&x| x == 0.0), "{p}");
        assert_eq!(ql.tensor_scale, 1.0, "{p}");
        let m = metrics(&data, &ql.dequantize(), 48, None);
        assert_eq!((m.nmse, m.cosine), (0.0, 1.0));
    }
    // One zero block among normal ones: its scale is zero, its codes decode to zero.
    let mut g = SplitMix(2);
    let mut data = g.gaussians(2 * 48, 1.0);
    data[16..32].fill(0.0);
    for p in ["E2M3sUE4M4", "NF4sUE4M4", "NF4+DD4sUE4M4", "E2M1sE4M3"] {
        let ql = run(p, 2, 48, &data);
        assert_eq!(ql.block_scale(1), 0.0, "{p}");
        assert!(ql.dequantize()[16..32].iter().all(|&x| x == 0.0), "{p}");
    }
}

#[test]
fn a_single_huge_outlier() {
    let mut g = SplitMix(3);
    let (rows, cols) = (8, 64);
    let mut data = g.gaussians(rows * cols, 0.02);
    data[100] = 3.0e4;
    for p in [
        "E2M3sUE4M4",
        "E4M3-POT",
        "NF4+DD4sUE4M4",
        "E2M1sE4M3",
        "E2M1sUE8M0b32",
        "NF4sF32b64",
    ] {
        let ql = run(p, rows, cols, &data);
        let d = ql.dequantize();
        assert!(d.iter().all(|x| x.is_finite()), "{p}");
        // The OCP MX rule may clip a block maximum to 6/8 of its value (amax / X < 8 -> 6).
        let tol = if p.contains("UE8M0") { 0.25 } else { 0.1 };
        assert!(
            (d[100] / 3.0e4 - 1.0).abs() < tol,
            "{p}: outlier reconstructed as {}",
            d[100]
        );
        // The other blocks keep their own scale: their error stays moderate.
        let m = metrics(&data[cols..], &d[cols..], cols, None);
        assert!(m.nmse < 0.2, "{p}: rows without the outlier have nmse {}", m.nmse);
    }
}

#[test]
fn non_finite_weights_are_refused_with_tensor_and_index() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut data = vec![0.5f32; 3 * 10];
        data[13] = bad;
        let e = q("E2M3sUE4M4")
            .quantize(
                LayerRef {
                    name: "blk.0.w",
                    rows: 3,
                    cols: 10,
                    data: &data,
                },
                None,
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                QuantError::NonFinite {
                    index: 13,
                    row: 1,
                    col: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("blk.0.w") && msg.contains("index 13") && msg.contains("row 1, col 3"),
            "{msg}"
        );
    }
}

#[test]
fn empty_and_misshaped_tensors_are_refused() {
    let e = q("E2M3sUE4M4")
        .quantize(
            LayerRef {
                name: "e",
                rows: 0,
                cols: 16,
                data: &[],
            },
            None,
        )
        .unwrap_err();
    assert!(
        matches!(e, QuantError::Empty { .. }) && e.to_string().contains("`e` is empty"),
        "{e}"
    );
    let e = q("E4M3-POT")
        .quantize(
            LayerRef {
                name: "s",
                rows: 2,
                cols: 3,
                data: &[0.0; 5],
            },
            None,
        )
        .unwrap_err();
    assert!(matches!(e, QuantError::Shape { len: 5, .. }), "{e}");
}

#[test]
fn bad_column_weights_are_refused() {
    let data = vec![0.1f32; 32];
    let qq = q("E2M3sUE4M4");
    let w = LayerRef {
        name: "c",
        rows: 2,
        cols: 16,
        data: &data,
    };
    assert!(matches!(
        qq.quantize(w, Some(&[1.0; 15])),
        Err(QuantError::ColumnWeights { .. })
    ));
    let mut a = vec![1.0f32; 16];
    a[4] = -1.0;
    let e = qq.quantize(w, Some(&a)).unwrap_err();
    assert!(e.to_string().contains("column 4"), "{e}");
    a[4] = f32::NAN;
    assert!(qq.quantize(w, Some(&a)).is_err());
}

#[test]
fn column_weights_steer_the_error() {
    // Heavier columns get the lower error: compare weighted error with a_j = 1 and a_j skewed.
    let mut g = SplitMix(4);
    let (rows, cols) = (64, 64);
    let data = g.gaussians(rows * cols, 1.0);
    let a: Vec<f32> = (0..cols).map(|j| if j % 16 < 4 { 100.0 } else { 1.0 }).collect();
    for p in ["E2M1sE4M3", "NF4+DD4sUE4M4"] {
        let qq = q(p);
        let w = LayerRef {
            name: "a",
            rows,
            cols,
            data: &data,
        };
        let uni = qq.quantize(w, None).unwrap().dequantize();
        let wtd = qq.quantize(w, Some(&a)).unwrap().dequantize();
        let mu = metrics(&data, &uni, cols, Some(&a));
        let mw = metrics(&data, &wtd, cols, Some(&a));
        assert!(
            mw.w_nmse < mu.w_nmse,
            "{p}: weighted {} vs uniform {}",
            mw.w_nmse,
            mu.w_nmse
        );
    }
}

#[test]
fn e4m3_pot_follows_the_decided_rule() {
    let data = [0.3f32, -0.01, 0.2, 1e-6, -0.29, 0.0];
    let ql = run("E4M3-POT", 2, 3, &data);
    // k = ceil(log2(0.3 / 448)) = -10.
    assert_eq!(ql.tensor_scale, 2f32.powi(-10));
    assert_eq!(sop_quantize::pot_exponent(0.3, 448.0), -10);
    for (i, &x) in data.iter().enumerate() {
        assert_eq!(ql.codes[i] as u32, E4M3.encode(x * 1024.0));
    }
    assert_eq!(ql.bpw(), (6.0 * 8.0 + 8.0) / 6.0);
    assert_eq!(ql.bits(), 56);
}

#[test]
fn mx_follows_the_ocp_scale_rule() {
    let mut g = SplitMix(5);
    let data = g.gaussians(4 * 64, 0.03);
    let ql = run("E2M1sUE8M0b32", 4, 64, &data);
    assert_eq!(ql.tensor_scale, 1.0);
    for b in 0..ql.num_blocks() {
        let (r, k) = (b / 2, b % 2);
        let blk = &data[r * 64 + k * 32..r * 64 + k * 32 + 32];
        let amax = blk.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // shared exponent = floor(log2 amax) - emax(E2M1) = floor(log2 amax) - 2.
        let want = amax.log2().floor() as i32 - 2;
        assert_eq!(ql.scale_codes[b] as i32 - 127, want, "block {b}");
        let x = UE8M0.decode(ql.scale_codes[b]);
        for (j, &w) in blk.iter().enumerate() {
            assert_eq!(ql.codes[r * 64 + k * 32 + j] as u32, E2M1.encode(w / x));
        }
    }
}

#[test]
fn nvfp4_like_tensor_scale_maps_the_largest_block_to_e4m3_max() {
    let mut g = SplitMix(6);
    let data = g.gaussians(16 * 64, 0.02);
    let ql = run("E2M1sE4M3b16", 16, 64, &data);
    let amax = data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert_eq!(ql.tensor_scale, amax / (6.0 * 448.0));
    let ql = run("E2M3sUE4M4", 16, 64, &data);
    assert_eq!(ql.tensor_scale, amax / (7.5 * UE4M4.max()));
    // For a pair the smallest member extreme (1 for the DD table) sets the rule.
    let ql = run("E2M3+DD6sUE4M4", 16, 64, &data);
    assert_eq!(ql.tensor_scale, amax / UE4M4.max());
}

#[test]
fn bitsandbytes_like_nf4_stores_the_f32_absmax() {
    let mut g = SplitMix(8);
    let data = g.gaussians(2 * 128, 0.02);
    let ql = run("NF4sF32b64", 2, 128, &data);
    assert_eq!(ql.bpw(), (256.0 * 4.0 + 4.0 * 32.0 + 32.0 + 16.0 * 8.0 + 8.0) / 256.0);
    for b in 0..4 {
        let blk = &data[b * 64..b * 64 + 64];
        let amax = blk.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert_eq!(ql.block_scale(b), amax);
    }
    let d = ql.dequantize();
    assert_eq!(d, reconstruct(&ql));
}

#[test]
fn codebook_points_use_exactly_the_lut_levels() {
    let mut g = SplitMix(9);
    let data = g.gaussians(32 * 64, 0.02);
    for p in [
        "NF4sUE4M4",
        "NF4sUE4M4-HIF7",
        "NF4sUE4M4-FP16",
        "SH4+DD4sUE4M4",
        "Split87+DD4sSE4M3",
    ] {
        let ql = run(p, 32, 64, &data);
        let nf4 = sop_codebook::nf4();
        if p.starts_with("NF4") {
            let t = &ql.tables[0];
            assert_eq!(t.levels.len(), 16);
            // The LUT holds NF4 times the chosen top level (HIF: one of TABLE_TOPS; FP16: 1),
            // rounded to the entry format, not NF4 itself (except FP16 close).
            let top = t.levels[15];
            assert!(TABLE_TOPS.contains(&top), "{p}: top {top}");
            assert_eq!(t.levels[0], -top, "{p}");
            let diff = t
                .levels
                .iter()
                .zip(&nf4.levels)
                .map(|(a, b)| (a / top - b).abs())
                .fold(0.0f32, f32::max);
            if p.ends_with("FP16") {
                assert!(diff < 1e-3);
            } else {
                assert!(diff > 1e-3 && diff < 0.1, "{p}: {diff}");
            }
        }
        // Every reconstructed weight is t * (LUT level * block scale) for its own code.
        assert_eq!(ql.dequantize(), reconstruct(&ql), "{p}");
    }
}

#[test]
fn pairs_pick_the_better_member_and_dd4_helps() {
    let mut g = SplitMix(10);
    // Heavy-tailed weights (Gaussian scale mixture) so that NF4 alone is not optimal.
    let (rows, cols) = (96, 256);
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| g.gaussian(0.02) * if g.next() % 10 == 0 { 4.0 } else { 1.0 })
        .collect();
    let w = LayerRef {
        name: "p",
        rows,
        cols,
        data: &data,
    };
    let nmse = |p: &str| {
        let ql = q(p).quantize(w, None).unwrap();
        (metrics(&data, &ql.dequantize(), cols, None).nmse, ql)
    };
    let (nf4, _) = nmse("NF4sUE4M4");
    let (dd4, _) = nmse("DD4sUE4M4");
    let (pair, ql) = nmse("NF4+DD4sUE4M4");
    assert!(pair < nf4 && pair < dd4, "pair {pair} nf4 {nf4} dd4 {dd4}");
    let used = ql.sel.iter().filter(|&&s| s == 1).count();
    assert!(
        used > 0 && used < ql.sel.len(),
        "DD4 serves {used} of {} blocks",
        ql.sel.len()
    );
    // The DD4 table keeps -top, 0, +top for a top level from TABLE_TOPS.
    let t = &ql.tables[1];
    let top = t.levels[15];
    assert!(TABLE_TOPS.contains(&top), "top {top}");
    assert!(t.levels.contains(&-top) && t.levels.contains(&0.0));
}

/// Weighted squared error of a quantized layer against the data (plain sum, f64).
fn sq_error(data: &[f32], ql: &sop_quantize::QuantizedLayer) -> f64 {
    data.iter()
        .zip(ql.dequantize())
        .map(|(&x, y)| (x as f64 - y as f64).powi(2))
        .sum()
}

#[test]
fn table_search_never_loses_and_leaves_fp16_alone() {
    let mut g = SplitMix(11);
    let (rows, cols) = (64, 256);
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| g.gaussian(0.02) * if g.next() % 8 == 0 { 3.0 } else { 1.0 })
        .collect();
    let w = LayerRef {
        name: "s",
        rows,
        cols,
        data: &data,
    };
    let off = QuantOptions {
        table_search: false,
        ..QuantOptions::default()
    };
    let mut improved = 0;
    for p in [
        "NF4sUE4M4",
        "DD4sUE4M4",
        "NF4+DD4sUE4M4",
        "NF4+DD4sUE4M4-HIF7",
        "SH4+DD4sSE4M3",
    ] {
        let point = p.parse().unwrap();
        let with = Quantizer::new(point, QuantOptions::default())
            .unwrap()
            .quantize(w, None)
            .unwrap();
        let without = Quantizer::new(point, off).unwrap().quantize(w, None).unwrap();
        let (a, b) = (sq_error(&data, &with), sq_error(&data, &without));
        // The search keeps the untouched tables as its first candidate: never worse (a small
        // slack for the f32 reconstruction, which the search does not see).
        assert!(a <= b * (1.0 + 1e-6), "{p}: search {a} vs none {b}");
        improved += (a < b * 0.999) as usize;
        assert_eq!(with.dequantize(), reconstruct(&with), "{p}");
    }
    assert!(improved >= 2, "the search improved only {improved} points");
    for p in ["NF4sUE4M4-FP16", "NF4+DD4sUE4M4-FP16"] {
        let point = p.parse().unwrap();
        let with = Quantizer::new(point, QuantOptions::default())
            .unwrap()
            .quantize(w, None)
            .unwrap();
        let without = Quantizer::new(point, off).unwrap().quantize(w, None).unwrap();
        assert_eq!(with, without, "{p}: an FP16 LUT is not searched");
    }
}
