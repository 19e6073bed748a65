//! `sop-search`: the SOP search over a whole model, in bounded memory.
//!
//! Given a model, a menu of options (`POINT[+O<p>%][+R<p>%]`) and an average
//! bits-per-weight target, the search picks one option per linear layer by a multiple-choice
//! knapsack (MCKP, [`sop_quantize::mckp`]) and writes the quantized model with its report.
//! It runs in two passes so that resident memory stays a small multiple of the largest layer
//! whatever the model size:
//!
//! 1. [`evaluate`]: each layer is read from the (memory-mapped) checkpoint, quantized with
//!    every option, and only the exact bits and the error metrics of each option are kept
//!    ([`LayerEval`]); `--sensitivity measured` is measured here, layer by layer.
//! 2. [`choose`]: per-layer [`sensitivities`] and distortions, the exact knapsack and the
//!    greedy one for comparison ([`Plan`]).
//! 3. [`write`]: each layer is read and quantized again with its chosen option (the quantizer
//!    is deterministic: the bits are checked against pass 1) and streamed to the output
//!    through [`sop_qmodel::ModelWriter`] (one file, or shards with an index above
//!    [`Spec::max_shard_bytes`]); then `report.json` and `report.md`.
//!
//! [`run`] chains the three. Nothing here prints: progress and notes go to an [`Observer`].
//! [`split`] runs the passes per shard on many machines, byte-identical to [`run`].

#![warn(missing_docs)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sop_calib::CalibError;
use sop_model::Model;
use sop_quantize::QuantError;

pub mod split;

/// A failed search. Every message names the layer, option, file or flag concerned.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A layer of the model could not be read.
    #[error(transparent)]
    Model(#[from] sop_model::ModelError),
    /// Column weights, or the BERT encoder of measured sensitivities and the embedding check.
    #[error("{context}: {error}")]
    Calib {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: CalibError,
    },
    /// The Llama-family decoder of measured sensitivities.
    #[error("{context}: {error}")]
    Llm {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: sop_llm::LlmError,
    },
    /// A menu option could not quantize a layer.
    #[error("{context}: {error}")]
    Quantize {
        /// The layer and option.
        context: String,
        /// The underlying error.
        error: QuantError,
    },
    /// No assignment of the menu meets the target.
    #[error("--target-bpw: {0}")]
    Target(#[from] sop_quantize::mckp::MckpError),
    /// Reading or writing the quantized model.
    #[error(transparent)]
    Qmodel(#[from] sop_qmodel::QmodelError),
    /// An output file could not be written whole (nothing was left under its name).
    #[error(transparent)]
    Write(#[from] sop_atomic_write::Error),
    /// A file system step failed (`what`, e.g. `--out`).
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// The step.
        what: String,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Inputs that do not fit together: a bad target, an empty menu, a model or calibration
    /// that changed between the passes, the files of a split run that are not of this run or
    /// not complete (see [`split`]).
    #[error("{0}")]
    Input(String),
}

/// Results of this crate.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// [`SearchError::Input`] from a format string.
macro_rules! input {
    ($($fmt:tt)*) => {
        $crate::SearchError::Input(format!($($fmt)*))
    };
}
pub(crate) use input;

/// `return Err(`[`SearchError::Input`]`)` unless `cond`.
macro_rules! ensure_input {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err($crate::input!($($fmt)*));
        }
    };
}
pub(crate) use ensure_input;

/// Maps a calibration error to [`SearchError::Calib`] with `context`.
fn calib(context: impl Into<String>) -> impl FnOnce(CalibError) -> SearchError {
    let context = context.into();
    move |error| SearchError::Calib { context, error }
}

/// Maps an error of the decoder's forward pass to [`SearchError::Llm`] with `context`.
fn llm(context: impl Into<String>) -> impl FnOnce(sop_llm::LlmError) -> SearchError {
    let context = context.into();
    move |error| SearchError::Llm { context, error }
}

/// Maps a quantizer error to [`SearchError::Quantize`] with `context`.
fn quant(context: impl Into<String>) -> impl FnOnce(QuantError) -> SearchError {
    let context = context.into();
    move |error| SearchError::Quantize { context, error }
}

/// Maps an I/O error to [`SearchError::Io`] of `what` on `path`.
fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> SearchError {
    let (what, path) = (what.to_string(), path.to_path_buf());
    move |error| SearchError::Io { what, path, error }
}
use sop_quantize::mckp::{solve_exact, solve_greedy, Choice, Selection, DEFAULT_MAX_UNITS};
use sop_quantize::sparse::{quantize_option, quantize_option_reusing, MenuOption};
use sop_quantize::{metrics, LayerRef, Metrics, QuantOptions, QuantizedLayer, Quantizer};

/// Bits of each layer's f32 tensor scale: counted in a layer's bits, not in the nominal bpw
/// of an operating point (`E2M3sUE4M4` is "6.5 bpw").
pub const TENSOR_SCALE_BITS: u64 = 32;

/// Default largest shard of the output (bytes of tensor data, estimated from the chosen
/// options' bits): 5 GB, as Hugging Face's `max_shard_size`. Smaller models get one file.
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5_000_000_000;

/// How a layer's activation-weighted NMSE is weighted in the knapsack's distortion (see
/// docs/quantizer.md, "Sensitivity").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    /// Every layer counts equally: distortion = aw-NMSE.
    Layer,
    /// Distortion = weights in the layer x aw-NMSE.
    Params,
    /// aw-NMSE x s_i, with s_i the measured output change per unit aw-NMSE when layer i alone
    /// is quantized with its cheapest option: the drop of output-embedding cosine (BERT
    /// encoders) or the mean KL divergence of the next-token distributions in nats
    /// (Llama-family decoders).
    Measured,
    /// aw-NMSE x (1/2 + s_i / (2 mean s)): half per-layer, half measured.
    Hybrid,
}

impl Sensitivity {
    /// The name `--sensitivity` takes and `report.json` records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sensitivity::Layer => "layer",
            Sensitivity::Params => "params",
            Sensitivity::Measured => "measured",
            Sensitivity::Hybrid => "hybrid",
        }
    }

    fn needs_measurement(&self) -> bool {
        matches!(self, Sensitivity::Measured | Sensitivity::Hybrid)
    }
}

impl FromStr for Sensitivity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "layer" => Sensitivity::Layer,
            "params" => Sensitivity::Params,
            "measured" => Sensitivity::Measured,
            "hybrid" => Sensitivity::Hybrid,
            _ => return Err(format!("sensitivity `{s}`: expected layer, params, measured or hybrid")),
        })
    }
}

/// What to search: the model, the layers, the calibration, the menu and the target.
pub struct Spec<'a> {
    /// The opened model (memory-mapped; layers are read one at a time).
    pub model: &'a Model,
    /// Its path (recorded in the output, and the encoder for measured sensitivities).
    pub model_path: &'a Path,
    /// The linear layers to quantize, in output order.
    pub layers: &'a [String],
    /// Per-column activation statistics; `None`: uniform column weights.
    pub stats: Option<&'a sop_calib::ImatrixStats>,
    /// Where the statistics came from (recorded in the output).
    pub calibration: String,
    /// The menu, without repeats.
    pub menu: Vec<MenuOption>,
    /// Quantizer options shared by every menu option.
    pub options: QuantOptions,
    /// Target average bits per weight (total bits / total weights).
    pub target_bpw: f64,
    /// Per-layer sensitivity.
    pub sensitivity: Sensitivity,
    /// Calibration sentences for measured sensitivities (BERT encoders).
    pub sensitivity_sentences: usize,
    /// Calibration tokens for measured sensitivities (decoders: the first this many tokens of
    /// the calibration text, one sequence).
    pub sensitivity_tokens: usize,
    /// Also measure the output-embedding cosine of the quantized encoder (BERT only).
    pub check_embeddings: bool,
    /// The `--hw` value (recorded in the output).
    pub hardware: String,
    /// Largest shard in bytes (see [`DEFAULT_MAX_SHARD_BYTES`]).
    pub max_shard_bytes: u64,
    /// Sampled menu evaluation: a layer of more weights than this has its options' errors
    /// estimated on a sample of about this many weights (whole rows, [`sample_rows`]); bits
    /// stay exact ([`exact_bits`]). 0: every option on the whole layer.
    pub sample_weights: usize,
}

