//! The Llama-family decoder forward pass: token embedding, per block RMSNorm -> grouped-query
//! attention with RoPE -> residual, RMSNorm -> SwiGLU feed-forward -> residual, final RMSNorm
//! and the output head (tied to the embedding when the file has no separate one).
//!
//! Plain f32 arithmetic; reductions that set the result's scale (RMS, softmax sums) in f64.
//! Every parallel loop is over token rows, each row computed by the same sequential code, so
//! the logits are identical at any thread count. The linear layers go through a
//! [`LinearExec`] (the f32 kernel, other arithmetic, or a recorder of their inputs), exactly
//! as the BERT pass of `sop-calib` does.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sop_calib::{F32Linear, LinearExec, LinearRef};
use sop_model::Model;

use crate::config::{LlamaConfig, RopeStyle};
use crate::LlmError;

/// Token rows per parallel work item of the element-wise steps (fixed, not thread-dependent).
const ROWS: usize = 8;

/// One bias-free linear layer `y = W x`, `W` `[rows, cols]` row-major.
#[derive(Debug)]
struct Linear {
    name: String,
    cols: usize,
    w: Vec<f32>,
    /// Zeros (`rows` of them): the kernel of [`LinearRef`] takes a bias.
    zero: Vec<f32>,
}

impl Linear {
    fn as_ref(&self) -> LinearRef<'_> {
        LinearRef {
            name: &self.name,
            rows: self.zero.len(),
            cols: self.cols,
            w: &self.w,
            b: &self.zero,
        }
    }
}

#[derive(Debug)]
struct Block {
    attn_norm: Vec<f32>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Tensor names of one naming convention.
struct Names {
    embd: &'static str,
    out_norm: &'static str,
    head: &'static str,
    /// Prefix of block `i`'s tensors.
    block: fn(usize) -> String,
    /// Suffixes (attn_norm, q, k, v, o, ffn_norm, gate, up, down), each followed by `.weight`.
    parts: [&'static str; 9],
}

const GGUF_NAMES: Names = Names {
    embd: "token_embd.weight",
    out_norm: "output_norm.weight",
    head: "output.weight",
    block: |i| format!("blk.{i}."),
    parts: [
        "attn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_norm",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ],
};

const HF_NAMES: Names = Names {
    embd: "model.embed_tokens.weight",
    out_norm: "model.norm.weight",
    head: "lm_head.weight",
    block: |i| format!("model.layers.{i}."),
    parts: [
        "input_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "post_attention_layernorm",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ],
};

/// A loaded Llama-family decoder.
#[derive(Debug)]
pub struct Llama {
    /// The hyper-parameters.
    pub cfg: LlamaConfig,
    path: PathBuf,
    embd: Vec<f32>,
    blocks: Vec<Block>,
    out_norm: Vec<f32>,
    /// The output head; `None` when tied to the embedding.
    head: Option<Linear>,
    /// Whether the head is one of the model's linear layers (then it goes through the exec).
    head_is_layer: bool,
    /// `cos`/`sin` of each RoPE frequency, computed on demand per forward.
    inv_freq: Vec<f64>,
}

struct Loader<'a> {
    model: &'a Model,
}

impl Loader<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LlmError> {
        let (got, data) = self.model.load_any_f32(name).map_err(|e| match e {
            sop_model::ModelError::UnknownTensor { model, name } => LlmError::Config {
                path: model,
                reason: format!("no tensor `{name}` (not a Llama-family checkpoint?)"),
            },
            e => e.into(),
        })?;
        if got != shape {
            return Err(LlmError::Config {
                path: self.model.path().to_path_buf(),
                reason: format!("tensor `{name}` has shape {got:?}, the configuration implies {shape:?}"),
            });
        }
        Ok(data)
    }

