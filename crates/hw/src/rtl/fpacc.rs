//! The dot-product tile's FP32 block accumulator: `acc <- RNE_f32(acc + V)` for a block
//! value `V = (-1)^v_neg * v_mag * 2^(v_exp - VOFF)` with a wide integer magnitude, exactly
//! as [`crate::tile::add_exact`] (docs/spec.md 6.2, step 4): one IEEE binary32 rounding
//! (nearest, ties to even; gradual underflow; overflow to Inf), an exact zero sum `+0`, a
//! zero `V` or a non-finite `acc` leaving `acc` unchanged.
//!
//! Pipeline ([`FpAccDepth`]; the shallow one: an add presented in cycle `n` lands in `acc`
//! at the end of cycle `n + 3`, so adds are at least [`crate::params::FPACC_SPACING`] cycles
//! apart):
//!
//! - Stage P (deep pipelines only, [`FpAccDepth::pre_norm`]): leading one of `v_mag` and its
//!   normalization, registered before the accumulator is read, so it costs latency but no
//!   add spacing.
//! - Stage A: leading one of `v_mag` (successive halving) and normalization to 40 bits (unless
//!   stage P did it);
//!   `acc` unpacked into a 40-bit significand (`sig << 16`); both exponents as `X`, the
//!   exponent of the significand's last bit plus [`XOFF`]; the operand with the larger `X`
//!   is "big", the other one is shifted right by the difference with [`G`] guard bits and
//!   the lost bits jammed into bit 0 (sticky).
//! - Stage B: sum and both differences side by side (the comparison only selects), leading
//!   one of the result, sign. A deep pipeline ([`FpAccDepth::split_add`]) registers the
//!   selected magnitude between the add and the leading-one search: one more cycle between
//!   reading and writing `acc`, so adds are one cycle further apart.
//! - Stage C: one left shift that normalizes a normal result (leading one to bit 43) or
//!   places a subnormal one (its `2^-149` bit to bit 20); the exponent field minus one.
//! - Stage D: round to nearest even at bit 20, exponent assembly by addition (a carry out of
//!   the significand moves into the field), overflow to Inf, sign; written into `acc`.
//!
//! Why the jammed sticky bit is exact: bits are lost only when the exponent difference
//! exceeds `G`, and then the result's rounding position lies at least two bits above bit 0
//! of the work word (the big operand's last bit is bit `G` or above and the result keeps
//! 24 bits below a leading one at bit 41 or above, or is rounded on the subnormal grid,
//! bit 19 of the work word or above, since the accumulator's own last bit is there).

use rust_hdl::prelude::*;

use super::cb;
use super::prims::{Reg, RegR};

/// Width of a block value's magnitude.
pub(crate) const VW: usize = 40;
/// Width of a block value's biased exponent.
pub(crate) const EW: usize = 10;
/// Bias of `v_exp`: the block value's last bit has weight `2^(v_exp - VOFF)`.
pub(crate) const VOFF: u64 = 512;
/// Guard bits below an aligned significand.
const G: u64 = 3;
/// Width of an aligned significand.
const AW: usize = 43;
/// Width of the sum (one carry bit above `AW`).
const MW: usize = 44;
/// Width of the internal exponent `X`.
const XW: usize = 12;
/// Offset of `X`: a significand whose last bit weighs `2^k` has `X = k + XOFF`.
const XOFF: u64 = 1024;
/// Width of leading-one indices and shift amounts (0 ..= 44).
const LW: usize = 6;
/// Width of the assembled word before the overflow test.
const WW: usize = 40;

/// The pipeline depth of an [`FpAcc`]: which optional stages it has (module doc). Fewer
/// stages mean fewer cycles between adds; more stages a shorter clock period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpAccDepth {
    /// Stage P: the block value normalized in a cycle of its own before `acc` is read.
    pub pre_norm: bool,
    /// Stage B split into the add and the leading-one search.
    pub split_add: bool,
}

impl FpAccDepth {
    /// Four stages, one add per [`crate::params::FPACC_SPACING`] cycles: what an
    /// accumulator fed once per cycle through banks wants (each stage costs a bank).
    pub const SHALLOW: FpAccDepth = FpAccDepth {
        pre_norm: false,
        split_add: false,
    };
    /// Six stages: for an accumulator fed once per block (the HIF tile), where the spacing
    /// is free up to the block length.
    pub const DEEP: FpAccDepth = FpAccDepth {
        pre_norm: true,
        split_add: true,
    };

    /// Fewest cycles between two adds (into one bank): from the cycle an add reads `acc`
    /// to the one after it writes it.
    pub const fn spacing(self) -> u32 {
        crate::params::FPACC_SPACING + self.split_add as u32
    }

    /// Cycles from an add's presentation to the first cycle its result is on `acc`.
    pub const fn latency(self) -> u32 {
        self.spacing() + self.pre_norm as u32
    }
}

