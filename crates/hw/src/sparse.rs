//! Golden model of the sparse correction unit (`docs/hardware.md`, "Sparse correction
//! unit"; normative rule in `docs/spec.md`): what one lane output word becomes when a
//! sparse entry (outlier or residual, a BF16 value) applies to it.
//!
//! The rule, for an output format `OUT` (FP16 or BF16), lane word `o` and entry value `v`
//! (BF16 bit pattern):
//!
//! - no entry: `o` unchanged;
//! - outlier: `v` converted to `OUT` (round to nearest even, subnormals included,
//!   saturating to +-max finite, never Inf; -0 stays -0; BF16 `OUT` keeps `v` itself);
//! - residual: `o + v` exact, rounded once to nearest even into `OUT` (subnormals
//!   included), saturating to +-max finite; an exact zero sum is +0 except
//!   `(-0) + (-0) = -0`;
//! - an operand with an all-ones exponent field (Inf/NaN; never produced by the lanes or
//!   the quantizer) counts as an overflow: +-max finite with that operand's sign (`o`'s
//!   when both are).
//!
//! This model is written independently of the RTL's structure (which aligns significands
//! with guard and sticky bits and counts leading zeros): it adds exact values in `f64` and
//! rounds once with the `half` crate.

use half::{bf16, f16};
use sop_formats::Ieee16;

/// One sparse entry as it applies to a single weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Correction {
    /// `true`: outlier (the word is replaced by `value`); `false`: residual (`value` is
    /// added to the word).
    pub outlier: bool,
    /// The entry's value, a BF16 bit pattern.
    pub value: u16,
}

/// The driver side of one lane's sparse stream: the corrections of the weights given to the
/// lane, in issue order, become the correction unit's entries, each at its weight's position
/// (the lane's weights since reset) and presented until the unit takes it. One definition
/// for every driver (rust-hdl's simulator, the Verilator harness).
#[derive(Clone, Debug, Default)]
pub struct StreamDriver {
    /// Weights issued since the last reset: the next weight's position.
    issued: u32,
    /// Entries not yet taken by the unit, in position order.
    pending: std::collections::VecDeque<(u32, Correction)>,
}

impl StreamDriver {
    /// A weight is issued to the lane, with its correction if it has one.
    pub fn weight(&mut self, corr: Option<Correction>) {
        if let Some(c) = corr {
            self.pending.push_back((self.issued, c));
        }
        self.issued = self.issued.wrapping_add(1);
    }

    /// The entry to present this cycle (position and correction), if any.
    pub fn presented(&self) -> Option<(u32, Correction)> {
        self.pending.front().copied()
    }

    /// The unit took the presented entry at this cycle's edge (`sp_ready` with an entry).
    pub fn taken(&mut self) {
        self.pending.pop_front();
    }

    /// A reset: positions restart at 0, and the entries of the weights in flight are lost
    /// with them (a stream re-sends those weights, corrections included).
    pub fn reset(&mut self) {
        self.issued = 0;
        self.pending.clear();
    }
}

/// The output word for lane word `word` (format `out`) and the entry for this weight, if
/// any.
pub fn correct(out: Ieee16, word: u16, entry: Option<Correction>) -> u16 {
    match entry {
        None => word,
        Some(Correction { outlier: true, value }) => outlier_word(out, value),
        Some(Correction { outlier: false, value }) => add_residual(out, word, value),
    }
}

/// An outlier: the BF16 value `v` converted to `out` (see the module documentation).
pub fn outlier_word(out: Ieee16, v: u16) -> u16 {
    if is_inf_nan(Ieee16::Bf16, v) {
        return max_finite(out, v & 0x8000 != 0);
    }
    match out {
        Ieee16::Bf16 => v,
        // A BF16 value is exact in f64; one rounding (zero keeps its sign).
        Ieee16::Fp16 => round_into(out, value_of(Ieee16::Bf16, v)),
    }
}

