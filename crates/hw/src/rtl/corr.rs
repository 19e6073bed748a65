//! The sparse correction unit: sits after a decode lane and applies the layer's sparse
//! entries (outliers replace the word, residuals are added to it) to the lane's output
//! words, bit-exactly as [`crate::sparse::correct`] (`docs/hardware.md`, "Sparse
//! correction unit").
//!
//! Sparse stream: a valid/ready port presents one entry at a time (position, kind, BF16
//! value); the unit holds one in a head register and applies it to the word whose
//! position (count of `in_valid` words since reset) matches. The stream must be sorted by
//! position and free of duplicates: an entry whose position has already passed never
//! matches and blocks the stream (the driver's job, as the quantized-model file
//! guarantees).
//!
//! Datapath (latency [`crate::params::CORR_LATENCY`] = 3): both operands are unpacked
//! into a common form `S * 2^(X - 137)` (`S`: 11-bit significand, hidden bit at bit 10 for a normal number;
//! `X`: exponent on BF16's scale, an FP16 word's exponent offset by 112 and a BF16
//! significand shifted up by 3). An outlier is `v + (zero with v's sign)`, so it takes the
//! same path (BF16 into BF16 is then exact: the word is `v`).
//!
//! - Stage A: match, unpack, swap so that the operand with the larger `X` is "big", align
//!   the other one right by the exponent difference `d` with `G = 12` guard bits and a
//!   sticky bit jammed into bit 0 (round to odd).
//! - Stage B1: add or subtract (the difference can be negative only when no bit was lost:
//!   a "small" operand that is actually larger has `d <= 10 < G`; sum and both
//!   differences side by side, the comparison only selects), leading-one index by
//!   successive halving (five steps, each a zero test of the upper half of the remaining
//!   window and a multiplexer: logarithmic depth, not a 24-deep priority chain), sign.
//!   Registers: the sum, the index, zero flag, sign, `X`, saturate flag, pass word.
//! - Stage B2: one left shift that both normalizes a normal result and places a subnormal
//!   one (whose shift `X - (127 - bias)` does not depend on the leading one), RNE at fixed
//!   bit positions, exponent assembly by addition (a rounding carry moves into the
//!   exponent), saturation, sign applied.
//!
//! Why the jammed sticky bit is exact: bits are lost only when `d > G`, and then the
//! result's rounding position is at least two bits above bit 0 of the work word (the
//! big operand's significand sits at bits 12..22; the result keeps its leading one at
//! bit 21 or above, or is rounded at the output's subnormal grid, bit 12 or above). The
//! computed value is the exact one rounded to odd at bit 0, which RNE at a position two or
//! more bits higher cannot tell apart from the exact value.

use rust_hdl::prelude::*;
use sop_formats::Ieee16;

use super::cb;
use super::prims::{Reg, RegR};

/// Guard bits below an aligned significand.
const G: u64 = 12;
/// Width of an aligned significand: 11 bits shifted up by `G`.
const WA: usize = 23;
/// Width of the sum: one carry bit above `WA`.
const W: usize = 24;
/// Width of the common exponent `X` (1..=254) and of `X + leading-one index` (<= 277).
const XW: usize = 9;
/// Width of shift amounts (0..=24) and of the leading-one index (0..=23).
const SW: usize = 5;
/// Width of the assembled word before saturation: an exponent field up to 254 shifted
/// by up to 10 mantissa bits, plus the significand.
const WW: usize = 20;

/// Format constants of one side (the lane word in the output format, or the BF16 entry).
struct Side {
    man_bits: u64,
    exp_mask: u64,
    /// Offset of `X` against the format's `max(e, 1)`: 112 for FP16, 0 for BF16.
    xoff: u64,
    /// Left shift of the significand to bit 10: 0 for FP16, 3 for BF16.
    align: u64,
}

fn side(f: Ieee16) -> Side {
    let man_bits = f.man_bits() as u64;
    Side {
        man_bits,
        exp_mask: (1u64 << f.exp_bits()) - 1,
        xoff: (127 - f.bias()) as u64,
        align: 10 - man_bits,
    }
}

