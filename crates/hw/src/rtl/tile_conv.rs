//! The conventional dot-product tile, the QoR baseline of [`super::tile`] (docs/spec.md 6.3,
//! golden model [`crate::tile::dot_row_conventional`]): the same ports and protocol, built the
//! way a MAC array behind a decoder is usually built.
//!
//! - Each row decodes its weights to FP16 words with a lane of the FP16-LUT decode engine
//!   ([`super::lane::Lane`], block scale applied per weight, one FP16 rounding).
//! - [`ActDelay`] (shared by the rows) decodes the activation word and delays it by the
//!   lane's latency, so each FP16 weight meets its activation.
//! - [`ConvRow`] multiplies the FP16 significand by the activation's significand with a real
//!   multiplier (exact product), and accumulates every product in FP32: one add per cycle into
//!   an interleaved accumulator of [`CONV_BANKS`] banks sharing one pipelined adder
//!   ([`FpAcc::banked`]; product `i` of a row goes to bank `i mod CONV_BANKS`), then a drain
//!   adder sums the banks in order. Any non-finite weight word or activation makes the row NaN.
//!
//! Timing: a weight presented in cycle `t` leaves its lane in `t + LATENCY`, its product is
//! registered then and enters the banked adder in `t + LATENCY + 1`; the row's last product
//! lands `FPACC_SPACING` cycles later, the banks are captured in the next cycle and the
//! drain adds them one per `FPACC_SPACING` cycles: the result appears [`CONV_LATENCY`]
//! cycles after the row's last weight. The drain holds one row at a time, so rows have at
//! least [`CONV_MIN_COLS`] columns.

use rust_hdl::prelude::*;

use super::cb;
use super::fpacc::{FpAcc, EW, VOFF, VW};
use super::lane::Lane;
use super::prims::{Reg, RegR};
use super::tile::{ActDec, ActMax};
use crate::config::LaneConfig;
use crate::params::{Params, FPACC_SPACING, LATENCY};
use crate::tile::{ActFormat, CONV_BANKS};

/// Cycles of the drain: one add per bank, [`FPACC_SPACING`] cycles apart.
const CONV_DRAIN: u32 = CONV_BANKS as u32 * FPACC_SPACING;
/// Cycles from a row's last weight to its result (`out_valid`): the lane, the product
/// register, the banked adder, the capture cycle and the drain.
pub const CONV_LATENCY: u32 = LATENCY + 1 + FPACC_SPACING + 1 + CONV_DRAIN;
/// Fewest columns of a row: the drain must finish a row before the next row's banks are
/// captured.
pub const CONV_MIN_COLS: u32 = CONV_DRAIN + 1;

/// The activation side shared by the rows: the word decoded ([`ActDec`]) and delayed by the
/// lane latency, with the row's first and last column marks.
#[derive(LogicBlock)]
pub struct ActDelay {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, bool>,
    /// A weight column is presented.
    pub valid: Signal<In, bool>,
    /// It is the rows' last column.
    pub last: Signal<In, bool>,
    /// The column's activation word.
    pub word: Signal<In, Bits<16>>,
    /// `LATENCY` cycles later: the activation's sign.
    pub q_neg: Signal<Out, bool>,
    /// Its significand (hidden bit included).
    pub q_sig: Signal<Out, Bits<16>>,
    /// Its exponent field `max(e, 1)`.
    pub q_ef: Signal<Out, Bits<8>>,
    /// It is Inf or NaN.
    pub q_special: Signal<Out, bool>,
    /// It belongs to the rows' first column.
    pub q_first: Signal<Out, bool>,
    /// It belongs to the rows' last column.
    pub q_last: Signal<Out, bool>,
    dec: ActDec,
    mid: RegR<bool>,
    neg: Vec<Reg<bool>>,
    sig: Vec<Reg<Bits<16>>>,
    ef: Vec<Reg<Bits<8>>>,
    special: Vec<Reg<bool>>,
    first: Vec<RegR<bool>>,
    lst: Vec<RegR<bool>>,
}

