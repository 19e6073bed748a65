//! Outliers and sparse residuals: switchable sparse corrections on top of a dense quantized
//! layer, each entry a 32-bit flat index and a bf16 value
//! ([`SPARSE_ENTRY_BITS`](crate::SPARSE_ENTRY_BITS) = 48 bits, counted in
//! [`QuantizedLayer::bits`]).
//!
//! Stored values live in the **lane-output domain**: the domain of the decode lane's output
//! word `p = level * block_scale` ([`QuantizedLayer::product`]; `p = level` for `-POT`),
//! *before* the layer's tensor scale `t` (which the MAC array or `sop export` applies
//! downstream). A correction unit behind the lane can then apply an entry without knowing `t`:
//! with a non-power-of-two `t`, a value stored in the final domain (`bf16(w)`) divided by `t`
//! is no longer a bf16 value.
//!
//! * **Outliers** (`+O<p>%`): before block scaling, the `round(p/100 * n)` weights of largest
//!   magnitude (ties: lower flat index first) are removed from the dense tensor (set to 0, so
//!   they no longer stretch their block's scale) and stored as `v = bf16(w / t)`, the quotient
//!   formed in f64 and rounded once to bf16 (round to nearest even; a quotient beyond bf16's
//!   range saturates to its largest finite value). The reconstruction at those positions is
//!   `t * v` (f32, RNE). With `t = 1` this is `bf16(w)`.
//! * **Residuals** (`+R<p>%`): after quantization (and outlier replacement), the
//!   `round(p/100 * n)` weights with the largest activation-weighted squared error
//!   `a_j (w - w_hat)^2` (ties: lower flat index), **outlier positions excluded** (an outlier
//!   already holds its weight to bf16 precision; when fewer candidates remain, fewer residuals
//!   are stored and counted), get a correction `r = bf16(w / t - p)`, the difference formed in
//!   f64 and rounded once to bf16 (saturating like outliers). The reconstruction there is
//!   `t * f32(p + r)`: the sum rounded to f32 (RNE), then times `t` (RNE). The hardware's
//!   correction unit instead rounds `o + r` (its output word plus the residual) in its output
//!   format (FP16/BF16); that rule belongs to the golden model (`sop_hw::model`).
//!
//! The committed decode hardware decodes the dense part only; the sparse entries are a
//! separate scatter applied afterwards. Co-simulation covers the dense part only.

use std::fmt;
use std::str::FromStr;

use sop_formats::OperatingPoint;

use crate::error::QuantError;
use crate::layer::{QuantizedLayer, SparseEntry};
use crate::quantizer::{LayerRef, Quantizer};

/// One entry of a per-layer menu: an operating point plus optional outlier and residual
/// fractions, named `POINT[+O<p>%][+R<p>%]` (e.g. `E2M1sE4M3b16+O0.1%+R0.5%`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MenuOption {
    /// The dense operating point.
    pub point: OperatingPoint,
    /// Percentage of weights kept as outliers (0 = none).
    pub outlier_pct: f64,
    /// Percentage of weights given a residual correction (0 = none).
    pub residual_pct: f64,
}

impl MenuOption {
    /// Whether layers quantized with this option carry outlier or residual entries.
    pub fn is_sparse(&self) -> bool {
        self.outlier_pct > 0.0 || self.residual_pct > 0.0
    }

    /// A dense option without sparse parts.
    pub fn dense(point: OperatingPoint) -> Self {
        MenuOption {
            point,
            outlier_pct: 0.0,
            residual_pct: 0.0,
        }
    }
}

impl fmt::Display for MenuOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.point)?;
        if self.outlier_pct > 0.0 {
            write!(f, "+O{}%", self.outlier_pct)?;
        }
        if self.residual_pct > 0.0 {
            write!(f, "+R{}%", self.residual_pct)?;
        }
        Ok(())
    }
}

