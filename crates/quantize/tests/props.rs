//! Property tests of quantize / dequantize over many operating points and random layers:
//! codes and scale words in range, the documented reconstruction formula, LUT contents
//! representable in their entry format, exact bit counts, the scale search never worse than
//! the plain absmax code, and determinism (also across thread counts).

mod common;

use std::sync::OnceLock;

use common::{reconstruct, weighted_sse, SplitMix};
use proptest::prelude::*;
use sop_formats::{Ieee16, LutEntry, OperatingPoint, ScaleFormat};
use sop_quantize::{decode_entry, decode_scale, minifloat_of, LayerRef, QuantOptions, QuantizedLayer, Quantizer};

const POINTS: [&str; 18] = [
    "E2M3sUE4M4",
    "E2M1sE4M3b16",
    "E2M1sUE8M0b32",
    "E2M3sUE8M0b32",
    "E3M2sUE4M4b8",
    "NF4sUE4M4",
    "BOF4sUE4M4b64",
    "Split87sSE4M3",
    "SH4sE4M3b16",
    "INT4sUE4M4-FP16",
    "NF4sF32b64",
    "NF4+DD4sUE4M4b16",
    "Split87+DD4sSE4M3",
    "E2M3+DD6sUE4M4-HIF7",
    "DD4sUE4M4",
    "E2M1+DD4sE4M3",
    "E4M3-POT",
    "E5M2-POT",
];

fn quantizers() -> &'static Vec<(Quantizer, Quantizer)> {
    static Q: OnceLock<Vec<(Quantizer, Quantizer)>> = OnceLock::new();
    Q.get_or_init(|| {
        POINTS
            .iter()
            .map(|p| {
                let point: OperatingPoint = p.parse().unwrap();
                let plain = QuantOptions {
                    search_radius: 0,
                    ..QuantOptions::default()
                };
                (
                    Quantizer::new(point, QuantOptions::default()).unwrap(),
                    Quantizer::new(point, plain).unwrap(),
                )
            })
            .collect()
    })
}

/// A random layer: Gaussian weights with a random scale, some zero blocks and outliers.
fn layer(seed: u64, rows: usize, cols: usize) -> Vec<f32> {
    let mut g = SplitMix(seed);
    let sigma = 10f64.powf(g.uniform() * 6.0 - 4.0);
    let mut w = g.gaussians(rows * cols, sigma);
    for _ in 0..(g.next() % 3) {
        let i = (g.next() % w.len() as u64) as usize;
        w[i] *= 50.0;
    }
    if g.next() % 3 == 0 {
        let start = (g.next() % w.len() as u64) as usize;
        for x in w.iter_mut().skip(start).take(20) {
            *x = 0.0;
        }
    }
    w
}

fn col_weights(seed: u64, cols: usize) -> Option<Vec<f32>> {
    let mut g = SplitMix(seed ^ 0xabcdef);
    (g.next() % 2 == 0).then(|| {
        (0..cols)
            .map(|_| {
                if g.next() % 7 == 0 {
                    0.0
                } else {
                    (g.uniform() * 4.0) as f32
                }
            })
            .collect()
    })
}