impl ActDelay {
    /// The delay for activations in `fmt`.
    pub fn new(fmt: ActFormat) -> Self {
        // The update body writes the four stages out (hdl_gen has no index arithmetic).
        assert_eq!(LATENCY, 4, "ActDelay is written for a 4-cycle lane");
        let n = LATENCY as usize;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid: Default::default(),
            last: Default::default(),
            word: Default::default(),
            q_neg: Default::default(),
            q_sig: Default::default(),
            q_ef: Default::default(),
            q_special: Default::default(),
            q_first: Default::default(),
            q_last: Default::default(),
            dec: ActDec::new(fmt),
            mid: Default::default(),
            neg: regs(n),
            sig: regs(n),
            ef: regs(n),
            special: regs(n),
            first: regs(n),
            lst: regs(n),
        }
    }
}

/// `n` registers in their default state.
fn regs<T: Default>(n: usize) -> Vec<T> {
    (0..n).map(|_| T::default()).collect()
}

impl Logic for ActDelay {
    #[hdl_gen]
    fn update(&mut self) {
        self.mid.clock.next = self.clock.val();
        self.mid.reset.next = self.reset.val();
        for i in 0..self.neg.len() {
            self.neg[i].clock.next = self.clock.val();
            self.sig[i].clock.next = self.clock.val();
            self.ef[i].clock.next = self.clock.val();
            self.special[i].clock.next = self.clock.val();
            self.first[i].clock.next = self.clock.val();
            self.first[i].reset.next = self.reset.val();
            self.lst[i].clock.next = self.clock.val();
            self.lst[i].reset.next = self.reset.val();
        }
        self.dec.word.next = self.word.val();
        // Inside a row after its first column until its last.
        self.mid.d.next = self.mid.q.val();
        if self.valid.val() {
            self.mid.d.next = !self.last.val();
        }
        self.neg[0].d.next = self.dec.neg.val();
        self.sig[0].d.next = self.dec.sig.val();
        self.ef[0].d.next = self.dec.ef.val();
        self.special[0].d.next = self.dec.special.val();
        self.first[0].d.next = self.valid.val() && !self.mid.q.val();
        self.lst[0].d.next = self.valid.val() && self.last.val();
        self.neg[1].d.next = self.neg[0].q.val();
        self.sig[1].d.next = self.sig[0].q.val();
        self.ef[1].d.next = self.ef[0].q.val();
        self.special[1].d.next = self.special[0].q.val();
        self.first[1].d.next = self.first[0].q.val();
        self.lst[1].d.next = self.lst[0].q.val();
        self.neg[2].d.next = self.neg[1].q.val();
        self.sig[2].d.next = self.sig[1].q.val();
        self.ef[2].d.next = self.ef[1].q.val();
        self.special[2].d.next = self.special[1].q.val();
        self.first[2].d.next = self.first[1].q.val();
        self.lst[2].d.next = self.lst[1].q.val();
        self.neg[3].d.next = self.neg[2].q.val();
        self.sig[3].d.next = self.sig[2].q.val();
        self.ef[3].d.next = self.ef[2].q.val();
        self.special[3].d.next = self.special[2].q.val();
        self.first[3].d.next = self.first[2].q.val();
        self.lst[3].d.next = self.lst[2].q.val();
        self.q_neg.next = self.neg[3].q.val();
        self.q_sig.next = self.sig[3].q.val();
        self.q_ef.next = self.ef[3].q.val();
        self.q_special.next = self.special[3].q.val();
        self.q_first.next = self.first[3].q.val();
        self.q_last.next = self.lst[3].q.val();
    }
}

