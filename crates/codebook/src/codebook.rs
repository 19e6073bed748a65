//! The [`Codebook`] type: a sorted, normalized level table and nearest-level search.

use serde::{Deserialize, Serialize};

/// Why a level table was rejected by [`Codebook::new`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodebookError {
    /// The table length is not a power of two between 2 and 256 (1- to 8-bit codes).
    #[error("codebook length {0} is not a power of two in 2..=256")]
    BadLength(usize),
    /// A level is NaN or infinite.
    #[error("level {index} is not finite ({value})")]
    NonFinite {
        /// Position of the offending level.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// `levels[index] > levels[index + 1]` (in `f32::total_cmp` order, so `+0.0` before
    /// `-0.0` is also rejected).
    #[error("levels are not sorted ascending at index {index}")]
    NotSorted {
        /// Position of the first out-of-order pair.
        index: usize,
    },
    /// A level lies outside `[-1, 1]`.
    #[error("level {index} = {value} lies outside [-1, 1]")]
    OutOfRange {
        /// Position of the offending level.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// No level has magnitude exactly 1.
    #[error("largest level magnitude is {0}, expected exactly 1")]
    NotNormalized(f32),
}

/// A quantization codebook: `2^bits` reconstruction levels in normalized units.
///
/// # Units and normalization
/// Levels are dimensionless, in units of the block scale: a weight `w` in a block with
/// scale `s` is stored as the index `i = nearest(w / s)` and reconstructed as
/// `levels[i] * s`. Every codebook in this crate is normalized so that its largest level
/// magnitude is exactly `1.0`; a block scale that maps the block's largest-magnitude
/// weight to `±1` (absmax scaling) or to `+1` (signed scaling) therefore uses the full
/// range. Formats whose native range is not `[-1, 1]` (E2M1: ±6, E2M3: ±7.5, INT4: ±7)
/// are stored divided by their native maximum; the constant factor belongs in the scale.
///
/// # Invariants (checked by [`Codebook::new`])
/// * `levels.len()` is a power of two in `2..=256` (the project uses 16 for 4-bit codes
///   and 64 for 6-bit codes); an index always fits a `u8`.
/// * every level is finite and lies in `[-1, 1]`, and `max |level| == 1.0` exactly;
/// * levels are sorted ascending in `f32::total_cmp` order. Equal neighbours are
///   allowed: sign-magnitude formats (E2M1, E2M3, INT4) carry both `-0.0` and
///   `+0.0`, with `-0.0` first.
///
/// The fields are public for convenient read access; code that mutates them must keep
/// the invariants (re-check with [`Codebook::validate`]). [`Codebook::nearest`] keeps no
/// cached state, so it stays consistent with whatever `levels` holds.
///
/// The index of a level is its position in this sorted table. It is *not* the bit
/// pattern of the corresponding E2M1/E2M3 element format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCodebook")]
pub struct Codebook {
    /// Human-readable identifier, e.g. `"NF4"` or `"BOF4-S/B64"`.
    pub name: String,
    /// The reconstruction levels, sorted ascending (see the type-level invariants).
    pub levels: Vec<f32>,
}

/// Unvalidated serde mirror of [`Codebook`]; deserialization goes through
/// [`Codebook::new`].
#[derive(Deserialize)]
struct RawCodebook {
    name: String,
    levels: Vec<f32>,
}

impl TryFrom<RawCodebook> for Codebook {
    type Error = CodebookError;
    fn try_from(raw: RawCodebook) -> Result<Self, Self::Error> {
        Codebook::new(raw.name, raw.levels)
    }
}

impl Codebook {
    /// Builds a codebook after checking every invariant listed on [`Codebook`].
    pub fn new(name: impl Into<String>, levels: Vec<f32>) -> Result<Self, CodebookError> {
        check_levels(&levels)?;
        Ok(Self {
            name: name.into(),
            levels,
        })
    }

    /// Re-checks the invariants (useful after mutating the public fields).
    pub fn validate(&self) -> Result<(), CodebookError> {
        check_levels(&self.levels)
    }

    /// Number of levels (`2^bits`).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Always `false` for a valid codebook (it has at least two levels); provided for
    /// API completeness.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Code width in bits: `log2(len)` (4 for 16 levels, 6 for 64).
    pub fn bits(&self) -> u32 {
        self.levels.len().trailing_zeros()
    }

    /// The level stored at code `index` (normalized units). Panics if `index >= len`.
    pub fn level(&self, index: u8) -> f32 {
        self.levels[index as usize]
    }

    /// `true` when the level set is mirror-symmetric: `levels[i] == -levels[len-1-i]`
    /// for every `i` (with `-0.0 == 0.0`). NF4, BOF4, BOF4-S, Split87 and SH4 are not;
    /// E2M1, INT4 and E2M3 are.
    pub fn is_symmetric(&self) -> bool {
        let n = self.levels.len();
        (0..n).all(|i| self.levels[i] == -self.levels[n - 1 - i])
    }

    /// Index of the level nearest to `x` (both in normalized units).
    ///
    /// Distance is the exact real distance `|x - level|`. The decision between two
    /// neighbouring levels `a < b` compares `2x` with `a + b` in `f64`; `2x` is always
    /// exact and `a + b` is exact unless the two levels are more than ~29 binades apart,
    /// which cannot happen for any table in this crate.
    ///
    /// Ties (exact midpoints, or duplicate levels) go to the level with the smaller
    /// magnitude, then to the lower index. Consequently an input of `0.0` (either sign)
    /// maps to the first zero level (`-0.0` where both zeros are present), and the
    /// `+0.0` duplicate of a sign-magnitude table is never returned.
    ///
    /// Inputs below the first / above the last level clamp to the end indices
    /// (including `±inf`); `NaN` returns 0. Cost: one binary search over the levels
    /// (4 comparisons for 16 levels) plus one neighbour comparison; no allocation.
    #[inline]
    pub fn nearest(&self, x: f32) -> u8 {
        let l = self.levels.as_slice();
        // First index whose level is >= x; all levels before it are < x.
        let hi = l.partition_point(|&v| v < x);
        if hi == 0 {
            return 0;
        }
        if hi == l.len() {
            // Nearest is the last level; with duplicates the lowest equal index wins.
            return first_equal(l, l.len() - 1) as u8;
        }
        let a = l[hi - 1];
        let b = l[hi];
        if x == b {
            return hi as u8;
        }
        let two_x = 2.0 * x as f64;
        let sum = a as f64 + b as f64;
        let pick_lower = if two_x != sum { two_x < sum } else { a.abs() <= b.abs() };
        if pick_lower {
            first_equal(l, hi - 1) as u8
        } else {
            hi as u8
        }
    }

    /// Quantize-then-reconstruct in normalized units: `levels[nearest(x)]`.
    #[inline]
    pub fn quantize(&self, x: f32) -> f32 {
        self.levels[self.nearest(x) as usize]
    }
}

/// Lowest index `j <= i` with `l[j] == l[i]` (walks back over duplicate levels).
#[inline]
fn first_equal(l: &[f32], mut i: usize) -> usize {
    while i > 0 && l[i - 1] == l[i] {
        i -= 1;
    }
    i
}

fn check_levels(levels: &[f32]) -> Result<(), CodebookError> {
    let n = levels.len();
    if !(2..=256).contains(&n) || !n.is_power_of_two() {
        return Err(CodebookError::BadLength(n));
    }
    for (index, &value) in levels.iter().enumerate() {
        if !value.is_finite() {
            return Err(CodebookError::NonFinite { index, value });
        }
        if !(-1.0..=1.0).contains(&value) {
            return Err(CodebookError::OutOfRange { index, value });
        }
    }
    if let Some(index) = levels
        .windows(2)
        .position(|w| w[0].total_cmp(&w[1]) == std::cmp::Ordering::Greater)
    {
        return Err(CodebookError::NotSorted { index });
    }
    let max_abs = levels.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max_abs != 1.0 {
        return Err(CodebookError::NotNormalized(max_abs));
    }
    Ok(())
}
