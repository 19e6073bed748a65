//! Runs the QoR flows without the CLI:
//!
//! ```text
//! cargo run --release -p sop-qor --example qor -- [--config FILE] [--flows gates,ice40,ecp5,sky130,asap7]
//!     [--json FILE] [--work-dir DIR] [--liberty FILE]... [--seeds N] [--blocks] [--recon MODEL] [--from-json FILE]
//! ```
//!
//! Prints the Markdown table on standard output (with `--blocks` also the cells per block),
//! progress on standard error. `--recon MODEL` (e.g. `minilm`) instead prints the weight
//! reconstruction error of the lane formats (`sop_qor::recon::LANE_POINTS`) on MODEL;
//! `--from-json FILE` re-renders results saved with `--json` without running the tools.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> &'static str {
    "usage: qor [--config FILE] [--flows gates,ice40,ecp5,sky130,asap7] [--json FILE] [--work-dir DIR] [--liberty FILE]... [--seeds N] [--blocks] [--recon MODEL] [--from-json FILE]"
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = sop_qor::QorOptions::default();
    let mut json: Option<PathBuf> = None;
    let mut blocks = false;
    let mut recon: Option<String> = None;
    let mut from: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value; {}", usage()));
        match a.as_str() {
            "--config" => opts.configs = sop_hw::config::load_configs(std::path::Path::new(&value()?))?,
            "--flows" => opts.flows = sop_qor::parse_flows(&value()?)?,
            "--json" => json = Some(PathBuf::from(value()?)),
            "--work-dir" => opts.work_dir = Some(PathBuf::from(value()?)),
            "--liberty" => opts.liberty.push(PathBuf::from(value()?)),
            "--seeds" => opts.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--blocks" => blocks = true,
            "--recon" => recon = Some(value()?),
            "--from-json" => from = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'; {}", usage()).into()),
        }
    }
    if let Some(model) = recon {
        // Only the reconstruction error of the lane formats (LANE_POINTS) on MODEL.
        let points: Vec<&str> = sop_qor::recon::LANE_POINTS.iter().map(|(_, p)| *p).collect();
        let rows = sop_qor::recon::reconstruction_error(&model, &points, true)?;
        print!("{}", sop_qor::recon::markdown_errors(&rows));
        if let Some(path) = json {
            let text = serde_json::to_string_pretty(&rows)? + "\n";
            sop_atomic_write::write(&path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let rows = match &from {
        // Re-render saved results (written with --json) without running any tool.
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            sop_qor::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => sop_qor::run(&opts)?,
    };
    print!("{}", sop_qor::markdown(&rows));
    if blocks {
        println!("\nCells (gates + flip-flops) per lane by block:\n");
        print!("{}", sop_qor::markdown_blocks(&rows));
    }
    if from.is_none() {
        println!("\nTools:");
        for (tool, version) in sop_qor::tool_versions(&opts.flows) {
            println!("- {tool}: {version}");
        }
    }
    if let Some(path) = json {
        sop_atomic_write::write(&path, sop_qor::to_json(&rows).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
