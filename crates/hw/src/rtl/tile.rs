//! The block dot-product tile (docs/spec.md 6.2, golden model [`crate::tile`]): `R` rows,
//! each the dot product of one weight row (the decode engine's code, selection-bit and
//! block-scale streams) with an activation vector shared by all rows.
//!
//! - [`ActMax`], the activation pre-pass: while an activation vector is written to the
//!   activation memory (outside the tile, as an SRAM would be), it finds each block's
//!   largest exponent field and whether the block holds a non-finite value; the driver stores
//!   both beside the block and presents them again with the block's first weight.
//! - [`ActAlign`] (shared by the rows): shifts each activation to its block's largest
//!   exponent with [`crate::tile::ALIGN_BITS`] fraction bits, truncated toward zero.
//! - [`TileRow`] (one per row): the engine's front (mode, direct minifloat decode, scale
//!   decode), a private copy of the tables, the element `(8 + m) * 2^sh` times the aligned
//!   activation by shifts and adds, the exact block sum, one block-scale multiplication per
//!   block, and the FP32 block accumulator ([`super::fpacc::FpAcc`]).
//!
//! Timing: a weight presented in cycle `t` is in stage 1 (table read, align, decode) in
//! `t`, stage 2 (product, block sum) in `t + 1`, stage 3 (block-scale multiply, exponent)
//! in `t + 2`, and its block's add enters the accumulator in `t + 3`; the row's result
//! appears with `out_valid` in cycle `t + TILE_LATENCY` after the row's last weight
//! (`last`), and the accumulator is cleared in that cycle. Blocks have at least
//! [`TILE_MIN_BLOCK`] weights (the accumulator takes one add per [`TILE_FPACC`]`.spacing()`
//! cycles and needs the cycles after a row's last add to hand over its result) and at most
//! [`TileGeom::max_block`] (the width of the exact block sum).

use rust_hdl::prelude::*;

use super::cb;
use super::engine::EngineFront;
use super::fpacc::{FpAcc, FpAccDepth, EW, VOFF, VW};
use super::mul::ScaleDec;
use super::prims::{Lut, Reg, RegR};
use crate::config::LaneConfig;
use crate::mode::ElementPath;
use crate::params::{direct_exponent, Params, HIF_MANT_SHIFT, SCALE_MAN_ALIGNED};
use crate::tile::{ActFormat, ALIGN_BITS};
use sop_formats::hif::{MANT_EIGHTHS, OCTAVES};

/// Width of an aligned activation's magnitude (an FP16 significand of 11 bits plus
/// [`ALIGN_BITS`]; narrower formats leave the top bits zero).
pub(crate) const AM: usize = 19;
/// Width of one product `(8 + m) * a << sh`.
pub(crate) const QW: usize = 36;
/// Width of the signed block sum (two's complement).
pub(crate) const SWD: usize = 38;
/// The rows' accumulator pipeline: deep, as a row adds once per block (>= [`TILE_MIN_BLOCK`]
/// cycles apart), so its stages cost no throughput.
pub const TILE_FPACC: FpAccDepth = FpAccDepth::DEEP;
/// Cycles from a row's last weight to its result (`out_valid`): three stages, then the
/// accumulator's latency.
pub const TILE_LATENCY: u32 = 3 + TILE_FPACC.latency();
/// Fewest weights in a tile block: a row's adds are a block apart, so a block spans the
/// accumulator's spacing; and the next row's first add is presented only after the clear
/// that follows the previous row's last add has landed (block > latency).
pub const TILE_MIN_BLOCK: u32 = 8;
const _: () = assert!(TILE_MIN_BLOCK >= TILE_FPACC.spacing() && TILE_MIN_BLOCK > TILE_FPACC.latency());
const _: () = assert!(TILE_FPACC.latency() <= 8, "the last-add shift register holds 8 cycles");

/// The numbers a tile is built from, derived from the engine configuration and the
/// activation format (one source for the RTL, the driver and the docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileGeom {
    /// Activation format.
    pub act: ActFormat,
    /// Smallest element exponent of the direct minifloat paths (HIF domain): a direct
    /// element's shift is `E - dmin`.
    pub dmin: u32,
    /// Largest element shift (`OCTAVES - 1` for table entries, the direct paths' span).
    pub sh_max: u32,
    /// Largest aligned activation magnitude.
    pub a_max: u64,
    /// Constant added to `base + emax + sexp` to give the block value's biased exponent.
    pub koff: i64,
    /// Most weights in one block (the exact sum times a scale significand fits [`VW`] bits).
    pub max_block: u32,
}

impl TileGeom {
    /// The geometry of a tile on engine `cfg` with activations in `act`.
    ///
    /// # Panics
    /// If `cfg` is not a HIF engine or a width does not hold.
    pub fn new(cfg: &LaneConfig, act: ActFormat) -> TileGeom {
        assert!(cfg.engine && cfg.lut.hif().is_some(), "a tile is built on a HIF engine");
        let p = Params::new(cfg);
        let (mut dmin, mut dmax) = (u32::MAX, 0);
        for e in ElementPath::ALL {
            if let Some(mf) = e.minifloat() {
                dmin = dmin.min(direct_exponent(&mf, 0, Some(0)));
                dmax = dmax.max(direct_exponent(&mf, (1 << mf.exp_bits) - 1, None));
            }
        }
        let sh_max = (OCTAVES - 1).max(dmax - dmin);
        let (_, mb, bias, _) = act.layout();
        let a_max = ((1u64 << (mb + 1)) - 1) << ALIGN_BITS;
        assert!(a_max < 1 << AM, "aligned activations fit AM bits");
        let m_max = *MANT_EIGHTHS.iter().max().unwrap() as u64;
        let q_max = (a_max * m_max) << sh_max;
        assert!(q_max < 1 << QW, "products fit QW bits");
        let s_max = (1u64 << (SCALE_MAN_ALIGNED + 1)) - 1;
        let max_block = ((1u64 << VW) / (q_max * s_max)).min(1 << 12) as u32;
        let max_block = 1u32 << (31 - max_block.leading_zeros());
        assert!(max_block >= TILE_MIN_BLOCK, "blocks of {TILE_MIN_BLOCK} weights fit");
        assert!(q_max * max_block as u64 * 2 <= 1 << SWD, "block sums fit SWD bits");
        // Element (8 + m) * 2^(E - 127 - 3); scale sig * 2^(sexp - sb); activation
        // a * 2^(emax - bias - mb - ALIGN_BITS); the block value's last bit weighs
        // 2^(v_exp - VOFF).
        let sb = p.xoff as i64 - p.xpad as i64 - 130;
        let koff = VOFF as i64 - (127 + HIF_MANT_SHIFT as i64) - sb - (bias as i64 + mb as i64 + ALIGN_BITS as i64);
        let g = TileGeom {
            act,
            dmin,
            sh_max,
            a_max,
            koff,
            max_block,
        };
        // Every biased exponent the datapath can form lies in EW bits: base 0 ..= 255 (a
        // table's 127 - bias, or dmin), emax 1 ..= 2^eb - 1, sexp 0 ..= 31.
        let (eb, ..) = act.layout();
        let lo = koff + 1;
        let hi = koff + 255 + (1i64 << eb) - 1 + 31;
        assert!(lo >= 0 && hi < 1 << EW, "block exponents fit EW bits ({lo} ..= {hi})");
        g
    }
}

