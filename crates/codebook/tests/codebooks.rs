//! Invariants of every fixed codebook, exact published values, `Codebook::new`
//! validation, serde, and `nearest` against a brute-force search.

use proptest::prelude::*;
use sop_codebook::*;

fn all_books() -> Vec<Codebook> {
    let mut v = vec![nf4(), e2m1(), int4(), e2m3()];
    for b in [16, 64] {
        v.extend([bof4(b), bof4_s(b), split87(b), sh4(b)]);
    }
    v
}

/// Brute-force nearest: minimum |x - l| (f64), ties to smaller |l|, then lower index.
fn brute_nearest(levels: &[f32], x: f32) -> u8 {
    let mut best = 0usize;
    for i in 1..levels.len() {
        let d = (x as f64 - levels[i] as f64).abs();
        let db = (x as f64 - levels[best] as f64).abs();
        if d < db || (d == db && levels[i].abs() < levels[best].abs()) {
            best = i;
        }
    }
    best as u8
}

#[test]
fn every_codebook_satisfies_the_invariants() {
    for cb in all_books() {
        cb.validate().unwrap_or_else(|e| panic!("{}: {e}", cb.name));
        let n = cb.len();
        assert!(n == 16 || n == 64, "{}", cb.name);
        assert_eq!(cb.bits(), if n == 16 { 4 } else { 6 });
        assert!(cb.levels.windows(2).all(|w| w[0] <= w[1]), "{}", cb.name);
        let max = cb.levels.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_eq!(max, 1.0, "{}", cb.name);
        assert!(cb.levels.contains(&0.0), "{} has a zero level", cb.name);
        assert_eq!(*cb.levels.last().unwrap(), 1.0, "{} has +1", cb.name);
        // Round trip: each level's first occurrence is its own nearest index.
        for (i, &l) in cb.levels.iter().enumerate() {
            let first = cb.levels.iter().position(|&v| v == l).unwrap();
            assert_eq!(cb.nearest(l) as usize, first, "{} level {i}", cb.name);
            assert_eq!(cb.quantize(l), l);
        }
    }
}

#[test]
fn fixed_points_and_layouts() {
    for b in [16, 64] {
        for cb in [bof4(b), sh4(b)] {
            assert_eq!(cb.levels[0], -1.0, "{}", cb.name);
            assert_eq!(cb.levels[7], 0.0, "{}", cb.name);
            assert_eq!(cb.levels[15], 1.0, "{}", cb.name);
        }
        for cb in [bof4_s(b), split87(b)] {
            assert!(cb.levels[0] > -1.0 && cb.levels[0] < -0.5, "{}", cb.name);
            assert_eq!(cb.levels[7], 0.0, "{}", cb.name);
            assert_eq!(cb.levels[15], 1.0, "{}", cb.name);
        }
        for cb in [bof4(b), bof4_s(b), split87(b), sh4(b)] {
            assert_eq!(cb.levels.iter().filter(|&&v| v < 0.0).count(), 7);
            assert_eq!(cb.levels.iter().filter(|&&v| v > 0.0).count(), 8);
            assert!(cb.levels.windows(2).all(|w| w[0] < w[1]), "{} distinct", cb.name);
        }
    }
}

#[test]
fn symmetry_claims() {
    for cb in [e2m1(), int4(), e2m3()] {
        assert!(cb.is_symmetric(), "{}", cb.name);
    }
    for cb in [nf4(), bof4(64), bof4_s(64), split87(64), sh4(64), bof4(16)] {
        assert!(!cb.is_symmetric(), "{}", cb.name);
    }
}

#[test]
fn nf4_matches_bitsandbytes_exactly() {
    let expected: [f64; 16] = [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ];
    let cb = nf4();
    assert_eq!(cb.name, "NF4");
    for (l, e) in cb.levels.iter().zip(expected) {
        // The published decimals are float32 values printed as float64: exact.
        assert_eq!(*l as f64, e);
    }
    assert_eq!(NF4_LEVELS.to_vec(), cb.levels);
}

#[test]
fn format_baselines_have_the_documented_values() {
    let e = e2m1();
    let native: Vec<f32> = e.levels.iter().map(|v| v * 6.0).collect();
    assert_eq!(
        native,
        [-6.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    );
    assert!(e.levels[7].is_sign_negative() && e.levels[8].is_sign_positive());
    assert_eq!(e.nearest(0.0), 7);
    assert_eq!(e.nearest(-0.0), 7);
    assert_eq!(e.nearest(1e-3), 7, "ties between -0 and +0 go to the lower index");

    let i = int4();
    for (idx, &l) in i.levels.iter().enumerate() {
        let k = idx as i32 - if idx < 8 { 7 } else { 8 };
        assert_eq!(l, k as f32 / 7.0);
    }

    let f6 = e2m3();
    assert_eq!(f6.len(), 64);
    let mut distinct = f6.levels.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 63);
    let native: Vec<f32> = f6.levels[32..].iter().map(|v| v * 7.5).collect();
    let expect: Vec<f32> = [
        0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875, 2.0, 2.25,
        2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5,
    ]
    .to_vec();
    for (n, e) in native.iter().zip(&expect) {
        assert!((n - e).abs() <= 1e-6, "{n} vs {e}");
    }
    assert_eq!(
        f6.levels[32..],
        expect.iter().map(|v| v / 7.5).collect::<Vec<f32>>()[..]
    );
}