/// The sparse correction unit for one lane whose words are in the output format given to
/// [`CorrUnit::new`]. Invariants: `out_word` is meaningful only while `out_valid`; the
/// sparse stream is sorted by position and unique; no sparse handshake in a reset cycle.
#[derive(LogicBlock)]
pub struct CorrUnit {
    /// Clock, rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: clears the position counter, the head register's
    /// valid bit and the valid pipeline.
    pub reset: Signal<In, bool>,
    /// Lane side: a word is presented (the lane's registered `valid_out`).
    pub in_valid: Signal<In, bool>,
    /// Lane side: the word (output format).
    pub in_word: Signal<In, Bits<16>>,
    /// Sparse stream: an entry is presented.
    pub sp_valid: Signal<In, bool>,
    /// Sparse stream: the entry's position (index of the word among the `in_valid` words
    /// since reset).
    pub sp_pos: Signal<In, Bits<32>>,
    /// Sparse stream: `true` for an outlier (replace), `false` for a residual (add).
    pub sp_outlier: Signal<In, bool>,
    /// Sparse stream: the entry's value, a BF16 bit pattern.
    pub sp_value: Signal<In, Bits<16>>,
    /// Sparse stream: the unit takes the presented entry at this clock edge (when
    /// `sp_valid`). Depends only on registers and `in_valid`.
    pub sp_ready: Signal<Out, bool>,
    /// A corrected word is presented.
    pub out_valid: Signal<Out, bool>,
    /// The corrected word (output format).
    pub out_word: Signal<Out, Bits<16>>,
    // Position counter and head register.
    count: RegR<Bits<32>>,
    h_valid: RegR<bool>,
    h_pos: Reg<Bits<32>>,
    h_outlier: Reg<bool>,
    h_value: Reg<Bits<16>>,
    // Stage A registers.
    a_valid: RegR<bool>,
    a_pass: Reg<bool>,
    a_word: Reg<Bits<16>>,
    a_sat: Reg<bool>,
    a_sat_neg: Reg<bool>,
    a_big_neg: Reg<bool>,
    a_small_neg: Reg<bool>,
    a_xbig: Reg<Bits<XW>>,
    a_sbig: Reg<Bits<16>>,
    a_small: Reg<Bits<WA>>,
    // Stage B1 registers.
    b1_valid: RegR<bool>,
    b1_pass: Reg<bool>,
    b1_word: Reg<Bits<16>>,
    b1_sat: Reg<bool>,
    b1_neg: Reg<bool>,
    b1_zero: Reg<bool>,
    b1_xbig: Reg<Bits<XW>>,
    b1_mag: Reg<Bits<W>>,
    b1_lz: Reg<Bits<SW>>,
    // Stage B2 (output) registers.
    b_valid: RegR<bool>,
    b_word: Reg<Bits<16>>,
    // Stage A locals.
    consume: Signal<Local, bool>,
    take: Signal<Local, bool>,
    o_e: Signal<Local, Bits<16>>,
    o_s: Signal<Local, Bits<16>>,
    v_e: Signal<Local, Bits<16>>,
    v_s: Signal<Local, Bits<16>>,
    xa: Signal<Local, Bits<XW>>,
    xb: Signal<Local, Bits<XW>>,
    sa: Signal<Local, Bits<16>>,
    sb: Signal<Local, Bits<16>>,
    na: Signal<Local, bool>,
    nb: Signal<Local, bool>,
    a_spec: Signal<Local, bool>,
    b_spec: Signal<Local, bool>,
    xbig: Signal<Local, Bits<XW>>,
    xsmall: Signal<Local, Bits<XW>>,
    sbig: Signal<Local, Bits<16>>,
    ssmall: Signal<Local, Bits<16>>,
    d: Signal<Local, Bits<XW>>,
    dsh: Signal<Local, Bits<SW>>,
    sm_w: Signal<Local, Bits<WA>>,
    sm_sh: Signal<Local, Bits<WA>>,
    sticky: Signal<Local, bool>,
    // Stage B1 locals.
    big_w: Signal<Local, Bits<W>>,
    small_w: Signal<Local, Bits<W>>,
    sum_w: Signal<Local, Bits<W>>,
    d_bs: Signal<Local, Bits<W>>,
    d_sb: Signal<Local, Bits<W>>,
    eff_sub: Signal<Local, bool>,
    dneg: Signal<Local, bool>,
    mag: Signal<Local, Bits<W>>,
    zero: Signal<Local, bool>,
    neg: Signal<Local, bool>,
    lz_x: Signal<Local, Bits<32>>,
    lz_16: Signal<Local, Bits<16>>,
    lz_8: Signal<Local, Bits<8>>,
    lz_4: Signal<Local, Bits<4>>,
    lz_2: Signal<Local, Bits<2>>,
    lz: Signal<Local, Bits<SW>>,
    // Stage B2 locals.
    t: Signal<Local, Bits<XW>>,
    normal: Signal<Local, bool>,
    ls: Signal<Local, Bits<SW>>,
    m: Signal<Local, Bits<W>>,
    sig: Signal<Local, Bits<W>>,
    ru: Signal<Local, bool>,
    n: Signal<Local, Bits<WW>>,
    fe1: Signal<Local, Bits<XW>>,
    w: Signal<Local, Bits<WW>>,
    res: Signal<Local, Bits<16>>,
    // Constants: counter.
    one32: Constant<Bits<32>>,
    // Constants: lane word (output format) and entry (BF16) unpacking.
    o_mb: Constant<Bits<16>>,
    o_emask: Constant<Bits<16>>,
    o_mmask: Constant<Bits<16>>,
    o_hidden: Constant<Bits<16>>,
    o_align: Constant<Bits<16>>,
    o_xoff: Constant<Bits<XW>>,
    o_xmin: Constant<Bits<XW>>,
    v_mb: Constant<Bits<16>>,
    v_emask: Constant<Bits<16>>,
    v_mmask: Constant<Bits<16>>,
    v_hidden: Constant<Bits<16>>,
    v_align: Constant<Bits<16>>,
    v_xoff: Constant<Bits<XW>>,
    v_xmin: Constant<Bits<XW>>,
    zero16: Constant<Bits<16>>,
    // Constants: alignment.
    dmax: Constant<Bits<XW>>,
    dmax_s: Constant<Bits<SW>>,
    g_s: Constant<Bits<SW>>,
    ones_wa: Constant<Bits<WA>>,
    zero_wa: Constant<Bits<WA>>,
    one_wa: Constant<Bits<WA>>,
    // Constants: normalization and rounding.
    zero_w: Constant<Bits<W>>,
    one_w: Constant<Bits<W>>,
    zero8: Constant<Bits<8>>,
    zero4: Constant<Bits<4>>,
    zero2: Constant<Bits<2>>,
    k16_s: Constant<Bits<SW>>,
    k8_s: Constant<Bits<SW>>,
    k4_s: Constant<Bits<SW>>,
    k2_s: Constant<Bits<SW>>,
    k1_s: Constant<Bits<SW>>,
    zero_s: Constant<Bits<SW>>,
    top_s: Constant<Bits<SW>>,
    /// `150 - bias`: `X + leading one` at or above it gives a normal result.
    c_norm: Constant<Bits<XW>>,
    /// `(127 - bias) mod 32`: subnormal left shift is `X - (127 - bias)`.
    c_sub_s: Constant<Bits<SW>>,
    zero_x: Constant<Bits<XW>>,
    sig_sh: Constant<Bits<SW>>,
    gmask: Constant<Bits<W>>,
    smask: Constant<Bits<W>>,
    one_ww: Constant<Bits<WW>>,
    mb_ww: Constant<Bits<SW>>,
    inf_ww: Constant<Bits<WW>>,
    max16: Constant<Bits<16>>,
    sign16: Constant<Bits<16>>,
}

