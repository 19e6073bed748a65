//! Weighted one-dimensional Lloyd-Max (k-means) with fixed levels and optional rounding.
//!
//! Minimizes `sum_j w_j * (x_j - q(x_j))^2` over the free levels of a scalar quantizer,
//! where `q` maps each sample to its nearest level with exactly the tie rule of
//! [`Codebook::nearest`](crate::Codebook::nearest) (smaller magnitude, then lower index).
//!
//! The samples are sorted once and turned into compensated `f64` prefix sums of `w` and
//! `w*x`; each iteration then finds every cell by binary search and every centroid by two
//! prefix-sum differences, so an iteration costs `O(k log n)` for `k` levels and `n`
//! samples. Everything is single-threaded and order-independent (the samples are sorted
//! by `(value, weight)` first), so the result depends only on the multiset of
//! `(sample, weight)` pairs and the options, never on input order or thread count.

use std::cmp::Ordering;

/// Tuning knobs for [`lloyd_max`] / [`WeightedSamples::fit`].
#[derive(Clone, Copy)]
pub struct LloydOptions<'a> {
    /// Upper bound on the number of update steps. `0` returns the sorted `init`.
    pub max_iters: usize,
    /// Convergence threshold: stop once no level moves by more than `tol` (absolute,
    /// in sample units) in one step. `0.0` demands an exact fixed point.
    pub tol: f64,
    /// Optional rounding applied to every *free* level after each centroid update,
    /// e.g. to snap levels onto a LUT entry format. Fixed levels are never passed to it.
    /// It must return finite values; it need not be monotone (levels are re-sorted after
    /// it runs). With rounding, Lloyd can cycle between states; `max_iters` bounds that.
    pub round: Option<&'a dyn Fn(f32) -> f32>,
}

impl Default for LloydOptions<'_> {
    /// `max_iters = 10_000`, `tol = 1e-7`, no rounding.
    fn default() -> Self {
        Self {
            max_iters: 10_000,
            tol: 1e-7,
            round: None,
        }
    }
}

impl std::fmt::Debug for LloydOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LloydOptions")
            .field("max_iters", &self.max_iters)
            .field("tol", &self.tol)
            .field("round", &self.round.map(|_| "<fn>"))
            .finish()
    }
}

/// Outcome of a Lloyd-Max fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LloydResult {
    /// Fitted levels, sorted ascending (`f32::total_cmp`), same length as `init`.
    /// Fixed levels hold exactly their given values. Duplicates are possible (two
    /// levels rounded onto the same value, or a level landing on a fixed value); a
    /// duplicate receives an empty cell and stays put while it is a duplicate.
    pub levels: Vec<f32>,
    /// Number of update steps performed.
    pub iterations: usize,
    /// `true` if the last step moved no level by more than `tol`.
    pub converged: bool,
    /// `sum w (x - q(x))^2 / sum w` for the returned (`f32`) levels.
    pub weighted_mse: f64,
}

/// Invalid input to [`lloyd_max`] / [`WeightedSamples`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LloydError {
    /// No samples were given.
    #[error("no samples")]
    EmptySamples,
    /// `weights` is neither empty nor the same length as `samples`.
    #[error("{weights} weights for {samples} samples")]
    WeightLengthMismatch {
        /// Number of samples.
        samples: usize,
        /// Number of weights.
        weights: usize,
    },
    /// A sample is NaN or infinite.
    #[error("sample {0} is not finite")]
    NonFiniteSample(usize),
    /// A weight is negative, NaN or infinite.
    #[error("weight {0} is negative or not finite")]
    InvalidWeight(usize),
    /// All weights are zero.
    #[error("total weight is zero")]
    ZeroTotalWeight,
    /// `init` is empty.
    #[error("no initial levels")]
    EmptyInit,
    /// An initial level is NaN or infinite.
    #[error("initial level {0} is not finite")]
    NonFiniteInit(usize),
    /// A value in `fixed` does not occur in `init`.
    #[error("fixed level {0} does not occur in init")]
    FixedNotInInit(f32),
    /// The rounding closure returned NaN or an infinity.
    #[error("rounding closure returned a non-finite value for {0}")]
    NonFiniteRound(f32),
}

/// A weighted sample set prepared for repeated Lloyd fits: sorted values plus
/// compensated `f64` prefix sums of `w` and `w*x`.
///
/// Preparing costs one `O(n log n)` sort; each [`fit`](Self::fit) iteration is
/// `O(k log n)`. Memory: about 28 bytes per sample.
#[derive(Debug, Clone)]
pub struct WeightedSamples {
    xs: Vec<f32>,
    ws: Vec<f32>,
    /// `pw[i] = sum_{j<i} ws[j]`.
    pw: Vec<f64>,
    /// `pwx[i] = sum_{j<i} ws[j] * xs[j]`.
    pwx: Vec<f64>,
}

