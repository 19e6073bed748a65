//! `sop quantize --model M --target-bpw X --out DIR`: per layer, evaluate a menu of options,
//! choose one per layer by MCKP under the average-bpw target, and write the quantized model
//! plus a report. `sop inspect DIR` loads it back and verifies it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sop_model::Model;
use sop_quantize::mckp::{solve_exact, solve_greedy, Choice, DEFAULT_MAX_UNITS};
use sop_quantize::sparse::{quantize_option, MenuOption};
use sop_quantize::{metrics, LayerRef, Metrics, QuantOptions, QuantizedLayer, Quantizer};

/// The default menu: every option is decoded by a committed configuration (`--hw committed`,
/// checked by a test).
pub const DEFAULT_MENU: &str = "NF4+DD4sUE4M4b16,NF4+DD4sUE4M4b16+R0.5%,Split87+DD4sSE4M3b16,E2M1sE4M3b16,\
E2M1sUE4M4b16,NF4+DD4sUE4M4b32,NF4+DD4sUE4M4b8,E2M3sUE4M4b32,E2M3sUE4M4b64,E2M3sUE4M4,E3M2sUE4M4,\
E2M3sUE4M4+R0.5%,E2M3sUE4M4b8,E2M3sUE4M4b32+R0.5%,E2M3sUE4M4+O0.05%,E2M3sUE4M4b8+R0.5%,E2M3sUE4M4+R1%,\
E2M3sUE4M4b32+R1%,NF4+DD4sUE4M4b32+O0.05%,NF4+DD4sUE4M4b32+R0.25%,NF4+DD4sUE4M4b16+O0.05%,NF4+DD4sUE4M4b8+O0.05%,\
E2M3sUE4M4b64+O0.05%";

/// Bits of each layer's f32 tensor scale: counted in a layer's bits, not in the nominal bpw
/// of an operating point (`E2M3sUE4M4` is "6.5 bpw").
const TENSOR_SCALE_BITS: u64 = 32;

