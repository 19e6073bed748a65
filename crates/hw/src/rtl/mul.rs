//! Stage-1 scale decoder and the stage-2 block-scale multipliers (HIF shift-add on a
//! normalized scale, and the FP16 baseline with a real significand multiplier).
//!
//! Every constant is a sized `Constant` (emitted as a sized `localparam`): no bare
//! integer literal appears in an expression, so Verilog evaluates every expression at the
//! width rust-hdl's simulator uses.

use rust_hdl::prelude::*;

use super::{cb, cbool};
use sop_formats::Ieee16;

use crate::params::{hif_terms, Params, XW as XW_U32};

const XW: usize = XW_U32 as usize;

/// Decodes a block-scale code into a significand, an exponent and a sign (see
/// `docs/hardware.md`, "Block-scale multiplier"). General form: the significand (hidden
/// bit included for normal codes) left-aligned to `SCALE_MAN_ALIGNED + 1` bits and the
/// exponent `max(e, 1)`. Normalized form (`Params::normalized`): a subnormal code's
/// significand is also shifted up to its top bit, so every non-zero scale has bit
/// `SCALE_MAN_ALIGNED` set, and the exponent is `e + man_bits - 1` (normal) or the
/// position `j` of the code's leading mantissa bit (subnormal), never negative.
#[derive(LogicBlock)]
pub struct ScaleDec {
    /// Scale code.
    pub code: Signal<In, Bits<8>>,
    /// Significand, left-aligned to `SCALE_MAN_ALIGNED + 1` bits.
    pub sig: Signal<Out, Bits<8>>,
    /// Exponent (see the type's doc).
    pub exp: Signal<Out, Bits<8>>,
    /// Negative scale (SE4M3 only).
    pub neg: Signal<Out, bool>,
    /// The scale is zero (exponent and mantissa fields 0); normalized form only (one
    /// element, else none: the general form's significand is 0 then).
    pub zero: Vec<Signal<Out, bool>>,
    e: Signal<Local, Bits<8>>,
    m: Signal<Local, Bits<8>>,
    sign_mask: Constant<Bits<8>>,
    /// Exponent and mantissa fields (with `zero`).
    mag_mask: Vec<Constant<Bits<8>>>,
    man_shift: Constant<Bits<8>>,
    exp_mask: Constant<Bits<8>>,
    man_mask: Constant<Bits<8>>,
    hidden: Constant<Bits<8>>,
    align: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    one: Constant<Bits<8>>,
    normalized: Constant<bool>,
    /// `man_bits - 1`, added to a normal exponent when normalized.
    exp_norm: Constant<Bits<8>>,
    /// Per mantissa bit `j`: the left shift `man_bits - j` that moves it to the hidden bit.
    k_sh: Vec<Constant<Bits<8>>>,
    /// Per mantissa bit `j`: the normalized exponent `j`.
    k_e: Vec<Constant<Bits<8>>>,
}

impl ScaleDec {
    /// The decoder for the configuration's scale format.
    pub fn new(p: &Params) -> Self {
        let s = &p.scale;
        let mb = s.man_bits as u64;
        Self {
            code: Default::default(),
            sig: Default::default(),
            exp: Default::default(),
            neg: Default::default(),
            zero: (0..usize::from(p.normalized)).map(|_| Default::default()).collect(),
            e: Default::default(),
            m: Default::default(),
            sign_mask: cb(p.scale_sign_mask as u64),
            mag_mask: (0..usize::from(p.normalized))
                .map(|_| cb((1u64 << (s.exp_bits + s.man_bits)) - 1))
                .collect(),
            man_shift: cb(mb),
            exp_mask: cb((1u64 << s.exp_bits) - 1),
            man_mask: cb((1u64 << mb) - 1),
            hidden: cb(1u64 << mb),
            align: cb(p.scale_align as u64),
            zero8: cb(0),
            one: cb(1),
            normalized: cbool(p.normalized),
            exp_norm: cb(mb - 1),
            k_sh: (0..mb).map(|j| cb(mb - j)).collect(),
            k_e: (0..mb).map(cb).collect(),
        }
    }
}

