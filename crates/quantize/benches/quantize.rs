//! Quantizer throughput on a real-size layer (1536 x 384, synthetic Gaussian weights from a
//! seeded generator): weights per second for the FP6 point with scale search, and for the
//! full NF4+DD4 pair search (DD4 fit with EM rounds). A second group quantizes a 7B-model
//! layer (4096 x 4096) with the NF4+DD4 pair, with and without the per-layer table search
//! (whose cost is fixed per layer: 11 candidates on a 64 Ki-weight sample).
//!
//! Run: `cargo bench -p sop-quantize --bench quantize`. Criterion reports "thrpt" in
//! elements/s = weights/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

const ROWS: usize = 1536;
const COLS: usize = 384;

/// SplitMix64 + Box-Muller: N(0, 0.02^2) weights, reproducible.
fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            (0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = gaussian(ROWS * COLS, 42);
    let layer = LayerRef {
        name: "bench",
        rows: ROWS,
        cols: COLS,
        data: &data,
    };
    let mut g = c.benchmark_group("quantize_1536x384");
    g.throughput(Throughput::Elements((ROWS * COLS) as u64));
    g.sample_size(20);
    for name in ["E2M3sUE4M4", "NF4+DD4sUE4M4b16", "E4M3-POT"] {
        let q = Quantizer::new(name.parse().unwrap(), QuantOptions::default()).unwrap();
        g.bench_function(name, |b| b.iter(|| q.quantize(layer, None).unwrap()));
    }
    let opts = QuantOptions {
        table_search: false,
        ..QuantOptions::default()
    };
    let q = Quantizer::new("NF4+DD4sUE4M4b16".parse().unwrap(), opts).unwrap();
    g.bench_function("NF4+DD4sUE4M4b16 no-table-search", |b| {
        b.iter(|| q.quantize(layer, None).unwrap())
    });
    g.finish();

    let (rows, cols) = (4096, 4096);
    let data = gaussian(rows * cols, 7);
    let layer = LayerRef {
        name: "bench7b",
        rows,
        cols,
        data: &data,
    };
    let mut g = c.benchmark_group("quantize_4096x4096");
    g.throughput(Throughput::Elements((rows * cols) as u64));
    g.sample_size(10);
    for search in [true, false] {
        let opts = QuantOptions {
            table_search: search,
            ..QuantOptions::default()
        };
        let q = Quantizer::new("NF4+DD4sUE4M4b16".parse().unwrap(), opts).unwrap();
        let id = if search {
            "NF4+DD4sUE4M4b16"
        } else {
            "NF4+DD4sUE4M4b16 no-table-search"
        };
        g.bench_function(id, |b| b.iter(|| q.quantize(layer, None).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
