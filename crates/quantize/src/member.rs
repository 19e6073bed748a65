//! Pair members: how a code maps to a level, and the nearest-level search.
//!
//! A *member* is one element of an operating point (the only one, or one of a pair): either
//! a minifloat decoded by its format ([`MiniMember`]), or a LUT of levels ([`TableMember`],
//! built from a [`Lut`]). Both round a normalized value `x = u / s` to the nearest level
//! and give the code of that level; the two operations always agree
//! (`decode(encode(x)) == round(x)`).

use sop_formats::{Element, LutEntry, MiniFloat, Rounder, E2M1, E2M3, E3M2, E4M3, E5M2};

use crate::layer::Lut;

/// The minifloat format of a minifloat element, `None` for codebook elements.
pub fn minifloat_of(element: Element) -> Option<MiniFloat> {
    match element {
        Element::E2M1 => Some(E2M1),
        Element::E2M3 => Some(E2M3),
        Element::E3M2 => Some(E3M2),
        Element::E4M3 => Some(E4M3),
        Element::E5M2 => Some(E5M2),
        _ => None,
    }
}

/// Values processed together by the block search ([`Member::round_lanes`]).
pub(crate) const LANES: usize = 8;

/// The operations the block search needs from a member (monomorphized in the hot loop).
pub(crate) trait Member: Sync {
    /// Value of the level nearest to `x` (ties as documented per member).
    fn round(&self, x: f32) -> f32;
    /// [`Member::round`] of each of `LANES` values, in place (written so that it vectorizes).
    #[inline(always)]
    fn round_lanes(&self, xs: &mut [f32; LANES]) {
        for x in xs.iter_mut() {
            *x = self.round(*x);
        }
    }
    /// Code of the level nearest to `x` (the level [`Member::round`] returns).
    fn encode(&self, x: f32) -> u8;
    /// [`Member::encode`] of each of `LANES` values (written so that it vectorizes).
    #[inline]
    fn encode_lanes(&self, xs: &[f32; LANES], out: &mut [u8; LANES]) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = self.encode(x);
        }
    }
    /// The value the block extreme maps to under the ideal scale (largest positive level).
    fn elem_max(&self) -> f32;
    /// Whether the member is a minifloat (for the MX scale rule).
    fn is_minifloat(&self) -> bool;
}

/// A minifloat element: codes are the format's bit patterns, rounding is RNE, saturating.
#[derive(Clone, Debug)]
pub(crate) struct MiniMember {
    rounder: Rounder,
}

impl MiniMember {
    pub(crate) fn new(format: MiniFloat) -> Option<Self> {
        Some(Self {
            rounder: format.rounder()?,
        })
    }
}

impl Member for MiniMember {
    #[inline(always)]
    fn round(&self, x: f32) -> f32 {
        self.rounder.round(x)
    }
    #[inline]
    fn encode(&self, x: f32) -> u8 {
        self.rounder.encode(x) as u8
    }
    #[inline]
    fn encode_lanes(&self, xs: &[f32; LANES], out: &mut [u8; LANES]) {
        let mut v = *xs;
        self.round_lanes(&mut v);
        for (o, &v) in out.iter_mut().zip(&v) {
            *o = self.rounder.code_of(v) as u8;
        }
    }
    fn elem_max(&self) -> f32 {
        self.rounder.max()
    }
    fn is_minifloat(&self) -> bool {
        true
    }
}

/// Number of thresholds of the branch-free search (tables of at most 16 distinct levels).
const SMALL: usize = 15;

/// A LUT member: the code is the table index; the level is the LUT's *decoded* entry.
///
/// Nearest-level rule (identical to `sop_codebook::Codebook::nearest`): the nearest level by
/// exact distance; a tie between two levels goes to the one of smaller magnitude; among
/// duplicate levels the lowest index wins (so of `-0`/`+0` only `-0` is ever chosen).
/// Implementation: the distinct levels `d_0 < .. < d_k` with the index of each one's first
/// occurrence, and one f32 threshold per gap; the code of `x` is the first index of
/// `d_n` with `n = #{thresholds t : x > t}`. A threshold is the gap's midpoint rounded down
/// to f32, or one f32 step below it when the tie goes up (the upper level has the smaller
/// magnitude), so the strict comparison reproduces the exact rule for every f32 `x`.
#[derive(Clone, Debug)]
pub(crate) struct TableMember {
    /// Distinct levels, ascending.
    distinct: Vec<f32>,
    /// Table index of each distinct level's first occurrence.
    first: Vec<u8>,
    /// Thresholds for tables with at most 16 distinct levels, padded with +inf.
    small: [f32; SMALL],
    /// Thresholds for larger tables (empty otherwise).
    large: Vec<f32>,
    /// For the branch-free lane search: `distinct[0]`, and per small threshold the step
    /// `distinct[i + 1] - distinct[i]` (0 for padding). `None` when some step or running sum
    /// is not exact in f32, or the table is large.
    steps: Option<(f32, [f32; SMALL])>,
    max_pos: f32,
}

