//! ggml tensor element types as stored in GGUF files: their block layout and the conversion
//! of their bytes to f32.
//!
//! F32, F16 and BF16 convert exactly. The block formats Q8_0, Q4_0, Q4_1 (32 weights per
//! block) and the k-quants Q4_K, Q5_K, Q6_K (256 weights per super-block) are *dequantized*:
//! the result is exactly what ggml's reference `dequantize_row_*` computes (same f32 operations
//! in the same order, no fused multiply-add), checked bit for bit against llama.cpp's gguf-py
//! (`gguf.quants.dequantize`) in `tests/gguf.rs`. The values are then the weights of an already
//! quantized model, not its training weights; callers say so (see
//! [`crate::Model::already_quantized`]).

use half::{bf16, f16};

/// ggml type id of F32.
pub const F32: u32 = 0;
/// ggml type id of F16.
pub const F16: u32 = 1;
/// ggml type id of Q4_0.
pub const Q4_0: u32 = 2;
/// ggml type id of Q4_1.
pub const Q4_1: u32 = 3;
/// ggml type id of Q8_0.
pub const Q8_0: u32 = 8;
/// ggml type id of Q4_K.
pub const Q4_K: u32 = 12;
/// ggml type id of Q5_K.
pub const Q5_K: u32 = 13;
/// ggml type id of Q6_K.
pub const Q6_K: u32 = 14;
/// ggml type id of BF16.
pub const BF16: u32 = 30;

/// Weights per k-quant super-block (ggml's `QK_K`).
const QK_K: usize = 256;

/// `(weights per block, bytes per block)` of the ggml types this crate converts to f32;
/// `None` for every other type (they are listed but cannot be loaded).
pub(crate) fn layout(ggml_type: u32) -> Option<(usize, usize)> {
    Some(match ggml_type {
        F32 => (1, 4),
        F16 | BF16 => (1, 2),
        Q4_0 => (32, 18),
        Q4_1 => (32, 20),
        Q8_0 => (32, 34),
        Q4_K => (QK_K, 144),
        Q5_K => (QK_K, 176),
        Q6_K => (QK_K, 210),
        _ => return None,
    })
}

/// True for the block-quantized types (whose f32 values are a dequantization).
pub(crate) fn is_block_quantized(ggml_type: u32) -> bool {
    layout(ggml_type).is_some_and(|(block, _)| block > 1)
}