/// The activation pre-pass of one block at a time (see the module doc): `last` marks a
/// block's last activation; one cycle later `out_valid` presents the block's largest
/// exponent field `max(e, 1)` over its non-zero activations (0 for an all-zero block) and
/// whether one of them is not finite.
#[derive(LogicBlock)]
pub struct ActMax {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset: a new block starts.
    pub reset: Signal<In, bool>,
    /// An activation is presented.
    pub valid: Signal<In, bool>,
    /// The activation word (low bits for E4M3).
    pub word: Signal<In, Bits<16>>,
    /// It is the block's last.
    pub last: Signal<In, bool>,
    /// The block's summary is presented.
    pub out_valid: Signal<Out, bool>,
    /// The block's largest exponent field.
    pub out_emax: Signal<Out, Bits<8>>,
    /// The block holds Inf or NaN.
    pub out_nan: Signal<Out, bool>,
    run_emax: RegR<Bits<8>>,
    run_nan: RegR<bool>,
    o_valid: RegR<bool>,
    o_emax: Reg<Bits<8>>,
    o_nan: Reg<bool>,
    cur: Signal<Local, Bits<8>>,
    curn: Signal<Local, bool>,
    nxt: Signal<Local, Bits<8>>,
    nxtn: Signal<Local, bool>,
    dec: ActDec,
    zero8: Constant<Bits<8>>,
}

impl ActMax {
    /// The pre-pass for activations in `fmt`.
    pub fn new(fmt: ActFormat) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid: Default::default(),
            word: Default::default(),
            last: Default::default(),
            out_valid: Default::default(),
            out_emax: Default::default(),
            out_nan: Default::default(),
            run_emax: Default::default(),
            run_nan: Default::default(),
            o_valid: Default::default(),
            o_emax: Default::default(),
            o_nan: Default::default(),
            cur: Default::default(),
            curn: Default::default(),
            nxt: Default::default(),
            nxtn: Default::default(),
            dec: ActDec::new(fmt),
            zero8: cb(0),
        }
    }
}

impl Logic for ActMax {
    #[hdl_gen]
    fn update(&mut self) {
        self.run_emax.clock.next = self.clock.val();
        self.run_nan.clock.next = self.clock.val();
        self.o_valid.clock.next = self.clock.val();
        self.o_emax.clock.next = self.clock.val();
        self.o_nan.clock.next = self.clock.val();
        self.run_emax.reset.next = self.reset.val();
        self.run_nan.reset.next = self.reset.val();
        self.o_valid.reset.next = self.reset.val();
        self.dec.word.next = self.word.val();
        self.cur.next = self.run_emax.q.val();
        self.curn.next = self.run_nan.q.val();
        self.nxt.next = self.cur.val();
        self.nxtn.next = self.curn.val() || self.dec.special.val();
        if !self.dec.zero.val() && !self.dec.special.val() && (self.dec.ef.val() > self.cur.val()) {
            self.nxt.next = self.dec.ef.val();
        }
        self.run_emax.d.next = self.cur.val();
        self.run_nan.d.next = self.curn.val();
        self.o_valid.d.next = self.valid.val() && self.last.val();
        self.o_emax.d.next = self.nxt.val();
        self.o_nan.d.next = self.nxtn.val();
        if self.valid.val() {
            self.run_emax.d.next = self.nxt.val();
            self.run_nan.d.next = self.nxtn.val();
            if self.last.val() {
                self.run_emax.d.next = self.zero8.val();
                self.run_nan.d.next = false;
            }
        }
        self.out_valid.next = self.o_valid.q.val();
        self.out_emax.next = self.o_emax.q.val();
        self.out_nan.next = self.o_nan.q.val();
    }
}

/// An activation word's fields (combinational): sign, significand (hidden bit included),
/// exponent field `max(e, 1)`, zero and special (Inf/NaN) flags.
#[derive(LogicBlock)]
pub struct ActDec {
    /// The word.
    pub word: Signal<In, Bits<16>>,
    /// Negative.
    pub neg: Signal<Out, bool>,
    /// Significand.
    pub sig: Signal<Out, Bits<16>>,
    /// `max(e, 1)`.
    pub ef: Signal<Out, Bits<8>>,
    /// Zero significand.
    pub zero: Signal<Out, bool>,
    /// Inf or NaN.
    pub special: Signal<Out, bool>,
    e: Signal<Local, Bits<16>>,
    m: Signal<Local, Bits<16>>,
    sign_mask: Constant<Bits<16>>,
    man_shift: Constant<Bits<16>>,
    exp_mask: Constant<Bits<16>>,
    man_mask: Constant<Bits<16>>,
    hidden: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    one8: Constant<Bits<8>>,
    ieee: Constant<bool>,
}

impl ActDec {
    /// The decoder of `fmt`.
    pub fn new(fmt: ActFormat) -> Self {
        let (eb, mb, _, ieee) = fmt.layout();
        Self {
            word: Default::default(),
            neg: Default::default(),
            sig: Default::default(),
            ef: Default::default(),
            zero: Default::default(),
            special: Default::default(),
            e: Default::default(),
            m: Default::default(),
            sign_mask: cb(1u64 << (eb + mb)),
            man_shift: cb(mb as u64),
            exp_mask: cb((1u64 << eb) - 1),
            man_mask: cb((1u64 << mb) - 1),
            hidden: cb(1u64 << mb),
            zero16: cb(0),
            one8: cb(1),
            ieee: Constant::new(ieee),
        }
    }
}

impl Logic for ActDec {
    #[hdl_gen]
    fn update(&mut self) {
        self.neg.next = (self.word.val() & self.sign_mask.val()) != self.zero16.val();
        self.e.next = (self.word.val() >> self.man_shift.val()) & self.exp_mask.val();
        self.m.next = self.word.val() & self.man_mask.val();
        self.zero.next = (self.e.val() == self.zero16.val()) && (self.m.val() == self.zero16.val());
        self.special.next = self.e.val() == self.exp_mask.val();
        if !self.ieee.val() {
            self.special.next = (self.e.val() == self.exp_mask.val()) && (self.m.val() == self.man_mask.val());
        }
        self.sig.next = self.m.val() | self.hidden.val();
        self.ef.next = self.e.val().get_bits::<8>(0);
        if self.e.val() == self.zero16.val() {
            self.sig.next = self.m.val();
            self.ef.next = self.one8.val();
        }
    }
}

