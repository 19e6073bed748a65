//! The calibration run: tokenize the text set, run the encoder, record the statistics.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

use crate::bert::{model_dir, Bert};
use crate::imatrix::{ImatrixFormat, ImatrixStats, LayerStats};
use crate::CalibError;

/// The built-in calibration text: 520 sentences from the "Background" sections of the CIA World
/// Factbook country profiles (public domain), one per line. See `crates/calib/data/README.md`.
pub const BUILTIN_TEXT: &str = include_str!("../data/calibration.txt");

/// The data-set name recorded (GGUF `imatrix.datasets`) for the built-in text.
pub const BUILTIN_DATASET: &str = "sop-calib:builtin/factbook-backgrounds (CIA World Factbook, public domain)";

/// Default maximum sequence length in tokens, as sentence-transformers uses for
/// all-MiniLM-L6-v2 (`max_seq_length` 256); longer sentences are truncated.
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// The built-in calibration sentences.
pub fn builtin_texts() -> Vec<String> {
    split_lines(BUILTIN_TEXT)
}

/// Held-out evaluation text: 477 sentences of the same source as [`BUILTIN_TEXT`] that the
/// calibration set does not contain (the next two qualifying sentences of each profile;
/// `crates/calib/data/README.md`).
pub const HELDOUT_TEXT: &str = include_str!("../data/heldout.txt");

/// The held-out evaluation sentences ([`HELDOUT_TEXT`]), for measurements on real
/// activations that must not reuse the calibration inputs.
pub fn heldout_texts() -> Vec<String> {
    split_lines(HELDOUT_TEXT)
}

fn split_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads a calibration text file: UTF-8, one text (sentence or paragraph) per line; blank
/// lines are skipped and surrounding whitespace is trimmed.
pub fn read_texts(path: &Path) -> Result<Vec<String>, CalibError> {
    let bytes = std::fs::read(path).map_err(|e| CalibError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| CalibError::Format {
        path: path.to_path_buf(),
        reason: format!("calibration text is not UTF-8 (byte {})", e.utf8_error().valid_up_to()),
    })?;
    let v = split_lines(&text);
    if v.is_empty() {
        return Err(CalibError::Format {
            path: path.to_path_buf(),
            reason: "calibration text file has no non-blank line".into(),
        });
    }
    Ok(v)
}

/// Options of [`calibrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibOptions {
    /// Use only the first N texts (all when `None`).
    pub max_sentences: Option<usize>,
    /// Maximum tokens per text including `[CLS]` and `[SEP]`; longer texts are truncated
    /// (default [`DEFAULT_MAX_SEQ_LEN`]; capped by the model's position embeddings).
    pub max_seq_len: usize,
    /// Tokens per forward batch (texts are packed without padding). Affects speed and memory
    /// only, never the result.
    pub batch_tokens: usize,
    /// Worker threads (`None`: rayon's global pool, i.e. `RAYON_NUM_THREADS` or all cores).
    /// Affects speed only, never the result.
    pub threads: Option<usize>,
    /// Data-set name recorded in the statistics (GGUF `imatrix.datasets`).
    pub dataset: String,
    /// Decoder LLMs only (`sop_llm::calibrate_llm`): use at most this many tokens of the
    /// joined text (default [`DEFAULT_LLM_TOKENS`]; `None`: all). BERT calibration ignores it.
    pub max_tokens: Option<usize>,
}

/// Default token budget of a decoder calibration: 16 chunks of 512 tokens (about a minute
/// for SmolLM2-135M on two cores).
pub const DEFAULT_LLM_TOKENS: usize = 8192;

impl Default for CalibOptions {
    fn default() -> Self {
        CalibOptions {
            max_sentences: None,
            max_seq_len: DEFAULT_MAX_SEQ_LEN,
            batch_tokens: 2048,
            threads: None,
            dataset: BUILTIN_DATASET.to_string(),
            max_tokens: Some(DEFAULT_LLM_TOKENS),
        }
    }
}

/// Progress report passed to the callback of [`calibrate`] after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Texts processed so far.
    pub sentences_done: usize,
    /// Texts to process in total.
    pub sentences_total: usize,
    /// Tokens processed so far.
    pub tokens_done: u64,
}

/// A BERT encoder with its tokenizer: turns texts into token ids and sentence embeddings.
pub struct Encoder {
    /// The encoder.
    pub bert: Bert,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    max_seq_len: usize,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("bert", &self.bert.cfg)
            .field("tokenizer", &self.tokenizer_path)
            .field("max_seq_len", &self.max_seq_len)
            .finish()
    }
}

impl Encoder {
    /// Loads the model at `model_path` (a `.safetensors` file or a model directory) and the
    /// `tokenizer.json` beside it. Padding configured in `tokenizer.json` is switched off and
    /// truncation set to `max_seq_len` tokens (at most the model's position count).
    pub fn load(model_path: &Path, max_seq_len: usize) -> Result<Self, CalibError> {
        if max_seq_len < 2 {
            return Err(CalibError::Invalid(format!("max_seq_len {max_seq_len} < 2")));
        }
        let bert = Bert::load(model_path)?;
        let max_seq_len = max_seq_len.min(bert.cfg.max_positions);
        let tokenizer_path = model_dir(model_path).join("tokenizer.json");
        let tok_err = |reason: String| CalibError::Tokenizer {
            path: tokenizer_path.clone(),
            reason,
        };
        if !tokenizer_path.is_file() {
            return Err(tok_err(
                "not found (the model directory must hold the Hugging Face tokenizer.json)".into(),
            ));
        }
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_len,
                ..Default::default()
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        Ok(Encoder {
            bert,
            tokenizer,
            tokenizer_path,
            max_seq_len,
        })
    }