impl CorrUnit {
    /// A correction unit for lane words in format `out` (entries are always BF16).
    pub fn new(out: Ieee16) -> Self {
        let o = side(out);
        let v = side(Ieee16::Bf16);
        let mb = o.man_bits;
        let bias = out.bias() as u64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_valid: Default::default(),
            in_word: Default::default(),
            sp_valid: Default::default(),
            sp_pos: Default::default(),
            sp_outlier: Default::default(),
            sp_value: Default::default(),
            sp_ready: Default::default(),
            out_valid: Default::default(),
            out_word: Default::default(),
            count: Default::default(),
            h_valid: Default::default(),
            h_pos: Default::default(),
            h_outlier: Default::default(),
            h_value: Default::default(),
            a_valid: Default::default(),
            a_pass: Default::default(),
            a_word: Default::default(),
            a_sat: Default::default(),
            a_sat_neg: Default::default(),
            a_big_neg: Default::default(),
            a_small_neg: Default::default(),
            a_xbig: Default::default(),
            a_sbig: Default::default(),
            a_small: Default::default(),
            b1_valid: Default::default(),
            b1_pass: Default::default(),
            b1_word: Default::default(),
            b1_sat: Default::default(),
            b1_neg: Default::default(),
            b1_zero: Default::default(),
            b1_xbig: Default::default(),
            b1_mag: Default::default(),
            b1_lz: Default::default(),
            b_valid: Default::default(),
            b_word: Default::default(),
            consume: Default::default(),
            take: Default::default(),
            o_e: Default::default(),
            o_s: Default::default(),
            v_e: Default::default(),
            v_s: Default::default(),
            xa: Default::default(),
            xb: Default::default(),
            sa: Default::default(),
            sb: Default::default(),
            na: Default::default(),
            nb: Default::default(),
            a_spec: Default::default(),
            b_spec: Default::default(),
            xbig: Default::default(),
            xsmall: Default::default(),
            sbig: Default::default(),
            ssmall: Default::default(),
            d: Default::default(),
            dsh: Default::default(),
            sm_w: Default::default(),
            sm_sh: Default::default(),
            sticky: Default::default(),
            big_w: Default::default(),
            small_w: Default::default(),
            sum_w: Default::default(),
            d_bs: Default::default(),
            d_sb: Default::default(),
            eff_sub: Default::default(),
            dneg: Default::default(),
            mag: Default::default(),
            zero: Default::default(),
            neg: Default::default(),
            lz_x: Default::default(),
            lz_16: Default::default(),
            lz_8: Default::default(),
            lz_4: Default::default(),
            lz_2: Default::default(),
            lz: Default::default(),
            t: Default::default(),
            normal: Default::default(),
            ls: Default::default(),
            m: Default::default(),
            sig: Default::default(),
            ru: Default::default(),
            n: Default::default(),
            fe1: Default::default(),
            w: Default::default(),
            res: Default::default(),
            one32: cb(1),
            o_mb: cb(mb),
            o_emask: cb(o.exp_mask),
            o_mmask: cb((1 << mb) - 1),
            o_hidden: cb(1 << mb),
            o_align: cb(o.align),
            o_xoff: cb(o.xoff),
            o_xmin: cb(o.xoff + 1),
            v_mb: cb(v.man_bits),
            v_emask: cb(v.exp_mask),
            v_mmask: cb((1 << v.man_bits) - 1),
            v_hidden: cb(1 << v.man_bits),
            v_align: cb(v.align),
            v_xoff: cb(v.xoff),
            v_xmin: cb(v.xoff + 1),
            zero16: cb(0),
            // Shifting by W or more leaves only the sticky bit: clamp there.
            dmax: cb(W as u64),
            dmax_s: cb(W as u64),
            g_s: cb(G),
            ones_wa: cb((1 << WA) - 1),
            zero_wa: cb(0),
            one_wa: cb(1),
            zero_w: cb(0),
            one_w: cb(1),
            zero8: cb(0),
            zero4: cb(0),
            zero2: cb(0),
            k16_s: cb(16),
            k8_s: cb(8),
            k4_s: cb(4),
            k2_s: cb(2),
            k1_s: cb(1),
            zero_s: cb(0),
            top_s: cb(W as u64 - 1),
            c_norm: cb(150 - bias),
            c_sub_s: cb((127 - bias) % 32),
            zero_x: cb(0),
            // After the left shift the leading one (hidden bit) is at bit W - 1; the
            // significand is the top mb + 1 bits, the guard bit the next, the rest sticky.
            sig_sh: cb(W as u64 - 1 - mb),
            gmask: cb(1 << (W as u64 - 2 - mb)),
            smask: cb((1 << (W as u64 - 2 - mb)) - 1),
            one_ww: cb(1),
            mb_ww: cb(mb),
            inf_ww: cb(o.exp_mask << mb),
            max16: cb(out.max_code() as u64),
            sign16: cb(0x8000),
        }
    }
}