/// The FP32 block accumulator (see the module doc). Invariants: adds are at least
/// [`FpAccDepth::spacing`] cycles apart, and no `clear` or `nan` while an add is in flight.
#[derive(LogicBlock)]
pub struct FpAcc {
    /// Clock, rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: `acc <- +0`, pipeline emptied.
    pub reset: Signal<In, bool>,
    /// `acc <- +0` at this edge (a new dot product).
    pub clear: Signal<In, bool>,
    /// `acc <- NaN (0x7fc00000)` at this edge (a non-finite activation); sticky until
    /// `clear`, as a NaN `acc` is left unchanged by adds.
    pub nan: Signal<In, bool>,
    /// A block value is presented.
    pub add: Signal<In, bool>,
    /// Its sign.
    pub v_neg: Signal<In, bool>,
    /// Its magnitude (integer).
    pub v_mag: Signal<In, Bits<VW>>,
    /// The biased exponent of the magnitude's last bit.
    pub v_exp: Signal<In, Bits<EW>>,
    /// The bank the add reads and writes (`0 .. banks`; ignored with one bank).
    pub bank: Signal<In, Bits<2>>,
    /// The add starts its bank afresh: it reads `+0` instead of the bank (a new dot
    /// product in an interleaved accumulator, without a `clear` cycle).
    pub fresh: Signal<In, bool>,
    /// The accumulator banks, binary32 bit patterns (one per bank).
    pub acc: Vec<Signal<Out, Bits<32>>>,
    /// An add is in flight (a stage before the last holds one).
    pub busy: Signal<Out, bool>,
    acc_r: Vec<RegR<Bits<32>>>,
    // Stage P registers (none, or one of each with FpAccDepth::pre_norm).
    p_valid: Vec<RegR<bool>>,
    p_neg: Vec<Reg<bool>>,
    p_zero: Vec<Reg<bool>>,
    p_mv: Vec<Reg<Bits<VW>>>,
    p_xv: Vec<Reg<Bits<XW>>>,
    p_bank: Vec<Reg<Bits<2>>>,
    p_fresh: Vec<Reg<bool>>,
    // What stage A sees of the add: the inputs, or stage P's registers.
    n_valid: Signal<Local, bool>,
    n_neg: Signal<Local, bool>,
    n_zero: Signal<Local, bool>,
    n_mv: Signal<Local, Bits<VW>>,
    n_xv: Signal<Local, Bits<XW>>,
    n_bank: Signal<Local, Bits<2>>,
    n_fresh: Signal<Local, bool>,
    // Registers between the halves of stage B (with FpAccDepth::split_add).
    m_valid: Vec<RegR<bool>>,
    m_skip: Vec<Reg<bool>>,
    m_mag: Vec<Reg<Bits<MW>>>,
    m_neg: Vec<Reg<bool>>,
    m_xbig: Vec<Reg<Bits<XW>>>,
    m_bank: Vec<Reg<Bits<2>>>,
    // What the second half of stage B sees.
    h_valid: Signal<Local, bool>,
    h_skip: Signal<Local, bool>,
    h_mag: Signal<Local, Bits<MW>>,
    h_neg: Signal<Local, bool>,
    h_xbig: Signal<Local, Bits<XW>>,
    h_bank: Signal<Local, Bits<2>>,
    a_bank: Reg<Bits<2>>,
    b_bank: Reg<Bits<2>>,
    c_bank: Reg<Bits<2>>,
    acc_in: Signal<Local, Bits<32>>,
    k_b: Vec<Constant<Bits<2>>>,
    // Stage A registers.
    a_valid: RegR<bool>,
    a_skip: Reg<bool>,
    a_big: Reg<Bits<AW>>,
    a_small: Reg<Bits<AW>>,
    a_xbig: Reg<Bits<XW>>,
    a_big_neg: Reg<bool>,
    a_small_neg: Reg<bool>,
    // Stage B registers.
    b_valid: RegR<bool>,
    b_skip: Reg<bool>,
    b_mag: Reg<Bits<MW>>,
    b_lz: Reg<Bits<LW>>,
    b_zero: Reg<bool>,
    b_neg: Reg<bool>,
    b_xbig: Reg<Bits<XW>>,
    // Stage C registers.
    c_valid: RegR<bool>,
    c_skip: Reg<bool>,
    c_m: Reg<Bits<MW>>,
    c_f1: Reg<Bits<XW>>,
    c_zero: Reg<bool>,
    c_neg: Reg<bool>,
    // Stage A locals.
    vx: Signal<Local, Bits<64>>,
    v32: Signal<Local, Bits<32>>,
    v16: Signal<Local, Bits<16>>,
    v8: Signal<Local, Bits<8>>,
    v4: Signal<Local, Bits<4>>,
    v2: Signal<Local, Bits<2>>,
    lzv: Signal<Local, Bits<LW>>,
    v_zero: Signal<Local, bool>,
    mv: Signal<Local, Bits<VW>>,
    xv: Signal<Local, Bits<XW>>,
    ea: Signal<Local, Bits<8>>,
    fa: Signal<Local, Bits<23>>,
    sig_a: Signal<Local, Bits<VW>>,
    ea1: Signal<Local, Bits<XW>>,
    xa: Signal<Local, Bits<XW>>,
    a_neg: Signal<Local, bool>,
    a_spec: Signal<Local, bool>,
    bg: Signal<Local, Bits<VW>>,
    sml: Signal<Local, Bits<VW>>,
    xsmall: Signal<Local, Bits<XW>>,
    xbig: Signal<Local, Bits<XW>>,
    big_neg: Signal<Local, bool>,
    small_neg: Signal<Local, bool>,
    d: Signal<Local, Bits<XW>>,
    dsh: Signal<Local, Bits<LW>>,
    sm_g: Signal<Local, Bits<AW>>,
    sm_sh: Signal<Local, Bits<AW>>,
    back: Signal<Local, Bits<AW>>,
    // Stage B locals.
    big_w: Signal<Local, Bits<MW>>,
    small_w: Signal<Local, Bits<MW>>,
    sum_w: Signal<Local, Bits<MW>>,
    d_bs: Signal<Local, Bits<MW>>,
    d_sb: Signal<Local, Bits<MW>>,
    eff_sub: Signal<Local, bool>,
    dneg: Signal<Local, bool>,
    gt_hi: Signal<Local, bool>,
    eq_hi: Signal<Local, bool>,
    gt_lo: Signal<Local, bool>,
    mag: Signal<Local, Bits<MW>>,
    mx: Signal<Local, Bits<64>>,
    m32: Signal<Local, Bits<32>>,
    m16: Signal<Local, Bits<16>>,
    m8: Signal<Local, Bits<8>>,
    m4: Signal<Local, Bits<4>>,
    m2: Signal<Local, Bits<2>>,
    lz: Signal<Local, Bits<LW>>,
    zero: Signal<Local, bool>,
    neg: Signal<Local, bool>,
    // Stage C locals.
    t: Signal<Local, Bits<XW>>,
    normal: Signal<Local, bool>,
    ls: Signal<Local, Bits<LW>>,
    f1: Signal<Local, Bits<XW>>,
    // Stage D locals.
    q24: Signal<Local, Bits<24>>,
    q: Signal<Local, Bits<WW>>,
    ru: Signal<Local, bool>,
    n: Signal<Local, Bits<WW>>,
    w: Signal<Local, Bits<WW>>,
    res: Signal<Local, Bits<32>>,
    // Constants.
    zero32: Constant<Bits<32>>,
    zero16: Constant<Bits<16>>,
    zero8: Constant<Bits<8>>,
    zero4: Constant<Bits<4>>,
    zero2: Constant<Bits<2>>,
    one_a: Constant<Bits<AW>>,
    zero_m: Constant<Bits<MW>>,
    zero_l: Constant<Bits<LW>>,
    zero_x: Constant<Bits<XW>>,
    k32: Constant<Bits<LW>>,
    k16: Constant<Bits<LW>>,
    k8: Constant<Bits<LW>>,
    k4: Constant<Bits<LW>>,
    k2: Constant<Bits<LW>>,
    k1: Constant<Bits<LW>>,
    top_v: Constant<Bits<LW>>,
    c_xv: Constant<Bits<XW>>,
    ff8: Constant<Bits<8>>,
    hidden: Constant<Bits<VW>>,
    sh16: Constant<Bits<VW>>,
    one_x: Constant<Bits<XW>>,
    c_xa: Constant<Bits<XW>>,
    max_d: Constant<Bits<XW>>,
    g_a: Constant<Bits<AW>>,
    c_norm: Constant<Bits<XW>>,
    top_m: Constant<Bits<LW>>,
    c_sub: Constant<Bits<LW>>,
    q_sh: Constant<Bits<MW>>,
    gmask: Constant<Bits<MW>>,
    smask: Constant<Bits<MW>>,
    one_m: Constant<Bits<MW>>,
    one_w: Constant<Bits<WW>>,
    man_w: Constant<Bits<WW>>,
    inf_w: Constant<Bits<WW>>,
    inf32: Constant<Bits<32>>,
    sign32: Constant<Bits<32>>,
    nan32: Constant<Bits<32>>,
}

