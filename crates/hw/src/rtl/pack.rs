//! The general packer: normalizes the exact product and rounds it to nearest even into the
//! output word (FP16 or BF16), saturating, in two pipeline stages.
//!
//! Stage A finds the leading one `k` of `p` and forms `b = x + k` (output biased exponent
//! `b - off`). A normal result (`b > off`) is the product normalized to its leading one; a
//! subnormal one is the product scaled by `2^(man_bits - u)` with `u = off + 1 - x`, which
//! does not depend on `k`. So the total shift is `man_bits - k` or `man_bits - u`, each
//! turned into a right shift `rs` (rounding) or a left shift `ls` (exact) before one
//! multiplexer picks by `b > off`; the `u` side is computed from `x` alone, in parallel with
//! the leading-one detector. Stage A also forms the exponent field minus one `fe` and the
//! saturation flag. Stage B shifts, rounds to nearest even with a guard bit and a sticky
//! bit, and assembles `(fe << man_bits) + n`, where a rounding carry into the hidden bit
//! moves into the exponent by the addition itself.
//!
//! This is the packer of the FP16-LUT lanes, whose products (an FP16 entry can be
//! subnormal) have their leading one anywhere; the HIF lanes use the normalized packer
//! (`super::npack`). An FP16 product has 16 bits, more than either output significand, so
//! normal results round here.

use rust_hdl::prelude::*;

use super::cb;
use crate::params::{Params, SW as SW_U32, XW as XW_U32};

const XW: usize = XW_U32 as usize;
const SW: usize = SW_U32 as usize;

/// `v mod 2^SW`, for the low bits of a (possibly negative) shift constant.
fn low_sw(v: i64) -> u64 {
    v.rem_euclid(1 << SW) as u64
}

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
    /// Output exponent field minus one (0 for subnormal results and a zero product), when
    /// not saturating.
    pub fe: Signal<Out, Bits<8>>,
    k: Signal<Local, Bits<SW>>,
    b: Signal<Local, Bits<XW>>,
    rs_k: Signal<Local, Bits<SW>>,
    ls_k: Signal<Local, Bits<SW>>,
    rs_u: Signal<Local, Bits<SW>>,
    ls_u: Signal<Local, Bits<SW>>,
    x_s: Signal<Local, Bits<SW>>,
    kidx: Vec<Constant<Bits<SW>>>,
    zero_p: Constant<Bits<PW>>,
    off: Constant<Bits<XW>>,
    satb: Constant<Bits<XW>>,
    /// `off + 1 - mb` if positive (one element), else none: a subnormal never shifts right.
    big_x: Vec<Constant<Bits<XW>>>,
    /// `off + 1 - mb - rs_max` if positive (one element), else none: never clamped.
    clamp_x: Vec<Constant<Bits<XW>>>,
    /// `(off + 1 - mb) mod 2^SW`, with `big_x`.
    big_s: Vec<Constant<Bits<SW>>>,
    lsu_s: Constant<Bits<SW>>,
    mb_s: Constant<Bits<SW>>,
    zero_s: Constant<Bits<SW>>,
    /// `rs_max`, with `clamp_x`.
    rsmax_s: Vec<Constant<Bits<SW>>>,
    zero8: Constant<Bits<8>>,
    off1_8: Constant<Bits<8>>,
}

impl<const PW: usize> PackA<PW> {
    /// Stage A for the configuration's product width and output format.
    pub fn new(p: &Params) -> Self {
        assert_eq!(p.pw as usize, PW);
        assert!(p.normal_rounds, "the general packer rounds normal results");
        let mb = p.output.man_bits() as i64;
        let off1 = p.pack_off as i64 + 1;
        // Subnormal result (u = off + 1 - x >= 1): it shifts right when u > mb, i.e.
        // x < off + 1 - mb, by u - mb, clamped to rs_max when x < off + 1 - mb - rs_max;
        // otherwise it shifts left by mb - u = x - (off + 1 - mb). A bound <= 0 never
        // holds: its comparison is left out.
        let big = off1 - mb;
        let clamp = big - p.rs_max as i64;
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
            rs_k: Default::default(),
            ls_k: Default::default(),
            rs_u: Default::default(),
            ls_u: Default::default(),
            x_s: Default::default(),
            kidx: (0..PW as u64).map(cb).collect(),
            zero_p: cb(0),
            off: cb(p.pack_off as u64),
            satb: cb((p.pack_off + p.out_emax_field()) as u64),
            big_x: (big > 0).then(|| cb(big as u64)).into_iter().collect(),
            clamp_x: (clamp > 0).then(|| cb(clamp as u64)).into_iter().collect(),
            big_s: (big > 0).then(|| cb(low_sw(big))).into_iter().collect(),
            lsu_s: cb(low_sw(-big)),
            mb_s: cb(mb as u64),
            zero_s: cb(0),
            rsmax_s: (clamp > 0).then(|| cb(p.rs_max as u64)).into_iter().collect(),
            zero8: cb(0),
            off1_8: cb((off1 as u64) & 0xff),
        }
    }
}