impl Logic for CorrUnit {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.count.clock.next = self.clock.val();
        self.h_valid.clock.next = self.clock.val();
        self.h_pos.clock.next = self.clock.val();
        self.h_outlier.clock.next = self.clock.val();
        self.h_value.clock.next = self.clock.val();
        self.a_valid.clock.next = self.clock.val();
        self.a_pass.clock.next = self.clock.val();
        self.a_word.clock.next = self.clock.val();
        self.a_sat.clock.next = self.clock.val();
        self.a_sat_neg.clock.next = self.clock.val();
        self.a_big_neg.clock.next = self.clock.val();
        self.a_small_neg.clock.next = self.clock.val();
        self.a_xbig.clock.next = self.clock.val();
        self.a_sbig.clock.next = self.clock.val();
        self.a_small.clock.next = self.clock.val();
        self.b1_valid.clock.next = self.clock.val();
        self.b1_pass.clock.next = self.clock.val();
        self.b1_word.clock.next = self.clock.val();
        self.b1_sat.clock.next = self.clock.val();
        self.b1_neg.clock.next = self.clock.val();
        self.b1_zero.clock.next = self.clock.val();
        self.b1_xbig.clock.next = self.clock.val();
        self.b1_mag.clock.next = self.clock.val();
        self.b1_lz.clock.next = self.clock.val();
        self.b_valid.clock.next = self.clock.val();
        self.b_word.clock.next = self.clock.val();
        self.count.reset.next = self.reset.val();
        self.h_valid.reset.next = self.reset.val();
        self.a_valid.reset.next = self.reset.val();
        self.b1_valid.reset.next = self.reset.val();
        self.b_valid.reset.next = self.reset.val();

        // Position counter and head register. The head is consumed by the word at its
        // position; it reloads in the same cycle, so adjacent positions need no bubble.
        self.consume.next = self.in_valid.val() && self.h_valid.q.val() && (self.h_pos.q.val() == self.count.q.val());
        self.sp_ready.next = !self.h_valid.q.val() || self.consume.val();
        self.take.next = self.sp_valid.val() && (!self.h_valid.q.val() || self.consume.val());
        self.count.d.next = self.count.q.val();
        if self.in_valid.val() {
            self.count.d.next = self.count.q.val() + self.one32.val();
        }
        self.h_valid.d.next = self.h_valid.q.val();
        self.h_pos.d.next = self.h_pos.q.val();
        self.h_outlier.d.next = self.h_outlier.q.val();
        self.h_value.d.next = self.h_value.q.val();
        if self.take.val() {
            self.h_valid.d.next = true;
            self.h_pos.d.next = self.sp_pos.val();
            self.h_outlier.d.next = self.sp_outlier.val();
            self.h_value.d.next = self.sp_value.val();
        } else if self.consume.val() {
            self.h_valid.d.next = false;
        }

