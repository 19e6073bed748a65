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

/// `sop quantize --model <model> --layers <layers> --menu E2M1sE4M3b16 --target-bpw 4.5
/// --out <out> <extra...>`: every selected layer at the NVFP4-like point.
fn quantize_nvfp4(model: &str, layers: &str, out: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "quantize",
        "--model",
        model,
        "--layers",
        layers,
        "--menu",
        "E2M1sE4M3b16",
        "--target-bpw",
        "4.5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sop(&args)
}

/// `sop quantize --fidelity` on a decoder: the fidelity pass runs on the model just written,
/// its figures land in report.json (`fidelity`), report.md and the printed summary, and they
/// are the figures `sop fidelity` gives for the same directory.
#[test]
fn quantize_with_fidelity_on_smollm2() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    let (code, out, err) = quantize_nvfp4(
        "smollm2",
        "blk\\.2\\.attn_[kv]",
        &q,
        &["--fidelity", "--fidelity-tokens", "24"],
    );
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("fidelity: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("fidelity: 23 tokens, perplexity "), "{line}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(q.join("report.json")).unwrap()).unwrap();
    let f = &r["fidelity"];
    assert_eq!(f["tokens"], 23);
    assert_eq!(
        f["layers_hardware"].as_u64().unwrap() + f["layers_software"].as_u64().unwrap(),
        2
    );
    let kld = f["mean_kld"].as_f64().unwrap();
    // Two small layers re-quantized at 4.5 bpw: the predictions move, but little.
    assert!(kld > 0.0 && kld < 0.1, "{kld}");
    let md = std::fs::read_to_string(q.join("report.md")).unwrap();
    assert!(md.contains("- fidelity (23 held-out tokens): perplexity "), "{md}");

    let json = dir.path().join("f.json");
    let (code, _, err) = sop(&[
        "fidelity",
        "--model",
        "smollm2",
        "--quantized",
        q.to_str().unwrap(),
        "--tokens",
        "24",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for k in [
        "perplexity_original",
        "perplexity_quantized",
        "mean_kld",
        "top1_agreement_pct",
    ] {
        assert_eq!(v[k], f[k], "{k}");
    }
}

/// `sop quantize --fidelity` on a BERT encoder reports the output-embedding cosine; a bad
/// `--fidelity-tokens` is one error naming the option, before anything is written.
#[test]
fn quantize_with_fidelity_on_an_encoder_and_bad_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    let layer = "layer\\.0\\.attention\\.self\\.query";
    let (code, out, err) = quantize_nvfp4("minilm", layer, &q, &["--fidelity", "--fidelity-tokens", "200"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output-embedding cosine"), "{out}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(q.join("report.json")).unwrap()).unwrap();
    let c = r["fidelity"]["embedding_cosine"].as_f64().unwrap();
    assert!(c > 0.99 && c <= 1.0 + 1e-9, "{c}");
    let q2 = dir.path().join("q2");
    let (code, _, err) = quantize_nvfp4("minilm", layer, &q2, &["--fidelity", "--fidelity-tokens", "1"]);
    one_line_error(code, &err, &["--fidelity-tokens 1", "at least 2"]);
    assert!(!q2.exists());
}

/// `--sensitivity measured` on a decoder: each layer's measured sensitivity is the mean KL
/// divergence (on the first `--sensitivity-tokens` calibration tokens) caused by that layer
/// alone at its cheapest option, per unit aw-NMSE -- checked against `sop fidelity` on the
/// same tokens with only that layer quantized; and the whole output (model, report) is the
/// same at 1 and 2 threads.
#[test]
fn measured_sensitivity_on_a_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run = |threads: &str, out: &str, sens: &str| {
        let out = d(out);
        let (code, _, err) = sop(&[
            "--threads",
            threads,
            "quantize",
            "--model",
            "smollm2",
            "--layers",
            "blk\\.(0|29)\\.attn_[kv]",
            "--target-bpw",
            "5",
            "--sensitivity",
            sens,
            "--sensitivity-tokens",
            "16",
            "--out",
            &out,
        ]);
        assert_eq!(code, 0, "{err}");
        common::files(std::path::Path::new(&out))
    };
    let one = run("1", "m1", "measured");
    assert_eq!(
        one,
        run("2", "m2", "measured"),
        "measured: output differs between 1 and 2 threads"
    );
    let r: serde_json::Value = serde_json::from_slice(&one["report.json"]).unwrap();
    assert_eq!(r["mckp"]["sensitivity"], "measured");
    let s: Vec<f64> = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["measured_sensitivity"].as_f64().unwrap())
        .collect();
    assert_eq!(s.len(), 4);
    assert!(s.iter().all(|v| v.is_finite() && *v > 1e-12), "{s:?}");
    let h: serde_json::Value = serde_json::from_slice(&run("2", "h", "hybrid")["report.json"]).unwrap();
    assert_eq!(h["mckp"]["sensitivity"], "hybrid");

    // One layer, one option (so the cheapest is the chosen one): s * aw-NMSE is the mean KLD
    // that `sop fidelity` measures on the same 16 calibration tokens.
    let (code, _, err) = quantize_nvfp4(
        "smollm2",
        "blk\\.3\\.attn_v",
        &dir.path().join("one"),
        &[
            "--sensitivity",
            "measured",
            "--sensitivity-tokens",
            "16",
            "--hw",
            "none",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(d("one/report.json")).unwrap()).unwrap();
    let l = &r["layers"][0];
    let predicted = l["measured_sensitivity"].as_f64().unwrap() * l["w_nmse"].as_f64().unwrap();
    std::fs::write(d("calib.txt"), sop_calib::builtin_texts().join("\n")).unwrap();
    let (code, _, err) = sop(&[
        "fidelity",
        "--model",
        "smollm2",
        "--quantized",
        &d("one"),
        "--text",
        &d("calib.txt"),
        "--tokens",
        "16",
        "--window",
        "16",
        "--hw",
        "none",
        "--json",
        &d("f.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d("f.json")).unwrap()).unwrap();
    let kld = v["mean_kld"].as_f64().unwrap();
    assert!(kld > 0.0);
    assert!(
        (predicted - kld).abs() <= 1e-9 * kld,
        "measured {predicted} vs fidelity {kld}"
    );
}

/// `--sensitivity-tokens` below 2 with a measured sensitivity: one error naming the option,
/// nothing written.
#[test]
fn too_few_sensitivity_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q");
    let (code, _, err) = sop(&[
        "quantize",
        "--model",
        "smollm2",
        "--target-bpw",
        "5",
        "--sensitivity",
        "hybrid",
        "--sensitivity-tokens",
        "1",
        "--out",
        q.to_str().unwrap(),
    ]);
    one_line_error(code, &err, &["--sensitivity-tokens 1", "at least 2"]);
    assert!(!q.exists());
}

/// The decoder imatrix (`sop calibrate` on smollm2) is the same file at 1 and 2 threads.
#[test]
fn decoder_imatrix_is_the_same_at_1_and_2_threads() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let f = dir.path().join(format!("im{threads}.gguf"));
        let (code, _, err) = sop(&[
            "--threads",
            threads,
            "calibrate",
            "--model",
            "smollm2",
            "--out",
            f.to_str().unwrap(),
            "--max-sentences",
            "6",
            "--max-seq-len",
            "32",
        ]);
        assert_eq!(code, 0, "{err}");
        files.push(std::fs::read(&f).unwrap());
    }
    assert!(files[0].len() > 1000);
    assert!(files[0] == files[1], "imatrix bytes differ between 1 and 2 threads");
}
