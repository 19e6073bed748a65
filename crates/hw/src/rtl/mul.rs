//! Stage-1 scale decoder and the stage-2 block-scale multipliers (HIF shift-add and the
//! FP16 baseline with a real significand multiplier).
//!
//! Every constant is a sized `Constant` (emitted as a sized `localparam`): no bare
//! integer literal appears in an expression, so Verilog evaluates every expression at the
//! width rust-hdl's simulator uses.

use rust_hdl::prelude::*;

use super::{cb, cbool};
use sop_formats::Ieee16;

use crate::params::{hif_terms, Params, XW as XW_U32};

const XW: usize = XW_U32 as usize;

/// Decodes a block-scale code into an aligned significand, an exponent `max(e, 1)` and
/// a sign (see `docs/hardware.md`, "Block-scale multiplier").
#[derive(LogicBlock)]
pub struct ScaleDec {
    /// Scale code.
    pub code: Signal<In, Bits<8>>,
    /// Significand (hidden bit included for normal codes), left-aligned to 5 bits.
    pub sig: Signal<Out, Bits<8>>,
    /// Exponent field, 1 for subnormal codes.
    pub exp: Signal<Out, Bits<8>>,
    /// Negative scale (SE4M3 only).
    pub neg: Signal<Out, bool>,
    e: Signal<Local, Bits<8>>,
    m: Signal<Local, Bits<8>>,
    sign_mask: Constant<Bits<8>>,
    man_shift: Constant<Bits<8>>,
    exp_mask: Constant<Bits<8>>,
    man_mask: Constant<Bits<8>>,
    hidden: Constant<Bits<8>>,
    align: Constant<Bits<8>>,
    zero: Constant<Bits<8>>,
    one: Constant<Bits<8>>,
}

impl ScaleDec {
    /// The decoder for the configuration's scale format.
    pub fn new(p: &Params) -> Self {
        let s = &p.scale;
        Self {
            code: Default::default(),
            sig: Default::default(),
            exp: Default::default(),
            neg: Default::default(),
            e: Default::default(),
            m: Default::default(),
            sign_mask: cb(p.scale_sign_mask as u64),
            man_shift: cb(s.man_bits as u64),
            exp_mask: cb((1u64 << s.exp_bits) - 1),
            man_mask: cb((1u64 << s.man_bits) - 1),
            hidden: cb(1u64 << s.man_bits),
            align: cb(p.scale_align as u64),
            zero: cb(0),
            one: cb(1),
        }
    }
}

impl Logic for ScaleDec {
    #[hdl_gen]
    fn update(&mut self) {
        self.neg.next = (self.code.val() & self.sign_mask.val()) != self.zero.val();
        self.e.next = (self.code.val() >> self.man_shift.val()) & self.exp_mask.val();
        self.m.next = self.code.val() & self.man_mask.val();
        if self.e.val() == self.zero.val() {
            self.sig.next = self.m.val() << self.align.val();
            self.exp.next = self.one.val();
        } else {
            self.sig.next = (self.m.val() | self.hidden.val()) << self.align.val();
            self.exp.next = self.e.val();
        }
    }
}

