//! How far a quantized model's predictions are from the original's, the way llama.cpp's
//! `llama-perplexity --kl-divergence` reports it: perplexity of both on the same tokens, the
//! mean KL divergence of the quantized next-token distribution from the original's, and how
//! often their top-1 tokens agree.

use std::collections::HashMap;

use rayon::prelude::*;
use sop_calib::{F32Linear, LinearExec, LinearRef};

use crate::llama::argmax;

/// Per-position comparison of two models (f64): the negative log-likelihoods of the actual
/// next token, the KL divergence `KL(p0 || p1)`, and whether the arg-maxes agree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenStat {
    /// `-ln p0(next)` under the original model.
    pub nll0: f64,
    /// `-ln p1(next)` under the quantized model.
    pub nll1: f64,
    /// `sum_v p0(v) (ln p0(v) - ln p1(v))`, in nats.
    pub kld: f64,
    /// Whether both models' most likely tokens are the same.
    pub top1_agree: bool,
}

/// The fidelity summary over `tokens` scored positions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fidelity {
    /// Scored positions.
    pub tokens: usize,
    /// Perplexity of the original model, `exp(mean nll0)`.
    pub ppl0: f64,
    /// Perplexity of the quantized model.
    pub ppl1: f64,
    /// Mean KL divergence in nats.
    pub mean_kld: f64,
    /// Top-1 agreement in percent.
    pub top1_pct: f64,
}

impl Fidelity {
    /// Summarizes `stats` (summed in order, so the result is independent of thread count).
    /// `None` for no positions.
    pub fn summarize(stats: &[TokenStat]) -> Option<Fidelity> {
        if stats.is_empty() {
            return None;
        }
        let n = stats.len() as f64;
        let (mut a, mut b, mut k, mut agree) = (0f64, 0f64, 0f64, 0usize);
        for s in stats {
            a += s.nll0;
            b += s.nll1;
            k += s.kld;
            agree += usize::from(s.top1_agree);
        }
        Some(Fidelity {
            tokens: stats.len(),
            ppl0: (a / n).exp(),
            ppl1: (b / n).exp(),
            mean_kld: k / n,
            top1_pct: 100.0 * agree as f64 / n,
        })
    }

    /// The one-line summary `fidelity: <T> tokens, perplexity <p0> -> <p1>, mean KLD <k>,
    /// top-1 agreement <a> %`.
    pub fn line(&self) -> String {
        format!(
            "fidelity: {} tokens, perplexity {:.4} -> {:.4}, mean KLD {:.6}, top-1 agreement {:.2} %",
            self.tokens, self.ppl0, self.ppl1, self.mean_kld, self.top1_pct
        )
    }
}

/// `ln softmax(row)` in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = row.iter().map(|&v| (f64::from(v) - m).exp()).sum::<f64>().ln() + m;
    row.iter().map(|&v| f64::from(v) - lse).collect()
}

/// Compares the logits of two models (`[n, vocab]` each) over one sequence: position `t`
/// predicts `tokens[t + 1]`, so `n - 1` stats.
pub fn compare(logits0: &[f32], logits1: &[f32], tokens: &[u32], vocab: usize) -> Vec<TokenStat> {
    let n = tokens.len();
    (0..n.saturating_sub(1))
        .into_par_iter()
        .map(|t| {
            let r0 = &logits0[t * vocab..][..vocab];
            let r1 = &logits1[t * vocab..][..vocab];
            let (l0, l1) = (log_softmax(r0), log_softmax(r1));
            let next = tokens[t + 1] as usize;
            let kld = l0.iter().zip(&l1).map(|(a, b)| a.exp() * (a - b)).sum::<f64>();
            TokenStat {
                nll0: -l0[next],
                nll1: -l1[next],
                kld,
                top1_agree: argmax(r0) == argmax(r1),
            }
        })
        .collect()
}

/// A [`LinearExec`] that computes every layer with the f32 kernel but substitutes the weights
/// of the layers it holds (e.g. the quantized model's reconstruction), by layer name.
#[derive(Debug, Default)]
pub struct Substitute {
    /// Layer name -> replacement weight, `rows * cols` row-major values.
    pub weights: HashMap<String, Vec<f32>>,
    /// Names of the layers substituted so far (each once, in forward order).
    pub used: Vec<String>,
}

impl LinearExec for Substitute {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        match self.weights.get(layer.name) {
            Some(w) if w.len() == layer.w.len() => {
                if !self.used.iter().any(|u| u == layer.name) {
                    self.used.push(layer.name.to_string());
                }
                F32Linear.apply(&LinearRef { w, ..*layer }, x)
            }
            _ => F32Linear.apply(layer, x),
        }
    }
}

/// Runs the original model and the model with `quantized`'s weights over `tokens`, in
/// consecutive windows of `window` tokens (each window a fresh sequence from position 0; a
/// final window shorter than 2 tokens is dropped), and summarizes. Errors: fewer than 2
/// tokens, a window longer than the context.
pub fn evaluate(
    llama: &crate::Llama,
    tokens: &[u32],
    window: usize,
    quantized: &mut Substitute,
) -> Result<Fidelity, crate::LlmError> {
    let mut stats = Vec::new();
    for chunk in tokens.chunks(window.max(2)).filter(|c| c.len() >= 2) {
        let l0 = llama.forward_with(chunk, &mut F32Linear)?;
        let l1 = llama.forward_with(chunk, quantized)?;
        stats.extend(compare(&l0, &l1, chunk, llama.cfg.vocab));
    }
    Fidelity::summarize(&stats).ok_or_else(|| {
        crate::LlmError::Invalid(format!(
            "{} tokens: at least 2 are needed to score a prediction",
            tokens.len()
        ))
    })
}