impl<const PW: usize> Logic for PackA<PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.k.next = self.zero_s.val();
        for i in 0..self.kidx.len() {
            if self.p.val().get_bit(i) {
                self.k.next = self.kidx[i].val();
            }
        }
        self.zero.next = self.p.val() == self.zero_p.val();
        self.b.next = self.x.val() + bit_cast::<XW, SW>(self.k.val());
        // A zero product neither saturates nor has an exponent: with fe = 0 and p = 0,
        // packer B assembles +0 without a zeroing multiplexer of its own.
        self.sat.next = (self.inf.val() || (self.b.val() >= self.satb.val())) && !self.zero.val();
        // Normal result: shift by mb - k (right only if the product is wider than the
        // output significand).
        self.rs_k.next = self.zero_s.val();
        self.ls_k.next = self.mb_s.val() - self.k.val();
        if self.k.val() > self.mb_s.val() {
            self.rs_k.next = self.k.val() - self.mb_s.val();
            self.ls_k.next = self.zero_s.val();
        }
        // Subnormal result: shift by mb - u, from x alone (see `new`).
        self.x_s.next = self.x.val().get_bits::<SW>(0);
        self.rs_u.next = self.zero_s.val();
        self.ls_u.next = self.x_s.val() + self.lsu_s.val();
        for i in 0..self.big_x.len() {
            if self.x.val() < self.big_x[i].val() {
                self.rs_u.next = self.big_s[i].val() - self.x_s.val();
                self.ls_u.next = self.zero_s.val();
            }
        }
        for i in 0..self.clamp_x.len() {
            if self.x.val() < self.clamp_x[i].val() {
                self.rs_u.next = self.rsmax_s[i].val();
            }
        }
        // Normal result: exponent field - 1 = b - off - 1 (its low 8 bits; the field is
        // below 255 whenever the result does not saturate). Subnormal: field 0.
        if (self.b.val() > self.off.val()) && !self.zero.val() {
            self.fe.next = self.b.val().get_bits::<8>(0) - self.off1_8.val();
            self.rs.next = self.rs_k.val();
            self.ls.next = self.ls_k.val();
        } else {
            self.fe.next = self.zero8.val();
            self.rs.next = self.rs_u.val();
            self.ls.next = self.ls_u.val();
        }
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
    e: Signal<Local, Bits<WW>>,
    qg: Signal<Local, Bits<WW>>,
    below: Signal<Local, Bits<WW>>,
    rsm: Signal<Local, Bits<SW>>,
    lsm: Signal<Local, Bits<SW>>,
    sticky: Signal<Local, bool>,
    ru: Signal<Local, bool>,
    q: Signal<Local, Bits<PW>>,
    nr: Signal<Local, Bits<PW>>,
    nl: Signal<Local, Bits<16>>,
    n16: Signal<Local, Bits<16>>,
    fe16: Signal<Local, Bits<16>>,
    w16: Signal<Local, Bits<16>>,
    mag: Signal<Local, Bits<16>>,
    one_p: Constant<Bits<PW>>,
    ones_w: Constant<Bits<WW>>,
    zero_w: Constant<Bits<WW>>,
    one_s: Constant<Bits<SW>>,
    zero_s: Constant<Bits<SW>>,
    rs_mask: Constant<Bits<SW>>,
    ls_mask: Constant<Bits<SW>>,
    mb: Constant<Bits<SW>>,
    nmask: Constant<Bits<16>>,
    inf_w: Constant<Bits<16>>,
    max_w: Constant<Bits<16>>,
    sign_w: Constant<Bits<16>>,
}

