//! Statistics collected on the real all-MiniLM-L6-v2: sanity, determinism, format round trip.

mod common;

use sop_calib::{builtin_texts, calibrate, CalibOptions, ImatrixStats};
use sop_model::Model;

#[test]
fn stats_cover_every_linear_layer_with_sane_values() {
    let path = common::minilm();
    let model = Model::open(&path).unwrap();
    let layers = model.linear_layers();
    assert_eq!(layers.len(), 37);
    let st = common::small_stats();
    assert_eq!(st.len(), 37);
    let cov = st.match_model(&path, &layers).unwrap();
    assert_eq!(cov.matched.len(), 37);
    assert!(cov.missing.is_empty() && cov.unused.is_empty());
    let tokens = st.per_layer["encoder.layer.0.attention.self.query.weight"].count;
    assert!(tokens > 64 * 10, "{tokens} tokens for 64 sentences");
    assert_eq!(st.chunks, 64);
    assert_eq!(st.chunk_size, 256);
    for t in &layers {
        let s = &st.per_layer[&t.name];
        let cols = t.shape[1];
        let want_cols = if t.name.ends_with("output.dense.weight") && !t.name.contains("attention") {
            1536
        } else {
            384
        };
        assert_eq!(cols, want_cols, "{}", t.name);
        assert_eq!(s.cols(), cols, "{}", t.name);
        let want_count = if t.name.starts_with("pooler") { 64 } else { tokens };
        assert_eq!(s.count, want_count, "{}", t.name);
        let a = st.column_weights(&t.name, cols).unwrap().unwrap();
        assert!(a.iter().all(|v| v.is_finite() && *v >= 0.0), "{}", t.name);
        // Every column is active, except two of the pooler's: the last LayerNorm has gamma and
        // beta ~1e-32 in hidden dimensions 127 and 223, so their squares underflow to 0.
        let zeros: Vec<usize> = (0..cols).filter(|&j| a[j] == 0.0).collect();
        if t.name.starts_with("pooler") {
            assert!(zeros.iter().all(|j| [127, 223].contains(j)), "{zeros:?}");
        } else {
            assert!(zeros.is_empty(), "{}: zero columns {zeros:?}", t.name);
        }
        // E[x^2] >= E[x]^2 per column.
        let sx = s.sum_x.as_ref().unwrap();
        for j in 0..cols {
            let m = sx[j] / s.count as f64;
            assert!(f64::from(a[j]) >= m * m * (1.0 - 1e-5) - 1e-30, "{} col {j}", t.name);
        }
    }
    // q, k and v see the same input.
    let q = &st.per_layer["encoder.layer.3.attention.self.query.weight"];
    assert_eq!(q, &st.per_layer["encoder.layer.3.attention.self.key.weight"]);
    assert_eq!(q, &st.per_layer["encoder.layer.3.attention.self.value.weight"]);
    // Post-GELU inputs of output.dense are mostly small but not all zero; LayerNorm outputs
    // (inputs of q/k/v) are O(1) on average.
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
    let qa = st
        .column_weights("encoder.layer.3.attention.self.query.weight", 384)
        .unwrap()
        .unwrap();
    assert!((0.05..20.0).contains(&mean(&qa)), "{}", mean(&qa));
    // The wrong column count is an error naming the tensor.
    let e = st
        .column_weights("encoder.layer.3.attention.self.query.weight", 1536)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("encoder.layer.3.attention.self.query.weight") && e.contains("1536"),
        "{e}"
    );
    // A layer without statistics is None.
    assert_eq!(st.column_weights("lm_head.weight", 384).unwrap(), None);
}

#[test]
fn same_stats_at_one_and_two_threads_and_any_batch_size() {
    let path = common::minilm();
    let texts: Vec<String> = builtin_texts().into_iter().take(24).collect();
    let run = |threads, batch_tokens| {
        let opts = CalibOptions {
            threads: Some(threads),
            batch_tokens,
            ..CalibOptions::default()
        };
        calibrate(&path, &texts, &opts, &mut |_| {}).unwrap()
    };
    let a = run(1, 2048);
    let b = run(2, 2048);
    let c = run(2, 50);
    for (name, s) in &a.per_layer {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&s.sum_x2),
            bits(&b.per_layer[name].sum_x2),
            "{name}: 1 vs 2 threads"
        );
        assert_eq!(bits(&s.sum_x2), bits(&c.per_layer[name].sum_x2), "{name}: batch size");
    }
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn gguf_round_trip_is_bit_exact() {
    let st = common::small_stats();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("minilm.imatrix.gguf");
    st.write(&p).unwrap();
    let back = ImatrixStats::read(&p).unwrap();
    assert_eq!(back.per_layer, st.per_layer);
    assert_eq!(back.datasets, st.datasets);
    assert_eq!((back.chunks, back.chunk_size), (st.chunks, st.chunk_size));
    // Writing what was read gives the same bytes.
    let p2 = dir.path().join("again.gguf");
    back.write(&p2).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&p2).unwrap());
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn progress_is_reported() {
    let texts: Vec<String> = builtin_texts().into_iter().take(10).collect();
    let opts = CalibOptions {
        batch_tokens: 64,
        ..CalibOptions::default()
    };
    let mut seen = Vec::new();
    calibrate(&common::minilm(), &texts, &opts, &mut |p| seen.push(*p)).unwrap();
    assert!(seen.len() > 1);
    assert!(seen.windows(2).all(|w| w[0].sentences_done < w[1].sentences_done));
    let last = seen.last().unwrap();
    assert_eq!((last.sentences_done, last.sentences_total), (10, 10));
}

/// The full built-in set, timed (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn full_builtin_run_time() {
    let t = std::time::Instant::now();
    let st = calibrate(
        &common::minilm(),
        &builtin_texts(),
        &CalibOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let tokens = st.per_layer["encoder.layer.0.attention.self.query.weight"].count;
    eprintln!(
        "{} sentences, {tokens} tokens, {:.2} s",
        st.chunks,
        t.elapsed().as_secs_f64()
    );
}