    fn linear(&self, name: String, rows: usize, cols: usize) -> Result<Linear, LlmError> {
        Ok(Linear {
            w: self.get(&name, &[rows, cols])?,
            name,
            cols,
            zero: vec![0.0; rows],
        })
    }
}

impl Llama {
    /// Loads a model: a `.gguf` file (metadata `llama.*`) or a Hugging Face directory /
    /// safetensors file with `config.json` beside it.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let model = Model::open(path)?;
        let (cfg, names) = match model.gguf_metadata() {
            Some(kv) => (LlamaConfig::from_gguf(path, kv)?, &GGUF_NAMES),
            None => (
                LlamaConfig::from_hf(&sop_calib::model_dir(path).join("config.json"))?,
                &HF_NAMES,
            ),
        };
        let l = Loader { model: &model };
        let (h, q, kv, f) = (cfg.hidden, cfg.q_width(), cfg.kv_width(), cfg.ffn);
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let p = (names.block)(i);
            let n = |k: usize| format!("{p}{}.weight", names.parts[k]);
            blocks.push(Block {
                attn_norm: l.get(&n(0), &[h])?,
                q: l.linear(n(1), q, h)?,
                k: l.linear(n(2), kv, h)?,
                v: l.linear(n(3), kv, h)?,
                o: l.linear(n(4), h, q)?,
                ffn_norm: l.get(&n(5), &[h])?,
                gate: l.linear(n(6), f, h)?,
                up: l.linear(n(7), f, h)?,
                down: l.linear(n(8), h, f)?,
            });
        }
        let head = match model.tensor(names.head) {
            Some(_) => Some(l.linear(names.head.to_string(), cfg.vocab, h)?),
            None => None,
        };
        let head_is_layer = head.is_some() && model.linear_layers().iter().any(|t| t.name == names.head);
        let half = cfg.head_dim / 2;
        let inv_freq = (0..half)
            .map(|i| cfg.rope_base.powf(-(2.0 * i as f64) / cfg.head_dim as f64))
            .collect();
        Ok(Llama {
            embd: l.get(names.embd, &[cfg.vocab, h])?,
            out_norm: l.get(names.out_norm, &[h])?,
            path: path.to_path_buf(),
            cfg,
            blocks,
            head,
            head_is_layer,
            inv_freq,
        })
    }

    /// The path the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the linear layers the forward pass runs through its [`LinearExec`], in forward
    /// order (the output head only when it is a separate linear layer of the model).
    pub fn linear_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .blocks
            .iter()
            .flat_map(|b| [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down])
            .map(|l| l.name.clone())
            .collect();
        if let (true, Some(h)) = (self.head_is_layer, &self.head) {
            v.push(h.name.clone());
        }
        v
    }

    /// The logits `[tokens.len(), vocab]` (row-major) of every position of one sequence
    /// (positions 0, 1, ...; causal attention), every linear layer computed by `exec`.
    ///
    /// Errors: no tokens, more than the context length, an id outside the vocabulary.
    pub fn forward_with(&self, tokens: &[u32], exec: &mut dyn LinearExec) -> Result<Vec<f32>, LlmError> {
        let x = self.embed(tokens)?;
        let x = self.run_blocks(tokens.len(), 0, x, exec, None);
        Ok(self.head(&x, exec))
    }

    /// The input of every block (the residual stream entering it, `[tokens.len(), hidden]`
    /// row-major, block order), then the final residual stream (the head's input): one more
    /// entry than blocks, for one sequence with every linear layer by the f32 kernel. Entry
    /// `i` is the starting point of [`Self::forward_from`] at block `i`. Errors as
    /// [`Self::forward_with`].
    pub fn block_inputs(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>, LlmError> {
        let x = self.embed(tokens)?;
        let mut inputs = Vec::with_capacity(self.blocks.len() + 1);
        let last = self.run_blocks(tokens.len(), 0, x, &mut F32Linear, Some(&mut inputs));
        inputs.push(last);
        Ok(inputs)
    }

    /// The logits of one sequence computed from block `first` on, `x` being that block's input
    /// (from [`Self::block_inputs`]; `first` = the number of blocks runs the output head
    /// only, on the final residual stream). With `x` from `block_inputs`, the logits are
    /// bit for bit those of [`Self::forward_with`] when `exec` computes the layers of the
    /// blocks before `first` with the f32 kernel (tested): changing one layer of block `b`
    /// needs only blocks `b..`.
    ///
    /// Errors: as [`Self::forward_with`], `first` beyond the blocks, `x` of the wrong length.
    pub fn forward_from(
        &self,
        tokens: &[u32],
        first: usize,
        x: Vec<f32>,
        exec: &mut dyn LinearExec,
    ) -> Result<Vec<f32>, LlmError> {
        self.check_tokens(tokens)?;
        if first > self.blocks.len() || x.len() != tokens.len() * self.cfg.hidden {
            return Err(LlmError::Invalid(format!(
                "forward from block {first} of {} with {} values for {} tokens of width {}",
                self.blocks.len(),
                x.len(),
                tokens.len(),
                self.cfg.hidden
            )));
        }
        let x = self.run_blocks(tokens.len(), first, x, exec, None);
        Ok(self.head(&x, exec))
    }

    /// The block (0-based) that runs the linear layer `name`; the number of blocks for a
    /// separate output head; `None` for a name that is not a linear layer of the pass.
    pub fn block_of(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.blocks.iter().position(|b| {
            [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down]
                .iter()
                .any(|l| l.name == name)
        }) {
            return Some(i);
        }
        match &self.head {
            Some(h) if self.head_is_layer && h.name == name => Some(self.blocks.len()),
            _ => None,
        }
    }

    /// Errors for a sequence the pass cannot run: empty, longer than the context, an id
    /// outside the vocabulary.
    fn check_tokens(&self, tokens: &[u32]) -> Result<(), LlmError> {
        let c = &self.cfg;
        let n = tokens.len();
        if n == 0 || n > c.context {
            return Err(LlmError::Invalid(format!(
                "a sequence has {n} tokens; 1..={} are supported",
                c.context
            )));
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= c.vocab) {
            return Err(LlmError::Invalid(format!(
                "token id {id} is outside the vocabulary ({} entries)",
                c.vocab
            )));
        }
        Ok(())
    }

    /// The token embeddings `[n, hidden]` of a checked sequence.
    fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, LlmError> {
        self.check_tokens(tokens)?;
        let h = self.cfg.hidden;
        let mut x = vec![0f32; tokens.len() * h];
        x.par_chunks_mut(h).zip(tokens.par_iter()).for_each(|(row, &id)| {
            row.copy_from_slice(&self.embd[id as usize * h..][..h]);
        });
        Ok(x)
    }

    /// Runs blocks `first..` on the residual stream `x` (`[n, hidden]`), pushing each block's
    /// input to `inputs` when given; returns the final residual stream.
    fn run_blocks(
        &self,
        n: usize,
        first: usize,
        mut x: Vec<f32>,
        exec: &mut dyn LinearExec,
        mut inputs: Option<&mut Vec<Vec<f32>>>,
    ) -> Vec<f32> {
        let c = &self.cfg;
        let (cos, sin) = self.rope_tables(n);
        for b in &self.blocks[first..] {
            if let Some(v) = inputs.as_deref_mut() {
                v.push(x.clone());
            }
            let xn = rms_norm(&x, &b.attn_norm, c.eps);
            let mut q = exec.apply(&b.q.as_ref(), &xn);
            let mut k = exec.apply(&b.k.as_ref(), &xn);
            let v = exec.apply(&b.v.as_ref(), &xn);
            self.rope(&mut q, &cos, &sin);
            self.rope(&mut k, &cos, &sin);
            let ctx = self.attention(&q, &k, &v, n);
            let a = exec.apply(&b.o.as_ref(), &ctx);
            add_assign(&mut x, &a);
            let xn = rms_norm(&x, &b.ffn_norm, c.eps);
            let mut g = exec.apply(&b.gate.as_ref(), &xn);
            let u = exec.apply(&b.up.as_ref(), &xn);
            g.par_chunks_mut(ROWS * c.ffn)
                .zip(u.par_chunks(ROWS * c.ffn))
                .for_each(|(g, u)| {
                    for (g, u) in g.iter_mut().zip(u) {
                        *g = *g / (1.0 + (-*g).exp()) * u;
                    }
                });
            let d = exec.apply(&b.down.as_ref(), &g);
            add_assign(&mut x, &d);
        }
        x
    }

    /// The final RMSNorm and the output head (tied to the embedding, or a separate matrix
    /// that goes through `exec` when it is one of the model's linear layers): the logits.
    fn head(&self, x: &[f32], exec: &mut dyn LinearExec) -> Vec<f32> {
        let c = &self.cfg;
        let xn = rms_norm(x, &self.out_norm, c.eps);
        match &self.head {
            Some(head) if self.head_is_layer => exec.apply(&head.as_ref(), &xn),
            Some(head) => F32Linear.apply(&head.as_ref(), &xn),
            None => {
                let zero = vec![0f32; c.vocab];
                let tied = LinearRef {
                    name: "token_embd.weight",
                    rows: c.vocab,
                    cols: c.hidden,
                    w: &self.embd,
                    b: &zero,
                };
                F32Linear.apply(&tied, &xn)
            }
        }
    }

    /// Greedy decoding: appends `steps` arg-max tokens to `prompt` (stopping early at
    /// `stop`), recomputing the whole sequence each step. Returns the new tokens.
    pub fn greedy(&self, prompt: &[u32], steps: usize, stop: Option<u32>) -> Result<Vec<u32>, LlmError> {
        let mut seq = prompt.to_vec();
        let mut out = Vec::new();
        for _ in 0..steps {
            let logits = self.forward_with(&seq, &mut F32Linear)?;
            let last = &logits[(seq.len() - 1) * self.cfg.vocab..];
            let next = argmax(last) as u32;
            if Some(next) == stop {
                break;
            }
            seq.push(next);
            out.push(next);
        }
        Ok(out)
    }

    /// `cos` and `sin` of position x frequency, `[n, head_dim / 2]` each, from f64 angles.
    fn rope_tables(&self, n: usize) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in 0..n {
            for &f in &self.inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        (cos, sin)
    }

    /// Rotates every head of every row of `x` (`[n, heads * head_dim]`) by its position.
    fn rope(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        let hd = self.cfg.head_dim;
        let half = hd / 2;
        let width = x.len() / (cos.len() / half);
        let style = self.cfg.rope;
        x.par_chunks_mut(width).enumerate().for_each(|(p, row)| {
            let (c, s) = (&cos[p * half..][..half], &sin[p * half..][..half]);
            for head in row.chunks_exact_mut(hd) {
                for i in 0..half {
                    let (a, b) = match style {
                        RopeStyle::Adjacent => (2 * i, 2 * i + 1),
                        RopeStyle::Half => (i, i + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c[i] - x1 * s[i];
                    head[b] = x0 * s[i] + x1 * c[i];
                }
            }
        });
    }

    /// Causal grouped-query attention: `q` `[n, heads * hd]`, `k` and `v` `[n, kv_heads * hd]`;
    /// returns the context `[n, heads * hd]`. Query head `h` reads key/value head
    /// `h / (heads / kv_heads)`.
    fn attention(&self, q: &[f32], k: &[f32], v: &[f32], n: usize) -> Vec<f32> {
        let c = &self.cfg;
        let (hd, qw, kw) = (c.head_dim, c.q_width(), c.kv_width());
        let group = c.heads / c.kv_heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut ctx = vec![0f32; n * qw];
        ctx.par_chunks_mut(qw).enumerate().for_each(|(t, out)| {
            let mut p = vec![0f32; t + 1];
            for head in 0..c.heads {
                let kh = head / group;
                let qv = &q[t * qw + head * hd..][..hd];
                for (j, pj) in p.iter_mut().enumerate() {
                    let kv = &k[j * kw + kh * hd..][..hd];
                    *pj = qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                let m = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f64;
                for pj in p.iter_mut() {
                    *pj = (*pj - m).exp();
                    sum += f64::from(*pj);
                }
                let inv = (1.0 / sum) as f32;
                let o = &mut out[head * hd..][..hd];
                o.fill(0.0);
                for (j, &pj) in p.iter().enumerate() {
                    let vv = &v[j * kw + kh * hd..][..hd];
                    let w = pj * inv;
                    for (oi, vi) in o.iter_mut().zip(vv) {
                        *oi += w * vi;
                    }
                }
            }
        });
        ctx
    }
}

/// RMSNorm of every row of `x` (`[n, w.len()]`): `x / sqrt(mean(x^2) + eps) * w`, the mean
/// in f64.
fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let h = w.len();
    let mut y = x.to_vec();
    y.par_chunks_mut(h).for_each(|row| {
        let ms = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / h as f64;
        let inv = (1.0 / (ms + f64::from(eps)).sqrt()) as f32;
        for (v, g) in row.iter_mut().zip(w) {
            *v = *v * inv * g;
        }
    });
    y
}

fn add_assign(a: &mut [f32], b: &[f32]) {
    a.par_chunks_mut(4096).zip(b.par_chunks(4096)).for_each(|(x, y)| {
        for (p, q) in x.iter_mut().zip(y) {
            *p += q;
        }
    });
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
