//! The packer of a normalized lane (`Params::normalized`: HIF tables): rounds the exact
//! product to nearest even into the output word (FP16 or BF16), saturating, in two
//! pipeline stages, with one shifter.
//!
//! Both factors are normalized, so a non-zero product `p` has its leading one at
//! `k = k_min + t`, `t` in {0, 1} (the bit `p[k_min + 1]`): no leading-one detector. The
//! product is left-aligned by `L = ls_max` (with a guard bit below), and every result is one
//! right shift of it by `r`: `c0 + t` for a normal result (`c0 = L + k_min - man_bits`), and
//! `C1 - x` for a subnormal one (`C1 = pack_off + 1 - man_bits + L`), which does not depend on
//! `k` and so comes from `x` alone. Stage A forms `b = x + t`, the normal and saturation
//! tests (comparisons of `b` with constants), `r`, and the exponent field: `Params::xpad`
//! makes it the low bits of `b` (minus one when normal results round), so no subtractor. A
//! zero product shifts everything out (`r` all ones) and is neither normal nor saturating,
//! which leaves `+0`. Stage B shifts, rounds with a guard and a sticky bit, and assembles
//! the word: when normal results cannot round (a 9-bit HIF product into FP16's 11-bit
//! significand) by placing the field over the mantissa bits, otherwise by adding the field
//! minus one to the rounded significand (a rounding carry moves into the exponent), with
//! the overflow check after rounding.

use rust_hdl::prelude::*;

use super::{cb, cbool};
use crate::params::{Params, SW as SW_U32, XW as XW_U32};

const XW: usize = XW_U32 as usize;
const SW: usize = SW_U32 as usize;

/// Normalized packer stage A (combinational).
#[derive(LogicBlock)]
pub struct NormPackA<const PW: usize> {
    /// Product magnitude (leading one at `k_min` or `k_min + 1`; anything when `zero`).
    pub p: Signal<In, Bits<PW>>,
    /// Offset exponent.
    pub x: Signal<In, Bits<XW>>,
    /// The product is zero.
    pub zero: Signal<In, bool>,
    /// Product sign.
    pub neg: Signal<In, bool>,
    /// Right shift of the left-aligned product, `0 ..= 2^rs_bits - 1`.
    pub r: Signal<Out, Bits<SW>>,
    /// Low 8 bits of `b = x + t`: the exponent field of a normal result (minus one when
    /// normal results round) in its low `exp_bits` bits.
    pub fb: Signal<Out, Bits<8>>,
    /// The result is normal (and not zero).
    pub normal: Signal<Out, bool>,
    /// The result saturates before rounding (and is not zero).
    pub sat: Signal<Out, bool>,
    /// Output sign (`neg` of a non-zero product).
    pub sign: Signal<Out, bool>,
    t: Signal<Local, bool>,
    b: Signal<Local, Bits<XW>>,
    rsub: Signal<Local, Bits<SW>>,
    t_bit: Constant<Bits<PW>>,
    zero_p: Constant<Bits<PW>>,
    one_x: Constant<Bits<XW>>,
    t_norm: Constant<Bits<XW>>,
    t_sat: Constant<Bits<XW>>,
    c0: Constant<Bits<SW>>,
    one_s: Constant<Bits<SW>>,
    c1_s: Constant<Bits<SW>>,
    ones_s: Constant<Bits<SW>>,
    /// `C1 - (2^rs_bits - 1)` if positive (one element), else none: below it `C1 - x` no
    /// longer fits `rs_bits` and the shift is clamped to all ones.
    clamp_x: Vec<Constant<Bits<XW>>>,
}