/// The estimator of sampled menu evaluation, as recorded in the report.
pub const SAMPLE_ESTIMATOR: &str = "each option's errors are measured on the layer's sampled rows (m = ceil(S / cols) whole rows at the systematic positions floor((2i + 1) rows / 2m), i < m, plus the row holding the layer's largest magnitude, so that the sample gets the layer's tensor scale), quantized as a layer of its own with the same option (its own tables and sparse selection at the same percentages): the aw-NMSE estimate is the ratio sum a e^2 / sum a w^2 over the sample; bits are exact (from the full shape); the chosen option of every layer is then quantized and measured on the whole layer";

/// The rows a sampled evaluation keeps of a `rows` x `cols` layer for a sample of about
/// `sample_weights` weights: `None` when the layer is not larger than the sample (or sampling
/// is off, 0), else `m = ceil(sample_weights / cols)` rows at the systematic positions
/// `floor((2i + 1) rows / 2m)`, ascending and distinct.
pub fn sample_rows(rows: usize, cols: usize, sample_weights: usize) -> Option<Vec<usize>> {
    if sample_weights == 0 || rows.saturating_mul(cols) <= sample_weights {
        return None;
    }
    let m = sample_weights.div_ceil(cols.max(1)).clamp(1, rows);
    if m == rows {
        return None;
    }
    Some(
        (0..m)
            .map(|i| ((2 * i as u128 + 1) * rows as u128 / (2 * m as u128)) as usize)
            .collect(),
    )
}

/// Exact stored bits of a `rows` x `cols` layer quantized with `opt`, without quantizing:
/// the dense part ([`sop_formats::OperatingPoint::layer_bits`]) plus
/// [`sop_quantize::SPARSE_ENTRY_BITS`] per outlier (`count_for(O%, n)`) and residual
/// (`count_for(R%, n)`, never at an outlier: at most `n - outliers`), as
/// [`quantize_option`] stores them.
pub fn exact_bits(opt: &MenuOption, rows: usize, cols: usize) -> u64 {
    use sop_quantize::sparse::count_for;
    let n = rows * cols;
    let ko = count_for(opt.outlier_pct, n);
    let kr = count_for(opt.residual_pct, n).min(n - ko);
    opt.point.layer_bits(rows as u64, cols as u64) + sop_quantize::SPARSE_ENTRY_BITS * (ko + kr) as u64
}

/// Which pass an [`Observer`] event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Pass 1: every option of every layer.
    Evaluate,
    /// Pass 2: the chosen option of every layer, written out.
    Write,
}

/// Receives progress and notes (the library prints nothing). Every method does nothing by
/// default.
pub trait Observer {
    /// A pass starts over `layers` layers.
    fn pass_start(&mut self, _pass: Pass, _layers: usize) {}
    /// Layer `name` (`rows` x `cols`) starts in `pass`, with `options` options to quantize.
    fn layer_start(&mut self, _pass: Pass, _name: &str, _rows: usize, _cols: usize, _options: usize) {}
    /// The current layer is done.
    fn layer_done(&mut self, _pass: Pass) {}
    /// The pass is done.
    fn pass_done(&mut self, _pass: Pass) {}
    /// Something the user should read (a target raised, a layer without statistics).
    fn note(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// One option of one layer as pass 1 keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptionEval {
    /// Exact stored bits of the layer with this option (tensor scale and sparse entries
    /// included).
    pub bits: u64,
    /// Reconstruction error metrics (activation-weighted ones with the layer's column weights).
    pub metrics: Metrics,
}

/// One layer as pass 1 keeps it: a few numbers per option, no weights.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerEval {
    /// Tensor name.
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Whether the statistics had column weights for this layer.
    pub calibrated: bool,
    /// One entry per menu option, in menu order.
    pub options: Vec<OptionEval>,
    /// Measured sensitivity `s_i` (measured / hybrid only).
    pub measured: Option<f64>,
    /// Rows the options were evaluated on when sampled ([`sample_rows`]); `None`: all rows.
    pub sampled_rows: Option<usize>,
    /// [`layer_digest`] of the weights and column weights pass 1 read: pass 2 checks that it
    /// reads the same (a model or calibration changed in between is an error).
    pub digest: u64,
}

impl LayerEval {
    /// Weights in the layer.
    pub fn weights(&self) -> u64 {
        (self.rows * self.cols) as u64
    }
}

/// The result of pass 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Per layer, in [`Spec::layers`] order.
    pub layers: Vec<LayerEval>,
}

impl Evaluation {
    /// Weights over all layers.
    pub fn total_weights(&self) -> u64 {
        self.layers.iter().map(LayerEval::weights).sum()
    }
}

/// The column weights of a layer (`None`: uniform) and whether the statistics had them.
fn column_weights(spec: &Spec<'_>, name: &str, cols: usize) -> Result<Option<Vec<f32>>> {
    match spec.stats {
        None => Ok(None),
        Some(s) => s
            .column_weights(name, cols)
            .map_err(calib(format!("{name}: column weights"))),
    }
}

/// FNV-1a (64-bit) digest of a layer's f32 weights and, when given, its column weights (their
/// bit patterns, little-endian, in order): what identifies the layer's input between the
/// passes, cheap next to quantizing it.
pub fn layer_digest(data: &[f32], column_weights: Option<&[f32]>) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: &[f32]| {
        for x in v {
            for b in x.to_bits().to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(PRIME);
            }
        }
    };
    eat(data);
    // A marker between the two parts: uniform and all-ones column weights differ.
    eat(&[f32::from_bits(u32::from(column_weights.is_some()))]);
    if let Some(a) = column_weights {
        eat(a);
    }
    h
}

fn quantizers(spec: &Spec<'_>) -> Result<Vec<Quantizer>> {
    ensure_input!(!spec.menu.is_empty(), "the menu is empty");
    spec.menu
        .iter()
        .map(|o| Quantizer::new(o.point, spec.options).map_err(quant(format!("menu option {o}"))))
        .collect()
}

/// The forward pass that measures sensitivities and `check_embeddings`: a BERT encoder with
/// tokenized sentences and their unquantized embeddings, or a Llama-family decoder with
/// calibration tokens, their unquantized logits and every block's unquantized input.
enum Probe {
    Bert {
        // Both models boxed: the variants stay small and alike.
        enc: Box<sop_calib::Encoder>,
        seqs: Vec<Vec<u32>>,
        base: Vec<Vec<f32>>,
    },
    Llama {
        llama: Box<sop_llm::Llama>,
        tokens: Vec<u32>,
        logits: Vec<f32>,
        inputs: Vec<Vec<f32>>,
    },
}

