//! End-to-end meaning of the RTL output: for a real layer on every committed configuration,
//! the output word (captured from the Verilated model) times the layer's tensor scale equals
//! the quantizer's dequantized weight up to the packer's rounding:
//!
//! - `p = level * block_scale` is the exact product (`QuantizedLayer::product`), `w_hat =
//!   QuantizedLayer::dequantize() = RNE_f32(t * p)`, `y` = the value of the RTL word;
//! - the packer rounds once, to nearest: `|y - p| <= ulp_out(p) / 2`, with `ulp_out(p) =
//!   2^(max(floor(log2 |p|), emin) - mb)` (FP16: `emin = -14`, `mb = 10`; BF16: `emin =
//!   -126`, `mb = 7`), no saturation (real products are far below the largest output), the
//!   sign of `p` kept and `+0` for `p = 0`;
//! - hence `|t * y - w_hat| <= |t| * ulp_out(p) / 2 + ulp_f32(w_hat) / 2`, checked for every
//!   weight, computed in f64.

use sop_cosim::{compiled_configs, LayerStim, StimulusOptions, Variant};
use sop_formats::Ieee16;
use sop_testbenches::{assert_clean, harness, load, quantize, stream_layer, SMALL_LAYER};

fn ulp_out(out: Ieee16, p: f64) -> f64 {
    let (emin, mb) = match out {
        Ieee16::Fp16 => (-14, 10),
        Ieee16::Bf16 => (-126, 7),
    };
    let e = if p == 0.0 {
        emin
    } else {
        (p.abs().log2().floor() as i32).max(emin)
    };
    2f64.powi(e - mb)
}

fn ulp_f32(x: f32) -> f64 {
    let a = x.abs();
    if a == 0.0 {
        return f32::from_bits(1) as f64;
    }
    let next = f32::from_bits(a.to_bits() + 1);
    (next - a) as f64
}

#[test]
fn rtl_word_times_tensor_scale_is_the_dequantized_weight() {
    let w = load(SMALL_LAYER);
    for cfg in compiled_configs() {
        let ql = quantize(&cfg, &w);
        let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();
        let mut h = harness(&cfg.name, Variant::Plain);
        h.capture_outputs(ql.rows * ql.cols);
        stream_layer(&mut h, &stim, StimulusOptions::default(), 0);
        h.drain();
        assert_clean(&h);
        let words = h.take_capture().unwrap();
        let w_hat = ql.dequantize();
        let t = ql.tensor_scale as f64;
        let mut worst = 0.0f64;
        let mut rounded = 0u64;
        for r in 0..ql.rows {
            for c in 0..ql.cols {
                let i = r * ql.cols + c;
                let p = ql.product(r, c) as f64;
                let word = words[i];
                let y = cfg.output.decode(word as u32) as f64;
                let where_ = || format!("{}: weight ({r}, {c}): p = {p}, word {word:#06x} = {y}", cfg.name);
                assert!(y.is_finite(), "{}", where_());
                if p == 0.0 {
                    assert_eq!(word, 0, "{}: a zero product gives +0", where_());
                    continue;
                }
                assert_eq!(
                    y < 0.0 || (y == 0.0 && word & 0x8000 != 0),
                    p < 0.0,
                    "sign: {}",
                    where_()
                );
                let half = ulp_out(cfg.output, p) / 2.0;
                assert!((y - p).abs() <= half, "packer rounding: {}", where_());
                rounded += (y != p) as u64;
                let bound = t.abs() * half + ulp_f32(w_hat[i]) / 2.0;
                let err = (t * y - w_hat[i] as f64).abs();
                assert!(
                    err <= bound,
                    "{}: |t*y - w_hat| = {err:e} > {bound:e} (t = {t}, w_hat = {})",
                    where_(),
                    w_hat[i]
                );
                worst = worst.max(err / bound.max(f64::MIN_POSITIVE));
            }
        }
        eprintln!(
            "{}: {} weights, {} rounded by the packer, worst error / bound = {worst:.3}",
            cfg.name,
            words.len(),
            rounded
        );
    }
}