/// The shared aligner (stage 1): the activation of this cycle's weight shifted to its
/// block's largest exponent (`emax`, presented with `block_start`, kept for the block) with
/// [`ALIGN_BITS`] fraction bits, truncated toward zero; registered with the block's `emax`
/// and non-finite flag.
#[derive(LogicBlock)]
pub struct ActAlign {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, bool>,
    /// First weight of a block: `emax` and `nan` are presented.
    pub block_start: Signal<In, bool>,
    /// The activation word of this cycle's weight.
    pub word: Signal<In, Bits<16>>,
    /// The block's largest exponent field (from [`ActMax`]).
    pub emax: Signal<In, Bits<8>>,
    /// The block holds Inf or NaN (from [`ActMax`]).
    pub nan: Signal<In, bool>,
    /// Stage 1 output: aligned magnitude.
    pub a_mag: Signal<Out, Bits<AM>>,
    /// Stage 1 output: sign.
    pub a_neg: Signal<Out, bool>,
    /// Stage 1 output: the block's `emax`.
    pub q_emax: Signal<Out, Bits<8>>,
    /// Stage 1 output: the block's non-finite flag.
    pub q_nan: Signal<Out, bool>,
    blk_emax: RegR<Bits<8>>,
    blk_nan: RegR<bool>,
    r_mag: Reg<Bits<AM>>,
    r_neg: Reg<bool>,
    r_emax: Reg<Bits<8>>,
    r_nan: Reg<bool>,
    eff_emax: Signal<Local, Bits<8>>,
    eff_nan: Signal<Local, bool>,
    d: Signal<Local, Bits<8>>,
    wide: Signal<Local, Bits<AM>>,
    dec: ActDec,
    abits: Constant<Bits<AM>>,
    d_max: Constant<Bits<8>>,
    zero_a: Constant<Bits<AM>>,
}

impl ActAlign {
    /// The aligner for activations in `fmt`.
    pub fn new(fmt: ActFormat) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            block_start: Default::default(),
            word: Default::default(),
            emax: Default::default(),
            nan: Default::default(),
            a_mag: Default::default(),
            a_neg: Default::default(),
            q_emax: Default::default(),
            q_nan: Default::default(),
            blk_emax: Default::default(),
            blk_nan: Default::default(),
            r_mag: Default::default(),
            r_neg: Default::default(),
            r_emax: Default::default(),
            r_nan: Default::default(),
            eff_emax: Default::default(),
            eff_nan: Default::default(),
            d: Default::default(),
            wide: Default::default(),
            dec: ActDec::new(fmt),
            abits: cb(ALIGN_BITS as u64),
            d_max: cb(AM as u64),
            zero_a: cb(0),
        }
    }
}

impl Logic for ActAlign {
    #[hdl_gen]
    fn update(&mut self) {
        self.blk_emax.clock.next = self.clock.val();
        self.blk_nan.clock.next = self.clock.val();
        self.r_mag.clock.next = self.clock.val();
        self.r_neg.clock.next = self.clock.val();
        self.r_emax.clock.next = self.clock.val();
        self.r_nan.clock.next = self.clock.val();
        self.blk_emax.reset.next = self.reset.val();
        self.blk_nan.reset.next = self.reset.val();
        self.eff_emax.next = self.blk_emax.q.val();
        self.eff_nan.next = self.blk_nan.q.val();
        if self.block_start.val() {
            self.eff_emax.next = self.emax.val();
            self.eff_nan.next = self.nan.val();
        }
        self.blk_emax.d.next = self.eff_emax.val();
        self.blk_nan.d.next = self.eff_nan.val();
        self.dec.word.next = self.word.val();
        // emax >= ef for every non-zero activation of the block; a zero one has sig 0.
        self.d.next = self.eff_emax.val() - self.dec.ef.val();
        self.wide.next = bit_cast::<AM, 16>(self.dec.sig.val()) << self.abits.val();
        // A zero or non-finite activation contributes 0 (a non-finite one makes the row NaN).
        if self.dec.zero.val()
            || self.dec.special.val()
            || (self.d.val() >= self.d_max.val())
            || (self.eff_emax.val() < self.dec.ef.val())
        {
            self.r_mag.d.next = self.zero_a.val();
        } else {
            self.r_mag.d.next = self.wide.val() >> self.d.val();
        }
        self.r_neg.d.next = self.dec.neg.val();
        self.r_emax.d.next = self.eff_emax.val();
        self.r_nan.d.next = self.eff_nan.val();
        self.a_mag.next = self.r_mag.q.val();
        self.a_neg.next = self.r_neg.q.val();
        self.q_emax.next = self.r_emax.q.val();
        self.q_nan.next = self.r_nan.q.val();
    }
}

