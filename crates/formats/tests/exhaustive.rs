//! Exhaustive and property tests of the formats against a brute-force reference written
//! here (nearest value by scanning every code, ties by the documented rule), plus the
//! published OCP values.

use proptest::prelude::*;
use sop_formats::hif::{HifFormat, MANT_EIGHTHS, MANT_TERMS};
use sop_formats::{MiniFloat, E2M1, E2M3, E3M2, E4M3, E5M2, UE4M4, UE8M0};

const MINIS: [MiniFloat; 7] = [E2M1, E2M3, E3M2, E4M3, E5M2, UE8M0, UE4M4];

/// Brute force: the finite code nearest to `x`; a tie goes to the code with the even
/// significand LSB (the code's LSB: RNE), out-of-range saturates.
fn brute_encode(f: &MiniFloat, x: f32) -> u32 {
    if x.abs() > f.max() {
        // Saturation (checked on its own); f64 distances cannot separate huge inputs.
        return f.max_code() | if x < 0.0 { 1 << (f.bits() - 1) } else { 0 };
    }
    let x = x as f64;
    let mut best: Option<(f64, u32)> = None;
    for c in 0..f.num_codes() {
        let v = f.decode(c);
        if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
            continue;
        }
        if (v < 0.0) != (x < 0.0) && v != 0.0 {
            continue;
        }
        let d = (v as f64 - x).abs();
        best = match best {
            None => Some((d, c)),
            // Ties: even code; UE8M0 has no mantissa, so ties-to-even on the
            // significand means up (the larger code).
            Some((bd, bc)) if d < bd || (d == bd && f.man_bits > 0 && (c & 1) == 0 && (bc & 1) == 1) => Some((d, c)),
            Some((bd, _)) if d == bd && f.man_bits == 0 => Some((d, c)),
            b => b,
        };
    }
    let (_, c) = best.unwrap();
    if x < 0.0 && f.decode(c) == 0.0 && f.signed {
        c | (1 << (f.bits() - 1)) // -0
    } else {
        c
    }
}