impl TableMember {
    /// Builds the search structure over `levels` (sorted ascending, non-decreasing).
    pub(crate) fn new(levels: &[f32]) -> Self {
        debug_assert!(levels.windows(2).all(|w| w[0] <= w[1]), "LUT levels must be sorted");
        let mut distinct = Vec::new();
        let mut first = Vec::new();
        for (i, &v) in levels.iter().enumerate() {
            if distinct.last() != Some(&v) {
                distinct.push(v);
                first.push(i as u8);
            }
        }
        let thresholds: Vec<f32> = distinct
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0] as f64, w[1] as f64);
                let mid = (a + b) / 2.0; // exact in f64 for any two f32 within 2^29 of each other
                let up_on_tie = b.abs() < a.abs();
                // Largest f32 t with: x > t  <=>  x > mid (or x >= mid when ties go up).
                let mut t = mid as f32; // nearest; step down if it lies above mid
                if (t as f64) > mid {
                    t = next_down(t);
                }
                if up_on_tie && (t as f64) == mid {
                    t = next_down(t);
                }
                t
            })
            .collect();
        let mut small = [f32::INFINITY; SMALL];
        let large = if thresholds.len() <= SMALL {
            small[..thresholds.len()].copy_from_slice(&thresholds);
            Vec::new()
        } else {
            thresholds
        };
        let max_pos = levels.iter().copied().fold(0.0f32, f32::max);
        // q = d_0 + sum_{i < n} step_i, added in order, must give exactly d_n for every n.
        let steps = (large.is_empty() && distinct.len() <= SMALL + 1)
            .then(|| {
                let mut st = [0.0f32; SMALL];
                let mut acc = distinct[0];
                for i in 0..distinct.len() - 1 {
                    st[i] = distinct[i + 1] - distinct[i];
                    if (st[i] as f64) != distinct[i + 1] as f64 - distinct[i] as f64 {
                        return None;
                    }
                    acc += st[i];
                    if acc != distinct[i + 1] {
                        return None;
                    }
                }
                Some((distinct[0], st))
            })
            .flatten();
        Self {
            distinct,
            first,
            small,
            large,
            steps,
            max_pos,
        }
    }

    #[inline]
    fn index(&self, x: f32) -> usize {
        if self.large.is_empty() {
            self.small.iter().map(|&t| (x > t) as usize).sum()
        } else {
            self.large.partition_point(|&t| t < x)
        }
    }
}

fn next_down(t: f32) -> f32 {
    if t == 0.0 {
        -f32::from_bits(1)
    } else if t > 0.0 {
        f32::from_bits(t.to_bits() - 1)
    } else {
        f32::from_bits(t.to_bits() + 1)
    }
}

impl Member for TableMember {
    #[inline]
    fn round(&self, x: f32) -> f32 {
        self.distinct[self.index(x)]
    }
    #[inline(always)]
    fn round_lanes(&self, xs: &mut [f32; LANES]) {
        match &self.steps {
            Some((d0, steps)) => {
                // The thresholds crossed by x are a prefix, so adding their steps in order walks
                // d_0, d_1, .., d_n exactly (checked at construction).
                let mut q = [*d0; LANES];
                for (&t, &st) in self.small.iter().zip(steps) {
                    for (q, &x) in q.iter_mut().zip(xs.iter()) {
                        *q += if x > t { st } else { 0.0 };
                    }
                }
                *xs = q;
            }
            None => {
                for x in xs.iter_mut() {
                    *x = self.round(*x);
                }
            }
        }
    }
    #[inline]
    fn encode(&self, x: f32) -> u8 {
        self.first[self.index(x)]
    }
    fn elem_max(&self) -> f32 {
        self.max_pos
    }
    fn is_minifloat(&self) -> bool {
        false
    }
}

/// The normalized (max |level| = 1) starting table of a codebook element at block size
/// `block`, before rounding to the LUT entry format. For the data-driven DD4/DD6 this is the
/// initial table of the fit (see `docs/quantizer.md`).
pub(crate) fn base_levels(element: Element, block: u32, signed_scale: bool) -> Vec<f32> {
    let b = block.max(2) as usize;
    match element {
        Element::NF4 => sop_codebook::nf4().levels,
        Element::BOF4 => sop_codebook::bof4(b).levels,
        Element::BOF4S => sop_codebook::bof4_s(b).levels,
        Element::Split87 => sop_codebook::split87(b).levels,
        Element::SH4 => sop_codebook::sh4(b).levels,
        Element::INT4 => sop_codebook::int4().levels,
        Element::DD4 if signed_scale => sop_codebook::bof4_s(b).levels,
        Element::DD4 => sop_codebook::nf4().levels,
        Element::DD6 => {
            // E2M3 / 7.5, with the duplicate +0 replaced by half the smallest positive level
            // so that all 64 starting levels are distinct.
            let mut l = sop_codebook::e2m3().levels;
            let z = l.iter().rposition(|&v| v == 0.0).expect("E2M3 has zeros");
            l[z] = l[z + 1] / 2.0;
            l
        }
        _ => unreachable!("{} is not a codebook element", element.name()),
    }
}

