//! Calibration of decoder LLMs: per-column `E[x^2]` of every linear layer's real inputs, as
//! llama.cpp's `llama-imatrix` collects them, and the dispatch between this pass and the BERT
//! pass of `sop-calib`.

use std::collections::BTreeMap;
use std::path::Path;

use sop_calib::{Acc, CalibOptions, F32Linear, ImatrixStats, LinearExec, LinearRef, Progress};

use crate::{Llama, LlmError, LlmTokenizer};

/// A [`LinearExec`] that computes every layer with the f32 kernel and adds its inputs to the
/// per-layer sums (keyed by weight name).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Layer name -> running sums of its inputs.
    pub sums: BTreeMap<String, Acc>,
}

impl LinearExec for Recorder {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        self.sums
            .entry(layer.name.to_string())
            .or_insert_with(|| Acc::new(layer.cols))
            .add_rows(x);
        F32Linear.apply(layer, x)
    }
}

/// True when the model at `path` is a decoder this crate runs: a GGUF file, or a directory /
/// safetensors file whose `config.json` does not say `model_type: bert`.
pub fn is_decoder(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let cfg = sop_calib::model_dir(path).join("config.json");
    std::fs::read(&cfg)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("model_type").and_then(|m| m.as_str()).map(|m| m != "bert"))
        .unwrap_or(false)
}

/// Calibrates the decoder at `model_path` on `texts` (the first `opts.max_sentences` of them):
/// they are joined by newlines, tokenized, truncated to `opts.max_tokens`, and cut into consecutive chunks of
/// `opts.max_seq_len` tokens (a last chunk shorter than 2 tokens is dropped), each run as a
/// fresh sequence, like llama.cpp's `llama-imatrix` chunks. Every linear layer's input
/// columns are summed over all tokens in order (f64, rounded to f32 at the end like the BERT
/// calibration), so the result does not depend on the thread count. Layers are named as
/// llama.cpp names them (`blk.0.attn_q.weight`): GGUF names as they are, Hugging Face names
/// mapped by [`sop_calib::hf_to_gguf`].
pub fn calibrate_llm(
    model_path: &Path,
    texts: &[String],
    opts: &CalibOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImatrixStats, LlmError> {
    let texts = &texts[..opts.max_sentences.unwrap_or(usize::MAX).min(texts.len())];
    if texts.is_empty() {
        return Err(LlmError::Invalid("no calibration text (0 sentences)".into()));
    }
    if opts.max_seq_len < 2 {
        return Err(LlmError::Invalid(format!(
            "chunk length {} < 2 tokens",
            opts.max_seq_len
        )));
    }
    let model = sop_model::Model::open(model_path)?;
    let llama = Llama::load(model_path)?;
    let tok = LlmTokenizer::load(model_path, model.gguf_metadata())?;
    let mut ids = tok.encode(&texts.join("\n"))?;
    if let Some(max) = opts.max_tokens {
        ids.truncate(max);
    }
    let chunk = opts.max_seq_len.min(llama.cfg.context);
    let chunks: Vec<&[u32]> = ids.chunks(chunk).filter(|c| c.len() >= 2).collect();
    if chunks.is_empty() {
        return Err(LlmError::Invalid(format!(
            "the calibration text has {} tokens; at least 2 are needed",
            ids.len()
        )));
    }
    let pool = match opts.threads {
        None => None,
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| LlmError::Invalid(format!("cannot start {n} threads: {e}")))?,
        ),
    };
    let mut rec = Recorder::default();
    let mut tokens = 0u64;
    for (i, c) in chunks.iter().enumerate() {
        let mut run = || llama.forward_with(c, &mut rec).map(drop);
        match &pool {
            Some(p) => p.install(run)?,
            None => run()?,
        }
        tokens += c.len() as u64;
        progress(&Progress {
            sentences_done: i + 1,
            sentences_total: chunks.len(),
            tokens_done: tokens,
        });
    }
    let sums = rec
        .sums
        .into_iter()
        .map(|(name, acc)| (sop_calib::hf_to_gguf(&name).unwrap_or(name), acc));
    Ok(ImatrixStats::from_sums(sums, &opts.dataset, chunks.len(), chunk))
}

/// Calibrates any model with a forward pass: decoders ([`is_decoder`]) with
/// [`calibrate_llm`], BERT encoders with [`sop_calib::calibrate`].
pub fn calibrate_any(
    model_path: &Path,
    texts: &[String],
    opts: &CalibOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImatrixStats, LlmError> {
    if is_decoder(model_path) {
        calibrate_llm(model_path, texts, opts, progress)
    } else {
        sop_calib::calibrate(model_path, texts, opts, progress).map_err(LlmError::from)
    }
}
