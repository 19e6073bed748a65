//! The hyper-parameters of a Llama-family model, from GGUF metadata or `config.json`.

use std::path::Path;

use sop_model::gguf::Value;

use crate::LlmError;

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimensions `2i` and `2i+1` rotate together: llama.cpp's convention for `llama` GGUF
    /// files (whose converter permuted the Q and K rows into this order).
    Adjacent,
    /// Dimensions `i` and `i + d/2` rotate together (`rotate_half`): the Hugging Face
    /// convention of `LlamaForCausalLM` safetensors.
    Half,
}

/// A Llama-family decoder's shape.
///
/// Invariants (checked on construction): every size is positive, `heads * head_dim` is the
/// query width, `heads` is a multiple of `kv_heads`, `head_dim` is even.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Residual width (576 for SmolLM2-135M).
    pub hidden: usize,
    /// Decoder blocks (30).
    pub layers: usize,
    /// Query heads (9).
    pub heads: usize,
    /// Key/value heads (3; grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of one head (64).
    pub head_dim: usize,
    /// SwiGLU inner width (1536).
    pub ffn: usize,
    /// Vocabulary size (49152).
    pub vocab: usize,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// RoPE base frequency (`rope.freq_base` / `rope_theta`).
    pub rope_base: f64,
    /// RoPE pairing convention of the weights.
    pub rope: RopeStyle,
    /// Longest context the model was trained for (positions beyond are refused).
    pub context: usize,
}

fn bad(path: &Path, reason: String) -> LlmError {
    LlmError::Config {
        path: path.to_path_buf(),
        reason,
    }
}

impl LlamaConfig {
    /// From the metadata of a GGUF model file (`general.architecture` must be `llama`).
    pub fn from_gguf(path: &Path, kv: &[(String, Value)]) -> Result<Self, LlmError> {
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let arch = match get("general.architecture") {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err(bad(path, "GGUF metadata lacks general.architecture".into())),
        };
        if arch != "llama" {
            return Err(LlmError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                arch,
            });
        }
        let num = |k: &str| -> Result<usize, LlmError> {
            get(&format!("llama.{k}"))
                .and_then(Value::as_u64)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| bad(path, format!("GGUF metadata lacks a positive integer `llama.{k}`")))
        };
        let float = |k: &str, default: f64| -> Result<f64, LlmError> {
            match get(&format!("llama.{k}")) {
                None => Ok(default),
                Some(Value::F32(v)) => Ok(f64::from(*v)),
                Some(Value::F64(v)) => Ok(*v),
                Some(v) => Err(bad(path, format!("`llama.{k}` is {v:?}, expected a float"))),
            }
        };
        let hidden = num("embedding_length")?;
        let heads = num("attention.head_count")?;
        let kv_heads = match get("llama.attention.head_count_kv") {
            None => heads,
            Some(_) => num("attention.head_count_kv")?,
        };
        let head_dim = hidden / heads.max(1);
        if get("llama.rope.dimension_count").is_some() && num("rope.dimension_count")? != head_dim {
            return Err(bad(
                path,
                "llama.rope.dimension_count differs from the head width: partial RoPE is not implemented".into(),
            ));
        }
        let vocab = match get("llama.vocab_size") {
            Some(_) => num("vocab_size")?,
            None => match get("tokenizer.ggml.tokens") {
                Some(Value::Array(_, t)) if !t.is_empty() => t.len(),
                _ => return Err(bad(path, "GGUF metadata gives no vocabulary size".into())),
            },
        };
        let cfg = LlamaConfig {
            hidden,
            layers: num("block_count")?,
            heads,
            kv_heads,
            head_dim,
            ffn: num("feed_forward_length")?,
            vocab,
            eps: float("attention.layer_norm_rms_epsilon", 1e-5)? as f32,
            rope_base: float("rope.freq_base", 10000.0)?,
            rope: RopeStyle::Adjacent,
            context: num("context_length")?,
        };
        cfg.check(path)
    }

    /// From a Hugging Face `config.json` (`model_type` `llama` or `mistral`).
    pub fn from_hf(config: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read(config).map_err(|e| LlmError::Missing {
            path: config.to_path_buf(),
            what: "config.json",
            why: format!("{e}; a Hugging Face model directory must hold config.json to run the model"),
        })?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| bad(config, format!("not valid JSON: {e}")))?;
        let arch = v.get("model_type").and_then(|m| m.as_str()).unwrap_or("(none)");
        if !matches!(arch, "llama" | "mistral") {
            return Err(LlmError::UnsupportedArchitecture {
                path: config.to_path_buf(),
                arch: arch.to_string(),
            });
        }
        let num = |k: &str| -> Result<usize, LlmError> {
            v.get(k)
                .and_then(|x| x.as_u64())
                .and_then(|x| usize::try_from(x).ok())
                .filter(|&x| x > 0)
                .ok_or_else(|| bad(config, format!("lacks a positive integer `{k}`")))
        };
        let act = v.get("hidden_act").and_then(|a| a.as_str()).unwrap_or("silu");
        if act != "silu" {
            return Err(bad(
                config,
                format!("hidden_act `{act}` is not implemented (only silu)"),
            ));
        }
        if v.get("rope_scaling").is_some_and(|r| !r.is_null()) {
            return Err(bad(config, "rope_scaling is not implemented".into()));
        }
        if v.get("attention_bias").and_then(|b| b.as_bool()) == Some(true) {
            return Err(bad(config, "attention_bias is not implemented".into()));
        }
        let hidden = num("hidden_size")?;
        let heads = num("num_attention_heads")?;
        let head_dim = match v.get("head_dim") {
            Some(x) if !x.is_null() => num("head_dim")?,
            _ => hidden / heads,
        };
        let cfg = LlamaConfig {
            hidden,
            layers: num("num_hidden_layers")?,
            heads,
            kv_heads: if v.get("num_key_value_heads").is_some() {
                num("num_key_value_heads")?
            } else {
                heads
            },
            head_dim,
            ffn: num("intermediate_size")?,
            vocab: num("vocab_size")?,
            eps: v.get("rms_norm_eps").and_then(|x| x.as_f64()).unwrap_or(1e-6) as f32,
            rope_base: v.get("rope_theta").and_then(|x| x.as_f64()).unwrap_or(10000.0),
            rope: RopeStyle::Half,
            context: num("max_position_embeddings")?,
        };
        cfg.check(config)
    }

    fn check(self, path: &Path) -> Result<Self, LlmError> {
        if self.heads % self.kv_heads != 0 {
            return Err(bad(
                path,
                format!(
                    "{} heads are not a multiple of {} key/value heads",
                    self.heads, self.kv_heads
                ),
            ));
        }
        if self.head_dim == 0 || self.head_dim % 2 != 0 {
            return Err(bad(
                path,
                format!("head width {} is not a positive even number", self.head_dim),
            ));
        }
        Ok(self)
    }

    /// Width of the query projection (`heads * head_dim`).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Width of the key and value projections (`kv_heads * head_dim`).
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}
