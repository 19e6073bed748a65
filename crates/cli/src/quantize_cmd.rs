//! `sop quantize --model M --target-bpw X --out DIR`: per layer, evaluate a menu of options,
//! choose one per layer by MCKP under the average-bpw target, and write the quantized model
//! plus a report. `sop inspect DIR` loads it back and verifies it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sop_quantize::sparse::MenuOption;
use sop_quantize::{metrics, QuantOptions, Quantizer};
use sop_search::{Observer, Pass, Sensitivity};

/// The default menu: every option is decoded by a committed configuration (`--hw committed`,
/// checked by a test).
pub const DEFAULT_MENU: &str = "NF4+DD4sUE4M4b16,NF4+DD4sUE4M4b16+R0.5%,Split87+DD4sSE4M3b16,E2M1sE4M3b16,\
E2M1sUE4M4b16,NF4+DD4sUE4M4b32,NF4+DD4sUE4M4b8,E2M3sUE4M4b32,E2M3sUE4M4b64,E2M3sUE4M4,E3M2sUE4M4,\
E2M3sUE4M4+R0.5%,E2M3sUE4M4b8,E2M3sUE4M4b32+R0.5%,E2M3sUE4M4+O0.05%,E2M3sUE4M4b8+R0.5%,E2M3sUE4M4+R1%,\
E2M3sUE4M4b32+R1%,NF4+DD4sUE4M4b32+O0.05%,NF4+DD4sUE4M4b32+R0.25%,NF4+DD4sUE4M4b16+O0.05%,NF4+DD4sUE4M4b8+O0.05%,\
E2M3sUE4M4b64+O0.05%";

#[derive(Args)]
pub struct QuantizeArgs {
    /// Model: a safetensors file, a Hugging Face model directory, an ONNX model (`.onnx`), or
    /// `minilm`.
    #[arg(long)]
    model: String,
    /// Per-column activation statistics (imatrix.gguf / .dat, e.g. from `sop calibrate`).
    #[arg(long, value_name = "FILE", conflicts_with = "calibrate")]
    imatrix: Option<PathBuf>,
    /// Calibrate in-process on the built-in text set instead of --imatrix (BERT encoders and
    /// Llama-family decoders, as `sop calibrate` with its defaults).
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
    /// Output directory (refused if it exists, unless --force; pass 2 of a split run and its
    /// final merge write into an existing one).
    #[arg(long)]
    out: Option<PathBuf>,
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
    /// weights in the layer x aw-NMSE) or `measured` (aw-NMSE x s_i, with s_i the measured
    /// output change per unit aw-NMSE when layer i alone is quantized with its cheapest
    /// option: for BERT encoders the drop of output-embedding cosine on the first
    /// --sensitivity-sentences calibration sentences, for Llama-family decoders the mean KL
    /// divergence of the next-token distributions on the first --sensitivity-tokens
    /// calibration tokens) or `hybrid` (aw-NMSE x (1/2 + s_i / (2 mean s)): half per-layer,
    /// half measured).
    #[arg(long, default_value = "layer", value_parser = ["layer", "params", "measured", "hybrid"])]
    sensitivity: String,
    /// Scale codes tried on each side of each block's absmax code (larger: lower error,
    /// slower; at most sop_quantize::MAX_RADIUS).
    #[arg(long, default_value_t = QuantOptions::default().search_radius)]
    search_radius: u32,
    /// Calibration sentences used by `--sensitivity measured` (BERT encoders).
    #[arg(long, default_value_t = 64)]
    sensitivity_sentences: usize,
    /// Calibration tokens used by `--sensitivity measured` (decoders: the first N tokens of
    /// the calibration text as one sequence; one forward pass per layer, from the layer's
    /// block on).
    #[arg(long, value_name = "N", default_value_t = 128)]
    sensitivity_tokens: usize,
    /// Largest output file: above it the model is written as shards
    /// (`model-00001-of-0000N.sop.safetensors`) with an index (`model.sop.safetensors.index.json`,
    /// as Hugging Face's `model.safetensors.index.json`), read by `sop inspect`, `sop cosim
    /// --quantized` and `sop export`. Bytes, or with a unit: KB, MB, GB (powers of 1000),
    /// KiB, MiB, GiB.
    #[arg(long, value_name = "SIZE", default_value = "5GB", value_parser = parse_size)]
    max_shard_size: u64,
    /// Sampled menu evaluation: estimate each option's error on a sample of about N weights
    /// per layer (whole rows at systematic positions) for layers larger than N; bits stay
    /// exact and the chosen option of every layer is measured on the whole layer (report.json
    /// `menu_evaluation` states the estimator). 0: every option on every whole layer.
    #[arg(long, value_name = "N", default_value_t = 0)]
    sample_weights: usize,
    /// A run split across machines (docs/performance.md, "Splitting a run across machines"):
    /// this is shard K of N (1 <= K <= N). With --pass1-out: pass 1 of the layers shard K gets
    /// (balanced by weights, as `sop cosim --shard`). With --plan and --pass2-out: pass 2 of
    /// the output files shard K gets. Every stage of a split run takes the same model, menu,
    /// target and options as the others.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<sop_shard::Shard>,
    /// Pass 1 of a split run (with --shard): write this shard's per-layer option table (exact
    /// bits and errors of every menu option) to FILE.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pass1_out: Option<PathBuf>,
    /// Join the pass-1 tables of every shard (each once), solve the knapsack and write the
    /// plan (--plan-out).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "plan_out", conflicts_with_all = ["shard", "plan"])]
    from_pass1: Vec<PathBuf>,
    /// Where --from-pass1 writes the plan.
    #[arg(long, value_name = "FILE", requires = "from_pass1")]
    plan_out: Option<PathBuf>,
    /// The plan of a split run: with --shard and --pass2-out, pass 2 of this shard; with
    /// --from-pass2, the final merge.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
    /// Pass 2 of a split run (with --plan, --shard and --out): write this shard's manifest
    /// (its model files and its layers' figures) to FILE.
    #[arg(long, value_name = "FILE", requires_all = ["plan", "shard"])]
    pass2_out: Option<PathBuf>,
    /// The final merge of a split run (with --plan and --out): check the pass-2 manifests of
    /// every shard (each once) and the model files they list in --out, then write the index
    /// and the reports. The directory then equals a one-machine run's byte for byte.
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "plan", conflicts_with = "shard")]
    from_pass2: Vec<PathBuf>,
    /// After writing the model, run `sop fidelity` on it (decoders: perplexity, mean KLD and
    /// top-1 agreement on the built-in held-out text; encoders: the output-embedding cosine)
    /// with the weights the --hw hardware delivers, and add the figures to report.json
    /// (`fidelity`), report.md and the summary.
    #[arg(long)]
    fidelity: bool,
    /// Tokens of the held-out text `--fidelity` scores (windows of 512 tokens).
    #[arg(long, value_name = "N", default_value_t = 1024, requires = "fidelity")]
    fidelity_tokens: usize,
}

