//! Reconstruction metrics of a layer: plain and activation-weighted.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::quantizer::CHUNK_WEIGHTS;

/// Reconstruction quality of `w_hat` against `w` (both `rows x cols`, row-major).
///
/// With `e = w - w_hat` and per-column weights `a_j` (all 1 when none are given):
/// * `mse = sum e^2 / n`, `nmse = sum e^2 / sum w^2`, `sqnr_db = -10 log10(nmse)`,
///   `cosine = sum w w_hat / sqrt(sum w^2 * sum w_hat^2)`;
/// * the `w_` forms weight every term of column `j` by `a_j`: `w_mse = sum a e^2 / sum a`
///   (over all entries), `w_nmse = sum a e^2 / sum a w^2`, `w_sqnr_db`, and the
///   activation-weighted cosine (ACos) `w_cosine = sum a w w_hat / sqrt(sum a w^2 * sum a w_hat^2)`.
///
/// Edge cases: a zero denominator gives `nmse = 0` when the error is zero too (else +inf), and
/// `cosine = 1` when both vectors are zero (else 0). All sums are f64, accumulated in fixed
/// chunks of rows and then combined in chunk order, so the values do not depend on the number
/// of threads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean squared error (weight units squared).
    pub mse: f64,
    /// Normalized MSE, `sum e^2 / sum w^2` (dimensionless).
    pub nmse: f64,
    /// Signal-to-quantization-noise ratio in dB, `-10 log10(nmse)`.
    pub sqnr_db: f64,
    /// Cosine similarity of `w` and `w_hat`.
    pub cosine: f64,
    /// Activation-weighted MSE, `sum a e^2 / sum a` over all entries.
    pub w_mse: f64,
    /// Activation-weighted NMSE.
    pub w_nmse: f64,
    /// Activation-weighted SQNR in dB.
    pub w_sqnr_db: f64,
    /// Activation-weighted cosine (ACos).
    pub w_cosine: f64,
}

#[derive(Clone, Copy, Default)]
struct Sums {
    ee: f64,
    ww: f64,
    hh: f64,
    wh: f64,
    a: f64,
    aee: f64,
    aww: f64,
    ahh: f64,
    awh: f64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.ee += o.ee;
        self.ww += o.ww;
        self.hh += o.hh;
        self.wh += o.wh;
        self.a += o.a;
        self.aee += o.aee;
        self.aww += o.aww;
        self.ahh += o.ahh;
        self.awh += o.awh;
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn cos(wh: f64, ww: f64, hh: f64) -> f64 {
    let d = (ww * hh).sqrt();
    if d > 0.0 {
        wh / d
    } else if ww == 0.0 && hh == 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Computes [`Metrics`] of `w_hat` against `w` (`cols` columns, `w.len() == w_hat.len()`,
/// a multiple of `cols`), with optional per-column weights `a` (length `cols`).
///
/// Panics if the lengths disagree (a programming error, not an input error).
pub fn metrics(w: &[f32], w_hat: &[f32], cols: usize, a: Option<&[f32]>) -> Metrics {
    assert_eq!(w.len(), w_hat.len(), "w and w_hat differ in length");
    assert!(
        cols > 0 && w.len() % cols == 0,
        "length {} is not a multiple of cols {cols}",
        w.len()
    );
    if let Some(a) = a {
        assert_eq!(a.len(), cols, "column weights must have length cols");
    }
    let chunk = (CHUNK_WEIGHTS / cols).max(1) * cols;
    let parts: Vec<Sums> = w
        .par_chunks(chunk)
        .zip(w_hat.par_chunks(chunk))
        .map(|(w, h)| {
            let mut s = Sums::default();
            for (wr, hr) in w.chunks(cols).zip(h.chunks(cols)) {
                for j in 0..cols {
                    let (x, y) = (wr[j] as f64, hr[j] as f64);
                    let aj = a.map_or(1.0, |a| a[j] as f64);
                    let e = x - y;
                    s.ee += e * e;
                    s.ww += x * x;
                    s.hh += y * y;
                    s.wh += x * y;
                    s.a += aj;
                    s.aee += aj * e * e;
                    s.aww += aj * x * x;
                    s.ahh += aj * y * y;
                    s.awh += aj * x * y;
                }
            }
            s
        })
        .collect();
    let mut t = Sums::default();
    for p in &parts {
        t.add(p);
    }
    let n = w.len().max(1) as f64;
    let nmse = ratio(t.ee, t.ww);
    let w_nmse = ratio(t.aee, t.aww);
    Metrics {
        mse: t.ee / n,
        nmse,
        sqnr_db: -10.0 * nmse.log10(),
        cosine: cos(t.wh, t.ww, t.hh),
        w_mse: ratio(t.aee, t.a),
        w_nmse,
        w_sqnr_db: -10.0 * w_nmse.log10(),
        w_cosine: cos(t.awh, t.aww, t.ahh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let w = [1.0f32, -2.0, 3.0, 0.0];
        let h = [1.0f32, -2.0, 2.0, 0.0];
        let m = metrics(&w, &h, 2, None);
        assert_eq!(m.mse, 0.25);
        assert!((m.nmse - 1.0 / 14.0).abs() < 1e-15);
        assert!((m.sqnr_db - 10.0 * 14f64.log10()).abs() < 1e-12);
        assert!((m.cosine - 11.0 / (14f64 * 9.0).sqrt()).abs() < 1e-15);
        assert_eq!(m.w_nmse, m.nmse);
        // Weighting column 0 only: the error is in column 0 (row 1) -> w_nmse = 1 / (1 + 9).
        let m = metrics(&w, &h, 2, Some(&[1.0, 0.0]));
        assert!((m.w_nmse - 0.1).abs() < 1e-15);
        assert!((m.w_mse - 1.0 / 2.0).abs() < 1e-15);
    }

    #[test]
    fn zero_vectors() {
        let m = metrics(&[0.0; 4], &[0.0; 4], 4, None);
        assert_eq!((m.nmse, m.cosine), (0.0, 1.0));
        assert_eq!(m.sqnr_db, f64::INFINITY);
        let m = metrics(&[0.0; 4], &[1.0; 4], 4, None);
        assert_eq!((m.nmse, m.cosine), (f64::INFINITY, 0.0));
    }
}