/// The target the knapsack gets: `target` itself, or, when `target` is below the cheapest
/// assignment by no more than the layers' tensor scales (a nominal bpw such as 6.5 for a
/// menu of `E2M3sUE4M4` alone), the cheapest assignment, said on stderr.
fn target_with_tensor_scales(menus: &[Vec<Choice>], weights: u64, target: f64) -> f64 {
    let lo: u64 = menus.iter().filter_map(|m| m.iter().map(|c| c.bits).min()).sum();
    let w = weights as f64;
    let budget = (target * w).floor();
    let (lo_f, slack) = (lo as f64, (TENSOR_SCALE_BITS * menus.len() as u64) as f64);
    if weights == 0 || budget >= lo_f || budget + slack < lo_f {
        return target;
    }
    // The smallest target whose budget (floor) is exactly the cheapest total.
    let mut used = lo_f / w;
    while (used * w).floor() < lo_f {
        used = f64::from_bits(used.to_bits() + 1);
    }
    eprintln!(
        "note: --target-bpw {target} is below the cheapest assignment ({:.6} bpw) by less than the layers' \
         {TENSOR_SCALE_BITS}-bit tensor scales, which a nominal bpw does not count: using {used:.6} bpw \
         (the cheapest option of every layer)",
        lo as f64 / w
    );
    used
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// Model: a safetensors file, a Hugging Face model directory, or `minilm`.
    #[arg(long)]
    model: String,
    /// Per-column activation statistics (imatrix.gguf / .dat, e.g. from `sop calibrate`).
    #[arg(long, value_name = "FILE", conflicts_with = "calibrate")]
    imatrix: Option<PathBuf>,
    /// Calibrate in-process on the built-in text set (BERT encoders only) instead of --imatrix.
    #[arg(long)]
    calibrate: bool,
    /// Target average bits per weight over the quantized linear layers (total bits / total
    /// weights). A target below the cheapest assignment by no more than the layers' 32-bit
    /// tensor scales (a nominal bpw, e.g. 6.5 for `--menu E2M3sUE4M4`) is raised to it, with
    /// a note.
    #[arg(long)]
    target_bpw: f64,
    /// Only the linear layers whose name matches this regular expression (a pattern that is
    /// not a valid regex is matched as a plain substring). Default: every linear layer.
    #[arg(long, value_name = "PATTERN")]
    layers: Option<String>,
    /// Output directory (refused if it exists, unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Write into an existing output directory (files are replaced atomically).
    #[arg(long)]
    force: bool,
    /// Comma-separated menu options `POINT[+O<p>%][+R<p>%]`. Every option must be decoded by
    /// the --hw hardware.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MENU)]
    menu: Vec<String>,
    /// The decode hardware the model is meant for: `committed` (every configuration in
    /// rtl-out/), a comma-separated list of configuration names, a configuration TOML file, or
    /// `none` (a software-only model: any option, and `sop cosim --quantized` will refuse the
    /// layers no hardware decodes). A menu option the hardware cannot decode is an error that
    /// says what is missing. The committed engine sop_engine_hif8_fp16 decodes every
    /// block-scaled option with 8-bit scales (UE4M4, E4M3, SE4M3), any block size: codebook
    /// elements and pairs with HIF8 tables, E2M1/E2M3/E3M2 directly (no table), and outlier
    /// and residual entries (`+O`, `+R`) in its sparse correction unit. The fixed lanes add
    /// `-HIF7` tables (sop_c4_hif7_ue4m4_fp16) and `-FP16` tables
    /// (sop_c4_fp16lut_ue4m4_fp16). No configuration decodes per-tensor `-POT` points,
    /// UE8M0/F32 scales, or a minifloat paired with a dynamic codebook.
    #[arg(long, value_name = "CONFIGS", default_value = "committed")]
    hw: String,
    /// Also measure the output-embedding cosine of the quantized encoder against the original
    /// on the calibration sentences (BERT encoders only).
    #[arg(long)]
    check_embeddings: bool,
    /// Per-layer sensitivity weighting the activation-weighted NMSE in the MCKP distortion:
    /// `layer` (every layer counts equally: distortion = aw-NMSE, i.e. sensitivity
    /// 1 / sum a w^2 on the activation-weighted squared error) or `params` (distortion =
    /// weights in the layer x aw-NMSE) or `measured` (BERT encoders: aw-NMSE x s_i, with s_i
    /// the measured drop of output-embedding cosine per unit aw-NMSE when layer i alone is
    /// quantized with its cheapest option, on the first --sensitivity-sentences sentences) or
    /// `hybrid` (aw-NMSE x (1/2 + s_i / (2 mean s)): half per-layer, half measured).
    #[arg(long, default_value = "layer", value_parser = ["layer", "params", "measured", "hybrid"])]
    sensitivity: String,
    /// Scale codes tried on each side of each block's absmax code (larger: lower error,
    /// slower; at most sop_quantize::MAX_RADIUS).
    #[arg(long, default_value_t = QuantOptions::default().search_radius)]
    search_radius: u32,
    /// Calibration sentences used by `--sensitivity measured`.
    #[arg(long, default_value_t = 64)]
    sensitivity_sentences: usize,
}

