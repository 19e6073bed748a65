//! Sparse entries in the lane-output domain (`sop_quantize::sparse`): an outlier stores
//! `v = bf16(w / t)` and reconstructs as `t * v`, a residual stores `r = bf16(w / t - p)` and
//! reconstructs as `t * f32(p + r)`, residuals never sit at outlier positions, every value is
//! rounded once, and the result does not depend on the thread count.

mod common;

use common::SplitMix;
use proptest::prelude::*;
use sop_quantize::sparse::{count_for, f64_to_bf16, outlier_value, quantize_option, to_bf16, MenuOption};
use sop_quantize::{LayerRef, QuantOptions, QuantizedLayer, Quantizer};

/// Points with a non-power-of-two tensor scale (UE4M4, E4M3, S+E4M3 block scales), with
/// `t = 1` (UE8M0, F32 block scales) and `t = 2^k` (`-POT`).
const POINTS: [&str; 7] = [
    "NF4+DD4sUE4M4b16",
    "E2M1sE4M3b16",
    "Split87+DD4sSE4M3b16",
    "E2M3sUE4M4b32",
    "E2M1sUE8M0b32",
    "NF4sF32b64",
    "E4M3-POT",
];

fn bf16_value(b: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(b) << 16))
}

/// Whether `b` is `x = num / den` rounded to nearest even bf16 (finite, normal range, positive
/// `den`), checked exactly: `num - value * den` is exact in f64 for the magnitudes used here.
fn is_rne(num: f64, den: f64, b: u16) -> bool {
    let err = |b: u16| (num - bf16_value(b) * den).abs();
    let (down, up) = (b.wrapping_sub(1), b.wrapping_add(1));
    let e = err(b);
    [down, up].iter().all(|&n| {
        let en = err(n);
        e < en || (e == en && b & 1 == 0)
    })
}

fn quantize(opt: &MenuOption, rows: usize, cols: usize, data: &[f32], a: Option<&[f32]>) -> QuantizedLayer {
    let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
    let w = LayerRef {
        name: "t",
        rows,
        cols,
        data,
    };
    quantize_option(&q, opt, w, a).unwrap()
}

/// The defining properties of one sparse layer against its source weights.
fn check_sparse(ql: &QuantizedLayer, data: &[f32], opt: &MenuOption) {
    let n = data.len();
    let t = ql.tensor_scale;
    let deq = ql.dequantize();
    let ko = count_for(opt.outlier_pct, n);
    assert_eq!(ql.outliers.len(), ko);
    // (b) no residual at an outlier position; the count is what the candidates allow.
    let is_outlier = |i: u32| ql.outliers.binary_search_by_key(&i, |o| o.index).is_ok();
    assert!(
        ql.residuals.iter().all(|e| !is_outlier(e.index)),
        "residual at an outlier"
    );
    assert_eq!(ql.residuals.len(), count_for(opt.residual_pct, n).min(n - ko));
    assert_eq!(
        ql.bits(),
        ql.dense_bits() + 48 * (ql.outliers.len() + ql.residuals.len()) as u64
    );
    for v in [&ql.outliers, &ql.residuals] {
        assert!(v.windows(2).all(|w| w[0].index < w[1].index), "not sorted");
        assert!(v.iter().all(|e| e.is_finite()), "non-finite value");
    }
    // (a) the reconstruction rules, bit for bit.
    for o in &ql.outliers {
        let i = o.index as usize;
        assert_eq!(o.bf16, outlier_value(data[i], t));
        assert_eq!(deq[i].to_bits(), (t * o.value()).to_bits(), "outlier {i}");
    }
    for e in &ql.residuals {
        let i = e.index as usize;
        let p = ql.product(i / ql.cols, i % ql.cols);
        assert_eq!(e.bf16, f64_to_bf16(f64::from(data[i]) / f64::from(t) - f64::from(p)));
        assert_eq!(deq[i].to_bits(), (t * (p + e.value())).to_bits(), "residual {i}");
    }
    // Every other position is the dense reconstruction.
    let sparse: Vec<usize> = ql
        .outliers
        .iter()
        .chain(&ql.residuals)
        .map(|e| e.index as usize)
        .collect();
    for (i, &x) in deq.iter().enumerate() {
        if !sparse.contains(&i) {
            assert_eq!(x.to_bits(), (t * ql.product(i / ql.cols, i % ql.cols)).to_bits());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sparse_entries_follow_the_lane_output_rule(
        seed in any::<u64>(),
        p in 0usize..POINTS.len(),
        rows in 1usize..9,
        cols in 1usize..70,
        o_pct in prop::sample::select(vec![0.0, 0.5, 3.0, 20.0, 100.0]),
        r_pct in prop::sample::select(vec![0.0, 1.0, 10.0, 90.0, 100.0]),
    ) {
        let mut g = SplitMix(seed);
        let sigma = 10f64.powf(g.uniform() * 4.0 - 3.0);
        let mut data = g.gaussians(rows * cols, sigma);
        let i = (g.next() % data.len() as u64) as usize;
        data[i] *= 40.0;
        let a: Vec<f32> = (0..cols).map(|_| g.uniform() as f32 + 0.01).collect();
        let opt = MenuOption { point: POINTS[p].parse().unwrap(), outlier_pct: o_pct, residual_pct: r_pct };
        let ql = quantize(&opt, rows, cols, &data, (seed % 2 == 0).then_some(&a[..]));
        check_sparse(&ql, &data, &opt);
    }
}

/// (b) with more residuals requested than non-outlier weights: every non-outlier weight gets
/// one, no outlier does, and the bits count the real number.
#[test]
fn residuals_skip_outliers_even_when_k_exceeds_the_rest() {
    let mut g = SplitMix(3);
    let (rows, cols) = (8, 32);
    let data = g.gaussians(rows * cols, 0.1);
    let opt: MenuOption = "NF4+DD4sUE4M4b16+O10%+R95%".parse().unwrap();
    let ql = quantize(&opt, rows, cols, &data, None);
    let n = rows * cols;
    assert_eq!(ql.outliers.len(), 26);
    assert_eq!(count_for(95.0, n), 243);
    assert_eq!(ql.residuals.len(), n - 26);
    check_sparse(&ql, &data, &opt);
}

/// (c) with `t = 1` (UE8M0 and F32 block scales) an outlier stores `bf16(w)`, as before the
/// change, and a residual `bf16(w - p)` rounded once.
#[test]
fn unit_tensor_scale_keeps_the_old_outlier_value() {
    let mut g = SplitMix(11);
    let (rows, cols) = (16, 64);
    let data = g.gaussians(rows * cols, 0.3);
    for p in ["E2M1sUE8M0b32", "NF4sF32b64"] {
        let opt: MenuOption = format!("{p}+O2%+R2%").parse().unwrap();
        let ql = quantize(&opt, rows, cols, &data, None);
        assert_eq!(ql.tensor_scale, 1.0, "{p}");
        assert!(!ql.outliers.is_empty());
        for o in &ql.outliers {
            assert_eq!(o.bf16, to_bf16(data[o.index as usize]), "{p}");
            assert_eq!(ql.dequantize()[o.index as usize], o.value());
        }
        for e in &ql.residuals {
            let i = e.index as usize;
            let p = ql.product(i / cols, i % cols);
            assert_eq!(e.bf16, f64_to_bf16(f64::from(data[i]) - f64::from(p)));
        }
        check_sparse(&ql, &data, &opt);
    }
}

/// (d) the same bits at 1 and 2 threads.
#[test]
fn sparse_layers_do_not_depend_on_the_thread_count() {
    let mut g = SplitMix(5);
    let (rows, cols) = (40, 96);
    let data = g.gaussians(rows * cols, 0.05);
    let a: Vec<f32> = (0..cols).map(|_| g.uniform() as f32).collect();
    for p in ["NF4+DD4sUE4M4b16+O0.5%+R2%", "E2M1sE4M3b16+O1%+R5%", "E4M3-POT+O1%+R1%"] {
        let opt: MenuOption = p.parse().unwrap();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let ql = quantize(&opt, rows, cols, &data, Some(&a));
                let bits: Vec<u32> = ql.dequantize().iter().map(|x| x.to_bits()).collect();
                (ql, bits)
            })
        };
        let one = run(1);
        assert!(!one.0.outliers.is_empty() && !one.0.residuals.is_empty());
        assert_eq!(run(2), one, "{p}");
    }
}

