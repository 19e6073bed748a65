//! The packer: normalizes the exact product and rounds it to nearest even into the
//! output word (FP16 or BF16), saturating, in two pipeline stages.
//!
//! Stage A finds the leading one `k` of `p`, forms `b = x + k` (output biased exponent
//! `b - off`), and turns it into a right shift `rs` (rounding) or a left shift `ls`
//! (exact), the exponent field minus one `fe`, and the saturation flag. Stage B shifts,
//! rounds (RNE on the shifted-out bits), and assembles `(fe << man_bits) + n`, where a
//! rounding carry into the hidden bit moves into the exponent by the addition itself.

use rust_hdl::prelude::*;

use super::{cb, cbool};
use crate::params::{Params, SW as SW_U32, XW as XW_U32};

const XW: usize = XW_U32 as usize;
const SW: usize = SW_U32 as usize;

/// Packer stage A (combinational).
#[derive(LogicBlock)]
pub struct PackA<const PW: usize> {
    /// Product magnitude.
    pub p: Signal<In, Bits<PW>>,
    /// Offset exponent.
    pub x: Signal<In, Bits<XW>>,
    /// Entry was Inf/NaN: saturate.
    pub inf: Signal<In, bool>,
    /// Product is zero.
    pub zero: Signal<Out, bool>,
    /// Result saturates to the largest finite value.
    pub sat: Signal<Out, bool>,
    /// Right shift (rounding), `0 ..= PW + 1`.
    pub rs: Signal<Out, Bits<SW>>,
    /// Left shift (exact), `0 ..= man_bits`.
    pub ls: Signal<Out, Bits<SW>>,
    /// Output exponent field minus one (0 for subnormal results), when not saturating.
    pub fe: Signal<Out, Bits<8>>,
    k: Signal<Local, Bits<XW>>,
    b: Signal<Local, Bits<XW>>,
    d: Signal<Local, Bits<XW>>,
    sum: Signal<Local, Bits<XW>>,
    r: Signal<Local, Bits<XW>>,
    kidx: Vec<Constant<Bits<XW>>>,
    zero_p: Constant<Bits<PW>>,
    zero_x: Constant<Bits<XW>>,
    off: Constant<Bits<XW>>,
    off1: Constant<Bits<XW>>,
    satb: Constant<Bits<XW>>,
    mb: Constant<Bits<XW>>,
    mb_s: Constant<Bits<SW>>,
    zero_s: Constant<Bits<SW>>,
    zero8: Constant<Bits<8>>,
    off1_8: Constant<Bits<8>>,
    rsmax: Constant<Bits<XW>>,
}

impl<const PW: usize> PackA<PW> {
    /// Stage A for the configuration's product width and output format.
    pub fn new(p: &Params) -> Self {
        assert_eq!(p.pw as usize, PW);
        Self {
            p: Default::default(),
            x: Default::default(),
            inf: Default::default(),
            zero: Default::default(),
            sat: Default::default(),
            rs: Default::default(),
            ls: Default::default(),
            fe: Default::default(),
            k: Default::default(),
            b: Default::default(),
            d: Default::default(),
            sum: Default::default(),
            r: Default::default(),
            kidx: (0..PW as u64).map(cb).collect(),
            zero_p: cb(0),
            zero_x: cb(0),
            off: cb(p.pack_off as u64),
            off1: cb(p.pack_off as u64 + 1),
            satb: cb((p.pack_off + p.out_emax_field()) as u64),
            mb: cb(p.output.man_bits() as u64),
            mb_s: cb(p.output.man_bits() as u64),
            zero_s: cb(0),
            zero8: cb(0),
            off1_8: cb((p.pack_off as u64 + 1) & 0xff),
            rsmax: cb(p.rs_max as u64),
        }
    }
}

impl<const PW: usize> Logic for PackA<PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.k.next = self.zero_x.val();
        for i in 0..self.kidx.len() {
            if self.p.val().get_bit(i) {
                self.k.next = self.kidx[i].val();
            }
        }
        self.zero.next = self.p.val() == self.zero_p.val();
        self.b.next = self.x.val() + self.k.val();
        self.sat.next = self.inf.val() || (self.b.val() >= self.satb.val());
        // Normal result: no denormalization, exponent field - 1 = b - off - 1 (its low
        // 8 bits; the field is below 255 whenever the result does not saturate).
        // Subnormal result: denormalize by d = off + 1 - b, exponent field 0.
        if self.b.val() > self.off.val() {
            self.d.next = self.zero_x.val();
            self.fe.next = self.b.val().get_bits::<8>(0) - self.off1_8.val();
        } else {
            self.d.next = self.off1.val() - self.b.val();
            self.fe.next = self.zero8.val();
        }
        self.sum.next = self.k.val() + self.d.val();
        if self.sum.val() > self.mb.val() {
            self.r.next = self.sum.val() - self.mb.val();
            if self.r.val() > self.rsmax.val() {
                self.r.next = self.rsmax.val();
            }
            self.ls.next = self.zero_s.val();
        } else {
            self.r.next = self.zero_x.val();
            self.ls.next = self.mb_s.val() - self.sum.val().get_bits::<SW>(0);
        }
        self.rs.next = self.r.val().get_bits::<SW>(0);
    }
}

