//! Cross-check against an independent implementation: the Python package `ml_dtypes`.
//!
//! Every code's value, and the rounding of a large sample of f32 inputs (random values
//! over each format's range, every midpoint between neighbouring values and the f32
//! values just around them), must agree bit for bit -- except where ml_dtypes differs by
//! design, which is checked apart (see `docs/spec.md`, "Differences from ml_dtypes"):
//! - overflow and +-Inf: we saturate to the largest finite value; ml_dtypes gives NaN
//!   (E4M3, UE8M0) or Inf (E5M2);
//! - NaN into a format without NaN: we give +0 (`encode`) or an error (`try_encode`);
//!   ml_dtypes gives -0;
//! - UE8M0: zero and negatives have no code (ml_dtypes: NaN; we: error / code 0), and
//!   for inputs that are f32 subnormals ml_dtypes rounds the bit pattern, not the value.
//!
//! The test installs ml_dtypes with pip when it is missing, and fails loudly when it
//! cannot: the cross-check is never skipped silently.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::SplitMix;
use sop_formats::{Ieee16, MiniFloat, E2M1, E2M3, E3M2, E4M3, E5M2, UE8M0};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ml_dtypes_ref.py")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn ensure_ml_dtypes() {
    let ok = |py: &str| {
        Command::new(py)
            .args(["-c", "import ml_dtypes, numpy"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let py = python();
    if ok(&py) {
        return;
    }
    eprintln!("ml_dtypes is missing: installing it with pip (the cross-check needs it)");
    let st = Command::new(&py)
        .args(["-m", "pip", "install", "--quiet", "ml_dtypes", "numpy"])
        .status();
    assert!(ok(&py), "ml_dtypes cannot be imported by {py} even after `pip install ml_dtypes` ({st:?}): the independent cross-check cannot run");
}

fn ref_table(dtype: &str) -> Vec<f32> {
    ensure_ml_dtypes();
    let out = Command::new(python())
        .arg(script())
        .args([dtype, "table"])
        .output()
        .expect("run ml_dtypes_ref.py");
    assert!(
        out.status.success(),
        "ml_dtypes_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn ref_encode(dtype: &str, xs: &[f32], wide: bool) -> Vec<u32> {
    ensure_ml_dtypes();
    let dir = std::env::temp_dir().join(format!("sop-mld-{}-{dtype}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inp = dir.join("in.f32");
    let outp = dir.join("out.bin");
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&inp, bytes).unwrap();
    let st = Command::new(python())
        .arg(script())
        .args([dtype, "encode"])
        .arg(&inp)
        .arg(&outp)
        .status()
        .expect("run ml_dtypes_ref.py");
    assert!(st.success(), "ml_dtypes_ref.py encode failed for {dtype}");
    let raw = std::fs::read(&outp).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    if wide {
        raw.chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
            .collect()
    } else {
        raw.iter().map(|&b| b as u32).collect()
    }
}

fn same_value(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Random values over the format's octaves, every midpoint and its f32 neighbours.
fn samples(values: &[f32], lo: i32, hi: i32, n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix(seed);
    let mut xs: Vec<f32> = (0..n).map(|_| rng.f32_in_octaves(lo, hi)).collect();
    let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    finite.dedup_by(|a, b| a == b);
    for w in finite.windows(2) {
        let mid = ((w[0] as f64 + w[1] as f64) / 2.0) as f32;
        for x in [
            mid,
            f32::from_bits(mid.to_bits() + 1),
            f32::from_bits(mid.to_bits().wrapping_sub(1)),
            w[0],
            w[1],
        ] {
            xs.push(x);
        }
    }
    xs.extend([0.0, -0.0, f32::MAX, -f32::MAX, f32::MIN_POSITIVE, 1e-45]);
    xs
}

fn check_minifloat(fmt: MiniFloat, dtype: &str) {
    // Every code.
    let table = ref_table(dtype);
    assert_eq!(table.len(), fmt.num_codes() as usize, "{dtype}: code count");
    for (code, &want) in table.iter().enumerate() {
        let got = fmt.decode(code as u32);
        assert!(
            same_value(got, want),
            "{}: code {code:#x} decodes to {got:e}, ml_dtypes says {want:e}",
            fmt.name
        );
    }
    // Roundings.
    let emax = (1 << fmt.exp_bits) - 1 - fmt.bias;
    let xs = samples(
        &table,
        fmt.emin() - fmt.man_bits as i32 - 3,
        emax + 3,
        200_000,
        0x5eed ^ fmt.bits() as u64,
    );
    let want = ref_encode(dtype, &xs, false);
    let (mut compared, mut by_design) = (0usize, 0usize);
    for (&x, &w) in xs.iter().zip(&want) {
        let ours = fmt.try_encode(x);
        let wv = fmt.decode(w);
        let overflow = x.abs() > fmt.max() && fmt.decode(fmt.encode(x)).abs() == fmt.max();
        let design = x.is_nan() && fmt.nan_code().is_none()
            || (overflow && (wv.is_nan() || wv.is_infinite()))
            || (fmt.name == "UE8M0" && (x <= 0.0 || x.abs() < f32::MIN_POSITIVE));
        if design {
            by_design += 1;
            continue;
        }
        let ours = ours.unwrap_or_else(|e| panic!("{}: {x:e} gave error {e}", fmt.name));
        assert!(
            ours == w || same_value(fmt.decode(ours), wv),
            "{}: encode({x:e} = {:#010x}) = {ours:#x}, ml_dtypes says {w:#x}",
            fmt.name,
            x.to_bits()
        );
        compared += 1;
    }
    assert!(compared > 90_000, "{}: only {compared} comparisons", fmt.name);
    eprintln!(
        "{}: {} codes and {compared} roundings agree with ml_dtypes ({by_design} by-design differences checked apart)",
        fmt.name,
        table.len()
    );
}

#[test]
fn e2m1_matches_ml_dtypes() {
    check_minifloat(E2M1, "float4_e2m1fn");
}

#[test]
fn e2m3_matches_ml_dtypes() {
    check_minifloat(E2M3, "float6_e2m3fn");
}

#[test]
fn e3m2_matches_ml_dtypes() {
    check_minifloat(E3M2, "float6_e3m2fn");
}

#[test]
fn e4m3_matches_ml_dtypes() {
    check_minifloat(E4M3, "float8_e4m3fn");
}

#[test]
fn e5m2_matches_ml_dtypes() {
    check_minifloat(E5M2, "float8_e5m2");
}

#[test]
fn ue8m0_matches_ml_dtypes() {
    check_minifloat(UE8M0, "float8_e8m0fnu");
}

#[test]
fn by_design_differences_are_what_we_document() {
    // Overflow: we saturate, ml_dtypes does not.
    let x = [1e6f32, f32::INFINITY, -f32::INFINITY];
    let ml = ref_encode("float8_e4m3fn", &x, false);
    assert!(ml.iter().all(|&c| E4M3.decode(c).is_nan()));
    assert_eq!(x.map(|v| E4M3.encode(v)), [0x7e, 0x7e, 0xfe]);
    let ml = ref_encode("float8_e5m2", &x, false);
    assert!(ml.iter().all(|&c| E5M2.decode(c).is_infinite()));
    assert_eq!(x.map(|v| E5M2.encode(v)), [0x7b, 0x7b, 0xfb]);
    // NaN into a NaN-less format: ml_dtypes gives -0, we refuse (try) or give +0.
    let ml = ref_encode("float4_e2m1fn", &[f32::NAN], false);
    assert_eq!(ml, [0x8]);
    assert!(E2M1.try_encode(f32::NAN).is_err());
    assert_eq!(E2M1.encode(f32::NAN), 0);
    // UE8M0: no zero, no negatives.
    let ml = ref_encode("float8_e8m0fnu", &[0.0, -1.0, f32::MAX], false);
    assert!(ml.iter().all(|&c| UE8M0.decode(c).is_nan()));
    assert!(UE8M0.try_encode(0.0).is_err() && UE8M0.try_encode(-1.0).is_err());
    assert_eq!(UE8M0.encode(f32::MAX), 0xfe);
}

fn check_ieee(fmt: Ieee16, dtype: &str) {
    let table = ref_table(dtype);
    for (code, &want) in table.iter().enumerate() {
        assert!(same_value(fmt.decode(code as u32), want), "{dtype} code {code:#x}");
    }
    let mut rng = SplitMix(0x1eee);
    let mut xs: Vec<f32> = (0..300_000).map(|_| rng.f32_in_octaves(-140, 127)).collect();
    xs.extend([f32::INFINITY, -f32::INFINITY, 0.0, -0.0, 65520.0, 65519.99]);
    let want = ref_encode(dtype, &xs, true);
    for (&x, &w) in xs.iter().zip(&want) {
        let ours = fmt.encode(x);
        assert!(
            ours == w || same_value(fmt.decode(ours), fmt.decode(w)),
            "{dtype}: encode({x:e}) = {ours:#x}, reference {w:#x}"
        );
    }
}

#[test]
fn fp16_matches_numpy() {
    check_ieee(Ieee16::Fp16, "float16");
}

#[test]
fn bf16_matches_ml_dtypes() {
    check_ieee(Ieee16::Bf16, "bfloat16");
}
