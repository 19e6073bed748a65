//! The block dot-product tile's arithmetic: the golden model of `docs/spec.md` section 7
//! ("Block dot product"), which the tile's RTL must match bit for bit.
//!
//! One row's dot product `sum_i w_i x_i` over a weight row that the decode lanes stream
//! (codes, per-block scale and selection bit, the engine's mode) and an activation vector:
//!
//! 1. **Activation alignment** (once per block, shared by all rows): every activation of the
//!    block is a signed integer significand times a power of two ([`ActFormat::fields`]);
//!    each is shifted to the exponent of the block's largest one, keeping [`ALIGN_BITS`]
//!    fraction bits below that activation's last significand bit, and truncated toward zero
//!    ([`align_block`]).
//! 2. **Exact block sum**: the sum of `element x aligned activation` over the block, with
//!    the element values of the decode lanes ([`crate::model::element_value`]; a HIF element
//!    is `(8 + m)/8 * 2^E`, so the hardware forms each product with shifts and adds), exactly
//!    (no rounding; the hardware's integer is wide enough).
//! 3. **One block-scale multiplication** of the exact sum, exactly.
//! 4. **One rounding per block** into the FP32 accumulator: `acc <- RNE_f32(acc + block)`
//!    ([`add_exact`]), from `+0`. A block whose exact value is 0 leaves `acc` unchanged.
//! 5. The tensor scale: one FP32 multiplication at the end ([`apply_tensor_scale`]).
//!
//! A non-finite activation (Inf, NaN) makes the whole row result the canonical NaN
//! (`0x7fc0_0000`): the hardware keeps one sticky flag per activation vector.

use sop_formats::{Ieee16, E4M3};

use crate::config::LaneConfig;
use crate::model::{element_value, scale_value_in, Tables};

/// Fraction bits an aligned activation keeps below the last significand bit of the block's
/// largest activation: the aligned magnitude is `significand << ALIGN_BITS >> (emax - e)`.
pub const ALIGN_BITS: u32 = 8;

/// The canonical NaN a row with a non-finite activation yields.
pub const ROW_NAN: u32 = 0x7fc0_0000;

/// An activation word format (a build-time parameter of the tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActFormat {
    /// BF16 (the default).
    Bf16,
    /// IEEE binary16.
    Fp16,
    /// OCP FP8 E4M3 (no Inf; `S.1111.111` is NaN).
    E4M3,
}

/// One activation: `(-1)^neg * sig * 2^exp`, or not finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// A finite value (`sig = 0` for a zero).
    Finite {
        /// Negative.
        neg: bool,
        /// Integer significand (hidden bit included for normal values).
        sig: u32,
        /// Exponent of the significand's last bit.
        exp: i32,
    },
    /// Inf or NaN.
    NonFinite,
}

impl ActFormat {
    /// Every format.
    pub const ALL: [ActFormat; 3] = [ActFormat::Bf16, ActFormat::Fp16, ActFormat::E4M3];

    /// Display name.
    pub const fn name(self) -> &'static str {
        match self {
            ActFormat::Bf16 => "BF16",
            ActFormat::Fp16 => "FP16",
            ActFormat::E4M3 => "E4M3",
        }
    }

    /// Word width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            ActFormat::Bf16 | ActFormat::Fp16 => 16,
            ActFormat::E4M3 => 8,
        }
    }

    /// `(exponent bits, mantissa bits, bias, has Inf)`.
    pub(crate) const fn layout(self) -> (u32, u32, i32, bool) {
        match self {
            ActFormat::Bf16 => (8, 7, 127, true),
            ActFormat::Fp16 => (5, 10, 15, true),
            ActFormat::E4M3 => (4, 3, 7, false),
        }
    }

    /// Splits a word (its low [`Self::bits`] bits) into sign, significand and exponent.
    pub fn fields(self, word: u32) -> Act {
        let (eb, mb, bias, ieee) = self.layout();
        let word = word & ((1u32 << self.bits()) - 1);
        let neg = word >> (eb + mb) != 0;
        let e = (word >> mb) & ((1 << eb) - 1);
        let m = word & ((1 << mb) - 1);
        let special = if ieee {
            e == (1 << eb) - 1
        } else {
            e == (1 << eb) - 1 && m == (1 << mb) - 1
        };
        if special {
            return Act::NonFinite;
        }
        let (sig, ee) = if e == 0 { (m, 1) } else { (m | 1 << mb, e as i32) };
        Act::Finite {
            neg,
            sig,
            exp: ee - bias - mb as i32,
        }
    }

    /// The exact value of a word (`NaN` for a non-finite one), decoded by `sop-formats`
    /// rather than by [`Self::fields`] (the independent reference of the tests).
    pub fn value(self, word: u32) -> f64 {
        match self {
            ActFormat::Bf16 => Ieee16::Bf16.decode(word & 0xffff) as f64,
            ActFormat::Fp16 => Ieee16::Fp16.decode(word & 0xffff) as f64,
            ActFormat::E4M3 => E4M3.decode(word & 0xff) as f64,
        }
    }
}