/// One row of the tile (see the module doc). `C`-bit codes, `A = C + 1` table address
/// bits, `W`-bit HIF table words.
#[derive(LogicBlock)]
pub struct TileRow<const C: usize, const A: usize, const W: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset (pipeline valid bits, block registers, accumulator).
    pub reset: Signal<In, bool>,
    /// A weight is presented.
    pub valid: Signal<In, bool>,
    /// It is a block's first (`scale`, `sel` apply from it on).
    pub block_start: Signal<In, bool>,
    /// It is the row's last.
    pub last: Signal<In, bool>,
    /// Block-scale code (with `block_start`).
    pub scale: Signal<In, Bits<8>>,
    /// Selection bit (with `block_start`).
    pub sel: Signal<In, bool>,
    /// Weight code.
    pub code: Signal<In, Bits<C>>,
    /// Table load: which table.
    pub load_table: Signal<In, bool>,
    /// Table load: address.
    pub load_addr: Signal<In, Bits<C>>,
    /// Table load: word.
    pub load_data: Signal<In, Bits<W>>,
    /// Table load: write enable.
    pub load_we: Signal<In, bool>,
    /// Mode register.
    pub mode: Signal<In, Bits<8>>,
    /// Bias register of table 0.
    pub bias0: Signal<In, Bits<8>>,
    /// Bias register of table 1.
    pub bias1: Signal<In, Bits<8>>,
    /// Stage 1 (from [`ActAlign`]): the aligned activation's magnitude.
    pub a_mag: Signal<In, Bits<AM>>,
    /// Stage 1: its sign.
    pub a_neg: Signal<In, bool>,
    /// Stage 1: the block's `emax`.
    pub a_emax: Signal<In, Bits<8>>,
    /// Stage 1: the block's non-finite flag.
    pub a_nan: Signal<In, bool>,
    /// The row's result is presented (cycle `TILE_LATENCY` after its last weight).
    pub out_valid: Signal<Out, bool>,
    /// The row's result, a binary32 bit pattern (before the tensor scale).
    pub out_acc: Signal<Out, Bits<32>>,
    blk_scale: RegR<Bits<8>>,
    blk_sel: RegR<bool>,
    sdec: ScaleDec,
    front: EngineFront<C>,
    lut: Lut<A, W>,
    // Stage 1 registers.
    s1_valid: RegR<bool>,
    s1_bs: Reg<bool>,
    s1_last: Reg<bool>,
    s1_sig: Reg<Bits<8>>,
    s1_exp: Reg<Bits<8>>,
    s1_sneg: Reg<bool>,
    s1_szero: Reg<bool>,
    s1_bias: Reg<Bits<8>>,
    s1_dneg: Reg<bool>,
    s1_dm: Reg<Bits<8>>,
    s1_de: Reg<Bits<8>>,
    s1_dzero: Reg<bool>,
    s1_islut: Reg<bool>,
    // Stage 2 registers: the running block sum and its block's constants; the finished
    // block handed to stage 3.
    sum: Reg<Bits<SWD>>,
    cur_base: Reg<Bits<8>>,
    cur_sig: Reg<Bits<8>>,
    cur_exp: Reg<Bits<8>>,
    cur_sneg: Reg<bool>,
    cur_szero: Reg<bool>,
    cur_emax: Reg<Bits<8>>,
    cur_nan: Reg<bool>,
    cur_open: RegR<bool>,
    d_valid: RegR<bool>,
    d_last: Reg<bool>,
    d_sum: Reg<Bits<SWD>>,
    d_base: Reg<Bits<8>>,
    d_sig: Reg<Bits<8>>,
    d_exp: Reg<Bits<8>>,
    d_sneg: Reg<bool>,
    d_szero: Reg<bool>,
    d_emax: Reg<Bits<8>>,
    d_nan: Reg<bool>,
    // Stage 3 registers: the accumulator's operands.
    e_add: RegR<bool>,
    e_nan: RegR<bool>,
    e_last: RegR<bool>,
    e_neg: Reg<bool>,
    e_mag: Reg<Bits<VW>>,
    e_exp: Reg<Bits<EW>>,
    // Bit k: the row's last add was presented k + 1 cycles ago.
    last_sr: RegR<Bits<8>>,
    fpacc: FpAcc,
    // Locals.
    done: Signal<Local, bool>,
    eff_scale: Signal<Local, Bits<8>>,
    eff_sel: Signal<Local, bool>,
    raddr: Signal<Local, Bits<A>>,
    waddr: Signal<Local, Bits<A>>,
    w8: Signal<Local, Bits<8>>,
    hc: Signal<Local, Bits<8>>,
    hcl: Signal<Local, Bits<8>>,
    he: Signal<Local, Bits<8>>,
    hm: Signal<Local, Bits<8>>,
    en: Signal<Local, bool>,
    em: Signal<Local, Bits<8>>,
    esh: Signal<Local, Bits<8>>,
    ez: Signal<Local, bool>,
    base: Signal<Local, Bits<8>>,
    a: Signal<Local, Bits<QW>>,
    t: Signal<Local, Bits<QW>>,
    t_lo: Signal<Local, Bits<QW>>,
    t_hi: Signal<Local, Bits<QW>>,
    tq: Signal<Local, Bits<QW>>,
    q: Signal<Local, Bits<SWD>>,
    qneg: Signal<Local, bool>,
    acc0: Signal<Local, Bits<SWD>>,
    snew: Signal<Local, Bits<SWD>>,
    nb_base: Signal<Local, Bits<8>>,
    nb_sig: Signal<Local, Bits<8>>,
    nb_exp: Signal<Local, Bits<8>>,
    nb_sneg: Signal<Local, bool>,
    nb_szero: Signal<Local, bool>,
    nb_emax: Signal<Local, Bits<8>>,
    nb_nan: Signal<Local, bool>,
    mag: Signal<Local, Bits<SWD>>,
    sneg_sum: Signal<Local, bool>,
    mv: Signal<Local, Bits<VW>>,
    sf: Signal<Local, Bits<VW>>,
    sf_a: Signal<Local, Bits<VW>>,
    sf_b: Signal<Local, Bits<VW>>,
    sf_c: Signal<Local, Bits<VW>>,
    xe: Signal<Local, Bits<12>>,
    sel_bit: Constant<Bits<A>>,
    sign_mask: Constant<Bits<8>>,
    c_shift: Constant<Bits<8>>,
    e_mask: Constant<Bits<8>>,
    c_mask: Constant<Bits<8>>,
    cl_mask: Constant<Bits<8>>,
    n_mant: Constant<Bits<8>>,
    bias_flip: Constant<Bits<8>>,
    dmin: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    bank0: Constant<Bits<2>>,
    zero_q: Constant<Bits<QW>>,
    zero_v: Constant<Bits<VW>>,
    zero_s: Constant<Bits<SWD>>,
    koff: Constant<Bits<12>>,
    koff_neg: Constant<bool>,
    sh1: Constant<Bits<8>>,
    sh2: Constant<Bits<8>>,
    sh3: Constant<Bits<8>>,
    sh4: Constant<Bits<8>>,
    b0: Constant<Bits<3>>,
    b1: Constant<Bits<3>>,
    b2: Constant<Bits<3>>,
    b3: Constant<Bits<3>>,
    s_top: Constant<Bits<6>>,
    landed: Constant<Bits<3>>,
    one8: Constant<Bits<8>>,
    k_c: Vec<Constant<Bits<8>>>,
    k_m: Vec<Constant<Bits<8>>>,
}

