//! `sop gemv`: real quantized layers times real activations through the Verilated
//! dot-product tile (`rtl-out/sop_tile_hif8_bf16.v`), every output checked against the
//! golden model; with `--forward`, the whole MiniLM forward pass with every linear layer
//! computed by the tile.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sop_calib::{heldout_texts, Encoder, F32Linear, LinearExec, LinearRef};
use sop_cosim::gemv::{self, GemvSummary, GemvTile};
use sop_cosim::LayerStim;
use sop_formats::Ieee16;
use sop_quantize::{LayerRef, QuantOptions, QuantizedLayer, Quantizer};

/// Multiply real quantized layers by real activations on the Verilated dot-product tile.
///
/// The MiniLM forward pass over held-out sentences (not the calibration text) supplies every
/// linear layer's real input vectors, rounded to BF16. Each selected layer, quantized at the
/// decode engine's default point (or as stored in --quantized), streams through the
/// Verilated tile (4 rows, one weight per row per cycle, one FP32 rounding per block; see
/// docs/spec.md 6.2), and every output is compared bit for bit with the golden model. Ends
/// with `gemv: <L> layers, <T> tokens, <D> dot products, <K> mismatches, <R> M MAC/s` and
/// exits non-zero when K > 0.
///
/// With --forward the whole forward pass runs with every linear layer's output taken from
/// the tile (times the tensor scale, plus the bias), and the output embeddings are compared
/// with the unquantized f32 model's: `model: output-embedding cosine hardware <a>,
/// software-quantized <b>`.
#[derive(Args, Debug)]
pub struct GemvArgs {
    /// The model: `minilm` (built in, fetched and cached) or a BERT safetensors file or
    /// Hugging Face directory with its tokenizer.
    #[arg(long, default_value = "minilm")]
    model: String,
    /// A quantized model written by `sop quantize`: each layer streams exactly as stored
    /// (its option must be one the decode engine takes, without sparse corrections).
    #[arg(long, value_name = "DIR")]
    quantized: Option<PathBuf>,
    /// Only the layers whose names match PATTERN (a regular expression, or a substring).
    #[arg(long, value_name = "PATTERN")]
    layers: Option<String>,
    /// Held-out sentences whose forward pass supplies the activations.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    sentences: u32,
    /// Activation vectors (tokens) per layer: the first T of the forward pass.
    #[arg(long, value_name = "T", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    tokens: u32,
    /// Longest token sequence per sentence (longer ones are truncated).
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(3..=512))]
    max_seq_len: u32,
    /// Run the whole forward pass through the tile and report output-embedding cosines.
    #[arg(long)]
    forward: bool,
    /// Write a JUnit XML report (one test case per layer).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// On a mismatch, replay the first failing job on the traced tile and write its VCD.
    #[arg(long, value_name = "FILE")]
    vcd: Option<PathBuf>,
    /// Write the per-layer results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Records each linear layer's first `tokens` input vectors as BF16 words while computing it
/// in f32.
struct Recorder {
    tokens: usize,
    inputs: BTreeMap<String, Vec<Vec<u16>>>,
    order: Vec<String>,
}

fn bf16(x: &[f32]) -> Vec<u16> {
    x.iter().map(|&v| Ieee16::Bf16.encode(v) as u16).collect()
}

impl LinearExec for Recorder {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        let v: Vec<Vec<u16>> = x.chunks_exact(layer.cols).take(self.tokens).map(bf16).collect();
        if !self.inputs.contains_key(layer.name) {
            self.order.push(layer.name.to_string());
        }
        self.inputs.insert(layer.name.to_string(), v);
        F32Linear.apply(layer, x)
    }
}

/// The quantized layers, by name: from the model file, or at the engine's default point.
struct Layers {
    by_name: BTreeMap<String, QuantizedLayer>,
}

impl Layers {
    fn stim(&self, name: &str, tile: &GemvTile) -> Result<(LayerStim, &QuantizedLayer)> {
        let ql = self
            .by_name
            .get(name)
            .with_context(|| format!("layer {name} is not in the quantized model"))?;
        // `GemvTile::load` checks that the tile can take it.
        let stim = LayerStim::from_quantized(ql, tile.config())?;
        Ok((stim, ql))
    }
}

