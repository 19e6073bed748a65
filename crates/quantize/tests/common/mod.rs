//! Shared by the integration tests: a tiny deterministic generator (SplitMix64) and helpers.
#![allow(dead_code)]

use sop_formats::OperatingPoint;
use sop_quantize::{decode_scale, minifloat_of, QuantizedLayer};

pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// N(0, sigma^2) by Box-Muller.
    pub fn gaussian(&mut self, sigma: f64) -> f32 {
        let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
        (sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    pub fn gaussians(&mut self, n: usize, sigma: f64) -> Vec<f32> {
        (0..n).map(|_| self.gaussian(sigma)).collect()
    }
}

/// Weighted squared error `sum a_j (w - w_hat)^2` in f64.
pub fn weighted_sse(w: &[f32], w_hat: &[f32], cols: usize, a: &[f32]) -> f64 {
    w.iter()
        .zip(w_hat)
        .enumerate()
        .map(|(i, (&x, &y))| a[i % cols] as f64 * (x as f64 - y as f64).powi(2))
        .sum()
}

/// Reconstruction recomputed from the public fields only, independently of `dequantize`:
/// `tensor_scale * (level * block_scale)`.
pub fn reconstruct(q: &QuantizedLayer) -> Vec<f32> {
    let mut out = Vec::with_capacity(q.rows * q.cols);
    let (element, dynamic, scale, block) = match q.point {
        OperatingPoint::Pot { element } => (element, None, None, 0usize),
        OperatingPoint::Block {
            element,
            dynamic,
            scale,
            block,
            ..
        } => (element, dynamic, Some(scale), block as usize),
    };
    for r in 0..q.rows {
        for c in 0..q.cols {
            let code = q.codes[r * q.cols + c];
            if block == 0 {
                out.push(q.tensor_scale * minifloat_of(element).unwrap().decode(code as u32));
                continue;
            }
            let b = r * q.cols.div_ceil(block) + c / block;
            let sel = q.sel[b];
            let level = if sel == 1 {
                assert!(dynamic.is_some());
                q.tables.last().unwrap().levels[code as usize]
            } else if element.is_codebook() {
                q.tables[0].levels[code as usize]
            } else {
                minifloat_of(element).unwrap().decode(code as u32)
            };
            let s = decode_scale(scale.unwrap(), q.scale_codes[b]);
            out.push(q.tensor_scale * (level * s));
        }
    }
    out
}