impl<const PW: usize> NormPackA<PW> {
    /// Stage A for the configuration's parameters.
    pub fn new(p: &Params) -> Self {
        assert!(p.normalized);
        assert_eq!(p.pw as usize, PW);
        assert_eq!(PW as u32, p.k_min + 2, "the leading one is at k_min or k_min + 1");
        let mb = p.output.man_bits() as i64;
        let (off, kmin, l) = (p.pack_off as i64, p.k_min as i64, p.ls_max as i64);
        let t_norm = off + 1 - kmin;
        let t_sat = off + p.out_emax_field() as i64 - kmin;
        let c0 = l + kmin - mb;
        let c1 = off + 1 - mb + l;
        let ones = (1i64 << p.rs_bits) - 1;
        assert!(
            t_norm > 0 && c0 >= 0 && c0 < ones && c1 > 0,
            "packer constants out of range"
        );
        assert!(ones >= p.rs_max as i64, "an all-ones shift must shift everything out");
        let clamp = c1 - ones;
        Self {
            p: Default::default(),
            x: Default::default(),
            zero: Default::default(),
            neg: Default::default(),
            r: Default::default(),
            fb: Default::default(),
            normal: Default::default(),
            sat: Default::default(),
            sign: Default::default(),
            t: Default::default(),
            b: Default::default(),
            rsub: Default::default(),
            t_bit: cb(1u64 << (p.k_min + 1)),
            zero_p: cb(0),
            one_x: cb(1),
            t_norm: cb(t_norm as u64),
            t_sat: cb(t_sat as u64),
            c0: cb(c0 as u64),
            one_s: cb(1),
            c1_s: cb((c1 as u64) & ((1 << SW) - 1)),
            ones_s: cb(ones as u64),
            clamp_x: (clamp > 0).then(|| cb(clamp as u64)).into_iter().collect(),
        }
    }
}

impl<const PW: usize> Logic for NormPackA<PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.t.next = (self.p.val() & self.t_bit.val()) != self.zero_p.val();
        self.b.next = self.x.val();
        if self.t.val() {
            self.b.next = self.x.val() + self.one_x.val();
        }
        self.fb.next = self.b.val().get_bits::<8>(0);
        self.normal.next = (self.b.val() >= self.t_norm.val()) && !self.zero.val();
        self.sat.next = (self.b.val() >= self.t_sat.val()) && !self.zero.val();
        self.sign.next = self.neg.val() && !self.zero.val();
        // Subnormal: shift by C1 - x, clamped where it no longer fits.
        self.rsub.next = self.c1_s.val() - self.x.val().get_bits::<SW>(0);
        for i in 0..self.clamp_x.len() {
            if self.x.val() < self.clamp_x[i].val() {
                self.rsub.next = self.ones_s.val();
            }
        }
        self.r.next = self.rsub.val();
        if self.normal.val() {
            self.r.next = self.c0.val();
            if self.t.val() {
                self.r.next = self.c0.val() + self.one_s.val();
            }
        }
        if self.zero.val() {
            self.r.next = self.ones_s.val();
        }
    }
}

/// Normalized packer stage B (combinational).
#[derive(LogicBlock)]
pub struct NormPackB<const PW: usize> {
    /// Product magnitude.
    pub p: Signal<In, Bits<PW>>,
    /// Right shift (from stage A).
    pub r: Signal<In, Bits<SW>>,
    /// Exponent-field bits (from stage A).
    pub fb: Signal<In, Bits<8>>,
    /// Normal result.
    pub normal: Signal<In, bool>,
    /// Saturate.
    pub sat: Signal<In, bool>,
    /// Output sign.
    pub sign: Signal<In, bool>,
    /// Output word.
    pub word: Signal<Out, Bits<16>>,
    rm: Signal<Local, Bits<SW>>,
    e: Signal<Local, Bits<16>>,
    qg: Signal<Local, Bits<16>>,
    below: Signal<Local, Bits<16>>,
    sticky: Signal<Local, bool>,
    ru: Signal<Local, bool>,
    q: Signal<Local, Bits<16>>,
    n: Signal<Local, Bits<16>>,
    fe16: Signal<Local, Bits<16>>,
    w16: Signal<Local, Bits<16>>,
    mag: Signal<Local, Bits<16>>,
    lsh: Constant<Bits<8>>,
    one_16: Constant<Bits<16>>,
    zero_16: Constant<Bits<16>>,
    ones_16: Constant<Bits<16>>,
    rs_mask: Constant<Bits<SW>>,
    mb: Constant<Bits<8>>,
    nmask: Constant<Bits<16>>,
    sub_mask: Constant<Bits<16>>,
    man_mask: Constant<Bits<16>>,
    inf_w: Constant<Bits<16>>,
    max_w: Constant<Bits<16>>,
    sign_w: Constant<Bits<16>>,
    normal_rounds: Constant<bool>,
}

