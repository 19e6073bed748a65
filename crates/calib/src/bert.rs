//! A BERT encoder forward pass (Hugging Face `BertModel`, as used by sentence-transformers
//! models such as all-MiniLM-L6-v2), in plain Rust f32, with a hook that records the inputs of
//! every linear layer.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::kernels::{add_assign, gelu, gemm, layer_norm, linear, softmax};
use crate::CalibError;

/// The hyper-parameters of a BERT encoder, from its `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Hidden size (384 for all-MiniLM-L6-v2).
    pub hidden: usize,
    /// Attention heads (12).
    pub heads: usize,
    /// Encoder layers (6).
    pub layers: usize,
    /// Feed-forward inner size (1536).
    pub intermediate: usize,
    /// LayerNorm epsilon (1e-12).
    pub eps: f32,
    /// Number of position embeddings, the longest sequence the model accepts (512).
    pub max_positions: usize,
    /// Vocabulary size (30522).
    pub vocab: usize,
}

impl BertConfig {
    /// Reads `config.json`; refuses anything that is not a BERT encoder with absolute
    /// positions and exact GELU.
    pub fn read(path: &Path) -> Result<Self, CalibError> {
        let unsupported = |reason: String| CalibError::UnsupportedModel {
            path: path.to_path_buf(),
            reason,
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unsupported(
                    "not found: the Hugging Face config.json must sit beside the weights to run the model".into(),
                ))
            }
            Err(e) => return Err(CalibError::io(path, e)),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| unsupported(format!("config.json is not valid JSON: {e}")))?;
        let model_type = v.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
        if model_type != "bert" {
            return Err(unsupported(format!(
                "model_type is `{model_type}`; only BERT encoders (model_type `bert`) have a forward pass here. \
                 For other models bring an importance matrix made elsewhere (llama.cpp's llama-imatrix)"
            )));
        }
        let num = |k: &str| -> Result<usize, CalibError> {
            v.get(k)
                .and_then(|x| x.as_u64())
                .and_then(|x| usize::try_from(x).ok())
                .filter(|&x| x > 0)
                .ok_or_else(|| unsupported(format!("config.json lacks a positive integer `{k}`")))
        };
        let act = v.get("hidden_act").and_then(|a| a.as_str()).unwrap_or("gelu");
        if act != "gelu" {
            return Err(unsupported(format!(
                "hidden_act `{act}` is not supported (only exact `gelu`)"
            )));
        }
        let pos = v
            .get("position_embedding_type")
            .and_then(|a| a.as_str())
            .unwrap_or("absolute");
        if pos != "absolute" {
            return Err(unsupported(format!(
                "position_embedding_type `{pos}` is not supported (only `absolute`)"
            )));
        }
        let cfg = BertConfig {
            hidden: num("hidden_size")?,
            heads: num("num_attention_heads")?,
            layers: num("num_hidden_layers")?,
            intermediate: num("intermediate_size")?,
            eps: v.get("layer_norm_eps").and_then(|x| x.as_f64()).unwrap_or(1e-12) as f32,
            max_positions: num("max_position_embeddings")?,
            vocab: num("vocab_size")?,
        };
        if cfg.hidden % cfg.heads != 0 {
            return Err(unsupported(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden, cfg.heads
            )));
        }
        Ok(cfg)
    }
}

/// One linear layer `y = x W^T + b`.
#[derive(Debug)]
pub(crate) struct Linear {
    /// Name of the weight tensor (the name statistics are recorded under).
    pub name: String,
    pub cols: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Linear {
    fn as_ref(&self) -> LinearRef<'_> {
        LinearRef {
            name: &self.name,
            rows: self.w.len() / self.cols,
            cols: self.cols,
            w: &self.w,
            b: &self.b,
        }
    }
}

/// One linear layer of the encoder as the forward pass hands it to a [`LinearExec`]:
/// `y = W x + b` with `W` `[rows, cols]` row-major.
#[derive(Clone, Copy, Debug)]
pub struct LinearRef<'a> {
    /// Name of the weight tensor (e.g. `encoder.layer.0.attention.self.query.weight`).
    pub name: &'a str,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// Weight, `rows * cols` values.
    pub w: &'a [f32],
    /// Bias, `rows` values.
    pub b: &'a [f32],
}

/// What computes the linear layers of [`Bert::forward_with`]: [`F32Linear`] (the encoder's
/// own f32 kernel) by default; a caller substitutes other arithmetic (the hardware tile) or
/// records each layer's real inputs. Called once per layer, in forward order.
pub trait LinearExec {
    /// The layer's outputs for `x` (`[tokens, cols]` row-major): `[tokens, rows]`.
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32>;
}