impl WeightedSamples {
    /// Validates and prepares `samples` with per-sample `weights` (empty `weights`
    /// means every weight is 1). Zero weights are allowed; negative or non-finite ones
    /// are not, and at least one weight must be positive.
    pub fn new(samples: &[f32], weights: &[f32]) -> Result<Self, LloydError> {
        if samples.is_empty() {
            return Err(LloydError::EmptySamples);
        }
        if !weights.is_empty() && weights.len() != samples.len() {
            return Err(LloydError::WeightLengthMismatch {
                samples: samples.len(),
                weights: weights.len(),
            });
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(LloydError::NonFiniteSample(i));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(LloydError::InvalidWeight(i));
        }
        let mut pairs: Vec<(f32, f32)> = if weights.is_empty() {
            samples.iter().map(|&x| (x, 1.0)).collect()
        } else {
            samples.iter().copied().zip(weights.iter().copied()).collect()
        };
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let n = pairs.len();
        let mut xs = Vec::with_capacity(n);
        let mut ws = Vec::with_capacity(n);
        let mut pw = Vec::with_capacity(n + 1);
        let mut pwx = Vec::with_capacity(n + 1);
        let (mut sw, mut swx) = (Neumaier::default(), Neumaier::default());
        pw.push(0.0);
        pwx.push(0.0);
        for (x, w) in pairs {
            xs.push(x);
            ws.push(w);
            sw.add(w as f64);
            swx.add(w as f64 * x as f64);
            pw.push(sw.value());
            pwx.push(swx.value());
        }
        if sw.value() <= 0.0 {
            return Err(LloydError::ZeroTotalWeight);
        }
        Ok(Self { xs, ws, pw, pwx })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.xs.len()
    }

    /// Always `false` (construction rejects empty input).
    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }

    /// Sum of all weights (`> 0`).
    pub fn total_weight(&self) -> f64 {
        self.pw[self.xs.len()]
    }

    /// Weighted mean squared error `sum w (x - q(x))^2 / sum w` of quantizing the
    /// samples to `levels` (sorted ascending, non-empty) with the nearest-level rule.
    pub fn weighted_mse(&self, levels: &[f32]) -> f64 {
        let lv: Vec<f64> = levels.iter().map(|&v| v as f64).collect();
        let ends = self.cell_ends(&lv);
        let mut acc = Neumaier::default();
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            for j in start..end {
                let d = self.xs[j] as f64 - lv[i];
                acc.add(self.ws[j] as f64 * d * d);
            }
            start = end;
        }
        acc.value() / self.total_weight()
    }

    /// Runs weighted Lloyd-Max from `init`, holding every level whose value occurs in
    /// `fixed` (compared with `==`, so `0.0` also matches `-0.0`). See [`lloyd_max`].
    pub fn fit(&self, init: &[f32], fixed: &[f32], opts: &LloydOptions<'_>) -> Result<LloydResult, LloydError> {
        let (levels, fixed_mask) = prepare_init(init, fixed)?;
        let (levels, iterations, converged) = lloyd_core(levels, fixed_mask, opts, |lv| {
            let ends = self.cell_ends(lv);
            let mut start = 0;
            ends.iter()
                .map(|&end| {
                    let m = (self.pw[end] - self.pw[start], self.pwx[end] - self.pwx[start]);
                    start = end;
                    m
                })
                .collect()
        })?;
        let levels: Vec<f32> = levels.iter().map(|&v| v as f32).collect();
        let weighted_mse = self.weighted_mse(&levels);
        Ok(LloydResult {
            levels,
            iterations,
            converged,
            weighted_mse,
        })
    }

    /// Exclusive end index (into the sorted samples) of each level's cell, following the
    /// nearest-level rule with ties to the smaller magnitude, then the lower index; all
    /// but the first of a run of equal levels get empty cells.
    fn cell_ends(&self, lv: &[f64]) -> Vec<usize> {
        let k = lv.len();
        let mut ends = vec![self.xs.len(); k];
        for i in (0..k.saturating_sub(1)).rev() {
            let (a, b) = (lv[i], lv[i + 1]);
            ends[i] = if a == b {
                ends[i + 1]
            } else {
                let s = a + b;
                let lower_wins_tie = a.abs() <= b.abs();
                self.xs.partition_point(|&x| {
                    let t = 2.0 * x as f64;
                    t < s || (t == s && lower_wins_tie)
                })
            };
        }
        ends
    }
}

