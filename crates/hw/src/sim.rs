//! Cycle-level simulation of the generated hardware in rust-hdl's own simulator, behind a
//! small interface of our own: build a top for a configuration, load tables, clock beats
//! through, and evaluate the combinational datapath on its own.
//!
//! rust-hdl's simulator is slow (thousands of cycles per second for a 4-lane top): keep
//! streams short; long runs belong to the Verilator co-simulation.

use rust_hdl::prelude::*;
use sop_formats::point::LutEntry;

use crate::config::LaneConfig;
use crate::model::{Beat, Tables};
use crate::params::Params;
use crate::rtl::mul::{Fp16Mul, HifMul, ScaleDec};
use crate::rtl::npack::{NormPackA, NormPackB};
use crate::rtl::pack::{PackA, PackB};
use crate::rtl::top::Top;
use crate::sparse::{Correction, StreamDriver};
use crate::HwError;

/// Settling passes allowed per half clock cycle before the simulation counts as failed.
const SETTLE: usize = 1000;

pub(crate) trait TopOps {
    fn lanes(&self) -> usize;
    fn set_lane(&mut self, i: usize, b: &Beat);
    fn set_load(&mut self, table: bool, addr: u32, data: u32, we: bool, bias: u8, bias_we: bool);
    fn set_mode(&mut self, mode: u8, we: bool);
    /// Drives lane `i`'s sparse stream (engines; ignored otherwise).
    fn set_sparse(&mut self, i: usize, entry: Option<(u32, Correction)>);
    /// Lane `i`'s `sp_ready` (false without a correction unit).
    fn sp_ready(&self, i: usize) -> bool;
    fn set_reset(&mut self, r: bool);
    fn settle(&mut self);
    fn edge(&mut self);
    fn out(&self, i: usize) -> (bool, u16);
    fn verilog(&mut self) -> String;
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> TopOps for Top<C, A, W, PW, WW> {
    fn lanes(&self) -> usize {
        self.code.len()
    }
    fn set_lane(&mut self, i: usize, b: &Beat) {
        self.valid_in[i].next = b.valid;
        self.block_start[i].next = b.block_start;
        self.scale[i].next = (b.scale as u64).into();
        self.sel[i].next = b.sel;
        self.code[i].next = (b.code as u64).into();
    }
    fn set_load(&mut self, table: bool, addr: u32, data: u32, we: bool, bias: u8, bias_we: bool) {
        self.load_table.next = table;
        self.load_addr.next = (addr as u64).into();
        self.load_data.next = (data as u64).into();
        self.load_we.next = we;
        for s in &mut self.load_bias {
            s.next = (bias as u64).into();
        }
        for s in &mut self.load_bias_we {
            s.next = bias_we;
        }
    }
    fn set_mode(&mut self, mode: u8, we: bool) {
        for s in &mut self.load_mode {
            s.next = (mode as u64).into();
        }
        for s in &mut self.load_mode_we {
            s.next = we;
        }
    }
    fn set_sparse(&mut self, i: usize, entry: Option<(u32, Correction)>) {
        if i < self.sp_valid.len() {
            let (pos, c) = entry.unwrap_or((
                0,
                Correction {
                    outlier: false,
                    value: 0,
                },
            ));
            self.sp_valid[i].next = entry.is_some();
            self.sp_pos[i].next = (pos as u64).into();
            self.sp_outlier[i].next = c.outlier;
            self.sp_value[i].next = (c.value as u64).into();
        }
    }
    fn sp_ready(&self, i: usize) -> bool {
        self.sp_ready.get(i).is_some_and(|s| s.val())
    }
    fn set_reset(&mut self, r: bool) {
        self.reset.next = r;
    }
    fn settle(&mut self) {
        assert!(simulate(self, SETTLE), "rust-hdl simulation did not settle");
    }
    fn edge(&mut self) {
        self.clock.next = Clock { clk: true };
        self.settle();
        self.clock.next = Clock { clk: false };
        self.settle();
    }
    fn out(&self, i: usize) -> (bool, u16) {
        (self.valid_out[i].val(), self.data_out[i].val().to_u64() as u16)
    }
    fn verilog(&mut self) -> String {
        self.connect_all();
        generate_verilog(self)
    }
}

fn mk<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize>(
    cfg: &LaneConfig,
    p: &Params,
    lanes: usize,
) -> Box<dyn TopOps> {
    let mut t = Top::<C, A, W, PW, WW>::new(cfg, p, lanes);
    t.connect_all();
    Box::new(t)
}

/// Builds the rust-hdl top of a validated configuration (one monomorphization per code
/// width and LUT entry format).
pub(crate) fn build(cfg: &LaneConfig) -> Box<dyn TopOps> {
    let p = Params::new(cfg);
    let n = cfg.lanes as usize;
    match (cfg.code_bits, cfg.lut) {
        (4, LutEntry::Hif7) => mk::<4, 5, 7, 9, 10>(cfg, &p, n),
        (4, LutEntry::Hif8) => mk::<4, 5, 8, 9, 10>(cfg, &p, n),
        (4, LutEntry::Fp16) => mk::<4, 5, 16, 16, 17>(cfg, &p, n),
        (6, LutEntry::Hif7) => mk::<6, 7, 7, 9, 10>(cfg, &p, n),
        (6, LutEntry::Hif8) => mk::<6, 7, 8, 9, 10>(cfg, &p, n),
        (6, LutEntry::Fp16) => mk::<6, 7, 16, 16, 17>(cfg, &p, n),
        (c, _) => unreachable!("code_bits {c} passed validation"),
    }
}

/// The output of one lane in one cycle.
pub type LaneOut = Option<u16>;

/// A rust-hdl simulation of a whole top (all lanes, shared load port).
pub struct RtlSim {
    cfg: LaneConfig,
    top: Box<dyn TopOps>,
    cycles: u64,
    latency: u32,
    /// Per lane: the sparse stream driver (engines).
    sparse: Vec<StreamDriver>,
}

impl RtlSim {
    /// Builds the top for `cfg` (validated) with all inputs low; call [`Self::reset`] first.
    pub fn new(cfg: &LaneConfig) -> Result<RtlSim, HwError> {
        cfg.validate()?;
        let mut top = build(cfg);
        top.settle();
        let lanes = top.lanes();
        Ok(RtlSim {
            cfg: cfg.clone(),
            top,
            cycles: 0,
            latency: Params::new(cfg).latency,
            sparse: vec![StreamDriver::default(); lanes],
        })
    }

