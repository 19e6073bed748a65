//! The top: `N` lanes sharing one table load port, the two table-bias registers (HIF
//! configurations only) and the mode register (engines only), shared by all lanes; an
//! engine also has a sparse correction unit after each lane, with its own sparse stream.
//!
//! The top is pure wiring. Its simulation and its Verilog are both written here by hand
//! (rust-hdl's `hdl_gen` cannot index two arrays in one name), from the same port list.

use std::fmt::Write as _;

use rust_hdl::prelude::*;

use super::corr::CorrUnit;
use super::lane::Lane;
use super::prims::Reg;
use crate::params::Params;

/// The two per-table bias registers, written through the load port.
#[derive(LogicBlock, Default)]
pub struct BiasRegs {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Write strobe.
    pub we: Signal<In, bool>,
    /// Table select.
    pub tsel: Signal<In, bool>,
    /// Bias value (8-bit two's complement).
    pub data: Signal<In, Bits<8>>,
    /// Bias of table 0.
    pub b0: Signal<Out, Bits<8>>,
    /// Bias of table 1.
    pub b1: Signal<Out, Bits<8>>,
    r0: Reg<Bits<8>>,
    r1: Reg<Bits<8>>,
}

impl Logic for BiasRegs {
    #[hdl_gen]
    fn update(&mut self) {
        self.r0.clock.next = self.clock.val();
        self.r1.clock.next = self.clock.val();
        self.r0.d.next = self.r0.q.val();
        self.r1.d.next = self.r1.q.val();
        if self.we.val() {
            if self.tsel.val() {
                self.r1.d.next = self.data.val();
            } else {
                self.r0.d.next = self.data.val();
            }
        }
        self.b0.next = self.r0.q.val();
        self.b1.next = self.r1.q.val();
    }
}

/// The engine's mode register ([`crate::mode`]), written through the load port. Like the
/// tables and bias registers it is load-port state: the reset does not clear it.
#[derive(LogicBlock, Default)]
pub struct ModeReg {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Write strobe.
    pub we: Signal<In, bool>,
    /// Mode word.
    pub data: Signal<In, Bits<8>>,
    /// The mode register.
    pub q: Signal<Out, Bits<8>>,
    r: Reg<Bits<8>>,
}

impl Logic for ModeReg {
    #[hdl_gen]
    fn update(&mut self) {
        self.r.clock.next = self.clock.val();
        self.r.d.next = self.r.q.val();
        if self.we.val() {
            self.r.d.next = self.data.val();
        }
        self.q.next = self.r.q.val();
    }
}

/// The generated top (see `docs/hardware.md` for the port list).
#[derive(LogicBlock)]
pub struct Top<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, bool>,
    /// Load port: table select.
    pub load_table: Signal<In, bool>,
    /// Load port: entry address.
    pub load_addr: Signal<In, Bits<C>>,
    /// Load port: entry word.
    pub load_data: Signal<In, Bits<W>>,
    /// Load port: entry write enable (all lanes).
    pub load_we: Signal<In, bool>,
    /// Load port: bias value (HIF only).
    pub load_bias: Vec<Signal<In, Bits<8>>>,
    /// Load port: bias write enable (HIF only).
    pub load_bias_we: Vec<Signal<In, bool>>,
    /// Load port: mode word (engines only).
    pub load_mode: Vec<Signal<In, Bits<8>>>,
    /// Load port: mode write enable (engines only).
    pub load_mode_we: Vec<Signal<In, bool>>,
    /// Per lane: weight valid.
    pub valid_in: Vec<Signal<In, bool>>,
    /// Per lane: block start strobe.
    pub block_start: Vec<Signal<In, bool>>,
    /// Per lane: block-scale code.
    pub scale: Vec<Signal<In, Bits<8>>>,
    /// Per lane: table selection bit.
    pub sel: Vec<Signal<In, bool>>,
    /// Per lane: weight code.
    pub code: Vec<Signal<In, Bits<C>>>,
    /// Per lane (engines): a sparse entry is presented.
    pub sp_valid: Vec<Signal<In, bool>>,
    /// Per lane (engines): its position among the lane's words since reset.
    pub sp_pos: Vec<Signal<In, Bits<32>>>,
    /// Per lane (engines): outlier (replace) or residual (add).
    pub sp_outlier: Vec<Signal<In, bool>>,
    /// Per lane (engines): its BF16 value.
    pub sp_value: Vec<Signal<In, Bits<16>>>,
    /// Per lane (engines): the correction unit takes the entry at this edge.
    pub sp_ready: Vec<Signal<Out, bool>>,
    /// Per lane: output word.
    pub data_out: Vec<Signal<Out, Bits<16>>>,
    /// Per lane: output valid.
    pub valid_out: Vec<Signal<Out, bool>>,
    bias: Vec<BiasRegs>,
    mode: Vec<ModeReg>,
    lanes: Vec<Lane<C, A, W, PW, WW>>,
    /// Per lane (engines): the sparse correction unit after the lane.
    corr: Vec<CorrUnit>,
}