/// Weighted 1-D Lloyd-Max: fits `init.len()` levels to `samples`.
///
/// * `samples`: data values (any finite `f32`; for codebooks, normalized weights).
/// * `weights`: per-sample non-negative importance (e.g. block-max squared, or
///   activation energy); empty means all ones.
/// * `init`: starting levels (any order; sorted internally).
/// * `fixed`: values that must occur in `init`; those levels never move and are not
///   passed to `opts.round`.
///
/// Each step moves every free level with a non-empty cell to its cell's weighted
/// centroid (levels with empty or zero-weight cells stay put), applies `opts.round`,
/// and re-sorts. Stops when no level moved by more than `opts.tol` or after
/// `opts.max_iters` steps. Level arithmetic is `f64`; output is rounded to `f32`.
///
/// Degenerate inputs: all-zero (or all-equal) samples converge in one or two steps with
/// one level on the data and the rest where they were. Errors: see [`LloydError`].
///
/// For repeated fits of the same data, build a [`WeightedSamples`] once and call
/// [`WeightedSamples::fit`].
pub fn lloyd_max(
    samples: &[f32],
    weights: &[f32],
    init: &[f32],
    fixed: &[f32],
    opts: &LloydOptions<'_>,
) -> Result<LloydResult, LloydError> {
    // Validate the cheap arguments before the O(n log n) preparation.
    prepare_init(init, fixed)?;
    WeightedSamples::new(samples, weights)?.fit(init, fixed, opts)
}

/// Sorts `init` and marks fixed levels.
pub(crate) fn prepare_init(init: &[f32], fixed: &[f32]) -> Result<(Vec<f64>, Vec<bool>), LloydError> {
    if init.is_empty() {
        return Err(LloydError::EmptyInit);
    }
    if let Some(i) = init.iter().position(|v| !v.is_finite()) {
        return Err(LloydError::NonFiniteInit(i));
    }
    if let Some(&f) = fixed.iter().find(|f| !init.contains(f)) {
        return Err(LloydError::FixedNotInInit(f));
    }
    let mut pairs: Vec<(f32, bool)> = init.iter().map(|&v| (v, fixed.contains(&v))).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok((
        pairs.iter().map(|p| p.0 as f64).collect(),
        pairs.iter().map(|p| p.1).collect(),
    ))
}

/// The Lloyd iteration shared by the sample-based fitter and the quadrature-based
/// constructions. `moments(levels)` returns, per level, the (mass, first moment) of its
/// cell. Returns the final levels, the number of steps, and whether it converged.
pub(crate) fn lloyd_core<F>(
    mut levels: Vec<f64>,
    mut fixed: Vec<bool>,
    opts: &LloydOptions<'_>,
    mut moments: F,
) -> Result<(Vec<f64>, usize, bool), LloydError>
where
    F: FnMut(&[f64]) -> Vec<(f64, f64)>,
{
    for iter in 1..=opts.max_iters {
        let m = moments(&levels);
        debug_assert_eq!(m.len(), levels.len());
        let mut next: Vec<(f64, bool)> = Vec::with_capacity(levels.len());
        for (i, &(mass, first)) in m.iter().enumerate() {
            let mut v = levels[i];
            if !fixed[i] {
                if mass > 0.0 {
                    v = first / mass;
                }
                if let Some(round) = opts.round {
                    let r = round(v as f32);
                    if !r.is_finite() {
                        return Err(LloydError::NonFiniteRound(v as f32));
                    }
                    v = r as f64;
                }
            }
            next.push((v, fixed[i]));
        }
        // Stable: equal values keep their previous relative order.
        next.sort_by(|a, b| a.0.total_cmp(&b.0).then(Ordering::Equal));
        let delta = next
            .iter()
            .zip(&levels)
            .fold(0.0f64, |d, (n, o)| d.max((n.0 - o).abs()));
        levels = next.iter().map(|p| p.0).collect();
        fixed = next.iter().map(|p| p.1).collect();
        if delta <= opts.tol {
            return Ok((levels, iter, true));
        }
    }
    Ok((levels, opts.max_iters, false))
}

/// Neumaier-compensated running sum (deterministic, order-dependent only on input
/// order, which is fixed by sorting).
#[derive(Default, Clone, Copy)]
pub(crate) struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    pub(crate) fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }
    pub(crate) fn value(&self) -> f64 {
        self.sum + self.comp
    }
}