/// One row of the conventional tile (see the module doc): an FP16-LUT engine lane, the
/// FP16 x activation multiplier, the banked FP32 accumulator and the drain. `C`-bit codes,
/// `A = C + 1`, `W = 16`-bit table words, the lane's product and packer widths `PW`, `WW`.
#[derive(LogicBlock)]
pub struct ConvRow<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, bool>,
    /// A weight is presented.
    pub valid: Signal<In, bool>,
    /// It is a block's first.
    pub block_start: Signal<In, bool>,
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
    /// From [`ActDelay`]: the activation meeting this cycle's lane output.
    pub a_neg: Signal<In, bool>,
    /// Its significand.
    pub a_sig: Signal<In, Bits<16>>,
    /// Its exponent field `max(e, 1)`.
    pub a_ef: Signal<In, Bits<8>>,
    /// It is Inf or NaN.
    pub a_special: Signal<In, bool>,
    /// First column of the row.
    pub a_first: Signal<In, bool>,
    /// Last column of the row.
    pub a_last: Signal<In, bool>,
    /// The row's result is presented.
    pub out_valid: Signal<Out, bool>,
    /// The row's result, a binary32 bit pattern (before the tensor scale).
    pub out_acc: Signal<Out, Bits<32>>,
    lane: Lane<C, A, W, PW, WW>,
    // The bank schedule and the row's non-finite flag.
    cnt: RegR<Bits<2>>,
    warm: RegR<Bits<3>>,
    rnan: Reg<bool>,
    fin_nan: Reg<bool>,
    // Product registers.
    p_valid: RegR<bool>,
    p_last: RegR<bool>,
    p_fresh: Reg<bool>,
    p_bank: Reg<Bits<2>>,
    p_neg: Reg<bool>,
    p_mag: Reg<Bits<VW>>,
    p_exp: Reg<Bits<EW>>,
    l1: RegR<bool>,
    l2: RegR<bool>,
    l3: RegR<bool>,
    l4: RegR<bool>,
    acc: FpAcc,
    // The drain: the captured banks shift out one add at a time.
    q: Vec<Reg<Bits<32>>>,
    dnan: Reg<bool>,
    run: RegR<bool>,
    step: Reg<Bits<5>>,
    red: FpAcc,
    // Locals.
    w: Signal<Local, Bits<16>>,
    we: Signal<Local, Bits<16>>,
    ws: Signal<Local, Bits<16>>,
    wef: Signal<Local, Bits<EW>>,
    w_special: Signal<Local, bool>,
    prod: Signal<Local, Bits<32>>,
    bank_now: Signal<Local, Bits<2>>,
    fresh_now: Signal<Local, bool>,
    nan_now: Signal<Local, bool>,
    q0: Signal<Local, Bits<32>>,
    qe: Signal<Local, Bits<8>>,
    qf: Signal<Local, Bits<23>>,
    qm: Signal<Local, Bits<VW>>,
    qef: Signal<Local, Bits<EW>>,
    present: Signal<Local, bool>,
    // Constants.
    w_exp_mask: Constant<Bits<16>>,
    w_man_mask: Constant<Bits<16>>,
    w_hidden: Constant<Bits<16>>,
    k10: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    one_w: Constant<Bits<EW>>,
    koff: Constant<Bits<EW>>,
    koff_q: Constant<Bits<EW>>,
    one2: Constant<Bits<2>>,
    zero2: Constant<Bits<2>>,
    one3: Constant<Bits<3>>,
    warm_full: Constant<Bits<3>>,
    zero8: Constant<Bits<8>>,
    ff8: Constant<Bits<8>>,
    q_hidden: Constant<Bits<VW>>,
    zero5: Constant<Bits<5>>,
    one5: Constant<Bits<5>>,
    step_mask: Constant<Bits<5>>,
    step_end: Constant<Bits<5>>,
    nan32: Constant<Bits<32>>,
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> ConvRow<C, A, W, PW, WW> {
    /// A row on the FP16-LUT engine `cfg` with activations in `fmt`.
    pub fn new(cfg: &LaneConfig, fmt: ActFormat) -> Self {
        let p = Params::new(cfg);
        assert!(
            p.engine && p.hif().is_none(),
            "a conventional row decodes with the FP16-LUT engine"
        );
        assert_eq!((p.code_bits as usize, A, W), (C, C + 1, 16));
        assert_eq!(CONV_BANKS, 4, "the bank counter is two bits wide");
        assert!(FPACC_SPACING.is_power_of_two() && CONV_DRAIN < 32);
        let (_, mb, bias, _) = fmt.layout();
        // Product of an FP16 significand (last bit 2^(max(e,1) - 25)) and an activation's
        // (last bit 2^(ef - bias - mb)): v_exp = ewf + ef + VOFF - 25 - bias - mb.
        let koff = VOFF as i64 - 25 - bias as i64 - mb as i64;
        assert!(
            koff > 0 && koff + 30 + (1 << 8) < 1 << EW,
            "product exponents fit EW bits"
        );
        // A binary32 bank value: last bit 2^(max(e,1) - 150).
        let koff_q = VOFF - 150;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid: Default::default(),
            block_start: Default::default(),
            scale: Default::default(),
            sel: Default::default(),
            code: Default::default(),
            load_table: Default::default(),
            load_addr: Default::default(),
            load_data: Default::default(),
            load_we: Default::default(),
            mode: Default::default(),
            a_neg: Default::default(),
            a_sig: Default::default(),
            a_ef: Default::default(),
            a_special: Default::default(),
            a_first: Default::default(),
            a_last: Default::default(),
            out_valid: Default::default(),
            out_acc: Default::default(),
            lane: Lane::new(cfg, &p),
            cnt: Default::default(),
            warm: Default::default(),
            rnan: Default::default(),
            fin_nan: Default::default(),
            p_valid: Default::default(),
            p_last: Default::default(),
            p_fresh: Default::default(),
            p_bank: Default::default(),
            p_neg: Default::default(),
            p_mag: Default::default(),
            p_exp: Default::default(),
            l1: Default::default(),
            l2: Default::default(),
            l3: Default::default(),
            l4: Default::default(),
            acc: FpAcc::banked(CONV_BANKS),
            q: (0..CONV_BANKS).map(|_| Default::default()).collect(),
            dnan: Default::default(),
            run: Default::default(),
            step: Default::default(),
            red: FpAcc::new(),
            w: Default::default(),
            we: Default::default(),
            ws: Default::default(),
            wef: Default::default(),
            w_special: Default::default(),
            prod: Default::default(),
            bank_now: Default::default(),
            fresh_now: Default::default(),
            nan_now: Default::default(),
            q0: Default::default(),
            qe: Default::default(),
            qf: Default::default(),
            qm: Default::default(),
            qef: Default::default(),
            present: Default::default(),
            w_exp_mask: cb(0x1f),
            w_man_mask: cb(0x3ff),
            w_hidden: cb(0x400),
            k10: cb(10),
            zero16: cb(0),
            one_w: cb(1),
            koff: cb(koff as u64),
            koff_q: cb(koff_q),
            one2: cb(1),
            zero2: cb(0),
            one3: cb(1),
            warm_full: cb(CONV_BANKS as u64),
            zero8: cb(0),
            ff8: cb(0xff),
            q_hidden: cb(1 << 23),
            zero5: cb(0),
            one5: cb(1),
            step_mask: cb(FPACC_SPACING as u64 - 1),
            step_end: cb(CONV_DRAIN as u64),
            nan32: cb(crate::tile::ROW_NAN as u64),
        }
    }
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Logic
    for ConvRow<C, A, W, PW, WW>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.lane.clock.next = self.clock.val();
        self.lane.reset.next = self.reset.val();
        self.cnt.clock.next = self.clock.val();
        self.cnt.reset.next = self.reset.val();
        self.warm.clock.next = self.clock.val();
        self.warm.reset.next = self.reset.val();
        self.rnan.clock.next = self.clock.val();
        self.fin_nan.clock.next = self.clock.val();
        self.p_valid.clock.next = self.clock.val();
        self.p_valid.reset.next = self.reset.val();
        self.p_last.clock.next = self.clock.val();
        self.p_last.reset.next = self.reset.val();
        self.p_fresh.clock.next = self.clock.val();
        self.p_bank.clock.next = self.clock.val();
        self.p_neg.clock.next = self.clock.val();
        self.p_mag.clock.next = self.clock.val();
        self.p_exp.clock.next = self.clock.val();
        self.l1.clock.next = self.clock.val();
        self.l1.reset.next = self.reset.val();
        self.l2.clock.next = self.clock.val();
        self.l2.reset.next = self.reset.val();
        self.l3.clock.next = self.clock.val();
        self.l3.reset.next = self.reset.val();
        self.l4.clock.next = self.clock.val();
        self.l4.reset.next = self.reset.val();
        self.acc.clock.next = self.clock.val();
        self.acc.reset.next = self.reset.val();
        for i in 0..self.q.len() {
            self.q[i].clock.next = self.clock.val();
        }
        self.dnan.clock.next = self.clock.val();
        self.run.clock.next = self.clock.val();
        self.run.reset.next = self.reset.val();
        self.step.clock.next = self.clock.val();
        self.red.clock.next = self.clock.val();
        self.red.reset.next = self.reset.val();

        // The lane: the FP16-LUT engine's decode of each weight.
        self.lane.valid_in.next = self.valid.val();
        self.lane.block_start.next = self.block_start.val();
        self.lane.scale.next = self.scale.val();
        self.lane.sel.next = self.sel.val();
        self.lane.code.next = self.code.val();
        self.lane.load_table.next = self.load_table.val();
        self.lane.load_addr.next = self.load_addr.val();
        self.lane.load_data.next = self.load_data.val();
        self.lane.load_we.next = self.load_we.val();
        for i in 0..self.lane.mode.len() {
            self.lane.mode[i].next = self.mode.val();
        }

        // Product stage: the FP16 word's fields, the exact significand product, the
        // exponent of its last bit, the bank and whether the add starts the bank afresh.
        self.w.next = self.lane.data_out.val();
        self.we.next = (self.w.val() >> self.k10.val()) & self.w_exp_mask.val();
        self.ws.next = self.w.val() & self.w_man_mask.val();
        self.wef.next = self.we.val().get_bits::<EW>(0);
        if self.we.val() == self.zero16.val() {
            self.wef.next = self.one_w.val();
        } else {
            self.ws.next = self.ws.val() | self.w_hidden.val();
        }
        self.w_special.next = self.we.val() == self.w_exp_mask.val();
        self.prod.next = self.ws.val() * self.a_sig.val();
        self.bank_now.next = self.cnt.q.val();
        self.fresh_now.next = self.warm.q.val() < self.warm_full.val();
        self.nan_now.next = self.rnan.q.val() || self.w_special.val() || self.a_special.val();
        if self.a_first.val() {
            self.bank_now.next = self.zero2.val();
            self.fresh_now.next = true;
            self.nan_now.next = self.w_special.val() || self.a_special.val();
        }
        self.cnt.d.next = self.cnt.q.val();
        self.warm.d.next = self.warm.q.val();
        self.rnan.d.next = self.rnan.q.val();
        self.fin_nan.d.next = self.fin_nan.q.val();
        if self.lane.valid_out.val() {
            self.cnt.d.next = self.bank_now.val() + self.one2.val();
            if self.a_first.val() {
                self.warm.d.next = self.one3.val();
            } else if self.fresh_now.val() {
                self.warm.d.next = self.warm.q.val() + self.one3.val();
            }
            self.rnan.d.next = self.nan_now.val();
            if self.a_last.val() {
                self.fin_nan.d.next = self.nan_now.val();
            }
        }
        self.p_valid.d.next = self.lane.valid_out.val();
        self.p_last.d.next = self.lane.valid_out.val() && self.a_last.val();
        self.p_fresh.d.next = self.fresh_now.val();
        self.p_bank.d.next = self.bank_now.val();
        self.p_neg.d.next = self.w.val().get_bit(15) ^ self.a_neg.val();
        self.p_mag.d.next = bit_cast::<VW, 32>(self.prod.val());
        self.p_exp.d.next = self.wef.val() + bit_cast::<EW, 8>(self.a_ef.val()) + self.koff.val();

        // The banked accumulator: one add per cycle.
        self.acc.add.next = self.p_valid.q.val();
        self.acc.clear.next = false;
        self.acc.nan.next = false;
        self.acc.bank.next = self.p_bank.q.val();
        self.acc.fresh.next = self.p_fresh.q.val();
        self.acc.v_neg.next = self.p_neg.q.val();
        self.acc.v_mag.next = self.p_mag.q.val();
        self.acc.v_exp.next = self.p_exp.q.val();
        self.l1.d.next = self.p_last.q.val();
        self.l2.d.next = self.l1.q.val();
        self.l3.d.next = self.l2.q.val();
        self.l4.d.next = self.l3.q.val();

        // The drain: capture the banks once the row's last add has landed, then add them
        // into `red` in bank order, FPACC_SPACING cycles apart.
        self.q0.next = self.q[0].q.val();
        self.qe.next = self.q0.val().get_bits::<8>(23);
        self.qf.next = self.q0.val().get_bits::<23>(0);
        self.qm.next = bit_cast::<VW, 23>(self.qf.val());
        self.qef.next = bit_cast::<EW, 8>(self.qe.val());
        if self.qe.val() == self.zero8.val() {
            self.qef.next = self.one_w.val();
        } else {
            self.qm.next = self.qm.val() | self.q_hidden.val();
        }
        self.present.next = self.run.q.val()
            && ((self.step.q.val() & self.step_mask.val()) == self.zero5.val())
            && (self.step.q.val() < self.step_end.val());
        self.red.add.next = self.present.val();
        self.red.clear.next = false;
        self.red.nan.next = false;
        self.red.bank.next = self.zero2.val();
        self.red.fresh.next = self.step.q.val() == self.zero5.val();
        self.red.v_neg.next = self.q0.val().get_bit(31);
        self.red.v_mag.next = self.qm.val();
        self.red.v_exp.next = self.qef.val() + self.koff_q.val();
        for i in 0..self.q.len() {
            self.q[i].d.next = self.q[i].q.val();
        }
        self.dnan.d.next = self.dnan.q.val();
        self.run.d.next = self.run.q.val();
        self.step.d.next = self.step.q.val();
        if self.run.q.val() {
            self.step.d.next = self.step.q.val() + self.one5.val();
            if self.step.q.val() == self.step_end.val() {
                self.run.d.next = false;
            }
        }
        if self.present.val() {
            // Shift the next bank to the front; a non-finite bank makes the row NaN.
            self.q[0].d.next = self.q[1].q.val();
            self.q[1].d.next = self.q[2].q.val();
            self.q[2].d.next = self.q[3].q.val();
            if self.qe.val() == self.ff8.val() {
                self.dnan.d.next = true;
            }
        }
        if self.l4.q.val() {
            for i in 0..self.q.len() {
                self.q[i].d.next = self.acc.acc[i].val();
            }
            self.dnan.d.next = self.fin_nan.q.val();
            self.run.d.next = true;
            self.step.d.next = self.zero5.val();
        }
        self.out_valid.next = self.run.q.val() && (self.step.q.val() == self.step_end.val()) && !self.red.busy.val();
        self.out_acc.next = self.red.acc[0].val();
        if self.dnan.q.val() {
            self.out_acc.next = self.nan32.val();
        }
    }
}