#[test]
fn new_rejects_invalid_tables() {
    let ok = NF4_LEVELS.to_vec();
    assert!(Codebook::new("x", ok.clone()).is_ok());
    assert_eq!(
        Codebook::new("x", vec![0.0, 0.5, 1.0]),
        Err(CodebookError::BadLength(3))
    );
    assert_eq!(Codebook::new("x", vec![]), Err(CodebookError::BadLength(0)));
    assert_eq!(Codebook::new("x", vec![0.0; 512]), Err(CodebookError::BadLength(512)));
    let mut bad = ok.clone();
    bad[3] = f32::NAN;
    assert!(matches!(
        Codebook::new("x", bad),
        Err(CodebookError::NonFinite { index: 3, .. })
    ));
    let mut bad = ok.clone();
    bad.swap(4, 5);
    assert_eq!(Codebook::new("x", bad), Err(CodebookError::NotSorted { index: 4 }));
    let mut bad = ok.clone();
    bad[15] = 1.5;
    assert!(matches!(
        Codebook::new("x", bad),
        Err(CodebookError::OutOfRange { index: 15, .. })
    ));
    let half: Vec<f32> = ok.iter().map(|v| v * 0.5).collect();
    assert_eq!(Codebook::new("x", half), Err(CodebookError::NotNormalized(0.5)));
    // +0 before -0 is out of order; -0 before +0 is fine.
    assert!(Codebook::new("x", vec![-1.0, -0.0, 0.0, 1.0]).is_ok());
    assert_eq!(
        Codebook::new("x", vec![-1.0, 0.0, -0.0, 1.0]),
        Err(CodebookError::NotSorted { index: 1 })
    );
}

#[test]
fn serde_round_trip_validates() {
    let cb = bof4_s(64);
    let json = serde_json::to_string(&cb).unwrap();
    let back: Codebook = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cb);
    let bad = r#"{"name":"bad","levels":[1.0,0.0]}"#;
    assert!(serde_json::from_str::<Codebook>(bad).is_err());
}

#[test]
fn nearest_edge_cases() {
    let cb = nf4();
    assert_eq!(cb.nearest(f32::NEG_INFINITY), 0);
    assert_eq!(cb.nearest(-7.0), 0);
    assert_eq!(cb.nearest(f32::INFINITY), 15);
    assert_eq!(cb.nearest(3.0), 15);
    assert_eq!(cb.nearest(f32::NAN), 0);
    assert_eq!(cb.nearest(0.0), 7);
    assert_eq!(cb.nearest(-0.0), 7);
    // An exact midpoint between 0 and +0.5 goes to the smaller magnitude (0).
    let cb = Codebook::new("t", vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0]).unwrap();
    assert_eq!(cb.nearest(0.25), 2);
    assert_eq!(cb.nearest(-0.25), 2);
    assert_eq!(cb.nearest(-0.75), 1);
    assert_eq!(cb.nearest(0.75), 3);
    // Duplicates: the lowest index among equal levels.
    assert_eq!(cb.nearest(1.0), 4);
    assert_eq!(cb.nearest(2.0), 4);
    assert_eq!(cb.nearest(0.9), 4);
    // Equal magnitudes at a midpoint: lower index.
    let cb = Codebook::new("t", vec![-1.0, -0.25, 0.25, 1.0]).unwrap();
    assert_eq!(cb.nearest(0.0), 1);
    assert_eq!(cb.nearest(-0.0), 1);
}

/// A random valid codebook on the 1/64 grid (duplicates possible) plus the grid values.
fn grid_codebook() -> impl Strategy<Value = Vec<f32>> {
    (1u32..=6, any::<bool>()).prop_flat_map(|(bits, neg_end)| {
        let n = 1usize << bits;
        prop::collection::vec(-64i32..=64, n).prop_map(move |mut v| {
            v.sort();
            if neg_end {
                v[0] = -64;
            } else {
                v[n - 1] = 64;
            }
            v.sort();
            v.into_iter().map(|k| k as f32 / 64.0).collect()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn nearest_matches_brute_force_on_grid_codebooks(
        levels in grid_codebook(),
        xi in -160i32..=160,
        xf in -2.0f32..2.0,
    ) {
        let cb = Codebook::new("p", levels).unwrap();
        // xi/128 hits every level and every midpoint of the 1/64 grid exactly.
        for x in [xi as f32 / 128.0, xf, -xf] {
            prop_assert_eq!(cb.nearest(x), brute_nearest(&cb.levels, x), "x = {}", x);
        }
    }

    #[test]
    fn nearest_matches_brute_force_on_builtin_codebooks(
        which in 0usize..12,
        x in -1.5f32..1.5,
        pair in 0usize..63,
    ) {
        let cb = &all_books()[which];
        prop_assert_eq!(cb.nearest(x), brute_nearest(&cb.levels, x));
        // Exact midpoints (where representable), and the f32 neighbours of midpoints.
        let i = pair % (cb.len() - 1);
        let mid = (cb.levels[i] as f64 + cb.levels[i + 1] as f64) / 2.0;
        let m = mid as f32;
        let bits = m.to_bits();
        let around = [bits.checked_add(1), bits.checked_sub(1)];
        for y in std::iter::once(m).chain(around.into_iter().flatten().map(f32::from_bits)) {
            prop_assert_eq!(cb.nearest(y), brute_nearest(&cb.levels, y), "{} y = {}", cb.name, y);
        }
    }
}