impl Probe {
    /// A BERT encoder on the first `sentences` calibration sentences (all when `None`).
    fn bert(path: &Path, sentences: Option<usize>) -> Result<Self> {
        let mut texts = sop_calib::builtin_texts();
        if let Some(n) = sentences {
            texts.truncate(n.max(1));
        }
        let enc = sop_calib::Encoder::load(path, sop_calib::DEFAULT_MAX_SEQ_LEN).map_err(calib("the BERT encoder"))?;
        let seqs = enc
            .encode(&texts)
            .map_err(calib("tokenizing the calibration sentences"))?;
        let base = enc.bert.embed(&seqs).map_err(calib("the unquantized embeddings"))?;
        Ok(Probe::Bert {
            enc: Box::new(enc),
            seqs,
            base,
        })
    }

    /// The probe of a measured sensitivity: a decoder ([`sop_llm::is_decoder`]) on the first
    /// `tokens` tokens of the calibration text (one sequence, at most the context), a BERT
    /// encoder on the first `sentences` calibration sentences.
    fn for_sensitivity(path: &Path, sentences: usize, tokens: usize) -> Result<Self> {
        if !sop_llm::is_decoder(path) {
            return Probe::bert(path, Some(sentences));
        }
        let llama = sop_llm::Llama::load(path).map_err(llm("the decoder"))?;
        let model = Model::open(path)?;
        let tok = sop_llm::LlmTokenizer::load(path, model.gguf_metadata()).map_err(llm("the decoder's tokenizer"))?;
        let mut ids = tok
            .encode(&sop_calib::builtin_texts().join("\n"))
            .map_err(llm("tokenizing the calibration text"))?;
        ids.truncate(tokens.min(llama.cfg.context));
        ensure_input!(
            ids.len() >= 2,
            "--sensitivity-tokens {tokens}: at least 2 tokens are needed to measure a KL divergence"
        );
        let logits = llama
            .forward_with(&ids, &mut sop_calib::F32Linear)
            .map_err(llm("the unquantized forward pass"))?;
        let inputs = llama
            .block_inputs(&ids)
            .map_err(llm("the unquantized blocks' inputs"))?;
        Ok(Probe::Llama {
            llama: Box::new(llama),
            tokens: ids,
            logits,
            inputs,
        })
    }

    /// How far the output moves when linear layer `name` alone has the weights `w`: the
    /// encoder's `1 -` mean output-embedding cosine, the decoder's mean KL divergence (nats)
    /// of the next-token distributions from the unquantized ones (only the blocks from the
    /// layer's on are run again).
    fn drop_with(&mut self, name: &str, w: &[f32], original: &[f32]) -> Result<f64> {
        match self {
            Probe::Bert { enc, seqs, base } => {
                let ctx = || format!("{name}: setting the encoder's weights");
                enc.bert.set_linear_weight(name, w).map_err(calib(ctx()))?;
                let e = enc.bert.embed(seqs);
                enc.bert.set_linear_weight(name, original).map_err(calib(ctx()))?;
                let e = e.map_err(calib(format!("{name}: the embeddings with the cheapest option")))?;
                Ok(1.0 - mean_cosine(base, &e))
            }
            Probe::Llama {
                llama,
                tokens,
                logits,
                inputs,
            } => {
                let b = llama.block_of(name).ok_or_else(|| {
                    input!(
                        "{name}: not a linear layer of the forward pass of {}",
                        llama.path().display()
                    )
                })?;
                let mut sub = sop_llm::fidelity::Substitute::default();
                sub.weights.insert(name.to_string(), w.to_vec());
                let l1 = llama
                    .forward_from(tokens, b, inputs[b].clone(), &mut sub)
                    .map_err(llm(format!("{name}: the forward pass with the cheapest option")))?;
                ensure_input!(
                    sub.used.len() == 1,
                    "{name}: the forward pass did not use the substitute weights"
                );
                let stats = sop_llm::fidelity::compare(logits, &l1, tokens, llama.cfg.vocab);
                let f = sop_llm::fidelity::Fidelity::summarize(&stats)
                    .ok_or_else(|| input!("{name}: no scored positions for the KL divergence"))?;
                Ok(f.mean_kld)
            }
        }
    }

    /// The encoder with its current (quantized) weights: mean output-embedding cosine
    /// against the unquantized embeddings.
    fn bert_cosine(&self) -> Result<f64> {
        match self {
            Probe::Bert { enc, seqs, base } => {
                let e = enc.bert.embed(seqs).map_err(calib("the quantized embeddings"))?;
                Ok(mean_cosine(base, &e))
            }
            Probe::Llama { .. } => Err(input!("the output-embedding cosine needs a BERT encoder")),
        }
    }

    /// The encoder's linear layer `name` gets the weights `w` (`check_embeddings`).
    fn set_bert_weight(&mut self, name: &str, w: &[f32]) -> Result<()> {
        match self {
            Probe::Bert { enc, .. } => enc
                .bert
                .set_linear_weight(name, w)
                .map_err(calib(format!("{name}: setting the encoder's weights"))),
            Probe::Llama { .. } => Err(input!("the output-embedding cosine needs a BERT encoder")),
        }
    }
}

/// Pass 1: quantizes every layer with every menu option and keeps bits and metrics only.
/// Measured sensitivities (`s_i = (1 - cos_i) / aw-NMSE_i`, `cos_i` the mean output-embedding
/// cosine when only layer `i` is replaced by its cheapest option) are measured here.
pub fn evaluate(spec: &Spec<'_>, obs: &mut dyn Observer) -> Result<Evaluation> {
    let all: Vec<usize> = (0..spec.layers.len()).collect();
    Ok(Evaluation {
        layers: evaluate_layers(spec, &all, obs)?,
    })
}

