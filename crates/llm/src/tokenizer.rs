//! The tokenizer of a decoder LLM: `tokenizer.json` beside Hugging Face weights, or built from
//! a GGUF file's metadata (`tokenizer.ggml.*`; GPT-2 byte-level BPE, as SmolLM2 uses).

use std::path::{Path, PathBuf};

use sop_model::gguf::Value;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::LlmError;

/// GGUF `tokenizer.ggml.token_type` of control tokens (`<|im_start|>`, ...), matched as
/// whole special tokens in text.
const TOKEN_TYPE_CONTROL: u64 = 3;

/// A loaded tokenizer.
pub struct LlmTokenizer {
    tok: Tokenizer,
    source: PathBuf,
    /// The end-of-sequence token id, when known.
    pub eos: Option<u32>,
}

impl std::fmt::Debug for LlmTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTokenizer").field("source", &self.source).finish()
    }
}

impl LlmTokenizer {
    /// The tokenizer of the model at `path`: from the GGUF metadata `kv` when given, else
    /// `tokenizer.json` in the model's directory.
    pub fn load(path: &Path, kv: Option<&[(String, Value)]>) -> Result<Self, LlmError> {
        match kv {
            Some(kv) => Self::from_gguf(path, kv),
            None => {
                let file = sop_calib::model_dir(path).join("tokenizer.json");
                if !file.is_file() {
                    return Err(LlmError::Missing {
                        path: file,
                        what: "tokenizer.json",
                        why: "a Hugging Face model directory must hold its tokenizer to run the model".into(),
                    });
                }
                let tok = Tokenizer::from_file(&file).map_err(|e| LlmError::Tokenizer {
                    path: file.clone(),
                    reason: e.to_string(),
                })?;
                let eos = ["</s>", "<|endoftext|>", "<|end_of_text|>"]
                    .iter()
                    .find_map(|t| tok.token_to_id(t));
                Ok(LlmTokenizer { tok, source: file, eos })
            }
        }
    }

    fn from_gguf(path: &Path, kv: &[(String, Value)]) -> Result<Self, LlmError> {
        let bad = |reason: String| LlmError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let strings = |k: &str| -> Result<Vec<&str>, LlmError> {
            match get(k) {
                Some(Value::Array(_, items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::Str(s) => Ok(s.as_str()),
                        _ => Err(bad(format!("`{k}` holds a non-string"))),
                    })
                    .collect(),
                _ => Err(bad(format!("the GGUF metadata lacks the string array `{k}`"))),
            }
        };
        let model = match get("tokenizer.ggml.model") {
            Some(Value::Str(s)) => s.as_str(),
            _ => "(none)",
        };
        if model != "gpt2" {
            return Err(bad(format!(
                "tokenizer.ggml.model `{model}` is not implemented (only `gpt2` byte-level BPE); \
                 give a Hugging Face directory with tokenizer.json instead"
            )));
        }
        let pre = match get("tokenizer.ggml.pre") {
            Some(Value::Str(s)) => s.as_str(),
            _ => "default",
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| bad(format!("merge `{m}` is not two tokens")))
            })
            .collect::<Result<_, _>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut tok = Tokenizer::new(bpe);
        let byte_level = ByteLevel::new(false, true, true);
        match pre {
            // SmolLM's pre-tokenizer: single digits, then GPT-2's byte-level split.
            "smollm" => {
                tok.with_pre_tokenizer(Some(Sequence::new(vec![Digits::new(true).into(), byte_level.into()])));
            }
            "gpt2" | "default" => {
                tok.with_pre_tokenizer(Some(byte_level));
            }
            other => {
                return Err(bad(format!(
                    "tokenizer.ggml.pre `{other}` is not implemented (smollm, gpt2); give a Hugging Face \
                     directory with tokenizer.json instead"
                )))
            }
        }
        tok.with_decoder(Some(ByteLevel::default()));
        if let Some(Value::Array(_, types)) = get("tokenizer.ggml.token_type") {
            let special: Vec<AddedToken> = types
                .iter()
                .zip(&tokens)
                .filter(|(t, _)| t.as_u64() == Some(TOKEN_TYPE_CONTROL))
                .map(|(_, s)| AddedToken::from(s.to_string(), true))
                .collect();
            tok.add_special_tokens(&special);
        }
        let eos = get("tokenizer.ggml.eos_token_id")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        Ok(LlmTokenizer {
            tok,
            source: path.to_path_buf(),
            eos,
        })
    }

    /// Token ids of `text` (special tokens written in it, like `<|im_start|>`, become their
    /// ids; no BOS is added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.tok
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| LlmError::Tokenizer {
                path: self.source.clone(),
                reason: e.to_string(),
            })
    }

    /// The text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.tok.decode(ids, false).map_err(|e| LlmError::Tokenizer {
            path: self.source.clone(),
            reason: e.to_string(),
        })
    }
}
