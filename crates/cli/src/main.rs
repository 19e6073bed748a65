//! `sop`: the command-line front end. Each subcommand lives in its own module and only
//! glues library crates together; errors carry context and exit non-zero.

mod calibrate_cmd;
mod cosim_cmd;
mod eval_cmd;
mod export_cmd;
mod fidelity_cmd;
mod formats_cmd;
mod gemv_cmd;
mod layers_cmd;
mod model_arg;
mod quantize_cmd;
mod rtl_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// RTL generation and co-verification for SOP, a hardware-aware post-training
/// quantizer for LLM weights.
///
/// sop quantizes real model weights (safetensors) with block-scaled formats and
/// per-layer codebooks, emits the weight-decode hardware as Verilog, and co-simulates
/// that Verilog under Verilator against a bit-accurate software model.
#[derive(Parser)]
#[command(name = "sop", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// Worker threads for the parallel numerics [default: all cores]. Outputs are
    /// byte-identical at any thread count.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the number formats: code tables, rounding, and their parameters.
    #[command(subcommand)]
    Formats(formats_cmd::FormatsCmd),
    /// List the linear layers (2-D weights) of a model, with shapes and dtypes.
    Layers(layers_cmd::LayersArgs),
    /// Quantize a model's linear layers at several operating points and compare the
    /// reconstruction error (NMSE, SQNR, cosine) per layer, with a summary.
    Eval(eval_cmd::EvalArgs),
    /// Collect real activation statistics (per-column E[x^2] of every linear layer) by
    /// running the model on calibration text; write them as a llama.cpp imatrix.gguf.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Quantize every linear layer to a target average bpw: evaluate a menu of options per
    /// layer, choose by MCKP, write the quantized model (safetensors) and a report.
    Quantize(quantize_cmd::QuantizeArgs),
    /// Load a quantized model written by `sop quantize`, verify it and list its layers.
    Inspect(quantize_cmd::InspectArgs),
    /// Write the weights exactly as the decode hardware delivers them (output words times the
    /// tensor scale) as safetensors under the original names, for end-to-end evaluation.
    Export(export_cmd::ExportArgs),
    /// Emit the decode hardware as Verilog, or measure its area and speed.
    #[command(subcommand)]
    Rtl(rtl_cmd::RtlCmd),
    /// Co-simulate the Verilog in rtl-out/ under Verilator on real quantized layers and
    /// compare every output word with the bit-accurate model; exit non-zero on mismatch.
    #[command(args_conflicts_with_subcommands = true)]
    Cosim(cosim_cmd::CosimArgs),
    /// Multiply real quantized layers by real activations on the Verilated dot-product tile
    /// and check every output against the golden model; `--forward` runs the whole model.
    Gemv(gemv_cmd::GemvArgs),
    /// Run the original and the quantized model over held-out text: perplexity, mean KL
    /// divergence and top-1 agreement (decoder LLMs), output-embedding cosine (encoders).
    Fidelity(fidelity_cmd::FidelityArgs),
}

/// Writing into a closed pipe (`sop layers | head`) ends the process quietly, as it does for
/// other Unix tools, instead of a panic in `println!`. Sound here because sop writes no
/// pipe but its own stdout and stderr: child processes get a null stdin.
#[cfg(unix)]
fn default_sigpipe() {
    // SAFETY: restores the default disposition of one signal before any other thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    default_sigpipe();
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // The only pool: every parallel loop (quantizer, metrics, calibration) runs on it.
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n.into()).build_global() {
            eprintln!("error: --threads {n}: cannot start the thread pool: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Formats(cmd) => formats_cmd::run(cmd),
        Command::Layers(args) => layers_cmd::run(args),
        Command::Fidelity(args) => fidelity_cmd::run(args),
        Command::Eval(args) => eval_cmd::run(args),
        Command::Calibrate(args) => calibrate_cmd::run(args),
        Command::Quantize(args) => quantize_cmd::run(args),
        Command::Inspect(args) => quantize_cmd::inspect(args),
        Command::Export(args) => export_cmd::run(args),
        Command::Rtl(cmd) => rtl_cmd::run(cmd),
        Command::Cosim(args) => cosim_cmd::run(args),
        Command::Gemv(args) => gemv_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as one line, `context: cause: ...`, each text once: a cause
/// that an outer message already quotes (errors that embed their source) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
        if !c.is_empty() && !s.contains(&c) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&c);
        }
    }
    s
}
