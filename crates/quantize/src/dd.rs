//! Data-driven codebooks (DD4 / DD6): a weighted Lloyd-Max fit of a layer's normalized block
//! values, with levels rounded to the LUT entry format.
//!
//! The samples are the normalized values `x = u / s_b` of the blocks the dynamic member
//! serves (`u` = tensor-normalized weight, `s_b` = the block's decoded scale), each weighted by
//! `a_j * s_b^2`, so the fit minimizes the end-to-end, activation-weighted weight error
//! `sum a_j (u - s_b q(x))^2`. They are accumulated into a fine histogram ([`NBINS`] bins on
//! `[-RANGE, RANGE]`, values beyond it in the end bins), each bin represented by its exact
//! weighted centroid `sum(w x) / sum(w)`; Lloyd then runs on the bin centroids. A cell
//! boundary therefore resolves to one bin (`2 * RANGE / NBINS`, about `1e-3`), far finer than
//! the LUT formats' spacing, and a fit costs O(NBINS) instead of a sort of the whole layer.

use sop_codebook::{LloydOptions, WeightedSamples};
use sop_formats::LutEntry;

use crate::member::round_to_entry;

/// Histogram bins.
pub const NBINS: usize = 4096;
/// Half-width of the histogram range in normalized units.
pub const RANGE: f32 = 2.0;

/// Weighted histogram of normalized values: per bin `sum w` and `sum w x` (f64).
#[derive(Clone, Debug)]
pub(crate) struct Hist {
    w: Vec<f64>,
    wx: Vec<f64>,
}

impl Hist {
    pub(crate) fn new() -> Self {
        Self {
            w: vec![0.0; NBINS],
            wx: vec![0.0; NBINS],
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, x: f32, w: f64) {
        let k = ((x + RANGE) * (NBINS as f32 / (2.0 * RANGE))) as isize;
        let k = k.clamp(0, NBINS as isize - 1) as usize;
        self.w[k] += w;
        self.wx[k] += w * x as f64;
    }

    /// Adds `other` bin by bin (callers merge chunk histograms in a fixed order).
    pub(crate) fn merge(&mut self, other: &Hist) {
        for k in 0..NBINS {
            self.w[k] += other.w[k];
            self.wx[k] += other.wx[k];
        }
    }

    fn total(&self) -> f64 {
        self.w.iter().sum()
    }
}

/// The result of a fit: the unrounded Lloyd levels (kept as the next round's start, so levels
/// merged by rounding can separate again) and the levels rounded to the entry format.
#[derive(Clone, Debug)]
pub(crate) struct Fit {
    pub(crate) unrounded: Vec<f32>,
    pub(crate) rounded: Vec<f32>,
}

/// Fits `init.len()` levels to the histogram, holding `fixed` (values that occur in `init`).
/// First plain weighted Lloyd to convergence (tolerance `1e-7`, at most 300 steps), then Lloyd
/// with every free level rounded to the LUT entry format after each step (at most 50 steps,
/// until an exact fixed point), so the other levels adapt to the rounded ones. Returns `None`
/// when the histogram carries no weight (no block to fit).
pub(crate) fn fit(h: &Hist, init: &[f32], fixed: &[f32], entry: LutEntry, bias: i32) -> Option<Fit> {
    let total = h.total();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut xs = Vec::new();
    let mut ws = Vec::new();
    for k in 0..NBINS {
        if h.w[k] > 0.0 {
            xs.push((h.wx[k] / h.w[k]) as f32);
            ws.push((h.w[k] / total) as f32);
        }
    }
    let samples = WeightedSamples::new(&xs, &ws).ok()?;
    let plain = LloydOptions {
        max_iters: 300,
        tol: 1e-7,
        round: None,
    };
    let unrounded = samples.fit(init, fixed, &plain).ok()?.levels;
    let round = |v: f32| round_to_entry(entry, bias, v);
    let snapped = LloydOptions {
        max_iters: 50,
        tol: 0.0,
        round: Some(&round),
    };
    let mut start: Vec<f32> = unrounded
        .iter()
        .map(|&v| if fixed.contains(&v) { v } else { round(v) })
        .collect();
    start.sort_by(f32::total_cmp);
    let rounded = samples.fit(&start, fixed, &snapped).ok()?.levels;
    Some(Fit { unrounded, rounded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_centroids_are_exact_and_fit_keeps_fixed_levels() {
        let mut h = Hist::new();
        for i in 0..10_000 {
            let x = ((i as f32 / 10_000.0) * 2.0 - 1.0).powi(3);
            h.add(x, 1.0);
        }
        h.add(5.0, 1.0); // clamps into the last bin, centroid kept exact
        let init = sop_codebook::nf4().levels;
        let f = fit(&h, &init, &[-1.0, 0.0, 1.0], LutEntry::Hif8, 7).unwrap();
        assert_eq!(f.rounded.len(), 16);
        assert!(f.rounded.contains(&-1.0) && f.rounded.contains(&0.0) && f.rounded.contains(&1.0));
        for &v in &f.rounded {
            assert_eq!(round_to_entry(LutEntry::Hif8, 7, v), v, "{v} is not a HIF8 value");
        }
        assert!(fit(&Hist::new(), &init, &[], LutEntry::Hif8, 7).is_none());
    }
}