impl Logic for ScaleDec {
    #[hdl_gen]
    fn update(&mut self) {
        self.neg.next = (self.code.val() & self.sign_mask.val()) != self.zero8.val();
        for i in 0..self.zero.len() {
            self.zero[i].next = (self.code.val() & self.mag_mask[i].val()) == self.zero8.val();
        }
        self.e.next = (self.code.val() >> self.man_shift.val()) & self.exp_mask.val();
        self.m.next = self.code.val() & self.man_mask.val();
        if self.e.val() == self.zero8.val() {
            self.sig.next = self.m.val() << self.align.val();
            self.exp.next = self.one.val();
            if self.normalized.val() {
                // The highest set mantissa bit wins (a zero code keeps sig = 0).
                self.exp.next = self.zero8.val();
                for j in 0..self.k_sh.len() {
                    if self.m.val().get_bit(j) {
                        self.sig.next = (self.m.val() << self.k_sh[j].val()) << self.align.val();
                        self.exp.next = self.k_e[j].val();
                    }
                }
            }
        } else {
            self.sig.next = (self.m.val() | self.hidden.val()) << self.align.val();
            self.exp.next = self.e.val();
            if self.normalized.val() {
                self.exp.next = self.e.val() + self.exp_norm.val();
            }
        }
    }
}

/// HIF entry times a normalized scale: two shifts and an add or subtract of the scale
/// significand (`sop_formats::hif::MANT_TERMS`), exponent `e + es + (127 - bias)`. Both
/// factors are normalized (HIF mantissas are in `[1, 2)`, the scale significand has its top
/// bit set), so a non-zero product has its leading one at `k_min` or `k_min + 1`; a zero
/// entry or scale is flagged instead of being multiplied out.
#[derive(LogicBlock)]
pub struct HifMul<const W: usize, const PW: usize> {
    /// LUT word (HIF7 or HIF8).
    pub entry: Signal<In, Bits<W>>,
    /// Normalized scale significand (from [`ScaleDec`]; its top bit is implied).
    pub ssig: Signal<In, Bits<8>>,
    /// Normalized scale exponent (from [`ScaleDec`]).
    pub sexp: Signal<In, Bits<8>>,
    /// Scale sign.
    pub sneg: Signal<In, bool>,
    /// Scale is zero.
    pub szero: Signal<In, bool>,
    /// Bias register of the entry's table (8-bit two's complement).
    pub bias: Signal<In, Bits<8>>,
    /// Product sign.
    pub neg: Signal<Out, bool>,
    /// Product magnitude (integer; meaningless when `zero`).
    pub p: Signal<Out, Bits<PW>>,
    /// Offset exponent: value = `p * 2^(x - xoff)`.
    pub x: Signal<Out, Bits<XW>>,
    /// The product is zero (zero entry word or zero scale).
    pub zero: Signal<Out, bool>,
    w8: Signal<Local, Bits<8>>,
    c: Signal<Local, Bits<8>>,
    cl: Signal<Local, Bits<8>>,
    e: Signal<Local, Bits<8>>,
    hneg: Signal<Local, bool>,
    sub: Signal<Local, bool>,
    sp: Signal<Local, Bits<PW>>,
    ta: Signal<Local, Bits<PW>>,
    tb: Signal<Local, Bits<PW>>,
    nb: Signal<Local, Bits<8>>,
    sign_mask: Constant<Bits<8>>,
    c_shift: Constant<Bits<8>>,
    e_mask: Constant<Bits<8>>,
    c_mask: Constant<Bits<8>>,
    cl_mask: Constant<Bits<8>>,
    n_mant: Constant<Bits<8>>,
    top: Constant<Bits<PW>>,
    bias_flip: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    zero_p: Constant<Bits<PW>>,
    xpad: Constant<Bits<XW>>,
    k_c: Vec<Constant<Bits<8>>>,
    k_sha: Vec<Constant<Bits<8>>>,
    k_shb: Vec<Constant<Bits<8>>>,
    k_sub: Vec<Constant<bool>>,
    k_hasb: Vec<Constant<bool>>,
}

