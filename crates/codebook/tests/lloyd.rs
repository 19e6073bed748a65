//! The weighted Lloyd-Max fitter: known solutions, weights, fixed levels, rounding,
//! determinism, degenerate inputs and errors.

use sop_codebook::*;

fn opts() -> LloydOptions<'static> {
    LloydOptions {
        max_iters: 100_000,
        tol: 0.0,
        round: None,
    }
}

#[test]
fn uniform_distribution_gives_uniform_levels() {
    let n = 400_000;
    let xs: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    let r = lloyd_max(&xs, &[], &[0.1, 0.2, 0.3, 0.4], &[], &opts()).unwrap();
    assert!(r.converged);
    for (i, l) in r.levels.iter().enumerate() {
        let want = (2 * i + 1) as f32 / 8.0;
        assert!((l - want).abs() < 1e-4, "level {i}: {l} vs {want}");
    }
    // MSE of a 4-level uniform quantizer on U(0,1): (1/4)^2 / 12.
    assert!((r.weighted_mse - 1.0 / 192.0).abs() < 1e-6);
}

#[test]
fn two_point_distribution_is_recovered_exactly() {
    let mut xs = vec![-1.0f32; 300];
    xs.extend(vec![2.0f32; 700]);
    let r = lloyd_max(&xs, &[], &[0.0, 0.5], &[], &opts()).unwrap();
    assert_eq!(r.levels, vec![-1.0, 2.0]);
    assert_eq!(r.weighted_mse, 0.0);
    assert!(r.converged);
}

#[test]
fn weights_move_the_centroid() {
    let r = lloyd_max(&[0.0, 1.0], &[3.0, 1.0], &[0.5], &[], &opts()).unwrap();
    assert_eq!(r.levels, vec![0.25]);
    // Zero-weight samples do not pull.
    let r = lloyd_max(&[0.0, 1.0, 100.0], &[1.0, 1.0, 0.0], &[0.5], &[], &opts()).unwrap();
    assert_eq!(r.levels, vec![0.5]);
}

#[test]
fn fixed_levels_stay_put() {
    let xs: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
    let r = lloyd_max(&xs, &[], &[0.9, 0.0, 0.3], &[0.0, 0.9], &opts()).unwrap();
    assert_eq!(r.levels[0], 0.0);
    assert_eq!(r.levels[2], 0.9);
    // The free level sits at the centroid of its cell [0.15.., 0.6..) -> self-consistent.
    let l = r.levels[1];
    let lo = l / 2.0;
    let hi = (l + 0.9) / 2.0;
    assert!((l - (lo + hi) / 2.0).abs() < 1e-3, "{l}");
}