/// Pass 1 over the layers `spec.layers[i]` for `i` in `indices` (in that order): what
/// [`evaluate`] does for all of them, and one shard of a run split across machines does for
/// its share.
pub fn evaluate_layers(spec: &Spec<'_>, indices: &[usize], obs: &mut dyn Observer) -> Result<Vec<LayerEval>> {
    let quantizers = quantizers(spec)?;
    // Menu indices grouped by point (groups in order of first appearance, menu order within).
    let first = |k: usize| {
        spec.menu
            .iter()
            .position(|o| o.point == spec.menu[k].point)
            .unwrap_or(k)
    };
    let mut order: Vec<usize> = (0..spec.menu.len()).collect();
    order.sort_by_key(|&k| (first(k), k));
    let mut probe = if spec.sensitivity.needs_measurement() {
        Some(
            Probe::for_sensitivity(spec.model_path, spec.sensitivity_sentences, spec.sensitivity_tokens).map_err(
                |e| match e {
                    SearchError::Calib { context, error } => SearchError::Calib {
                        context: format!("--sensitivity measured needs a forward pass (a BERT encoder or a Llama-family decoder): {context}"),
                        error,
                    },
                    e => e,
                },
            )?,
        )
    } else {
        None
    };
    let mut layers = Vec::with_capacity(indices.len());
    obs.pass_start(Pass::Evaluate, indices.len());
    for &i in indices {
        let name = spec
            .layers
            .get(i)
            .ok_or_else(|| input!("layer index {i}: the run has {} layers", spec.layers.len()))?;
        let w = spec.model.load_f32(name)?;
        obs.layer_start(Pass::Evaluate, name, w.rows, w.cols, spec.menu.len());
        let aw = column_weights(spec, name, w.cols)?;
        if spec.stats.is_some() && aw.is_none() {
            obs.note(&format!(
                "  {name}: no statistics in the calibration: uniform column weights"
            ));
        }
        let lr = LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        };
        let mut options: Vec<Option<OptionEval>> = vec![None; spec.menu.len()];
        // Sampled evaluation: the sampled rows as a layer of their own.
        let sample = sample_rows(w.rows, w.cols, spec.sample_weights).map(|mut rs| {
            // The row of the layer's largest magnitude joins the sample: the tensor scale is a
            // function of the absmax, so the sample is quantized at the layer's own scale.
            let top = w
                .data
                .iter()
                .enumerate()
                .fold(
                    (0usize, -1.0f32),
                    |(bi, bv), (i, v)| if v.abs() > bv { (i, v.abs()) } else { (bi, bv) },
                )
                .0
                / w.cols.max(1);
            if let Err(p) = rs.binary_search(&top) {
                rs.insert(p, top);
            }
            rs
        });
        let sub: Option<Vec<f32>> = sample.as_ref().map(|rs| {
            let mut v = Vec::with_capacity(rs.len() * w.cols);
            for &r in rs {
                v.extend_from_slice(w.row(r));
            }
            v
        });
        let lr_eval = match (&sample, &sub) {
            (Some(rs), Some(data)) => LayerRef {
                name: &w.name,
                rows: rs.len(),
                cols: w.cols,
                data,
            },
            _ => lr,
        };
        // The cheapest option (the first in menu order of the lowest bits) and its menu
        // index, for the measurement.
        let mut cheapest: Option<(usize, u64, QuantizedLayer)> = None;
        // Options of one point are evaluated together so that their plain quantization is
        // computed once ([`quantize_option_reusing`]); one cached layer at a time keeps the
        // memory bound.
        let mut base = None;
        for &k in &order {
            let (o, q) = (&spec.menu[k], &quantizers[k]);
            let ql = quantize_option_reusing(q, o, lr_eval, aw.as_deref(), &mut base)
                .map_err(quant(format!("{name}: {o}")))?;
            let m = metrics(lr_eval.data, &ql.dequantize(), w.cols, aw.as_deref());
            let bits = exact_bits(o, w.rows, w.cols);
            if sample.is_none() && bits != ql.bits() {
                return Err(input!(
                    "{name}: {o}: {} bits stored, {bits} computed from the shape",
                    ql.bits()
                ));
            }
            options[k] = Some(OptionEval { bits, metrics: m });
            if probe.is_some() && !cheapest.as_ref().is_some_and(|&(j, b, _)| (b, j) < (bits, k)) {
                cheapest = Some((k, bits, ql));
            }
        }
        drop(base);
        let options: Vec<OptionEval> = options.into_iter().flatten().collect();
        let cheapest = cheapest.map(|(k, _, ql)| (k, ql));
        let measured = match (&mut probe, cheapest) {
            (Some(p), Some((k, c))) => {
                // Sampled: the measurement needs the cheapest option on the whole layer.
                let (c, w_nmse) = if sample.is_some() {
                    let o = &spec.menu[k];
                    let full =
                        quantize_option(&quantizers[k], o, lr, aw.as_deref()).map_err(quant(format!("{name}: {o}")))?;
                    let m = metrics(&w.data, &full.dequantize(), w.cols, aw.as_deref());
                    (full, m.w_nmse)
                } else {
                    (c, options[k].metrics.w_nmse)
                };
                let drop = p.drop_with(&c.name, &c.dequantize(), &w.data)?;
                Some((drop.max(0.0) / w_nmse.max(1e-30)).max(1e-12))
            }
            _ => None,
        };
        layers.push(LayerEval {
            name: name.clone(),
            rows: w.rows,
            cols: w.cols,
            calibrated: aw.is_some(),
            options,
            measured,
            sampled_rows: sample.map(|r| r.len()),
            digest: layer_digest(&w.data, aw.as_deref()),
        });
        obs.layer_done(Pass::Evaluate);
    }
    obs.pass_done(Pass::Evaluate);
    Ok(layers)
}

/// Per-layer sensitivity factors (see [`Sensitivity`]); `measured` / `hybrid` need the
/// measurements of [`evaluate`].
pub fn sensitivities(eval: &Evaluation, sensitivity: Sensitivity) -> Result<Vec<f64>> {
    let measured = || -> Result<Vec<f64>> {
        eval.layers
            .iter()
            .map(|l| {
                l.measured
                    .ok_or_else(|| input!("{}: no measured sensitivity (pass 1 ran without it)", l.name))
            })
            .collect()
    };
    Ok(match sensitivity {
        Sensitivity::Measured => measured()?,
        Sensitivity::Hybrid => {
            let m = measured()?;
            let mean = m.iter().sum::<f64>() / m.len() as f64;
            m.iter().map(|s| 0.5 + 0.5 * s / mean).collect()
        }
        Sensitivity::Params => eval.layers.iter().map(|l| l.weights() as f64).collect(),
        Sensitivity::Layer => vec![1.0; eval.layers.len()],
    })
}

/// MCKP distortion of an option: its activation-weighted NMSE times the layer's sensitivity
/// (non-finite products become a huge finite cost).
pub fn distortion(m: &Metrics, sensitivity: f64) -> f64 {
    let d = sensitivity * m.w_nmse;
    if d.is_finite() {
        d
    } else {
        f64::MAX / 1e6
    }
}

/// The target the knapsack gets: `target` itself, or, when `target` is below the cheapest
/// assignment by no more than the layers' tensor scales (a nominal bpw such as 6.5 for a
/// menu of `E2M3sUE4M4` alone), the cheapest assignment, with a note saying so.
pub fn target_with_tensor_scales(menus: &[Vec<Choice>], weights: u64, target: f64) -> (f64, Option<String>) {
    let lo: u64 = menus.iter().filter_map(|m| m.iter().map(|c| c.bits).min()).sum();
    let w = weights as f64;
    let budget = (target * w).floor();
    let (lo_f, slack) = (lo as f64, (TENSOR_SCALE_BITS * menus.len() as u64) as f64);
    if weights == 0 || budget >= lo_f || budget + slack < lo_f {
        return (target, None);
    }
    // The smallest target whose budget (floor) is exactly the cheapest total.
    let mut used = lo_f / w;
    while (used * w).floor() < lo_f {
        used = f64::from_bits(used.to_bits() + 1);
    }
    let note = format!(
        "note: --target-bpw {target} is below the cheapest assignment ({:.6} bpw) by less than the layers' \
         {TENSOR_SCALE_BITS}-bit tensor scales, which a nominal bpw does not count: using {used:.6} bpw \
         (the cheapest option of every layer)",
        lo as f64 / w
    );
    (used, Some(note))
}

/// The knapsack's decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Menu index of the chosen option, per layer.
    pub choice: Vec<usize>,
    /// The target the knapsack got ([`target_with_tensor_scales`]).
    pub target_used: f64,
    /// The exact (DP) solution.
    pub exact: Selection,
    /// The greedy solution, for comparison.
    pub greedy: Selection,
    /// Greedy distortion over exact distortion, minus 1.
    pub greedy_gap: f64,
}