/// The conventional tile's top: the same ports as [`super::tile::Tile`] (`load_bias`,
/// `load_bias_we`, `emax` and `nan` are accepted and unused: FP16 tables have no bias, and
/// the rows see each activation's class themselves), the mode register, the activation
/// pre-pass (kept so both tiles run one protocol), the shared [`ActDelay`] and `R` rows.
#[derive(LogicBlock)]
pub struct ConvTile<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> {
    /// Clock, rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, bool>,
    /// Table load: which table.
    pub load_table: Signal<In, bool>,
    /// Table load: address.
    pub load_addr: Signal<In, Bits<C>>,
    /// Table load: word.
    pub load_data: Signal<In, Bits<W>>,
    /// Table load: write enable.
    pub load_we: Signal<In, bool>,
    /// Bias register value (unused: FP16 tables have no bias).
    pub load_bias: Signal<In, Bits<8>>,
    /// Bias register write enable (unused).
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
    /// First weight of a block.
    pub block_start: Signal<In, bool>,
    /// Last weight of the rows.
    pub last: Signal<In, bool>,
    /// The activation word of this column.
    pub act: Signal<In, Bits<16>>,
    /// The block's largest exponent field (unused).
    pub emax: Signal<In, Bits<8>>,
    /// The block holds Inf or NaN (unused).
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
    mode: super::top::ModeReg,
    amax: ActMax,
    delay: ActDelay,
    rows: Vec<ConvRow<C, A, W, PW, WW>>,
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> ConvTile<C, A, W, PW, WW> {
    /// A tile of `rows` rows on the FP16-LUT engine `cfg` with activations in `fmt`.
    pub fn new(cfg: &LaneConfig, fmt: ActFormat, rows: usize) -> Self {
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
            scale: regs(rows),
            sel: regs(rows),
            code: regs(rows),
            out_valid: Default::default(),
            acc: regs(rows),
            mode: Default::default(),
            amax: ActMax::new(fmt),
            delay: ActDelay::new(fmt),
            rows: (0..rows).map(|_| ConvRow::new(cfg, fmt)).collect(),
        }
    }
}

