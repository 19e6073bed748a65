//! Prints the `s^2`-weighted MSE (`E[(w - s q)^2] / E[s^2]`) of every 16-level codebook on
//! each block model at block size 64 (Monte-Carlo, 65536 blocks, seed 11). Absmax
//! models are quantized with absmax scaling, signed models with signed scaling.
//!
//! `cargo run --release -p sop-codebook --example compare`

use sop_codebook::*;

fn main() {
    let b = 64;
    let books = [nf4(), bof4(b), bof4_s(b), split87(b), sh4(b), e2m1(), int4()];
    print!("| block model |");
    for cb in &books {
        print!(" {} |", cb.name);
    }
    println!();
    println!("|---|{}", "---|".repeat(books.len()));
    let models = [
        ("Gaussian, absmax", Family::Bof4.model(b)),
        ("Gaussian, signed max", Family::Bof4S.model(b)),
        ("Student-t(5), absmax", Family::Sh4.model(b)),
    ];
    for (label, model) in models {
        let (xs, ws) = model.sample(65536, 11);
        let s = WeightedSamples::new(&xs, &ws).expect("samples");
        print!("| {label} |");
        for cb in &books {
            print!(" {:.3e} |", s.weighted_mse(&cb.levels));
        }
        println!();
    }
}
