//! Numeric kernels of the forward pass, in plain Rust.
//!
//! Determinism: every output value is computed by one fixed sequence of f32 operations that
//! depends only on its inputs, never on how the work is split between threads, batches or
//! tiles. Every dot product (linear layers and attention alike) accumulates in 8 lanes (element
//! `i` goes to lane `i % 8`) with fused multiply-adds (`f32::mul_add`, one rounding) and sums
//! the lanes in a fixed tree; all tile shapes use exactly that order. On x86-64 CPUs with AVX2
//! and FMA a vectorized build of the same kernel is picked at run time; it gives the same bits
//! as the portable build (which is much slower where FMA is emulated in software).

use rayon::prelude::*;

/// Lanes of the dot-product accumulator.
const LANES: usize = 8;
/// Tokens per parallel task of [`linear`].
const TOK_BLOCK: usize = 64;
/// Weight rows processed together while they stay in cache (a multiple of [`TR`]).
const ROW_BLOCK: usize = 48;
/// Tokens per tile.
const TT: usize = 4;
/// Weight rows per tile.
const TR: usize = 3;

#[inline(always)]
fn reduce(a: &[f32; LANES]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// `T` x `R` dot products `xs[t] . ws[r]` (all slices of equal length), in the canonical order.
#[inline(always)]
fn tile<const T: usize, const R: usize>(xs: [&[f32]; T], ws: [&[f32]; R]) -> [[f32; R]; T] {
    let n = ws[0].len();
    let n8 = n - n % LANES;
    let mut acc = [[[0f32; LANES]; R]; T];
    let mut i = 0;
    while i < n8 {
        for t in 0..T {
            for r in 0..R {
                for l in 0..LANES {
                    acc[t][r][l] = xs[t][i + l].mul_add(ws[r][i + l], acc[t][r][l]);
                }
            }
        }
        i += LANES;
    }
    let mut out = [[0f32; R]; T];
    for t in 0..T {
        for r in 0..R {
            for (l, j) in (n8..n).enumerate() {
                acc[t][r][l] = xs[t][j].mul_add(ws[r][j], acc[t][r][l]);
            }
            out[t][r] = reduce(&acc[t][r]);
        }
    }
    out
}

/// `y[t][r] = x[t] . w[r] + bias[r]` for all tokens of `x` (`[nt, cols]`) and rows of `w`
/// (`[rows, cols]`), `y` is `[nt, rows]`. `tile4` computes a `TT` x `TR` tile, `dot` one value;
/// both must follow the canonical order.
#[inline(always)]
fn gemm_with(
    x: &[f32],
    y: &mut [f32],
    w: &[f32],
    bias: Option<&[f32]>,
    cols: usize,
    tile4: impl Fn([&[f32]; TT], [&[f32]; TR]) -> [[f32; TR]; TT],
    dot: impl Fn(&[f32], &[f32]) -> f32,
) {
    let rows = w.len() / cols;
    let nt = x.len() / cols;
    let nt4 = nt - nt % TT;
    let xr = |t: usize| &x[t * cols..(t + 1) * cols];
    let wr = |r: usize| &w[r * cols..(r + 1) * cols];
    let b = |r: usize| bias.map_or(0.0, |b| b[r]);
    for r0 in (0..rows).step_by(ROW_BLOCK) {
        let r1 = (r0 + ROW_BLOCK).min(rows);
        let r2 = r0 + (r1 - r0) / TR * TR;
        for t in (0..nt4).step_by(TT) {
            for r in (r0..r2).step_by(TR) {
                let o = tile4(std::array::from_fn(|k| xr(t + k)), std::array::from_fn(|k| wr(r + k)));
                for (dt, row) in o.iter().enumerate() {
                    for (dr, v) in row.iter().enumerate() {
                        y[(t + dt) * rows + r + dr] = v + b(r + dr);
                    }
                }
            }
        }
        for t in 0..nt {
            let rs = if t < nt4 { r2..r1 } else { r0..r1 };
            for r in rs {
                y[t * rows + r] = dot(xr(t), wr(r)) + b(r);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{reduce, LANES, TR, TT};
    use std::arch::x86_64::*;

    /// The `TT` x `TR` tile with AVX2 + FMA: per lane the same fused multiply-adds as the
    /// portable `tile`, the same tail and reduction.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile(x: [&[f32]; TT], w: [&[f32]; TR]) -> [[f32; TR]; TT] {
        let n = w[0].len();
        assert!(x.iter().chain(&w).all(|s| s.len() == n));
        let n8 = n - n % LANES;
        let [x0, x1, x2, x3] = x.map(<[f32]>::as_ptr);
        let [w0, w1, w2] = w.map(<[f32]>::as_ptr);
        let z = _mm256_setzero_ps();
        let (mut a00, mut a01, mut a02, mut a10, mut a11, mut a12) = (z, z, z, z, z, z);
        let (mut a20, mut a21, mut a22, mut a30, mut a31, mut a32) = (z, z, z, z, z, z);
        let mut i = 0;
        while i < n8 {
            // SAFETY (all loads): i + 8 <= n8 <= n = every slice's length (asserted above).
            let v0 = _mm256_loadu_ps(w0.add(i));
            let v1 = _mm256_loadu_ps(w1.add(i));
            let v2 = _mm256_loadu_ps(w2.add(i));
            let u = _mm256_loadu_ps(x0.add(i));
            a00 = _mm256_fmadd_ps(u, v0, a00);
            a01 = _mm256_fmadd_ps(u, v1, a01);
            a02 = _mm256_fmadd_ps(u, v2, a02);
            let u = _mm256_loadu_ps(x1.add(i));
            a10 = _mm256_fmadd_ps(u, v0, a10);
            a11 = _mm256_fmadd_ps(u, v1, a11);
            a12 = _mm256_fmadd_ps(u, v2, a12);
            let u = _mm256_loadu_ps(x2.add(i));
            a20 = _mm256_fmadd_ps(u, v0, a20);
            a21 = _mm256_fmadd_ps(u, v1, a21);
            a22 = _mm256_fmadd_ps(u, v2, a22);
            let u = _mm256_loadu_ps(x3.add(i));
            a30 = _mm256_fmadd_ps(u, v0, a30);
            a31 = _mm256_fmadd_ps(u, v1, a31);
            a32 = _mm256_fmadd_ps(u, v2, a32);
            i += LANES;
        }
        let acc = [[a00, a01, a02], [a10, a11, a12], [a20, a21, a22], [a30, a31, a32]];
        let mut out = [[0f32; TR]; TT];
        for t in 0..TT {
            for r in 0..TR {
                let mut a = [0f32; LANES];
                _mm256_storeu_ps(a.as_mut_ptr(), acc[t][r]);
                for (l, j) in (n8..n).enumerate() {
                    a[l] = x[t][j].mul_add(w[r][j], a[l]);
                }
                out[t][r] = reduce(&a);
            }
        }
        out
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm(x: &[f32], y: &mut [f32], w: &[f32], bias: Option<&[f32]>, cols: usize) {
        // SAFETY: this function runs only where AVX2 and FMA are available (caller's contract).
        super::gemm_with(x, y, w, bias, cols, |a, b| unsafe { tile(a, b) }, super::dot)
    }
}

/// The canonical dot product (the bits every tile produces for that pair).
#[inline(always)]
pub(crate) fn dot(x: &[f32], w: &[f32]) -> f32 {
    tile::<1, 1>([x], [w])[0][0]
}

/// `y = x W^T (+ bias)`: `x` is `[nt, cols]`, `w` `[rows, cols]` row-major, `y` `[nt, rows]`.
/// Single-threaded; picks the AVX2+FMA build when the CPU has it.
pub(crate) fn gemm(x: &[f32], y: &mut [f32], w: &[f32], bias: Option<&[f32]>, cols: usize) {
    debug_assert_eq!(w.len() % cols, 0);
    debug_assert_eq!(x.len() % cols, 0);
    debug_assert_eq!(y.len(), x.len() / cols * (w.len() / cols));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { avx2::gemm(x, y, w, bias, cols) };
            return;
        }
    }
    gemm_with(x, y, w, bias, cols, tile::<TT, TR>, dot)
}

/// `y = x W^T + b` for `n = x.len() / cols` tokens: `x` is `[n, cols]`, `w` is
/// `[rows, cols]` row-major (PyTorch `nn.Linear` layout), `bias` has `rows` entries; returns
/// `[n, rows]`. Parallel over blocks of tokens.
pub(crate) fn linear(x: &[f32], w: &[f32], bias: &[f32], cols: usize) -> Vec<f32> {
    let rows = bias.len();
    debug_assert_eq!(w.len(), rows * cols);
    let n = x.len() / cols;
    let mut y = vec![0f32; n * rows];
    y.par_chunks_mut(TOK_BLOCK * rows)
        .zip(x.par_chunks(TOK_BLOCK * cols))
        .for_each(|(yb, xb)| gemm(xb, yb, w, Some(bias), cols));
    y
}

/// LayerNorm over each row of `x` (`[n, gamma.len()]`) in place; statistics in f64.
pub(crate) fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let h = gamma.len();
    x.par_chunks_mut(h).for_each(|row| {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / h as f64;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / h as f64;
        let inv = 1.0 / (var + f64::from(eps)).sqrt();
        for (j, v) in row.iter_mut().enumerate() {
            *v = ((f64::from(*v) - mean) * inv) as f32 * gamma[j] + beta[j];
        }
    });
}

/// Exact (erf) GELU, in place: `0.5 x (1 + erf(x / sqrt 2))`, as BERT's `hidden_act = "gelu"`.
pub(crate) fn gelu(x: &mut [f32]) {
    x.par_chunks_mut(4096).for_each(|c| {
        for v in c {
            *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
}

/// `a += b` elementwise.
pub(crate) fn add_assign(a: &mut [f32], b: &[f32]) {
    a.par_chunks_mut(4096).zip(b.par_chunks(4096)).for_each(|(x, y)| {
        for (p, q) in x.iter_mut().zip(y) {
            *p += q;
        }
    });
}

/// Softmax of `s` in place (max-subtracted, f32).
pub(crate) fn softmax(s: &mut [f32]) {
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in s.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_agree_bit_for_bit() {
        // Odd sizes exercise every tile shape and the lane tail.
        let (n, rows, cols) = (37, 11, 29);
        let x: Vec<f32> = (0..n * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 104729) % 1000) as f32 / 991.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..rows).map(|r| r as f32 * 0.1).collect();
        let y = linear(&x, &w, &b, cols);
        let mut y2 = vec![0f32; n * rows];
        gemm_with(&x, &mut y2, &w, Some(&b), cols, tile::<TT, TR>, dot);
        for t in 0..n {
            for r in 0..rows {
                let d = dot(&x[t * cols..(t + 1) * cols], &w[r * cols..(r + 1) * cols]) + b[r];
                assert_eq!(y[t * rows + r].to_bits(), d.to_bits(), "t={t} r={r}");
                assert_eq!(y2[t * rows + r].to_bits(), d.to_bits(), "t={t} r={r}");
                let exact: f64 = (0..cols)
                    .map(|j| f64::from(x[t * cols + j]) * f64::from(w[r * cols + j]))
                    .sum::<f64>()
                    + f64::from(b[r]);
                assert!((f64::from(d) - exact).abs() < 1e-5, "{d} vs {exact}");
            }
        }
    }

    #[test]
    fn gelu_and_softmax() {
        let mut g = vec![-3.0f32, -1.0, 0.0, 1.0, 3.0];
        gelu(&mut g);
        let want = [-0.0040496, -0.15865526, 0.0, 0.841_344_7, 2.9959502];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let mut s = vec![1.0f32, 2.0, 3.0];
        softmax(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((s[2] - 0.66524096).abs() < 1e-6);
    }
}

#[cfg(test)]
mod bench {
    #[test]
    #[ignore]
    fn linear_speed() {
        let (n, rows, cols) = (2048, 1536, 384);
        let x: Vec<f32> = (0..n * cols).map(|i| (i % 17) as f32 * 0.01).collect();
        let w: Vec<f32> = (0..rows * cols).map(|i| (i % 13) as f32 * 0.01).collect();
        let b = vec![0f32; rows];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let mut best = f64::MAX;
        for _ in 0..8 {
            let t = std::time::Instant::now();
            let y = pool.install(|| super::linear(&x, &w, &b, cols));
            best = best.min(t.elapsed().as_secs_f64());
            assert!(y[5] > 0.0);
        }
        eprintln!(
            "{:.2} GMAC/s (1 thread, best of 8)",
            (n * rows * cols) as f64 / best / 1e9
        );
    }
}