fn sigs<D: Direction, T: Synth>(n: usize) -> Vec<Signal<D, T>> {
    (0..n).map(|_| Signal::default()).collect()
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Top<C, A, W, PW, WW> {
    /// A top with `lanes` lanes.
    pub fn new(cfg: &crate::config::LaneConfig, p: &Params, lanes: usize) -> Self {
        let nb = usize::from(p.hif().is_some());
        let nm = usize::from(p.engine);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            load_table: Default::default(),
            load_addr: Default::default(),
            load_data: Default::default(),
            load_we: Default::default(),
            load_bias: sigs(nb),
            load_bias_we: sigs(nb),
            load_mode: sigs(nm),
            load_mode_we: sigs(nm),
            valid_in: sigs(lanes),
            block_start: sigs(lanes),
            scale: sigs(lanes),
            sel: sigs(lanes),
            code: sigs(lanes),
            sp_valid: sigs(nm * lanes),
            sp_pos: sigs(nm * lanes),
            sp_outlier: sigs(nm * lanes),
            sp_value: sigs(nm * lanes),
            sp_ready: sigs(nm * lanes),
            data_out: sigs(lanes),
            valid_out: sigs(lanes),
            bias: (0..nb).map(|_| BiasRegs::default()).collect(),
            mode: (0..nm).map(|_| ModeReg::default()).collect(),
            lanes: (0..lanes).map(|_| Lane::new(cfg, p)).collect(),
            corr: (0..nm * lanes).map(|_| CorrUnit::new(p.output)).collect(),
        }
    }
}

impl<const C: usize, const A: usize, const W: usize, const PW: usize, const WW: usize> Logic for Top<C, A, W, PW, WW> {
    fn update(&mut self) {
        for j in 0..self.bias.len() {
            let b = &mut self.bias[j];
            b.clock.next = self.clock.val();
            b.we.next = self.load_bias_we[j].val();
            b.tsel.next = self.load_table.val();
            b.data.next = self.load_bias[j].val();
        }
        for j in 0..self.mode.len() {
            let m = &mut self.mode[j];
            m.clock.next = self.clock.val();
            m.we.next = self.load_mode_we[j].val();
            m.data.next = self.load_mode[j].val();
        }
        for i in 0..self.lanes.len() {
            let l = &mut self.lanes[i];
            l.clock.next = self.clock.val();
            l.reset.next = self.reset.val();
            l.valid_in.next = self.valid_in[i].val();
            l.block_start.next = self.block_start[i].val();
            l.scale.next = self.scale[i].val();
            l.sel.next = self.sel[i].val();
            l.code.next = self.code[i].val();
            l.load_table.next = self.load_table.val();
            l.load_addr.next = self.load_addr.val();
            l.load_data.next = self.load_data.val();
            l.load_we.next = self.load_we.val();
            for j in 0..l.bias0.len() {
                l.bias0[j].next = self.bias[j].b0.val();
                l.bias1[j].next = self.bias[j].b1.val();
            }
            for j in 0..l.mode.len() {
                l.mode[j].next = self.mode[j].q.val();
            }
            self.data_out[i].next = l.data_out.val();
            self.valid_out[i].next = l.valid_out.val();
        }
        for i in 0..self.corr.len() {
            let u = &mut self.corr[i];
            u.clock.next = self.clock.val();
            u.reset.next = self.reset.val();
            u.in_valid.next = self.lanes[i].valid_out.val();
            u.in_word.next = self.lanes[i].data_out.val();
            u.sp_valid.next = self.sp_valid[i].val();
            u.sp_pos.next = self.sp_pos[i].val();
            u.sp_outlier.next = self.sp_outlier[i].val();
            u.sp_value.next = self.sp_value[i].val();
            self.sp_ready[i].next = u.sp_ready.val();
            self.data_out[i].next = u.out_word.val();
            self.valid_out[i].next = u.out_valid.val();
        }
    }