impl<const C: usize, const A: usize, const W: usize> TileRow<C, A, W> {
    /// A row on engine `cfg` with geometry `g`.
    pub fn new(cfg: &LaneConfig, g: &TileGeom) -> Self {
        let p = Params::new(cfg);
        let h = p.hif().expect("a tile has HIF tables");
        assert!(p.engine && p.normalized);
        assert_eq!((p.code_bits as usize, h.bits() as usize, A), (C, W, C + 1));
        let cbits = h.c_bits();
        let cl_bits = 32 - (h.mantissas() - 1).leading_zeros();
        let eighths = 1u32 << HIF_MANT_SHIFT;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid: Default::default(),
            block_start: Default::default(),
            last: Default::default(),
            scale: Default::default(),
            sel: Default::default(),
            code: Default::default(),
            load_table: Default::default(),
            load_addr: Default::default(),
            load_data: Default::default(),
            load_we: Default::default(),
            mode: Default::default(),
            bias0: Default::default(),
            bias1: Default::default(),
            a_mag: Default::default(),
            a_neg: Default::default(),
            a_emax: Default::default(),
            a_nan: Default::default(),
            out_valid: Default::default(),
            out_acc: Default::default(),
            blk_scale: Default::default(),
            blk_sel: Default::default(),
            sdec: ScaleDec::new(&p),
            front: EngineFront::new(cfg),
            lut: Default::default(),
            s1_valid: Default::default(),
            s1_bs: Default::default(),
            s1_last: Default::default(),
            s1_sig: Default::default(),
            s1_exp: Default::default(),
            s1_sneg: Default::default(),
            s1_szero: Default::default(),
            s1_bias: Default::default(),
            s1_dneg: Default::default(),
            s1_dm: Default::default(),
            s1_de: Default::default(),
            s1_dzero: Default::default(),
            s1_islut: Default::default(),
            sum: Default::default(),
            cur_base: Default::default(),
            cur_sig: Default::default(),
            cur_exp: Default::default(),
            cur_sneg: Default::default(),
            cur_szero: Default::default(),
            cur_emax: Default::default(),
            cur_nan: Default::default(),
            cur_open: Default::default(),
            d_valid: Default::default(),
            d_last: Default::default(),
            d_sum: Default::default(),
            d_base: Default::default(),
            d_sig: Default::default(),
            d_exp: Default::default(),
            d_sneg: Default::default(),
            d_szero: Default::default(),
            d_emax: Default::default(),
            d_nan: Default::default(),
            e_add: Default::default(),
            e_nan: Default::default(),
            e_last: Default::default(),
            e_neg: Default::default(),
            e_mag: Default::default(),
            e_exp: Default::default(),
            last_sr: Default::default(),
            fpacc: FpAcc::with_depth(1, TILE_FPACC),
            done: Default::default(),
            eff_scale: Default::default(),
            eff_sel: Default::default(),
            raddr: Default::default(),
            waddr: Default::default(),
            w8: Default::default(),
            hc: Default::default(),
            hcl: Default::default(),
            he: Default::default(),
            hm: Default::default(),
            en: Default::default(),
            em: Default::default(),
            esh: Default::default(),
            ez: Default::default(),
            base: Default::default(),
            a: Default::default(),
            t: Default::default(),
            t_lo: Default::default(),
            t_hi: Default::default(),
            tq: Default::default(),
            q: Default::default(),
            qneg: Default::default(),
            acc0: Default::default(),
            snew: Default::default(),
            nb_base: Default::default(),
            nb_sig: Default::default(),
            nb_exp: Default::default(),
            nb_sneg: Default::default(),
            nb_szero: Default::default(),
            nb_emax: Default::default(),
            nb_nan: Default::default(),
            mag: Default::default(),
            sneg_sum: Default::default(),
            mv: Default::default(),
            sf: Default::default(),
            sf_a: Default::default(),
            sf_b: Default::default(),
            sf_c: Default::default(),
            xe: Default::default(),
            sel_bit: cb(1u64 << C),
            sign_mask: cb(h.word(true, 0, 0) as u64),
            c_shift: cb(cbits as u64),
            e_mask: cb((OCTAVES - 1) as u64),
            c_mask: cb((1u64 << cbits) - 1),
            cl_mask: cb((1u64 << cl_bits) - 1),
            n_mant: cb(h.mantissas() as u64),
            bias_flip: cb((1u64 << (crate::params::SCALE_BITS - 1)) - 1),
            dmin: cb(g.dmin as u64),
            zero8: cb(0),
            bank0: cb(0),
            zero_q: cb(0),
            zero_v: cb(0),
            zero_s: cb(0),
            koff: cb(g.koff.unsigned_abs()),
            koff_neg: Constant::new(g.koff < 0),
            sh1: cb(1),
            sh2: cb(2),
            sh3: cb(3),
            sh4: cb(4),
            b0: cb(0),
            b1: cb(1),
            b2: cb(2),
            b3: cb(3),
            s_top: cb((SWD - 1) as u64),
            landed: cb(TILE_FPACC.latency() as u64 - 1),
            one8: cb(1),
            k_c: (0..h.mantissas()).map(|c| cb(c as u64)).collect(),
            k_m: (0..h.mantissas())
                .map(|c| cb((MANT_EIGHTHS[c as usize] - eighths) as u64))
                .collect(),
        }
    }
}