/// `w / t` is rounded once: the f64 quotient then bf16 is the correctly rounded quotient,
/// while the f32 quotient then bf16 double-rounds (it lands exactly on a bf16 midpoint and
/// ties to even, although the exact quotient lies off the midpoint).
#[test]
fn outlier_quotient_is_rounded_once() {
    let mut g = SplitMix(17);
    let mut double_rounded = 0;
    for _ in 0..20_000 {
        // A bf16 midpoint m and a non-power-of-two t; w = f32(m * t) makes w / t very close
        // to m.
        let m = f64::from(f32::from_bits(
            (0x3f80_0000 + (g.next() % 0x80_0000) as u32) & !0xffff | 0x8000,
        ));
        let t = (1.0 + g.uniform()) as f32;
        let w = (m * f64::from(t)) as f32;
        let v = outlier_value(w, t);
        assert!(is_rne(f64::from(w), f64::from(t), v), "w {w} t {t}: 0x{v:04x}");
        if to_bf16(w / t) != v {
            double_rounded += 1;
        }
    }
    assert!(
        double_rounded > 0,
        "no double rounding found: the f64 path would not matter"
    );
}

#[test]
fn f64_to_bf16_rounds_once_and_saturates() {
    let mut g = SplitMix(23);
    for _ in 0..20_000 {
        let x = (g.uniform() - 0.5) * 10f64.powi((g.next() % 60) as i32 - 30);
        let b = f64_to_bf16(x);
        if x > 0.0 {
            assert!(is_rne(x, 1.0, b), "{x}: 0x{b:04x}");
        } else if x < 0.0 {
            assert!(is_rne(-x, 1.0, b ^ 0x8000), "{x}: 0x{b:04x}");
        }
    }
    assert_eq!(f64_to_bf16(1.0), 0x3f80);
    assert_eq!(f64_to_bf16(1.0 + 1.0 / 256.0), 0x3f80); // tie to even
    assert_eq!(f64_to_bf16(1.0 + 1.0 / 256.0 + 1e-12), 0x3f81); // just above: not a tie
    assert_eq!(f64_to_bf16(1e39), 0x7f7f);
    assert_eq!(f64_to_bf16(-f64::INFINITY), 0xff7f);
    assert_eq!(f64_to_bf16(f64::from(f32::MAX)), 0x7f7f);
    assert_eq!(f64_to_bf16(1e-45), 0x0000); // below half the smallest bf16 subnormal
    assert_eq!(f64_to_bf16(-0.0), 0x8000);
}