        // Stage A: unpack the lane word o (output format) into S * 2^(X - 137).
        self.o_e.next = (self.in_word.val() >> self.o_mb.val()) & self.o_emask.val();
        self.o_s.next = self.in_word.val() & self.o_mmask.val();
        self.xa.next = self.o_xmin.val();
        if self.o_e.val() != self.zero16.val() {
            self.o_s.next = (self.in_word.val() & self.o_mmask.val()) | self.o_hidden.val();
            self.xa.next = self.o_e.val().get_bits::<XW>(0) + self.o_xoff.val();
        }
        self.sa.next = self.o_s.val() << self.o_align.val();
        self.na.next = self.in_word.val().get_bit(15);
        self.a_spec.next = self.o_e.val() == self.o_emask.val();
        // ... and the entry value v (BF16).
        self.v_e.next = (self.h_value.q.val() >> self.v_mb.val()) & self.v_emask.val();
        self.v_s.next = self.h_value.q.val() & self.v_mmask.val();
        self.xb.next = self.v_xmin.val();
        if self.v_e.val() != self.zero16.val() {
            self.v_s.next = (self.h_value.q.val() & self.v_mmask.val()) | self.v_hidden.val();
            self.xb.next = self.v_e.val().get_bits::<XW>(0) + self.v_xoff.val();
        }
        self.sb.next = self.v_s.val() << self.v_align.val();
        self.nb.next = self.h_value.q.val().get_bit(15);
        self.b_spec.next = self.v_e.val() == self.v_emask.val();
        // An outlier is v plus a zero of v's sign, at the output format's smallest X so
        // that the subnormal shift of stage B stays non-negative.
        if self.h_outlier.q.val() {
            self.xa.next = self.o_xmin.val();
            self.sa.next = self.zero16.val();
            self.na.next = self.h_value.q.val().get_bit(15);
            self.a_spec.next = false;
        }
        // Swap: "big" has the larger X (ties: o), not necessarily the larger magnitude.
        self.xbig.next = self.xa.val();
        self.xsmall.next = self.xb.val();
        self.sbig.next = self.sa.val();
        self.ssmall.next = self.sb.val();
        self.a_big_neg.d.next = self.na.val();
        self.a_small_neg.d.next = self.nb.val();
        if self.xb.val() > self.xa.val() {
            self.xbig.next = self.xb.val();
            self.xsmall.next = self.xa.val();
            self.sbig.next = self.sb.val();
            self.ssmall.next = self.sa.val();
            self.a_big_neg.d.next = self.nb.val();
            self.a_small_neg.d.next = self.na.val();
        }
        // Align small right by d with G guard bits; bits shifted out jam into bit 0.
        self.d.next = self.xbig.val() - self.xsmall.val();
        self.dsh.next = self.d.val().get_bits::<SW>(0);
        if self.d.val() > self.dmax.val() {
            self.dsh.next = self.dmax_s.val();
        }
        self.sm_w.next = bit_cast::<WA, 16>(self.ssmall.val()) << self.g_s.val();
        self.sm_sh.next = self.sm_w.val() >> self.dsh.val();
        self.sticky.next = (self.sm_w.val() & !(self.ones_wa.val() << self.dsh.val())) != self.zero_wa.val();
        self.a_small.d.next = self.sm_sh.val();
        if self.sticky.val() {
            self.a_small.d.next = self.sm_sh.val() | self.one_wa.val();
        }
        self.a_xbig.d.next = self.xbig.val();
        self.a_sbig.d.next = self.sbig.val();
        // Inf/NaN operand: saturate with its sign (o's first).
        self.a_sat.d.next = self.a_spec.val() || self.b_spec.val();
        self.a_sat_neg.d.next = self.nb.val();
        if self.a_spec.val() {
            self.a_sat_neg.d.next = self.na.val();
        }
        self.a_valid.d.next = self.in_valid.val();
        self.a_pass.d.next = !self.consume.val();
        self.a_word.d.next = self.in_word.val();

        // Stage B1: add or subtract the magnitudes (value = mag * 2^(X - 149)).
        self.big_w.next = bit_cast::<W, 16>(self.a_sbig.q.val()) << self.g_s.val();
        self.small_w.next = bit_cast::<W, WA>(self.a_small.q.val());
        self.eff_sub.next = self.a_big_neg.q.val() != self.a_small_neg.q.val();
        // The sum and both differences side by side (no comparison in front of a carry
        // chain); the comparison only selects.
        self.dneg.next = self.small_w.val() > self.big_w.val();
        self.sum_w.next = self.big_w.val() + self.small_w.val();
        self.d_bs.next = self.big_w.val() - self.small_w.val();
        self.d_sb.next = self.small_w.val() - self.big_w.val();
        self.mag.next = self.sum_w.val();
        if self.eff_sub.val() {
            self.mag.next = self.d_bs.val();
            if self.dneg.val() {
                self.mag.next = self.d_sb.val();
            }
        }
        // Leading-one index by successive halving (0 for a zero sum): is the upper half
        // of the remaining window non-zero? Then that half, else the lower one; each step
        // gives one bit of the index, top bit first.
        self.lz_x.next = bit_cast::<32, W>(self.mag.val());
        self.lz.next = self.zero_s.val();
        self.lz_16.next = self.lz_x.val().get_bits::<16>(0);
        if self.lz_x.val().get_bits::<16>(16) != self.zero16.val() {
            self.lz_16.next = self.lz_x.val().get_bits::<16>(16);
            self.lz.next = self.lz.val() | self.k16_s.val();
        }
        self.lz_8.next = self.lz_16.val().get_bits::<8>(0);
        if self.lz_16.val().get_bits::<8>(8) != self.zero8.val() {
            self.lz_8.next = self.lz_16.val().get_bits::<8>(8);
            self.lz.next = self.lz.val() | self.k8_s.val();
        }
        self.lz_4.next = self.lz_8.val().get_bits::<4>(0);
        if self.lz_8.val().get_bits::<4>(4) != self.zero4.val() {
            self.lz_4.next = self.lz_8.val().get_bits::<4>(4);
            self.lz.next = self.lz.val() | self.k4_s.val();
        }
        self.lz_2.next = self.lz_4.val().get_bits::<2>(0);
        if self.lz_4.val().get_bits::<2>(2) != self.zero2.val() {
            self.lz_2.next = self.lz_4.val().get_bits::<2>(2);
            self.lz.next = self.lz.val() | self.k2_s.val();
        }
        if self.lz_2.val().get_bit(1) {
            self.lz.next = self.lz.val() | self.k1_s.val();
        }
        // The last window holds the leading one unless the sum is zero.
        self.zero.next = self.lz_2.val() == self.zero2.val();
        // Sign: the saturating operand's; an exact zero is +0 unless both were -0
        // (only an addition of two zeros gives a zero with eff_sub clear); else the sign
        // of the operand with the larger magnitude.
        self.neg.next = self.a_big_neg.q.val();
        if self.dneg.val() {
            self.neg.next = self.a_small_neg.q.val();
        }
        if self.zero.val() && self.eff_sub.val() {
            self.neg.next = false;
        }
        if self.a_sat.q.val() {
            self.neg.next = self.a_sat_neg.q.val();
        }
        self.b1_valid.d.next = self.a_valid.q.val();
        self.b1_pass.d.next = self.a_pass.q.val();
        self.b1_word.d.next = self.a_word.q.val();
        self.b1_sat.d.next = self.a_sat.q.val();
        self.b1_neg.d.next = self.neg.val();
        self.b1_zero.d.next = self.zero.val();
        self.b1_xbig.d.next = self.a_xbig.q.val();
        self.b1_mag.d.next = self.mag.val();
        self.b1_lz.d.next = self.lz.val();