impl FromStr for MenuOption {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut rest = s.trim();
        let (mut o, mut r) = (0.0, 0.0);
        while rest.ends_with('%') {
            let plus = rest
                .rfind('+')
                .ok_or_else(|| format!("`{s}`: a `%` suffix needs `+O<p>%` or `+R<p>%`"))?;
            let suffix = &rest[plus + 1..rest.len() - 1];
            // Split after the first character (which may be more than one byte).
            let (kind, num) = suffix.split_at(suffix.chars().next().map_or(0, char::len_utf8));
            let v: f64 = num
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= 100.0)
                .ok_or_else(|| format!("`{s}`: `{num}` is not a percentage in 0..=100"))?;
            match kind {
                "O" if o == 0.0 => o = v,
                "R" if r == 0.0 => r = v,
                _ => {
                    return Err(format!(
                        "`{s}`: unknown or repeated suffix `+{suffix}%` (use +O<p>% and +R<p>%)"
                    ))
                }
            }
            rest = &rest[..plus];
        }
        let point: OperatingPoint = rest.parse().map_err(|e| format!("`{s}`: {e}"))?;
        Ok(MenuOption {
            point,
            outlier_pct: o,
            residual_pct: r,
        })
    }
}

/// `round(pct/100 * n)`.
pub fn count_for(pct: f64, n: usize) -> usize {
    ((pct / 100.0 * n as f64).round() as usize).min(n)
}

/// f32 to bf16 bits, round to nearest even (finite inputs).
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let round = ((b >> 16) & 1) + 0x7fff;
    (b.wrapping_add(round) >> 16) as u16
}

/// The largest finite bf16 magnitude, as a bit pattern (`0x7f7f`, about 3.39e38).
pub const BF16_MAX_BITS: u16 = 0x7f7f;

/// f64 to bf16 bits, rounded **once** to nearest even; a value beyond bf16's finite range
/// (including infinities) saturates to `+-`[`BF16_MAX_BITS`]; NaN gives a NaN pattern.
///
/// Method: round to odd into f32 (24 significant bits, at least 2 more than bf16's 8), then
/// round to nearest even into bf16; rounding to odd first makes the two roundings equal to a
/// single one (the usual double-rounding argument, which also holds in the subnormal range
/// because f32 and bf16 share their exponent range).
pub fn f64_to_bf16(x: f64) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let f = x as f32; // RNE
    let f = if f.is_finite() && f64::from(f) != x && f.to_bits() & 1 == 0 {
        // Inexact and RNE chose the even neighbour: round to odd takes the other neighbour
        // of x (one step towards x in magnitude, same sign).
        let towards_zero = f64::from(f).abs() > x.abs();
        f32::from_bits(if towards_zero { f.to_bits() - 1 } else { f.to_bits() + 1 })
    } else {
        f
    };
    let b = to_bf16(f);
    if b & 0x7fff >= 0x7f80 {
        (b & 0x8000) | BF16_MAX_BITS
    } else {
        b
    }
}

/// The stored outlier value `bf16(w / t)` (lane-output domain, module docs).
pub fn outlier_value(w: f32, t: f32) -> u16 {
    f64_to_bf16(f64::from(w) / f64::from(t))
}

/// The stored residual value `bf16(w / t - p)` for a weight `w`, tensor scale `t` and lane
/// product `p` (module docs).
pub fn residual_value(w: f32, t: f32, p: f32) -> u16 {
    f64_to_bf16(f64::from(w) / f64::from(t) - f64::from(p))
}

/// Indices of the `k` largest `score`s (ties: lower index first), ascending, among the
/// positions not listed in `exclude`; fewer when fewer candidates remain.
fn top_k(score: &[f64], k: usize, exclude: &[u32]) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut candidate = vec![true; score.len()];
    for &e in exclude {
        if let Some(c) = candidate.get_mut(e as usize) {
            *c = false;
        }
    }
    let mut idx: Vec<u32> = (0..score.len() as u32).filter(|&i| candidate[i as usize]).collect();
    let cmp = |a: &u32, b: &u32| score[*b as usize].total_cmp(&score[*a as usize]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_unstable();
    idx
}

