//! Constructors for every fixed codebook.

use crate::construct::Family;
use crate::tables;
use crate::Codebook;

fn build(name: impl Into<String>, levels: Vec<f32>) -> Codebook {
    Codebook::new(name, levels).expect("built-in codebook satisfies the invariants")
}

/// Mirrors non-negative magnitudes `[0, m1, .., 1]` into a sign-magnitude table
/// `[-1, .., -m1, -0, +0, m1, .., 1]`.
fn sign_magnitude(mags: &[f32]) -> Vec<f32> {
    let mut v: Vec<f32> = mags.iter().rev().map(|&m| -m).collect();
    v.extend_from_slice(mags);
    v
}

/// NF4 (published; bitsandbytes): 16 levels, 7 negative / 0 / 8 positive, `-1`, `0`,
/// `+1` included. Use with absmax block scaling.
pub fn nf4() -> Codebook {
    build("NF4", tables::NF4_LEVELS.to_vec())
}

/// E2M1 / OCP FP4 (published format): the values `{0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6}`
/// divided by 6, as a sign-magnitude table with both `-0` and `+0` (16 codes, 15
/// distinct values; the `+0` code is never produced by [`Codebook::nearest`]). Symmetric.
/// Each level is the correctly rounded `f32` quotient `v / 6`.
pub fn e2m1() -> Codebook {
    let mags: Vec<f32> = tables::E2M1_MAGNITUDES.iter().map(|&v| v / 6.0).collect();
    build("E2M1", sign_magnitude(&mags))
}

/// INT4, symmetric sign-magnitude (convention of this project): levels `k / 7` for
/// `k = -7..=7` with both `-0` and `+0` (16 codes, 15 distinct values). Symmetric, so
/// absmax scaling reaches both `-1` and `+1` (a two's-complement `-8..7` grid would
/// waste its `+1` side). Each level is the correctly rounded `f32` quotient `k / 7`.
pub fn int4() -> Codebook {
    let mags: Vec<f32> = (0..8).map(|k| k as f32 / 7.0).collect();
    build("INT4", sign_magnitude(&mags))
}

/// E2M3 / OCP FP6 (published format): all 64 E2M3 values (sign, 2 exponent bits with
/// bias 1, 3 mantissa bits, no inf/NaN; magnitudes `0, 0.125, .., 0.875, 1, 1.125, ..,
/// 7.5`) divided by 7.5, sign-magnitude with both `-0` and `+0`. A 6-bit codebook (64
/// levels). Each level is the correctly rounded `f32` quotient `v / 7.5`.
pub fn e2m3() -> Codebook {
    let mags: Vec<f32> = (0u32..32)
        .map(|code| {
            let (e, m) = (code >> 3, code & 7);
            let v = if e == 0 {
                m as f32 / 8.0
            } else {
                (1.0 + m as f32 / 8.0) * (1u32 << (e - 1)) as f32
            };
            v / 7.5
        })
        .collect();
    build("E2M3", sign_magnitude(&mags))
}

/// The codebook of a block-optimized [`Family`] at `block_size`: the committed table for
/// block sizes 16 and 64, otherwise computed on the fly with
/// [`Family::construct_exact`] (deterministic; a fraction of a second in release
/// builds). Panics if `block_size < 2`.
pub fn family_codebook(family: Family, block_size: usize) -> Codebook {
    let levels = match tables::committed(family, block_size) {
        Some(t) => t.to_vec(),
        None => family.construct_exact(block_size),
    };
    build(family.name(block_size), levels)
}

/// BOF4 at `block_size` (published method, Blumenberg et al. 2025; tables computed by
/// this crate): MSE-optimal levels for absmax-scaled Gaussian blocks with the
/// end-to-end (`s^2`-weighted) criterion; `-1, 0, +1` fixed; 7 negative / 0 / 8
/// positive. See [`family_codebook`].
pub fn bof4(block_size: usize) -> Codebook {
    family_codebook(Family::Bof4, block_size)
}

/// BOF4-S at `block_size` (published method; tables computed by this crate): as
/// [`bof4`] but for signed-max scaling, so only `0` and `+1` are fixed and the most
/// negative level lies inside `(-1, 0)`. Asymmetric.
pub fn bof4_s(block_size: usize) -> Codebook {
    family_codebook(Family::Bof4S, block_size)
}

/// Split87 at `block_size` (this project's reconstruction): 8 positive levels
/// (including `+1`), 7 negative, and `0`, optimized for signed-max-scaled Gaussian
/// blocks with the `s^2`-weighted criterion. Use with a *signed* block scale that maps
/// each block's largest-magnitude weight to `+1`. See `docs/codebooks.md` for how it
/// relates to BOF4-S.
pub fn split87(block_size: usize) -> Codebook {
    family_codebook(Family::Split87, block_size)
}

/// SH4 at `block_size` (this project's reconstruction): levels for *symmetric* (absmax)
/// block scaling of heavy-tailed weights, optimized with the `s^2`-weighted criterion
/// for blocks of Student-t (nu = 5) weights; `-1, 0, +1` fixed, 7 negative / 0 / 8
/// positive like NF4. The level set is not exactly mirror-symmetric: 16 codes cannot
/// hold a zero and a symmetric set without wasting a code (see `docs/codebooks.md`).
pub fn sh4(block_size: usize) -> Codebook {
    family_codebook(Family::Sh4, block_size)
}