/// Chooses one option per layer: within each cost level of a layer only the option with the
/// best activation-weighted cosine stays, then the exact knapsack under the target.
pub fn choose(eval: &Evaluation, sensitivity: &[f64], target_bpw: f64, obs: &mut dyn Observer) -> Result<Plan> {
    ensure_input!(
        sensitivity.len() == eval.layers.len(),
        "{} sensitivities for {} layers",
        sensitivity.len(),
        eval.layers.len()
    );
    let mut kept: Vec<Vec<usize>> = Vec::new();
    let mut menus: Vec<Vec<Choice>> = Vec::new();
    for (l, &s_i) in eval.layers.iter().zip(sensitivity) {
        let c = &l.options;
        let mut idx: Vec<usize> = Vec::new();
        for (k, o) in c.iter().enumerate() {
            match idx.iter().position(|&j| c[j].bits == o.bits) {
                Some(p) if c[idx[p]].metrics.w_cosine >= o.metrics.w_cosine => {}
                Some(p) => idx[p] = k,
                None => idx.push(k),
            }
        }
        menus.push(
            idx.iter()
                .map(|&k| Choice {
                    bits: c[k].bits,
                    distortion: distortion(&c[k].metrics, s_i),
                })
                .collect(),
        );
        kept.push(idx);
    }
    let total = eval.total_weights();
    let (target, note) = target_with_tensor_scales(&menus, total, target_bpw);
    if let Some(n) = note {
        obs.note(&n);
    }
    let exact = solve_exact(&menus, total, target, DEFAULT_MAX_UNITS)?;
    let greedy = solve_greedy(&menus, total, target)?;
    let greedy_gap = greedy.distortion / exact.distortion.max(f64::MIN_POSITIVE) - 1.0;
    let choice = kept.iter().zip(&exact.choice).map(|(k, &i)| k[i]).collect();
    Ok(Plan {
        choice,
        target_used: target,
        exact,
        greedy,
        greedy_gap,
    })
}

/// The median of `v` (sorted in place; the mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What [`write`] produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The model files written (one file, or the shards and the index last).
    pub files: Vec<PathBuf>,
    /// Layers written.
    pub layers: usize,
    /// Achieved bits per weight.
    pub achieved_bpw: f64,
    /// Median NMSE of the chosen options.
    pub median_nmse: f64,
    /// Output-embedding cosine against the unquantized encoder (`check_embeddings`).
    pub embedding_cosine: Option<f64>,
    /// The report written as `report.json`.
    pub report: serde_json::Value,
}

/// One layer of pass 2: its chosen option quantized on the whole layer, and what the report
/// says of it. Everything a run split across machines carries from pass 2 to the final merge.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    /// Menu index of the option.
    pub option: usize,
    /// Exact stored bits.
    pub bits: u64,
    /// Stored bits per weight ([`QuantizedLayer::bpw`]).
    pub bpw: f64,
    /// The errors on the whole layer.
    pub metrics: Metrics,
    /// Outlier entries stored.
    pub outliers: usize,
    /// Residual entries stored.
    pub residuals: usize,
}

/// The `extra` metadata every model file of the run carries.
fn file_extra(spec: &Spec<'_>) -> [(&'static str, String); 4] {
    [
        ("model", spec.model_path.display().to_string()),
        ("calibration", spec.calibration.clone()),
        ("target_bpw", spec.target_bpw.to_string()),
        ("hardware", spec.hardware.clone()),
    ]
}

/// The model files of the output: `shard_plan` of the chosen options' sizes, as the number of
/// layers in each file (consecutive layers, in order).
pub fn file_plan(spec: &Spec<'_>, eval: &Evaluation, plan: &Plan) -> Vec<usize> {
    let sizes: Vec<u64> = eval
        .layers
        .iter()
        .zip(&plan.choice)
        .map(|(l, &k)| l.options[k].bits.div_ceil(8))
        .collect();
    sop_qmodel::shard_plan(&sizes, spec.max_shard_bytes)
}

/// Quantizes layer `l` with menu option `k` on the whole layer (pass 2) after checking that
/// its shape and [`layer_digest`] are what pass 1 saw, and that the bits are pass 1's.
fn quantize_chosen(
    spec: &Spec<'_>,
    l: &LayerEval,
    k: usize,
    obs: &mut dyn Observer,
) -> Result<(QuantizedLayer, Chosen)> {
    let opt = spec.menu[k];
    let w = spec.model.load_f32(&l.name)?;
    ensure_input!(
        (w.rows, w.cols) == (l.rows, l.cols),
        "{}: shape {}x{} in pass 2, {}x{} in pass 1",
        l.name,
        w.rows,
        w.cols,
        l.rows,
        l.cols
    );
    obs.layer_start(Pass::Write, &l.name, w.rows, w.cols, 1);
    let aw = column_weights(spec, &l.name, w.cols)?;
    ensure_input!(
        layer_digest(&w.data, aw.as_deref()) == l.digest,
        "{}: the weights or column weights differ from what pass 1 read (digest {:016x}, pass 1 {:016x}): \
         the model or the calibration changed between the passes",
        l.name,
        layer_digest(&w.data, aw.as_deref()),
        l.digest
    );
    let q = Quantizer::new(opt.point, spec.options).map_err(quant(format!("menu option {opt}")))?;
    let lr = LayerRef {
        name: &w.name,
        rows: w.rows,
        cols: w.cols,
        data: &w.data,
    };
    let ql = quantize_option(&q, &opt, lr, aw.as_deref()).map_err(quant(format!("{}: {opt}", l.name)))?;
    let e = &l.options[k];
    if ql.bits() != e.bits {
        return Err(input!(
            "{}: {opt} gave {} bits when written but {} when evaluated: the quantizer is not deterministic",
            l.name,
            ql.bits(),
            e.bits
        ));
    }
    // The chosen option's errors on the whole layer (equal to pass 1's unless sampled).
    let metrics = metrics(&w.data, &ql.dequantize(), w.cols, aw.as_deref());
    let c = Chosen {
        option: k,
        bits: ql.bits(),
        bpw: ql.bpw(),
        metrics,
        outliers: ql.outliers.len(),
        residuals: ql.residuals.len(),
    };
    Ok((ql, c))
}

/// Pass 2: quantizes each layer with its chosen option, streams it into `out` (created if
/// needed; one model file, or shards and an index above [`Spec::max_shard_bytes`]), and writes
/// `report.json` and `report.md`. A layer whose bits or input differ from pass 1 is an error.
pub fn write(spec: &Spec<'_>, eval: &Evaluation, plan: &Plan, out: &Path, obs: &mut dyn Observer) -> Result<Outcome> {
    check_plan(spec, eval, plan)?;
    let mut probe = if spec.check_embeddings {
        Some(Probe::bert(spec.model_path, None)?)
    } else {
        None
    };
    std::fs::create_dir_all(out).map_err(io("--out", out))?;
    let extra = file_extra(spec);
    let mut writer = sop_qmodel::ModelWriter::create(out, file_plan(spec, eval, plan), &extra)?;
    let mut chosen = Vec::with_capacity(eval.layers.len());
    obs.pass_start(Pass::Write, eval.layers.len());
    for (l, &k) in eval.layers.iter().zip(&plan.choice) {
        let (ql, c) = quantize_chosen(spec, l, k, obs)?;
        if let Some(p) = &mut probe {
            p.set_bert_weight(&ql.name, &ql.dequantize())?;
        }
        writer.push(&ql, &spec.menu[k])?;
        chosen.push(c);
        obs.layer_done(Pass::Write);
    }
    let files = writer.finish()?;
    obs.pass_done(Pass::Write);
    let embedding_cosine = probe.map(|p| p.bert_cosine()).transpose()?;
    finish_report(spec, eval, plan, &chosen, embedding_cosine, files, out)
}

/// The plan, the evaluation and the spec agree on the layers.
fn check_plan(spec: &Spec<'_>, eval: &Evaluation, plan: &Plan) -> Result<()> {
    ensure_input!(
        plan.choice.len() == eval.layers.len() && eval.layers.len() == spec.layers.len(),
        "plan for {} layers, evaluation of {}, spec of {}",
        plan.choice.len(),
        eval.layers.len(),
        spec.layers.len()
    );
    Ok(())
}

