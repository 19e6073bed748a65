//! Bit packing of code streams: `n` codes of `width` bits each, LSB-first.
//!
//! Layout: code `i` occupies bits `i*width .. (i+1)*width` of the byte stream, bit 0 of a
//! byte first (`bitvec`'s `Lsb0` order), each code's least-significant bit first; the
//! last byte is zero-padded. This is the layout of the packed `u8` tensors the
//! quantized-model file stores.

use bitvec::prelude::*;

/// Why a code stream cannot be packed or unpacked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// Width outside 1..=8.
    #[error("code width {0} is out of range (1..=8 bits)")]
    Width(u32),
    /// A code does not fit the width.
    #[error("code {code} at index {index} does not fit in {width} bits")]
    CodeTooWide {
        /// Position in the stream.
        index: usize,
        /// The offending code.
        code: u8,
        /// The width asked for.
        width: u32,
    },
    /// Byte stream too short for `count` codes.
    #[error("{have} bytes hold fewer than {count} codes of {width} bits (need {need} bytes)")]
    Truncated {
        /// Bytes given.
        have: usize,
        /// Bytes needed.
        need: usize,
        /// Codes asked for.
        count: usize,
        /// Width asked for.
        width: u32,
    },
}

/// Bytes needed for `count` codes of `width` bits.
pub const fn packed_len(count: usize, width: u32) -> usize {
    (count * width as usize).div_ceil(8)
}

fn check_width(width: u32) -> Result<(), PackError> {
    if (1..=8).contains(&width) {
        Ok(())
    } else {
        Err(PackError::Width(width))
    }
}

/// Packs `codes` (each `< 2^width`) into bytes.
pub fn pack(codes: &[u8], width: u32) -> Result<Vec<u8>, PackError> {
    check_width(width)?;
    let mut out = vec![0u8; packed_len(codes.len(), width)];
    let bits = out.view_bits_mut::<Lsb0>();
    for (i, (&c, slot)) in codes.iter().zip(bits.chunks_mut(width as usize)).enumerate() {
        if u32::from(c) >> width != 0 {
            return Err(PackError::CodeTooWide {
                index: i,
                code: c,
                width,
            });
        }
        slot.store_le(c);
    }
    Ok(out)
}

/// Unpacks `count` codes of `width` bits from `bytes` (trailing padding ignored).
pub fn unpack(bytes: &[u8], width: u32, count: usize) -> Result<Vec<u8>, PackError> {
    check_width(width)?;
    let need = packed_len(count, width);
    if bytes.len() < need {
        return Err(PackError::Truncated {
            have: bytes.len(),
            need,
            count,
            width,
        });
    }
    let bits = bytes.view_bits::<Lsb0>();
    Ok(bits
        .chunks(width as usize)
        .take(count)
        .map(|s| s.load_le::<u8>())
        .collect())
}