fn quantized_layers(args: &GemvArgs, path: &std::path::Path, names: &[String], tile: &GemvTile) -> Result<Layers> {
    let mut by_name = BTreeMap::new();
    if let Some(dir) = &args.quantized {
        let loaded = sop_qmodel::read(dir).with_context(|| format!("--quantized {}", dir.display()))?;
        for (ql, _) in loaded.layers {
            by_name.insert(ql.name.clone(), ql);
        }
        return Ok(Layers { by_name });
    }
    let point = sop_cosim::point_for(tile.config())?;
    let q = Quantizer::new(point, QuantOptions::default())?;
    let weights = sop_model::Model::open(path)?;
    for name in names {
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
        by_name.insert(name.clone(), ql);
    }
    Ok(Layers { by_name })
}

pub fn run(args: GemvArgs) -> Result<()> {
    let t0 = Instant::now();
    let path = sop_model::resolve(&args.model)?;
    let enc = Encoder::load(&path, args.max_seq_len as usize).with_context(|| format!("--model {}", args.model))?;
    let all = heldout_texts();
    let n = args.sentences as usize;
    if n > all.len() {
        bail!("--sentences {n}: the held-out text has {} sentences", all.len());
    }
    let texts: Vec<String> = all.into_iter().take(n).collect();
    let seqs = enc.encode(&texts)?;
    let mut rec = Recorder {
        tokens: args.tokens as usize,
        inputs: BTreeMap::new(),
        order: Vec::new(),
    };
    let reference = enc.bert().embed_with(&seqs, &mut rec)?;
    let names: Vec<String> = match &args.layers {
        None => rec.order.clone(),
        Some(p) => {
            let re = regex::Regex::new(p).ok();
            let chosen: Vec<String> = rec
                .order
                .iter()
                .filter(|n| re.as_ref().map_or_else(|| n.contains(p.as_str()), |r| r.is_match(n)))
                .cloned()
                .collect();
            if chosen.is_empty() {
                bail!(
                    "--layers '{p}' matches none of the {} linear layers on the forward pass",
                    rec.order.len()
                );
            }
            chosen
        }
    };
    let mut tile = GemvTile::new(false)?;
    let needed: Vec<String> = if args.forward { rec.order.clone() } else { names.clone() };
    let layers = quantized_layers(&args, &path, &needed, &tile)?;
    eprintln!(
        "gemv: {} layers of {} on {} (Verilator {}), {} held-out sentences, up to {} tokens per layer, BF16 activations",
        names.len(),
        args.model,
        gemv::GEMV_TILE,
        sop_cosim::ffi::VERILATOR_VERSION,
        n,
        args.tokens
    );
    let mut summary = GemvSummary::default();
    let mut bar = sop_progress::Progress::new(names.len() as u64, "layers");
    let mut first_fail: Option<(LayerStim, Vec<u16>)> = None;
    for name in &names {
        let (stim, ql) = layers.stim(name, &tile)?;
        let xs = &rec.inputs[name];
        let point = ql.point.to_string();
        let r = tile.check_layer(&stim, &point, xs, 10)?;
        bar.println(format!(
            "  {:<44} {}x{} {}: {} tokens, {} dot products, {} mismatches ({:.2} s, {:.1} M MAC/s)",
            r.layer,
            r.shape.0,
            r.shape.1,
            r.point,
            r.tokens,
            r.dot_products,
            r.mismatches,
            r.sim_secs,
            if r.sim_secs > 0.0 {
                r.macs as f64 / r.sim_secs / 1e6
            } else {
                0.0
            }
        ));
        if first_fail.is_none() {
            if let Some(m) = r.first.first() {
                first_fail = Some((stim.clone(), xs[m.token].clone()));
            }
        }
        summary.layers.push(r);
        bar.advance(format_args!("{name}"));
    }
    bar.finish();
    let mut out = std::io::stdout().lock();
    for l in &summary.layers {
        for m in &l.first {
            writeln!(out, "{m}")?;
        }
    }
    if let (Some(path), Some((stim, x))) = (&args.vcd, &first_fail) {
        let p = gemv::write_vcd(stim, x, path)?;
        eprintln!("wrote the waveform of the first failing job to {}", p.display());
    }
    if args.forward {
        let line = forward(&enc, &seqs, &reference, &layers, &mut tile)?;
        writeln!(out, "{line}")?;
    }
    summary.wall_secs = t0.elapsed().as_secs_f64();
    if let Some(f) = &args.junit {
        gemv::write_junit(&summary, f).context("--junit")?;
        eprintln!("wrote {}", f.display());
    }
    if let Some(f) = &args.json {
        sop_atomic_write::write(f, json(&summary).as_bytes()).context("--json")?;
        eprintln!("wrote {}", f.display());
    }
    writeln!(out, "{}", summary.line())?;
    out.flush()?;
    if summary.mismatches() > 0 {
        bail!("{} tile outputs differ from the golden model", summary.mismatches());
    }
    Ok(())
}

