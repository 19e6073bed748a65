//! Evaluation of several operating points over a model's layers: per-layer results and the
//! summary (median NMSE per format, pairwise win counts). The `sop eval` command is a thin
//! front end over this module.

use serde::{Deserialize, Serialize};

use crate::error::QuantError;
use crate::metrics::{metrics, Metrics};
use crate::quantizer::{LayerRef, Quantizer};

/// One layer quantized at one operating point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerEval {
    /// Tensor name.
    pub name: String,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// Canonical operating-point name.
    pub format: String,
    /// Exact bits per weight of the stored layer.
    pub bpw: f64,
    /// Reconstruction metrics.
    pub metrics: Metrics,
}

/// Quantizes `w` with every quantizer and measures the reconstruction; results in the order
/// of `quantizers`.
pub fn evaluate_layer(
    w: LayerRef<'_>,
    col_weights: Option<&[f32]>,
    quantizers: &[Quantizer],
) -> Result<Vec<LayerEval>, QuantError> {
    quantizers
        .iter()
        .map(|q| {
            let ql = q.quantize(w, col_weights)?;
            let w_hat = ql.dequantize();
            Ok(LayerEval {
                name: w.name.to_string(),
                shape: [w.rows, w.cols],
                format: q.point().to_string(),
                bpw: ql.bpw(),
                metrics: metrics(w.data, &w_hat, w.cols, col_weights),
            })
        })
        .collect()
}

/// Head-to-head count of two formats over the layers both were evaluated on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versus {
    /// First format.
    pub a: String,
    /// Second format.
    pub b: String,
    /// Layers where `a` has the strictly lower NMSE.
    pub a_better: usize,
    /// Layers where `b` has the strictly lower NMSE.
    pub b_better: usize,
    /// Layers with equal NMSE.
    pub ties: usize,
}

/// Per-format summary line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormatSummary {
    /// Canonical operating-point name.
    pub format: String,
    /// Layers evaluated.
    pub layers: usize,
    /// Median NMSE over the layers (mean of the two middle values for an even count).
    pub median_nmse: f64,
    /// Weight-count-weighted bits per weight over the layers (total bits / total weights).
    pub bpw: f64,
}

/// Summary of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// One line per format, in the order given.
    pub formats: Vec<FormatSummary>,
    /// Every unordered pair of formats (in the order given), with its win counts.
    pub versus: Vec<Versus>,
}

/// Median of `v` (NaN-free); mean of the two middle values for an even count; NaN if empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Summarizes `results` for the formats `formats` (canonical names, in display order).
pub fn summarize(results: &[LayerEval], formats: &[String]) -> Summary {
    fn of<'a>(results: &'a [LayerEval], f: &'a str) -> impl Iterator<Item = &'a LayerEval> + 'a {
        results.iter().filter(move |r| r.format == f)
    }
    let lines = formats
        .iter()
        .map(|f| {
            let nmse: Vec<f64> = of(results, f).map(|r| r.metrics.nmse).collect();
            let weights: f64 = of(results, f).map(|r| (r.shape[0] * r.shape[1]) as f64).sum();
            let bits: f64 = of(results, f).map(|r| r.bpw * (r.shape[0] * r.shape[1]) as f64).sum();
            FormatSummary {
                format: f.clone(),
                layers: nmse.len(),
                median_nmse: median(&nmse),
                bpw: if weights > 0.0 { bits / weights } else { f64::NAN },
            }
        })
        .collect();
    let mut versus = Vec::new();
    for (i, fa) in formats.iter().enumerate() {
        for fb in &formats[i + 1..] {
            let mut v = Versus {
                a: fa.clone(),
                b: fb.clone(),
                a_better: 0,
                b_better: 0,
                ties: 0,
            };
            for ra in of(results, fa) {
                if let Some(rb) = of(results, fb).find(|r| r.name == ra.name) {
                    let (x, y) = (ra.metrics.nmse, rb.metrics.nmse);
                    if x < y {
                        v.a_better += 1;
                    } else if y < x {
                        v.b_better += 1;
                    } else {
                        v.ties += 1;
                    }
                }
            }
            versus.push(v);
        }
    }
    Summary { formats: lines, versus }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, format: &str, nmse: f64) -> LayerEval {
        let m = Metrics {
            mse: 0.0,
            nmse,
            sqnr_db: 0.0,
            cosine: 1.0,
            w_mse: 0.0,
            w_nmse: nmse,
            w_sqnr_db: 0.0,
            w_cosine: 1.0,
        };
        LayerEval {
            name: name.into(),
            shape: [2, 2],
            format: format.into(),
            bpw: 4.0,
            metrics: m,
        }
    }

    #[test]
    fn median_and_wins() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let res = vec![
            r("l0", "A", 1.0),
            r("l0", "B", 2.0),
            r("l1", "A", 3.0),
            r("l1", "B", 1.0),
            r("l2", "A", 1.0),
            r("l2", "B", 1.0),
        ];
        let s = summarize(&res, &["A".into(), "B".into()]);
        assert_eq!(s.formats[0].median_nmse, 1.0);
        assert_eq!(s.formats[1].median_nmse, 1.0);
        assert_eq!(s.formats[0].bpw, 4.0);
        assert_eq!(
            s.versus,
            vec![Versus {
                a: "A".into(),
                b: "B".into(),
                a_better: 1,
                b_better: 1,
                ties: 1
            }]
        );
    }
}