/// The report of a finished pass 2 (`chosen`: every layer, in order), written as
/// `report.json` and `report.md` into `out`; the outcome with the model `files`.
fn finish_report(
    spec: &Spec<'_>,
    eval: &Evaluation,
    plan: &Plan,
    chosen: &[Chosen],
    embedding_cosine: Option<f64>,
    files: Vec<PathBuf>,
    out: &Path,
) -> Result<Outcome> {
    ensure_input!(
        chosen.len() == eval.layers.len(),
        "{} layers written, {} evaluated",
        chosen.len(),
        eval.layers.len()
    );
    let total_weights = eval.total_weights();
    let sens = sensitivities(eval, spec.sensitivity)?;
    let mut layers_json = Vec::with_capacity(eval.layers.len());
    let mut chosen_nmse = Vec::with_capacity(eval.layers.len());
    let mut true_distortion = 0.0;
    for ((l, c), s_i) in eval.layers.iter().zip(chosen).zip(&sens) {
        let m = &c.metrics;
        chosen_nmse.push(m.nmse);
        let mut j = serde_json::json!({
            "name": l.name, "shape": [l.rows, l.cols], "option": spec.menu[c.option].to_string(),
            "bpw": c.bpw, "bits": c.bits, "nmse": m.nmse, "w_nmse": m.w_nmse,
            "w_cosine": m.w_cosine, "outliers": c.outliers, "residuals": c.residuals,
            "calibrated": l.calibrated,
        });
        if let Some(s) = l.measured {
            j["measured_sensitivity"] = s.into();
        }
        if let Some(r) = l.sampled_rows {
            j["sampled_rows"] = r.into();
            j["w_nmse_estimate"] = l.options[c.option].metrics.w_nmse.into();
        }
        true_distortion += distortion(m, *s_i);
        layers_json.push(j);
    }

    // Baseline medians of every menu option (for the targets).
    let mut baselines = serde_json::Map::new();
    for (k, o) in spec.menu.iter().enumerate() {
        let mut v: Vec<f64> = eval.layers.iter().map(|l| l.options[k].metrics.nmse).collect();
        let bits: u64 = eval.layers.iter().map(|l| l.options[k].bits).sum();
        baselines.insert(
            o.to_string(),
            serde_json::json!({"median_nmse": median(&mut v), "bpw": bits as f64 / total_weights as f64}),
        );
    }
    let med = median(&mut chosen_nmse);
    let (exact, greedy) = (&plan.exact, &plan.greedy);
    // The report is a function of the inputs alone (same bytes at any thread count or
    // machine load): no wall-clock time.
    let mut report = serde_json::json!({
        "model": spec.model_path.display().to_string(),
        // Non-null when the source model was already quantized (a GGUF of Q4_1 tensors, ...):
        // every error figure is then relative to those dequantized weights.
        "source_quantized": spec.model.quantized_source_note(),
        "calibration": spec.calibration,
        "target_bpw": spec.target_bpw,
        "target_bpw_used": plan.target_used,
        "achieved_bpw": exact.bpw(total_weights),
        "total_bits": exact.bits,
        "total_weights": total_weights,
        "budget_bits": exact.budget,
        "median_nmse": med,
        "mckp": {"exact_distortion": exact.distortion, "dp_quantum_bits": exact.quantum,
                 "greedy_distortion": greedy.distortion, "greedy_bpw": greedy.bpw(total_weights),
                 "greedy_gap": plan.greedy_gap,
                 "sensitivity": spec.sensitivity.as_str()},
        "menu_baselines": baselines,
        "output_embedding_cosine": embedding_cosine,
        "layers": layers_json,
    });
    if eval.layers.iter().any(|l| l.sampled_rows.is_some()) {
        report["menu_evaluation"] = serde_json::json!({
            "sample_weights": spec.sample_weights,
            "sampled_layers": eval.layers.iter().filter(|l| l.sampled_rows.is_some()).count(),
            "estimator": SAMPLE_ESTIMATOR,
            "chosen_distortion_measured": true_distortion,
        });
    }
    write_reports(out, &report)?;
    Ok(Outcome {
        files,
        layers: eval.layers.len(),
        achieved_bpw: exact.bpw(total_weights),
        median_nmse: med,
        embedding_cosine,
        report,
    })
}

/// Writes `report` as `report.json` and `report.md` ([`report_md`]) into `out` (atomically;
/// used again by callers that add figures after the search, e.g. `sop quantize --fidelity`).
pub fn write_reports(out: &Path, report: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| input!("report.json: {e}"))? + "\n";
    sop_atomic_write::write(&out.join("report.json"), text.as_bytes())?;
    sop_atomic_write::write(&out.join("report.md"), report_md(report).as_bytes())?;
    Ok(())
}

/// The whole search: [`evaluate`], [`sensitivities`], [`choose`], [`write`]. Returns the
/// outcome and the plan (for the caller's summary).
pub fn run(spec: &Spec<'_>, out: &Path, obs: &mut dyn Observer) -> Result<(Outcome, Plan)> {
    ensure_input!(
        spec.target_bpw.is_finite() && spec.target_bpw > 0.0,
        "--target-bpw {}: must be a positive number",
        spec.target_bpw
    );
    let eval = evaluate(spec, obs)?;
    let sens = sensitivities(&eval, spec.sensitivity)?;
    let plan = choose(&eval, &sens, spec.target_bpw, obs)?;
    let outcome = write(spec, &eval, &plan, out, obs)?;
    Ok((outcome, plan))
}

fn mean_cosine(base: &[Vec<f32>], q: &[Vec<f32>]) -> f64 {
    let cos: f64 = base
        .iter()
        .zip(q)
        .map(|(x, y)| {
            let d: f64 = x.iter().zip(y).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            let nx: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            d / (nx * ny).max(1e-30)
        })
        .sum();
    cos / base.len().max(1) as f64
}