/// A residual: `o` (format `out`) plus the BF16 value `v`, rounded once into `out` (see the
/// module documentation).
pub fn add_residual(out: Ieee16, o: u16, v: u16) -> u16 {
    if is_inf_nan(out, o) {
        return max_finite(out, o & 0x8000 != 0);
    }
    if is_inf_nan(Ieee16::Bf16, v) {
        return max_finite(out, v & 0x8000 != 0);
    }
    let (a, b) = shrink_far(value_of(out, o), value_of(Ieee16::Bf16, v));
    // Exact: see `shrink_far`. IEEE addition in f64 also gives the zero signs of the rule:
    // x + (-x) = +0, (-0) + (-0) = -0, (+0) + (-0) = +0.
    round_into(out, a + b)
}

/// Whether `w` has an all-ones exponent field in format `f` (Inf or NaN).
fn is_inf_nan(f: Ieee16, w: u16) -> bool {
    let e_mask = ((1u16 << f.exp_bits()) - 1) << f.man_bits();
    w & e_mask == e_mask
}

/// +-max finite of `f`.
fn max_finite(f: Ieee16, neg: bool) -> u16 {
    f.max_code() as u16 | if neg { 0x8000 } else { 0 }
}

/// The exact value of a finite word.
fn value_of(f: Ieee16, w: u16) -> f64 {
    match f {
        Ieee16::Fp16 => f16::from_bits(w).to_f64(),
        Ieee16::Bf16 => bf16::from_bits(w).to_f64(),
    }
}