/// The configurations `--hw` names (`None` for `none`): `committed` is
/// [`sop_hw::default_configs`], a path is a configuration TOML file, anything else a
/// comma-separated list of committed configuration names.
pub fn hardware_configs(hw: &str) -> Result<Option<Vec<sop_hw::LaneConfig>>> {
    let committed = sop_hw::default_configs();
    match hw.trim() {
        "none" => Ok(None),
        "committed" => Ok(Some(committed)),
        s if Path::new(s).is_file() => Ok(Some(
            sop_hw::config::load_configs(Path::new(s)).with_context(|| format!("--hw {s}"))?,
        )),
        s => {
            let mut v = Vec::new();
            for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match committed.iter().find(|c| c.name == name) {
                    Some(c) => v.push(c.clone()),
                    None => bail!(
                        "--hw {s}: `{name}` is neither `committed`, `none`, a configuration file, nor a committed configuration ({})",
                        committed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
            if v.is_empty() {
                bail!("--hw: no configuration given");
            }
            Ok(Some(v))
        }
    }
}

/// One evaluated option of one layer.
struct Cand {
    opt: MenuOption,
    ql: QuantizedLayer,
    m: Metrics,
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let t0 = Instant::now();
    if a.out.exists() && !a.force {
        bail!(
            "--out {}: already exists; refusing to overwrite (pass --force to replace its files)",
            a.out.display()
        );
    }
    if !a.target_bpw.is_finite() || a.target_bpw <= 0.0 {
        bail!("--target-bpw {}: must be a positive number", a.target_bpw);
    }
    let mut menu: Vec<MenuOption> = Vec::new();
    for s in a.menu.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let o: MenuOption = s.parse().map_err(|e: String| anyhow::anyhow!("--menu: {e}"))?;
        if !menu.contains(&o) {
            menu.push(o);
        }
    }
    if menu.is_empty() {
        bail!("--menu: no option given");
    }
    let hardware = hardware_configs(&a.hw)?;
    if let Some(cfgs) = &hardware {
        for o in &menu {
            if let Err(e) = sop_hw::config::decoder_for(cfgs, &o.point, o.is_sparse()) {
                bail!("--menu {o}: not decodable by the --hw {} hardware: {e}; drop the option, or pass --hw none for a software-only model", a.hw);
            }
        }
    }
    if a.search_radius > sop_quantize::MAX_RADIUS {
        bail!(
            "--search-radius {} is out of range (0..={})",
            a.search_radius,
            sop_quantize::MAX_RADIUS
        );
    }
    let opts = QuantOptions {
        search_radius: a.search_radius,
        ..QuantOptions::default()
    };
    let quantizers: Vec<Quantizer> = menu
        .iter()
        .map(|o| Quantizer::new(o.point, opts).with_context(|| format!("--menu {o}")))
        .collect::<Result<_>>()?;
    let path = sop_model::resolve(&a.model).with_context(|| format!("model '{}'", a.model))?;
    let model = Model::open(&path)?;
    let layers = crate::eval_cmd::select_layers(&model, a.layers.as_deref())?;
    let (stats, calib_source) = if let Some(f) = &a.imatrix {
        let s = crate::calibrate_cmd::load_imatrix(f, &path, &model)
            .with_context(|| format!("--imatrix {}", f.display()))?;
        (Some(s), format!("imatrix file {}", f.display()))
    } else if a.calibrate {
        let t = Instant::now();
        let s = sop_calib::calibrate(
            &path,
            &sop_calib::builtin_texts(),
            &sop_calib::CalibOptions::default(),
            &mut |_| {},
        )?;
        eprintln!("calibrated in-process in {:.1} s", t.elapsed().as_secs_f64());
        (
            Some(s),
            format!("in-process calibration on {}", sop_calib::BUILTIN_DATASET),
        )
    } else {
        eprintln!("WARNING: no calibration given (--imatrix FILE or --calibrate): column weights are UNIFORM");
        (None, "uniform: no calibration given".to_string())
    };

    // Evaluate every option of every layer.
    let mut all: Vec<(Vec<Cand>, Vec<f32>, bool)> = Vec::new();
    let mut total_weights = 0u64;
    let mut progress = sop_progress::Progress::new(layers.len() as u64, "layers");
    for name in &layers {
        let w = model.load_f32(name)?;
        progress.step(format_args!("{name} {}x{}: {} options", w.rows, w.cols, menu.len()));
        let (col_w, calibrated) = crate::calibrate_cmd::column_weights_for(stats.as_ref(), name, w.cols)?;
        if stats.is_some() && !calibrated {
            progress.println(format_args!(
                "  {name}: no statistics in the calibration: uniform column weights"
            ));
        }
        let lr = LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        };
        let aw = calibrated.then_some(col_w.as_slice());
        let mut cands = Vec::new();
        for (o, q) in menu.iter().zip(&quantizers) {
            let ql = quantize_option(q, o, lr, aw).with_context(|| format!("{name}: {o}"))?;
            let m = metrics(&w.data, &ql.dequantize(), w.cols, aw);
            cands.push(Cand { opt: *o, ql, m });
        }
        progress.finish_step();
        total_weights += (w.rows * w.cols) as u64;
        all.push((cands, w.data, calibrated));
    }
    progress.finish();
    let sens: Vec<f64> = match a.sensitivity.as_str() {
        "measured" => measured_sensitivity(&path, &all, a.sensitivity_sentences)?,
        "hybrid" => {
            let m = measured_sensitivity(&path, &all, a.sensitivity_sentences)?;
            let mean = m.iter().sum::<f64>() / m.len() as f64;
            m.iter().map(|s| 0.5 + 0.5 * s / mean).collect()
        }
        "params" => all
            .iter()
            .map(|(c, _, _)| (c[0].ql.rows * c[0].ql.cols) as f64)
            .collect(),
        _ => vec![1.0; all.len()],
    };
    // Menus: within each cost level keep the option with the best ACos.
    let mut kept: Vec<Vec<usize>> = Vec::new();
    let mut menus: Vec<Vec<Choice>> = Vec::new();
    for ((cands, _, _), &s_i) in all.iter().zip(&sens) {
        let mut idx: Vec<usize> = Vec::new();
        for (k, c) in cands.iter().enumerate() {
            match idx.iter().position(|&j| cands[j].ql.bits() == c.ql.bits()) {
                Some(p) if cands[idx[p]].m.w_cosine >= c.m.w_cosine => {}
                Some(p) => idx[p] = k,
                None => idx.push(k),
            }
        }
        menus.push(
            idx.iter()
                .map(|&k| Choice {
                    bits: cands[k].ql.bits(),
                    distortion: distortion(&cands[k], s_i),
                })
                .collect(),
        );
        kept.push(idx);
    }
    let target = target_with_tensor_scales(&menus, total_weights, a.target_bpw);
    let exact = solve_exact(&menus, total_weights, target, DEFAULT_MAX_UNITS).context("--target-bpw")?;
    let greedy = solve_greedy(&menus, total_weights, target).context("--target-bpw")?;
    let gap = greedy.distortion / exact.distortion.max(f64::MIN_POSITIVE) - 1.0;
    eprintln!(
        "MCKP: exact {:.4} bpw distortion {:.6e}; greedy {:.4} bpw distortion {:.6e} (gap {:+.3}%)",
        exact.bpw(total_weights),
        exact.distortion,
        greedy.bpw(total_weights),
        greedy.distortion,
        gap * 100.0
    );
    let chosen: Vec<&Cand> = all
        .iter()
        .zip(&kept)
        .zip(&exact.choice)
        .map(|(((c, _, _), k), &i)| &c[k[i]])
        .collect();

    // Baseline medians of every menu option (for the targets).
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mut baselines = serde_json::Map::new();
    for (k, o) in menu.iter().enumerate() {
        let mut v: Vec<f64> = all.iter().map(|(c, _, _)| c[k].m.nmse).collect();
        let bits: u64 = all.iter().map(|(c, _, _)| c[k].ql.bits()).sum();
        baselines.insert(
            o.to_string(),
            serde_json::json!({"median_nmse": median(&mut v), "bpw": bits as f64 / total_weights as f64}),
        );
    }
    let mut v: Vec<f64> = chosen.iter().map(|c| c.m.nmse).collect();
    let med = median(&mut v);

    let embed_cos = if a.check_embeddings {
        Some(embedding_cosine(&path, &chosen)?)
    } else {
        None
    };

    // Write.
    fs::create_dir_all(&a.out).with_context(|| format!("--out {}", a.out.display()))?;
    let layers_q: Vec<(QuantizedLayer, MenuOption)> = chosen.iter().map(|c| (c.ql.clone(), c.opt)).collect();
    let bytes = sop_qmodel::to_bytes(
        &layers_q,
        &[
            ("model", path.display().to_string()),
            ("calibration", calib_source.clone()),
            ("target_bpw", a.target_bpw.to_string()),
            ("hardware", a.hw.clone()),
        ],
    )?;
    let f = sop_qmodel::write_atomic(&a.out, sop_qmodel::MODEL_FILE, &bytes)?;
    let layers_json: Vec<serde_json::Value> = chosen
        .iter()
        .zip(&all)
        .map(|(c, (_, _, cal))| {
            serde_json::json!({
                "name": c.ql.name, "shape": [c.ql.rows, c.ql.cols], "option": c.opt.to_string(),
                "bpw": c.ql.bpw(), "bits": c.ql.bits(), "nmse": c.m.nmse, "w_nmse": c.m.w_nmse,
                "w_cosine": c.m.w_cosine, "outliers": c.ql.outliers.len(), "residuals": c.ql.residuals.len(),
                "calibrated": cal,
            })
        })
        .collect();
    // The report is a function of the inputs alone (same bytes at any thread count or
    // machine load): the wall-clock time goes to stdout only.
    let elapsed = t0.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "model": path.display().to_string(),
        "calibration": calib_source,
        "target_bpw": a.target_bpw,
        "target_bpw_used": target,
        "achieved_bpw": exact.bpw(total_weights),
        "total_bits": exact.bits,
        "total_weights": total_weights,
        "budget_bits": exact.budget,
        "median_nmse": med,
        "mckp": {"exact_distortion": exact.distortion, "dp_quantum_bits": exact.quantum,
                 "greedy_distortion": greedy.distortion, "greedy_bpw": greedy.bpw(total_weights),
                 "greedy_gap": gap,
                 "sensitivity": a.sensitivity},
        "menu_baselines": baselines,
        "output_embedding_cosine": embed_cos,
        "layers": layers_json,
    });
    write_text(&a.out, "report.json", &(serde_json::to_string_pretty(&report)? + "\n"))?;
    write_text(&a.out, "report.md", &report_md(&report))?;
    println!(
        "wrote {} ({} layers, {:.4} bpw for target {}, median NMSE {:.4e}{}; calibration: {}) in {:.1} s",
        f.display(),
        chosen.len(),
        exact.bpw(total_weights),
        a.target_bpw,
        med,
        embed_cos
            .map(|c| format!(", output-embedding cosine {c:.6}"))
            .unwrap_or_default(),
        report["calibration"].as_str().unwrap_or(""),
        elapsed
    );
    Ok(())
}