        // Stage B2: normalize, round, assemble, saturate, sign.
        // Normal: leading one to bit W - 1, exponent field - 1 = X + lz - (150 - bias).
        // Subnormal: shift X - (127 - bias) (below W - 1 - lz; computed mod 32), field 0.
        self.t.next = self.b1_xbig.q.val() + bit_cast::<XW, SW>(self.b1_lz.q.val());
        self.normal.next = (self.t.val() >= self.c_norm.val()) && !self.b1_zero.q.val();
        if self.normal.val() {
            self.ls.next = self.top_s.val() - self.b1_lz.q.val();
            self.fe1.next = self.t.val() - self.c_norm.val();
        } else {
            self.ls.next = self.b1_xbig.q.val().get_bits::<SW>(0) - self.c_sub_s.val();
            self.fe1.next = self.zero_x.val();
        }
        self.m.next = self.b1_mag.q.val() << self.ls.val();
        self.sig.next = self.m.val() >> self.sig_sh.val();
        // Round to nearest, ties to even.
        self.ru.next = ((self.m.val() & self.gmask.val()) != self.zero_w.val())
            && (((self.m.val() & self.smask.val()) != self.zero_w.val())
                || ((self.sig.val() & self.one_w.val()) != self.zero_w.val()));
        self.n.next = self.sig.val().get_bits::<WW>(0);
        if self.ru.val() {
            self.n.next = self.sig.val().get_bits::<WW>(0) + self.one_ww.val();
        }
        // (field - 1) << mb plus the significand with its hidden bit: a carry out of the
        // significand (or a subnormal rounding up to the smallest normal) lands in the
        // exponent field.
        self.w.next = (bit_cast::<WW, XW>(self.fe1.val()) << self.mb_ww.val()) + self.n.val();
        self.res.next = self.w.val().get_bits::<16>(0);
        if self.b1_sat.q.val() || (self.w.val() >= self.inf_ww.val()) {
            self.res.next = self.max16.val();
        }
        if self.b1_neg.q.val() {
            self.res.next = self.res.val() | self.sign16.val();
        }
        self.b_valid.d.next = self.b1_valid.q.val();
        self.b_word.d.next = self.res.val();
        if self.b1_pass.q.val() {
            self.b_word.d.next = self.b1_word.q.val();
        }
        self.out_valid.next = self.b_valid.q.val();
        self.out_word.next = self.b_word.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::CORR_LATENCY;
    use crate::sparse::{correct, Correction};
    use std::collections::{HashMap, VecDeque};

    use crate::rng::XorShift as Rng;

    /// One cycle of stimulus.
    #[derive(Clone, Copy, Default)]
    struct Beat {
        reset: bool,
        word: Option<u16>,
    }

    /// A run: beats and, per reset segment, the sparse entries (sorted, unique
    /// positions). Segment `k` starts after the `k`-th reset beat.
    struct Run {
        beats: Vec<Beat>,
        segments: Vec<Vec<(u32, Correction)>>,
    }

    fn settle(u: &mut CorrUnit) {
        assert!(simulate(u, 1000), "rust-hdl simulation did not settle");
    }

