//! Fuzzes the number-format codecs and the bit packer of `sop-formats` against their own
//! invariants.
//!
//! Input: byte 0 picks a packing width (1..=8); the rest is read as codes to pack and as
//! 32-bit words (little-endian), each used as a code of every format, as an f32 value and
//! (top byte) as a HIF table bias in -100..=100. Checks, for every format:
//! - every finite decoded value encodes back to a code with the same value, bit for bit
//!   (`decode(encode(decode(c))) == decode(c)`; FP16/BF16: the same code);
//! - `encode` gives a valid code, agrees with `try_encode` where that succeeds, and the fast
//!   `Rounder` gives bit for bit `decode(encode(x))` and the same code;
//! - HIF words decode within the table's range;
//! - `unpack(pack(codes)) == codes`, `pack(unpack(bytes))` reproduces the bytes up to the
//!   padding bits, and codes too wide or streams too short are errors.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sop_formats::pack::{pack, packed_len, unpack};
use sop_formats::{Format, HifFormat, Ieee16, MiniFloat, E2M1, E2M3, E3M2, E4M3, E5M2, UE4M4, UE8M0};

const MINIS: [MiniFloat; 7] = [E2M1, E2M3, E3M2, E4M3, E5M2, UE8M0, UE4M4];

fn check_minifloat(m: &MiniFloat, w: u32) {
    let c = w & (m.num_codes() - 1);
    let v = m.decode(c);
    if v.is_finite() {
        let back = m.decode(m.encode(v));
        assert_eq!(back.to_bits(), v.to_bits(), "{}: code {c:#x} = {v}", m.name);
    }
    let x = f32::from_bits(w);
    let code = m.encode(x);
    assert!(code < m.num_codes(), "{}: encode({x}) = {code:#x}", m.name);
    if let Ok(t) = m.try_encode(x) {
        assert_eq!(t, code, "{}: try_encode({x})", m.name);
    }
    if let (Some(r), false) = (m.rounder(), x.is_nan()) {
        let want = m.decode(code);
        assert_eq!(r.round(x).to_bits(), want.to_bits(), "{}: Rounder::round({x})", m.name);
        assert_eq!(r.encode(x), code, "{}: Rounder::encode({x})", m.name);
    }
}

fn check_hif(h: HifFormat, w: u32) {
    let bias = i32::from((w >> 24) as u8 as i8).clamp(-100, 100);
    let c = w & (h.num_codes() - 1);
    let v = h.decode(c, bias);
    let back = h.decode(h.encode(v, bias), bias);
    assert_eq!(
        back.to_bits(),
        v.to_bits(),
        "{}: code {c:#x} bias {bias} = {v}",
        h.name()
    );
    assert!(v.abs() <= h.max(bias));
    let x = f32::from_bits(w);
    let code = h.encode(x, bias);
    assert!(code < h.num_codes(), "{}: encode({x}, {bias}) = {code:#x}", h.name());
    if !x.is_nan() {
        let y = h.decode(code, bias);
        assert!(y.abs() <= h.max(bias) && (y == 0.0 || y.is_sign_negative() == x.is_sign_negative()));
    }
}

fn check_ieee(i: Ieee16, w: u32) {
    let c = w & 0xffff;
    let v = i.decode(c);
    if !v.is_nan() {
        assert_eq!(i.encode(v), c, "{}: code {c:#x} = {v}", i.name());
    }
    let x = f32::from_bits(w);
    assert!(i.encode(x) <= 0xffff);
}

fn check_format(f: &Format, w: u32) {
    let c = w % f.num_codes();
    let v = f.decode(c);
    if v.is_finite() {
        let code = f
            .try_encode(v)
            .unwrap_or_else(|e| panic!("{f}: value {v} of code {c:#x}: {e}"));
        assert_eq!(f.decode(code).to_bits(), v.to_bits(), "{f}: code {c:#x}");
    }
}

fn check_pack(width: u32, bytes: &[u8]) {
    let mask = ((1u32 << width) - 1) as u8;
    let codes: Vec<u8> = bytes.iter().map(|b| b & mask).collect();
    let packed = pack(&codes, width).expect("codes fit their width");
    assert_eq!(packed.len(), packed_len(codes.len(), width));
    assert_eq!(unpack(&packed, width, codes.len()).expect("enough bytes"), codes);
    if width < 8 {
        if let Some(i) = bytes.iter().position(|b| b & !mask != 0) {
            assert!(
                pack(bytes, width).is_err(),
                "code {} at {i} packed into {width} bits",
                bytes[i]
            );
        }
    }
    let count = bytes.len() * 8 / width as usize;
    let raw = unpack(bytes, width, count).expect("count fits the bytes");
    let repacked = pack(&raw, width).expect("unpacked codes fit their width");
    let used = count * width as usize;
    for (k, (a, b)) in repacked.iter().zip(bytes).enumerate() {
        let bits = (used - 8 * k).min(8);
        let keep = if bits == 8 { 0xff } else { (1u8 << bits) - 1 };
        assert_eq!(a & keep, b & keep, "width {width}: byte {k}");
    }
    assert!(unpack(bytes, width, count + 8 / width as usize + 1).is_err());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    check_pack(u32::from(first % 8) + 1, rest);
    let formats = Format::all();
    for chunk in rest.chunks(4) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        let w = u32::from_le_bytes(b);
        for m in &MINIS {
            check_minifloat(m, w);
        }
        for h in [HifFormat::Hif7, HifFormat::Hif8] {
            check_hif(h, w);
        }
        for i in [Ieee16::Fp16, Ieee16::Bf16] {
            check_ieee(i, w);
        }
        for f in &formats {
            check_format(f, w);
        }
    }
});
