//! Element conversion (F32 / F16 / BF16 little-endian bytes -> f32) and the non-finite policy.

use std::fmt;
use std::str::FromStr;

use crate::ModelError;

/// What [`crate::Model::load_f32_with`] does with NaN and ±Inf weights.
///
/// The default, [`NonFinitePolicy::Refuse`], is what [`crate::Model::load_f32`] uses. The CLI flag
/// `--allow-nonfinite=zero|clamp` maps to the other two via [`FromStr`] (which also accepts
/// `refuse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonFinitePolicy {
    /// Fail with [`ModelError::NonFinite`], naming the tensor and the flat index, row and column
    /// of the first non-finite value.
    #[default]
    Refuse,
    /// Replace every NaN, +Inf and -Inf by `0.0`.
    Zero,
    /// Replace NaN by `0.0`; +Inf by the largest finite positive weight of the same tensor and
    /// -Inf by the most negative finite weight of the same tensor. If the tensor has no finite
    /// weight of that sign, the largest finite magnitude of either sign is used with the Inf's
    /// sign; if it has no finite weight at all, `0.0`. The result is therefore always finite and
    /// never widens the tensor's finite range.
    Clamp,
}

impl FromStr for NonFinitePolicy {
    type Err = String;

    /// Parses `refuse`, `zero` or `clamp` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "refuse" => Ok(Self::Refuse),
            "zero" => Ok(Self::Zero),
            "clamp" => Ok(Self::Clamp),
            other => Err(format!(
                "unknown non-finite policy `{other}` (expected refuse, zero or clamp)"
            )),
        }
    }
}

impl fmt::Display for NonFinitePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refuse => "refuse",
            Self::Zero => "zero",
            Self::Clamp => "clamp",
        })
    }
}

/// Source element encodings this crate can convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    F32,
    F16,
    BF16,
}

/// Converts little-endian `bytes` of the given encoding into `out` (cleared first).
/// `bytes.len()` must be a multiple of the element size; the safetensors header validation
/// guarantees it, and any trailing partial element is ignored.
pub(crate) fn decode_into(src: Src, bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    match src {
        Src::F32 => {
            out.reserve_exact(bytes.len() / 4);
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        Src::F16 => {
            out.reserve_exact(bytes.len() / 2);
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            );
        }
        Src::BF16 => {
            out.reserve_exact(bytes.len() / 2);
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            );
        }
    }
}

/// Applies `policy` to `data` (a row-major matrix with `cols` columns) in place.
pub(crate) fn apply_policy(
    tensor: &str,
    cols: usize,
    data: &mut [f32],
    policy: NonFinitePolicy,
) -> Result<(), ModelError> {
    let Some(first) = data.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    match policy {
        NonFinitePolicy::Refuse => {
            let cols = cols.max(1);
            Err(ModelError::NonFinite {
                tensor: tensor.to_string(),
                index: first,
                row: first / cols,
                col: first % cols,
                value: data[first],
            })
        }
        NonFinitePolicy::Zero => {
            for v in &mut data[first..] {
                if !v.is_finite() {
                    *v = 0.0;
                }
            }
            Ok(())
        }
        NonFinitePolicy::Clamp => {
            let (mut max_pos, mut min_neg) = (None::<f32>, None::<f32>);
            for &v in data.iter().filter(|v| v.is_finite()) {
                if v > 0.0 {
                    max_pos = Some(max_pos.map_or(v, |m| m.max(v)));
                } else if v < 0.0 {
                    min_neg = Some(min_neg.map_or(v, |m| m.min(v)));
                }
            }
            let max_mag = max_pos.unwrap_or(0.0).max(-min_neg.unwrap_or(0.0));
            let pos = max_pos.unwrap_or(max_mag);
            let neg = min_neg.unwrap_or(-max_mag);
            for v in &mut data[first..] {
                if v.is_nan() {
                    *v = 0.0;
                } else if *v == f32::INFINITY {
                    *v = pos;
                } else if *v == f32::NEG_INFINITY {
                    *v = neg;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses() {
        assert_eq!("zero".parse(), Ok(NonFinitePolicy::Zero));
        assert_eq!("Clamp".parse(), Ok(NonFinitePolicy::Clamp));
        assert_eq!("refuse".parse(), Ok(NonFinitePolicy::Refuse));
        assert!("drop".parse::<NonFinitePolicy>().is_err());
        assert_eq!(NonFinitePolicy::default(), NonFinitePolicy::Refuse);
        for p in [NonFinitePolicy::Refuse, NonFinitePolicy::Zero, NonFinitePolicy::Clamp] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
    }

    #[test]
    fn decode_f16_bf16_f32() {
        let mut out = Vec::new();
        let vals = [1.5f32, -2.25, 0.0, 65504.0];
        let bytes: Vec<u8> = vals
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        decode_into(Src::F16, &bytes, &mut out);
        assert_eq!(out, vals);
        let bytes: Vec<u8> = vals
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        decode_into(Src::BF16, &bytes, &mut out);
        assert_eq!(out, [1.5, -2.25, 0.0, 65536.0]);
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        decode_into(Src::F32, &bytes, &mut out);
        assert_eq!(out, vals);
    }

    #[test]
    fn clamp_without_finite_of_that_sign() {
        let mut d = [f32::INFINITY, -3.0, f32::NEG_INFINITY, f32::NAN];
        apply_policy("t", 2, &mut d, NonFinitePolicy::Clamp).unwrap();
        assert_eq!(d, [3.0, -3.0, -3.0, 0.0]);
        let mut d = [f32::INFINITY, f32::NEG_INFINITY];
        apply_policy("t", 2, &mut d, NonFinitePolicy::Clamp).unwrap();
        assert_eq!(d, [0.0, 0.0]);
    }

    #[test]
    fn refuse_reports_first() {
        let mut d = [1.0, 2.0, 3.0, f32::NAN, f32::INFINITY, 0.0];
        let e = apply_policy("w", 3, &mut d, NonFinitePolicy::Refuse).unwrap_err();
        match e {
            ModelError::NonFinite { index, row, col, .. } => assert_eq!((index, row, col), (3, 1, 0)),
            other => panic!("unexpected {other}"),
        }
    }
}