    /// Drives the run through the unit with a driver that always presents its next
    /// entry, and checks every output word against `sparse::correct`, the latency, the
    /// `sp_ready` rule, and that every entry was taken. Returns the number of corrected
    /// words checked.
    fn drive(out: Ieee16, run: &Run) -> usize {
        let mut u = CorrUnit::new(out);
        u.connect_all();
        settle(&mut u);
        let n = run.beats.len() + CORR_LATENCY as usize;
        // Expected output per cycle (None: out_valid low).
        let mut expect: Vec<Option<u16>> = vec![None; n + 1];
        let mut seg = 0usize;
        let mut queue: VecDeque<(u32, Correction)> = VecDeque::new();
        let mut map: HashMap<u32, Correction> = HashMap::new();
        let mut head: Option<(u32, Correction)> = None;
        let mut count = 0u32;
        let mut corrected = 0;
        let mut started = false;
        for k in 0..n {
            let b = run.beats.get(k).copied().unwrap_or_default();
            if b.reset {
                started = true;
                assert!(queue.is_empty() || seg == 0, "a segment ended with entries left");
                queue = run.segments[seg].iter().copied().collect();
                map = run.segments[seg].iter().copied().collect();
                seg += 1;
            }
            u.reset.next = b.reset;
            u.in_valid.next = b.word.is_some() && !b.reset;
            u.in_word.next = (b.word.unwrap_or(0x5a5a) as u64).into();
            let present = queue.front().copied().filter(|_| !b.reset);
            u.sp_valid.next = present.is_some();
            let (pos, c) = present.unwrap_or((
                0xdead_beef,
                Correction {
                    outlier: true,
                    value: 0x1234,
                },
            ));
            u.sp_pos.next = (pos as u64).into();
            u.sp_outlier.next = c.outlier;
            u.sp_value.next = (c.value as u64).into();
            settle(&mut u);
            // Outputs of this cycle.
            if started {
                assert_eq!(u.out_valid.val(), expect[k].is_some(), "{out:?} cycle {k}: out_valid");
                if let Some(w) = expect[k] {
                    assert_eq!(u.out_word.val().to_u64() as u16, w, "{out:?} cycle {k}: out_word");
                }
            }
            // The ready rule, from the model's head and counter.
            let in_valid = b.word.is_some() && !b.reset;
            let consume = in_valid && head.is_some_and(|(p, _)| p == count);
            if started && !b.reset {
                assert_eq!(
                    u.sp_ready.val(),
                    head.is_none() || consume,
                    "{out:?} cycle {k}: sp_ready"
                );
            }
            // The word: expected CORR_LATENCY cycles later unless a reset edge catches it.
            if let (Some(w), false) = (b.word, b.reset) {
                let e = map.get(&count).copied();
                if e.is_some() {
                    corrected += 1;
                }
                let lost = (1..CORR_LATENCY as usize).any(|j| run.beats.get(k + j).is_some_and(|nb| nb.reset));
                if !lost {
                    expect[k + CORR_LATENCY as usize] = Some(correct(out, w, e));
                }
            }
            // Clock edge: model state follows the RTL's.
            if b.reset {
                head = None;
                count = 0;
            } else {
                let take = present.is_some() && u.sp_ready.val();
                if take {
                    head = queue.pop_front();
                } else if consume {
                    head = None;
                }
                if in_valid {
                    count += 1;
                }
            }
            u.clock.next = Clock { clk: true };
            settle(&mut u);
            u.clock.next = Clock { clk: false };
            settle(&mut u);
        }
        assert!(queue.is_empty() && head.is_none(), "{out:?}: entries left unapplied");
        corrected
    }

    /// Output-format words worth trying: zeros, subnormals, min normal, ones, max, ties,
    /// Inf/NaN patterns, both signs.
    fn special_words(out: Ieee16) -> Vec<u16> {
        let base: &[u16] = match out {
            Ieee16::Fp16 => &[
                0x0000, 0x0001, 0x0002, 0x0003, 0x01ff, 0x03ff, 0x0400, 0x0401, 0x07ff, 0x3bff, 0x3c00, 0x3c01, 0x3fff,
                0x4000, 0x7800, 0x7bfe, 0x7bff, 0x7c00, 0x7e00, 0x1400,
            ],
            Ieee16::Bf16 => &[
                0x0000, 0x0001, 0x0002, 0x007f, 0x0080, 0x0081, 0x00ff, 0x3f7f, 0x3f80, 0x3f81, 0x3fff, 0x4000, 0x7f00,
                0x7f7e, 0x7f7f, 0x7f80, 0x7fc0, 0x3b80, 0x3380, 0x4780,
            ],
        };
        base.iter().flat_map(|&w| [w, w | 0x8000]).collect()
    }

    /// BF16 entry values worth trying (ties and midpoints for FP16, far gaps, specials).
    fn special_values() -> Vec<u16> {
        let base = [
            0x0000u16, 0x0001, 0x007f, 0x0080, 0x3300, 0x3380, 0x33c0, 0x3a00, 0x3b80, 0x3800, 0x387f, 0x3880, 0x3f80,
            0x3f81, 0x4170, 0x4180, 0x477f, 0x4780, 0x7f00, 0x7f7f, 0x7f80, 0x7fc1,
        ];
        base.iter().flat_map(|&w| [w, w | 0x8000]).collect()
    }

    /// Every special word x every special value x both kinds, adjacent positions (one
    /// correction per cycle, every cycle), three resets.
    #[test]
    fn corr_unit_directed() {
        for out in [Ieee16::Fp16, Ieee16::Bf16] {
            let words = special_words(out);
            let values = special_values();
            let mut beats = Vec::new();
            let mut segments = Vec::new();
            let mut seg = Vec::new();
            let mut pos = 0u32;
            // After a reset the driver needs one cycle to fill the head before word 0.
            beats.push(Beat {
                reset: true,
                word: None,
            });
            beats.push(Beat::default());
            for (i, &o) in words.iter().enumerate() {
                for &v in &values {
                    for outlier in [false, true] {
                        beats.push(Beat {
                            reset: false,
                            word: Some(o),
                        });
                        seg.push((pos, Correction { outlier, value: v }));
                        pos += 1;
                    }
                }
                // A pass-through word between groups, and a reset now and then.
                beats.push(Beat {
                    reset: false,
                    word: Some(o),
                });
                pos += 1;
                if i % 16 == 15 {
                    beats.push(Beat {
                        reset: true,
                        word: None,
                    });
                    beats.push(Beat::default());
                    segments.push(std::mem::take(&mut seg));
                    pos = 0;
                }
            }
            segments.push(seg);
            let n = drive(out, &Run { beats, segments });
            assert_eq!(n, words.len() * special_values().len() * 2);
        }
    }