/// Quantizes `w` with `option`: `q` must be prepared for `option.point`. Outliers are taken
/// out before quantizing, residuals added afterwards (module docs).
pub fn quantize_option(
    q: &Quantizer,
    option: &MenuOption,
    w: LayerRef<'_>,
    a: Option<&[f32]>,
) -> Result<QuantizedLayer, QuantError> {
    if q.point() != option.point {
        return Err(QuantError::Unsupported {
            point: option.point.to_string(),
            reason: format!("quantizer prepared for {}", q.point()),
        });
    }
    let n = w.data.len();
    let ko = count_for(option.outlier_pct, n);
    let mut ql = if ko > 0 {
        if n > u32::MAX as usize {
            return Err(QuantError::Unsupported {
                point: option.to_string(),
                reason: "sparse indices are 32-bit".into(),
            });
        }
        let mag: Vec<f64> = w.data.iter().map(|v| f64::from(v.abs())).collect();
        let idx = top_k(&mag, ko, &[]);
        let mut data = w.data.to_vec();
        for &i in &idx {
            data[i as usize] = 0.0;
        }
        let mut ql = q.quantize(LayerRef { data: &data, ..w }, a)?;
        let t = ql.tensor_scale;
        ql.outliers = idx
            .iter()
            .map(|&i| SparseEntry {
                index: i,
                bf16: outlier_value(w.data[i as usize], t),
            })
            .collect();
        ql
    } else {
        q.quantize(w, a)?
    };
    add_residuals(&mut ql, w.data, a, option.residual_pct);
    Ok(ql)
}

/// [`quantize_option`] with the plain quantization of the option's point shared between the
/// options of one layer: when `option` takes no outliers on this layer, its result is that
/// plain quantization plus its residuals, so `base` (the plain quantization of `w` by `q`,
/// computed here on first use and kept for the next option of the same point and layer) is
/// reused instead of quantizing again. The result is identical to [`quantize_option`]'s
/// (tested). A `base` of another point, tensor name or shape is replaced; the caller clears it
/// when the weights of a same-named layer change.
pub fn quantize_option_reusing(
    q: &Quantizer,
    option: &MenuOption,
    w: LayerRef<'_>,
    a: Option<&[f32]>,
    base: &mut Option<QuantizedLayer>,
) -> Result<QuantizedLayer, QuantError> {
    if q.point() != option.point || count_for(option.outlier_pct, w.data.len()) > 0 {
        return quantize_option(q, option, w, a);
    }
    // A cached layer of another point, tensor or shape is replaced, never reused.
    let fits = |b: &QuantizedLayer| b.point == q.point() && b.name == w.name && (b.rows, b.cols) == (w.rows, w.cols);
    let mut ql = match base {
        Some(b) if fits(b) => b.clone(),
        _ => base.insert(q.quantize(w, a)?).clone(),
    };
    add_residuals(&mut ql, w.data, a, option.residual_pct);
    Ok(ql)
}