    /// The effective maximum sequence length.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Token ids of each text, with `[CLS]` and `[SEP]`, truncated to the maximum length.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, CalibError> {
        texts
            .iter()
            .map(|t| {
                self.tokenizer
                    .encode(t.as_str(), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| CalibError::Tokenizer {
                        path: self.tokenizer_path.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// Mean-pooled, L2-normalized sentence embeddings of `texts` (what sentence-transformers
    /// returns for all-MiniLM-L6-v2).
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, CalibError> {
        self.bert.embed(&self.encode(texts)?)
    }

    /// The encoder (for [`Bert::forward_with`]: its linear layers computed by other
    /// arithmetic, or their real inputs recorded).
    pub fn bert(&self) -> &Bert {
        &self.bert
    }
}

/// Collects real activation statistics for every linear layer of the BERT encoder at
/// `model_path` by running it on `texts`.
///
/// For each linear layer (`query`, `key`, `value`, `attention.output.dense`,
/// `intermediate.dense`, `output.dense` of every block, and `pooler.dense`), records per input
/// column the sum of `x^2` and of `x` over all tokens of all texts (no padding exists: texts
/// are packed), and the token count; the pooler sees only each text's `[CLS]` state, so its
/// count is the number of texts. Sums are accumulated in f64 in a fixed order (texts in order,
/// tokens in order) and finally rounded to f32 precision, the precision of the GGUF file, so
/// that [`ImatrixStats::write`] followed by [`ImatrixStats::read`] gives back exactly these
/// values. The result does not depend on the thread count or the batch size.
///
/// `progress` is called after every batch.
pub fn calibrate(
    model_path: &Path,
    texts: &[String],
    opts: &CalibOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImatrixStats, CalibError> {
    if opts.batch_tokens == 0 {
        return Err(CalibError::Invalid("batch_tokens must be > 0".into()));
    }
    let texts = &texts[..opts.max_sentences.unwrap_or(usize::MAX).min(texts.len())];
    if texts.is_empty() {
        return Err(CalibError::Invalid("no calibration text (0 sentences)".into()));
    }
    let pool = match opts.threads {
        None => None,
        Some(0) => return Err(CalibError::Invalid("threads must be > 0".into())),
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| CalibError::Invalid(format!("cannot start {n} threads: {e}")))?,
        ),
    };
    let enc = Encoder::load(model_path, opts.max_seq_len)?;
    let seqs = enc.encode(texts)?;
    let mut collector = enc.bert.new_collector();
    let mut done = 0usize;
    let mut tokens = 0u64;
    while done < seqs.len() {
        let mut end = done;
        let mut batch_len = 0usize;
        while end < seqs.len() && (end == done || batch_len + seqs[end].len() <= opts.batch_tokens) {
            batch_len += seqs[end].len();
            end += 1;
        }
        let batch = &seqs[done..end];
        let mut run = || enc.bert.forward(batch, Some(&mut collector)).map(drop);
        match &pool {
            Some(p) => p.install(run)?,
            None => run()?,
        }
        done = end;
        tokens += batch_len as u64;
        progress(&Progress {
            sentences_done: done,
            sentences_total: seqs.len(),
            tokens_done: tokens,
        });
    }
    Ok(ImatrixStats::from_sums(
        enc.bert.collected(collector),
        &opts.dataset,
        seqs.len(),
        enc.max_seq_len(),
    ))
}

impl ImatrixStats {
    /// The statistics of a calibration run from its per-layer sums (layer name, sums): each
    /// sum rounded to f32 precision, the precision of the GGUF file, so that
    /// [`ImatrixStats::write`] followed by [`ImatrixStats::read`] gives back exactly these
    /// values; `chunks` sequences of at most `chunk_size` tokens from data set `dataset`.
    pub fn from_sums(
        sums: impl IntoIterator<Item = (String, crate::Acc)>,
        dataset: &str,
        chunks: usize,
        chunk_size: usize,
    ) -> ImatrixStats {
        let round = |v: &[f64]| v.iter().map(|&x| f64::from(x as f32)).collect::<Vec<f64>>();
        let per_layer = sums
            .into_iter()
            .map(|(name, acc)| {
                let s = LayerStats {
                    sum_x2: round(&acc.sum_x2),
                    sum_x: Some(round(&acc.sum_x)),
                    count: acc.count,
                };
                (name, s)
            })
            .collect();
        ImatrixStats {
            per_layer,
            datasets: vec![dataset.to_string()],
            chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
            chunk_size: u32::try_from(chunk_size).unwrap_or(u32::MAX),
            source: None,
            format: ImatrixFormat::Memory,
        }
    }
}
