//! Malformed files: clean errors naming the path, never a panic.

mod common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use sop_model::{Model, ModelError, NonFinitePolicy};

fn valid() -> Vec<u8> {
    bytes(&[
        ramp("a.weight", &[3, 4]),
        t(
            "b.weight",
            "F16",
            &[2, 2],
            f16s(&[half::f16::ONE, half::f16::NEG_ONE, half::f16::ZERO, half::f16::MAX]),
        ),
        ramp("c.bias", &[4]),
    ])
}

/// Opens `data` written to a file; asserts a `Format` error naming the file.
fn assert_format_error(data: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.safetensors");
    std::fs::write(&p, data).unwrap();
    match Model::open(&p) {
        Err(e @ ModelError::Format { .. }) => {
            let s = e.to_string();
            assert!(s.contains(&p.display().to_string()), "{what}: {s}");
        }
        Err(e) => panic!("{what}: expected a Format error, got {e}"),
        Ok(_) => panic!("{what}: corrupt file was accepted"),
    }
}

/// Opening must not panic; if it succeeds, loading every tensor must not panic either.
fn exercise(p: &Path) {
    if let Ok(m) = Model::open(p) {
        let _ = m.linear_layers();
        for t in m.tensors() {
            for pol in [NonFinitePolicy::Refuse, NonFinitePolicy::Zero, NonFinitePolicy::Clamp] {
                if let Ok(w) = m.load_f32_with(&t.name, pol) {
                    assert_eq!(w.data.len(), w.rows * w.cols);
                }
            }
        }
    }
}

#[test]
fn valid_file_opens() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.safetensors");
    std::fs::write(&p, valid()).unwrap();
    assert_eq!(Model::open(&p).unwrap().tensors().len(), 3);
}

#[test]
fn truncated_at_many_offsets() {
    let v = valid();
    let h = header_len(&v);
    let mut cuts = vec![0, 1, 4, 7, 8, 9, 8 + h / 2, 8 + h - 1, 8 + h, 8 + h + 1];
    cuts.extend([v.len() - 5, v.len() - 1]);
    for cut in cuts {
        assert_format_error(&v[..cut], &format!("cut at {cut} of {}", v.len()));
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut v = valid();
    v.extend_from_slice(&[0, 0, 0, 0]);
    assert_format_error(&v, "extra bytes");
}

#[test]
fn garbage_and_bad_headers() {
    assert_format_error(b"this is definitely not a safetensors file at all", "text");
    assert_format_error(&[0xff; 64], "0xff bytes");
    // Header length larger than the file.
    let mut v = valid();
    let h = header_len(&v) as u64;
    v[..8].copy_from_slice(&(h + 1000).to_le_bytes());
    assert_format_error(&v, "header length > file");
    // Absurd header lengths.
    let mut v = valid();
    v[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_format_error(&v, "u64::MAX header length");
    // Header not UTF-8.
    let mut v = valid();
    v[9] = 0xff;
    assert_format_error(&v, "non-UTF-8 header");
    // Unknown dtype name, wrong offsets, shape overflow, offsets beyond data.
    for header in [
        r#"{"x":{"dtype":"X99","shape":[1],"data_offsets":[0,4]}}"#,
        r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
        r#"{"x":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#,
        r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
        r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,400]}}"#,
        r#"{"x":{"dtype":"F32","shape":[1]}}"#,
        r#"{"x":7}"#,
        r#"[1,2]"#,
    ] {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0, 0, 128, 63]);
        assert_format_error(&b, header);
    }
}

#[test]
fn empty_file_and_directory_named_like_file() {
    assert_format_error(&[], "empty file");
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("looks.safetensors");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(Model::open(&sub), Err(ModelError::NoWeightsInDir { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.safetensors");
        std::fs::write(&p, &data).unwrap();
        exercise(&p);
    }

    #[test]
    fn random_truncation_never_panics(frac in 0.0f64..1.0) {
        let v = valid();
        let cut = ((v.len() as f64) * frac) as usize;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.safetensors");
        std::fs::write(&p, &v[..cut]).unwrap();
        prop_assert!(Model::open(&p).is_err());
    }

    #[test]
    fn random_mutation_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let mut v = valid();
        let len = v.len();
        for (i, b) in edits {
            v[i.index(len)] = b;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        std::fs::write(&p, &v).unwrap();
        exercise(&p);
    }

    #[test]
    fn random_valid_header_with_prefix_length_lie(extra in 1u64..1_000_000) {
        let mut v = valid();
        let h = header_len(&v) as u64;
        v[..8].copy_from_slice(&(h + extra).to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.safetensors");
        std::fs::write(&p, &v).unwrap();
        prop_assert!(Model::open(&p).is_err());
    }
}