impl<const PW: usize> NormPackB<PW> {
    /// Stage B for the configuration's parameters.
    pub fn new(p: &Params) -> Self {
        assert!(p.normalized);
        assert_eq!(p.pw as usize, PW);
        assert!(
            PW as u32 + p.ls_max < 16,
            "the left-aligned product and its guard bit fit 16 bits"
        );
        let o = p.output;
        let mb = o.man_bits() as u64;
        Self {
            p: Default::default(),
            r: Default::default(),
            fb: Default::default(),
            normal: Default::default(),
            sat: Default::default(),
            sign: Default::default(),
            word: Default::default(),
            rm: Default::default(),
            e: Default::default(),
            qg: Default::default(),
            below: Default::default(),
            sticky: Default::default(),
            ru: Default::default(),
            q: Default::default(),
            n: Default::default(),
            fe16: Default::default(),
            w16: Default::default(),
            mag: Default::default(),
            lsh: cb(p.ls_max as u64 + 1),
            one_16: cb(1),
            zero_16: cb(0),
            ones_16: cb(0xffff),
            rs_mask: cb((1u64 << p.rs_bits) - 1),
            mb: cb(mb),
            // A rounded significand is at most 2^(man_bits + 1) (a normal one rounding up).
            nmask: cb((1u64 << (mb + 2)) - 1),
            sub_mask: cb((1u64 << (mb + 1)) - 1),
            man_mask: cb((1u64 << mb) - 1),
            inf_w: cb((p.out_emax_field() as u64) << mb),
            max_w: cb(o.max_code() as u64),
            sign_w: cb(1u64 << (o.exp_bits() as u64 + mb)),
            normal_rounds: cbool(p.normal_rounds),
        }
    }
}

impl<const PW: usize> Logic for NormPackB<PW> {
    #[hdl_gen]
    fn update(&mut self) {
        // The shift is below 2^rs_bits: the mask drops the stages that never move anything.
        self.rm.next = self.r.val() & self.rs_mask.val();
        // The product left-aligned by ls_max over a guard bit, shifted right once: qg[0] is
        // the guard (the highest bit shifted out), `below` the bits under it (sticky).
        self.e.next = bit_cast::<16, PW>(self.p.val()) << self.lsh.val();
        self.qg.next = self.e.val() >> self.rm.val();
        self.below.next = self.e.val() & !(self.ones_16.val() << self.rm.val());
        self.sticky.next = self.below.val() != self.zero_16.val();
        self.q.next = self.qg.val() >> self.one_16.val();
        // Round to nearest, ties to even.
        self.ru.next = self.qg.val().get_bit(0) && (self.sticky.val() || self.qg.val().get_bit(1));
        if self.ru.val() {
            self.n.next = (self.q.val() + self.one_16.val()) & self.nmask.val();
        } else {
            self.n.next = self.q.val() & self.nmask.val();
        }
        // fb's low exp_bits bits are the field (minus one when normal results round).
        self.fe16.next = (bit_cast::<16, 8>(self.fb.val()) << self.mb.val()) & self.inf_w.val();
        if self.normal_rounds.val() {
            // Field minus one plus the significand with its hidden bit: a rounding carry
            // moves into the exponent; it can reach the Inf field, which saturates.
            self.w16.next = self.n.val();
            if self.normal.val() {
                self.w16.next = self.fe16.val() + self.n.val();
            }
            self.mag.next = self.w16.val();
            if self.sat.val() || (self.w16.val() >= self.inf_w.val()) {
                self.mag.next = self.max_w.val();
            }
        } else {
            // A normal result is exact: its field goes over the mantissa bits. A subnormal
            // one keeps its hidden-bit position, where a rounding carry makes the field 1.
            self.w16.next = self.n.val() & self.sub_mask.val();
            if self.normal.val() {
                self.w16.next = self.fe16.val() | (self.n.val() & self.man_mask.val());
            }
            self.mag.next = self.w16.val();
            if self.sat.val() {
                self.mag.next = self.max_w.val();
            }
        }
        self.word.next = self.mag.val();
        if self.sign.val() {
            self.word.next = self.mag.val() | self.sign_w.val();
        }
    }
}