    /// The configuration simulated.
    pub fn config(&self) -> &LaneConfig {
        &self.cfg
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// The pipeline latency in cycles (`valid_in` to `valid_out`).
    pub fn latency(&self) -> u32 {
        self.latency
    }

    fn idle_inputs(&mut self) {
        for i in 0..self.top.lanes() {
            self.top.set_lane(i, &Beat::idle());
            self.top.set_sparse(i, None);
        }
        self.top.set_load(false, 0, 0, false, 0, false);
        self.top.set_mode(0, false);
    }

    /// One clock cycle with the synchronous reset asserted (all other inputs idle).
    pub fn reset(&mut self) {
        // Entries of weights still in flight are lost with them (no handshake in a reset).
        for d in &mut self.sparse {
            d.reset();
        }
        self.idle_inputs();
        self.top.set_reset(true);
        self.top.settle();
        self.top.edge();
        self.top.set_reset(false);
        self.top.settle();
        self.cycles += 1;
    }

    /// Writes both tables and (for HIF) both bias registers through the load port, one
    /// word per cycle, lanes idle.
    pub fn load_tables(&mut self, t: &Tables) -> Result<(), HwError> {
        t.check(&self.cfg)?;
        self.idle_inputs();
        if let Some(m) = t.mode {
            self.top.set_mode(m.word(), true);
            self.top.settle();
            self.top.edge();
            self.cycles += 1;
            self.top.set_mode(0, false);
        }
        for (ti, entries) in t.entries.iter().enumerate() {
            for (a, w) in entries.iter().enumerate() {
                self.top.set_load(ti == 1, a as u32, *w, true, 0, false);
                self.top.settle();
                self.top.edge();
                self.cycles += 1;
            }
            if self.cfg.lut.hif().is_some() {
                self.top.set_load(ti == 1, 0, 0, false, t.bias_code(ti), true);
                self.top.settle();
                self.top.edge();
                self.cycles += 1;
            }
        }
        self.top.set_load(false, 0, 0, false, 0, false);
        self.top.settle();
        Ok(())
    }

    /// One clock cycle: drives `beats[i]` on lane `i` and returns each lane's output as
    /// sampled at this cycle's rising edge (`Some(word)` when `valid_out`). The word for
    /// a beat driven in cycle `n` is returned by the call for cycle `n + latency`. A beat's
    /// sparse correction goes to the lane's correction unit as an entry at the weight's
    /// position (the lane's valid beats since reset), presented until the unit takes it.
    pub fn step(&mut self, beats: &[Beat]) -> Vec<LaneOut> {
        assert_eq!(beats.len(), self.top.lanes(), "one beat per lane");
        for (i, b) in beats.iter().enumerate() {
            self.top.set_lane(i, b);
            if b.valid {
                assert!(
                    self.cfg.engine || b.corr.is_none(),
                    "{}: no sparse correction unit",
                    self.cfg.name
                );
                self.sparse[i].weight(b.corr);
            }
            self.top.set_sparse(i, self.sparse[i].presented());
        }
        self.top.settle();
        let out = (0..self.top.lanes())
            .map(|i| {
                let (v, w) = self.top.out(i);
                v.then_some(w)
            })
            .collect();
        let taken: Vec<bool> = (0..self.top.lanes()).map(|i| self.top.sp_ready(i)).collect();
        self.top.edge();
        for (i, t) in taken.into_iter().enumerate() {
            if t {
                self.sparse[i].taken();
            }
        }
        self.cycles += 1;
        out
    }

    /// Runs one stream per lane (streams may differ in length; shorter ones are padded
    /// with idle beats), then `latency` idle cycles, and returns every lane's valid output
    /// words in order, checking that each appears exactly `latency` cycles after its beat.
    pub fn run(&mut self, streams: &[Vec<Beat>]) -> Result<Vec<Vec<u16>>, HwError> {
        let n = self.top.lanes();
        assert_eq!(streams.len(), n, "one stream per lane");
        let len = streams.iter().map(Vec::len).max().unwrap_or(0);
        let lat = self.latency as usize;
        let mut outs = vec![Vec::new(); n];
        for k in 0..len + lat {
            let beats: Vec<Beat> = streams.iter().map(|s| s.get(k).copied().unwrap_or_default()).collect();
            let o = self.step(&beats);
            for i in 0..n {
                let expect_valid = k >= lat && streams[i].get(k - lat).is_some_and(|b| b.valid);
                if o[i].is_some() != expect_valid {
                    return Err(HwError::Sim(format!(
                        "lane {i}: valid_out = {} in cycle {k}, expected {expect_valid}",
                        o[i].is_some()
                    )));
                }
                if let Some(w) = o[i] {
                    outs[i].push(w);
                }
            }
        }
        Ok(outs)
    }
}

/// The FP16-LUT lane's combinational path: FP16 multiplier and the general packer.
struct FpPath<const PW: usize, const WW: usize> {
    sdec: ScaleDec,
    mul: Fp16Mul<16, PW>,
    pa: PackA<PW>,
    pb: PackB<PW, WW>,
}

/// A HIF lane's combinational path: HIF multiplier and the normalized packer.
struct HifPath<const W: usize, const PW: usize> {
    sdec: ScaleDec,
    mul: HifMul<W, PW>,
    pa: NormPackA<PW>,
    pb: NormPackB<PW>,
}

trait PathOps {
    fn eval(&mut self, entry: u32, bias: u8, scale: u8) -> u16;
}

impl<const PW: usize, const WW: usize> PathOps for FpPath<PW, WW> {
    fn eval(&mut self, entry: u32, _bias: u8, scale: u8) -> u16 {
        self.sdec.code.next = (scale as u64).into();
        assert!(simulate(&mut self.sdec, SETTLE));
        let m = &mut self.mul;
        m.entry.next = (entry as u64).into();
        m.ssig.next = self.sdec.sig.val();
        m.sexp.next = self.sdec.exp.val();
        m.sneg.next = self.sdec.neg.val();
        assert!(simulate(m, SETTLE));
        self.pa.p.next = m.p.val();
        self.pa.x.next = m.x.val();
        self.pa.inf.next = m.inf.val();
        assert!(simulate(&mut self.pa, SETTLE));
        self.pb.neg.next = m.neg.val();
        self.pb.p.next = m.p.val();
        self.pb.zero.next = self.pa.zero.val();
        self.pb.sat.next = self.pa.sat.val();
        self.pb.rs.next = self.pa.rs.val();
        self.pb.ls.next = self.pa.ls.val();
        self.pb.fe.next = self.pa.fe.val();
        assert!(simulate(&mut self.pb, SETTLE));
        self.pb.word.val().to_u64() as u16
    }
}

impl<const W: usize, const PW: usize> PathOps for HifPath<W, PW> {
    fn eval(&mut self, entry: u32, bias: u8, scale: u8) -> u16 {
        self.sdec.code.next = (scale as u64).into();
        assert!(simulate(&mut self.sdec, SETTLE));
        let m = &mut self.mul;
        m.entry.next = (entry as u64).into();
        m.bias.next = (bias as u64).into();
        m.ssig.next = self.sdec.sig.val();
        m.sexp.next = self.sdec.exp.val();
        m.sneg.next = self.sdec.neg.val();
        m.szero.next = self.sdec.zero[0].val();
        assert!(simulate(m, SETTLE));
        self.pa.p.next = m.p.val();
        self.pa.x.next = m.x.val();
        self.pa.zero.next = m.zero.val();
        self.pa.neg.next = m.neg.val();
        assert!(simulate(&mut self.pa, SETTLE));
        self.pb.p.next = m.p.val();
        self.pb.r.next = self.pa.r.val();
        self.pb.fb.next = self.pa.fb.val();
        self.pb.normal.next = self.pa.normal.val();
        self.pb.sat.next = self.pa.sat.val();
        self.pb.sign.next = self.pa.sign.val();
        assert!(simulate(&mut self.pb, SETTLE));
        self.pb.word.val().to_u64() as u16
    }
}

/// The combinational datapath of one lane (scale decoder, multiplier, both packer
/// stages) evaluated in rust-hdl's simulator without the pipeline registers: fast enough
/// for exhaustive checks of every LUT word against every scale code.
pub struct Datapath {
    inner: Box<dyn PathOps>,
}

impl Datapath {
    /// The datapath of a validated configuration.
    pub fn new(cfg: &LaneConfig) -> Result<Datapath, HwError> {
        cfg.validate()?;
        let p = Params::new(cfg);
        let inner: Box<dyn PathOps> = match cfg.lut {
            LutEntry::Hif7 => Box::new(HifPath::<7, 9> {
                sdec: ScaleDec::new(&p),
                mul: HifMul::new(&p),
                pa: NormPackA::new(&p),
                pb: NormPackB::new(&p),
            }),
            LutEntry::Hif8 => Box::new(HifPath::<8, 9> {
                sdec: ScaleDec::new(&p),
                mul: HifMul::new(&p),
                pa: NormPackA::new(&p),
                pb: NormPackB::new(&p),
            }),
            LutEntry::Fp16 => Box::new(FpPath::<16, 17> {
                sdec: ScaleDec::new(&p),
                mul: Fp16Mul::new(&p),
                pa: PackA::new(&p),
                pb: PackB::new(&p),
            }),
        };
        Ok(Datapath { inner })
    }

    /// The output word for LUT word `entry` (bias register code `bias`, ignored for FP16
    /// entries) times scale code `scale`.
    pub fn eval(&mut self, entry: u32, bias: u8, scale: u8) -> u16 {
        self.inner.eval(entry, bias, scale)
    }
}
