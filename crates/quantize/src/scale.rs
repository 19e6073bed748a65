//! Block-scale codes: the starting ("absmax") code of a block, the neighbouring codes the
//! search tries, and the per-tensor scale rules. Every format rule comes from `sop-formats`.

use sop_formats::{ScaleFormat, E4M3, UE4M4, UE8M0};

use crate::layer::decode_scale;

/// Largest supported search radius (codes on each side of the starting code).
pub const MAX_RADIUS: u32 = 8;

/// Candidate list capacity: the starting code plus `MAX_RADIUS` codes on each side.
pub(crate) const MAX_CANDIDATES: usize = 2 * MAX_RADIUS as usize + 1;

/// A scale format with its decode table.
#[derive(Clone, Debug)]
pub(crate) struct ScaleCodec {
    pub(crate) format: ScaleFormat,
    table: Vec<f32>,
}

impl ScaleCodec {
    pub(crate) fn new(format: ScaleFormat) -> Self {
        let table = if format == ScaleFormat::F32 {
            Vec::new()
        } else {
            (0..256).map(|c| decode_scale(format, c)).collect()
        };
        Self { format, table }
    }

    /// Value of a scale word.
    #[inline]
    pub(crate) fn decode(&self, code: u32) -> f32 {
        if self.format == ScaleFormat::F32 {
            f32::from_bits(code)
        } else {
            self.table[(code & 0xff) as usize]
        }
    }

    /// Largest positive scale value (the value the largest block's ideal scale is mapped to
    /// by the tensor-scale rule).
    pub(crate) fn max(&self) -> f32 {
        match self.format {
            ScaleFormat::UE4M4 => UE4M4.max(),
            ScaleFormat::E4M3 | ScaleFormat::SE4M3 => E4M3.max(),
            ScaleFormat::UE8M0 => UE8M0.max(),
            ScaleFormat::F32 => f32::MAX,
        }
    }

    /// Whether blocks of a member are searched over neighbouring codes: not for `F32`
    /// (exact absmax, bitsandbytes) and not for UE8M0 with a minifloat element (the OCP MX
    /// rule, exactly).
    pub(crate) fn searchable(&self, minifloat: bool) -> bool {
        match self.format {
            ScaleFormat::F32 => false,
            ScaleFormat::UE8M0 => !minifloat,
            _ => true,
        }
    }

    /// The starting code of a block whose largest magnitude is `amax` and whose
    /// largest-magnitude weight (first one on ties) is `smax`, for a member whose block
    /// extreme maps to `elem_max` (all in tensor-normalized units):
    /// * UE4M4, E4M3: RNE code of `amax / elem_max` (saturating);
    /// * S+E4M3: RNE code of `smax / elem_max`, so the extreme weight maps to `+elem_max`;
    /// * UE8M0: the OCP MX rule `2^(floor(log2 amax) - floor(log2 elem_max))`, clamped to the
    ///   code range (code 0, `2^-127`, for an all-zero block);
    /// * F32: the f32 `amax / elem_max` itself.
    pub(crate) fn base_code(&self, amax: f32, smax: f32, elem_max: f32) -> u32 {
        match self.format {
            ScaleFormat::UE4M4 => UE4M4.encode(amax / elem_max),
            ScaleFormat::E4M3 => E4M3.encode(amax / elem_max),
            ScaleFormat::SE4M3 => E4M3.encode(smax / elem_max),
            ScaleFormat::UE8M0 => {
                if amax == 0.0 {
                    return 0;
                }
                let e = floor_log2(amax) - floor_log2(elem_max) + UE8M0.bias;
                e.clamp(0, UE8M0.max_code() as i32) as u32
            }
            ScaleFormat::F32 => (amax / elem_max).to_bits(),
        }
    }

    /// Writes the candidate codes for a search of `radius` around `base` into `out` as
    /// `(code, distance)` in the order `base, base-1, base+1, base-2, base+2, ...`, skipping
    /// codes outside the format's finite positive (for S+E4M3: same-sign) range. Returns the
    /// number written.
    pub(crate) fn candidates(&self, base: u32, radius: u32, out: &mut [(u32, u32); MAX_CANDIDATES]) -> usize {
        let (sign, mag, hi) = match self.format {
            ScaleFormat::UE4M4 => (0, base, UE4M4.max_code()),
            ScaleFormat::E4M3 => (0, base, E4M3.max_code()),
            ScaleFormat::SE4M3 => (base & 0x80, base & 0x7f, E4M3.max_code()),
            ScaleFormat::UE8M0 => (0, base, UE8M0.max_code()),
            ScaleFormat::F32 => {
                out[0] = (base, 0);
                return 1;
            }
        };
        out[0] = (base, 0);
        let mut n = 1;
        for d in 1..=radius.min(MAX_RADIUS) {
            if mag >= d {
                out[n] = (sign | (mag - d), d);
                n += 1;
            }
            if mag + d <= hi {
                out[n] = (sign | (mag + d), d);
                n += 1;
            }
        }
        n
    }
}