impl FpAcc {
    /// The accumulator with one bank.
    pub fn new() -> Self {
        Self::banked(1)
    }

    /// An interleaved accumulator of `banks` binary32 registers sharing one adder pipeline:
    /// with `banks = FPACC_SPACING`, one add per cycle, each bank taking every
    /// `banks`-th add (the conventional way to feed a pipelined adder one product per cycle).
    ///
    /// # Panics
    /// If `banks` is not 1 ..= 4.
    pub fn banked(banks: usize) -> Self {
        Self::with_depth(banks, FpAccDepth::SHALLOW)
    }

    /// The accumulator with `banks` banks and the pipeline `depth`.
    ///
    /// # Panics
    /// If `banks` is not 1 ..= 4.
    pub fn with_depth(banks: usize, depth: FpAccDepth) -> Self {
        assert!((1..=4).contains(&banks), "1 to 4 accumulator banks");
        let pre = depth.pre_norm as usize;
        let mid = depth.split_add as usize;
        // X of a normalized 40-bit V: v_exp - VOFF + (lz - 39) + XOFF.
        let c_xv = XOFF - VOFF - (VW as u64 - 1);
        // X of the accumulator's significand << 16: max(e, 1) - 150 - 16 + XOFF.
        let c_xa = XOFF - 150 - 16;
        // Normal result: top exponent xbig - XOFF - G + lz >= -126.
        let c_norm = XOFF + G - 126;
        // Subnormal result: the 2^-149 bit (bit XOFF + G - 149 - xbig of the sum) to bit 20.
        let c_sub = XOFF + G - 149 - 20;
        // Stage D reads the kept significand at bits 43..20 (a literal in the HDL body).
        assert_eq!(MW - 24, 20);
        assert_eq!(
            MW,
            2 * 22,
            "stage B compares in two 22-bit halves (literals in the HDL body)"
        );
        assert_eq!(c_sub, c_xa, "the accumulator's last bit is the subnormal grid");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            clear: Default::default(),
            nan: Default::default(),
            add: Default::default(),
            v_neg: Default::default(),
            v_mag: Default::default(),
            v_exp: Default::default(),
            bank: Default::default(),
            fresh: Default::default(),
            acc: (0..banks).map(|_| Default::default()).collect(),
            busy: Default::default(),
            acc_r: (0..banks).map(|_| Default::default()).collect(),
            p_valid: (0..pre).map(|_| Default::default()).collect(),
            p_neg: (0..pre).map(|_| Default::default()).collect(),
            p_zero: (0..pre).map(|_| Default::default()).collect(),
            p_mv: (0..pre).map(|_| Default::default()).collect(),
            p_xv: (0..pre).map(|_| Default::default()).collect(),
            p_bank: (0..pre).map(|_| Default::default()).collect(),
            p_fresh: (0..pre).map(|_| Default::default()).collect(),
            n_valid: Default::default(),
            n_neg: Default::default(),
            n_zero: Default::default(),
            n_mv: Default::default(),
            n_xv: Default::default(),
            n_bank: Default::default(),
            n_fresh: Default::default(),
            m_valid: (0..mid).map(|_| Default::default()).collect(),
            m_skip: (0..mid).map(|_| Default::default()).collect(),
            m_mag: (0..mid).map(|_| Default::default()).collect(),
            m_neg: (0..mid).map(|_| Default::default()).collect(),
            m_xbig: (0..mid).map(|_| Default::default()).collect(),
            m_bank: (0..mid).map(|_| Default::default()).collect(),
            h_valid: Default::default(),
            h_skip: Default::default(),
            h_mag: Default::default(),
            h_neg: Default::default(),
            h_xbig: Default::default(),
            h_bank: Default::default(),
            a_bank: Default::default(),
            b_bank: Default::default(),
            c_bank: Default::default(),
            acc_in: Default::default(),
            k_b: (0..banks).map(|i| cb(i as u64)).collect(),
            a_valid: Default::default(),
            a_skip: Default::default(),
            a_big: Default::default(),
            a_small: Default::default(),
            a_xbig: Default::default(),
            a_big_neg: Default::default(),
            a_small_neg: Default::default(),
            b_valid: Default::default(),
            b_skip: Default::default(),
            b_mag: Default::default(),
            b_lz: Default::default(),
            b_zero: Default::default(),
            b_neg: Default::default(),
            b_xbig: Default::default(),
            c_valid: Default::default(),
            c_skip: Default::default(),
            c_m: Default::default(),
            c_f1: Default::default(),
            c_zero: Default::default(),
            c_neg: Default::default(),
            vx: Default::default(),
            v32: Default::default(),
            v16: Default::default(),
            v8: Default::default(),
            v4: Default::default(),
            v2: Default::default(),
            lzv: Default::default(),
            v_zero: Default::default(),
            mv: Default::default(),
            xv: Default::default(),
            ea: Default::default(),
            fa: Default::default(),
            sig_a: Default::default(),
            ea1: Default::default(),
            xa: Default::default(),
            a_neg: Default::default(),
            a_spec: Default::default(),
            bg: Default::default(),
            sml: Default::default(),
            xsmall: Default::default(),
            xbig: Default::default(),
            big_neg: Default::default(),
            small_neg: Default::default(),
            d: Default::default(),
            dsh: Default::default(),
            sm_g: Default::default(),
            sm_sh: Default::default(),
            back: Default::default(),
            big_w: Default::default(),
            small_w: Default::default(),
            sum_w: Default::default(),
            d_bs: Default::default(),
            d_sb: Default::default(),
            eff_sub: Default::default(),
            dneg: Default::default(),
            gt_hi: Default::default(),
            eq_hi: Default::default(),
            gt_lo: Default::default(),
            mag: Default::default(),
            mx: Default::default(),
            m32: Default::default(),
            m16: Default::default(),
            m8: Default::default(),
            m4: Default::default(),
            m2: Default::default(),
            lz: Default::default(),
            zero: Default::default(),
            neg: Default::default(),
            t: Default::default(),
            normal: Default::default(),
            ls: Default::default(),
            f1: Default::default(),
            q24: Default::default(),
            q: Default::default(),
            ru: Default::default(),
            n: Default::default(),
            w: Default::default(),
            res: Default::default(),
            zero32: cb(0),
            zero16: cb(0),
            zero8: cb(0),
            zero4: cb(0),
            zero2: cb(0),
            one_a: cb(1),
            zero_m: cb(0),
            zero_l: cb(0),
            zero_x: cb(0),
            k32: cb(32),
            k16: cb(16),
            k8: cb(8),
            k4: cb(4),
            k2: cb(2),
            k1: cb(1),
            top_v: cb(VW as u64 - 1),
            c_xv: cb(c_xv),
            ff8: cb(0xff),
            hidden: cb(1 << 23),
            sh16: cb(16),
            one_x: cb(1),
            c_xa: cb(c_xa),
            max_d: cb(AW as u64 + 1),
            g_a: cb(G),
            c_norm: cb(c_norm),
            top_m: cb(MW as u64 - 1),
            c_sub: cb(c_sub % (1 << LW)),
            q_sh: cb(MW as u64 - 24),
            gmask: cb(1 << (MW - 25)),
            smask: cb((1 << (MW - 25)) - 1),
            one_m: cb(1),
            one_w: cb(1),
            man_w: cb(23),
            inf_w: cb(0x7f80_0000),
            inf32: cb(0x7f80_0000),
            sign32: cb(0x8000_0000),
            nan32: cb(0x7fc0_0000),
        }
    }
}