/// Packer stage B (combinational).
#[derive(LogicBlock)]
pub struct PackB<const PW: usize, const WW: usize> {
    /// Product sign.
    pub neg: Signal<In, bool>,
    /// Product magnitude.
    pub p: Signal<In, Bits<PW>>,
    /// Product is zero.
    pub zero: Signal<In, bool>,
    /// Saturate.
    pub sat: Signal<In, bool>,
    /// Right shift.
    pub rs: Signal<In, Bits<SW>>,
    /// Left shift.
    pub ls: Signal<In, Bits<SW>>,
    /// Exponent field minus one.
    pub fe: Signal<In, Bits<8>>,
    /// Output word.
    pub word: Signal<Out, Bits<16>>,
    wide: Signal<Local, Bits<WW>>,
    q: Signal<Local, Bits<WW>>,
    back: Signal<Local, Bits<WW>>,
    rem: Signal<Local, Bits<WW>>,
    t: Signal<Local, Bits<WW>>,
    half: Signal<Local, Bits<WW>>,
    lsb: Signal<Local, bool>,
    ru: Signal<Local, bool>,
    n: Signal<Local, Bits<WW>>,
    n16: Signal<Local, Bits<16>>,
    fe16: Signal<Local, Bits<16>>,
    w16: Signal<Local, Bits<16>>,
    mag: Signal<Local, Bits<16>>,
    one_w: Constant<Bits<WW>>,
    zero_w: Constant<Bits<WW>>,
    one_s: Constant<Bits<SW>>,
    zero_s: Constant<Bits<SW>>,
    mb: Constant<Bits<SW>>,
    inf_w: Constant<Bits<16>>,
    max_w: Constant<Bits<16>>,
    sign_w: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    f: Constant<bool>,
    tr: Constant<bool>,
}

impl<const PW: usize, const WW: usize> PackB<PW, WW> {
    /// Stage B for the configuration's widths and output format.
    pub fn new(p: &Params) -> Self {
        assert_eq!((p.pw as usize, p.ww as usize), (PW, WW));
        let o = p.output;
        Self {
            neg: Default::default(),
            p: Default::default(),
            zero: Default::default(),
            sat: Default::default(),
            rs: Default::default(),
            ls: Default::default(),
            fe: Default::default(),
            word: Default::default(),
            wide: Default::default(),
            q: Default::default(),
            back: Default::default(),
            rem: Default::default(),
            t: Default::default(),
            half: Default::default(),
            lsb: Default::default(),
            ru: Default::default(),
            n: Default::default(),
            n16: Default::default(),
            fe16: Default::default(),
            w16: Default::default(),
            mag: Default::default(),
            one_w: cb(1),
            zero_w: cb(0),
            one_s: cb(1),
            zero_s: cb(0),
            mb: cb(o.man_bits() as u64),
            inf_w: cb((p.out_emax_field() as u64) << o.man_bits()),
            max_w: cb(o.max_code() as u64),
            sign_w: cb(1u64 << (o.exp_bits() + o.man_bits())),
            zero16: cb(0),
            f: cbool(false),
            tr: cbool(true),
        }
    }
}

impl<const PW: usize, const WW: usize> Logic for PackB<PW, WW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.wide.next = bit_cast::<WW, PW>(self.p.val());
        self.q.next = self.wide.val() >> self.rs.val();
        self.back.next = self.q.val() << self.rs.val();
        self.rem.next = self.wide.val() - self.back.val();
        self.t.next = self.one_w.val() << self.rs.val();
        self.half.next = self.t.val() >> self.one_s.val();
        self.lsb.next = (self.q.val() & self.one_w.val()) != self.zero_w.val();
        self.ru.next = self.f.val();
        if self.rs.val() != self.zero_s.val() {
            if self.rem.val() > self.half.val() {
                self.ru.next = self.tr.val();
            }
            if (self.rem.val() == self.half.val()) && self.lsb.val() {
                self.ru.next = self.tr.val();
            }
        }
        if self.ru.val() {
            self.n.next = self.q.val() + self.one_w.val();
        } else {
            self.n.next = self.q.val();
        }
        if self.rs.val() == self.zero_s.val() {
            self.n.next = self.wide.val() << self.ls.val();
        }
        self.n16.next = self.n.val().get_bits::<16>(0);
        self.fe16.next = bit_cast::<16, 8>(self.fe.val()) << self.mb.val();
        self.w16.next = self.fe16.val() + self.n16.val();
        self.mag.next = self.w16.val();
        if self.sat.val() || (self.w16.val() >= self.inf_w.val()) {
            self.mag.next = self.max_w.val();
        }
        self.word.next = self.mag.val();
        if self.neg.val() {
            self.word.next = self.mag.val() | self.sign_w.val();
        }
        if self.zero.val() {
            self.word.next = self.zero16.val();
        }
    }
}