/// `report.md`: the report as a Markdown page.
pub fn report_md(r: &serde_json::Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# SOP quantization report\n");
    let _ = writeln!(s, "- model: `{}`", r["model"].as_str().unwrap_or(""));
    let cal = r["calibration"].as_str().unwrap_or("");
    if cal.starts_with("uniform") {
        let _ = writeln!(
            s,
            "- **calibration: UNIFORM -- no calibration given; column weights are all 1**"
        );
    } else {
        let _ = writeln!(s, "- calibration: {cal}");
    }
    let _ = writeln!(
        s,
        "- target {} bpw, achieved {:.4} bpw ({} bits / {} weights)",
        r["target_bpw"],
        r["achieved_bpw"].as_f64().unwrap_or(0.0),
        r["total_bits"],
        r["total_weights"]
    );
    let _ = writeln!(s, "- median NMSE {:.4e}", r["median_nmse"].as_f64().unwrap_or(0.0));
    let m = &r["mckp"];
    let _ = writeln!(
        s,
        "- MCKP exact distortion {:.6e} (DP quantum {} bits), greedy {:.6e} (gap {:+.3}%)",
        m["exact_distortion"].as_f64().unwrap_or(0.0),
        m["dp_quantum_bits"],
        m["greedy_distortion"].as_f64().unwrap_or(0.0),
        m["greedy_gap"].as_f64().unwrap_or(0.0) * 100.0
    );
    if let Some(c) = r["output_embedding_cosine"].as_f64() {
        let _ = writeln!(s, "- output-embedding cosine vs unquantized: {c:.6}");
    }
    let f = &r["fidelity"];
    if let Some(k) = f["mean_kld"].as_f64() {
        let _ = writeln!(
            s,
            "- fidelity ({} held-out tokens): perplexity {:.4} -> {:.4}, mean KLD {k:.6}, top-1 agreement {:.2} %",
            f["tokens"],
            f["perplexity_original"].as_f64().unwrap_or(0.0),
            f["perplexity_quantized"].as_f64().unwrap_or(0.0),
            f["top1_agreement_pct"].as_f64().unwrap_or(0.0)
        );
    } else if let Some(c) = f["embedding_cosine"].as_f64() {
        let _ = writeln!(
            s,
            "- fidelity ({} held-out sentences): output-embedding cosine {c:.6}",
            f["sentences"]
        );
    }
    let _ = writeln!(
        s,
        "\n| layer | shape | option | bpw | NMSE | aw-NMSE | ACos |\n|---|---|---|---|---|---|---|"
    );
    for l in r["layers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {}x{} | {} | {:.4} | {:.4e} | {:.4e} | {:.6} |",
            l["name"].as_str().unwrap_or(""),
            l["shape"][0],
            l["shape"][1],
            l["option"].as_str().unwrap_or(""),
            l["bpw"].as_f64().unwrap_or(0.0),
            l["nmse"].as_f64().unwrap_or(0.0),
            l["w_nmse"].as_f64().unwrap_or(0.0),
            l["w_cosine"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        s,
        "\n## Menu baselines (every layer at one option)\n\n| option | bpw | median NMSE |\n|---|---|---|"
    );
    if let Some(b) = r["menu_baselines"].as_object() {
        for (k, v) in b {
            let _ = writeln!(
                s,
                "| {k} | {:.4} | {:.4e} |",
                v["bpw"].as_f64().unwrap_or(0.0),
                v["median_nmse"].as_f64().unwrap_or(0.0)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::{Dtype, TensorView};
    use std::collections::HashMap;

    const MENU: &str = "E2M3sUE4M4b32,NF4+DD4sUE4M4b16,E2M1sE4M3b16,E2M3sUE4M4b32+R0.5%";

    /// A safetensors model of three linear layers with deterministic, layer-dependent values
    /// (rows with different scales, one outlier column).
    fn write_model(dir: &Path) -> PathBuf {
        let shapes = [("l.0.weight", 32, 64), ("l.1.weight", 64, 32), ("l.2.weight", 48, 64)];
        let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
            .iter()
            .enumerate()
            .map(|(k, &(n, r, c))| {
                let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
                let data: Vec<u8> = (0..r * c)
                    .flat_map(|i| {
                        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let u = ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                        let row_scale = 1.0 + (i / c) as f64 / r as f64;
                        let outlier = if i % c == 5 { 8.0 } else { 1.0 };
                        ((u * row_scale * outlier * 0.05) as f32).to_le_bytes()
                    })
                    .collect();
                (n.to_string(), vec![r, c], data)
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = bufs
            .iter()
            .map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
            .collect();
        let path = dir.join("m.safetensors");
        std::fs::write(
            &path,
            safetensors::serialize(views, None::<HashMap<String, String>>).unwrap(),
        )
        .unwrap();
        path
    }

    fn spec<'a>(model: &'a Model, path: &'a Path, layers: &'a [String], target: f64) -> Spec<'a> {
        Spec {
            model,
            model_path: path,
            layers,
            stats: None,
            calibration: "uniform: test".into(),
            menu: MENU.split(',').map(|s| s.parse().unwrap()).collect(),
            options: QuantOptions::default(),
            target_bpw: target,
            sensitivity: Sensitivity::Layer,
            sensitivity_sentences: 8,
            sensitivity_tokens: 16,
            check_embeddings: false,
            hardware: "none".into(),
            max_shard_bytes: DEFAULT_MAX_SHARD_BYTES,
            sample_weights: 0,
        }
    }

    fn open(dir: &Path) -> (PathBuf, Model, Vec<String>) {
        let path = write_model(dir);
        let model = Model::open(&path).unwrap();
        let layers: Vec<String> = model.linear_layers().into_iter().map(|t| t.name).collect();
        assert_eq!(layers.len(), 3);
        (path, model, layers)
    }

    /// Quantizes a layer directly, outside the pipeline.
    fn direct(model: &Model, name: &str, opt: &MenuOption) -> QuantizedLayer {
        let w = model.load_f32(name).unwrap();
        let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
        let lr = LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        };
        quantize_option(&q, opt, lr, None).unwrap()
    }

    #[test]
    fn evaluation_keeps_exact_bits_and_metrics() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        let s = spec(&model, &path, &layers, 5.0);
        let e = evaluate(&s, &mut Quiet).unwrap();
        assert_eq!(e.layers.len(), 3);
        for l in &e.layers {
            assert_eq!(l.options.len(), s.menu.len());
            for (o, opt) in l.options.iter().zip(&s.menu) {
                let ql = direct(&model, &l.name, opt);
                let w = model.load_f32(&l.name).unwrap();
                assert_eq!(o.bits, ql.bits(), "{} {opt}", l.name);
                assert_eq!(o.metrics, metrics(&w.data, &ql.dequantize(), w.cols, None));
            }
        }
        assert_eq!(e.total_weights(), 32 * 64 + 64 * 32 + 48 * 64);
    }

    #[test]
    fn written_model_is_the_chosen_options_quantized_directly() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        let s = spec(&model, &path, &layers, 5.5);
        let out = d.path().join("q");
        let (o, plan) = run(&s, &out, &mut Quiet).unwrap();
        assert!(o.achieved_bpw <= 5.5 && o.achieved_bpw > 4.5, "{}", o.achieved_bpw);
        // At least two different options chosen: the knapsack did trade.
        let mut c = plan.choice.clone();
        c.dedup();
        assert!(c.len() >= 2, "{:?}", plan.choice);
        let expect: Vec<(QuantizedLayer, MenuOption)> = layers
            .iter()
            .zip(&plan.choice)
            .map(|(n, &k)| (direct(&model, n, &s.menu[k]), s.menu[k]))
            .collect();
        let extra = [
            ("model", path.display().to_string()),
            ("calibration", s.calibration.clone()),
            ("target_bpw", "5.5".to_string()),
            ("hardware", "none".to_string()),
        ];
        assert_eq!(o.files, vec![out.join(sop_qmodel::MODEL_FILE)]);
        assert_eq!(
            std::fs::read(&o.files[0]).unwrap(),
            sop_qmodel::to_bytes(&expect, &extra).unwrap()
        );
        let bits: u64 = expect.iter().map(|(l, _)| l.bits()).sum();
        assert_eq!(o.report["total_bits"].as_u64(), Some(bits));
        for (j, (l, opt)) in o.report["layers"].as_array().unwrap().iter().zip(&expect) {
            assert_eq!(j["option"].as_str(), Some(opt.to_string().as_str()));
            assert_eq!(j["residuals"].as_u64(), Some(l.residuals.len() as u64));
            assert_eq!(j["name"].as_str(), Some(l.name.as_str()));
        }
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("| l.2.weight | 48x64 |"), "{md}");
    }

    #[test]
    fn sharded_output_reads_back_as_the_single_file() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        let mut s = spec(&model, &path, &layers, 5.0);
        let (one, _) = run(&s, &d.path().join("one"), &mut Quiet).unwrap();
        s.max_shard_bytes = 1; // every layer in its own shard
        let (many, _) = run(&s, &d.path().join("many"), &mut Quiet).unwrap();
        assert_eq!(many.files.len(), 4, "{:?}", many.files);
        assert!(many.files[3].ends_with(sop_qmodel::INDEX_FILE));
        let a = sop_qmodel::read(&d.path().join("one")).unwrap();
        let b = sop_qmodel::read(&d.path().join("many")).unwrap();
        assert_eq!(a.layers, b.layers);
        assert_eq!(one.report, many.report);
        assert_eq!(
            std::fs::read(d.path().join("one/report.json")).unwrap(),
            std::fs::read(d.path().join("many/report.json")).unwrap()
        );
    }

    #[test]
    fn same_bytes_at_any_thread_count() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        let mut s = spec(&model, &path, &layers, 5.5);
        s.max_shard_bytes = 3000;
        s.sample_weights = 1000;
        let mut outs = Vec::new();
        for threads in [1, 2, 3] {
            let out = d.path().join(format!("t{threads}"));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| run(&s, &out, &mut Quiet)).unwrap();
            let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            files.sort();
            outs.push(files);
        }
        assert!(
            outs[0].len() > 3,
            "sharded: {:?}",
            outs[0].iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
    }

    #[test]
    fn infeasible_target_is_an_error_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        for t in [1.0, 40.0] {
            let s = spec(&model, &path, &layers, t);
            let out = d.path().join("q");
            let e = format!("{:#}", run(&s, &out, &mut Quiet).unwrap_err());
            assert!(e.contains("--target-bpw") && e.contains("infeasible"), "{e}");
            assert!(!out.exists());
        }
        let s = spec(&model, &path, &layers, f64::NAN);
        assert!(run(&s, &d.path().join("q"), &mut Quiet).is_err());
    }

    #[test]
    fn missing_layer_names_the_tensor() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, _) = open(d.path());
        let layers = vec!["l.0.weight".to_string(), "nope.weight".to_string()];
        let s = spec(&model, &path, &layers, 5.0);
        let e = format!("{:#}", run(&s, &d.path().join("q"), &mut Quiet).unwrap_err());
        assert!(e.contains("nope.weight"), "{e}");
    }

    #[test]
    fn exact_bits_match_the_quantizer() {
        let d = tempfile::tempdir().unwrap();
        let (_, model, layers) = open(d.path());
        let mut menu: Vec<MenuOption> = MENU.split(',').map(|s| s.parse().unwrap()).collect();
        menu.extend(
            [
                "NF4+DD4sUE4M4b32+O0.05%",
                "E2M3sUE4M4+O1%+R1%",
                "E4M3-POT+R50%",
                "E2M1sE4M3b16+O60%+R60%",
            ]
            .map(|s| s.parse::<MenuOption>().unwrap()),
        );
        for n in &layers {
            let w = model.load_f32(n).unwrap();
            for o in &menu {
                assert_eq!(exact_bits(o, w.rows, w.cols), direct(&model, n, o).bits(), "{n} {o}");
            }
        }
    }

    #[test]
    fn sample_rows_are_systematic() {
        assert_eq!(sample_rows(100, 10, 0), None);
        assert_eq!(sample_rows(100, 10, 1000), None);
        assert_eq!(sample_rows(100, 10, 5000), None);
        assert_eq!(sample_rows(100, 10, 200), Some((0..20).map(|i| 5 * i + 2).collect()));
        let r = sample_rows(1000, 7, 100).unwrap();
        assert_eq!(r.len(), 15);
        assert!(r.windows(2).all(|w| w[0] < w[1]) && *r.last().unwrap() < 1000);
    }

    #[test]
    fn sampled_evaluation_keeps_exact_bits_and_reports_the_estimate() {
        let d = tempfile::tempdir().unwrap();
        let (path, model, layers) = open(d.path());
        let mut s = spec(&model, &path, &layers, 5.5);
        let full = evaluate(&s, &mut Quiet).unwrap();
        s.sample_weights = 512;
        let sampled = evaluate(&s, &mut Quiet).unwrap();
        for (f, e) in full.layers.iter().zip(&sampled.layers) {
            let m = 512usize.div_ceil(f.cols);
            assert!(
                matches!(e.sampled_rows, Some(r) if r == m || r == m + 1),
                "{:?}",
                e.sampled_rows
            );
            for (a, b) in f.options.iter().zip(&e.options) {
                assert_eq!(a.bits, b.bits);
                assert_ne!(a.metrics, b.metrics, "the sample is a different layer");
                let ratio = b.metrics.w_nmse / a.metrics.w_nmse;
                assert!((0.5..2.0).contains(&ratio), "{} {ratio}", f.name);
            }
        }
        let (o, _) = run(&s, &d.path().join("q"), &mut Quiet).unwrap();
        let me = &o.report["menu_evaluation"];
        assert_eq!(me["sample_weights"].as_u64(), Some(512));
        assert_eq!(me["sampled_layers"].as_u64(), Some(3));
        assert!(me["estimator"].as_str().unwrap().contains("ratio"));
        let l0 = &o.report["layers"][0];
        assert!(l0["sampled_rows"].as_u64().is_some() && l0["w_nmse_estimate"].as_f64().is_some());
        // The reported error is the whole layer's: what reading the file back gives.
        let back = sop_qmodel::read(&d.path().join("q")).unwrap();
        let w = model.load_f32("l.0.weight").unwrap();
        let m = metrics(&w.data, &back.layers[0].0.dequantize(), w.cols, None);
        assert_eq!(l0["w_nmse"].as_f64(), Some(m.w_nmse));
        // Without sampling, no such keys.
        s.sample_weights = 0;
        let (o, _) = run(&s, &d.path().join("q0"), &mut Quiet).unwrap();
        assert!(o.report.get("menu_evaluation").is_none());
        assert!(o.report["layers"][0].get("sampled_rows").is_none());
    }

    #[test]
    fn nominal_targets_absorb_the_tensor_scales() {
        // Two layers of 1000 weights, one option each of 6.5 bpw plus a 32-bit tensor scale.
        let c = Choice {
            bits: 6500 + 32,
            distortion: 1.0,
        };
        let menus = vec![vec![c], vec![c]];
        let (t, note) = target_with_tensor_scales(&menus, 2000, 6.5);
        assert_eq!((t * 2000.0).floor() as u64, 13064);
        assert!(note.unwrap().contains("tensor scales"));
        assert!(solve_exact(&menus, 2000, t, DEFAULT_MAX_UNITS).is_ok());
        // Further below: unchanged, and the knapsack refuses it.
        assert_eq!(target_with_tensor_scales(&menus, 2000, 6.4), (6.4, None));
        // At or above the cheapest: unchanged.
        assert_eq!(target_with_tensor_scales(&menus, 2000, 6.6), (6.6, None));
    }

    #[test]
    fn sensitivities_and_median() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        for s in ["layer", "params", "measured", "hybrid"] {
            assert_eq!(s.parse::<Sensitivity>().unwrap().as_str(), s);
        }
        assert!("x".parse::<Sensitivity>().is_err());
        let l = |rows, measured| LayerEval {
            name: "x".into(),
            rows,
            cols: 10,
            calibrated: false,
            options: vec![],
            measured,
            sampled_rows: None,
            digest: 0,
        };
        let e = Evaluation {
            layers: vec![l(1, Some(1.0)), l(3, Some(3.0))],
        };
        assert_eq!(sensitivities(&e, Sensitivity::Params).unwrap(), vec![10.0, 30.0]);
        assert_eq!(sensitivities(&e, Sensitivity::Hybrid).unwrap(), vec![0.75, 1.25]);
        let e = Evaluation {
            layers: vec![l(1, None)],
        };
        assert!(sensitivities(&e, Sensitivity::Measured).is_err());
        assert_eq!(distortion(&e_metrics(f64::INFINITY), 1.0), f64::MAX / 1e6);
    }

    fn e_metrics(w_nmse: f64) -> Metrics {
        Metrics {
            mse: 0.0,
            nmse: 0.0,
            sqnr_db: 0.0,
            cosine: 1.0,
            w_mse: 0.0,
            w_nmse,
            w_sqnr_db: 0.0,
            w_cosine: 1.0,
        }
    }
}