/// The encoder's own f32 linear kernel (deterministic at any thread count).
#[derive(Clone, Copy, Debug, Default)]
pub struct F32Linear;

impl LinearExec for F32Linear {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        linear(x, layer.w, layer.b, layer.cols)
    }
}

#[derive(Debug)]
struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

#[derive(Debug)]
struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: Norm,
    fc1: Linear,
    fc2: Linear,
    ln2: Norm,
}

/// Running sums of one linear layer's inputs (f64; tokens added strictly in order, so the
/// sums are the same at any thread count).
#[derive(Debug, Clone)]
pub struct Acc {
    /// Per input column, the sum of `x^2`.
    pub sum_x2: Vec<f64>,
    /// Per input column, the sum of `x`.
    pub sum_x: Vec<f64>,
    /// Rows (tokens) added.
    pub count: u64,
}

impl Acc {
    /// Empty sums for `cols` input columns.
    pub fn new(cols: usize) -> Self {
        Acc {
            sum_x2: vec![0.0; cols],
            sum_x: vec![0.0; cols],
            count: 0,
        }
    }

    /// Adds the rows of `x` (`[n, cols]`), in row order. Parallel over columns only, so that
    /// every column's sum is formed in the same order at any thread count.
    pub fn add_rows(&mut self, x: &[f32]) {
        let cols = self.sum_x2.len();
        const CB: usize = 64;
        self.sum_x2
            .par_chunks_mut(CB)
            .zip(self.sum_x.par_chunks_mut(CB))
            .enumerate()
            .for_each(|(ci, (s2, s1))| {
                let j0 = ci * CB;
                for row in x.chunks_exact(cols) {
                    for (k, &v) in row[j0..j0 + s2.len()].iter().enumerate() {
                        let v = f64::from(v);
                        s2[k] += v * v;
                        s1[k] += v;
                    }
                }
            });
        self.count += (x.len() / cols) as u64;
    }
}

/// Accumulators for every linear layer of the model. Query, key and value see the same input,
/// so they share one accumulator.
#[derive(Debug)]
pub(crate) struct Collector {
    /// Per block: [qkv, attention output, intermediate, output].
    pub blocks: Vec<[Acc; 4]>,
    pub pooler: Option<Acc>,
}

/// A loaded BERT encoder.
#[derive(Debug)]
pub struct Bert {
    /// The model hyper-parameters.
    pub cfg: BertConfig,
    word: Vec<f32>,
    pos: Vec<f32>,
    typ0: Vec<f32>,
    ln_emb: Norm,
    blocks: Vec<Block>,
    pooler: Option<Linear>,
}

/// The directory holding `config.json` / `tokenizer.json` for a model path (the path itself if
/// it is a directory, else its parent).
pub fn model_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Reads tensors (any rank, F32/F16/BF16) from the safetensors files of a model.
struct Loader {
    model: sop_model::Model,
    /// (file, bytes) of the files read so far.
    files: Vec<(PathBuf, Vec<u8>)>,
    prefix: String,
}

impl Loader {
    fn bytes(&mut self, file: &Path) -> Result<usize, CalibError> {
        if let Some(i) = self.files.iter().position(|(p, _)| p == file) {
            return Ok(i);
        }
        let b = std::fs::read(file).map_err(|e| CalibError::io(file, e))?;
        self.files.push((file.to_path_buf(), b));
        Ok(self.files.len() - 1)
    }

    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, CalibError> {
        let full = format!("{}{name}", self.prefix);
        let info = self
            .model
            .tensor(&full)
            .cloned()
            .ok_or_else(|| CalibError::UnsupportedModel {
                path: self.model.path().to_path_buf(),
                reason: format!("no tensor `{full}` (not a BERT checkpoint?)"),
            })?;
        let bad = |reason: String| CalibError::Tensor {
            path: info.file.clone(),
            tensor: full.clone(),
            reason,
        };
        if info.shape != shape {
            return Err(bad(format!(
                "has shape {:?}, config.json implies {shape:?}",
                info.shape
            )));
        }
        let i = self.bytes(&info.file)?;
        let st = SafeTensors::deserialize(&self.files[i].1).map_err(|e| bad(format!("unreadable: {e}")))?;
        let view = st.tensor(&full).map_err(|e| bad(format!("unreadable: {e}")))?;
        let data = view.data();
        let out: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            d => return Err(bad(format!("has dtype {d}; only F32, F16 and BF16 are supported"))),
        };
        if let Some(p) = out.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("element {p} is {} (weights must be finite)", out[p])));
        }
        Ok(out)
    }

    fn linear(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear, CalibError> {
        Ok(Linear {
            name: format!("{}{name}.weight", self.prefix),
            cols,
            w: self.get(&format!("{name}.weight"), &[rows, cols])?,
            b: self.get(&format!("{name}.bias"), &[rows])?,
        })
    }

    fn norm(&mut self, name: &str, h: usize) -> Result<Norm, CalibError> {
        Ok(Norm {
            w: self.get(&format!("{name}.weight"), &[h])?,
            b: self.get(&format!("{name}.bias"), &[h])?,
        })
    }
}

