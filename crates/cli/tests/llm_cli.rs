//! `sop` on a decoder LLM, end to end on the real SmolLM2-135M-Instruct GGUF (the `smollm2`
//! alias; Q4_1 weights, so every figure is relative to an already 4-bit model): `sop eval`
//! says the source was already quantized; `sop calibrate` writes an imatrix with llama.cpp
//! names; `sop quantize --imatrix` and `sop fidelity` on a few layers; bad input.
//! Short text and few layers keep this within the CI budget.

mod common;

use common::{one_line_error, sop};

#[test]
fn eval_on_gguf_says_the_source_was_quantized() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("e.json");
    let (code, out, err) = sop(&[
        "eval",
        "--model",
        "smollm2",
        "--layers",
        "blk\\.0\\.attn_q",
        "--formats",
        "E2M1sE4M3b16",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("blk.0.attn_q.weight"), "{out}");
    assert!(
        err.contains("already quantized (210 x Q4_1, 1 x Q8_0 tensors)"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v["source_quantized"].as_str().unwrap().contains("already quantized"));
}

#[test]
fn calibrate_quantize_and_fidelity_on_smollm2() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (code, _, err) = sop(&[
        "calibrate",
        "--model",
        "smollm2",
        "--out",
        &d("im.gguf"),
        "--max-sentences",
        "12",
        "--max-seq-len",
        "64",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("210 layers"), "{err}");
    let stats = sop_calib::ImatrixStats::read(&dir.path().join("im.gguf")).unwrap();
    let q = &stats.per_layer["blk.0.attn_q.weight"];
    assert_eq!(q.cols(), 576);
    assert!(q.count >= 64 && q.sum_x2.iter().all(|&v| v > 0.0));
    assert_eq!(stats.per_layer["blk.3.ffn_down.weight"].cols(), 1536);

    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        "smollm2",
        "--imatrix",
        &d("im.gguf"),
        "--layers",
        "blk\\.1\\.",
        "--target-bpw",
        "4.75",
        "--out",
        &d("q"),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = sop(&[
        "fidelity",
        "--model",
        "smollm2",
        "--quantized",
        &d("q"),
        "--tokens",
        "64",
        "--json",
        &d("f.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("fidelity: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("fidelity: 63 tokens, perplexity "), "{line}");
    assert!(
        line.contains(" -> ") && line.contains("mean KLD") && line.ends_with(" %"),
        "{line}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d("f.json")).unwrap()).unwrap();
    let kld = v["mean_kld"].as_f64().unwrap();
    // Seven of 210 layers re-quantized at 4.75 bpw: the predictions move, but little.
    assert!(kld > 0.0 && kld < 0.1, "{kld}");
    assert!(v["top1_agreement_pct"].as_f64().unwrap() > 80.0);
    assert_eq!(
        v["layers_hardware"].as_u64().unwrap() + v["layers_software"].as_u64().unwrap(),
        7
    );
}

#[test]
fn fidelity_with_a_quantized_model_of_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        "smollm2",
        "--layers",
        "blk\\.0\\.attn_k",
        "--target-bpw",
        "4.75",
        "--out",
        q.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sop(&["fidelity", "--model", "minilm", "--quantized", q.to_str().unwrap()]);
    one_line_error(code, &err, &["blk.0.attn_k.weight", "not a tensor of"]);
}
