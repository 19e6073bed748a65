//! Bad input to the Llama pass: one clear error each.

use std::path::Path;

use sop_llm::{Llama, LlmError, LlmTokenizer};
use sop_model::gguf::{self, OutTensor, Value};

fn tiny_safetensors(dir: &Path) {
    let data: Vec<u8> = [0.5f32; 8].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 4], &data).unwrap();
    let bytes = safetensors::serialize([("model.layers.0.mlp.up_proj.weight", view)], None).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

#[test]
fn hf_directory_without_config_json() {
    let dir = tempfile::tempdir().unwrap();
    tiny_safetensors(dir.path());
    let e = Llama::load(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            LlmError::Missing {
                what: "config.json",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("config.json"), "{e}");
}

#[test]
fn hf_directory_of_another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    tiny_safetensors(dir.path());
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let e = Llama::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("`gpt2`") && e.contains("sop eval") && e.contains("without calibration"),
        "{e}"
    );
}

#[test]
fn hf_directory_without_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    tiny_safetensors(dir.path());
    let e = LlmTokenizer::load(dir.path(), None).unwrap_err();
    assert!(
        matches!(
            e,
            LlmError::Missing {
                what: "tokenizer.json",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn gguf_of_another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let kv = vec![("general.architecture".to_string(), Value::Str("qwen3".into()))];
    let t = OutTensor {
        name: "blk.0.ffn_up.weight".into(),
        ne: vec![4, 2],
        data: vec![0.25; 8],
    };
    std::fs::write(&p, gguf::write(&kv, &[t])).unwrap();
    let e = Llama::load(&p).unwrap_err().to_string();
    assert!(e.contains("`qwen3`") && e.contains("m.gguf"), "{e}");
    // What still works: the weights open as a model.
    assert_eq!(sop_model::Model::open(&p).unwrap().linear_layers().len(), 1);
}

#[test]
fn gguf_without_a_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    std::fs::write(&p, gguf::write(&[], &[])).unwrap();
    let e = LlmTokenizer::load(&p, Some(&[])).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.model"), "{e}");
}

/// An imatrix (or any GGUF without `general.architecture`) given as the model.
#[test]
fn gguf_without_an_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let t = OutTensor {
        name: "blk.0.ffn_up.weight".into(),
        ne: vec![4, 2],
        data: vec![0.25; 8],
    };
    std::fs::write(&p, gguf::write(&[], &[t])).unwrap();
    let e = Llama::load(&p).unwrap_err();
    assert!(matches!(e, LlmError::Config { .. }), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("m.gguf") && e.contains("lacks general.architecture"), "{e}");
}

/// A Llama `config.json` without the context length.
#[test]
fn hf_config_without_max_position_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    tiny_safetensors(dir.path());
    let config = r#"{"model_type": "llama", "hidden_size": 4, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 2, "vocab_size": 8}"#;
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let e = Llama::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("config.json") && e.contains("lacks a positive integer `max_position_embeddings`"),
        "{e}"
    );
}