/// MCKP distortion of an option: its activation-weighted NMSE times the layer's sensitivity
/// (see docs/quantizer.md, "Sensitivity").
fn distortion(c: &Cand, sensitivity: f64) -> f64 {
    let d = sensitivity * c.m.w_nmse;
    if d.is_finite() {
        d
    } else {
        f64::MAX / 1e6
    }
}

/// Per-layer sensitivity `s_i = (1 - cos_i) / aw-NMSE_i`, where `cos_i` is the mean
/// output-embedding cosine when only layer `i` is replaced by its cheapest menu option.
fn measured_sensitivity(path: &Path, all: &[(Vec<Cand>, Vec<f32>, bool)], sentences: usize) -> Result<Vec<f64>> {
    let t = Instant::now();
    let texts: Vec<String> = sop_calib::builtin_texts().into_iter().take(sentences.max(1)).collect();
    let mut enc = sop_calib::Encoder::load(path, sop_calib::DEFAULT_MAX_SEQ_LEN)
        .context("--sensitivity measured needs a BERT encoder")?;
    let seqs = enc.encode(&texts)?;
    let base = enc.bert.embed(&seqs)?;
    let mut out = Vec::with_capacity(all.len());
    for (cands, orig, _) in all {
        let c = cands.iter().min_by_key(|c| c.ql.bits()).expect("non-empty menu");
        enc.bert.set_linear_weight(&c.ql.name, &c.ql.dequantize())?;
        let q = enc.bert.embed(&seqs)?;
        enc.bert.set_linear_weight(&c.ql.name, orig)?;
        let drop = 1.0 - mean_cosine(&base, &q);
        out.push((drop.max(0.0) / c.m.w_nmse.max(1e-30)).max(1e-12));
    }
    eprintln!(
        "measured sensitivities on {} sentences in {:.1} s",
        texts.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

fn mean_cosine(base: &[Vec<f32>], q: &[Vec<f32>]) -> f64 {
    let cos: f64 = base
        .iter()
        .zip(q)
        .map(|(x, y)| {
            let d: f64 = x.iter().zip(y).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            let nx: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            d / (nx * ny).max(1e-30)
        })
        .sum();
    cos / base.len().max(1) as f64
}

/// Writes `dir/name` whole or not at all.
fn write_text(dir: &Path, name: &str, s: &str) -> Result<()> {
    sop_atomic_write::write(&dir.join(name), s.as_bytes())?;
    Ok(())
}

/// Mean cosine between the original and the quantized encoder's sentence embeddings over the
/// built-in calibration sentences.
fn embedding_cosine(path: &Path, chosen: &[&Cand]) -> Result<f64> {
    let texts = sop_calib::builtin_texts();
    let mut enc = sop_calib::Encoder::load(path, sop_calib::DEFAULT_MAX_SEQ_LEN)?;
    let seqs = enc.encode(&texts)?;
    let base = enc.bert.embed(&seqs)?;
    for c in chosen {
        enc.bert.set_linear_weight(&c.ql.name, &c.ql.dequantize())?;
    }
    let q = enc.bert.embed(&seqs)?;
    Ok(mean_cosine(&base, &q))
}

fn report_md(r: &serde_json::Value) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# SOP quantization report\n");
    let _ = writeln!(s, "- model: `{}`", r["model"].as_str().unwrap_or(""));
    let cal = r["calibration"].as_str().unwrap_or("");
    if cal.starts_with("uniform") {
        let _ = writeln!(
            s,
            "- **calibration: UNIFORM -- no calibration given; column weights are all 1**"
        );
    } else {
        let _ = writeln!(s, "- calibration: {cal}");
    }
    let _ = writeln!(
        s,
        "- target {} bpw, achieved {:.4} bpw ({} bits / {} weights)",
        r["target_bpw"],
        r["achieved_bpw"].as_f64().unwrap_or(0.0),
        r["total_bits"],
        r["total_weights"]
    );
    let _ = writeln!(s, "- median NMSE {:.4e}", r["median_nmse"].as_f64().unwrap_or(0.0));
    let m = &r["mckp"];
    let _ = writeln!(
        s,
        "- MCKP exact distortion {:.6e} (DP quantum {} bits), greedy {:.6e} (gap {:+.3}%)",
        m["exact_distortion"].as_f64().unwrap_or(0.0),
        m["dp_quantum_bits"],
        m["greedy_distortion"].as_f64().unwrap_or(0.0),
        m["greedy_gap"].as_f64().unwrap_or(0.0) * 100.0
    );
    if let Some(c) = r["output_embedding_cosine"].as_f64() {
        let _ = writeln!(s, "- output-embedding cosine vs unquantized: {c:.6}");
    }
    let _ = writeln!(
        s,
        "\n| layer | shape | option | bpw | NMSE | aw-NMSE | ACos |\n|---|---|---|---|---|---|---|"
    );
    for l in r["layers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {}x{} | {} | {:.4} | {:.4e} | {:.4e} | {:.6} |",
            l["name"].as_str().unwrap_or(""),
            l["shape"][0],
            l["shape"][1],
            l["option"].as_str().unwrap_or(""),
            l["bpw"].as_f64().unwrap_or(0.0),
            l["nmse"].as_f64().unwrap_or(0.0),
            l["w_nmse"].as_f64().unwrap_or(0.0),
            l["w_cosine"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        s,
        "\n## Menu baselines (every layer at one option)\n\n| option | bpw | median NMSE |\n|---|---|---|"
    );
    if let Some(b) = r["menu_baselines"].as_object() {
        for (k, v) in b {
            let _ = writeln!(
                s,
                "| {k} | {:.4} | {:.4e} |",
                v["bpw"].as_f64().unwrap_or(0.0),
                v["median_nmse"].as_f64().unwrap_or(0.0)
            );
        }
    }
    s
}

#[derive(Args)]
pub struct InspectArgs {
    /// Directory written by `sop quantize` (or the model.sop.safetensors file itself).
    dir: PathBuf,
    /// Also compare against the original model's weights (NMSE per layer).
    #[arg(long)]
    model: Option<String>,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let loaded = sop_qmodel::read(&a.dir)?;
    let model = match &a.model {
        Some(m) => Some(Model::open(&sop_model::resolve(m)?)?),
        None => None,
    };
    let (mut bits, mut n) = (0u64, 0u64);
    for k in ["model", "calibration", "target_bpw"] {
        if let Some(v) = loaded.metadata.get(k) {
            println!("{k}: {v}");
        }
    }
    for (l, o) in &loaded.layers {
        let hat = l.dequantize();
        if let Some(bad) = hat.iter().position(|v| !v.is_finite()) {
            bail!("{}: dequantized value {bad} is not finite", l.name);
        }
        let extra = match &model {
            Some(m) => {
                let w = m.load_f32(&l.name)?;
                format!("  NMSE {:.4e}", metrics(&w.data, &hat, l.cols, None).nmse)
            }
            None => String::new(),
        };
        println!(
            "{:<48} {:>10} {:<32} {:>7.4} bpw{extra}",
            l.name,
            format!("{}x{}", l.rows, l.cols),
            o.to_string(),
            l.bpw()
        );
        bits += l.bits();
        n += (l.rows * l.cols) as u64;
    }
    println!(
        "{} layers verified, {:.4} bpw average ({} bits / {} weights)",
        loaded.layers.len(),
        bits as f64 / n.max(1) as f64,
        bits,
        n
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_targets_absorb_the_tensor_scales() {
        // Two layers of 1000 weights, one option each of 6.5 bpw plus a 32-bit tensor scale.
        let menus = vec![
            vec![Choice {
                bits: 6500 + 32,
                distortion: 1.0,
            }],
            vec![Choice {
                bits: 6500 + 32,
                distortion: 1.0,
            }],
        ];
        let t = target_with_tensor_scales(&menus, 2000, 6.5);
        assert_eq!((t * 2000.0).floor() as u64, 13064);
        assert!(solve_exact(&menus, 2000, t, DEFAULT_MAX_UNITS).is_ok());
        // Further below: unchanged, and the knapsack refuses it.
        assert_eq!(target_with_tensor_scales(&menus, 2000, 6.4), 6.4);
        // At or above the cheapest: unchanged.
        assert_eq!(target_with_tensor_scales(&menus, 2000, 6.6), 6.6);
    }
}
