//! `sop calibrate`: real activation statistics of a model on real text, written as a
//! llama.cpp importance matrix (imatrix.gguf).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Model: `minilm`, `smollm2`, a GGUF file of a Llama-family model, or a .safetensors file /
    /// Hugging Face model directory of a BERT encoder or a Llama-family decoder (config.json
    /// and tokenizer.json beside the weights).
    #[arg(long)]
    model: String,
    /// Output file: importance matrix in llama.cpp's GGUF layout (written atomically).
    #[arg(long)]
    out: PathBuf,
    /// Calibration text, UTF-8, one sentence per line [default: the built-in 520 sentences from
    /// the CIA World Factbook, public domain].
    #[arg(long)]
    text: Option<PathBuf>,
    /// Use only the first N sentences.
    #[arg(long)]
    max_sentences: Option<usize>,
    /// Encoders: maximum tokens per sentence including [CLS]/[SEP]; longer sentences are
    /// truncated. Decoders: the text is one token stream cut into chunks of this many tokens.
    #[arg(long, default_value_t = sop_calib::DEFAULT_MAX_SEQ_LEN)]
    max_seq_len: usize,
    /// Decoders: use at most this many tokens of the text (0: all of it).
    #[arg(long, default_value_t = sop_calib::DEFAULT_LLM_TOKENS)]
    max_tokens: usize,
}

pub fn run(a: CalibrateArgs) -> Result<()> {
    let path = sop_model::resolve(&a.model).with_context(|| format!("model '{}'", a.model))?;
    let (texts, dataset) = match &a.text {
        Some(p) => (sop_calib::read_texts(p)?, p.display().to_string()),
        None => (sop_calib::builtin_texts(), sop_calib::BUILTIN_DATASET.to_string()),
    };
    let opts = sop_calib::CalibOptions {
        max_sentences: a.max_sentences,
        max_seq_len: a.max_seq_len,
        max_tokens: (a.max_tokens > 0).then_some(a.max_tokens),
        dataset,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let unit = if sop_llm::is_decoder(&path) {
        "chunks"
    } else {
        "sentences"
    };
    let stats = sop_llm::calibrate_any(&path, &texts, &opts, &mut |p| {
        eprint!(
            "\rcalibrating: {}/{} {unit}, {} tokens",
            p.sentences_done, p.sentences_total, p.tokens_done
        )
    })?;
    eprintln!();
    stats.write(&a.out)?;
    let tokens = stats.per_layer.values().map(|s| s.count).max().unwrap_or(0);
    eprintln!(
        "wrote {}: {} layers, {} {unit}, {} tokens, {:.1} s",
        a.out.display(),
        stats.len(),
        stats.chunks,
        tokens,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// For `sop eval --imatrix FILE`: per-layer column weights, uniform where the file has none.
pub fn column_weights_for(
    stats: Option<&sop_calib::ImatrixStats>,
    layer: &str,
    cols: usize,
) -> Result<(Vec<f32>, bool)> {
    match stats.map(|s| s.column_weights(layer, cols)).transpose()?.flatten() {
        Some(a) => Ok((a, true)),
        None => Ok((vec![1.0; cols], false)),
    }
}

/// For `sop eval --imatrix FILE`: read the file and check it against the model, saying what is
/// covered.
pub fn load_imatrix(
    file: &std::path::Path,
    model_path: &std::path::Path,
    model: &sop_model::Model,
) -> Result<sop_calib::ImatrixStats> {
    let stats = sop_calib::ImatrixStats::read(file)?;
    let cov = stats.match_model(model_path, &model.linear_layers())?;
    eprintln!(
        "column weights: E[x^2] from {} for {} of {} layers{}",
        file.display(),
        cov.matched.len(),
        cov.matched.len() + cov.missing.len(),
        if cov.missing.is_empty() {
            String::new()
        } else {
            format!(" (uniform for {} without statistics)", cov.missing.len())
        }
    );
    Ok(stats)
}
