//! Prints the committed block-optimized tables as Rust source (replace everything below
//! the marker in `src/tables.rs` with the output), and with `--mc N` also reports how far
//! a Monte-Carlo construction with `N` blocks lands from each table (on stderr).
//!
//! `cargo run --release -p sop-codebook --example gen_tables [-- --mc 262144]`

use sop_codebook::Family;
use std::time::Instant;

fn ident(fam: Family, b: usize) -> String {
    format!("{}_B{b}", fam.base_name().replace('-', "").to_uppercase())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mc: Option<usize> = args
        .iter()
        .position(|a| a == "--mc")
        .map(|i| args[i + 1].parse().expect("--mc N"));
    let sizes = [16usize, 64];
    for fam in Family::ALL {
        for b in sizes {
            let t0 = Instant::now();
            let lv = fam.construct_exact(b);
            println!();
            println!("/// `{}`: output of `Family::construct_exact({b})`.", fam.name(b));
            println!("pub const {}: [f32; 16] = [", ident(fam, b));
            for v in &lv {
                println!("    {v:?},");
            }
            println!("];");
            eprintln!("{} exact: {:?}", fam.name(b), t0.elapsed());
            if let Some(n) = mc {
                let t0 = Instant::now();
                let r = fam.construct_monte_carlo(b, n, 1).expect("mc");
                let d = r
                    .levels
                    .iter()
                    .zip(&lv)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                eprintln!(
                    "  mc {n} blocks: {:?}, {} iters, max |mc - exact| = {d:.2e}",
                    t0.elapsed(),
                    r.iterations,
                );
            }
        }
    }
    println!();
    println!("/// The committed table of `family` at `block_size`, if there is one (16 and 64).");
    println!("pub(crate) fn committed(family: crate::Family, block_size: usize) -> Option<&'static [f32; 16]> {{");
    println!("    use crate::Family::*;");
    println!("    Some(match (family, block_size) {{");
    for fam in Family::ALL {
        for b in sizes {
            println!("        ({:?}, {b}) => &{},", fam, ident(fam, b));
        }
    }
    println!("        _ => return None,");
    println!("    }})");
    println!("}}");
}
