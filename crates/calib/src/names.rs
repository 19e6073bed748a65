//! Tensor-name mapping between Hugging Face (PyTorch) names and the GGUF names llama.cpp uses
//! in its importance matrices, for Llama-style decoder models.
//!
//! | Hugging Face                                   | GGUF (llama.cpp)          |
//! |------------------------------------------------|---------------------------|
//! | `model.layers.N.self_attn.q_proj.{weight,bias}`| `blk.N.attn_q.{weight,bias}` |
//! | `model.layers.N.self_attn.k_proj.*`            | `blk.N.attn_k.*`          |
//! | `model.layers.N.self_attn.v_proj.*`            | `blk.N.attn_v.*`          |
//! | `model.layers.N.self_attn.o_proj.*`            | `blk.N.attn_output.*`     |
//! | `model.layers.N.mlp.gate_proj.*`               | `blk.N.ffn_gate.*`        |
//! | `model.layers.N.mlp.up_proj.*`                 | `blk.N.ffn_up.*`          |
//! | `model.layers.N.mlp.down_proj.*`               | `blk.N.ffn_down.*`        |
//! | `model.layers.N.input_layernorm.weight`        | `blk.N.attn_norm.weight`  |
//! | `model.layers.N.post_attention_layernorm.weight` | `blk.N.ffn_norm.weight` |
//! | `model.embed_tokens.weight`                    | `token_embd.weight`       |
//! | `model.norm.weight`                            | `output_norm.weight`      |
//! | `lm_head.weight`                               | `output.weight`           |
//!
//! This is the mapping of llama.cpp's `convert_hf_to_gguf.py` for the `LlamaForCausalLM`
//! family (Llama, Mistral, Qwen2/3 and SmolLM use the same names). Only the linear layers
//! matter for an importance matrix (llama.cpp records only matrix-multiplication inputs).
//! Files written by this crate use the model's own (Hugging Face) names unchanged.

/// Per-block pairs (HF suffix after `model.layers.N.`, GGUF suffix after `blk.N.`), without
/// the trailing `.weight` / `.bias`.
const BLOCK: [(&str, &str); 9] = [
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
    ("input_layernorm", "attn_norm"),
    ("post_attention_layernorm", "ffn_norm"),
];

/// Whole-model pairs (HF, GGUF), full names.
const GLOBAL: [(&str, &str); 3] = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Splits `name` into (layer index, middle, param) for `<prefix><N>.<middle>.<param>` where
/// param is `weight` or `bias`.
fn split_block<'a>(name: &'a str, prefix: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (idx, rest) = rest.split_once('.')?;
    if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (mid, param) = rest.rsplit_once('.')?;
    if param != "weight" && param != "bias" {
        return None;
    }
    Some((idx, mid, param))
}

/// Maps a Llama-style Hugging Face tensor name to its llama.cpp GGUF name, e.g.
/// `model.layers.0.self_attn.q_proj.weight` -> `blk.0.attn_q.weight`. `None` for names outside
/// the table in the module documentation.
pub fn hf_to_gguf(name: &str) -> Option<String> {
    if let Some((_, g)) = GLOBAL.iter().find(|(h, _)| *h == name) {
        return Some((*g).to_string());
    }
    let (idx, mid, param) = split_block(name, "model.layers.")?;
    let (_, g) = BLOCK.iter().find(|(h, _)| *h == mid)?;
    Some(format!("blk.{idx}.{g}.{param}"))
}

/// Maps a llama.cpp GGUF tensor name back to the Llama-style Hugging Face name, e.g.
/// `blk.3.ffn_down.weight` -> `model.layers.3.mlp.down_proj.weight`. The inverse of
/// [`hf_to_gguf`].
pub fn gguf_to_hf(name: &str) -> Option<String> {
    if let Some((h, _)) = GLOBAL.iter().find(|(_, g)| *g == name) {
        return Some((*h).to_string());
    }
    let (idx, mid, param) = split_block(name, "blk.")?;
    let (h, _) = BLOCK.iter().find(|(_, g)| *g == mid)?;
    Some(format!("model.layers.{idx}.{h}.{param}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_names() {
        let pairs = [
            ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"),
            ("model.layers.31.self_attn.o_proj.weight", "blk.31.attn_output.weight"),
            ("model.layers.2.mlp.down_proj.weight", "blk.2.ffn_down.weight"),
            ("model.layers.2.self_attn.k_proj.bias", "blk.2.attn_k.bias"),
            (
                "model.layers.7.post_attention_layernorm.weight",
                "blk.7.ffn_norm.weight",
            ),
            ("lm_head.weight", "output.weight"),
            ("model.embed_tokens.weight", "token_embd.weight"),
        ];
        for (h, g) in pairs {
            assert_eq!(hf_to_gguf(h).as_deref(), Some(g), "{h}");
            assert_eq!(gguf_to_hf(g).as_deref(), Some(h), "{g}");
        }
    }

    #[test]
    fn unknown_names() {
        for n in [
            "encoder.layer.0.attention.self.query.weight",
            "model.layers.x.self_attn.q_proj.weight",
            "model.layers.0.self_attn.q_proj.scale",
            "model.layers..mlp.up_proj.weight",
            "blk.0.attn_q",
            "",
        ] {
            assert_eq!(hf_to_gguf(n), None, "{n}");
            assert_eq!(gguf_to_hf(n), None, "{n}");
        }
    }
}