fn json(s: &GemvSummary) -> String {
    let layers: Vec<serde_json::Value> = s
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "layer": l.layer,
                "point": l.point,
                "rows": l.shape.0,
                "cols": l.shape.1,
                "tokens": l.tokens,
                "dot_products": l.dot_products,
                "macs": l.macs,
                "mismatches": l.mismatches,
                "cycles": l.cycles,
                "sim_secs": l.sim_secs,
            })
        })
        .collect();
    let v = serde_json::json!({
        "tile": gemv::GEMV_TILE,
        "layers": layers,
        "mismatches": s.mismatches(),
        "mmacs_per_sec": s.mmacs_per_sec(),
        "summary": s.line(),
    });
    serde_json::to_string_pretty(&v).expect("JSON of plain values") + "\n"
}

/// Every linear layer computed by the Verilated tile: `y = tile(x) * tensor_scale + b`.
struct TileLinear<'a> {
    tile: &'a mut GemvTile,
    layers: &'a Layers,
    err: Option<anyhow::Error>,
    macs: u64,
}

impl LinearExec for TileLinear<'_> {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        let tokens = x.len() / layer.cols;
        let mut y = vec![0f32; tokens * layer.rows];
        if self.err.is_some() {
            return y;
        }
        let r = (|| -> Result<()> {
            let (stim, ql) = self.layers.stim(layer.name, self.tile)?;
            self.tile.load(&stim)?;
            for (t, xt) in x.chunks_exact(layer.cols).enumerate() {
                let (acc, _) = self.tile.apply(&stim, &bf16(xt))?;
                for (o, (a, b)) in y[t * layer.rows..(t + 1) * layer.rows]
                    .iter_mut()
                    .zip(acc.iter().zip(layer.b))
                {
                    *o = f32::from_bits(*a) * ql.tensor_scale + b;
                }
                self.macs += (layer.rows * layer.cols) as u64;
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.err = Some(e.context(format!("layer {}", layer.name)));
        }
        y
    }
}

/// Every linear layer with its software-quantized weights in f32.
struct QuantLinear<'a> {
    layers: &'a Layers,
    err: Option<anyhow::Error>,
}

impl LinearExec for QuantLinear<'_> {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        match self.layers.by_name.get(layer.name) {
            Some(ql) => {
                let w = ql.dequantize();
                F32Linear.apply(&LinearRef { w: &w, ..*layer }, x)
            }
            None => {
                self.err
                    .get_or_insert_with(|| anyhow::anyhow!("layer {} is not quantized", layer.name));
                F32Linear.apply(layer, x)
            }
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

pub(crate) fn mean_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter().zip(b).map(|(x, y)| cosine(x, y)).sum::<f64>() / a.len().max(1) as f64
}

/// The forward pass through the tile and in software, both against the f32 model.
fn forward(
    enc: &Encoder,
    seqs: &[Vec<u32>],
    reference: &[Vec<f32>],
    layers: &Layers,
    tile: &mut GemvTile,
) -> Result<String> {
    let t0 = Instant::now();
    let mut hw = TileLinear {
        tile,
        layers,
        err: None,
        macs: 0,
    };
    let e_hw = enc.bert().embed_with(seqs, &mut hw)?;
    if let Some(e) = hw.err {
        return Err(e.context("--forward through the tile"));
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "forward pass through the tile: {} sentences, {:.1} M MACs in {secs:.1} s",
        seqs.len(),
        hw.macs as f64 / 1e6
    );
    let mut sw = QuantLinear { layers, err: None };
    let e_sw = enc.bert().embed_with(seqs, &mut sw)?;
    if let Some(e) = sw.err {
        return Err(e);
    }
    Ok(format!(
        "model: output-embedding cosine hardware {:.6}, software-quantized {:.6}",
        mean_cosine(&e_hw, reference),
        mean_cosine(&e_sw, reference)
    ))
}