    /// A value near -o (cancellation) or near o's ulp (ties), or anything.
    fn random_value(rng: &mut Rng, out: Ieee16, o: u16) -> u16 {
        let near = match out {
            Ieee16::Fp16 => half::bf16::from_f32(half::f16::from_bits(o).to_f32()).to_bits(),
            Ieee16::Bf16 => o,
        };
        match rng.below(4) {
            0 => near ^ 0x8000,
            1 => (near ^ 0x8000).wrapping_add(rng.below(5) as u16).wrapping_sub(2),
            2 => {
                // About one output ulp of o below it in exponent (ties and carries).
                let e = ((near >> 7) & 0xff) as i32 - (out.man_bits() as i32 + 1) - rng.below(3) as i32;
                ((e.clamp(0, 254) as u16) << 7) | (rng.below(128) as u16) | (rng.below(2) as u16) << 15
            }
            _ => rng.next() as u16,
        }
    }

    fn random_run(rng: &mut Rng, out: Ieee16, words: usize) -> Run {
        let mut beats = vec![
            Beat {
                reset: true,
                word: None,
            },
            Beat::default(),
        ];
        let mut segments = vec![Vec::new()];
        let mut pos = 0u32;
        for i in 0..words {
            // Gaps in the word stream.
            while rng.chance(1, 4) {
                beats.push(Beat::default());
            }
            // A reset in the middle, right after a word (which it catches in flight).
            if i == words / 2 {
                beats.push(Beat {
                    reset: true,
                    word: None,
                });
                beats.push(Beat::default());
                segments.push(Vec::new());
                pos = 0;
            }
            let o = match rng.below(4) {
                0 => special_words(out)[rng.below(40) as usize],
                _ => rng.next() as u16,
            };
            beats.push(Beat {
                reset: false,
                word: Some(o),
            });
            // Entries on about 3 words in 4 (so adjacent positions are common).
            if rng.chance(3, 4) {
                let v = random_value(rng, out, o);
                segments.last_mut().unwrap().push((
                    pos,
                    Correction {
                        outlier: rng.chance(1, 4),
                        value: v,
                    },
                ));
            }
            pos += 1;
        }
        Run { beats, segments }
    }

    /// Random words, entries, kinds and gaps, a reset in the middle; both formats.
    #[test]
    fn corr_unit_random() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for out in [Ieee16::Fp16, Ieee16::Bf16] {
            let run = random_run(&mut rng, out, 8000);
            let n = drive(out, &run);
            assert!(n > 5000, "{n} corrections");
        }
    }

    /// Yosys synthesizes the unit without latches (skipped, loudly, without yosys).
    #[test]
    fn corr_unit_synthesizes_without_latches() {
        let ok = std::process::Command::new("yosys")
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("\n*** SKIPPED corr_unit_synthesizes_without_latches: `yosys` is not installed ***\n");
            return;
        }
        let dir = std::env::temp_dir().join(format!("sop-corr-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Ieee16::Fp16;
        let name = crate::emit::corr_unit_name(out);
        let f = dir.join(format!("{name}.v"));
        std::fs::write(&f, crate::emit::corr_unit_verilog(out)).unwrap();
        let script = format!(
            "read_verilog {}; synth -top {name}; check -assert; select -assert-none t:$_DLATCH* t:$dlatch* t:$_SR_* t:$sr",
            f.display()
        );
        let o = std::process::Command::new("yosys")
            .args(["-q", "-p", &script])
            .output()
            .expect("run yosys");
        let msg = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && !msg.contains("Latch inferred"),
            "yosys on {name}:\n{msg}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The Verilog of the unit is clean under `verilator --lint-only -Wall` with the
    /// project's waivers (`rtl-out/verilator.vlt`).
    #[test]
    fn corr_unit_verilog_lint() {
        let ok = std::process::Command::new("verilator")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("\n*** SKIPPED corr_unit_verilog_lint: `verilator` is not installed ***\n");
            return;
        }
        let vlt = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rtl-out/verilator.vlt");
        let dir = std::env::temp_dir().join(format!("sop-corr-lint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for out in [Ieee16::Fp16, Ieee16::Bf16] {
            let name = crate::emit::corr_unit_name(out);
            let text = crate::emit::corr_unit_verilog(out);
            assert_eq!(
                text,
                crate::emit::corr_unit_verilog(out),
                "emission is not deterministic"
            );
            let f = dir.join(format!("{name}.v"));
            std::fs::write(&f, &text).unwrap();
            let o = std::process::Command::new("verilator")
                .args(["--lint-only", "-Wall", "--top-module", &name])
                .arg(&vlt)
                .arg(&f)
                .output()
                .expect("run verilator");
            let msg = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                o.status.success() && msg.trim().is_empty(),
                "{out:?}: verilator lint:\n{msg}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
