//! The Rust forward pass of all-MiniLM-L6-v2 against the independent numpy reference
//! (`scripts/minilm-reference.py`, fixture `tests/fixtures/minilm_reference.json`).

mod common;

use sop_calib::Encoder;

#[derive(serde::Deserialize)]
struct Fixture {
    model_sha256: String,
    max_seq_len: usize,
    sentences: Vec<Sentence>,
}

#[derive(serde::Deserialize)]
struct Sentence {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap()
}

#[test]
fn tokens_and_embeddings_match_reference() {
    let fx = fixture();
    assert_eq!(fx.model_sha256.len(), 64);
    let enc = Encoder::load(&common::minilm(), fx.max_seq_len).unwrap();
    let texts: Vec<String> = fx.sentences.iter().map(|s| s.text.clone()).collect();
    let ids = enc.encode(&texts).unwrap();
    for (s, got) in fx.sentences.iter().zip(&ids) {
        assert_eq!(got, &s.ids, "token ids of {:?}", s.text);
    }
    let emb = enc.embed(&texts).unwrap();
    for (s, e) in fx.sentences.iter().zip(&emb) {
        assert_eq!(e.len(), 384);
        let dot: f64 = e.iter().zip(&s.embedding).map(|(a, b)| f64::from(*a) * b).sum();
        let na = e.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        let nb = s.embedding.iter().map(|b| b * b).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        let max_abs = e
            .iter()
            .zip(&s.embedding)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        eprintln!("cos = {cos:.9}  max |diff| = {max_abs:.2e}  {:?}", s.text);
        assert!(cos > 0.9999, "cosine {cos} for {:?}", s.text);
        assert!(max_abs < 1e-4, "max abs diff {max_abs} for {:?}", s.text);
    }
}

#[test]
fn batching_does_not_change_embeddings() {
    let fx = fixture();
    let enc = Encoder::load(&common::minilm(), fx.max_seq_len).unwrap();
    let texts: Vec<String> = fx.sentences.iter().map(|s| s.text.clone()).collect();
    let all = enc.embed(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let one = enc.embed(std::slice::from_ref(t)).unwrap();
        assert_eq!(one[0], all[i], "sentence {i}");
    }
}