impl<const W: usize, const PW: usize> HifMul<W, PW> {
    /// The multiplier for the configuration's HIF format.
    pub fn new(p: &Params) -> Self {
        let h = p.hif().expect("HIF configuration");
        assert!(p.normalized, "the HIF multiplier takes a normalized scale");
        assert_eq!(h.bits() as usize, W);
        assert_eq!(p.pw as usize, PW);
        let terms = hif_terms(h);
        let cbits = h.c_bits();
        // The used codes differ in their low bits already; an unused code is flagged zero,
        // so its terms do not matter (it takes term 0's).
        let cl_bits = 32 - (h.mantissas() - 1).leading_zeros();
        Self {
            entry: Default::default(),
            ssig: Default::default(),
            sexp: Default::default(),
            sneg: Default::default(),
            szero: Default::default(),
            bias: Default::default(),
            neg: Default::default(),
            p: Default::default(),
            x: Default::default(),
            zero: Default::default(),
            w8: Default::default(),
            c: Default::default(),
            cl: Default::default(),
            e: Default::default(),
            hneg: Default::default(),
            sub: Default::default(),
            sp: Default::default(),
            ta: Default::default(),
            tb: Default::default(),
            nb: Default::default(),
            sign_mask: cb(h.word(true, 0, 0) as u64),
            c_shift: cb(cbits as u64),
            e_mask: cb((sop_formats::hif::OCTAVES - 1) as u64),
            c_mask: cb(((1u64) << cbits) - 1),
            cl_mask: cb(((1u64) << cl_bits) - 1),
            n_mant: cb(h.mantissas() as u64),
            top: cb(1u64 << crate::params::SCALE_MAN_ALIGNED),
            // 127 - bias == bias ^ 0x7f for an 8-bit two's-complement bias.
            bias_flip: cb((1u64 << (crate::params::SCALE_BITS - 1)) - 1),
            zero8: cb(0),
            zero_p: cb(0),
            xpad: cb(p.xpad as u64),
            k_c: terms.iter().map(|t| cb(t.c as u64)).collect(),
            k_sha: terms.iter().map(|t| cb(t.sh_a as u64)).collect(),
            k_shb: terms.iter().map(|t| cb(t.sh_b.unwrap_or(0) as u64)).collect(),
            k_sub: terms.iter().map(|t| cbool(t.sub)).collect(),
            k_hasb: terms.iter().map(|t| cbool(t.sh_b.is_some())).collect(),
        }
    }
}

impl<const W: usize, const PW: usize> Logic for HifMul<W, PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.w8.next = bit_cast::<8, W>(self.entry.val());
        self.hneg.next = (self.w8.val() & self.sign_mask.val()) != self.zero8.val();
        self.c.next = self.w8.val() & self.c_mask.val();
        self.cl.next = self.c.val() & self.cl_mask.val();
        self.e.next = (self.w8.val() >> self.c_shift.val()) & self.e_mask.val();
        self.zero.next = self.szero.val() || (self.c.val() >= self.n_mant.val());
        // The top bit of a normalized scale is always 1: spelled as a constant, so that
        // synthesis sees it.
        self.sp.next = bit_cast::<PW, 8>(self.ssig.val()) | self.top.val();
        // Every shift below is by a constant: wiring, then one multiplexer per term.
        self.ta.next = self.sp.val() << self.k_sha[0].val();
        self.tb.next = self.zero_p.val();
        self.sub.next = self.k_sub[0].val();
        for i in 0..self.k_c.len() {
            if self.cl.val() == self.k_c[i].val() {
                self.ta.next = self.sp.val() << self.k_sha[i].val();
                self.tb.next = self.zero_p.val();
                if self.k_hasb[i].val() {
                    self.tb.next = self.sp.val() << self.k_shb[i].val();
                }
                self.sub.next = self.k_sub[i].val();
            }
        }
        if self.sub.val() {
            self.p.next = self.ta.val() - self.tb.val();
        } else {
            self.p.next = self.ta.val() + self.tb.val();
        }
        self.nb.next = self.bias.val() ^ self.bias_flip.val();
        self.x.next = bit_cast::<XW, 8>(self.e.val())
            + bit_cast::<XW, 8>(self.sexp.val())
            + bit_cast::<XW, 8>(self.nb.val())
            + self.xpad.val();
        self.neg.next = self.hneg.val() ^ self.sneg.val();
    }
}

/// FP16 exponent-field width.
const FE_BITS: usize = Ieee16::Fp16.exp_bits() as usize;
/// FP16 mantissa-field width.
const FM_BITS: usize = Ieee16::Fp16.man_bits() as usize;

