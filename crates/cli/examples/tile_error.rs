//! The error of the dot-product tile's arithmetic (docs/spec.md 6.2, `sop_hw::tile`) on real
//! layers with real activations: every linear layer of minilm, quantized at an engine
//! operating point, against its real inputs (MiniLM forward pass on held-out sentences,
//! rounded to BF16), each output compared with the f64 dot product of the same decoded
//! weights and the same BF16 activations. Only the tile's rule differs between the two
//! (activation alignment, one FP32 rounding per block), so the figures are that rule's
//! error, not the quantizer's.
//!
//! ```text
//! cargo run --release -p sop-cli --example tile_error -- [MODEL] [SENTENCES] [TOKENS_PER_LAYER]
//! ```
//! Defaults: `minilm`, 8 sentences, 32 tokens per layer (the first ones).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rayon::prelude::*;
use sop_calib::{heldout_texts, Encoder, F32Linear, LinearExec, LinearRef};
use sop_cosim::LayerStim;
use sop_formats::point::OperatingPoint;
use sop_formats::Ieee16;
use sop_hw::model::{element_value, scale_value_in};
use sop_hw::tile::{dot_row, ActFormat};
use sop_hw::LaneConfig;
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

/// Records each linear layer's inputs (as BF16 words) while computing it in f32.
struct Recorder {
    tokens: usize,
    inputs: BTreeMap<String, Vec<u32>>,
}

impl LinearExec for Recorder {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        let n = (x.len() / layer.cols).min(self.tokens) * layer.cols;
        self.inputs.insert(
            layer.name.to_string(),
            x[..n].iter().map(|&v| Ieee16::Bf16.encode(v)).collect(),
        );
        F32Linear.apply(layer, x)
    }
}

/// Per layer and point: relative RMS error over all outputs, and the largest error per
/// output relative to `sum_i |w_i x_i|`.
struct Row {
    layer: String,
    outputs: usize,
    rel_rms: f64,
    max_rel_abs: f64,
}

fn measure(cfg: &LaneConfig, stim: &LayerStim, x: &[u32]) -> (f64, f64, f64, usize) {
    let (rows, cols, block) = (stim.rows, stim.cols, stim.block);
    let bpr = cols.div_ceil(block);
    let scale_fmt = stim.tables.mode.map_or(cfg.scale, |m| m.scale);
    let per_row: Vec<(f64, f64, f64)> = (0..rows)
        .into_par_iter()
        .map(|r| {
            let codes: Vec<u32> = stim.codes[r * cols..(r + 1) * cols].iter().map(|&c| c as u32).collect();
            let blocks: Vec<(u8, bool)> = (0..bpr)
                .map(|b| (stim.scales[r * bpr + b], stim.sel[r * bpr + b]))
                .collect();
            // Weights exactly as decoded (element x block scale), in f64.
            let w: Vec<f64> = (0..cols)
                .map(|i| {
                    let (s, sel) = blocks[i / block];
                    element_value(cfg, &stim.tables, sel, codes[i]).expect("finite element")
                        * scale_value_in(scale_fmt, s)
                })
                .collect();
            let (mut se, mut sr, mut worst) = (0f64, 0f64, 0f64);
            for xt in x.chunks_exact(cols) {
                let got = dot_row(cfg, &stim.tables, ActFormat::Bf16, xt, &codes, &blocks, block) as f64;
                let (mut want, mut mag) = (0f64, 0f64);
                for (wi, &xi) in w.iter().zip(xt) {
                    let p = wi * ActFormat::Bf16.value(xi);
                    want += p;
                    mag += p.abs();
                }
                let d = got - want;
                se += d * d;
                sr += want * want;
                if mag > 0.0 {
                    worst = worst.max(d.abs() / mag);
                }
            }
            (se, sr, worst)
        })
        .collect();
    let (se, sr, worst) = per_row
        .iter()
        .fold((0.0, 0.0, 0f64), |a, b| (a.0 + b.0, a.1 + b.1, a.2.max(b.2)));
    (se, sr, worst, rows * (x.len() / cols))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map_or("minilm", String::as_str);
    let sentences: usize = args.get(1).map_or(Ok(8), |s| s.parse()).context("SENTENCES")?;
    let tokens: usize = args.get(2).map_or(Ok(32), |s| s.parse()).context("TOKENS_PER_LAYER")?;
    let path = sop_model::resolve(model)?;
    let enc = Encoder::load(&path, 128)?;
    let texts: Vec<String> = heldout_texts().into_iter().take(sentences).collect();
    let seqs = enc.encode(&texts)?;
    let mut rec = Recorder {
        tokens,
        inputs: BTreeMap::new(),
    };
    enc.bert().forward_with(&seqs, &mut rec)?;
    let weights = sop_model::Model::open(&path)?;
    let cfg = sop_hw::default_configs()
        .into_iter()
        .find(|c| c.engine && c.lut.hif().is_some())
        .context("a HIF engine")?;
    println!(
        "tile rule error: {model}, {} held-out sentences, up to {tokens} tokens per layer, BF16 activations, {}",
        texts.len(),
        cfg.name
    );
    for point in ["NF4+DD4sUE4M4b16", "E2M3sUE4M4b16"] {
        let p: OperatingPoint = point.parse()?;
        let q = Quantizer::new(p, QuantOptions::default())?;
        let mut rows = Vec::new();
        let (mut tse, mut tsr, mut tworst) = (0f64, 0f64, 0f64);
        for (name, x) in &rec.inputs {
            let w = weights.load_f32(name)?;
            let ql = q.quantize(
                LayerRef {
                    name: &w.name,
                    rows: w.rows,
                    cols: w.cols,
                    data: &w.data,
                },
                None,
            )?;
            let stim = LayerStim::from_quantized(&ql, &cfg)?;
            let (se, sr, worst, n) = measure(&cfg, &stim, x);
            tse += se;
            tsr += sr;
            tworst = tworst.max(worst);
            rows.push(Row {
                layer: name.clone(),
                outputs: n,
                rel_rms: (se / sr).sqrt(),
                max_rel_abs: worst,
            });
        }
        println!(
            "\n{point}: relative RMS error {:.3e}, largest |error| / sum|w x| {:.3e}",
            (tse / tsr).sqrt(),
            tworst
        );
        println!("| layer | outputs | relative RMS error | max abs error / sum abs w x |");
        println!("|---|--:|--:|--:|");
        for r in rows {
            println!(
                "| `{}` | {} | {:.3e} | {:.3e} |",
                r.layer, r.outputs, r.rel_rms, r.max_rel_abs
            );
        }
    }
    Ok(())
}
