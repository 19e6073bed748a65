//! Checks sampled menu evaluation against full evaluation on a real model (default: minilm,
//! calibrated in-process on the built-in text): for each target and sample size, the options
//! chosen from samples versus from full evaluation, and the total distortion of each choice
//! measured on the whole layers (the sampled choice's excess over the full choice is what
//! sampling costs; target: within 1 %).
//!
//! ```sh
//! cargo run --release -p sop-search --example sample_check -- [MODEL] [SAMPLES,..] [TARGETS,..]
//! ```
//! MENU (environment) overrides the menu (comma-separated options).

use std::time::Instant;

use anyhow::{Context, Result};
use sop_quantize::sparse::MenuOption;
use sop_quantize::QuantOptions;
use sop_search::{choose, evaluate, sensitivities, Evaluation, Quiet, Sensitivity, Spec};

/// The default menu of `sop quantize` (crates/cli/src/quantize_cmd.rs, DEFAULT_MENU).
const MENU: &str = "NF4+DD4sUE4M4b16,NF4+DD4sUE4M4b16+R0.5%,Split87+DD4sSE4M3b16,E2M1sE4M3b16,\
E2M1sUE4M4b16,NF4+DD4sUE4M4b32,NF4+DD4sUE4M4b8,E2M3sUE4M4b32,E2M3sUE4M4b64,E2M3sUE4M4,E3M2sUE4M4,\
E2M3sUE4M4+R0.5%,E2M3sUE4M4b8,E2M3sUE4M4b32+R0.5%,E2M3sUE4M4+O0.05%,E2M3sUE4M4b8+R0.5%,E2M3sUE4M4+R1%,\
E2M3sUE4M4b32+R1%,NF4+DD4sUE4M4b32+O0.05%,NF4+DD4sUE4M4b32+R0.25%,NF4+DD4sUE4M4b16+O0.05%,NF4+DD4sUE4M4b8+O0.05%,\
E2M3sUE4M4b64+O0.05%";

/// Total distortion of `choice` with the whole-layer metrics of `full`.
fn true_distortion(full: &Evaluation, sens: &[f64], choice: &[usize]) -> f64 {
    full.layers
        .iter()
        .zip(sens)
        .zip(choice)
        .map(|((l, &s), &k)| sop_search::distortion(&l.options[k].metrics, s))
        .sum()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec_model = args.first().map_or("minilm", String::as_str);
    let samples: Vec<usize> = args
        .get(1)
        .map_or("65536,131072", String::as_str)
        .split(',')
        .map(|s| s.parse().context("sample sizes"))
        .collect::<Result<_>>()?;
    let targets: Vec<f64> = args
        .get(2)
        .map_or("4.75,6.5", String::as_str)
        .split(',')
        .map(|s| s.parse().context("targets"))
        .collect::<Result<_>>()?;
    let menu_s = std::env::var("MENU").unwrap_or_else(|_| MENU.to_string());
    let menu: Vec<MenuOption> = menu_s
        .split(',')
        .map(|s| s.trim().parse().map_err(|e: String| anyhow::anyhow!(e)))
        .collect::<Result<_>>()?;
    let path = sop_model::resolve(spec_model)?;
    let model = sop_model::Model::open(&path)?;
    let layers: Vec<String> = model.linear_layers().into_iter().map(|t| t.name).collect();
    let stats = sop_calib::calibrate(
        &path,
        &sop_calib::builtin_texts(),
        &sop_calib::CalibOptions::default(),
        &mut |_| {},
    )
    .ok();
    let mut spec = Spec {
        model: &model,
        model_path: &path,
        layers: &layers,
        stats: stats.as_ref(),
        calibration: "check".into(),
        menu,
        options: QuantOptions::default(),
        target_bpw: targets[0],
        sensitivity: Sensitivity::Layer,
        sensitivity_sentences: 64,
        sensitivity_tokens: 128,
        check_embeddings: false,
        hardware: "none".into(),
        max_shard_bytes: u64::MAX,
        sample_weights: 0,
    };
    let t = Instant::now();
    let full = evaluate(&spec, &mut Quiet)?;
    let t_full = t.elapsed().as_secs_f64();
    let sens = sensitivities(&full, Sensitivity::Layer)?;
    println!(
        "{}: {} layers, {} weights, calibrated: {}; full evaluation {:.1} s",
        path.display(),
        layers.len(),
        full.total_weights(),
        stats.is_some(),
        t_full
    );
    println!("| sample (weights) | sampled layers | target bpw | layers with another option | distortion, full choice | distortion, sampled choice | excess | pass 1 time |");
    println!("|---|---|---|---|---|---|---|---|");
    for &s in &samples {
        spec.sample_weights = s;
        let t = Instant::now();
        let est = evaluate(&spec, &mut Quiet)?;
        let t_s = t.elapsed().as_secs_f64();
        let n_sampled = est.layers.iter().filter(|l| l.sampled_rows.is_some()).count();
        for &target in &targets {
            let pf = choose(&full, &sens, target, &mut Quiet)?;
            let ps = choose(&est, &sens, target, &mut Quiet)?;
            let differ = pf.choice.iter().zip(&ps.choice).filter(|(a, b)| a != b).count();
            let (df, ds) = (
                true_distortion(&full, &sens, &pf.choice),
                true_distortion(&full, &sens, &ps.choice),
            );
            println!(
                "| {s} | {n_sampled} | {target} | {differ} | {df:.6e} | {ds:.6e} | {:+.3} % | {t_s:.1} s |",
                (ds / df - 1.0) * 100.0
            );
        }
    }
    Ok(())
}