/// A block's activations aligned to its largest: activation `i` is `a[i] * 2^exp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aligned {
    /// Signed aligned significands.
    pub a: Vec<i64>,
    /// Common exponent (meaningless when every `a` is 0).
    pub exp: i32,
}

/// Aligns a block's activation words (step 1 of the module doc); `None` if one is not
/// finite.
pub fn align_block(fmt: ActFormat, words: &[u32]) -> Option<Aligned> {
    let mut acts = Vec::with_capacity(words.len());
    let mut emax = i32::MIN;
    for &w in words {
        match fmt.fields(w) {
            Act::NonFinite => return None,
            Act::Finite { neg, sig, exp } => {
                if sig != 0 {
                    emax = emax.max(exp);
                }
                acts.push((neg, sig, exp));
            }
        }
    }
    if emax == i32::MIN {
        return Some(Aligned {
            a: vec![0; words.len()],
            exp: 0,
        });
    }
    let a = acts
        .into_iter()
        .map(|(neg, sig, exp)| {
            let sh = (emax - exp) as u32;
            let mag = if sh >= 40 {
                0
            } else {
                ((sig as i64) << ALIGN_BITS) >> sh
            };
            if neg {
                -mag
            } else {
                mag
            }
        })
        .collect();
    Some(Aligned {
        a,
        exp: emax - ALIGN_BITS as i32,
    })
}

/// `x` (finite, non-zero) as `(odd integer, exponent)`.
fn split(x: f64) -> (i64, i32) {
    let bits = x.abs().to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    let f = bits & ((1 << 52) - 1);
    let (mut m, mut k) = if e == 0 { (f, -1074) } else { (f | 1 << 52, e - 1075) };
    let tz = m.trailing_zeros();
    m >>= tz;
    k += tz as i32;
    (if x < 0.0 { -(m as i64) } else { m as i64 }, k)
}

/// The exact value of one block of a row: `sum_i element(code_i) * aligned_i`, times the
/// block scale (steps 2 and 3), as `(signed integer, exponent)`; `None` for an FP16 Inf/NaN
/// table word (a tile has HIF tables or direct elements, whose values are all finite).
pub fn block_value(
    cfg: &LaneConfig,
    tables: &Tables,
    sel: bool,
    scale_code: u8,
    codes: &[u32],
    act: &Aligned,
) -> Option<(i128, i32)> {
    assert_eq!(codes.len(), act.a.len(), "one activation per weight");
    let mut terms: Vec<(i128, i32)> = Vec::with_capacity(codes.len());
    for (&c, &a) in codes.iter().zip(&act.a) {
        let w = element_value(cfg, tables, sel, c).ok()?;
        if w != 0.0 && a != 0 {
            let (m, k) = split(w);
            terms.push((m as i128 * a as i128, k));
        }
    }
    let scale = tables.mode.map_or(cfg.scale, |m| m.scale);
    let s = scale_value_in(scale, scale_code);
    let Some(base) = terms.iter().map(|t| t.1).min() else {
        return Some((0, 0));
    };
    if s == 0.0 {
        return Some((0, 0));
    }
    let mut sum: i128 = 0;
    for (m, k) in terms {
        let sh = (k - base) as u32;
        assert!(sh < 64, "element exponents of one block span more than 64 octaves");
        sum += m << sh;
    }
    let (sm, sk) = split(s);
    Some((sum * sm as i128, base + sk + act.exp))
}