/// FP16 entry times decoded scale: an 11-bit x 5-bit significand multiplier (written as a
/// 16 x 16 -> 32 product, the only multiply rust-hdl has; synthesis trims the zero bits).
#[derive(LogicBlock)]
pub struct Fp16Mul<const W: usize, const PW: usize> {
    /// LUT word (FP16 bits).
    pub entry: Signal<In, Bits<W>>,
    /// Scale significand (from [`ScaleDec`]).
    pub ssig: Signal<In, Bits<8>>,
    /// Scale exponent (from [`ScaleDec`]).
    pub sexp: Signal<In, Bits<8>>,
    /// Scale sign.
    pub sneg: Signal<In, bool>,
    /// Product sign.
    pub neg: Signal<Out, bool>,
    /// Product magnitude (integer).
    pub p: Signal<Out, Bits<PW>>,
    /// Offset exponent: value = `p * 2^(x - xoff)`.
    pub x: Signal<Out, Bits<XW>>,
    /// Entry is Inf/NaN (exponent field all ones): the packer saturates.
    pub inf: Signal<Out, bool>,
    e16: Signal<Local, Bits<16>>,
    fe: Signal<Local, Bits<FE_BITS>>,
    fm: Signal<Local, Bits<FM_BITS>>,
    sig: Signal<Local, Bits<16>>,
    fe1: Signal<Local, Bits<XW>>,
    s16: Signal<Local, Bits<16>>,
    prod: Signal<Local, Bits<32>>,
    sign_pos: Constant<Bits<4>>,
    exp_pos: Constant<Bits<4>>,
    zero_e: Constant<Bits<FE_BITS>>,
    ones_e: Constant<Bits<FE_BITS>>,
    hidden: Constant<Bits<16>>,
    one_x: Constant<Bits<XW>>,
    xpad: Constant<Bits<XW>>,
}

impl<const W: usize, const PW: usize> Fp16Mul<W, PW> {
    /// The FP16-entry multiplier.
    pub fn new(p: &Params) -> Self {
        let f = Ieee16::Fp16;
        assert_eq!(W, 16);
        assert_eq!(p.pw as usize, PW);
        Self {
            entry: Default::default(),
            ssig: Default::default(),
            sexp: Default::default(),
            sneg: Default::default(),
            neg: Default::default(),
            p: Default::default(),
            x: Default::default(),
            inf: Default::default(),
            e16: Default::default(),
            fe: Default::default(),
            fm: Default::default(),
            sig: Default::default(),
            fe1: Default::default(),
            s16: Default::default(),
            prod: Default::default(),
            sign_pos: cb((f.exp_bits() + f.man_bits()) as u64),
            exp_pos: cb(f.man_bits() as u64),
            zero_e: cb(0),
            ones_e: cb((1u64 << f.exp_bits()) - 1),
            hidden: cb(1u64 << f.man_bits()),
            one_x: cb(1),
            xpad: cb(p.xpad as u64),
        }
    }
}

impl<const W: usize, const PW: usize> Logic for Fp16Mul<W, PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.e16.next = bit_cast::<16, W>(self.entry.val());
        self.fe.next = self.e16.val().get_bits::<FE_BITS>(self.exp_pos.val().index());
        self.fm.next = self.e16.val().get_bits::<FM_BITS>(0);
        self.sig.next = bit_cast::<16, FM_BITS>(self.fm.val());
        self.fe1.next = self.one_x.val();
        if self.fe.val() != self.zero_e.val() {
            self.sig.next = self.sig.val() | self.hidden.val();
            self.fe1.next = bit_cast::<XW, FE_BITS>(self.fe.val());
        }
        self.inf.next = self.fe.val() == self.ones_e.val();
        self.s16.next = bit_cast::<16, 8>(self.ssig.val());
        self.prod.next = self.sig.val() * self.s16.val();
        self.p.next = self.prod.val().get_bits::<PW>(0);
        self.x.next = self.fe1.val() + bit_cast::<XW, 8>(self.sexp.val()) + self.xpad.val();
        self.neg.next = self.e16.val().get_bit(self.sign_pos.val().index()) ^ self.sneg.val();
    }
}