/// Rounds one normalized level to the LUT entry format with the given HIF bias (ignored for
/// FP16): the value the LUT will hold.
pub(crate) fn round_to_entry(entry: LutEntry, bias: i32, x: f32) -> f32 {
    match entry.hif() {
        Some(h) => h.decode(h.encode(x, bias), bias),
        None => {
            let f = sop_formats::Ieee16::Fp16;
            f.decode(f.encode(x))
        }
    }
}

/// A [`TableMember`] over a LUT's decoded levels.
pub(crate) fn table_member(lut: &Lut) -> TableMember {
    TableMember::new(&lut.levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_codebook::Codebook;

    fn check_against_codebook(levels: &[f32], xs: &[f32]) {
        let cb = Codebook {
            name: "t".into(),
            levels: levels.to_vec(),
        };
        let m = TableMember::new(levels);
        for &x in xs {
            let want = cb.nearest(x);
            assert_eq!(m.encode(x), want, "x = {x:e}, levels {levels:?}");
            assert_eq!(m.round(x), levels[want as usize]);
        }
    }

    fn probe_points(levels: &[f32]) -> Vec<f32> {
        let mut xs = vec![-2.0, 2.0, 0.0, -0.0, 1e-30, -1e-30, f32::INFINITY, f32::NEG_INFINITY];
        for w in levels.windows(2) {
            let mid = ((w[0] as f64 + w[1] as f64) / 2.0) as f32;
            for x in [w[0], w[1], mid, next_down(mid), f32::from_bits(mid.to_bits() + 1)] {
                xs.push(x);
                xs.push(-x);
            }
        }
        xs
    }

    #[test]
    fn table_search_matches_codebook_nearest_on_every_fixed_table() {
        for cb in [
            sop_codebook::nf4(),
            sop_codebook::bof4(16),
            sop_codebook::bof4_s(64),
            sop_codebook::split87(16),
            sop_codebook::sh4(16),
            sop_codebook::int4(),
            sop_codebook::e2m1(),
            sop_codebook::e2m3(),
        ] {
            check_against_codebook(&cb.levels, &probe_points(&cb.levels));
            // Also after HIF8 rounding (duplicates appear in some tables).
            let r: Vec<f32> = cb
                .levels
                .iter()
                .map(|&v| round_to_entry(LutEntry::Hif8, 7, v))
                .collect();
            check_against_codebook(&r, &probe_points(&r));
        }
    }

    #[test]
    fn lane_rounding_equals_scalar_rounding() {
        for levels in [
            sop_codebook::nf4().levels,
            sop_codebook::bof4_s(16).levels,
            sop_codebook::e2m1().levels,
            sop_codebook::e2m3().levels,
            sop_codebook::nf4()
                .levels
                .iter()
                .map(|&v| round_to_entry(LutEntry::Fp16, 0, v))
                .collect(),
        ] {
            let m = TableMember::new(&levels);
            let xs = probe_points(&levels);
            for c in xs.chunks(LANES) {
                let mut lanes = [0.0f32; LANES];
                lanes[..c.len()].copy_from_slice(c);
                let want: Vec<u32> = lanes.iter().map(|&x| m.round(x).to_bits()).collect();
                m.round_lanes(&mut lanes);
                let got: Vec<u32> = lanes.iter().map(|x| x.to_bits()).collect();
                // -0 and +0 may differ in sign only (both decode to zero).
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(f32::from_bits(*g), f32::from_bits(*w));
                }
            }
            assert_eq!(m.steps.is_some(), levels.len() == 16, "{levels:?}");
        }
    }

    #[test]
    fn ties_go_to_smaller_magnitude_and_first_duplicate() {
        let levels = [-1.0, -0.5, -0.0, 0.0, 0.25, 1.0];
        let m = TableMember::new(&levels);
        assert_eq!(m.encode(-0.75), 1); // tie between -1 and -0.5: smaller magnitude
        assert_eq!(m.encode(-0.25), 2); // tie between -0.5 and 0: zero, first of the duplicates
        assert_eq!(m.encode(0.125), 2); // tie between 0 and 0.25: zero
        assert_eq!(m.encode(0.625), 4); // tie between 0.25 and 1: 0.25
        assert_eq!(m.encode(0.0), 2);
        assert_eq!(m.elem_max(), 1.0);
    }

    #[test]
    fn minifloat_member_round_agrees_with_encode() {
        let m = MiniMember::new(E2M3).unwrap();
        for i in -200..200 {
            let x = i as f32 * 0.0437;
            assert_eq!(m.round(x).to_bits(), E2M3.decode(m.encode(x) as u32).to_bits());
        }
        assert_eq!(m.elem_max(), 7.5);
    }

    #[test]
    fn dd6_start_table_is_distinct_and_normalized() {
        let l = base_levels(Element::DD6, 16, false);
        assert_eq!(l.len(), 64);
        assert!(l.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(l[63], 1.0);
        assert_eq!(l[0], -1.0);
    }
}