impl<const PW: usize, const WW: usize> PackB<PW, WW> {
    /// Stage B for the configuration's widths and output format.
    pub fn new(p: &Params) -> Self {
        assert_eq!((p.pw as usize, p.ww as usize), (PW, WW));
        assert_eq!(WW, PW + 1, "the guard bit sits below the product");
        assert!(p.normal_rounds, "the general packer rounds normal results");
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
            e: Default::default(),
            qg: Default::default(),
            below: Default::default(),
            rsm: Default::default(),
            lsm: Default::default(),
            sticky: Default::default(),
            ru: Default::default(),
            q: Default::default(),
            nr: Default::default(),
            nl: Default::default(),
            n16: Default::default(),
            fe16: Default::default(),
            w16: Default::default(),
            mag: Default::default(),
            one_p: cb(1),
            ones_w: cb((1u64 << WW) - 1),
            zero_w: cb(0),
            one_s: cb(1),
            zero_s: cb(0),
            rs_mask: cb((1u64 << p.rs_bits) - 1),
            ls_mask: cb((1u64 << p.ls_bits) - 1),
            mb: cb(o.man_bits() as u64),
            // A left-shifted significand is below 2^(man_bits + 1) (hidden bit included).
            nmask: cb((1u64 << (o.man_bits() + 1)) - 1),
            inf_w: cb((p.out_emax_field() as u64) << o.man_bits()),
            max_w: cb(o.max_code() as u64),
            sign_w: cb(1u64 << (o.exp_bits() + o.man_bits())),
        }
    }
}

impl<const PW: usize, const WW: usize> Logic for PackB<PW, WW> {
    #[hdl_gen]
    fn update(&mut self) {
        // The shifts are below 2^rs_bits and 2^ls_bits (`Params`): the masks drop the
        // shifter stages that could never move anything.
        self.rsm.next = self.rs.val() & self.rs_mask.val();
        self.lsm.next = self.ls.val() & self.ls_mask.val();
        // Right shift of the product with a guard bit below it: qg[0] is the guard (the
        // highest bit shifted out), `below` the bits shifted out under it (sticky).
        self.e.next = bit_cast::<WW, PW>(self.p.val()) << self.one_s.val();
        self.qg.next = self.e.val() >> self.rsm.val();
        self.below.next = self.e.val() & !(self.ones_w.val() << self.rsm.val());
        self.sticky.next = self.below.val() != self.zero_w.val();
        self.q.next = self.qg.val().get_bits::<PW>(1);
        // Round to nearest, ties to even (rs = 0 has guard 0: no rounding). With rs >= 1,
        // q < 2^(PW - 1), so q + 1 fits PW bits.
        self.ru.next = self.qg.val().get_bit(0) && (self.sticky.val() || self.qg.val().get_bit(1));
        if self.ru.val() {
            self.nr.next = self.q.val() + self.one_p.val();
        } else {
            self.nr.next = self.q.val();
        }
        self.nl.next = (bit_cast::<16, PW>(self.p.val()) << self.lsm.val()) & self.nmask.val();
        if self.rsm.val() == self.zero_s.val() {
            self.n16.next = self.nl.val();
        } else {
            self.n16.next = bit_cast::<16, PW>(self.nr.val());
        }
        // fe is below the Inf field whenever the result does not saturate: keep only the
        // exponent-field bits (FP16 uses 5 of fe's 8).
        self.fe16.next = (bit_cast::<16, 8>(self.fe.val()) << self.mb.val()) & self.inf_w.val();
        self.w16.next = self.fe16.val() + self.n16.val();
        self.mag.next = self.w16.val();
        if self.sat.val() || (self.w16.val() >= self.inf_w.val()) {
            self.mag.next = self.max_w.val();
        }
        // A zero product arrives with fe = 0 and sat = 0 (stage A), so mag = +0 already;
        // it only must not take the sign.
        self.word.next = self.mag.val();
        if self.neg.val() && !self.zero.val() {
            self.word.next = self.mag.val() | self.sign_w.val();
        }
    }
}
