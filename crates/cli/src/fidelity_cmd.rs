//! `sop fidelity --model M --quantized DIR`: the original and the quantized model over
//! held-out text. Decoder LLMs (Llama family): perplexity of both, mean KL divergence and
//! top-1 agreement on the same tokens. BERT encoders: the output-embedding cosine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sop_calib::{F32Linear, HELDOUT_TEXT};
use sop_llm::fidelity::{evaluate, Fidelity, Substitute};
use sop_llm::{Llama, LlmTokenizer};

/// Decoders: the default window length in tokens (each window a fresh sequence).
pub const DEFAULT_WINDOW: usize = 512;

#[derive(Args)]
pub struct FidelityArgs {
    /// The original model: a GGUF file, a Hugging Face directory, a safetensors file, or an
    /// alias (`smollm2`, `minilm`).
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Directory written by `sop quantize --model M` (or its model.sop.safetensors file).
    #[arg(long)]
    quantized: PathBuf,
    /// Held-out evaluation text (UTF-8). Default: the built-in held-out text (CIA World
    /// Factbook sentences not in the calibration set, public domain).
    #[arg(long, value_name = "FILE")]
    text: Option<PathBuf>,
    /// Tokens of the text to score (decoders), or the token budget of the sentences (encoders).
    #[arg(long, default_value_t = 1024)]
    tokens: usize,
    /// Decoders: window length in tokens; the text is scored in consecutive windows, each a
    /// fresh sequence.
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    window: usize,
    /// The decode hardware that delivers the weights (as for `sop export --hw`). Layers no
    /// configuration decodes use the software reconstruction (named on stderr).
    #[arg(long, value_name = "CONFIGS", default_value = "committed")]
    hw: String,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// True when the model at `path` is a BERT encoder (its `config.json` says `model_type: bert`).
fn is_bert(path: &Path) -> bool {
    let cfg = sop_calib::model_dir(path).join("config.json");
    std::fs::read(&cfg)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("model_type").and_then(|m| m.as_str()) == Some("bert"))
}

/// What [`measure`] compares: the original model, the quantized directory, the text and how
/// much of it, and the hardware that delivers the weights.
pub struct FidelityInput<'a> {
    /// The original model's path (resolved).
    pub path: &'a Path,
    /// The original model, opened.
    pub model: &'a sop_model::Model,
    /// Directory written by `sop quantize` (or its model file).
    pub quantized: &'a Path,
    /// Held-out text file; `None`: the built-in held-out text.
    pub text: Option<&'a Path>,
    /// Decoders: tokens scored; encoders: the token budget of the sentences.
    pub tokens: usize,
    /// Decoders: window length in tokens.
    pub window: usize,
    /// The `--hw` value (as for `sop export --hw`).
    pub hw: &'a str,
}

pub fn run(a: FidelityArgs) -> Result<()> {
    let (path, model) = crate::model_arg::open(&a.model)?;
    let (json, line) = measure(&FidelityInput {
        path: &path,
        model: &model,
        quantized: &a.quantized,
        text: a.text.as_deref(),
        tokens: a.tokens,
        window: a.window,
        hw: &a.hw,
    })?;
    println!("{line}");
    if let Some(file) = &a.json {
        let text = serde_json::to_string_pretty(&json).context("serializing the results")?;
        sop_atomic_write::write(file, (text + "\n").as_bytes()).context("--json")?;
    }
    Ok(())
}