fn check_invariants(q: &QuantizedLayer, data: &[f32]) {
    let point = q.point;
    assert_eq!(q.codes.len(), q.rows * q.cols);
    let width = point.code_bits();
    assert!(q.codes.iter().all(|&c| (c as u32) < (1 << width)), "code out of range");
    assert_eq!(q.bits(), point.layer_bits(q.rows as u64, q.cols as u64));
    assert_eq!(q.tables.len() as u32, point.tables());
    for t in &q.tables {
        assert_eq!(t.levels.len(), 1 << width);
        assert_eq!(t.words.len(), t.levels.len());
        assert!(t.levels.windows(2).all(|w| w[0] <= w[1]), "LUT not sorted");
        for (&w, &l) in t.words.iter().zip(&t.levels) {
            assert_eq!(
                decode_entry(t.entry, t.bias, w).to_bits(),
                l.to_bits(),
                "LUT level is not its word's value"
            );
            match t.entry.hif() {
                Some(h) => assert!((w as u32) < h.num_codes()),
                None => assert_eq!(Ieee16::Fp16.decode(w as u32), l),
            }
        }
    }
    match point {
        OperatingPoint::Pot { element } => {
            assert!(q.sel.is_empty() && q.scale_codes.is_empty());
            let m = minifloat_of(element).unwrap();
            assert!(q.codes.iter().all(|&c| m.decode(c as u32).is_finite()));
            assert!(q.tensor_scale.log2().fract() == 0.0, "POT scale is a power of two");
        }
        OperatingPoint::Block {
            element,
            dynamic,
            scale,
            block,
            lut,
        } => {
            assert_eq!(q.sel.len(), q.num_blocks());
            assert_eq!(q.scale_codes.len(), q.num_blocks());
            assert!(q.sel.iter().all(|&s| s <= 1));
            if dynamic.is_none() {
                assert!(q.sel.iter().all(|&s| s == 0));
            }
            if lut == LutEntry::Fp16 {
                assert!(q.tables.iter().all(|t| t.bias == 0));
            }
            if let Some(m) = minifloat_of(element) {
                for (i, &c) in q.codes.iter().enumerate() {
                    let b = q.block_of(i / q.cols, i % q.cols).unwrap();
                    if q.sel[b] == 0 {
                        assert!(m.decode(c as u32).is_finite());
                    }
                }
            }
            let block = block as usize;
            for (b, &code) in q.scale_codes.iter().enumerate() {
                let s = decode_scale(scale, code);
                assert!(s.is_finite(), "scale word {code:#x} is not finite");
                match scale {
                    ScaleFormat::SE4M3 => {
                        assert!(code & 0x7f != 0x7f);
                        // The scale's sign is that of the block's largest-magnitude weight.
                        let (r, k) = (b / q.blocks_per_row(), b % q.blocks_per_row());
                        let blk = &data[r * q.cols + k * block..r * q.cols + ((k + 1) * block).min(q.cols)];
                        let amax = blk.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                        let smax = blk.iter().copied().find(|x| x.abs() == amax).unwrap();
                        if s != 0.0 && amax > 0.0 {
                            assert_eq!(s < 0.0, smax < 0.0, "block {b}: scale {s} vs extreme {smax}");
                        }
                    }
                    ScaleFormat::E4M3 => assert!(code <= 0x7e),
                    ScaleFormat::UE8M0 => assert!(code <= 0xfe),
                    ScaleFormat::UE4M4 => assert!(code <= 0xff),
                    ScaleFormat::F32 => assert!(s >= 0.0),
                }
            }
        }
    }
    // The documented formula, recomputed from the public fields, bit for bit.
    let d = q.dequantize();
    let r = reconstruct(q);
    for (i, (x, y)) in d.iter().zip(&r).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "weight {i}: dequantize {x} != formula {y}");
        assert!(x.is_finite());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn quantize_invariants(seed in any::<u64>(), rows in 1usize..6, cols in 1usize..90, p in 0usize..POINTS.len()) {
        let data = layer(seed, rows, cols);
        let a = col_weights(seed, cols);
        let (q, plain) = &quantizers()[p];
        let w = LayerRef { name: "t", rows, cols, data: &data };
        let ql = q.quantize(w, a.as_deref()).unwrap();
        check_invariants(&ql, &data);
        // Deterministic.
        prop_assert_eq!(&q.quantize(w, a.as_deref()).unwrap(), &ql);
        // The search includes the plain absmax code, so it is never worse (up to f32 rounding of
        // u = w / t and of the final product, bounded relative to sqrt(err * signal)).
        let is_dynamic = matches!(ql.point, OperatingPoint::Block { dynamic: Some(_), .. }) || ql.point.to_string().starts_with("DD");
        if !is_dynamic {
            let ones = vec![1.0f32; cols];
            let aw = a.as_deref().unwrap_or(&ones);
            let e = weighted_sse(&data, &ql.dequantize(), cols, aw);
            let e0 = weighted_sse(&data, &plain.quantize(w, a.as_deref()).unwrap().dequantize(), cols, aw);
            let signal = weighted_sse(&data, &vec![0.0; data.len()], cols, aw);
            prop_assert!(e <= e0 + 1e-6 * (e0 * signal).sqrt() + 1e-30, "search {} > plain {}", e, e0);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut g = SplitMix(7);
    let (rows, cols) = (67, 200);
    let data = g.gaussians(rows * cols, 0.05);
    let a: Vec<f32> = (0..cols).map(|_| g.uniform() as f32).collect();
    for p in ["E2M3sUE4M4", "NF4+DD4sUE4M4b16", "E2M3+DD6sUE4M4", "E4M3-POT"] {
        let q = Quantizer::new(p.parse().unwrap(), QuantOptions::default()).unwrap();
        let w = LayerRef {
            name: "t",
            rows,
            cols,
            data: &data,
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let ql = q.quantize(w, Some(&a)).unwrap();
                let m = sop_quantize::metrics(&data, &ql.dequantize(), cols, Some(&a));
                (ql, m)
            })
        };
        let one = run(1);
        for t in [2, 3, 5] {
            assert_eq!(run(t), one, "{p} with {t} threads");
        }
    }
}
