//! Recomputes the committed BOF4 / BOF4-S / Split87 / SH4 tables with both construction
//! paths and checks structural properties of the solutions.

use sop_codebook::*;

/// The quadrature solver is deterministic; recomputation must reproduce the committed
/// `f32` tables to within this absolute tolerance (in practice: bit-exactly).
const EXACT_TOL: f32 = 1e-6;

/// Monte-Carlo tolerance at `MC_SAMPLES` samples. The Lloyd fixed point amplifies
/// sampling noise along its slow mode; measured worst deviations are ~1.5e-3 at 4 M
/// samples and ~4e-4 at 67 M (they shrink like 1/sqrt(samples)).
const MC_TOL: f32 = 5e-3;
const MC_SAMPLES: usize = 1 << 22;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn quadrature_construction_reproduces_committed_tables() {
    for fam in Family::ALL {
        for b in [16, 64] {
            let committed = family_codebook(fam, b);
            let recomputed = fam.construct_exact(b);
            let d = max_abs_diff(&committed.levels, &recomputed);
            assert!(d <= EXACT_TOL, "{}: max diff {d:e}", committed.name);
        }
    }
}

#[test]
fn monte_carlo_construction_agrees_with_committed_tables() {
    // Split87 runs the same code path as BOF4-S (see the next test), so it is skipped.
    for fam in [Family::Bof4, Family::Bof4S, Family::Sh4] {
        for b in [16, 64] {
            let committed = family_codebook(fam, b);
            let (xs, ws) = fam.model(b).sample(MC_SAMPLES / b, 2024);
            let s = WeightedSamples::new(&xs, &ws).unwrap();
            let opts = LloydOptions {
                max_iters: 100_000,
                tol: 0.0,
                round: None,
            };
            let r = s.fit(&fam.init_levels(), fam.fixed_levels(), &opts).unwrap();
            assert!(r.converged, "{}", committed.name);
            let d = max_abs_diff(&committed.levels, &r.levels);
            eprintln!("{}: max |mc - committed| = {d:.2e}", committed.name);
            assert!(d <= MC_TOL, "{}: max diff {d:e}", committed.name);
            // Noise-robust check: on the same samples, the committed table is within
            // 0.2% of the sample-optimal MSE.
            let excess = s.weighted_mse(&committed.levels) / r.weighted_mse - 1.0;
            assert!((0.0..2e-3).contains(&excess), "{}: excess {excess:e}", committed.name);
        }
    }
}

#[test]
fn construct_monte_carlo_is_the_seeded_sample_fit() {
    let fam = Family::Split87;
    let r = fam.construct_monte_carlo(64, 2048, 5).unwrap();
    assert_eq!(r, fam.construct_monte_carlo(64, 2048, 5).unwrap());
    let (xs, ws) = fam.model(64).sample(2048, 5);
    let opts = LloydOptions {
        max_iters: 100_000,
        tol: 0.0,
        round: None,
    };
    let manual = lloyd_max(&xs, &ws, &fam.init_levels(), fam.fixed_levels(), &opts).unwrap();
    assert_eq!(r, manual);
    assert!(max_abs_diff(&r.levels, &split87(64).levels) < 2e-2);
}

#[test]
fn split87_is_bof4_s_and_halves_decouple() {
    for b in [16, 64] {
        // Under the signed scale, the BOF4-S optimum already has the 8 positive /
        // 7 negative split, so Split87's constrained optimum is the same table.
        assert_eq!(split87(b).levels, bof4_s(b).levels);
        // 0 and +1 are fixed in both BOF4 and BOF4-S and the non-extreme values have
        // the same distribution, so their positive halves coincide.
        assert_eq!(bof4(b).levels[7..], bof4_s(b).levels[7..]);
        assert_ne!(bof4(b).levels[..7], bof4_s(b).levels[..7]);
    }
}

#[test]
fn tables_beat_the_baselines_on_their_target_blocks() {
    let b = 64;
    let mse = |fam: Family, cb: &Codebook| {
        let (xs, ws) = fam.model(b).sample(16_384, 99);
        WeightedSamples::new(&xs, &ws).unwrap().weighted_mse(&cb.levels)
    };
    // Gaussian blocks, absmax scale: BOF4 < NF4.
    assert!(mse(Family::Bof4, &bof4(b)) < mse(Family::Bof4, &nf4()));
    // Gaussian blocks, signed scale: BOF4-S < BOF4 < NF4.
    assert!(mse(Family::Bof4S, &bof4_s(b)) < mse(Family::Bof4S, &bof4(b)));
    // Student-t(5) blocks, absmax scale: SH4 < NF4 and SH4 < BOF4.
    assert!(mse(Family::Sh4, &sh4(b)) < mse(Family::Sh4, &nf4()));
    assert!(mse(Family::Sh4, &sh4(b)) < mse(Family::Sh4, &bof4(b)));
}

#[test]
fn block_size_is_a_parameter() {
    let cb = bof4(32);
    assert_eq!(cb.name, "BOF4/B32");
    cb.validate().unwrap();
    // Larger blocks push the normalized values (and so the levels) towards zero.
    for i in 8..15 {
        assert!(bof4(64).levels[i] < cb.levels[i] && cb.levels[i] < bof4(16).levels[i]);
    }
}