impl<const C: usize, const A: usize, const W: usize> Logic for TileRow<C, A, W> {
    #[hdl_gen]
    fn update(&mut self) {
        self.blk_scale.clock.next = self.clock.val();
        self.blk_sel.clock.next = self.clock.val();
        self.lut.clock.next = self.clock.val();
        self.s1_valid.clock.next = self.clock.val();
        self.s1_bs.clock.next = self.clock.val();
        self.s1_last.clock.next = self.clock.val();
        self.s1_sig.clock.next = self.clock.val();
        self.s1_exp.clock.next = self.clock.val();
        self.s1_sneg.clock.next = self.clock.val();
        self.s1_szero.clock.next = self.clock.val();
        self.s1_bias.clock.next = self.clock.val();
        self.s1_dneg.clock.next = self.clock.val();
        self.s1_dm.clock.next = self.clock.val();
        self.s1_de.clock.next = self.clock.val();
        self.s1_dzero.clock.next = self.clock.val();
        self.s1_islut.clock.next = self.clock.val();
        self.sum.clock.next = self.clock.val();
        self.cur_base.clock.next = self.clock.val();
        self.cur_sig.clock.next = self.clock.val();
        self.cur_exp.clock.next = self.clock.val();
        self.cur_sneg.clock.next = self.clock.val();
        self.cur_szero.clock.next = self.clock.val();
        self.cur_emax.clock.next = self.clock.val();
        self.cur_nan.clock.next = self.clock.val();
        self.cur_open.clock.next = self.clock.val();
        self.cur_open.reset.next = self.reset.val();
        self.d_valid.clock.next = self.clock.val();
        self.d_last.clock.next = self.clock.val();
        self.d_sum.clock.next = self.clock.val();
        self.d_base.clock.next = self.clock.val();
        self.d_sig.clock.next = self.clock.val();
        self.d_exp.clock.next = self.clock.val();
        self.d_sneg.clock.next = self.clock.val();
        self.d_szero.clock.next = self.clock.val();
        self.d_emax.clock.next = self.clock.val();
        self.d_nan.clock.next = self.clock.val();
        self.e_add.clock.next = self.clock.val();
        self.e_nan.clock.next = self.clock.val();
        self.e_last.clock.next = self.clock.val();
        self.e_neg.clock.next = self.clock.val();
        self.e_mag.clock.next = self.clock.val();
        self.e_exp.clock.next = self.clock.val();
        self.last_sr.clock.next = self.clock.val();
        self.fpacc.clock.next = self.clock.val();
        self.blk_scale.reset.next = self.reset.val();
        self.blk_sel.reset.next = self.reset.val();
        self.s1_valid.reset.next = self.reset.val();
        self.d_valid.reset.next = self.reset.val();
        self.e_add.reset.next = self.reset.val();
        self.e_nan.reset.next = self.reset.val();
        self.e_last.reset.next = self.reset.val();
        self.last_sr.reset.next = self.reset.val();
        self.fpacc.reset.next = self.reset.val();

        // Stage 1: block registers, engine front, table read, scale decode.
        self.eff_scale.next = self.blk_scale.q.val();
        self.eff_sel.next = self.blk_sel.q.val();
        if self.block_start.val() {
            self.eff_scale.next = self.scale.val();
            self.eff_sel.next = self.sel.val();
        }
        self.blk_scale.d.next = self.eff_scale.val();
        self.blk_sel.d.next = self.eff_sel.val();
        self.sdec.code.next = self.eff_scale.val();
        self.front.code.next = self.code.val();
        self.front.mode.next = self.mode.val();
        self.front.scale.next = self.eff_scale.val();
        self.front.usig.next = self.sdec.sig.val();
        self.front.uexp.next = self.sdec.exp.val();
        self.front.uzero.next = false;
        for i in 0..self.sdec.zero.len() {
            self.front.uzero.next = self.sdec.zero[i].val();
        }
        self.raddr.next = bit_cast::<A, C>(self.front.code_m.val());
        if self.eff_sel.val() {
            self.raddr.next = self.raddr.val() | self.sel_bit.val();
        }
        self.waddr.next = bit_cast::<A, C>(self.load_addr.val());
        if self.load_table.val() {
            self.waddr.next = self.waddr.val() | self.sel_bit.val();
        }
        self.lut.raddr.next = self.raddr.val();
        self.lut.waddr.next = self.waddr.val();
        self.lut.wdata.next = self.load_data.val();
        self.lut.we.next = self.load_we.val();
        self.s1_valid.d.next = self.valid.val();
        self.s1_bs.d.next = self.block_start.val();
        self.s1_last.d.next = self.last.val();
        self.s1_sig.d.next = self.front.sig.val();
        self.s1_exp.d.next = self.front.exp.val();
        self.s1_sneg.d.next = self.sdec.neg.val();
        // The engine front's sign: SE4M3 only (UE4M4 is unsigned).
        self.s1_sneg.d.next = self.front.neg.val();
        self.s1_szero.d.next = self.front.szero.val();
        self.s1_bias.d.next = self.bias0.val();
        if self.eff_sel.val() {
            self.s1_bias.d.next = self.bias1.val();
        }
        self.s1_dneg.d.next = self.front.dneg.val();
        self.s1_dm.d.next = self.front.dm.val();
        self.s1_de.d.next = self.front.de.val();
        self.s1_dzero.d.next = self.front.dzero.val();
        self.s1_islut.d.next = self.front.is_lut.val();

        // Stage 2: the element (8 + m) * 2^(base + sh - 130) from the table word or the
        // direct decode, its product with the aligned activation by shifts and adds, and
        // the exact block sum.
        self.w8.next = bit_cast::<8, W>(self.lut.rdata.val());
        self.hc.next = self.w8.val() & self.c_mask.val();
        self.hcl.next = self.hc.val() & self.cl_mask.val();
        self.he.next = (self.w8.val() >> self.c_shift.val()) & self.e_mask.val();
        self.hm.next = self.k_m[0].val();
        for i in 0..self.k_c.len() {
            if self.hcl.val() == self.k_c[i].val() {
                self.hm.next = self.k_m[i].val();
            }
        }
        self.en.next = self.s1_dneg.q.val();
        self.em.next = self.s1_dm.q.val();
        self.esh.next = self.s1_de.q.val() - self.dmin.val();
        self.ez.next = self.s1_dzero.q.val();
        self.base.next = self.dmin.val();
        if self.s1_islut.q.val() {
            self.en.next = (self.w8.val() & self.sign_mask.val()) != self.zero8.val();
            self.em.next = self.hm.val();
            self.esh.next = self.he.val();
            self.ez.next = self.hc.val() >= self.n_mant.val();
            self.base.next = self.s1_bias.q.val() ^ self.bias_flip.val();
        }
        self.a.next = bit_cast::<QW, AM>(self.a_mag.val());
        // Two levels of adders, not a chain of three: stage 2 is a critical path.
        self.t_lo.next = self.a.val() << self.sh3.val();
        if self.em.val().get_bit(self.b0.val().index()) {
            self.t_lo.next = (self.a.val() << self.sh3.val()) + self.a.val();
        }
        self.t_hi.next = self.zero_q.val();
        if self.em.val().get_bit(self.b1.val().index()) {
            self.t_hi.next = self.a.val() << self.sh1.val();
        }
        if self.em.val().get_bit(self.b2.val().index()) {
            self.t_hi.next = self.t_hi.val() + (self.a.val() << self.sh2.val());
        }
        self.t.next = self.t_lo.val() + self.t_hi.val();
        if self.ez.val() {
            self.tq.next = self.zero_q.val();
        } else {
            self.tq.next = self.t.val() << self.esh.val();
        }
        self.q.next = bit_cast::<SWD, QW>(self.tq.val());
        self.qneg.next = self.en.val() ^ self.a_neg.val();
        self.acc0.next = self.sum.q.val();
        if self.s1_bs.q.val() {
            self.acc0.next = self.zero_s.val();
        }
        self.snew.next = self.acc0.val() + self.q.val();
        if self.qneg.val() {
            self.snew.next = self.acc0.val() - self.q.val();
        }
        // This weight's block constants (new at a block start).
        self.nb_base.next = self.cur_base.q.val();
        self.nb_sig.next = self.cur_sig.q.val();
        self.nb_exp.next = self.cur_exp.q.val();
        self.nb_sneg.next = self.cur_sneg.q.val();
        self.nb_szero.next = self.cur_szero.q.val();
        self.nb_emax.next = self.cur_emax.q.val();
        self.nb_nan.next = self.cur_nan.q.val();
        if self.s1_bs.q.val() {
            self.nb_base.next = self.base.val();
            self.nb_sig.next = self.s1_sig.q.val();
            self.nb_exp.next = self.s1_exp.q.val();
            self.nb_sneg.next = self.s1_sneg.q.val();
            self.nb_szero.next = self.s1_szero.q.val();
            self.nb_emax.next = self.a_emax.val();
            self.nb_nan.next = self.a_nan.val();
        }
        self.sum.d.next = self.sum.q.val();
        self.cur_base.d.next = self.cur_base.q.val();
        self.cur_sig.d.next = self.cur_sig.q.val();
        self.cur_exp.d.next = self.cur_exp.q.val();
        self.cur_sneg.d.next = self.cur_sneg.q.val();
        self.cur_szero.d.next = self.cur_szero.q.val();
        self.cur_emax.d.next = self.cur_emax.q.val();
        self.cur_nan.d.next = self.cur_nan.q.val();
        self.cur_open.d.next = self.cur_open.q.val();
        // A block is finished by the next block's start (the old sum and constants) or by
        // the row's last weight (the new ones). Blocks of TILE_MIN_BLOCK weights or more
        // never finish two blocks in one cycle.
        self.d_valid.d.next = false;
        self.d_last.d.next = false;
        self.d_sum.d.next = self.sum.q.val();
        self.d_base.d.next = self.cur_base.q.val();
        self.d_sig.d.next = self.cur_sig.q.val();
        self.d_exp.d.next = self.cur_exp.q.val();
        self.d_sneg.d.next = self.cur_sneg.q.val();
        self.d_szero.d.next = self.cur_szero.q.val();
        self.d_emax.d.next = self.cur_emax.q.val();
        self.d_nan.d.next = self.cur_nan.q.val();
        if self.s1_valid.q.val() {
            self.sum.d.next = self.snew.val();
            self.cur_base.d.next = self.nb_base.val();
            self.cur_sig.d.next = self.nb_sig.val();
            self.cur_exp.d.next = self.nb_exp.val();
            self.cur_sneg.d.next = self.nb_sneg.val();
            self.cur_szero.d.next = self.nb_szero.val();
            self.cur_emax.d.next = self.nb_emax.val();
            self.cur_nan.d.next = self.nb_nan.val();
            self.cur_open.d.next = true;
            // Only a block start that follows a block of the same row finishes one.
            if self.s1_bs.q.val() && self.cur_open.q.val() {
                self.d_valid.d.next = true;
            }
            if self.s1_last.q.val() {
                self.d_valid.d.next = true;
                self.d_last.d.next = true;
                self.d_sum.d.next = self.snew.val();
                self.d_base.d.next = self.nb_base.val();
                self.d_sig.d.next = self.nb_sig.val();
                self.d_exp.d.next = self.nb_exp.val();
                self.d_sneg.d.next = self.nb_sneg.val();
                self.d_szero.d.next = self.nb_szero.val();
                self.d_emax.d.next = self.nb_emax.val();
                self.d_nan.d.next = self.nb_nan.val();
                self.cur_open.d.next = false;
            }
        }

        // Stage 3: |sum| times the scale significand (its top bit set), the exponent, and
        // what the accumulator does with the block.
        self.sneg_sum.next = self.d_sum.q.val().get_bit(self.s_top.val().index());
        self.mag.next = self.d_sum.q.val();
        if self.sneg_sum.val() {
            self.mag.next = self.zero_s.val() - self.d_sum.q.val();
        }
        self.mv.next = bit_cast::<VW, SWD>(self.mag.val());
        // A tree of adders (depth 3), not a chain of four: stage 3 is a critical path.
        self.sf_a.next = self.mv.val() << self.sh4.val();
        if self.d_sig.q.val().get_bit(self.b0.val().index()) {
            self.sf_a.next = (self.mv.val() << self.sh4.val()) + self.mv.val();
        }
        self.sf_b.next = self.zero_v.val();
        if self.d_sig.q.val().get_bit(self.b1.val().index()) {
            self.sf_b.next = self.mv.val() << self.sh1.val();
        }
        if self.d_sig.q.val().get_bit(self.b2.val().index()) {
            self.sf_b.next = self.sf_b.val() + (self.mv.val() << self.sh2.val());
        }
        self.sf_c.next = self.zero_v.val();
        if self.d_sig.q.val().get_bit(self.b3.val().index()) {
            self.sf_c.next = self.mv.val() << self.sh3.val();
        }
        self.sf.next = self.sf_a.val() + self.sf_b.val() + self.sf_c.val();
        self.xe.next = bit_cast::<12, 8>(self.d_base.q.val())
            + bit_cast::<12, 8>(self.d_emax.q.val())
            + bit_cast::<12, 8>(self.d_exp.q.val());
        if self.koff_neg.val() {
            self.xe.next = self.xe.val() - self.koff.val();
        } else {
            self.xe.next = self.xe.val() + self.koff.val();
        }
        self.e_add.d.next = self.d_valid.q.val()
            && !self.d_nan.q.val()
            && !self.d_szero.q.val()
            && (self.d_sum.q.val() != self.zero_s.val());
        self.e_nan.d.next = self.d_valid.q.val() && self.d_nan.q.val();
        self.e_last.d.next = self.d_valid.q.val() && self.d_last.q.val();
        self.e_neg.d.next = self.sneg_sum.val() ^ self.d_sneg.q.val();
        self.e_mag.d.next = self.sf.val();
        self.e_exp.d.next = self.xe.val().get_bits::<EW>(0);

        // Stage 4: the accumulator; a row's result once its last add has landed.
        self.fpacc.add.next = self.e_add.q.val();
        self.fpacc.nan.next = self.e_nan.q.val();
        self.fpacc.v_neg.next = self.e_neg.q.val();
        self.fpacc.v_mag.next = self.e_mag.q.val();
        self.fpacc.v_exp.next = self.e_exp.q.val();
        self.fpacc.bank.next = self.bank0.val();
        self.fpacc.fresh.next = false;
        self.last_sr.d.next = self.last_sr.q.val() << self.one8.val();
        if self.e_last.q.val() {
            self.last_sr.d.next = (self.last_sr.q.val() << self.one8.val()) | self.one8.val();
        }
        self.done.next = self.last_sr.q.val().get_bit(self.landed.val().index());
        self.fpacc.clear.next = self.done.val();
        // Nothing is in flight once the row's last add has landed.
        self.out_valid.next = self.done.val() && !self.fpacc.busy.val();
        self.out_acc.next = self.fpacc.acc[0].val();
    }
}

