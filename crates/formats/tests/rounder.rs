//! `MiniFloat::rounder()` (the quantizer's fast path) must equal `decode(encode(x))` bit
//! for bit, and `Rounder::encode` must equal `MiniFloat::encode`, on every non-NaN input: a
//! strided sweep over all f32 bit patterns, every code value and midpoint with its f32
//! neighbours, and random inputs.

mod common;

use common::SplitMix;
use sop_formats::{MiniFloat, E2M1, E2M3, E3M2, E4M3, E5M2, UE4M4, UE8M0};

const WITH_SUBNORMALS: [MiniFloat; 6] = [E2M1, E2M3, E3M2, E4M3, E5M2, UE4M4];

fn reference(f: &MiniFloat, x: f32) -> f32 {
    f.decode(f.encode(x))
}

fn check(f: &MiniFloat, x: f32) {
    if x.is_nan() {
        return;
    }
    let rounder = f.rounder().unwrap();
    let r = rounder.round(x);
    let e = reference(f, x);
    assert_eq!(
        r.to_bits(),
        e.to_bits(),
        "{}: round({x:e} = {:#010x}) = {r:e}, decode(encode) = {e:e}",
        f.name,
        x.to_bits()
    );
    assert_eq!(
        rounder.encode(x),
        f.encode(x),
        "{}: encode({x:e} = {:#010x})",
        f.name,
        x.to_bits()
    );
}

#[test]
fn ue8m0_has_no_rounder() {
    assert!(UE8M0.rounder().is_none());
    assert_eq!(E2M3.rounder().unwrap().max(), 7.5);
}

#[test]
fn strided_sweep_of_all_f32_patterns() {
    for f in &WITH_SUBNORMALS {
        let mut bits: u64 = 0;
        while bits <= u32::MAX as u64 {
            check(f, f32::from_bits(bits as u32));
            bits += 4093;
        }
        for x in [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
        ] {
            check(f, x);
        }
    }
}

#[test]
fn every_value_and_midpoint_with_neighbours() {
    for f in &WITH_SUBNORMALS {
        let mut vals: Vec<f32> = (0..f.num_codes())
            .map(|c| f.decode(c))
            .filter(|v| v.is_finite())
            .collect();
        vals.sort_by(f32::total_cmp);
        let mut pts: Vec<f32> = vals.clone();
        for w in vals.windows(2) {
            pts.push(((w[0] as f64 + w[1] as f64) / 2.0) as f32);
        }
        let top = f.max() as f64;
        pts.push((top * 1.0625) as f32);
        pts.push((top * 1.125) as f32);
        for p in pts {
            for x in [
                p,
                f32::from_bits(p.to_bits().wrapping_add(1)),
                f32::from_bits(p.to_bits().wrapping_sub(1)),
                -p,
            ] {
                check(f, x);
            }
        }
    }
}

#[test]
fn random_inputs_across_octaves() {
    let mut rng = SplitMix(0x5eed);
    for f in &WITH_SUBNORMALS {
        for _ in 0..200_000 {
            check(f, rng.f32_in_octaves(-30, 20));
        }
    }
}
