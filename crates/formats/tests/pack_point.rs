//! Bit packing round trips and operating-point names.

use proptest::prelude::*;
use sop_formats::pack::{pack, packed_len, unpack, PackError};
use sop_formats::point::{Element, LutEntry, OperatingPoint, ScaleFormat};

proptest! {
    #[test]
    fn pack_round_trip(width in 1u32..=8, raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let codes: Vec<u8> = raw.iter().map(|c| if width == 8 { *c } else { c & ((1u8 << width) - 1) }).collect();
        let bytes = pack(&codes, width).unwrap();
        prop_assert_eq!(bytes.len(), packed_len(codes.len(), width));
        prop_assert_eq!(unpack(&bytes, width, codes.len()).unwrap(), codes);
    }

    #[test]
    fn pack_rejects_wide_codes(width in 1u32..8, code in any::<u8>()) {
        prop_assume!(u32::from(code) >> width != 0);
        let is_too_wide = matches!(pack(&[0, code], width), Err(PackError::CodeTooWide { index: 1, .. }));
        prop_assert!(is_too_wide);
    }
}

#[test]
fn pack_layout_is_lsb_first() {
    assert_eq!(pack(&[0x1, 0x2, 0x3], 4).unwrap(), [0x21, 0x03]);
    assert_eq!(pack(&[0b101, 0b011, 0b111], 3).unwrap(), [0b11_011_101, 0b1]);
    assert_eq!(pack(&[], 5).unwrap(), Vec::<u8>::new());
    assert_eq!(pack(&[1], 0), Err(PackError::Width(0)));
    assert_eq!(pack(&[1], 9), Err(PackError::Width(9)));
    assert!(matches!(unpack(&[0xff], 4, 3), Err(PackError::Truncated { .. })));
}

fn p(s: &str) -> OperatingPoint {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn names_from_the_spec_parse_with_exact_bpw() {
    assert_eq!(p("E2M3sUE4M4").nominal_bpw(), 6.5);
    assert_eq!(p("E2M3sUE4M4").block(), Some(16));
    assert_eq!(p("E2M1sE4M3b16").nominal_bpw(), 4.5);
    assert_eq!(p("E4M3-POT").nominal_bpw(), 8.0);
    assert_eq!(p("NF4+DD4sUE4M4b16").nominal_bpw(), 4.0 + 9.0 / 16.0);
    assert_eq!(p("NF4sF32b64").nominal_bpw(), 4.5);
    assert_eq!(p("E2M1sUE8M0b32").nominal_bpw(), 4.25);
    assert_eq!(p("E2M3sUE8M0b32").nominal_bpw(), 6.25);
    // The selection bit rides in the spare sign bit of an unsigned-use E4M3 scale.
    assert_eq!(p("NF4+DD4sE4M3").nominal_bpw(), 4.5);
    assert_eq!(p("Split87+DD4sSE4M3").nominal_bpw(), 4.0 + 9.0 / 16.0);
    assert_eq!(p("NF4+DD4sS+E4M3").to_string(), "NF4+DD4sSE4M3");
    assert_eq!(
        p("nf4+dd4sue4m4b16-hif7"),
        OperatingPoint::Block {
            element: Element::NF4,
            dynamic: Some(Element::DD4),
            scale: ScaleFormat::UE4M4,
            block: 16,
            lut: LutEntry::Hif7
        }
    );
    assert_eq!(
        p("BOF4sUE4M4"),
        OperatingPoint::Block {
            element: Element::BOF4,
            dynamic: None,
            scale: ScaleFormat::UE4M4,
            block: 16,
            lut: LutEntry::Hif8
        }
    );
    assert_eq!(p("BOF4SsUE4M4").to_string(), "BOF4SsUE4M4");
}

#[test]
fn layer_bits_count_every_stored_bit() {
    // 384 x 384, E2M3sUE4M4: codes + scales + FP32 tensor scale, no LUT.
    let n = 384u64 * 384;
    assert_eq!(p("E2M3sUE4M4").layer_bits(384, 384), n * 6 + n / 16 * 8 + 32);
    // A pair stores two 16-entry HIF8 tables with their bias registers.
    assert_eq!(
        p("NF4+DD4sUE4M4").layer_bits(384, 384),
        n * 4 + n / 16 * 9 + 32 + 2 * (16 * 8 + 8)
    );
    // Ragged rows: 20 columns -> 2 blocks per row.
    assert_eq!(p("E2M1sE4M3").layer_bits(3, 20), 3 * 20 * 4 + 3 * 2 * 8 + 32);
    assert_eq!(p("E4M3-POT").layer_bits(2, 2), 4 * 8 + 8);
}

#[test]
fn canonical_names_round_trip() {
    for s in [
        "E2M3sUE4M4",
        "E2M1sE4M3",
        "E4M3-POT",
        "NF4+DD4sUE4M4",
        "NF4sF32b64",
        "Split87+DD4sSE4M3b32-FP16",
        "DD6sUE4M4",
        "INT4sUE8M0b32-HIF7",
    ] {
        assert_eq!(p(s).to_string(), s);
        assert_eq!(p(&p(s).to_string()), p(s));
    }
    assert_eq!(p("E2M1sE4M3b16").to_string(), "E2M1sE4M3");
}

#[test]
fn bad_names_say_what_is_wrong() {
    for (bad, needle) in [
        ("", "empty"),
        ("FOO", "unknown element"),
        ("E2M3sXYZ", "unknown scale"),
        ("E2M3sUE4M4b", "block size"),
        ("E2M3sUE4M4b0", "out of range"),
        ("NF4+E2M1sUE4M4", "DD4 or DD6"),
        ("NF4+DD6sUE4M4", "code width"),
        ("NF4-POT", "minifloat"),
        ("E2M3sUE4M4-HIF9", "LUT entry"),
        ("E2M3sUE4M4x", "trailing"),
    ] {
        let e = bad.parse::<OperatingPoint>().unwrap_err().to_string();
        assert!(e.contains(needle), "'{bad}': {e}");
    }
}

/// Regression (fuzz target `point_name`, input `BOF4SS+E4M3`): `BOF4` with the signed scale
/// printed as `BOF4sSE4M3`, which reads back as `BOF4S` with the unsigned-use `E4M3` scale.
#[test]
fn signed_scale_after_an_element_that_prefixes_another_round_trips() {
    let bof4_se4m3 = p("BOF4SS+E4M3");
    assert_eq!(
        bof4_se4m3,
        OperatingPoint::Block {
            element: Element::BOF4,
            dynamic: None,
            scale: ScaleFormat::SE4M3,
            block: 16,
            lut: LutEntry::Hif8,
        }
    );
    assert_eq!(bof4_se4m3.to_string(), "BOF4sS+E4M3");
    let bof4s_e4m3 = p("BOF4SsE4M3");
    assert_ne!(bof4s_e4m3, bof4_se4m3);
    for point in [bof4_se4m3, bof4s_e4m3, p("BOF4SsSE4M3b32"), p("BOF4+DD4sSE4M3")] {
        assert_eq!(p(&point.to_string()), point, "{point}");
    }
    // Unambiguous names keep the short spelling.
    assert_eq!(p("NF4sS+E4M3").to_string(), "NF4sSE4M3");
}