/// The top-level wiring of the conventional tile: `(destination, source)` pairs shared by
/// the simulation and the Verilog.
const CONV_WIRES: [(&str, &str); 16] = [
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
    ("delay$clock", "clock"),
    ("delay$reset", "reset"),
    ("delay$valid", "valid"),
    ("delay$last", "last"),
    ("delay$word", "act"),
];

/// Per row: ports driven from the top's ports of the same name.
const CONV_ROW_SHARED: [&str; 9] = [
    "clock",
    "reset",
    "valid",
    "block_start",
    "load_table",
    "load_addr",
    "load_data",
    "load_we",
    "mode",
];

/// Per row: ports driven from the shared blocks.
const CONV_ROW_FROM: [(&str, &str); 6] = [
    ("a_neg", "delay$q_neg"),
    ("a_sig", "delay$q_sig"),
    ("a_ef", "delay$q_ef"),
    ("a_special", "delay$q_special"),
    ("a_first", "delay$q_first"),
    ("a_last", "delay$q_last"),
];

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Logic
    for ConvTile<C, A, W, PW, WW>
{
    fn update(&mut self) {
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
        self.delay.clock.next = self.clock.val();
        self.delay.reset.next = self.reset.val();
        self.delay.valid.next = self.valid.val();
        self.delay.last.next = self.last.val();
        self.delay.word.next = self.act.val();
        for i in 0..self.rows.len() {
            let r = &mut self.rows[i];
            r.clock.next = self.clock.val();
            r.reset.next = self.reset.val();
            r.valid.next = self.valid.val();
            r.block_start.next = self.block_start.val();
            r.scale.next = self.scale[i].val();
            r.sel.next = self.sel[i].val();
            r.code.next = self.code[i].val();
            r.load_table.next = self.load_table.val();
            r.load_addr.next = self.load_addr.val();
            r.load_data.next = self.load_data.val();
            r.load_we.next = self.load_we.val();
            r.mode.next = self.mode.q.val();
            r.a_neg.next = self.delay.q_neg.val();
            r.a_sig.next = self.delay.q_sig.val();
            r.a_ef.next = self.delay.q_ef.val();
            r.a_special.next = self.delay.q_special.val();
            r.a_first.next = self.delay.q_first.val();
            r.a_last.next = self.delay.q_last.val();
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
        self.delay.clock.connect();
        self.delay.reset.connect();
        self.delay.valid.connect();
        self.delay.last.connect();
        self.delay.word.connect();
        for r in &mut self.rows {
            r.clock.connect();
            r.reset.connect();
            r.valid.connect();
            r.block_start.connect();
            r.scale.connect();
            r.sel.connect();
            r.code.connect();
            r.load_table.connect();
            r.load_addr.connect();
            r.load_data.connect();
            r.load_we.connect();
            r.mode.connect();
            r.a_neg.connect();
            r.a_sig.connect();
            r.a_ef.connect();
            r.a_special.connect();
            r.a_first.connect();
            r.a_last.connect();
        }
        for s in &mut self.acc {
            s.connect();
        }
        self.out_valid.connect();
    }

    fn hdl(&self) -> Verilog {
        use std::fmt::Write as _;
        let mut v = String::from("always @(*) begin\n");
        for (dst, src) in CONV_WIRES {
            writeln!(v, "   {dst} = {src};").unwrap();
        }
        let all: Vec<String> = (0..self.rows.len()).map(|i| format!("rows${i}$out_valid")).collect();
        writeln!(v, "   out_valid = {};", all.join(" & ")).unwrap();
        for i in 0..self.rows.len() {
            for port in CONV_ROW_SHARED {
                let src = if port == "mode" { "mode$q" } else { port };
                writeln!(v, "   rows${i}${port} = {src};").unwrap();
            }
            for port in ["scale", "sel", "code"] {
                writeln!(v, "   rows${i}${port} = {port}${i};").unwrap();
            }
            for (port, src) in CONV_ROW_FROM {
                writeln!(v, "   rows${i}${port} = {src};").unwrap();
            }
            writeln!(v, "   acc${i} = rows${i}$out_acc;").unwrap();
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