/// Runs the original and the quantized model over the held-out text: the figures as JSON
/// (the `sop fidelity --json` object) and the one-line summary. Notes go to stderr.
pub fn measure(a: &FidelityInput<'_>) -> Result<(serde_json::Value, String)> {
    if a.tokens < 2 {
        bail!("--tokens {}: at least 2 are needed", a.tokens);
    }
    if a.window < 2 {
        bail!("--window {}: at least 2 tokens", a.window);
    }
    let (path, model) = (a.path, a.model);
    let loaded = sop_qmodel::read(a.quantized).with_context(|| format!("--quantized {}", a.quantized.display()))?;
    let hw = crate::quantize_cmd::hardware_configs(a.hw)?.unwrap_or_default();
    let mut weights = HashMap::new();
    let (mut n_hw, mut n_sw) = (0usize, 0usize);
    for (l, o) in &loaded.layers {
        let t = model.tensor(&l.name).with_context(|| {
            format!(
                "layer `{}` of {} is not a tensor of {}: quantized from another model?",
                l.name,
                a.quantized.display(),
                path.display()
            )
        })?;
        if t.shape != [l.rows, l.cols] {
            bail!(
                "layer `{}`: {}x{} in {}, shape {:?} in {}",
                l.name,
                l.rows,
                l.cols,
                a.quantized.display(),
                t.shape,
                path.display()
            );
        }
        let (v, by_hw) = crate::export_cmd::delivered(l, o, &hw, true)?;
        if by_hw {
            n_hw += 1;
        } else {
            n_sw += 1;
        }
        weights.insert(l.name.clone(), v);
    }
    eprintln!("weights: {n_hw} layers as the hardware delivers them, {n_sw} software reconstruction");
    let text = match a.text {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("--text {}", f.display()))?,
        None => HELDOUT_TEXT.to_string(),
    };
    let text_name = a
        .text
        .map_or("built-in held-out text (sop-calib heldout.txt)".to_string(), |f| {
            f.display().to_string()
        });
    let mut sub = Substitute {
        weights,
        used: Vec::new(),
    };
    let t0 = Instant::now();
    let mut json = serde_json::json!({
        "model": path.display().to_string(),
        "source_quantized": model.quantized_source_note(),
        "quantized": a.quantized.display().to_string(),
        "text": text_name,
        "layers_hardware": n_hw,
        "layers_software": n_sw,
    });
    let line = if is_bert(path) {
        let enc = sop_calib::Encoder::load(path, sop_calib::DEFAULT_MAX_SEQ_LEN)?;
        let mut sentences = Vec::new();
        let mut budget = 0usize;
        for s in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let n = enc.encode(&[s.to_string()])?[0].len();
            if budget + n > a.tokens && !sentences.is_empty() {
                break;
            }
            budget += n;
            sentences.push(s.to_string());
        }
        let seqs = enc.encode(&sentences)?;
        let e0 = enc.bert().embed_with(&seqs, &mut F32Linear)?;
        let e1 = enc.bert().embed_with(&seqs, &mut sub)?;
        let cos = crate::gemv_cmd::mean_cosine(&e1, &e0);
        json["sentences"] = sentences.len().into();
        json["tokens"] = budget.into();
        json["embedding_cosine"] = cos.into();
        format!(
            "fidelity: {} sentences ({budget} tokens), output-embedding cosine {cos:.6}",
            sentences.len()
        )
    } else {
        let llama = Llama::load(path)?;
        let tok = LlmTokenizer::load(path, model.gguf_metadata())?;
        let mut ids = tok.encode(&text)?;
        if ids.len() < 2 {
            bail!("{text_name}: {} tokens; at least 2 are needed", ids.len());
        }
        if ids.len() < a.tokens {
            eprintln!(
                "note: the text has {} tokens, fewer than --tokens {}",
                ids.len(),
                a.tokens
            );
        }
        ids.truncate(a.tokens);
        let f: Fidelity = evaluate(&llama, &ids, a.window, &mut sub)?;
        json["tokens"] = f.tokens.into();
        json["window"] = a.window.into();
        json["perplexity_original"] = f.ppl0.into();
        json["perplexity_quantized"] = f.ppl1.into();
        json["mean_kld"] = f.mean_kld.into();
        json["top1_agreement_pct"] = f.top1_pct.into();
        f.line()
    };
    let unused: Vec<&String> = sub.weights.keys().filter(|k| !sub.used.contains(k)).collect();
    if !unused.is_empty() {
        let mut unused: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        unused.sort_unstable();
        bail!(
            "{} quantized layers are not linear layers of the forward pass of {} (e.g. `{}`)",
            unused.len(),
            path.display(),
            unused[0]
        );
    }
    eprintln!("both models evaluated in {:.1} s", t0.elapsed().as_secs_f64());
    Ok((json, line))
}