impl Bert {
    /// Loads a BERT encoder: `path` is a `.safetensors` file or a Hugging Face model directory;
    /// `config.json` must sit in the same directory. Tensor names may carry a `bert.` prefix.
    pub fn load(path: &Path) -> Result<Self, CalibError> {
        let model = sop_model::Model::open(path)?;
        let cfg = BertConfig::read(&model_dir(path).join("config.json"))?;
        let prefix = if model.tensor("embeddings.word_embeddings.weight").is_some() {
            ""
        } else if model.tensor("bert.embeddings.word_embeddings.weight").is_some() {
            "bert."
        } else {
            return Err(CalibError::UnsupportedModel {
                path: path.to_path_buf(),
                reason: "no `embeddings.word_embeddings.weight` tensor: not a BERT checkpoint".into(),
            });
        };
        let has_pooler = model.tensor(&format!("{prefix}pooler.dense.weight")).is_some();
        let mut ld = Loader {
            model,
            files: Vec::new(),
            prefix: prefix.to_string(),
        };
        let (h, f) = (cfg.hidden, cfg.intermediate);
        let word = ld.get("embeddings.word_embeddings.weight", &[cfg.vocab, h])?;
        let pos = ld.get("embeddings.position_embeddings.weight", &[cfg.max_positions, h])?;
        let typ_info = ld
            .model
            .tensor(&format!("{prefix}embeddings.token_type_embeddings.weight"))
            .map(|t| t.shape.clone());
        let typ0 = match typ_info {
            Some(shape) if shape.len() == 2 && shape[0] >= 1 => {
                ld.get("embeddings.token_type_embeddings.weight", &shape)?[..h].to_vec()
            }
            Some(shape) => {
                return Err(CalibError::UnsupportedModel {
                    path: path.to_path_buf(),
                    reason: format!("token_type_embeddings has shape {shape:?}"),
                })
            }
            None => vec![0.0; h],
        };
        let ln_emb = ld.norm("embeddings.LayerNorm", h)?;
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = format!("encoder.layer.{i}.");
            blocks.push(Block {
                q: ld.linear(&format!("{p}attention.self.query"), h, h)?,
                k: ld.linear(&format!("{p}attention.self.key"), h, h)?,
                v: ld.linear(&format!("{p}attention.self.value"), h, h)?,
                o: ld.linear(&format!("{p}attention.output.dense"), h, h)?,
                ln1: ld.norm(&format!("{p}attention.output.LayerNorm"), h)?,
                fc1: ld.linear(&format!("{p}intermediate.dense"), f, h)?,
                fc2: ld.linear(&format!("{p}output.dense"), h, f)?,
                ln2: ld.norm(&format!("{p}output.LayerNorm"), h)?,
            });
        }
        let pooler = if has_pooler {
            Some(ld.linear("pooler.dense", h, h)?)
        } else {
            None
        };
        Ok(Bert {
            cfg,
            word,
            pos,
            typ0,
            ln_emb,
            blocks,
            pooler,
        })
    }

    /// Names of the linear-layer weights whose inputs [`crate::calibrate`] records, in forward
    /// order.
    pub fn linear_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for b in &self.blocks {
            for l in [&b.q, &b.k, &b.v, &b.o, &b.fc1, &b.fc2] {
                v.push(l.name.clone());
            }
        }
        if let Some(p) = &self.pooler {
            v.push(p.name.clone());
        }
        v
    }

    /// Replaces the weight of the linear layer named `name` (as in [`Self::linear_names`]) by
    /// `w` (same length, row-major), e.g. dequantized weights to measure a quantized model's
    /// output. Errors: unknown name or wrong length.
    pub fn set_linear_weight(&mut self, name: &str, w: &[f32]) -> Result<(), CalibError> {
        let mut all: Vec<&mut Linear> = Vec::new();
        for b in &mut self.blocks {
            all.extend([&mut b.q, &mut b.k, &mut b.v, &mut b.o, &mut b.fc1, &mut b.fc2]);
        }
        all.extend(self.pooler.as_mut());
        let l = all
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| CalibError::Invalid(format!("no linear layer `{name}` in the encoder")))?;
        if l.w.len() != w.len() {
            return Err(CalibError::Invalid(format!(
                "`{name}`: {} values given for a weight of {}",
                w.len(),
                l.w.len()
            )));
        }
        l.w.copy_from_slice(w);
        Ok(())
    }

    pub(crate) fn new_collector(&self) -> Collector {
        let (h, f) = (self.cfg.hidden, self.cfg.intermediate);
        Collector {
            blocks: self
                .blocks
                .iter()
                .map(|_| [Acc::new(h), Acc::new(h), Acc::new(h), Acc::new(f)])
                .collect(),
            pooler: self.pooler.as_ref().map(|_| Acc::new(h)),
        }
    }

    /// Pairs each recorded accumulator with its layer names.
    pub(crate) fn collected(&self, c: Collector) -> Vec<(String, Acc)> {
        let mut out = Vec::new();
        for (b, [qkv, o, fc1, fc2]) in self.blocks.iter().zip(c.blocks) {
            out.push((b.q.name.clone(), qkv.clone()));
            out.push((b.k.name.clone(), qkv.clone()));
            out.push((b.v.name.clone(), qkv));
            out.push((b.o.name.clone(), o));
            out.push((b.fc1.name.clone(), fc1));
            out.push((b.fc2.name.clone(), fc2));
        }
        if let (Some(p), Some(acc)) = (&self.pooler, c.pooler) {
            out.push((p.name.clone(), acc));
        }
        out
    }

    /// Runs the encoder on a batch of token-id sequences (each with its `[CLS]` ... `[SEP]`,
    /// no padding: sequences are packed one after another) and returns the last hidden states,
    /// `[total tokens, hidden]`. If `collect` is given, the inputs of every linear layer are
    /// added to it (the pooler's input is the `[CLS]` state of each sequence).
    pub(crate) fn forward(&self, seqs: &[Vec<u32>], collect: Option<&mut Collector>) -> Result<Vec<f32>, CalibError> {
        self.forward_exec(seqs, collect, &mut F32Linear)
    }

    /// [`Self::forward`] without statistics, every linear layer computed by `exec`: the last
    /// hidden states, `[total tokens, hidden]`, of packed sequences (each with its `[CLS]` ...
    /// `[SEP]`).
    pub fn forward_with(&self, seqs: &[Vec<u32>], exec: &mut dyn LinearExec) -> Result<Vec<f32>, CalibError> {
        self.forward_exec(seqs, None, exec)
    }

    fn forward_exec(
        &self,
        seqs: &[Vec<u32>],
        mut collect: Option<&mut Collector>,
        exec: &mut dyn LinearExec,
    ) -> Result<Vec<f32>, CalibError> {
        let h = self.cfg.hidden;
        let mut offsets = vec![0usize];
        for s in seqs {
            if s.is_empty() || s.len() > self.cfg.max_positions {
                return Err(CalibError::Invalid(format!(
                    "a sequence has {} tokens; 1..={} are supported",
                    s.len(),
                    self.cfg.max_positions
                )));
            }
            if let Some(&id) = s.iter().find(|&&id| id as usize >= self.cfg.vocab) {
                return Err(CalibError::Invalid(format!(
                    "token id {id} is outside the vocabulary ({} entries)",
                    self.cfg.vocab
                )));
            }
            offsets.push(offsets.last().copied().unwrap_or(0) + s.len());
        }
        let n = *offsets.last().unwrap_or(&0);
        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut x = vec![0f32; n * h];
        let toks: Vec<(usize, u32)> = seqs.iter().flat_map(|s| s.iter().copied().enumerate()).collect();
        x.par_chunks_mut(h).zip(toks.par_iter()).for_each(|(row, &(p, id))| {
            let w = &self.word[id as usize * h..][..h];
            let pe = &self.pos[p * h..][..h];
            for j in 0..h {
                row[j] = w[j] + pe[j] + self.typ0[j];
            }
        });
        layer_norm(&mut x, &self.ln_emb.w, &self.ln_emb.b, self.cfg.eps);

        for (bi, b) in self.blocks.iter().enumerate() {
            if let Some(c) = collect.as_deref_mut() {
                c.blocks[bi][0].add_rows(&x);
            }
            let q = exec.apply(&b.q.as_ref(), &x);
            let k = exec.apply(&b.k.as_ref(), &x);
            let v = exec.apply(&b.v.as_ref(), &x);
            let ctx = self.attention(&q, &k, &v, &offsets);
            if let Some(c) = collect.as_deref_mut() {
                c.blocks[bi][1].add_rows(&ctx);
            }
            let mut a = exec.apply(&b.o.as_ref(), &ctx);
            add_assign(&mut a, &x);
            layer_norm(&mut a, &b.ln1.w, &b.ln1.b, self.cfg.eps);
            x = a;
            if let Some(c) = collect.as_deref_mut() {
                c.blocks[bi][2].add_rows(&x);
            }
            let mut inter = exec.apply(&b.fc1.as_ref(), &x);
            gelu(&mut inter);
            if let Some(c) = collect.as_deref_mut() {
                c.blocks[bi][3].add_rows(&inter);
            }
            let mut o = exec.apply(&b.fc2.as_ref(), &inter);
            add_assign(&mut o, &x);
            layer_norm(&mut o, &b.ln2.w, &b.ln2.b, self.cfg.eps);
            x = o;
        }
        if let (Some(c), Some(_)) = (collect, &self.pooler) {
            let cls: Vec<f32> = offsets[..seqs.len()]
                .iter()
                .flat_map(|&o| x[o * h..(o + 1) * h].iter().copied())
                .collect();
            if let Some(p) = c.pooler.as_mut() {
                p.add_rows(&cls);
            }
        }
        Ok(x)
    }

    /// Multi-head self-attention of packed sequences (each attends only to itself).
    fn attention(&self, q: &[f32], k: &[f32], v: &[f32], offsets: &[usize]) -> Vec<f32> {
        let h = self.cfg.hidden;
        let heads = self.cfg.heads;
        let hd = h / heads;
        let sqrt_d = (hd as f32).sqrt();
        let mut ctx = vec![0f32; q.len()];
        // Split the output into one slice per sequence.
        let mut parts = Vec::with_capacity(offsets.len());
        let mut rest = ctx.as_mut_slice();
        for w in offsets.windows(2) {
            let (a, r) = rest.split_at_mut((w[1] - w[0]) * h);
            parts.push((w[0], a));
            rest = r;
        }
        parts.into_par_iter().for_each(|(start, out)| {
            let t = out.len() / h;
            let (mut qh, mut kh, mut vt) = (vec![0f32; t * hd], vec![0f32; t * hd], vec![0f32; hd * t]);
            let (mut s, mut o) = (vec![0f32; t * t], vec![0f32; t * hd]);
            for head in 0..heads {
                let col = head * hd;
                for i in 0..t {
                    let row = (start + i) * h + col;
                    qh[i * hd..(i + 1) * hd].copy_from_slice(&q[row..row + hd]);
                    kh[i * hd..(i + 1) * hd].copy_from_slice(&k[row..row + hd]);
                    for d in 0..hd {
                        vt[d * t + i] = v[row + d];
                    }
                }
                // scores = Q K^T / sqrt(d), softmax per query, context = P V.
                gemm(&qh, &mut s, &kh, None, hd);
                for row in s.chunks_exact_mut(t) {
                    for x in row.iter_mut() {
                        *x /= sqrt_d;
                    }
                    softmax(row);
                }
                gemm(&s, &mut o, &vt, None, t);
                for i in 0..t {
                    out[i * h + col..i * h + col + hd].copy_from_slice(&o[i * hd..(i + 1) * hd]);
                }
            }
        });
        ctx
    }

    /// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: the
    /// mean of the last hidden states over each sequence's tokens, L2-normalized.
    pub fn embed(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, CalibError> {
        self.embed_with(seqs, &mut F32Linear)
    }

    /// [`Self::embed`] with every linear layer computed by `exec`.
    pub fn embed_with(&self, seqs: &[Vec<u32>], exec: &mut dyn LinearExec) -> Result<Vec<Vec<f32>>, CalibError> {
        let h = self.cfg.hidden;
        let x = self.forward_with(seqs, exec)?;
        let mut out = Vec::with_capacity(seqs.len());
        let mut o = 0;
        for s in seqs {
            let mut e = vec![0f64; h];
            for t in 0..s.len() {
                for (j, ej) in e.iter_mut().enumerate() {
                    *ej += f64::from(x[(o + t) * h + j]);
                }
            }
            o += s.len();
            let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            out.push(e.iter().map(|v| (v / norm) as f32).collect());
        }
        Ok(out)
    }
}