/// `floor(log2 x)` of a positive finite f32, exactly (subnormals included).
pub(crate) fn floor_log2(x: f32) -> i32 {
    let bits = x.to_bits() & 0x7fff_ffff;
    let e = (bits >> 23) as i32;
    if e == 0 {
        (31 - bits.leading_zeros() as i32) - 149
    } else {
        e - 127
    }
}

/// The per-tensor scale of a block point: `amax / (elem_max * scale_max)`, so that the block
/// with the largest ideal scale (`amax_b / elem_max`) lands on the scale format's largest
/// value; `elem_max` is the smallest of the members' extremes, so that every member's ideal
/// scales fit. 1.0 for UE8M0 (its range covers every f32) and F32 block scales, and for an
/// all-zero tensor. Clamped below to the smallest normal f32.
pub(crate) fn tensor_scale(codec: &ScaleCodec, amax: f32, elem_max: f32) -> f32 {
    match codec.format {
        ScaleFormat::UE8M0 | ScaleFormat::F32 => 1.0,
        _ if amax == 0.0 => 1.0,
        _ => (amax / (elem_max * codec.max())).max(f32::MIN_POSITIVE),
    }
}

/// The `-POT` exponent: the smallest `k` with `elem_max * 2^k >= amax`, i.e.
/// `k = ceil(log2(amax / elem_max))`, clamped to the 8-bit range `-128..=127` (clamping up
/// keeps `amax / 2^k <= elem_max`); 0 for an all-zero tensor.
pub fn pot_exponent(amax: f32, elem_max: f32) -> i32 {
    if amax == 0.0 {
        return 0;
    }
    let (a, m) = (amax as f64, elem_max as f64);
    let mut k = (a / m).log2().ceil() as i32;
    // Fix up any log2 rounding with exact comparisons (m * 2^k is exact in f64).
    while m * 2f64.powi(k - 1) >= a {
        k -= 1;
    }
    while m * 2f64.powi(k) < a {
        k += 1;
    }
    k.clamp(-128, 127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_log2_exact() {
        assert_eq!(floor_log2(1.0), 0);
        assert_eq!(floor_log2(1.999), 0);
        assert_eq!(floor_log2(0.5), -1);
        assert_eq!(floor_log2(7.5), 2);
        assert_eq!(floor_log2(448.0), 8);
        assert_eq!(floor_log2(f32::from_bits(1)), -149);
        assert_eq!(floor_log2(f32::MIN_POSITIVE), -126);
    }

    #[test]
    fn pot_exponent_rule() {
        assert_eq!(pot_exponent(448.0, 448.0), 0);
        assert_eq!(pot_exponent(448.1, 448.0), 1);
        assert_eq!(pot_exponent(224.0, 448.0), -1);
        assert_eq!(pot_exponent(0.3, 448.0), -10); // 448 / 1024 = 0.4375 >= 0.3 > 0.21875
        assert_eq!(pot_exponent(0.0, 448.0), 0);
        assert_eq!(pot_exponent(1e-44, 448.0), -128);
    }

    #[test]
    fn mx_rule_and_candidates() {
        let c = ScaleCodec::new(ScaleFormat::UE8M0);
        // amax = 5 with E2M1 (emax 2): 2^(2 - 2) = 1 -> code 127.
        assert_eq!(c.base_code(5.0, 5.0, 6.0), 127);
        assert_eq!(c.decode(127), 1.0);
        assert!(!c.searchable(true) && c.searchable(false));
        let u = ScaleCodec::new(ScaleFormat::UE4M4);
        let mut out = [(0, 0); MAX_CANDIDATES];
        let n = u.candidates(1, 2, &mut out);
        assert_eq!(&out[..n], &[(1, 0), (0, 1), (2, 1), (3, 2)]);
        let n = u.candidates(255, 2, &mut out);
        assert_eq!(&out[..n], &[(255, 0), (254, 1), (253, 2)]);
        let s = ScaleCodec::new(ScaleFormat::SE4M3);
        let base = s.base_code(2.0, -2.0, 1.0);
        assert_eq!(s.decode(base), -2.0);
        let n = s.candidates(base, 1, &mut out);
        assert!(out[..n].iter().all(|&(c, _)| s.decode(c) < 0.0));
        let e = ScaleCodec::new(ScaleFormat::E4M3);
        let n = e.candidates(0x7e, 2, &mut out);
        assert_eq!(&out[..n], &[(0x7e, 0), (0x7d, 1), (0x7c, 2)]); // 0x7f is NaN
    }

    #[test]
    fn tensor_scale_maps_largest_block_to_scale_max() {
        let c = ScaleCodec::new(ScaleFormat::UE4M4);
        let t = tensor_scale(&c, 3.72, 7.5);
        assert!((3.72 / 7.5 / t - 496.0).abs() < 1e-3);
        assert_eq!(tensor_scale(&c, 0.0, 7.5), 1.0);
        assert_eq!(tensor_scale(&ScaleCodec::new(ScaleFormat::UE8M0), 3.0, 7.5), 1.0);
    }
}