/// The tile's top: the shared table load port, bias and mode registers, the activation
/// pre-pass, the shared aligner and `R` rows (`R` = the length of `code`). Pure wiring,
/// written by hand as [`super::top::Top`] is.
#[derive(LogicBlock)]
pub struct Tile<const C: usize, const A: usize, const W: usize> {
    /// Clock, rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, bool>,
    /// Table load: which table (also the bias register written).
    pub load_table: Signal<In, bool>,
    /// Table load: address.
    pub load_addr: Signal<In, Bits<C>>,
    /// Table load: word.
    pub load_data: Signal<In, Bits<W>>,
    /// Table load: write enable.
    pub load_we: Signal<In, bool>,
    /// Bias register value.
    pub load_bias: Signal<In, Bits<8>>,
    /// Bias register write enable (table `load_table`).
    pub load_bias_we: Signal<In, bool>,
    /// Mode register value.
    pub load_mode: Signal<In, Bits<8>>,
    /// Mode register write enable.
    pub load_mode_we: Signal<In, bool>,
    /// Pre-pass: an activation is presented.
    pub x_valid: Signal<In, bool>,
    /// Pre-pass: the activation word.
    pub x_word: Signal<In, Bits<16>>,
    /// Pre-pass: the block's last activation.
    pub x_last: Signal<In, bool>,
    /// Pre-pass: a block's summary is presented.
    pub xm_valid: Signal<Out, bool>,
    /// Pre-pass: the block's largest exponent field.
    pub xm_emax: Signal<Out, Bits<8>>,
    /// Pre-pass: the block holds Inf or NaN.
    pub xm_nan: Signal<Out, bool>,
    /// A weight column is presented (one weight per row).
    pub valid: Signal<In, bool>,
    /// First weight of a block (`scale`, `sel`, `emax`, `nan` presented).
    pub block_start: Signal<In, bool>,
    /// Last weight of the rows.
    pub last: Signal<In, bool>,
    /// The activation word of this column.
    pub act: Signal<In, Bits<16>>,
    /// The block's largest exponent field (with `block_start`).
    pub emax: Signal<In, Bits<8>>,
    /// The block holds Inf or NaN (with `block_start`).
    pub nan: Signal<In, bool>,
    /// Per row: block-scale code.
    pub scale: Vec<Signal<In, Bits<8>>>,
    /// Per row: selection bit.
    pub sel: Vec<Signal<In, bool>>,
    /// Per row: weight code.
    pub code: Vec<Signal<In, Bits<C>>>,
    /// The rows' results are presented.
    pub out_valid: Signal<Out, bool>,
    /// Per row: the result (binary32 bit pattern, before the tensor scale).
    pub acc: Vec<Signal<Out, Bits<32>>>,
    bias: super::top::BiasRegs,
    mode: super::top::ModeReg,
    amax: ActMax,
    align: ActAlign,
    rows: Vec<TileRow<C, A, W>>,
}

