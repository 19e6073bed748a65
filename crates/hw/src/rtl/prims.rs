//! Storage primitives with hand-written Verilog: a plain register, a register with a
//! synchronous active-high reset, and the table memory (one write port, one registered
//! read port). rust-hdl's own `DFF` has no reset and emits an `initial` block.

use rust_hdl::prelude::*;

/// A register without reset: `q <= d` at every rising clock edge.
#[derive(LogicBlock, Default)]
pub struct Reg<T: Synth> {
    /// Next value.
    pub d: Signal<In, T>,
    /// Current value.
    pub q: Signal<Out, T>,
    /// Clock.
    pub clock: Signal<In, Clock>,
}

impl<T: Synth> Logic for Reg<T> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.q.next = self.d.val();
        }
    }
    fn connect(&mut self) {
        self.q.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom("always @(posedge clock) begin\n   q <= d;\nend\n".into())
    }
    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "reg".into(),
            clock: "clock".into(),
            inputs: vec!["d".into()],
            outputs: vec!["q".into()],
        }]
    }
}

/// A register with synchronous active-high reset to `T::default()` (all zeros).
#[derive(LogicBlock, Default)]
pub struct RegR<T: Synth> {
    /// Next value.
    pub d: Signal<In, T>,
    /// Current value.
    pub q: Signal<Out, T>,
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset (active high).
    pub reset: Signal<In, bool>,
}

impl<T: Synth> Logic for RegR<T> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.q.next = if self.reset.val() { T::default() } else { self.d.val() };
        }
    }
    fn connect(&mut self) {
        self.q.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "always @(posedge clock) begin\n   if (reset) q <= {};\n   else q <= d;\nend\n",
            T::default().verilog()
        ))
    }
    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "regr".into(),
            clock: "clock".into(),
            inputs: vec!["d".into(), "reset".into()],
            outputs: vec!["q".into()],
        }]
    }
}

/// Table memory: `2^A` words of `W` bits, one synchronous write port and one registered
/// read port on the same clock. A read in the cycle of a write to the same address
/// returns the old word. Contents are not reset.
#[derive(LogicBlock)]
pub struct Lut<const A: usize, const W: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Write enable.
    pub we: Signal<In, bool>,
    /// Write address.
    pub waddr: Signal<In, Bits<A>>,
    /// Write data.
    pub wdata: Signal<In, Bits<W>>,
    /// Read address (sampled at the clock edge).
    pub raddr: Signal<In, Bits<A>>,
    /// Read data (registered).
    pub rdata: Signal<Out, Bits<W>>,
    _mem: Vec<Bits<W>>,
}

impl<const A: usize, const W: usize> Default for Lut<A, W> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            we: Default::default(),
            waddr: Default::default(),
            wdata: Default::default(),
            raddr: Default::default(),
            rdata: Default::default(),
            _mem: vec![Bits::default(); 1 << A],
        }
    }
}

impl<const A: usize, const W: usize> Logic for Lut<A, W> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.rdata.next = self._mem[self.raddr.val().index()];
            if self.we.val() {
                self._mem[self.waddr.val().index()] = self.wdata.val();
            }
        }
    }
    fn connect(&mut self) {
        self.rdata.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "reg [{w}:0] mem [0:{n}];\n\nalways @(posedge clock) begin\n   if (we) mem[waddr] <= wdata;\n   rdata <= mem[raddr];\nend\n",
            w = W - 1,
            n = (1usize << A) - 1
        ))
    }
    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "lut".into(),
            clock: "clock".into(),
            inputs: vec!["we".into(), "waddr".into(), "wdata".into(), "raddr".into()],
            outputs: vec!["rdata".into()],
        }]
    }
}