/// `RNE_f32(acc + v * 2^exp)` computed exactly with one rounding (step 4): IEEE-754
/// binary32 round-to-nearest-even with gradual underflow and overflow to Inf; an exact zero
/// sum is `+0`, a non-zero sum that rounds to zero keeps its sign, `v = 0` returns `acc`,
/// an infinite `acc` stays. `|v| < 2^64`.
pub fn add_exact(acc: f32, v: i128, exp: i32) -> f32 {
    assert!(v.unsigned_abs() < 1 << 64, "block values are below 2^64");
    if v == 0 || acc.is_infinite() || acc.is_nan() {
        return acc;
    }
    // Both operands as (signed magnitude, exponent of its last bit, top = exponent above it).
    let (a_sig, a_k) = f32_parts(acc);
    let top = |m: i128, k: i32| k + 128 - m.unsigned_abs().leading_zeros() as i32;
    let t = if a_sig == 0 {
        top(v, exp)
    } else {
        top(v, exp).max(top(a_sig, a_k))
    };
    // A common base 102 bits below the larger top keeps the larger operand exact; the other
    // one, if it reaches below the base, is truncated there with its lost bits jammed into
    // the last bit (a sticky bit at least two places below any rounding position).
    let base = t - 102;
    let at_base = |m: i128, k: i32| -> i128 {
        if m == 0 {
            0
        } else if k >= base {
            m << (k - base)
        } else {
            let sh = (base - k) as u32;
            let mag = m.unsigned_abs();
            let kept = if sh >= 128 { 0 } else { mag >> sh };
            let lost = sh >= 128 || mag & ((1u128 << sh) - 1) != 0;
            let j = (kept | u128::from(lost)) as i128;
            if m < 0 {
                -j
            } else {
                j
            }
        }
    };
    let sum = at_base(a_sig, a_k) + at_base(v, exp);
    round_f32(sum < 0, sum.unsigned_abs(), base)
}

/// `(-1)^neg * mag * 2^exp` rounded to binary32 (RNE, gradual underflow, overflow to Inf;
/// `mag = 0` gives `+0`).
fn round_f32(neg: bool, mag: u128, exp: i32) -> f32 {
    if mag == 0 {
        return 0.0;
    }
    let p = 127 - mag.leading_zeros() as i32;
    // Keep 24 bits, or fewer where the result is subnormal (quantum 2^-149).
    let shift = if exp + p >= -126 { p - 23 } else { -149 - exp };
    let (q, e2) = if shift <= 0 {
        (mag << (-shift) as u32, exp + shift)
    } else if shift >= 128 {
        (0, exp + shift)
    } else {
        let s = shift as u32;
        let q = mag >> s;
        let rem = mag & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        let up = rem > half || (rem == half && q & 1 == 1);
        (q + u128::from(up), exp + shift)
    };
    let (q, e2) = if q == 1 << 24 { (q >> 1, e2 + 1) } else { (q, e2) };
    let sign = u32::from(neg) << 31;
    if q == 0 {
        return f32::from_bits(sign);
    }
    let field = if q < 1 << 23 { 0 } else { e2 + 150 };
    if field >= 255 {
        return f32::from_bits(sign | 0x7f80_0000);
    }
    f32::from_bits(sign | (field as u32) << 23 | (q as u32 & 0x7f_ffff))
}

/// The tensor scale (step 5): one binary32 multiplication.
pub fn apply_tensor_scale(acc: f32, tensor_scale: f32) -> f32 {
    acc * tensor_scale
}

/// One row's dot product before the tensor scale: `codes` (one per weight) streamed with
/// per-block `(scale code, selection bit)` in `blocks`, `block` weights per block (the last
/// block may be shorter), against activation words `x` of format `fmt`.
///
/// # Panics
/// If the lengths disagree or a table word is FP16 Inf/NaN (not a tile table).
pub fn dot_row(
    cfg: &LaneConfig,
    tables: &Tables,
    fmt: ActFormat,
    x: &[u32],
    codes: &[u32],
    blocks: &[(u8, bool)],
    block: usize,
) -> f32 {
    assert!(block > 0 && codes.len() == x.len(), "one activation per weight");
    assert_eq!(blocks.len(), codes.len().div_ceil(block), "one scale per block");
    let mut acc = 0f32;
    for ((xs, cs), &(scale, sel)) in x.chunks(block).zip(codes.chunks(block)).zip(blocks) {
        let Some(al) = align_block(fmt, xs) else {
            return f32::from_bits(ROW_NAN);
        };
        let (v, e) = block_value(cfg, tables, sel, scale, cs, &al).expect("tile tables hold finite values");
        acc = add_exact(acc, v, e);
    }
    acc
}