impl<const C: usize, const A: usize, const W: usize> Tile<C, A, W> {
    /// A tile of `rows` rows on engine `cfg` with geometry `g`.
    pub fn new(cfg: &LaneConfig, g: &TileGeom, rows: usize) -> Self {
        let sigs = |n: usize| (0..n).map(|_| Default::default()).collect::<Vec<_>>();
        Self {
            clock: Default::default(),
            reset: Default::default(),
            load_table: Default::default(),
            load_addr: Default::default(),
            load_data: Default::default(),
            load_we: Default::default(),
            load_bias: Default::default(),
            load_bias_we: Default::default(),
            load_mode: Default::default(),
            load_mode_we: Default::default(),
            x_valid: Default::default(),
            x_word: Default::default(),
            x_last: Default::default(),
            xm_valid: Default::default(),
            xm_emax: Default::default(),
            xm_nan: Default::default(),
            valid: Default::default(),
            block_start: Default::default(),
            last: Default::default(),
            act: Default::default(),
            emax: Default::default(),
            nan: Default::default(),
            scale: (0..rows).map(|_| Default::default()).collect(),
            sel: (0..rows).map(|_| Default::default()).collect(),
            code: (0..rows).map(|_| Default::default()).collect(),
            out_valid: Default::default(),
            acc: sigs(rows),
            bias: Default::default(),
            mode: Default::default(),
            amax: ActMax::new(g.act),
            align: ActAlign::new(g.act),
            rows: (0..rows).map(|_| TileRow::new(cfg, g)).collect(),
        }
    }
}

impl<const C: usize, const A: usize, const W: usize> Logic for Tile<C, A, W> {
    fn update(&mut self) {
        self.bias.clock.next = self.clock.val();
        self.bias.we.next = self.load_bias_we.val();
        self.bias.tsel.next = self.load_table.val();
        self.bias.data.next = self.load_bias.val();
        self.mode.clock.next = self.clock.val();
        self.mode.we.next = self.load_mode_we.val();
        self.mode.data.next = self.load_mode.val();
        self.amax.clock.next = self.clock.val();
        self.amax.reset.next = self.reset.val();
        self.amax.valid.next = self.x_valid.val();
        self.amax.word.next = self.x_word.val();
        self.amax.last.next = self.x_last.val();
        self.xm_valid.next = self.amax.out_valid.val();
        self.xm_emax.next = self.amax.out_emax.val();
        self.xm_nan.next = self.amax.out_nan.val();
        self.align.clock.next = self.clock.val();
        self.align.reset.next = self.reset.val();
        self.align.block_start.next = self.block_start.val();
        self.align.word.next = self.act.val();
        self.align.emax.next = self.emax.val();
        self.align.nan.next = self.nan.val();
        for i in 0..self.rows.len() {
            let r = &mut self.rows[i];
            r.clock.next = self.clock.val();
            r.reset.next = self.reset.val();
            r.valid.next = self.valid.val();
            r.block_start.next = self.block_start.val();
            r.last.next = self.last.val();
            r.scale.next = self.scale[i].val();
            r.sel.next = self.sel[i].val();
            r.code.next = self.code[i].val();
            r.load_table.next = self.load_table.val();
            r.load_addr.next = self.load_addr.val();
            r.load_data.next = self.load_data.val();
            r.load_we.next = self.load_we.val();
            r.mode.next = self.mode.q.val();
            r.bias0.next = self.bias.b0.val();
            r.bias1.next = self.bias.b1.val();
            r.a_mag.next = self.align.a_mag.val();
            r.a_neg.next = self.align.a_neg.val();
            r.a_emax.next = self.align.q_emax.val();
            r.a_nan.next = self.align.q_nan.val();
            self.acc[i].next = r.out_acc.val();
        }
        // The rows run in lockstep: every row's out_valid is the same signal.
        let mut v = true;
        for r in &self.rows {
            v = v && r.out_valid.val();
        }
        self.out_valid.next = v;
    }

    fn connect(&mut self) {
        self.bias.clock.connect();
        self.bias.we.connect();
        self.bias.tsel.connect();
        self.bias.data.connect();
        self.mode.clock.connect();
        self.mode.we.connect();
        self.mode.data.connect();
        self.amax.clock.connect();
        self.amax.reset.connect();
        self.amax.valid.connect();
        self.amax.word.connect();
        self.amax.last.connect();
        self.xm_valid.connect();
        self.xm_emax.connect();
        self.xm_nan.connect();
        self.align.clock.connect();
        self.align.reset.connect();
        self.align.block_start.connect();
        self.align.word.connect();
        self.align.emax.connect();
        self.align.nan.connect();
        for r in &mut self.rows {
            r.clock.connect();
            r.reset.connect();
            r.valid.connect();
            r.block_start.connect();
            r.last.connect();
            r.scale.connect();
            r.sel.connect();
            r.code.connect();
            r.load_table.connect();
            r.load_addr.connect();
            r.load_data.connect();
            r.load_we.connect();
            r.mode.connect();
            r.bias0.connect();
            r.bias1.connect();
            r.a_mag.connect();
            r.a_neg.connect();
            r.a_emax.connect();
            r.a_nan.connect();
        }
        for s in &mut self.acc {
            s.connect();
        }
        self.out_valid.connect();
    }

    fn hdl(&self) -> Verilog {
        use std::fmt::Write as _;
        let mut v = String::from("always @(*) begin\n");
        for (dst, src) in [
            ("bias$clock", "clock"),
            ("bias$we", "load_bias_we"),
            ("bias$tsel", "load_table"),
            ("bias$data", "load_bias"),
            ("mode$clock", "clock"),
            ("mode$we", "load_mode_we"),
            ("mode$data", "load_mode"),
            ("amax$clock", "clock"),
            ("amax$reset", "reset"),
            ("amax$valid", "x_valid"),
            ("amax$word", "x_word"),
            ("amax$last", "x_last"),
            ("xm_valid", "amax$out_valid"),
            ("xm_emax", "amax$out_emax"),
            ("xm_nan", "amax$out_nan"),
            ("align$clock", "clock"),
            ("align$reset", "reset"),
            ("align$block_start", "block_start"),
            ("align$word", "act"),
            ("align$emax", "emax"),
            ("align$nan", "nan"),
        ] {
            writeln!(v, "   {dst} = {src};").unwrap();
        }
        let all: Vec<String> = (0..self.rows.len()).map(|i| format!("rows${i}$out_valid")).collect();
        writeln!(v, "   out_valid = {};", all.join(" & ")).unwrap();
        for i in 0..self.rows.len() {
            for port in [
                "clock",
                "reset",
                "valid",
                "block_start",
                "last",
                "load_table",
                "load_addr",
                "load_data",
                "load_we",
            ] {
                writeln!(v, "   rows${i}${port} = {port};").unwrap();
            }
            for port in ["scale", "sel", "code"] {
                writeln!(v, "   rows${i}${port} = {port}${i};").unwrap();
            }
            for (port, src) in [
                ("mode", "mode$q"),
                ("bias0", "bias$b0"),
                ("bias1", "bias$b1"),
                ("a_mag", "align$a_mag"),
                ("a_neg", "align$a_neg"),
                ("a_emax", "align$q_emax"),
                ("a_nan", "align$q_nan"),
            ] {
                writeln!(v, "   rows${i}${port} = {src};").unwrap();
            }
            writeln!(v, "   acc${i} = rows${i}$out_acc;").unwrap();
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