/// Number of bytes `n` elements of `ggml_type` take, or `None` if the type is not convertible,
/// `n` is not a whole number of blocks, or the size overflows.
pub(crate) fn byte_len(ggml_type: u32, n: u64) -> Option<u64> {
    let (block, bytes) = layout(ggml_type)?;
    let block = block as u64;
    if n % block != 0 {
        return None;
    }
    (n / block).checked_mul(bytes as u64)
}

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Converts `bytes` (a whole number of blocks of `ggml_type`, as [`byte_len`] sizes them) to
/// f32 values appended to `out`. Returns `false` (appending nothing) for a type [`layout`]
/// does not know or a length that is not a whole number of blocks.
pub(crate) fn to_f32(ggml_type: u32, bytes: &[u8], out: &mut Vec<f32>) -> bool {
    let Some((block, size)) = layout(ggml_type) else {
        return false;
    };
    if bytes.len() % size != 0 {
        return false;
    }
    out.reserve(bytes.len() / size * block);
    let blocks = bytes.chunks_exact(size);
    match ggml_type {
        F32 => out.extend(blocks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        F16 => out.extend(blocks.map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())),
        BF16 => out.extend(blocks.map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        Q8_0 => blocks.for_each(|b| {
            let d = half_at(b, 0);
            out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
        }),
        Q4_0 => blocks.for_each(|b| {
            let d = half_at(b, 0);
            let qs = &b[2..18];
            // Low nibbles are weights 0..16, high nibbles 16..32, each offset by 8.
            out.extend(qs.iter().map(|&q| f32::from(i16::from(q & 0xF) - 8) * d));
            out.extend(qs.iter().map(|&q| f32::from(i16::from(q >> 4) - 8) * d));
        }),
        Q4_1 => blocks.for_each(|b| {
            let (d, m) = (half_at(b, 0), half_at(b, 2));
            let qs = &b[4..20];
            out.extend(qs.iter().map(|&q| f32::from(q & 0xF) * d + m));
            out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
        }),
        Q4_K => blocks.for_each(|b| {
            let (d, dmin) = (half_at(b, 0), half_at(b, 2));
            let scales = &b[4..16];
            let qs = &b[16..144];
            for (j, q) in qs.chunks_exact(32).enumerate() {
                let (s1, m1) = scale_min_k4(2 * j, scales);
                let (s2, m2) = scale_min_k4(2 * j + 1, scales);
                let (d1, m1) = (d * f32::from(s1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(s2), dmin * f32::from(m2));
                out.extend(q.iter().map(|&v| d1 * f32::from(v & 0xF) - m1));
                out.extend(q.iter().map(|&v| d2 * f32::from(v >> 4) - m2));
            }
        }),
        Q5_K => blocks.for_each(|b| {
            let (d, dmin) = (half_at(b, 0), half_at(b, 2));
            let scales = &b[4..16];
            let qh = &b[16..48];
            let qs = &b[48..176];
            for (j, ql) in qs.chunks_exact(32).enumerate() {
                let (s1, m1) = scale_min_k4(2 * j, scales);
                let (s2, m2) = scale_min_k4(2 * j + 1, scales);
                let (d1, m1) = (d * f32::from(s1), dmin * f32::from(m1));
                let (d2, m2) = (d * f32::from(s2), dmin * f32::from(m2));
                // The fifth bit of sub-block 2j is bit 2j of qh[l], of sub-block 2j+1 bit 2j+1.
                let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
                let hi = |h: u8, u: u8| if h & u != 0 { 16u8 } else { 0 };
                out.extend(
                    ql.iter()
                        .zip(qh)
                        .map(|(&v, &h)| d1 * f32::from((v & 0xF) + hi(h, u1)) - m1),
                );
                out.extend(
                    ql.iter()
                        .zip(qh)
                        .map(|(&v, &h)| d2 * f32::from((v >> 4) + hi(h, u2)) - m2),
                );
            }
        }),
        Q6_K => blocks.for_each(|b| {
            let d = half_at(b, 208);
            for half in 0..2 {
                let ql = &b[64 * half..64 * half + 64];
                let qh = &b[128 + 32 * half..128 + 32 * half + 32];
                let sc = &b[192 + 8 * half..192 + 8 * half + 8];
                let mut y = [0f32; 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q = |low: u8, shift: u32| f32::from(((low | (((qh[l] >> shift) & 3) << 4)) as i8) - 32);
                    let s = |k: usize| d * f32::from(sc[is + k] as i8);
                    y[l] = s(0) * q(ql[l] & 0xF, 0);
                    y[l + 32] = s(2) * q(ql[l + 32] & 0xF, 2);
                    y[l + 64] = s(4) * q(ql[l] >> 4, 4);
                    y[l + 96] = s(6) * q(ql[l + 32] >> 4, 6);
                }
                out.extend_from_slice(&y);
            }
        }),
        _ => return false,
    }
    true
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K super-block, packed in
/// 12 bytes as ggml's `get_scale_min_k4` unpacks them.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_and_q4_1_by_hand() {
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let mut out = Vec::new();
        assert!(to_f32(Q8_0, &b, &mut out));
        assert_eq!(out[0], -8.0);
        assert_eq!(out[31], 7.5);

        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend(f16::from_f32(-1.0).to_le_bytes());
        b.extend([0x31u8; 16]);
        out.clear();
        assert!(to_f32(Q4_1, &b, &mut out));
        assert_eq!(out.len(), 32);
        assert_eq!(out[0], 1.0); // 1 * 2 - 1
        assert_eq!(out[16], 5.0); // 3 * 2 - 1
    }

    #[test]
    fn sizes() {
        assert_eq!(byte_len(Q4_K, 512), Some(288));
        assert_eq!(byte_len(Q4_0, 33), None);
        assert_eq!(byte_len(77, 32), None);
        let mut out = Vec::new();
        assert!(!to_f32(Q6_K, &[0u8; 209], &mut out));
        assert!(out.is_empty());
        assert!(is_block_quantized(Q6_K) && !is_block_quantized(BF16));
    }
}