/// Replaces `ql`'s residuals by the top `pct` percent (of all weights) by activation-weighted
/// squared error of its reconstruction against `w`, never at an outlier position, with values
/// in the lane-output domain (module docs).
pub fn add_residuals(ql: &mut QuantizedLayer, w: &[f32], a: Option<&[f32]>, pct: f64) {
    ql.residuals.clear();
    let k = count_for(pct, w.len());
    if k == 0 {
        return;
    }
    let hat = ql.dequantize();
    let cols = ql.cols;
    let score: Vec<f64> = w
        .iter()
        .zip(&hat)
        .enumerate()
        .map(|(i, (&x, &y))| {
            let e = f64::from(x - y);
            a.map_or(1.0, |a| f64::from(a[i % cols])) * e * e
        })
        .collect();
    let outliers: Vec<u32> = ql.outliers.iter().map(|o| o.index).collect();
    let t = ql.tensor_scale;
    ql.residuals = top_k(&score, k, &outliers)
        .into_iter()
        .map(|i| {
            let (r, c) = (i as usize / cols, i as usize % cols);
            SparseEntry {
                index: i,
                bf16: residual_value(w[i as usize], t, ql.product(r, c)),
            }
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QuantOptions;

    #[test]
    fn names_round_trip() {
        for s in ["NF4+DD4sUE4M4b16+O0.1%+R0.5%", "E2M1sE4M3b16", "E4M3-POT+R1%"] {
            let m: MenuOption = s.parse().unwrap();
            assert_eq!(m.to_string().parse::<MenuOption>().unwrap(), m);
        }
        assert!("E2M1sE4M3b16+X1%".parse::<MenuOption>().is_err());
        assert!("E2M1sE4M3b16+O200%".parse::<MenuOption>().is_err());
    }

    #[test]
    fn reusing_the_plain_quantization_gives_the_same_layers() {
        let data: Vec<f32> = (0..8192).map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 250.0).collect();
        let a: Vec<f32> = (0..128).map(|c| 0.5 + (c % 7) as f32).collect();
        let w = LayerRef {
            name: "w",
            rows: 64,
            cols: 128,
            data: &data,
        };
        let p = "E2M3sUE4M4".parse().unwrap();
        let q = Quantizer::new(p, QuantOptions::default()).unwrap();
        let mut base = None;
        // Plain, residuals (reused), outliers (quantized anew), residuals again.
        for o in ["E2M3sUE4M4", "E2M3sUE4M4+R1%", "E2M3sUE4M4+O0.1%", "E2M3sUE4M4+R0.5%"] {
            let opt: MenuOption = o.parse().unwrap();
            let direct = quantize_option(&q, &opt, w, Some(&a)).unwrap();
            let reused = quantize_option_reusing(&q, &opt, w, Some(&a), &mut base).unwrap();
            assert_eq!(reused, direct, "{o}");
            assert!(base.is_some(), "{o}");
        }
        // The cached plain quantization is the dense option's layer.
        assert_eq!(
            base.unwrap(),
            quantize_option(&q, &MenuOption::dense(p), w, Some(&a)).unwrap()
        );
        // A quantizer of another point is not served from the cache.
        let q2 = Quantizer::new("E2M1sE4M3b16".parse().unwrap(), QuantOptions::default()).unwrap();
        let opt2 = MenuOption::dense(q2.point());
        let mut stale = Some(quantize_option(&q, &MenuOption::dense(p), w, None).unwrap());
        assert_eq!(
            quantize_option_reusing(&q2, &opt2, w, None, &mut stale).unwrap(),
            quantize_option(&q2, &opt2, w, None).unwrap()
        );
    }

    #[test]
    fn sparse_bits_and_effect() {
        let data: Vec<f32> = (0..4096).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0).collect();
        let mut d = data.clone();
        d[5] = 40.0;
        let w = LayerRef {
            name: "w",
            rows: 64,
            cols: 64,
            data: &d,
        };
        let p = "E2M1sE4M3b16".parse().unwrap();
        let q = Quantizer::new(p, QuantOptions::default()).unwrap();
        let base = quantize_option(&q, &MenuOption::dense(p), w, None).unwrap();
        let opt: MenuOption = "E2M1sE4M3b16+O0.1%+R1%".parse().unwrap();
        let s = quantize_option(&q, &opt, w, None).unwrap();
        assert_eq!(s.outliers.len(), 4);
        assert_eq!(s.residuals.len(), 41);
        // Stored over the tensor scale; t * v reproduces 40 to bf16 precision.
        let t = s.tensor_scale;
        assert_ne!(t.log2().fract(), 0.0, "a non-power-of-two tensor scale");
        let o = s.outliers.iter().find(|o| o.index == 5).unwrap();
        assert_eq!(o.bf16, outlier_value(40.0, t));
        assert!((t * o.value() - 40.0).abs() <= 40.0 / 256.0);
        assert_eq!(s.dequantize()[5], t * o.value());
        assert_eq!(s.bits(), base.bits() + 45 * 48);
        let e = |h: &[f32]| d.iter().zip(h).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>();
        assert!(e(&s.dequantize()) < e(&base.dequantize()));
    }
}
