//! One decode lane: block registers and LUT read (stage 1), block-scale multiplier
//! (stage 2), packer stage A (stage 3) and round/pack (stage 4). A HIF lane
//! (`Params::normalized`) has the HIF multiplier and the normalized packer
//! (`npack`); an FP16-LUT lane the FP16 multiplier and the general packer (`pack`).
//! Exactly one of each pair exists (a `Vec` of length 0 or 1). An engine lane
//! (`Params::engine`) adds the engine's front (`engine`), driven by the mode register; a HIF
//! engine replaces its HIF multiplier by the engine multiplier, an FP16-LUT engine feeds its
//! FP16 multiplier the direct decode as an FP16 word (`DirectFp16`) instead of a table word.

use rust_hdl::prelude::*;

use super::cb;
use super::engine::{DirectFp16, EngineFront, EngineMul};
use super::mul::{Fp16Mul, HifMul, ScaleDec};
use super::npack::{NormPackA, NormPackB};
use super::pack::{PackA, PackB};
use super::prims::{Lut, Reg, RegR};
use crate::params::{Params, SW as SW_U32, XW as XW_U32};

const XW: usize = XW_U32 as usize;
const SW: usize = SW_U32 as usize;

/// A decode lane with `C`-bit codes, `A = C + 1` address bits, `W`-bit LUT entries,
/// product width `PW` and packer width `WW`.
#[derive(LogicBlock)]
pub struct Lane<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset: clears the valid pipeline and the block registers.
    pub reset: Signal<In, bool>,
    /// A weight code is presented.
    pub valid_in: Signal<In, bool>,
    /// Latch `scale` and `sel` (applies to this cycle's weight already).
    pub block_start: Signal<In, bool>,
    /// Block-scale code.
    pub scale: Signal<In, Bits<8>>,
    /// Table selection bit.
    pub sel: Signal<In, bool>,
    /// Weight code.
    pub code: Signal<In, Bits<C>>,
    /// Load port: table select.
    pub load_table: Signal<In, bool>,
    /// Load port: entry address.
    pub load_addr: Signal<In, Bits<C>>,
    /// Load port: entry word.
    pub load_data: Signal<In, Bits<W>>,
    /// Load port: entry write enable.
    pub load_we: Signal<In, bool>,
    /// Mode register (engine lanes only: one element, else none).
    pub mode: Vec<Signal<In, Bits<8>>>,
    /// Bias register of table 0 (HIF lanes only: one element, else none).
    pub bias0: Vec<Signal<In, Bits<8>>>,
    /// Bias register of table 1 (HIF lanes only).
    pub bias1: Vec<Signal<In, Bits<8>>>,
    /// Output word.
    pub data_out: Signal<Out, Bits<16>>,
    /// Output valid.
    pub valid_out: Signal<Out, bool>,
    blk_scale: RegR<Bits<8>>,
    blk_sel: RegR<bool>,
    sdec: ScaleDec,
    lut: Lut<A, W>,
    s1_valid: RegR<bool>,
    s1_sig: Reg<Bits<8>>,
    s1_exp: Reg<Bits<8>>,
    s1_neg: Reg<bool>,
    s1_szero: Vec<Reg<bool>>,
    s1_bias: Vec<Reg<Bits<8>>>,
    efront: Vec<EngineFront<C>>,
    s1_dneg: Vec<Reg<bool>>,
    s1_dm: Vec<Reg<Bits<8>>>,
    s1_de: Vec<Reg<Bits<8>>>,
    s1_dzero: Vec<Reg<bool>>,
    s1_islut: Vec<Reg<bool>>,
    hif: Vec<HifMul<W, PW>>,
    emul: Vec<EngineMul<W, PW>>,
    fp: Vec<Fp16Mul<W, PW>>,
    dfp: Vec<DirectFp16<W>>,
    s2_valid: RegR<bool>,
    s2_neg: Reg<bool>,
    s2_p: Reg<Bits<PW>>,
    s2_x: Reg<Bits<XW>>,
    s2_inf: Vec<Reg<bool>>,
    s2_zero: Vec<Reg<bool>>,
    pa: Vec<PackA<PW>>,
    npa: Vec<NormPackA<PW>>,
    s3_valid: RegR<bool>,
    s3_neg: Reg<bool>,
    s3_p: Reg<Bits<PW>>,
    s3_zero: Vec<Reg<bool>>,
    s3_normal: Vec<Reg<bool>>,
    s3_sat: Reg<bool>,
    s3_rs: Reg<Bits<SW>>,
    s3_ls: Vec<Reg<Bits<SW>>>,
    s3_fe: Reg<Bits<8>>,
    pb: Vec<PackB<PW, WW>>,
    npb: Vec<NormPackB<PW>>,
    s4_valid: RegR<bool>,
    s4_word: Reg<Bits<16>>,
    eff_scale: Signal<Local, Bits<8>>,
    eff_sel: Signal<Local, bool>,
    code_eff: Signal<Local, Bits<C>>,
    raddr: Signal<Local, Bits<A>>,
    waddr: Signal<Local, Bits<A>>,
    sel_bit: Constant<Bits<A>>,
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Lane<C, A, W, PW, WW> {
    /// A lane for the configuration's parameters.
    pub fn new(cfg: &crate::config::LaneConfig, p: &Params) -> Self {
        assert_eq!((p.code_bits as usize, p.entry_bits as usize), (C, W));
        assert_eq!(A, C + 1);
        let hif = p.hif().is_some();
        assert_eq!(hif, p.normalized, "HIF lanes are the normalized ones");
        // `n_hif`: normalized datapath (HIF tables, fixed or engine); `n_fp`: FP16 tables;
        // `n_eng`: the engine's front; `n_fix`: the fixed HIF multiplier; `n_hif_eng`: the
        // engine multiplier; `n_fp_eng`: the FP16-LUT engine's direct-path word.
        let n_hif = usize::from(hif);
        let n_fp = 1 - n_hif;
        let n_eng = usize::from(p.engine);
        let n_fix = n_hif * (1 - n_eng);
        let n_hif_eng = n_hif * n_eng;
        let n_fp_eng = n_fp * n_eng;
        fn regs<T: Synth>(n: usize) -> Vec<Reg<T>> {
            (0..n).map(|_| Reg::default()).collect()
        }

        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid_in: Default::default(),
            block_start: Default::default(),
            scale: Default::default(),
            sel: Default::default(),
            code: Default::default(),
            load_table: Default::default(),
            load_addr: Default::default(),
            load_data: Default::default(),
            load_we: Default::default(),
            mode: (0..n_eng).map(|_| Default::default()).collect(),
            bias0: (0..n_hif).map(|_| Default::default()).collect(),
            bias1: (0..n_hif).map(|_| Default::default()).collect(),
            data_out: Default::default(),
            valid_out: Default::default(),
            blk_scale: Default::default(),
            blk_sel: Default::default(),
            sdec: ScaleDec::new(p),
            lut: Default::default(),
            s1_valid: Default::default(),
            s1_sig: Default::default(),
            s1_exp: Default::default(),
            s1_neg: Default::default(),
            s1_szero: (0..n_hif).map(|_| Default::default()).collect(),
            s1_bias: (0..n_hif).map(|_| Default::default()).collect(),
            efront: (0..n_eng).map(|_| EngineFront::new(cfg)).collect(),
            s1_dneg: regs(n_eng),
            s1_dm: regs(n_eng),
            s1_de: regs(n_eng),
            s1_dzero: regs(n_eng),
            s1_islut: regs(n_eng),
            hif: (0..n_fix).map(|_| HifMul::new(p)).collect(),
            emul: (0..n_hif_eng).map(|_| EngineMul::new(p)).collect(),
            fp: (0..n_fp).map(|_| Fp16Mul::new(p)).collect(),
            dfp: (0..n_fp_eng).map(|_| DirectFp16::new()).collect(),
            s2_valid: Default::default(),
            s2_neg: Default::default(),
            s2_p: Default::default(),
            s2_x: Default::default(),
            s2_inf: (0..n_fp).map(|_| Default::default()).collect(),
            s2_zero: (0..n_hif).map(|_| Default::default()).collect(),
            pa: (0..n_fp).map(|_| PackA::new(p)).collect(),
            npa: (0..n_hif).map(|_| NormPackA::new(p)).collect(),
            s3_valid: Default::default(),
            s3_neg: Default::default(),
            s3_p: Default::default(),
            s3_zero: (0..n_fp).map(|_| Default::default()).collect(),
            s3_normal: (0..n_hif).map(|_| Default::default()).collect(),
            s3_sat: Default::default(),
            s3_rs: Default::default(),
            s3_ls: (0..n_fp).map(|_| Default::default()).collect(),
            s3_fe: Default::default(),
            pb: (0..n_fp).map(|_| PackB::new(p)).collect(),
            npb: (0..n_hif).map(|_| NormPackB::new(p)).collect(),
            s4_valid: Default::default(),
            s4_word: Default::default(),
            eff_scale: Default::default(),
            eff_sel: Default::default(),
            code_eff: Default::default(),
            raddr: Default::default(),
            waddr: Default::default(),
            sel_bit: cb(1u64 << C),
        }
    }
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Logic for Lane<C, A, W, PW, WW> {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.blk_scale.clock.next = self.clock.val();
        self.blk_sel.clock.next = self.clock.val();
        self.lut.clock.next = self.clock.val();
        self.s1_valid.clock.next = self.clock.val();
        self.s1_sig.clock.next = self.clock.val();
        self.s1_exp.clock.next = self.clock.val();
        self.s1_neg.clock.next = self.clock.val();
        self.s2_valid.clock.next = self.clock.val();
        self.s2_neg.clock.next = self.clock.val();
        self.s2_p.clock.next = self.clock.val();
        self.s2_x.clock.next = self.clock.val();
        self.s3_valid.clock.next = self.clock.val();
        self.s3_neg.clock.next = self.clock.val();
        self.s3_p.clock.next = self.clock.val();
        self.s3_sat.clock.next = self.clock.val();
        self.s3_rs.clock.next = self.clock.val();
        self.s3_fe.clock.next = self.clock.val();
        self.s4_valid.clock.next = self.clock.val();
        self.s4_word.clock.next = self.clock.val();
        self.blk_scale.reset.next = self.reset.val();
        self.blk_sel.reset.next = self.reset.val();
        self.s1_valid.reset.next = self.reset.val();
        self.s2_valid.reset.next = self.reset.val();
        self.s3_valid.reset.next = self.reset.val();
        self.s4_valid.reset.next = self.reset.val();
        // Stage 1: block registers (the strobe's values apply to this cycle's weight).
        self.eff_scale.next = self.blk_scale.q.val();
        self.eff_sel.next = self.blk_sel.q.val();
        if self.block_start.val() {
            self.eff_scale.next = self.scale.val();
            self.eff_sel.next = self.sel.val();
        }
        self.blk_scale.d.next = self.eff_scale.val();
        self.blk_sel.d.next = self.eff_sel.val();
        // Stage 1: LUT read at {sel, code}; table writes at {load_table, load_addr}.
        // Engine: the code masked to the mode's width addresses the table.
        self.code_eff.next = self.code.val();
        for i in 0..self.efront.len() {
            self.efront[i].code.next = self.code.val();
            self.efront[i].uzero.next = false;
            self.efront[i].mode.next = self.mode[i].val();
            self.efront[i].scale.next = self.eff_scale.val();
            self.efront[i].usig.next = self.sdec.sig.val();
            self.efront[i].uexp.next = self.sdec.exp.val();
            self.code_eff.next = self.efront[i].code_m.val();
        }
        self.raddr.next = bit_cast::<A, C>(self.code_eff.val());
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
        // Stage 1: scale decode.
        self.sdec.code.next = self.eff_scale.val();
        self.s1_valid.d.next = self.valid_in.val();
        self.s1_sig.d.next = self.sdec.sig.val();
        self.s1_exp.d.next = self.sdec.exp.val();
        self.s1_neg.d.next = self.sdec.neg.val();
        for i in 0..self.s1_szero.len() {
            self.s1_szero[i].clock.next = self.clock.val();
            self.s1_szero[i].d.next = self.sdec.zero[i].val();
        }
        // Engine: the mode's scale decode and the direct element decode.
        for i in 0..self.efront.len() {
            self.s1_sig.d.next = self.efront[i].sig.val();
            self.s1_exp.d.next = self.efront[i].exp.val();
            self.s1_neg.d.next = self.efront[i].neg.val();
            self.s1_dneg[i].clock.next = self.clock.val();
            self.s1_dm[i].clock.next = self.clock.val();
            self.s1_de[i].clock.next = self.clock.val();
            self.s1_dzero[i].clock.next = self.clock.val();
            self.s1_islut[i].clock.next = self.clock.val();
            self.s1_dneg[i].d.next = self.efront[i].dneg.val();
            self.s1_dm[i].d.next = self.efront[i].dm.val();
            self.s1_de[i].d.next = self.efront[i].de.val();
            self.s1_dzero[i].d.next = self.efront[i].dzero.val();
            self.s1_islut[i].d.next = self.efront[i].is_lut.val();
        }
        // A HIF engine (the one with an engine multiplier): the normalized zero flags.
        for i in 0..self.emul.len() {
            self.efront[i].uzero.next = self.sdec.zero[i].val();
            self.s1_szero[i].d.next = self.efront[i].szero.val();
        }
        for i in 0..self.s1_bias.len() {
            self.s1_bias[i].clock.next = self.clock.val();
            self.s1_bias[i].d.next = self.bias0[i].val();
            if self.eff_sel.val() {
                self.s1_bias[i].d.next = self.bias1[i].val();
            }
        }
        // Stage 2: multiplier (exactly one of the two exists).
        self.s2_valid.d.next = self.s1_valid.q.val();
        for i in 0..self.hif.len() {
            self.hif[i].entry.next = self.lut.rdata.val();
            self.hif[i].ssig.next = self.s1_sig.q.val();
            self.hif[i].sexp.next = self.s1_exp.q.val();
            self.hif[i].sneg.next = self.s1_neg.q.val();
            self.hif[i].szero.next = self.s1_szero[i].q.val();
            self.hif[i].bias.next = self.s1_bias[i].q.val();
            self.s2_neg.d.next = self.hif[i].neg.val();
            self.s2_p.d.next = self.hif[i].p.val();
            self.s2_x.d.next = self.hif[i].x.val();
            self.s2_zero[i].clock.next = self.clock.val();
            self.s2_zero[i].d.next = self.hif[i].zero.val();
        }
        for i in 0..self.emul.len() {
            self.emul[i].entry.next = self.lut.rdata.val();
            self.emul[i].ssig.next = self.s1_sig.q.val();
            self.emul[i].sexp.next = self.s1_exp.q.val();
            self.emul[i].sneg.next = self.s1_neg.q.val();
            self.emul[i].szero.next = self.s1_szero[i].q.val();
            self.emul[i].bias.next = self.s1_bias[i].q.val();
            self.emul[i].dneg.next = self.s1_dneg[i].q.val();
            self.emul[i].dm.next = self.s1_dm[i].q.val();
            self.emul[i].de.next = self.s1_de[i].q.val();
            self.emul[i].dzero.next = self.s1_dzero[i].q.val();
            self.emul[i].is_lut.next = self.s1_islut[i].q.val();
            self.s2_neg.d.next = self.emul[i].neg.val();
            self.s2_p.d.next = self.emul[i].p.val();
            self.s2_x.d.next = self.emul[i].x.val();
            self.s2_zero[i].clock.next = self.clock.val();
            self.s2_zero[i].d.next = self.emul[i].zero.val();
        }
        for i in 0..self.fp.len() {
            self.fp[i].entry.next = self.lut.rdata.val();
            self.fp[i].ssig.next = self.s1_sig.q.val();
            self.fp[i].sexp.next = self.s1_exp.q.val();
            self.fp[i].sneg.next = self.s1_neg.q.val();
            self.s2_neg.d.next = self.fp[i].neg.val();
            self.s2_p.d.next = self.fp[i].p.val();
            self.s2_x.d.next = self.fp[i].x.val();
            self.s2_inf[i].clock.next = self.clock.val();
            self.s2_inf[i].d.next = self.fp[i].inf.val();
        }
        // An FP16-LUT engine's direct path: the decoded minifloat as an FP16 word.
        for i in 0..self.dfp.len() {
            self.dfp[i].dneg.next = self.s1_dneg[i].q.val();
            self.dfp[i].dm.next = self.s1_dm[i].q.val();
            self.dfp[i].de.next = self.s1_de[i].q.val();
            self.dfp[i].dzero.next = self.s1_dzero[i].q.val();
            if !self.s1_islut[i].q.val() {
                self.fp[i].entry.next = self.dfp[i].word.val();
            }
        }
        // Stage 3: packer stage A (exactly one of the two packers exists).
        self.s3_valid.d.next = self.s2_valid.q.val();
        self.s3_p.d.next = self.s2_p.q.val();
        for i in 0..self.pa.len() {
            self.pa[i].p.next = self.s2_p.q.val();
            self.pa[i].x.next = self.s2_x.q.val();
            self.pa[i].inf.next = self.s2_inf[i].q.val();
            self.s3_neg.d.next = self.s2_neg.q.val();
            self.s3_zero[i].clock.next = self.clock.val();
            self.s3_zero[i].d.next = self.pa[i].zero.val();
            self.s3_sat.d.next = self.pa[i].sat.val();
            self.s3_rs.d.next = self.pa[i].rs.val();
            self.s3_ls[i].clock.next = self.clock.val();
            self.s3_ls[i].d.next = self.pa[i].ls.val();
            self.s3_fe.d.next = self.pa[i].fe.val();
        }
        for i in 0..self.npa.len() {
            self.npa[i].p.next = self.s2_p.q.val();
            self.npa[i].x.next = self.s2_x.q.val();
            self.npa[i].zero.next = self.s2_zero[i].q.val();
            self.npa[i].neg.next = self.s2_neg.q.val();
            self.s3_neg.d.next = self.npa[i].sign.val();
            self.s3_normal[i].clock.next = self.clock.val();
            self.s3_normal[i].d.next = self.npa[i].normal.val();
            self.s3_sat.d.next = self.npa[i].sat.val();
            self.s3_rs.d.next = self.npa[i].r.val();
            self.s3_fe.d.next = self.npa[i].fb.val();
        }
        // Stage 4: round and pack.
        self.s4_valid.d.next = self.s3_valid.q.val();
        for i in 0..self.pb.len() {
            self.pb[i].neg.next = self.s3_neg.q.val();
            self.pb[i].p.next = self.s3_p.q.val();
            self.pb[i].zero.next = self.s3_zero[i].q.val();
            self.pb[i].sat.next = self.s3_sat.q.val();
            self.pb[i].rs.next = self.s3_rs.q.val();
            self.pb[i].ls.next = self.s3_ls[i].q.val();
            self.pb[i].fe.next = self.s3_fe.q.val();
            self.s4_word.d.next = self.pb[i].word.val();
        }
        for i in 0..self.npb.len() {
            self.npb[i].p.next = self.s3_p.q.val();
            self.npb[i].r.next = self.s3_rs.q.val();
            self.npb[i].fb.next = self.s3_fe.q.val();
            self.npb[i].normal.next = self.s3_normal[i].q.val();
            self.npb[i].sat.next = self.s3_sat.q.val();
            self.npb[i].sign.next = self.s3_neg.q.val();
            self.s4_word.d.next = self.npb[i].word.val();
        }
        self.data_out.next = self.s4_word.q.val();
        self.valid_out.next = self.s4_valid.q.val();
    }
}