#[test]
fn published_ocp_values() {
    let e2m1: Vec<f32> = (0..8).map(|c| E2M1.decode(c)).collect();
    assert_eq!(e2m1, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
    assert_eq!(E2M3.max(), 7.5);
    assert_eq!(E2M3.min_positive(), 0.125);
    assert_eq!(E3M2.max(), 28.0);
    assert_eq!(E3M2.min_positive(), 0.0625);
    assert_eq!(E4M3.max(), 448.0);
    assert_eq!(E4M3.min_positive(), 2f32.powi(-9));
    assert!(E4M3.decode(0x7f).is_nan() && E4M3.decode(0xff).is_nan());
    assert_eq!(E4M3.decode(0x7e), 448.0);
    assert_eq!(E5M2.max(), 57344.0);
    assert_eq!(E5M2.decode(0x7c), f32::INFINITY);
    assert!(E5M2.decode(0x7d).is_nan());
    assert_eq!(E5M2.min_positive(), 2f32.powi(-16));
    assert_eq!(UE8M0.decode(127), 1.0);
    assert_eq!(UE8M0.decode(0), 2f32.powi(-127));
    assert_eq!(UE8M0.decode(254), 2f32.powi(127));
    assert!(UE8M0.decode(255).is_nan());
    // UE4M4: bias 7, subnormals, code 0 is zero, all finite, max 496.
    assert_eq!(UE4M4.decode(0), 0.0);
    assert_eq!(UE4M4.decode(1), 2f32.powi(-10));
    assert_eq!(UE4M4.decode(0x70), 1.0);
    assert_eq!(UE4M4.max(), 496.0);
    assert!((0..256).all(|c| UE4M4.decode(c).is_finite()));
}

#[test]
fn decode_is_monotonic_and_encode_inverts_every_code() {
    for f in MINIS {
        let mut prev = f32::NEG_INFINITY;
        // Positive codes ascend with the magnitude bits.
        for c in 0..=f.max_code() {
            let v = f.decode(c);
            assert!(v > prev || (c == 0), "{}: code {c:#x}", f.name);
            prev = v;
            assert_eq!(f.encode(v), c, "{}: encode(decode({c:#x}) = {v})", f.name);
            if f.signed && v != 0.0 {
                assert_eq!(f.encode(-v), c | (1 << (f.bits() - 1)), "{}: -{v}", f.name);
            }
        }
    }
}

#[test]
fn midpoints_ties_and_neighbours_match_brute_force() {
    for f in MINIS {
        let vals: Vec<f32> = (0..=f.max_code()).map(|c| f.decode(c)).collect();
        for w in vals.windows(2) {
            let mid = ((w[0] as f64 + w[1] as f64) / 2.0) as f32;
            assert_eq!((mid as f64), (w[0] as f64 + w[1] as f64) / 2.0, "midpoint exact in f32");
            for x in [
                mid,
                f32::from_bits(mid.to_bits() + 1),
                f32::from_bits(mid.to_bits() - 1),
            ] {
                assert_eq!(f.encode(x), brute_encode(&f, x), "{}: x = {x:e}", f.name);
                if f.signed {
                    assert_eq!(f.encode(-x), brute_encode(&f, -x), "{}: x = -{x:e}", f.name);
                }
            }
        }
    }
}

#[test]
fn saturation_zero_and_specials() {
    for f in MINIS {
        let max = f.max();
        let top = f.max_code();
        assert_eq!(f.encode(max), top);
        assert_eq!(f.encode(max * 1.5), top, "{} just above max", f.name);
        assert_eq!(f.encode(f32::MAX), top);
        assert_eq!(f.encode(f32::INFINITY), top, "{}: +Inf saturates", f.name);
        if f.signed {
            assert_eq!(f.encode(f32::NEG_INFINITY), top | (1 << (f.bits() - 1)));
            assert_eq!(f.encode(-0.0), 1 << (f.bits() - 1), "{}: -0 keeps its sign", f.name);
        }
        match f.nan_code() {
            Some(n) => assert!(f.decode(f.encode(f32::NAN)).is_nan() && f.encode(f32::NAN) == n),
            None => assert!(f.try_encode(f32::NAN).is_err()),
        }
    }
    // Subnormal boundaries of UE4M4: smallest 2^-10; half of it ties to zero (even).
    let s = 2f32.powi(-10);
    assert_eq!(UE4M4.encode(s / 2.0), 0);
    assert_eq!(UE4M4.encode(s / 2.0 * 1.0001), 1);
    assert_eq!(UE4M4.encode(s * 1.5), 2, "1.5 ulp ties to even (2)");
    assert_eq!(
        UE4M4.encode(2f32.powi(-6) * (31.0 / 32.0)),
        0x10,
        "rounds up into the first normal"
    );
    assert!(UE4M4.try_encode(-1.0).is_err());
    assert_eq!(UE4M4.encode(-0.0), 0);
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>()
            .prop_map(f32::from_bits)
            .prop_filter("finite", |x| x.is_finite()),
        (-20i32..20, any::<u32>()).prop_map(|(e, m)| f32::from_bits(((e + 127) as u32) << 23 | (m & 0x7f_ffff))),
        (-20i32..20, any::<u32>()).prop_map(|(e, m)| -f32::from_bits(((e + 127) as u32) << 23 | (m & 0x7f_ffff))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn encode_matches_brute_force(x in any_f32(), i in 0usize..7) {
        let f = MINIS[i];
        let x = if f.signed { x } else { x.abs() };
        prop_assume!(f.signed || x > 0.0);
        prop_assert_eq!(f.encode(x), brute_encode(&f, x), "{} x={:e}", f.name, x);
    }

    #[test]
    fn encode_is_monotonic(a in any_f32(), b in any_f32(), i in 0usize..7) {
        let f = MINIS[i];
        let (a, b) = if f.signed { (a, b) } else { (a.abs(), b.abs()) };
        prop_assume!(f.signed || (a > 0.0 && b > 0.0));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(f.decode(f.encode(lo)) <= f.decode(f.encode(hi)));
    }

    #[test]
    fn round_trip_is_idempotent(x in any_f32(), i in 0usize..7) {
        let f = MINIS[i];
        let x = if f.signed { x } else { x.abs() };
        prop_assume!(f.signed || x > 0.0);
        let c = f.encode(x);
        prop_assert_eq!(f.encode(f.decode(c)), c);
    }

    #[test]
    fn hif_encode_is_nearest_with_fewest_bits_on_ties(x in any_f32(), wide in any::<bool>(), bias in -4i32..12) {
        let h = if wide { HifFormat::Hif8 } else { HifFormat::Hif7 };
        let got = h.decode(h.encode(x, bias), bias);
        prop_assert_eq!(got.to_bits(), hif_brute(h, x, bias).to_bits(), "x={:e}", x);
    }

    #[test]
    fn hif_encode_is_monotonic(a in any_f32(), b in any_f32(), bias in -4i32..12) {
        let h = HifFormat::Hif8;
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(h.decode(h.encode(lo, bias), bias) <= h.decode(h.encode(hi, bias), bias));
    }
}

/// Significant bits of a positive dyadic value (0 for zero).
fn sig_bits(v: f64) -> u32 {
    if v == 0.0 {
        return 0;
    }
    let m = v.to_bits() & ((1u64 << 52) - 1);
    if m == 0 {
        1
    } else {
        53 - m.trailing_zeros()
    }
}

fn hif_brute(h: HifFormat, x: f32, bias: i32) -> f32 {
    if x.abs() >= h.max(bias) {
        return if x < 0.0 { -h.max(bias) } else { h.max(bias) };
    }
    let vals = h.values(bias);
    let x = x as f64;
    let mut best = (f64::INFINITY, 0.0f64);
    for &v in &vals {
        let v = v as f64;
        if (v < 0.0) != (x < 0.0) && v != 0.0 {
            continue;
        }
        let d = (v - x).abs();
        if d < best.0 || (d == best.0 && sig_bits(v.abs()) < sig_bits(best.1.abs())) {
            best = (d, v);
        }
    }
    if best.1 == 0.0 && x < 0.0 {
        -0.0
    } else {
        best.1 as f32
    }
}

#[test]
fn hif_value_counts_and_shift_add_form() {
    assert_eq!(HifFormat::Hif7.nonzero_values(), 80);
    assert_eq!(HifFormat::Hif8.nonzero_values(), 96);
    for h in [HifFormat::Hif7, HifFormat::Hif8] {
        for bias in [-3, 0, 7, 9] {
            let vals = h.values(bias);
            assert_eq!(
                vals.iter().filter(|v| **v != 0.0).count() as u32,
                h.nonzero_values(),
                "{} bias {bias}",
                h.name()
            );
            assert!(vals.contains(&0.0));
            assert_eq!(h.max(bias), *vals.last().unwrap());
            assert_eq!(h.min_positive(bias), *vals.iter().find(|v| **v > 0.0).unwrap());
        }
        // Every code round-trips to a word with the same value.
        for c in 0..h.num_codes() {
            let v = h.decode(c, 7);
            assert_eq!(
                h.decode(h.encode(v, 7), 7).to_bits(),
                v.to_bits(),
                "{} code {c:#x}",
                h.name()
            );
        }
    }
    // The shift-add table the hardware implements equals the mantissa table.
    for (c, &(shl, sub, shr)) in MANT_TERMS.iter().enumerate() {
        let a = 8u32 << shl;
        let b = shr.map_or(0, |s| 8 >> s);
        let m = if sub { a - b } else { a + b };
        assert_eq!(m, MANT_EIGHTHS[c], "mantissa code {c}");
    }
    // Ties go to fewer significant bits: 1.0625 (between 1 and 1.125) -> 1; 1.625 -> 1.5.
    assert_eq!(
        HifFormat::Hif7.decode(HifFormat::Hif7.encode(1.0625 / 128.0 * 128.0, 7), 7),
        1.0
    );
    assert_eq!(HifFormat::Hif8.decode(HifFormat::Hif8.encode(1.625 / 2.0, 7), 7), 0.75);
    assert_eq!(
        HifFormat::Hif8.encode(f32::INFINITY, 7),
        HifFormat::Hif8.word(false, 7, 5)
    );
    assert_eq!(HifFormat::Hif8.bias_for(1.0), 7);
    assert_eq!(HifFormat::Hif8.bias_for(1.9), 6);
    assert_eq!(HifFormat::Hif8.bias_for(0.9), 8);
}