#[test]
fn rounding_closure_snaps_free_levels() {
    let xs: Vec<f32> = (0..10_000).map(|i| (i as f32 / 10_000.0).powi(2)).collect();
    let round = |v: f32| (v * 16.0).round() / 16.0;
    let o = LloydOptions {
        round: Some(&round),
        ..opts()
    };
    let r = lloyd_max(&xs, &[], &[0.0, 0.3, 0.5, 0.7, 0.9], &[0.0], &o).unwrap();
    assert!(r.converged);
    for l in &r.levels {
        assert_eq!(*l, round(*l), "{l} on the 1/16 grid");
    }
    assert!(r.levels.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn duplicates_after_rounding_are_kept_sorted() {
    // A very coarse grid forces levels onto the same value.
    let xs: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
    let round = |v: f32| (v * 2.0).round() / 2.0;
    let o = LloydOptions {
        round: Some(&round),
        max_iters: 50,
        ..opts()
    };
    let r = lloyd_max(&xs, &[], &[0.1, 0.2, 0.3, 0.4, 0.6, 0.8], &[], &o).unwrap();
    assert_eq!(r.levels.len(), 6);
    assert!(r.levels.windows(2).all(|w| w[0] <= w[1]));
    assert!(r.levels.windows(2).any(|w| w[0] == w[1]), "{:?}", r.levels);
    // The MSE is that of the distinct levels with nearest-level assignment.
    let mut distinct = r.levels.clone();
    distinct.dedup();
    let s = WeightedSamples::new(&xs, &[]).unwrap();
    assert_eq!(s.weighted_mse(&distinct), r.weighted_mse);
}

#[test]
fn non_monotone_rounding_is_resorted() {
    let xs: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
    let flip = |v: f32| 1.0 - v;
    let o = LloydOptions {
        round: Some(&flip),
        max_iters: 7,
        ..opts()
    };
    let r = lloyd_max(&xs, &[], &[0.1, 0.5, 0.8], &[], &o).unwrap();
    assert!(r.levels.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(r.iterations, 7);
}

#[test]
fn deterministic_and_order_independent() {
    let mut state = 12345u64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let xs: Vec<f32> = (0..50_000).map(|_| rnd() * 2.0 - 1.0).collect();
    let ws: Vec<f32> = (0..50_000).map(|_| rnd()).collect();
    let a = lloyd_max(&xs, &ws, &NF4_LEVELS, &[-1.0, 0.0, 1.0], &opts()).unwrap();
    let b = lloyd_max(&xs, &ws, &NF4_LEVELS, &[-1.0, 0.0, 1.0], &opts()).unwrap();
    assert_eq!(a, b);
    let mut pairs: Vec<(f32, f32)> = xs.iter().copied().zip(ws.iter().copied()).collect();
    pairs.reverse();
    pairs.rotate_left(777);
    let (xs2, ws2): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
    let mut init = NF4_LEVELS.to_vec();
    init.reverse();
    let c = lloyd_max(&xs2, &ws2, &init, &[1.0, 0.0, -1.0], &opts()).unwrap();
    assert_eq!(a, c);
}

#[test]
fn cells_follow_codebook_nearest_including_ties() {
    // Samples on every level and every exact midpoint of a dyadic codebook; one Lloyd
    // step must equal centroids of the `Codebook::nearest` partition.
    let levels: Vec<f32> = [-64, -40, -24, -12, -4, 0, 4, 10, 18, 28, 40, 52, 58, 60, 62, 64]
        .iter()
        .map(|&k| k as f32 / 64.0)
        .collect();
    let cb = Codebook::new("t", levels.clone()).unwrap();
    let xs: Vec<f32> = (-128..=128).map(|k| k as f32 / 128.0).collect();
    let ws: Vec<f32> = (0..xs.len()).map(|i| 1.0 + (i % 5) as f32).collect();
    let o = LloydOptions { max_iters: 1, ..opts() };
    let r = lloyd_max(&xs, &ws, &levels, &[], &o).unwrap();
    let mut sw = [0.0f64; 16];
    let mut swx = [0.0f64; 16];
    for (x, w) in xs.iter().zip(&ws) {
        let i = cb.nearest(*x) as usize;
        sw[i] += *w as f64;
        swx[i] += (*w * *x) as f64;
    }
    for i in 0..16 {
        let want = if sw[i] > 0.0 {
            (swx[i] / sw[i]) as f32
        } else {
            levels[i]
        };
        assert!((r.levels[i] - want).abs() < 1e-7, "level {i}");
    }
}

#[test]
fn weighted_mse_matches_direct_computation() {
    let xs: Vec<f32> = (0..20_000)
        .map(|i| ((i * 7919) % 20_000) as f32 / 10_000.0 - 1.0)
        .collect();
    let ws: Vec<f32> = (0..20_000).map(|i| 0.5 + (i % 3) as f32).collect();
    let r = lloyd_max(&xs, &ws, &NF4_LEVELS, &[-1.0, 0.0, 1.0], &opts()).unwrap();
    let cb = Codebook::new("fit", r.levels.clone()).unwrap();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (x, w) in xs.iter().zip(&ws) {
        let d = *x as f64 - cb.quantize(*x) as f64;
        num += *w as f64 * d * d;
        den += *w as f64;
    }
    assert!((r.weighted_mse - num / den).abs() < 1e-12 * (1.0 + num / den));
    // The fit beats the initial NF4 table on its own data.
    let s = WeightedSamples::new(&xs, &ws).unwrap();
    assert!(r.weighted_mse <= s.weighted_mse(&NF4_LEVELS));
}

#[test]
fn all_zero_samples() {
    let xs = vec![0.0f32; 1000];
    let r = lloyd_max(&xs, &[], &NF4_LEVELS, &[-1.0, 1.0], &opts()).unwrap();
    assert!(r.converged);
    assert_eq!(r.weighted_mse, 0.0);
    assert!(r.levels.contains(&0.0));
    // Every other level keeps its initial value (empty cells).
    let moved = r.levels.iter().zip(NF4_LEVELS.iter()).filter(|(a, b)| a != b).count();
    assert_eq!(moved, 0, "NF4 already has 0; nothing moves: {:?}", r.levels);
    let r = lloyd_max(&xs, &[], &[-0.5, 0.25, 0.75], &[], &opts()).unwrap();
    assert_eq!(r.levels, vec![-0.5, 0.0, 0.75]);
}

#[test]
fn zero_iterations_returns_sorted_init() {
    let o = LloydOptions { max_iters: 0, ..opts() };
    let r = lloyd_max(&[0.1, 0.2], &[], &[0.5, -0.5], &[], &o).unwrap();
    assert_eq!(r.levels, vec![-0.5, 0.5]);
    assert_eq!(r.iterations, 0);
    assert!(!r.converged);
}

#[test]
fn invalid_inputs_are_errors() {
    let o = opts();
    assert_eq!(lloyd_max(&[], &[], &[0.0], &[], &o), Err(LloydError::EmptySamples));
    assert_eq!(
        lloyd_max(&[0.0, 1.0], &[1.0], &[0.0], &[], &o),
        Err(LloydError::WeightLengthMismatch { samples: 2, weights: 1 })
    );
    assert_eq!(
        lloyd_max(&[0.0, f32::NAN], &[], &[0.0], &[], &o),
        Err(LloydError::NonFiniteSample(1))
    );
    assert_eq!(
        lloyd_max(&[0.0, 1.0], &[1.0, -1.0], &[0.0], &[], &o),
        Err(LloydError::InvalidWeight(1))
    );
    assert_eq!(
        lloyd_max(&[0.0, 1.0], &[0.0, 0.0], &[0.0], &[], &o),
        Err(LloydError::ZeroTotalWeight)
    );
    assert_eq!(lloyd_max(&[0.0], &[], &[], &[], &o), Err(LloydError::EmptyInit));
    assert_eq!(
        lloyd_max(&[0.0], &[], &[f32::INFINITY], &[], &o),
        Err(LloydError::NonFiniteInit(0))
    );
    assert_eq!(
        lloyd_max(&[0.0], &[], &[0.5], &[0.25], &o),
        Err(LloydError::FixedNotInInit(0.25))
    );
    let nan = |_: f32| f32::NAN;
    let bad = LloydOptions {
        round: Some(&nan),
        ..opts()
    };
    assert!(matches!(
        lloyd_max(&[0.0, 1.0], &[], &[0.5], &[], &bad),
        Err(LloydError::NonFiniteRound(_))
    ));
}

#[test]
fn layer_sized_input_is_handled() {
    // ~1.5 M samples, as for one LLM layer; must complete quickly in an optimized build.
    let n = 1_500_000u32;
    let xs: Vec<f32> = (0..n)
        .map(|i| {
            let u = (i.wrapping_mul(2_654_435_761) as f32) / u32::MAX as f32;
            (u * 2.0 - 1.0).powi(3)
        })
        .collect();
    let s = WeightedSamples::new(&xs, &[]).unwrap();
    assert_eq!(s.len(), n as usize);
    let r = s.fit(&NF4_LEVELS, &[-1.0, 0.0, 1.0], &LloydOptions::default()).unwrap();
    assert!(r.converged);
    assert!(r.weighted_mse < s.weighted_mse(&NF4_LEVELS));
}