/// `--shard K/N` for clap.
fn parse_shard(s: &str) -> Result<sop_shard::Shard, String> {
    s.parse()
}

/// What one `sop quantize` invocation does.
enum Stage {
    /// The whole search on this machine.
    Whole,
    /// Pass 1 of one shard.
    Pass1(sop_shard::Shard, PathBuf),
    /// The plan from every shard's pass-1 table.
    Plan(Vec<PathBuf>, PathBuf),
    /// Pass 2 of one shard.
    Pass2(PathBuf, sop_shard::Shard, PathBuf),
    /// The final merge.
    Finish(PathBuf, Vec<PathBuf>),
}

impl QuantizeArgs {
    /// The stage the flags ask for; an incomplete or mixed set of flags is an error saying
    /// what each stage takes.
    fn stage(&self) -> Result<Stage> {
        const STAGES: &str = "a split run's stages are: --shard K/N --pass1-out FILE; --from-pass1 FILE...                               --plan-out FILE; --plan FILE --shard K/N --pass2-out FILE --out DIR;                               --plan FILE --from-pass2 FILE... --out DIR";
        let stage = match (
            &self.shard,
            &self.pass1_out,
            self.from_pass1.is_empty(),
            &self.plan,
            &self.pass2_out,
            self.from_pass2.is_empty(),
        ) {
            (None, None, true, None, None, true) => Stage::Whole,
            (Some(s), Some(f), true, None, None, true) => Stage::Pass1(*s, f.clone()),
            (None, None, false, None, None, true) => Stage::Plan(
                self.from_pass1.clone(),
                self.plan_out.clone().context("--from-pass1 needs --plan-out FILE")?,
            ),
            (Some(s), None, true, Some(p), Some(f), true) => Stage::Pass2(p.clone(), *s, f.clone()),
            (None, None, true, Some(p), None, false) => Stage::Finish(p.clone(), self.from_pass2.clone()),
            _ => bail!("incomplete or mixed split-run flags: {STAGES}"),
        };
        match (&stage, &self.out) {
            (Stage::Whole | Stage::Pass2(..) | Stage::Finish(..), None) => {
                bail!("--out DIR is required (the output directory)")
            }
            (Stage::Pass1(..) | Stage::Plan(..), Some(o)) => bail!(
                "--out {}: pass 1 and the plan of a split run write no model ({STAGES})",
                o.display()
            ),
            _ => Ok(stage),
        }
    }
}

