//! Parallel co-simulation: checked output words per wall-clock second of `sop cosim`'s work
//! queue at 1 and at 2 worker threads, measured side by side in one run, and the speedup;
//! the same for the soak.
//!
//! ```sh
//! cargo bench -p sop-testbenches --bench parallel
//! ```
//!
//! Work: the 12 linear layers of minilm's first two blocks (3.5 M weights), quantized once
//! before timing at three options the fixed lanes decode (`NF4+DD4sUE4M4b16` on the HIF8
//! lane, `NF4+DD4sUE4M4b16-FP16` on the FP16-LUT lane, `E2M3sUE4M4b16` on the 6-bit FP16-LUT
//! lane) and co-simulated from those layers exactly as `sop cosim --quantized` does
//! (`run_quantized`: 36 layer x configuration items, each on a fresh model, default stream,
//! every word checked): so the figure is the simulation and its checks, not quantization.
//! Soak: `soak` with 2 rounds on the two attention-query layers at every configuration
//! (its one-time quantization excluded from its rate).
//! Each figure is the best of `TRIALS` runs, the thread counts alternating so that a change
//! of the machine's load hits both; the load average is printed before and after.

use std::time::Instant;

use sop_cosim::{run_quantized, soak, CosimOptions};
use sop_quantize::sparse::MenuOption;
use sop_testbenches::{load, minilm, quantize_at};

const TRIALS: usize = 3;
const OPTIONS: [&str; 3] = ["NF4+DD4sUE4M4b16", "NF4+DD4sUE4M4b16-FP16", "E2M3sUE4M4b16"];
const FIXED: [&str; 3] = [
    "sop_c4_hif8_ue4m4_fp16",
    "sop_c4_fp16lut_ue4m4_fp16",
    "sop_c6_fp16lut_ue4m4_bf16",
];

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("parallel co-simulation: {cores} cores, load average {}", loadavg());
    let layers: Vec<String> = minilm()
        .linear_layers()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with("encoder.layer.0.") || n.starts_with("encoder.layer.1."))
        .collect();
    let mut model = Vec::new();
    for name in &layers {
        let w = load(name);
        for o in OPTIONS {
            let opt: MenuOption = o.parse().unwrap();
            let mut ql = quantize_at(opt.point, &w);
            ql.name = format!("{name}:{o}");
            model.push((ql, opt));
        }
    }

    // run_quantized at 1 and 2 threads, alternating.
    let mut best = [0.0f64; 2];
    let mut words = [0u64; 2];
    for _ in 0..TRIALS {
        for (k, threads) in [1usize, 2].into_iter().enumerate() {
            let opts = CosimOptions {
                only: FIXED.iter().map(|s| s.to_string()).collect(),
                threads,
                ..CosimOptions::default()
            };
            let t = Instant::now();
            let s = run_quantized(&opts, &model, |_| {}).unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert!(s.passed(), "{s}");
            assert_eq!(s.reports.len(), layers.len() * OPTIONS.len());
            words[k] = s.weights;
            best[k] = best[k].max(s.weights as f64 / secs);
        }
    }
    assert_eq!(words[0], words[1], "the same words at any thread count");
    println!(
        "cosim ({} items, {} words): 1 thread {:.1} M checked words/s, 2 threads {:.1} M/s, speedup {:.2}x",
        layers.len() * OPTIONS.len(),
        words[0],
        best[0] / 1e6,
        best[1] / 1e6,
        best[1] / best[0]
    );

    // The soak at 1 and 2 threads, alternating (its quantization is not in its rate).
    let mut sbest = [0.0f64; 2];
    let mut swords = [0u64; 2];
    for _ in 0..TRIALS {
        for (k, threads) in [1usize, 2].into_iter().enumerate() {
            let opts = CosimOptions {
                layers: Some("attention\\.self\\.query\\.weight$".into()),
                threads,
                ..CosimOptions::default()
            };
            let s = soak(&opts, 2, |_| {}).unwrap();
            assert_eq!(s.mismatches, 0, "{s}");
            swords[k] = s.weights;
            sbest[k] = sbest[k].max(s.mweights_per_sec());
        }
    }
    assert_eq!(swords[0], swords[1], "the same soak words at any thread count");
    println!(
        "soak ({} words): 1 thread {:.1} M checked words/s, 2 threads {:.1} M/s, speedup {:.2}x",
        swords[0],
        sbest[0],
        sbest[1],
        sbest[1] / sbest[0]
    );
    println!("load average after: {}", loadavg());
}