    fn connect(&mut self) {
        for b in &mut self.bias {
            b.clock.connect();
            b.we.connect();
            b.tsel.connect();
            b.data.connect();
        }
        for m in &mut self.mode {
            m.clock.connect();
            m.we.connect();
            m.data.connect();
        }
        for l in &mut self.lanes {
            l.clock.connect();
            l.reset.connect();
            l.valid_in.connect();
            l.block_start.connect();
            l.scale.connect();
            l.sel.connect();
            l.code.connect();
            l.load_table.connect();
            l.load_addr.connect();
            l.load_data.connect();
            l.load_we.connect();
            for s in l.bias0.iter_mut().chain(l.bias1.iter_mut()).chain(l.mode.iter_mut()) {
                s.connect();
            }
        }
        for u in &mut self.corr {
            u.clock.connect();
            u.reset.connect();
            u.in_valid.connect();
            u.in_word.connect();
            u.sp_valid.connect();
            u.sp_pos.connect();
            u.sp_outlier.connect();
            u.sp_value.connect();
        }
        for s in &mut self.sp_ready {
            s.connect();
        }
        for s in &mut self.data_out {
            s.connect();
        }
        for s in &mut self.valid_out {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let mut v = String::from("always @(*) begin\n");
        for j in 0..self.bias.len() {
            for (port, src) in [
                ("clock", "clock".to_string()),
                ("we", format!("load_bias_we${j}")),
                ("tsel", "load_table".into()),
                ("data", format!("load_bias${j}")),
            ] {
                writeln!(v, "   bias${j}${port} = {src};").unwrap();
            }
        }
        for j in 0..self.mode.len() {
            for (port, src) in [
                ("clock", "clock".to_string()),
                ("we", format!("load_mode_we${j}")),
                ("data", format!("load_mode${j}")),
            ] {
                writeln!(v, "   mode${j}${port} = {src};").unwrap();
            }
        }
        for (i, l) in self.lanes.iter().enumerate() {
            for port in ["clock", "reset", "load_table", "load_addr", "load_data", "load_we"] {
                writeln!(v, "   lanes${i}${port} = {port};").unwrap();
            }
            for port in ["valid_in", "block_start", "scale", "sel", "code"] {
                writeln!(v, "   lanes${i}${port} = {port}${i};").unwrap();
            }
            for j in 0..l.bias0.len() {
                writeln!(v, "   lanes${i}$bias0${j} = bias${j}$b0;").unwrap();
                writeln!(v, "   lanes${i}$bias1${j} = bias${j}$b1;").unwrap();
            }
            for j in 0..l.mode.len() {
                writeln!(v, "   lanes${i}$mode${j} = mode${j}$q;").unwrap();
            }
            if self.corr.is_empty() {
                for port in ["data_out", "valid_out"] {
                    writeln!(v, "   {port}${i} = lanes${i}${port};").unwrap();
                }
            }
        }
        for i in 0..self.corr.len() {
            for (port, src) in [
                ("clock", "clock".to_string()),
                ("reset", "reset".to_string()),
                ("in_valid", format!("lanes${i}$valid_out")),
                ("in_word", format!("lanes${i}$data_out")),
                ("sp_valid", format!("sp_valid${i}")),
                ("sp_pos", format!("sp_pos${i}")),
                ("sp_outlier", format!("sp_outlier${i}")),
                ("sp_value", format!("sp_value${i}")),
            ] {
                writeln!(v, "   corr${i}${port} = {src};").unwrap();
            }
            writeln!(v, "   sp_ready${i} = corr${i}$sp_ready;").unwrap();
            writeln!(v, "   data_out${i} = corr${i}$out_word;").unwrap();
            writeln!(v, "   valid_out${i} = corr${i}$out_valid;").unwrap();
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