/// Unbiased exponent of the leading one of a non-zero normal f64.
fn exponent(x: f64) -> i32 {
    ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// Makes `a + b` exact in f64 without changing its rounding into FP16 or BF16.
///
/// Each operand has at most 11 significant bits (FP16; BF16 has 8). If the exponents of
/// the leading ones differ by at most `GAP = 40`, the exact sum spans at most
/// `40 + 11 = 51 < 53` bits: f64 holds it exactly. Otherwise the smaller operand `s` is
/// below `2^(eB - 40)` (`eB`: leading-one exponent of the larger `B`) and is replaced by
/// `s' = +-2^(eB - 40)` with the sign of `s`; `B + s'` spans 41 bits, exact. The rounding
/// is unchanged: every decision point of RNE into FP16 or BF16 near `B` (representable
/// values, midpoints, the overflow threshold `max + ulp/2`, in `B`'s binade and the one
/// below it, or the fixed subnormal grid) is a multiple of `2^(eB - 12)`, and so is `B`
/// (its lowest set bit is at `eB - 10` or above). The open intervals
/// `(B - 2^(eB-12), B)` and `(B, B + 2^(eB-12))` thus hold no decision point, and `B + s`,
/// `B + s'` (same sign, both non-zero and of magnitude below `2^(eB - 12)`) lie in the same
/// one: they round to the same word.
fn shrink_far(a: f64, b: f64) -> (f64, f64) {
    const GAP: i32 = 40;
    if a == 0.0 || b == 0.0 {
        return (a, b);
    }
    let (ea, eb) = (exponent(a), exponent(b));
    if ea - eb > GAP {
        (a, 2f64.powi(ea - GAP).copysign(b))
    } else if eb - ea > GAP {
        (2f64.powi(eb - GAP).copysign(a), b)
    } else {
        (a, b)
    }
}

/// Round-to-odd of a finite f64 to 21 significant bits (the top 32 bits of its encoding):
/// truncate toward zero and set the last kept bit when anything non-zero was dropped.
///
/// Why: `half`'s `from_f64` is a single correct RNE only for values whose significand fits
/// those 21 bits. Its software path drops the low 32 bits of the encoding before rounding
/// (a sticky bit there is lost, so an above-midpoint value can tie to even), and its x86
/// F16C path converts through f32 (double rounding). Round-to-odd at `q` bits followed by
/// RNE at `p <= q - 2` bits equals one RNE at `p` bits (FP16: 11, BF16: 8, so `q = 21`
/// suffices, also for subnormal targets, whose grid is coarser still); a 21-bit value
/// passes both of `half`'s paths unchanged (the tests check `half` on 21-bit values
/// against a brute-force nearest-even search and show the failure on longer ones).
fn round_to_odd_21(x: f64) -> f64 {
    let bits = x.to_bits();
    let low = bits & 0xffff_ffff;
    if low == 0 {
        return x;
    }
    f64::from_bits((bits & !0xffff_ffff) | (1 << 32))
}

/// One RNE rounding of an exact value into `out`, saturating an overflow (Inf) to +-max
/// finite. Values are non-zero normal f64s well inside f64's range, or +-0.
fn round_into(out: Ieee16, x: f64) -> u16 {
    let y = round_to_odd_21(x);
    let w = match out {
        Ieee16::Fp16 => f16::from_f64(y).to_bits(),
        Ieee16::Bf16 => bf16::from_f64(y).to_bits(),
    };
    if is_inf_nan(out, w) {
        max_finite(out, w & 0x8000 != 0)
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    // ---- Independent exact reference: 320-bit integers, brute-force nearest even. ----

    /// Units of the reference: every value is an integer multiple of `2^-UNIT` (BF16's
    /// smallest subnormal is `2^-133`, its midpoints `2^-134`; the `half` check below goes
    /// down to `2^-156`).
    const UNIT: i32 = 160;

    /// Unsigned 320-bit integer, little-endian limbs (values stay below `2^291`).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct U([u64; 5]);

    impl U {
        fn shl(m: u64, sh: u32) -> U {
            let mut r = [0u64; 5];
            let (limb, bit) = ((sh / 64) as usize, sh % 64);
            r[limb] = m << bit;
            if bit != 0 && limb + 1 < 5 {
                r[limb + 1] = m >> (64 - bit);
            }
            U(r)
        }
        fn add(self, o: U) -> U {
            let mut r = [0u64; 5];
            let mut c = false;
            for (i, x) in r.iter_mut().enumerate() {
                let (s1, c1) = self.0[i].overflowing_add(o.0[i]);
                let (s2, c2) = s1.overflowing_add(c as u64);
                *x = s2;
                c = c1 || c2;
            }
            assert!(!c);
            U(r)
        }
        /// `self - o`, requires `self >= o`.
        fn sub(self, o: U) -> U {
            let mut r = [0u64; 5];
            let mut b = false;
            for (i, x) in r.iter_mut().enumerate() {
                let (s1, b1) = self.0[i].overflowing_sub(o.0[i]);
                let (s2, b2) = s1.overflowing_sub(b as u64);
                *x = s2;
                b = b1 || b2;
            }
            assert!(!b);
            U(r)
        }
        fn cmp(&self, o: &U) -> Ordering {
            self.0.iter().rev().cmp(o.0.iter().rev())
        }
        fn is_zero(&self) -> bool {
            self.0 == [0; 5]
        }
    }

    /// Magnitude of a finite (or Inf-pattern: `2^(emax+1)`) word's bits in `2^-UNIT`
    /// units, from the bit layout alone.
    fn mag(f: Ieee16, w: u16) -> U {
        let mb = f.man_bits();
        let e = ((w >> mb) & ((1 << f.exp_bits()) - 1)) as i32;
        let m = (w & ((1 << mb) - 1)) as u64;
        let (sig, exp) = if e == 0 {
            (m, 1 - f.bias() - mb as i32)
        } else {
            (m | 1 << mb, e - f.bias() - mb as i32)
        };
        U::shl(sig, (exp + UNIT) as u32)
    }

    /// Nearest-even magnitude code for `x` (doubled units), by binary search over the
    /// ordered codes `0 ..= inf code`, saturating.
    fn nearest_even(f: Ieee16, x2: U) -> u16 {
        let inf = f.max_code() as u16 + 1;
        let dbl = |w: u16| mag(f, w).add(mag(f, w));
        // Largest code c with value(c) <= x.
        let (mut lo, mut hi) = (0u16, inf);
        if dbl(inf).cmp(&x2) != Ordering::Greater {
            return f.max_code() as u16;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if dbl(mid).cmp(&x2) != Ordering::Greater {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let c = lo;
        let r = if dbl(c) == x2 {
            c
        } else {
            // Midpoint in doubled units: value(c) + value(c + 1).
            match mag(f, c).add(mag(f, c + 1)).cmp(&x2) {
                Ordering::Less => c + 1,
                Ordering::Greater => c,
                Ordering::Equal => {
                    if c % 2 == 0 {
                        c
                    } else {
                        c + 1
                    }
                }
            }
        };
        r.min(f.max_code() as u16)
    }

    /// The rule, computed from exact 320-bit sums and a nearest-even search.
    fn reference(out: Ieee16, o: u16, c: Correction) -> u16 {
        let v = c.value;
        let v_neg = v & 0x8000 != 0;
        let o_neg = o & 0x8000 != 0;
        let sat = |neg: bool| out.max_code() as u16 | if neg { 0x8000 } else { 0 };
        if !c.outlier && is_inf_nan(out, o) {
            return sat(o_neg);
        }
        if is_inf_nan(Ieee16::Bf16, v) {
            return sat(v_neg);
        }
        let vm = mag(Ieee16::Bf16, v & 0x7fff);
        let (neg, m, zero_neg) = if c.outlier {
            (v_neg, vm, v_neg)
        } else {
            let om = mag(out, o & 0x7fff);
            if o_neg == v_neg {
                (o_neg, om.add(vm), o_neg)
            } else if om.cmp(&vm) == Ordering::Less {
                (v_neg, vm.sub(om), false)
            } else {
                (o_neg, om.sub(vm), false)
            }
        };
        let sign = |s: bool| if s { 0x8000u16 } else { 0 };
        if m.is_zero() {
            return sign(zero_neg);
        }
        nearest_even(out, m.add(m)) | sign(neg)
    }

    /// A spread of BF16 values: every exponent field (incl. 0 and 255), several mantissas,
    /// both signs (288 values).
    fn bf16_sample() -> Vec<u16> {
        let mut v = Vec::new();
        for e in 0..=255u16 {
            let m = [0u16, 1, 0x40, 0x7f, 0x2b, 0x55][(e % 6) as usize];
            let s = if e % 2 == 0 { 0 } else { 0x8000 };
            v.push(s | e << 7 | m);
        }
        v.extend([
            0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x3f80, 0xbf80, 0x7f7f, 0xff7f, 0x7f80, 0xffc0,
        ]);
        v.extend([
            0x3380, 0x3300, 0xb380, 0x4780, 0x477f, 0x477e, 0xc77f, 0x3800, 0x3880, 0x387f,
        ]);
        v.extend([
            0x3e00, 0xb3c0, 0x33c0, 0x4000, 0x40a0, 0x3b80, 0x3a80, 0x0080, 0x8080, 0x00ff,
        ]);
        v
    }

    #[test]
    fn every_fp16_word_against_exact_reference() {
        let vs = bf16_sample();
        for o in 0..=u16::MAX {
            for &v in &vs {
                let c = Correction {
                    outlier: false,
                    value: v,
                };
                assert_eq!(
                    correct(Ieee16::Fp16, o, Some(c)),
                    reference(Ieee16::Fp16, o, c),
                    "o {o:#06x} v {v:#06x}"
                );
            }
        }
    }

    #[test]
    fn every_bf16_word_against_exact_reference() {
        // BF16 output: every o against a quarter of the sample (the sum of two BF16
        // values spans up to 261 bits, the shrink path of the model is exercised).
        let vs: Vec<u16> = bf16_sample().into_iter().step_by(4).collect();
        for o in 0..=u16::MAX {
            for &v in &vs {
                let c = Correction {
                    outlier: false,
                    value: v,
                };
                assert_eq!(
                    correct(Ieee16::Bf16, o, Some(c)),
                    reference(Ieee16::Bf16, o, c),
                    "o {o:#06x} v {v:#06x}"
                );
            }
        }
        // Outliers do not depend on o: every BF16 value, both outputs.
        for v in 0..=u16::MAX {
            let c = Correction {
                outlier: true,
                value: v,
            };
            assert_eq!(
                correct(Ieee16::Bf16, 0x1234, Some(c)),
                reference(Ieee16::Bf16, 0x1234, c)
            );
            assert_eq!(
                correct(Ieee16::Fp16, 0x1234, Some(c)),
                reference(Ieee16::Fp16, 0x1234, c)
            );
        }
    }

    /// `half`'s from_f64 against a brute-force nearest-even search, on values whose
    /// significand fits 21 bits (what `round_into` passes it): FP16 and BF16, every binade
    /// that matters (subnormals, overflow), ties included.
    #[test]
    fn half_rounds_21_bit_values_to_nearest_even() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for out in [Ieee16::Fp16, Ieee16::Bf16] {
            let (lo, hi) = match out {
                Ieee16::Fp16 => (-30, 17),
                Ieee16::Bf16 => (-136, 128),
            };
            for e in lo..=hi {
                for k in 0..300 {
                    // 21-bit significand; every 3rd one with few bits (ties, exact values).
                    let sig = if k % 3 == 0 {
                        (1u64 << 20) | ((next() & 0xf) << (next() % 17))
                    } else {
                        (1u64 << 20) | (next() & ((1 << 20) - 1))
                    };
                    let neg = k % 2 == 1;
                    let x = (sig as f64) * 2f64.powi(e - 20);
                    let x = if neg { -x } else { x };
                    let got = match out {
                        Ieee16::Fp16 => f16::from_f64(x).to_bits(),
                        Ieee16::Bf16 => bf16::from_f64(x).to_bits(),
                    };
                    // Reference: 2|x| in 2^-UNIT units (exact: the lowest bit of x is at
                    // 2^-156 or above).
                    let sh = e - 20 + UNIT + 1;
                    assert!(sh >= 0);
                    let r = nearest_even(out, U::shl(sig, sh as u32));
                    // half gives Inf on overflow where the reference saturates.
                    let want = if got & 0x7fff == out.max_code() as u16 + 1 {
                        assert_eq!(r, out.max_code() as u16, "{out:?} {x:e}");
                        got & 0x7fff
                    } else {
                        r
                    };
                    assert_eq!(got & 0x7fff, want, "{out:?} {x:e} ({sig:#x} * 2^{})", e - 20);
                    assert_eq!(got & 0x8000 != 0, neg, "{out:?} {x:e}: sign");
                }
            }
        }
    }

    /// Why `round_to_odd_21` exists: on a value with more than 21 significant bits,
    /// `half` can tie to even although the value is above the midpoint.
    #[test]
    fn half_alone_misrounds_long_values() {
        let x = 1.0 + 2f64.powi(-11) + 2f64.powi(-40); // just above the FP16 midpoint
        assert_eq!(
            f16::from_bits(round_into(Ieee16::Fp16, x)).to_f64(),
            1.0 + 2f64.powi(-10)
        );
        let y = 1.0 + 2f64.powi(-8) + 2f64.powi(-40); // just above the BF16 midpoint
        assert_eq!(
            bf16::from_bits(round_into(Ieee16::Bf16, y)).to_f64(),
            1.0 + 2f64.powi(-7)
        );
        assert_eq!(
            bf16::from_f64(y).to_f64(),
            1.0,
            "half now rounds long values correctly: simplify round_into"
        );
    }

    fn res(out: Ieee16, o: u16, v: u16) -> u16 {
        correct(
            out,
            o,
            Some(Correction {
                outlier: false,
                value: v,
            }),
        )
    }

    fn outl(out: Ieee16, o: u16, v: u16) -> u16 {
        correct(
            out,
            o,
            Some(Correction {
                outlier: true,
                value: v,
            }),
        )
    }

    #[test]
    fn directed() {
        use Ieee16::{Bf16, Fp16};
        // No entry: unchanged, even Inf/NaN patterns.
        for w in [0u16, 0x8000, 0x3c00, 0x7c00, 0xfe00] {
            assert_eq!(correct(Fp16, w, None), w);
        }
        // Ties to even: FP16 1.0 + 2^-11 (BF16 0x3a00) is a tie -> 1.0; 1+2^-10 + 2^-11 -> up.
        assert_eq!(res(Fp16, 0x3c00, 0x3a00), 0x3c00);
        assert_eq!(res(Fp16, 0x3c01, 0x3a00), 0x3c02);
        // BF16 out: 1.0 + 2^-8 (0x3b80) tie -> 1.0; 1.0078125 + 2^-8 -> 1.015625.
        assert_eq!(res(Bf16, 0x3f80, 0x3b80), 0x3f80);
        assert_eq!(res(Bf16, 0x3f81, 0x3b80), 0x3f82);
        // Carry into the next binade: max mantissa + half ulp rounds up to 2.0.
        assert_eq!(res(Fp16, 0x3fff, 0x3a00), 0x4000);
        assert_eq!(res(Bf16, 0x3fff, 0x3b80), 0x4000);
        // Subnormal results: 2^-24 (FP16 min subnormal) + 2^-25 (tie) -> 2^-23 (even).
        assert_eq!(res(Fp16, 0x0001, 0x3300), 0x0002);
        assert_eq!(res(Fp16, 0x0002, 0x3300), 0x0002);
        // Min normal minus min subnormal -> largest subnormal.
        assert_eq!(res(Fp16, 0x0400, 0xb380), 0x03ff);
        // BF16 subnormal v is a value: BF16 min subnormal + itself.
        assert_eq!(res(Bf16, 0x0001, 0x0001), 0x0002);
        // Cancellation to +0, for either sign order; (-0) + (-0) = -0, (+0) + (-0) = +0.
        assert_eq!(res(Fp16, 0x3c00, 0xbf80), 0x0000);
        assert_eq!(res(Fp16, 0xbc00, 0x3f80), 0x0000);
        assert_eq!(res(Bf16, 0xbf80, 0x3f80), 0x0000);
        assert_eq!(res(Fp16, 0x8000, 0x8000), 0x8000);
        assert_eq!(res(Fp16, 0x0000, 0x8000), 0x0000);
        assert_eq!(res(Fp16, 0x8000, 0x0000), 0x0000);
        assert_eq!(res(Bf16, 0x8000, 0x8000), 0x8000);
        // -0 + x = x; a tiny negative that rounds to zero keeps its sign.
        assert_eq!(res(Fp16, 0x8000, 0x3f80), 0x3c00);
        assert_eq!(res(Fp16, 0x8000, 0xb000), 0x8000);
        assert_eq!(res(Fp16, 0x0000, 0xb000), 0x8000);
        // Overflow saturation: 65504 + 16 (tie at the threshold) and beyond; BF16 max + max.
        assert_eq!(res(Fp16, 0x7bff, 0x4180), 0x7bff); // 65504 + 16 = 65520: tie, rounds up, saturates
        assert_eq!(res(Fp16, 0x7bff, 0x4170), 0x7bff); // 65504 + 15: rounds down to max
        assert_eq!(res(Fp16, 0x7bff, 0x4780), 0x7bff);
        assert_eq!(res(Fp16, 0xfbff, 0xc780), 0xfbff);
        assert_eq!(res(Bf16, 0x7f7f, 0x7f7f), 0x7f7f);
        assert_eq!(res(Bf16, 0xff7f, 0xff7f), 0xff7f);
        // Huge gaps both ways: the small operand only decides ties and the direction.
        assert_eq!(res(Fp16, 0x3c00, 0x0001), 0x3c00);
        assert_eq!(res(Fp16, 0x3c00, 0x8001), 0x3c00); // 1 - tiny rounds back to 1.0
        assert_eq!(res(Fp16, 0x0001, 0x7f00), 0x7bff); // tiny o + huge v -> sat
        assert_eq!(res(Bf16, 0x7f00, 0x0001), 0x7f00);
        assert_eq!(res(Bf16, 0x0001, 0xff00), 0xff00);
        // BF16 out: o = 2^-8 (0x3b80) + v = 1.0 is a tie -> 1.0; with 2^-8 + 2^-15 above it.
        assert_eq!(res(Bf16, 0x3b80, 0x3f80), 0x3f80);
        assert_eq!(res(Bf16, 0x3b81, 0x3f80), 0x3f81);
        // An FP16 midpoint as BF16 value: 3 * 2^-25 ties to 2^-23 (even); 2^-24 + it = 5 * 2^-25
        // ties to 2^-23 as well.
        assert_eq!(outl(Fp16, 0x1234, 0x33c0), 0x0002);
        assert_eq!(res(Fp16, 0x0001, 0x33c0), 0x0002);
        // Inf/NaN inputs: saturate with that operand's sign (o's when both).
        assert_eq!(res(Fp16, 0x7c00, 0x3f80), 0x7bff);
        assert_eq!(res(Fp16, 0xfe00, 0x3f80), 0xfbff);
        assert_eq!(res(Fp16, 0x3c00, 0xff80), 0xfbff);
        assert_eq!(res(Fp16, 0x3c00, 0x7fc1), 0x7bff);
        assert_eq!(res(Bf16, 0xff80, 0x7f80), 0xff7f);
        assert_eq!(res(Bf16, 0x7f80, 0xff80), 0x7f7f);
        // Outliers: BF16 out keeps v; FP16 rounds, saturates, keeps -0.
        assert_eq!(outl(Bf16, 0x1234, 0xc0a0), 0xc0a0);
        assert_eq!(outl(Bf16, 0x1234, 0x8000), 0x8000);
        assert_eq!(outl(Fp16, 0x1234, 0x8000), 0x8000);
        assert_eq!(outl(Fp16, 0x1234, 0x3f80), 0x3c00);
        assert_eq!(outl(Fp16, 0x1234, 0x4780), 0x7bff);
        assert_eq!(outl(Fp16, 0x1234, 0xc780), 0xfbff);
        assert_eq!(outl(Fp16, 0x1234, 0x3380), 0x0001); // 2^-24
        assert_eq!(outl(Fp16, 0x1234, 0x3300), 0x0000); // 2^-25: tie -> +0
        assert_eq!(outl(Fp16, 0x1234, 0xb300), 0x8000); // -2^-25 -> -0
        assert_eq!(outl(Fp16, 0x1234, 0x0001), 0x0000);
        assert_eq!(outl(Fp16, 0x1234, 0x7f80), 0x7bff);
        assert_eq!(outl(Bf16, 0x1234, 0xff80), 0xff7f);
        assert_eq!(outl(Bf16, 0x1234, 0x7fc0), 0x7f7f);
    }

    proptest! {
        #[test]
        fn random_pairs(o: u16, v: u16, outlier: bool, bf: bool) {
            let out = if bf { Ieee16::Bf16 } else { Ieee16::Fp16 };
            let c = Correction { outlier, value: v };
            prop_assert_eq!(correct(out, o, Some(c)), reference(out, o, c));
        }
    }
}
