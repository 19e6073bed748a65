//! Stand-alone `sop cosim` (the same arguments, through `sop_cosim::cli_glue`), usable before
//! the subcommand is wired into `crates/cli`:
//!
//! ```sh
//! cargo run --release -p sop-cosim --example cosim -- --model minilm --max-weights 100000
//! ```

use clap::Parser;

/// Co-simulate the RTL under Verilator on real quantized weights.
#[derive(Parser)]
#[command(name = "cosim")]
struct Cli {
    #[command(flatten)]
    args: sop_cosim::cli_glue::CosimArgs,
}

fn main() -> std::process::ExitCode {
    match sop_cosim::cli_glue::run(Cli::parse().args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