/// Banks of the conventional tile's interleaved FP32 accumulator (docs/spec.md 6.3): one per
/// stage of the pipelined adder, so that it takes one product per cycle.
pub const CONV_BANKS: usize = crate::params::FPACC_SPACING as usize;

/// `x` (binary32, finite) as `(signed integer, exponent)`: `x = v * 2^exp` exactly.
fn f32_parts(x: f32) -> (i128, i32) {
    let b = x.to_bits();
    let field = ((b >> 23) & 0xff) as i32;
    let frac = (b & 0x7f_ffff) as i128;
    let (m, k) = if field == 0 {
        (frac, -149)
    } else {
        (frac | 1 << 23, field - 150)
    };
    (if b >> 31 != 0 { -m } else { m }, k)
}

/// The conventional baseline's dot product of one row (docs/spec.md 6.3), before the tensor
/// scale: FP16 weight words `w` (as the FP16-LUT engine delivers them) times activation
/// words `x` of format `fmt`. Each product is exact; product `i` is added with one binary32
/// rounding ([`add_exact`]) into bank `i mod CONV_BANKS` (each bank starts at `+0`); the banks
/// are then added in order into `+0`, one rounding each. A non-finite weight word,
/// activation or bank gives [`ROW_NAN`].
///
/// # Panics
/// If the lengths differ.
pub fn dot_row_conventional(fmt: ActFormat, w: &[u16], x: &[u32]) -> f32 {
    assert_eq!(w.len(), x.len(), "one activation per weight");
    let mut banks = [0f32; CONV_BANKS];
    let mut nan = false;
    for (i, (&wi, &xi)) in w.iter().zip(x).enumerate() {
        // An FP16 weight word splits like an FP16 activation.
        let (
            Act::Finite {
                neg: wn,
                sig: ws,
                exp: we,
            },
            Act::Finite { neg, sig, exp },
        ) = (ActFormat::Fp16.fields(u32::from(wi)), fmt.fields(xi))
        else {
            nan = true;
            continue;
        };
        let m = ws as i128 * sig as i128;
        let v = if neg ^ wn { -m } else { m };
        let b = &mut banks[i % CONV_BANKS];
        *b = add_exact(*b, v, we + exp);
    }
    if nan || banks.iter().any(|b| !b.is_finite()) {
        return f32::from_bits(ROW_NAN);
    }
    banks.iter().fold(0f32, |acc, &b| {
        let (v, k) = f32_parts(b);
        add_exact(acc, v, k)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `a + b` when it is exact in f64 (Knuth's TwoSum error term is zero).
    fn exact_sum(a: f64, b: f64) -> Option<f64> {
        let s = a + b;
        let bb = s - a;
        let err = (a - (s - bb)) + (b - bb);
        (err == 0.0 && s.is_finite()).then_some(s)
    }

    fn pow2(k: i32) -> f64 {
        2f64.powi(k)
    }

    proptest! {
        /// Against IEEE hardware: where `acc + v` is exact in f64, rounding it to f32 (Rust's
        /// `as`, round-to-nearest-even) is the one-rounding result.
        #[test]
        fn add_exact_matches_f64_then_f32(
            sign in any::<bool>(),
            frac in 0u32..1 << 23,
            d in -40i32..40,
            v in -(1i64 << 52)..(1i64 << 52),
            exp in -200i32..150,
        ) {
            // The accumulator within 40 octaves of v's top, so that many sums are exact in f64.
            let vtop = exp + 64 - (v.unsigned_abs().leading_zeros() as i32);
            let field = (vtop + 127 + d).clamp(0, 254) as u32;
            let acc = f32::from_bits(u32::from(sign) << 31 | field << 23 | frac);
            let vf = v as f64 * pow2(exp);
            prop_assume!(vf.is_finite() && (v == 0 || vf != 0.0));
            if let Some(s) = exact_sum(acc as f64, vf) {
                let got = add_exact(acc, v as i128, exp);
                let want = if v == 0 { acc } else { s as f32 };
                // IEEE gives -0 for (-0) + (-0) only; an exact zero sum is +0 in both.
                prop_assert_eq!(got.to_bits(), want.to_bits(), "acc {} v {} exp {}", acc, v, exp);
            }
        }

        /// Fields against sop-formats' decoders, every word.
        #[test]
        fn act_fields_match_the_format_decoders(w in any::<u16>()) {
            for fmt in ActFormat::ALL {
                let w = w as u32 & ((1 << fmt.bits()) - 1);
                let v = fmt.value(w);
                match fmt.fields(w) {
                    Act::NonFinite => prop_assert!(!v.is_finite(), "{:?} {:#x}", fmt, w),
                    Act::Finite { neg, sig, exp } => {
                        let x = sig as f64 * pow2(exp);
                        prop_assert_eq!(if neg { -x } else { x }, v, "{:?} {:#x}", fmt, w);
                    }
                }
            }
        }
    }

    proptest! {
        /// The conventional row against IEEE binary32 hardware: an FP16 x BF16 product has at
        /// most 19 significant bits, so with exponents kept in range it is exact in f32, and
        /// each `bank + product` is one f32 addition (round to nearest even); the banks are
        /// then summed in order with f32 additions. Decoded by `sop-formats`, not by the
        /// golden model's field split.
        #[test]
        fn conventional_row_matches_f32_arithmetic(
            ws in prop::collection::vec((any::<bool>(), 1u16..31, 0u16..1024), 1..40),
            xs in prop::collection::vec((any::<bool>(), 67u16..187, 0u16..128), 40),
        ) {
            let w: Vec<u16> = ws.iter().map(|&(s, e, f)| u16::from(s) << 15 | e << 10 | f).collect();
            let x: Vec<u32> = xs[..w.len()].iter().map(|&(s, e, f)| u32::from(s) << 15 | u32::from(e) << 7 | u32::from(f)).collect();
            let mut banks = [0f32; CONV_BANKS];
            for (i, (&wi, &xi)) in w.iter().zip(&x).enumerate() {
                let p = Ieee16::Fp16.decode(wi as u32) * Ieee16::Bf16.decode(xi);
                banks[i % CONV_BANKS] += p;
            }
            let want = banks.iter().fold(0f32, |a, &b| a + b);
            let got = dot_row_conventional(ActFormat::Bf16, &w, &x);
            // Equal as numbers (IEEE and the golden model may differ in the sign of a zero).
            prop_assert!(got == want || (got.is_nan() && !want.is_finite()), "golden {} f32 {}", got, want);
        }
    }

    #[test]
    fn conventional_row_nan_rules() {
        let one_w = 0x3c00u16; // FP16 1.0
        let one_x = 0x3f80u32; // BF16 1.0
        assert_eq!(dot_row_conventional(ActFormat::Bf16, &[one_w; 5], &[one_x; 5]), 5.0);
        assert_eq!(
            dot_row_conventional(ActFormat::Bf16, &[0x7c00, one_w], &[one_x; 2]).to_bits(),
            ROW_NAN
        );
        assert_eq!(
            dot_row_conventional(ActFormat::Bf16, &[one_w; 2], &[one_x, 0xff80]).to_bits(),
            ROW_NAN
        );
        // A bank that overflows makes the row NaN (65504 * 2^127 overflows binary32).
        assert_eq!(
            dot_row_conventional(ActFormat::Bf16, &[0x7bff; 2], &[0x7f00; 2]).to_bits(),
            ROW_NAN
        );
    }

    fn engine() -> LaneConfig {
        crate::default_configs()
            .into_iter()
            .find(|c| c.engine && c.lut.hif().is_some())
            .expect("a HIF engine")
    }

    proptest! {
        /// A row against f64: with every activation of a block at one exponent (alignment
        /// loses nothing) and small sums, each block value and each accumulation is exact in
        /// f64, so the row is the f64 sum of the exact products rounded to f32 after every
        /// block: computed here from `decode`d values, not from the tile's integers.
        #[test]
        fn dot_row_matches_f64_blocks(
            mode_word in prop::sample::select(crate::mode::all_modes().iter().map(|m| m.word()).collect::<Vec<_>>()),
            words in prop::collection::vec(any::<u8>(), 128),
            bias in -8i32..12,
            rows in prop::collection::vec((any::<u32>(), any::<u8>(), any::<bool>(), 0u32..128), 48),
            exps in prop::collection::vec(0x3c00u32..0x4200, 3),
        ) {
            let cfg = engine();
            let h = cfg.lut.hif().unwrap();
            let mut t = Tables::zeroed(&cfg);
            for (i, w) in words.iter().enumerate() {
                t.entries[i / 64][i % 64] = *w as u32 & (h.num_codes() - 1);
            }
            t.bias = [bias, bias + 3];
            t.mode = Some(crate::mode::Mode::from_word(mode_word).unwrap());
            let block = 16;
            let codes: Vec<u32> = rows.iter().map(|r| r.0 & 63).collect();
            // BF16 activations: block b shares exponent field exps[b] >> 7 (sign and
            // mantissa random).
            let x: Vec<u32> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.3 & 0x80) << 8 | (exps[i / block] & 0x7f80) | (r.3 & 0x7f))
                .collect();
            let blocks: Vec<(u8, bool)> = rows.iter().step_by(block).map(|r| (r.1 % 0x70, r.2)).collect();
            let got = dot_row(&cfg, &t, ActFormat::Bf16, &x, &codes, &blocks, block);
            let scale_fmt = t.mode.unwrap().scale;
            let mut acc = 0f32;
            for (b, &(scale, sel)) in blocks.iter().enumerate() {
                let mut sum = 0f64;
                for i in b * block..(b + 1) * block {
                    let w = crate::model::element_value(&cfg, &t, sel, codes[i]).unwrap();
                    sum += w * ActFormat::Bf16.value(x[i]);
                }
                let v = sum * scale_value_in(scale_fmt, scale);
                if v != 0.0 {
                    // Rare draws whose running sum is not exact in f64 are discarded.
                    let Some(s) = exact_sum(acc as f64, v) else {
                        prop_assume!(false);
                        unreachable!()
                    };
                    acc = s as f32;
                }
            }
            prop_assert_eq!(got.to_bits(), acc.to_bits(), "{} vs {}", got, acc);
        }
    }

    #[test]
    fn add_exact_ties_and_sticky_far_below() {
        // 1 + 2^-24 is a tie: to even (1). A sticky bit 76 places further down breaks it.
        assert_eq!(add_exact(1.0, 1, -24), 1.0);
        assert_eq!(add_exact(1.0, (1i128 << 63) + 1, -87), 1.0 + f32::EPSILON);
        assert_eq!(add_exact(1.0, -((1i128 << 63) + 1), -87), 1.0 - f32::EPSILON / 2.0);
        // Far below: no effect (and no tie); far above: the accumulator is the sticky.
        assert_eq!(add_exact(1.0, 1, -200), 1.0);
        assert_eq!(add_exact(1.0, -1, -200), 1.0);
        assert_eq!(add_exact(f32::MIN_POSITIVE, 1, 100), 2f32.powi(100));
        // Overflow to Inf; cancellation to +0; underflow keeps the sign.
        assert_eq!(add_exact(f32::MAX, 1, 104), f32::INFINITY);
        assert_eq!(add_exact(-1.5, 3, -1).to_bits(), 0);
        assert_eq!(add_exact(0.0, -1, -151).to_bits(), 0x8000_0000);
        assert_eq!(add_exact(0.0, 3, -150).to_bits(), 2);
    }

    #[test]
    fn alignment_truncates_toward_zero() {
        // BF16 1.0 (sig 128, exp -7) and -2^-10 * 1.5 (sig 192, exp -17) and 2^-30.
        let words = [0x3f80, 0xbac0, 0x3080];
        let al = align_block(ActFormat::Bf16, &words).unwrap();
        assert_eq!(al.exp, -7 - ALIGN_BITS as i32);
        assert_eq!(al.a[0], 128 << ALIGN_BITS);
        assert_eq!(al.a[1], -((192 << ALIGN_BITS) >> 10));
        assert_eq!(al.a[2], 0);
        assert!(align_block(ActFormat::Bf16, &[0x3f80, 0x7fc0]).is_none());
        assert!(align_block(ActFormat::E4M3, &[0x7f]).is_none());
        assert_eq!(align_block(ActFormat::Fp16, &[0, 0x8000]).unwrap().a, vec![0, 0]);
    }
}