impl Default for FpAcc {
    fn default() -> Self {
        Self::new()
    }
}

impl Logic for FpAcc {
    #[hdl_gen]
    fn update(&mut self) {
        for i in 0..self.acc_r.len() {
            self.acc_r[i].clock.next = self.clock.val();
            self.acc_r[i].reset.next = self.reset.val();
        }
        for i in 0..self.p_valid.len() {
            self.p_valid[i].clock.next = self.clock.val();
            self.p_valid[i].reset.next = self.reset.val();
            self.p_neg[i].clock.next = self.clock.val();
            self.p_zero[i].clock.next = self.clock.val();
            self.p_mv[i].clock.next = self.clock.val();
            self.p_xv[i].clock.next = self.clock.val();
            self.p_bank[i].clock.next = self.clock.val();
            self.p_fresh[i].clock.next = self.clock.val();
        }
        for i in 0..self.m_valid.len() {
            self.m_valid[i].clock.next = self.clock.val();
            self.m_valid[i].reset.next = self.reset.val();
            self.m_skip[i].clock.next = self.clock.val();
            self.m_mag[i].clock.next = self.clock.val();
            self.m_neg[i].clock.next = self.clock.val();
            self.m_xbig[i].clock.next = self.clock.val();
            self.m_bank[i].clock.next = self.clock.val();
        }
        self.a_bank.clock.next = self.clock.val();
        self.b_bank.clock.next = self.clock.val();
        self.c_bank.clock.next = self.clock.val();
        self.a_valid.clock.next = self.clock.val();
        self.a_skip.clock.next = self.clock.val();
        self.a_big.clock.next = self.clock.val();
        self.a_small.clock.next = self.clock.val();
        self.a_xbig.clock.next = self.clock.val();
        self.a_big_neg.clock.next = self.clock.val();
        self.a_small_neg.clock.next = self.clock.val();
        self.b_valid.clock.next = self.clock.val();
        self.b_skip.clock.next = self.clock.val();
        self.b_mag.clock.next = self.clock.val();
        self.b_lz.clock.next = self.clock.val();
        self.b_zero.clock.next = self.clock.val();
        self.b_neg.clock.next = self.clock.val();
        self.b_xbig.clock.next = self.clock.val();
        self.c_valid.clock.next = self.clock.val();
        self.c_skip.clock.next = self.clock.val();
        self.c_m.clock.next = self.clock.val();
        self.c_f1.clock.next = self.clock.val();
        self.c_zero.clock.next = self.clock.val();
        self.c_neg.clock.next = self.clock.val();
        self.a_valid.reset.next = self.reset.val();
        self.b_valid.reset.next = self.reset.val();
        self.c_valid.reset.next = self.reset.val();

        // Stage A: the block value's leading one by successive halving (0 for zero).
        self.vx.next = bit_cast::<64, VW>(self.v_mag.val());
        self.lzv.next = self.zero_l.val();
        self.v32.next = self.vx.val().get_bits::<32>(0);
        if self.vx.val().get_bits::<32>(32) != self.zero32.val() {
            self.v32.next = self.vx.val().get_bits::<32>(32);
            self.lzv.next = self.lzv.val() | self.k32.val();
        }
        self.v16.next = self.v32.val().get_bits::<16>(0);
        if self.v32.val().get_bits::<16>(16) != self.zero16.val() {
            self.v16.next = self.v32.val().get_bits::<16>(16);
            self.lzv.next = self.lzv.val() | self.k16.val();
        }
        self.v8.next = self.v16.val().get_bits::<8>(0);
        if self.v16.val().get_bits::<8>(8) != self.zero8.val() {
            self.v8.next = self.v16.val().get_bits::<8>(8);
            self.lzv.next = self.lzv.val() | self.k8.val();
        }
        self.v4.next = self.v8.val().get_bits::<4>(0);
        if self.v8.val().get_bits::<4>(4) != self.zero4.val() {
            self.v4.next = self.v8.val().get_bits::<4>(4);
            self.lzv.next = self.lzv.val() | self.k4.val();
        }
        self.v2.next = self.v4.val().get_bits::<2>(0);
        if self.v4.val().get_bits::<2>(2) != self.zero2.val() {
            self.v2.next = self.v4.val().get_bits::<2>(2);
            self.lzv.next = self.lzv.val() | self.k2.val();
        }
        if self.v2.val().get_bit(1) {
            self.lzv.next = self.lzv.val() | self.k1.val();
        }
        // The last window holds the leading one unless the magnitude is zero.
        self.v_zero.next = self.v2.val() == self.zero2.val();
        self.mv.next = self.v_mag.val() << (self.top_v.val() - self.lzv.val());
        self.xv.next = bit_cast::<XW, EW>(self.v_exp.val()) + bit_cast::<XW, LW>(self.lzv.val()) + self.c_xv.val();
        self.n_valid.next = self.add.val();
        self.n_neg.next = self.v_neg.val();
        self.n_zero.next = self.v_zero.val();
        self.n_mv.next = self.mv.val();
        self.n_xv.next = self.xv.val();
        self.n_bank.next = self.bank.val();
        self.n_fresh.next = self.fresh.val();
        for i in 0..self.p_valid.len() {
            self.p_valid[i].d.next = self.add.val() && !self.clear.val() && !self.nan.val();
            self.p_neg[i].d.next = self.v_neg.val();
            self.p_zero[i].d.next = self.v_zero.val();
            self.p_mv[i].d.next = self.mv.val();
            self.p_xv[i].d.next = self.xv.val();
            self.p_bank[i].d.next = self.bank.val();
            self.p_fresh[i].d.next = self.fresh.val();
            self.n_valid.next = self.p_valid[i].q.val();
            self.n_neg.next = self.p_neg[i].q.val();
            self.n_zero.next = self.p_zero[i].q.val();
            self.n_mv.next = self.p_mv[i].q.val();
            self.n_xv.next = self.p_xv[i].q.val();
            self.n_bank.next = self.p_bank[i].q.val();
            self.n_fresh.next = self.p_fresh[i].q.val();
        }
        // The bank's value (+0 for a fresh add), unpacked: significand << 16,
        // X = max(e, 1) + c_xa.
        self.acc_in.next = self.acc_r[0].q.val();
        for i in 0..self.acc_r.len() {
            if self.n_bank.val() == self.k_b[i].val() {
                self.acc_in.next = self.acc_r[i].q.val();
            }
        }
        if self.n_fresh.val() {
            self.acc_in.next = self.zero32.val();
        }
        self.ea.next = self.acc_in.val().get_bits::<8>(23);
        self.a_neg.next = self.acc_in.val().get_bit(31);
        self.a_spec.next = self.ea.val() == self.ff8.val();
        self.fa.next = self.acc_in.val().get_bits::<23>(0);
        self.sig_a.next = bit_cast::<VW, 23>(self.fa.val());
        self.ea1.next = bit_cast::<XW, 8>(self.ea.val());
        if self.ea.val() == self.zero8.val() {
            self.ea1.next = self.one_x.val();
        } else {
            self.sig_a.next = self.sig_a.val() | self.hidden.val();
        }
        self.xa.next = self.ea1.val() + self.c_xa.val();
        // Swap: the operand with the larger X is big.
        self.bg.next = self.sig_a.val() << self.sh16.val();
        self.xbig.next = self.xa.val();
        self.big_neg.next = self.a_neg.val();
        self.sml.next = self.n_mv.val();
        self.xsmall.next = self.n_xv.val();
        self.small_neg.next = self.n_neg.val();
        if self.n_xv.val() > self.xa.val() {
            self.bg.next = self.n_mv.val();
            self.xbig.next = self.n_xv.val();
            self.big_neg.next = self.n_neg.val();
            self.sml.next = self.sig_a.val() << self.sh16.val();
            self.xsmall.next = self.xa.val();
            self.small_neg.next = self.a_neg.val();
        }
        // Align the small one right with G guard bits; lost bits jammed into bit 0.
        self.d.next = self.xbig.val() - self.xsmall.val();
        self.dsh.next = self.d.val().get_bits::<LW>(0);
        if self.d.val() > self.max_d.val() {
            self.dsh.next = self.max_d.val().get_bits::<LW>(0);
        }
        self.sm_g.next = bit_cast::<AW, VW>(self.sml.val()) << self.g_a.val();
        self.sm_sh.next = self.sm_g.val() >> self.dsh.val();
        self.back.next = self.sm_sh.val() << self.dsh.val();
        self.a_small.d.next = self.sm_sh.val();
        if self.back.val() != self.sm_g.val() {
            self.a_small.d.next = self.sm_sh.val() | self.one_a.val();
        }
        self.a_valid.d.next = self.n_valid.val() && !self.clear.val() && !self.nan.val();
        // A zero value leaves its bank, unless the add is fresh (the bank becomes +0).
        self.a_skip.d.next = (self.n_zero.val() && !self.n_fresh.val()) || self.a_spec.val();
        self.a_bank.d.next = self.n_bank.val();
        self.a_big.d.next = bit_cast::<AW, VW>(self.bg.val()) << self.g_a.val();
        self.a_xbig.d.next = self.xbig.val();
        self.a_big_neg.d.next = self.big_neg.val();
        self.a_small_neg.d.next = self.small_neg.val();

        // Stage B: sum and both differences side by side, leading one, sign.
        self.big_w.next = bit_cast::<MW, AW>(self.a_big.q.val());
        self.small_w.next = bit_cast::<MW, AW>(self.a_small.q.val());
        self.eff_sub.next = self.a_big_neg.q.val() != self.a_small_neg.q.val();
        // small > big from two half-width comparisons side by side: the selection below
        // waits for it, so it should not wait for a 44-bit borrow chain.
        self.gt_hi.next = self.small_w.val().get_bits::<22>(22) > self.big_w.val().get_bits::<22>(22);
        self.eq_hi.next = self.small_w.val().get_bits::<22>(22) == self.big_w.val().get_bits::<22>(22);
        self.gt_lo.next = self.small_w.val().get_bits::<22>(0) > self.big_w.val().get_bits::<22>(0);
        self.dneg.next = self.gt_hi.val() || (self.eq_hi.val() && self.gt_lo.val());
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
        // The sign of the larger magnitude (an exact zero is made +0 below).
        self.neg.next = self.a_big_neg.q.val();
        if self.dneg.val() {
            self.neg.next = self.a_small_neg.q.val();
        }
        self.h_valid.next = self.a_valid.q.val();
        self.h_skip.next = self.a_skip.q.val();
        self.h_mag.next = self.mag.val();
        self.h_neg.next = self.neg.val();
        self.h_xbig.next = self.a_xbig.q.val();
        self.h_bank.next = self.a_bank.q.val();
        for i in 0..self.m_valid.len() {
            self.m_valid[i].d.next = self.a_valid.q.val();
            self.m_skip[i].d.next = self.a_skip.q.val();
            self.m_mag[i].d.next = self.mag.val();
            self.m_neg[i].d.next = self.neg.val();
            self.m_xbig[i].d.next = self.a_xbig.q.val();
            self.m_bank[i].d.next = self.a_bank.q.val();
            self.h_valid.next = self.m_valid[i].q.val();
            self.h_skip.next = self.m_skip[i].q.val();
            self.h_mag.next = self.m_mag[i].q.val();
            self.h_neg.next = self.m_neg[i].q.val();
            self.h_xbig.next = self.m_xbig[i].q.val();
            self.h_bank.next = self.m_bank[i].q.val();
        }
        self.mx.next = bit_cast::<64, MW>(self.h_mag.val());
        self.lz.next = self.zero_l.val();
        self.m32.next = self.mx.val().get_bits::<32>(0);
        if self.mx.val().get_bits::<32>(32) != self.zero32.val() {
            self.m32.next = self.mx.val().get_bits::<32>(32);
            self.lz.next = self.lz.val() | self.k32.val();
        }
        self.m16.next = self.m32.val().get_bits::<16>(0);
        if self.m32.val().get_bits::<16>(16) != self.zero16.val() {
            self.m16.next = self.m32.val().get_bits::<16>(16);
            self.lz.next = self.lz.val() | self.k16.val();
        }
        self.m8.next = self.m16.val().get_bits::<8>(0);
        if self.m16.val().get_bits::<8>(8) != self.zero8.val() {
            self.m8.next = self.m16.val().get_bits::<8>(8);
            self.lz.next = self.lz.val() | self.k8.val();
        }
        self.m4.next = self.m8.val().get_bits::<4>(0);
        if self.m8.val().get_bits::<4>(4) != self.zero4.val() {
            self.m4.next = self.m8.val().get_bits::<4>(4);
            self.lz.next = self.lz.val() | self.k4.val();
        }
        self.m2.next = self.m4.val().get_bits::<2>(0);
        if self.m4.val().get_bits::<2>(2) != self.zero2.val() {
            self.m2.next = self.m4.val().get_bits::<2>(2);
            self.lz.next = self.lz.val() | self.k2.val();
        }
        if self.m2.val().get_bit(1) {
            self.lz.next = self.lz.val() | self.k1.val();
        }
        self.zero.next = self.m2.val() == self.zero2.val();
        self.b_valid.d.next = self.h_valid.val();
        self.b_skip.d.next = self.h_skip.val();
        self.b_mag.d.next = self.h_mag.val();
        self.b_lz.d.next = self.lz.val();
        self.b_zero.d.next = self.zero.val();
        // An exact zero is +0.
        self.b_neg.d.next = self.h_neg.val() && !self.zero.val();
        self.b_xbig.d.next = self.h_xbig.val();
        self.b_bank.d.next = self.h_bank.val();

        // Stage C: normalize (leading one to bit MW - 1) or place a subnormal (its 2^-149
        // bit to bit 20); the exponent field minus one (0 for a subnormal).
        self.t.next = self.b_xbig.q.val() + bit_cast::<XW, LW>(self.b_lz.q.val());
        self.normal.next = self.t.val() >= self.c_norm.val();
        self.ls.next = self.top_m.val() - self.b_lz.q.val();
        self.f1.next = self.t.val() - self.c_norm.val();
        if !self.normal.val() {
            // xbig - c_sub lies in 1 ..= 42: computed modulo 2^LW.
            self.ls.next = self.b_xbig.q.val().get_bits::<LW>(0) - self.c_sub.val();
            self.f1.next = self.zero_x.val();
        }
        self.c_valid.d.next = self.b_valid.q.val();
        self.c_skip.d.next = self.b_skip.q.val();
        self.c_m.d.next = self.b_mag.q.val() << self.ls.val();
        self.c_f1.d.next = self.f1.val();
        self.c_zero.d.next = self.b_zero.q.val();
        self.c_neg.d.next = self.b_neg.q.val();
        self.c_bank.d.next = self.b_bank.q.val();

        // Stage D: round to nearest even at bit 20, assemble, overflow to Inf, sign.
        self.q24.next = self.c_m.q.val().get_bits::<24>(20);
        self.q.next = bit_cast::<WW, 24>(self.q24.val());
        self.ru.next = ((self.c_m.q.val() & self.gmask.val()) != self.zero_m.val())
            && (((self.c_m.q.val() & self.smask.val()) != self.zero_m.val())
                || ((self.c_m.q.val() & (self.one_m.val() << self.q_sh.val())) != self.zero_m.val()));
        self.n.next = self.q.val();
        if self.ru.val() {
            self.n.next = self.q.val() + self.one_w.val();
        }
        self.w.next = (bit_cast::<WW, XW>(self.c_f1.q.val()) << self.man_w.val()) + self.n.val();
        self.res.next = self.w.val().get_bits::<32>(0);
        if self.w.val() >= self.inf_w.val() {
            self.res.next = self.inf32.val();
        }
        if self.c_neg.q.val() {
            self.res.next = self.res.val() | self.sign32.val();
        }
        if self.c_zero.q.val() {
            self.res.next = self.zero32.val();
        }
        for i in 0..self.acc_r.len() {
            self.acc_r[i].d.next = self.acc_r[i].q.val();
            if self.c_valid.q.val() && !self.c_skip.q.val() && (self.c_bank.q.val() == self.k_b[i].val()) {
                self.acc_r[i].d.next = self.res.val();
            }
            if self.nan.val() {
                self.acc_r[i].d.next = self.nan32.val();
            }
            if self.clear.val() {
                self.acc_r[i].d.next = self.zero32.val();
            }
            self.acc[i].next = self.acc_r[i].q.val();
        }
        self.busy.next = self.a_valid.q.val() || self.b_valid.q.val() || self.c_valid.q.val();
        for i in 0..self.p_valid.len() {
            self.busy.next = self.busy.val() || self.p_valid[i].q.val();
        }
        for i in 0..self.m_valid.len() {
            self.busy.next = self.busy.val() || self.m_valid[i].q.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::add_exact;

    use crate::rng::XorShift as Rng;

    fn settle(u: &mut FpAcc) {
        assert!(simulate(u, 1000), "rust-hdl simulation did not settle");
    }

    fn edge(u: &mut FpAcc) {
        u.clock.next = Clock { clk: true };
        settle(u);
        u.clock.next = Clock { clk: false };
        settle(u);
    }

    /// One add: presents the value for a cycle, then idles until it has landed; returns the
    /// accumulator.
    fn add(u: &mut FpAcc, neg: bool, mag: u64, exp: u64) -> u32 {
        let latency = depth_of(u).latency() as usize;
        u.add.next = true;
        u.v_neg.next = neg;
        u.v_mag.next = mag.into();
        u.v_exp.next = exp.into();
        settle(u);
        edge(u);
        u.add.next = false;
        settle(u);
        for _ in 1..latency {
            edge(u);
        }
        assert!(!u.busy.val());
        u.acc[0].val().to_u64() as u32
    }

    fn control(u: &mut FpAcc, clear: bool, nan: bool) {
        u.clear.next = clear;
        u.nan.next = nan;
        settle(u);
        edge(u);
        u.clear.next = false;
        u.nan.next = false;
        settle(u);
    }

    /// A block value whose top lies near the accumulator's (cancellations, ties, carries),
    /// or anywhere in range.
    fn value(r: &mut Rng, acc: f32) -> (bool, u64, u64) {
        let bits = match r.below(6) {
            0 => 0,
            1 => 1 + r.below(3),
            2 => 24 + r.below(3),
            _ => 1 + r.below(VW as u64),
        };
        let mut mag = if bits == 0 {
            0
        } else {
            (r.next() | 1 << 63) >> (64 - bits)
        };
        if r.below(4) == 0 && bits > 2 {
            // A run of zeros or ones below the top: ties and exact halves.
            let k = r.below(bits - 1);
            mag = if r.below(2) == 0 {
                mag >> k << k
            } else {
                mag | ((1 << k) - 1)
            };
        }
        let exp = if acc != 0.0 && acc.is_finite() && r.below(3) != 0 {
            // Align the tops within a few bits: top(acc) = floor(log2 |acc|).
            let ta = (acc.abs().to_bits() >> 23) as i64 - 127;
            let want = ta - bits as i64 + 1 + r.below(7) as i64 - 3;
            (want + VOFF as i64).clamp(0, (1 << EW) - 1) as u64
        } else {
            r.below(1 << EW)
        };
        (r.below(2) == 1, mag, exp)
    }

    /// The pipeline depth `u` was built with, from its optional stages.
    fn depth_of(u: &FpAcc) -> FpAccDepth {
        FpAccDepth {
            pre_norm: !u.p_valid.is_empty(),
            split_add: !u.m_valid.is_empty(),
        }
    }

    /// Every pipeline depth, in a fresh accumulator.
    fn depths() -> impl Iterator<Item = (FpAccDepth, FpAcc)> {
        let all = [FpAccDepth::SHALLOW, FpAccDepth::DEEP];
        all.into_iter().map(|d| {
            let mut u = FpAcc::with_depth(1, d);
            u.connect_all();
            (d, u)
        })
    }

    #[test]
    fn latency_is_what_the_depth_says() {
        for (d, u) in depths() {
            assert_eq!(depth_of(&u), d);
            let stages = 4 + u.p_valid.len() + u.m_valid.len();
            assert_eq!(d.latency() as usize, stages, "{d:?}");
            assert_eq!(d.spacing() as usize, 4 + u.m_valid.len(), "{d:?}");
        }
    }

    #[test]
    fn random_adds_match_the_golden_rounding() {
        for (_, u) in depths() {
            random_adds(u);
        }
    }

    fn random_adds(mut u: FpAcc) {
        u.reset.next = true;
        settle(&mut u);
        edge(&mut u);
        u.reset.next = false;
        settle(&mut u);
        let mut r = Rng(0x5eed_f00d_0000_0001);
        let mut checked = 0;
        for row in 0..1000 {
            control(&mut u, true, false);
            let mut acc = 0f32;
            let nan_at = (row % 50 == 7).then(|| r.below(8) as usize);
            for k in 0..12 {
                if nan_at == Some(k) {
                    control(&mut u, false, true);
                    acc = f32::from_bits(crate::tile::ROW_NAN);
                }
                let (neg, mag, exp) = value(&mut r, acc);
                let got = add(&mut u, neg, mag, exp);
                let v = if neg { -(mag as i128) } else { mag as i128 };
                acc = add_exact(acc, v, exp as i32 - VOFF as i32);
                assert_eq!(
                    got,
                    acc.to_bits(),
                    "row {row} add {k}: {neg} {mag:#x} 2^{}",
                    exp as i64 - VOFF as i64
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 12000);
    }

    #[test]
    fn directed_edges() {
        for (_, u) in depths() {
            directed(u);
        }
    }

    fn directed(mut u: FpAcc) {
        u.reset.next = true;
        settle(&mut u);
        edge(&mut u);
        u.reset.next = false;
        settle(&mut u);
        let e = |k: i64| (k + VOFF as i64) as u64;
        // 1 + 2^-24 ties to even (1); with a sticky bit far below it rounds up.
        assert_eq!(add(&mut u, false, 1, e(0)), 1f32.to_bits());
        assert_eq!(add(&mut u, false, 1, e(-24)), 1f32.to_bits());
        assert_eq!(
            add(&mut u, false, (1 << 39) + 1, e(-63)),
            (1.0 + f32::EPSILON).to_bits()
        );
        // Exact cancellation to +0, then the smallest subnormal and an underflow to -0.
        assert_eq!(add(&mut u, true, (1 << 23) + 1, e(-23)), 0);
        control(&mut u, true, false);
        assert_eq!(add(&mut u, false, 1, e(-149)), 1);
        control(&mut u, true, false);
        assert_eq!(add(&mut u, true, 1, e(-151)), 0x8000_0000);
        // Overflow to Inf, which stays.
        control(&mut u, true, false);
        assert_eq!(add(&mut u, false, (1 << 40) - 1, e(100)), 0x7f80_0000);
        assert_eq!(add(&mut u, true, (1 << 40) - 1, e(100)), 0x7f80_0000);
        // A zero block leaves the accumulator, NaN is sticky until clear.
        control(&mut u, true, false);
        assert_eq!(add(&mut u, true, 3, e(-1)), (-1.5f32).to_bits());
        assert_eq!(add(&mut u, false, 0, e(0)), (-1.5f32).to_bits());
        control(&mut u, false, true);
        assert_eq!(add(&mut u, false, 1, e(0)), 0x7fc0_0000);
        control(&mut u, true, false);
        assert_eq!(u.acc[0].val().to_u64(), 0);
    }

    /// Verilator agrees with rust-hdl on the widths (the generated Verilog lints clean).
    #[test]
    fn verilog_lints_clean() {
        for (d, u) in depths() {
            lint(d, u);
        }
    }

    fn lint(d: FpAccDepth, u: FpAcc) {
        let v = generate_verilog(&u);
        let dir = std::env::temp_dir().join(format!("sop-fpacc-{}-{}", std::process::id(), d.latency()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("top.v");
        std::fs::write(&f, v).unwrap();
        let vlt = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rtl-out/verilator.vlt");
        let out = std::process::Command::new("verilator")
            .args(["--lint-only", "-Wall", "--top-module", "top"])
            .arg(&vlt)
            .arg(&f)
            .output()
            .expect("verilator (scripts/install-deps installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && text.trim().is_empty(), "{text}");
    }
}