/// A size: bytes, or a number with a unit KB, MB, GB (powers of 1000) or KiB, MiB, GiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (use B, KB, MB, GB, TB, KiB, MiB or GiB)"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: not a size such as 5GB or 500MiB"))?;
    let bytes = (n * mult).round();
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("`{s}`: must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// Where the column weights come from, as the output records it.
fn calibration_name(a: &QuantizeArgs) -> String {
    if let Some(f) = &a.imatrix {
        format!("imatrix file {}", f.display())
    } else if a.calibrate {
        format!("in-process calibration on {}", sop_calib::BUILTIN_DATASET)
    } else {
        "uniform: no calibration given".to_string()
    }
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

/// Progress of the two passes on stderr (`sop_progress`), notes printed above the bar.
struct CliObserver {
    progress: Option<sop_progress::Progress>,
}

impl Observer for CliObserver {
    fn pass_start(&mut self, pass: Pass, layers: usize) {
        let unit = match pass {
            Pass::Evaluate => "layers",
            Pass::Write => "layers written",
        };
        self.progress = Some(sop_progress::Progress::new(layers as u64, unit));
    }
    fn layer_start(&mut self, pass: Pass, name: &str, rows: usize, cols: usize, options: usize) {
        if let Some(p) = &mut self.progress {
            match pass {
                Pass::Evaluate => p.step(format_args!("{name} {rows}x{cols}: {options} options")),
                Pass::Write => p.step(format_args!("{name} {rows}x{cols}: writing")),
            }
        }
    }
    fn layer_done(&mut self, _pass: Pass) {
        if let Some(p) = &self.progress {
            p.finish_step();
        }
    }
    fn pass_done(&mut self, _pass: Pass) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
    fn note(&mut self, message: &str) {
        match &self.progress {
            Some(p) => p.println(message),
            None => eprintln!("{message}"),
        }
    }
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let t0 = Instant::now();
    let stage = a.stage()?;
    if let (Stage::Whole, Some(out)) = (&stage, &a.out) {
        if out.exists() && !a.force {
            bail!(
                "--out {}: already exists; refusing to overwrite (pass --force to replace its files)",
                out.display()
            );
        }
    }
    if matches!(a.sensitivity.as_str(), "measured" | "hybrid") && a.sensitivity_tokens < 2 {
        bail!(
            "--sensitivity-tokens {}: at least 2 are needed to measure a KL divergence",
            a.sensitivity_tokens
        );
    }
    if a.fidelity && a.fidelity_tokens < 2 {
        bail!(
            "--fidelity-tokens {}: at least 2 are needed to score a prediction",
            a.fidelity_tokens
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
    for o in &menu {
        Quantizer::new(o.point, opts).with_context(|| format!("--menu {o}"))?;
    }
    let (path, model) = crate::model_arg::open(&a.model)?;
    let layers = crate::eval_cmd::select_layers(&model, a.layers.as_deref())?;
    // The plan and the final merge read no weights: they need the calibration's name only.
    let needs_stats = matches!(stage, Stage::Whole | Stage::Pass1(..) | Stage::Pass2(..));
    let (stats, calib_source) = if !needs_stats {
        (None, calibration_name(&a))
    } else if let Some(f) = &a.imatrix {
        let s = crate::calibrate_cmd::load_imatrix(f, &path, &model)
            .with_context(|| format!("--imatrix {}", f.display()))?;
        (Some(s), calibration_name(&a))
    } else if a.calibrate {
        let t = Instant::now();
        let s = sop_llm::calibrate_any(
            &path,
            &sop_calib::builtin_texts(),
            &sop_calib::CalibOptions::default(),
            &mut |_| {},
        )?;
        eprintln!("calibrated in-process in {:.1} s", t.elapsed().as_secs_f64());
        (Some(s), calibration_name(&a))
    } else {
        eprintln!("WARNING: no calibration given (--imatrix FILE or --calibrate): column weights are UNIFORM");
        (None, calibration_name(&a))
    };
    let sensitivity: Sensitivity = a
        .sensitivity
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--sensitivity: {e}"))?;
    let spec = sop_search::Spec {
        model: &model,
        model_path: &path,
        layers: &layers,
        stats: stats.as_ref(),
        calibration: calib_source,
        menu,
        options: opts,
        target_bpw: a.target_bpw,
        sensitivity,
        sensitivity_sentences: a.sensitivity_sentences,
        sensitivity_tokens: a.sensitivity_tokens,
        check_embeddings: a.check_embeddings,
        hardware: a.hw.clone(),
        max_shard_bytes: a.max_shard_size,
        sample_weights: a.sample_weights,
    };
    let mut obs = CliObserver { progress: None };
    let (mut out, plan) = match stage {
        Stage::Whole => sop_search::run(&spec, a.out.as_deref().expect("checked"), &mut obs)?,
        Stage::Pass1(shard, file) => {
            let n = sop_search::split::evaluate_shard(&spec, shard, &file, &mut obs)?;
            println!(
                "pass 1 of shard {shard}: {n} of {} layers evaluated; wrote {} in {:.1} s",
                layers.len(),
                file.display(),
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Stage::Plan(tables, file) => {
            let (eval, plan) = sop_search::split::plan_from_pass1(&spec, &tables, &file, &mut obs)?;
            println!(
                "plan: {} tables joined, {} layers, {:.4} bpw for target {}; wrote {}",
                tables.len(),
                eval.layers.len(),
                plan.exact.bpw(eval.total_weights()),
                a.target_bpw,
                file.display()
            );
            return Ok(());
        }
        Stage::Pass2(plan, shard, manifest) => {
            let out = a.out.as_deref().expect("checked");
            let files = sop_search::split::write_shard(&spec, &plan, shard, out, &manifest, &mut obs)?;
            println!(
                "pass 2 of shard {shard}: wrote {} model file(s) into {} and {} in {:.1} s",
                files.len(),
                out.display(),
                manifest.display(),
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Stage::Finish(plan, manifests) => {
            sop_search::split::finish(&spec, &plan, &manifests, a.out.as_deref().expect("checked"), &mut obs)?
        }
    };
    let out_dir = a.out.as_deref().expect("checked");
    let fidelity_line = if a.fidelity {
        let (json, line) = crate::fidelity_cmd::measure(&crate::fidelity_cmd::FidelityInput {
            path: &path,
            model: &model,
            quantized: out_dir,
            text: None,
            tokens: a.fidelity_tokens,
            window: crate::fidelity_cmd::DEFAULT_WINDOW,
            hw: &a.hw,
        })
        .context("--fidelity")?;
        out.report["fidelity"] = json;
        sop_search::write_reports(out_dir, &out.report)?;
        Some(line)
    } else {
        None
    };
    let total_weights = out.report["total_weights"].as_u64().unwrap_or(0);
    eprintln!(
        "MCKP: exact {:.4} bpw distortion {:.6e}; greedy {:.4} bpw distortion {:.6e} (gap {:+.3}%)",
        plan.exact.bpw(total_weights),
        plan.exact.distortion,
        plan.greedy.bpw(total_weights),
        plan.greedy.distortion,
        plan.greedy_gap * 100.0
    );
    let f = out.files.last().cloned().unwrap_or_default();
    println!(
        "wrote {}{} ({} layers, {:.4} bpw for target {}, median NMSE {:.4e}{}; calibration: {}) in {:.1} s",
        f.display(),
        if out.files.len() > 1 {
            format!(" and {} shards", out.files.len() - 1)
        } else {
            String::new()
        },
        out.layers,
        out.achieved_bpw,
        a.target_bpw,
        out.median_nmse,
        out.embedding_cosine
            .map(|c| format!(", output-embedding cosine {c:.6}"))
            .unwrap_or_default(),
        spec.calibration,
        t0.elapsed().as_secs_f64()
    );
    if let Some(line) = fidelity_line {
        println!("{line}");
    }
    Ok(())
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
        Some(m) => Some(crate::model_arg::open(m)?.1),
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
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("1.5KB"), Ok(1500));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("GB").is_err());
    }
}