/// HIF entry times decoded scale: two shifts and an add or subtract of the scale
/// significand (`sop_formats::hif::MANT_TERMS`), exponent `e + ef + (127 - bias)`.
#[derive(LogicBlock)]
pub struct HifMul<const W: usize, const PW: usize> {
    /// LUT word (HIF7 or HIF8).
    pub entry: Signal<In, Bits<W>>,
    /// Scale significand (from [`ScaleDec`]).
    pub ssig: Signal<In, Bits<8>>,
    /// Scale exponent (from [`ScaleDec`]).
    pub sexp: Signal<In, Bits<8>>,
    /// Scale sign.
    pub sneg: Signal<In, bool>,
    /// Bias register of the entry's table (8-bit two's complement).
    pub bias: Signal<In, Bits<8>>,
    /// Product sign.
    pub neg: Signal<Out, bool>,
    /// Product magnitude (integer).
    pub p: Signal<Out, Bits<PW>>,
    /// Offset exponent: value = `p * 2^(x - xoff)`.
    pub x: Signal<Out, Bits<XW>>,
    /// Entry is Inf/NaN (never for HIF).
    pub inf: Signal<Out, bool>,
    w8: Signal<Local, Bits<8>>,
    c: Signal<Local, Bits<8>>,
    e: Signal<Local, Bits<8>>,
    hneg: Signal<Local, bool>,
    sha: Signal<Local, Bits<8>>,
    shb: Signal<Local, Bits<8>>,
    sub: Signal<Local, bool>,
    hasb: Signal<Local, bool>,
    nz: Signal<Local, bool>,
    sp: Signal<Local, Bits<PW>>,
    ta: Signal<Local, Bits<PW>>,
    tb: Signal<Local, Bits<PW>>,
    q: Signal<Local, Bits<PW>>,
    nb: Signal<Local, Bits<8>>,
    sign_mask: Constant<Bits<8>>,
    c_shift: Constant<Bits<8>>,
    e_mask: Constant<Bits<8>>,
    c_mask: Constant<Bits<8>>,
    bias_flip: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    zero_p: Constant<Bits<PW>>,
    xpad: Constant<Bits<XW>>,
    t: Constant<bool>,
    f: Constant<bool>,
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
        assert_eq!(h.bits() as usize, W);
        assert_eq!(p.pw as usize, PW);
        let terms = hif_terms(h);
        let cbits = h.c_bits();
        Self {
            entry: Default::default(),
            ssig: Default::default(),
            sexp: Default::default(),
            sneg: Default::default(),
            bias: Default::default(),
            neg: Default::default(),
            p: Default::default(),
            x: Default::default(),
            inf: Default::default(),
            w8: Default::default(),
            c: Default::default(),
            e: Default::default(),
            hneg: Default::default(),
            sha: Default::default(),
            shb: Default::default(),
            sub: Default::default(),
            hasb: Default::default(),
            nz: Default::default(),
            sp: Default::default(),
            ta: Default::default(),
            tb: Default::default(),
            q: Default::default(),
            nb: Default::default(),
            sign_mask: cb(h.word(true, 0, 0) as u64),
            c_shift: cb(cbits as u64),
            e_mask: cb((sop_formats::hif::OCTAVES - 1) as u64),
            c_mask: cb(((1u64) << cbits) - 1),
            // 127 - bias == bias ^ 0x7f for an 8-bit two's-complement bias.
            bias_flip: cb((1u64 << (crate::params::SCALE_BITS - 1)) - 1),
            zero8: cb(0),
            zero_p: cb(0),
            xpad: cb(p.xpad as u64),
            t: cbool(true),
            f: cbool(false),
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
        self.e.next = (self.w8.val() >> self.c_shift.val()) & self.e_mask.val();
        self.sha.next = self.zero8.val();
        self.shb.next = self.zero8.val();
        self.sub.next = self.f.val();
        self.hasb.next = self.f.val();
        self.nz.next = self.f.val();
        for i in 0..self.k_c.len() {
            if self.c.val() == self.k_c[i].val() {
                self.sha.next = self.k_sha[i].val();
                self.shb.next = self.k_shb[i].val();
                self.sub.next = self.k_sub[i].val();
                self.hasb.next = self.k_hasb[i].val();
                self.nz.next = self.t.val();
            }
        }
        self.sp.next = bit_cast::<PW, 8>(self.ssig.val());
        self.ta.next = self.sp.val() << self.sha.val();
        self.tb.next = self.zero_p.val();
        if self.hasb.val() {
            self.tb.next = self.sp.val() << self.shb.val();
        }
        if self.sub.val() {
            self.q.next = self.ta.val() - self.tb.val();
        } else {
            self.q.next = self.ta.val() + self.tb.val();
        }
        self.p.next = self.zero_p.val();
        if self.nz.val() {
            self.p.next = self.q.val();
        }
        self.nb.next = self.bias.val() ^ self.bias_flip.val();
        self.x.next = bit_cast::<XW, 8>(self.e.val())
            + bit_cast::<XW, 8>(self.sexp.val())
            + bit_cast::<XW, 8>(self.nb.val())
            + self.xpad.val();
        self.neg.next = self.hneg.val() ^ self.sneg.val();
        self.inf.next = self.f.val();
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
