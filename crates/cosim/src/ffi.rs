//! The Verilated models linked by the build script, and [`Dut`], a small safe wrapper that
//! drives one of them.
//!
//! The build script (`build.rs`) Verilates every `rtl-out/*.v` and generates one C++ shim per
//! model variant with `extern "C"` functions (`new`, `free`, `ports`, `tick`, `raw`,
//! `vcd_open`, `vcd_dump`, `vcd_cycle`, `vcd_close`). `ports` hands out the address of every
//! top-level port (Verilator keeps each in one `CData`/`SData` member of the model); [`Dut`]
//! writes inputs and reads outputs through those pointers and calls `tick` once per clock
//! cycle, so a cycle costs one FFI call.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use sop_hw::config::{parse_lut, parse_output, parse_scale};
use sop_hw::sparse::Correction;
use sop_hw::{Beat, LaneConfig, Tables};

use crate::CosimError;

/// Which build of a configuration's Verilog a [`Dut`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The committed Verilog, Verilated without tracing (the fast model).
    Plain,
    /// The committed Verilog, Verilated with `--trace` (can write a VCD; about 30% slower per
    /// cycle even when not dumping, and compiled at -O1).
    Traced,
    /// The deliberately broken copy of [`MUTANT_CONFIG`] or [`HIF_MUTANT_CONFIG`] used by
    /// the mutation check (the packer's tie rule changed, see [`MUTATION`]).
    Mutant,
    /// [`Variant::Mutant`] with `--trace` ([`MUTANT_CONFIG`] only).
    MutantTraced,
    /// The engine ([`ENGINE_MUTANT_CONFIG`]) with its mode decode broken ([`MODE_MUTATION`]);
    /// its `Mutant` variant has the correction unit's tie rule broken ([`CORR_MUTATION`]).
    ModeMutant,
}

impl Variant {
    /// The traced variant of the same Verilog.
    pub fn traced(self) -> Variant {
        match self {
            Variant::Plain | Variant::Traced => Variant::Traced,
            Variant::Mutant | Variant::MutantTraced => Variant::MutantTraced,
            // Not built traced: a replay of it fails to open a VCD, with an error.
            Variant::ModeMutant => Variant::ModeMutant,
        }
    }

    /// True for the variants built with `--trace`.
    pub fn is_traced(self) -> bool {
        matches!(self, Variant::Traced | Variant::MutantTraced)
    }

    /// True for the mutated Verilog.
    pub fn is_mutant(self) -> bool {
        matches!(self, Variant::Mutant | Variant::MutantTraced | Variant::ModeMutant)
    }
}

/// Parameters stated in the header comment of a Verilog file.
pub(crate) struct HeaderParams {
    pub(crate) lanes: u32,
    pub(crate) engine: bool,
    pub(crate) code_bits: u32,
    pub(crate) block: u32,
    pub(crate) scale: &'static str,
    pub(crate) lut: &'static str,
    pub(crate) output: &'static str,
}

/// One top-level port of a Verilated model.
pub(crate) struct PortDesc {
    pub(crate) name: &'static str,
    pub(crate) input: bool,
    pub(crate) bits: u32,
    pub(crate) bytes: u32,
}

/// The shim functions of one model variant.
pub(crate) struct ModelFns {
    pub(crate) new: unsafe extern "C" fn() -> *mut c_void,
    pub(crate) free: unsafe extern "C" fn(*mut c_void),
    pub(crate) ports: unsafe extern "C" fn(*mut c_void, *mut *mut c_void, u32) -> u32,
    pub(crate) tick: unsafe extern "C" fn(*mut c_void),
    pub(crate) raw: unsafe extern "C" fn(*mut c_void, u64) -> u64,
    pub(crate) raw_stream: unsafe extern "C" fn(*mut c_void, *const u8, u64) -> u64,
    pub(crate) vcd_open: unsafe extern "C" fn(*mut c_void, *const c_char, u64) -> c_int,
    pub(crate) vcd_dump: unsafe extern "C" fn(*mut c_void, c_int),
    pub(crate) vcd_cycle: unsafe extern "C" fn(*mut c_void, u64),
    pub(crate) vcd_close: unsafe extern "C" fn(*mut c_void),
}

/// One linked model variant.
pub(crate) struct ModelDesc {
    pub(crate) name: &'static str,
    pub(crate) variant: Variant,
    pub(crate) source: &'static str,
    pub(crate) header: HeaderParams,
    pub(crate) ports: &'static [PortDesc],
    pub(crate) fns: ModelFns,
}

/// The shim functions of one tile variant.
pub(crate) struct TileFns {
    pub(crate) new: unsafe extern "C" fn() -> *mut c_void,
    pub(crate) free: unsafe extern "C" fn(*mut c_void),
    pub(crate) ports: unsafe extern "C" fn(*mut c_void, *mut *mut c_void, u32) -> u32,
    pub(crate) tick: unsafe extern "C" fn(*mut c_void),
    pub(crate) vcd_open: unsafe extern "C" fn(*mut c_void, *const c_char, u64) -> c_int,
    pub(crate) vcd_dump: unsafe extern "C" fn(*mut c_void, c_int),
    pub(crate) vcd_close: unsafe extern "C" fn(*mut c_void),
}

/// One linked dot-product tile variant (`rtl-out/sop_tile_*.v`).
pub(crate) struct TileDesc {
    pub(crate) name: &'static str,
    pub(crate) variant: Variant,
    pub(crate) rows: u32,
    pub(crate) ports: &'static [PortDesc],
    pub(crate) fns: TileFns,
}

mod generated {
    use super::{HeaderParams, ModelDesc, ModelFns, PortDesc, TileDesc, TileFns, Variant};
    use std::ffi::{c_char, c_int, c_void};
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

pub use generated::{
    CONV_TILE_MUTATION, CORR_MUTATION, ENGINE_MUTANT_CONFIG, HIF_MUTANT_CONFIG, MODE_MUTATION, MUTANT_CONFIG, MUTATION,
    RTL_DIR, TILE_MUTATION, VERILATOR_VERSION,
};
pub(crate) use generated::{MODELS, TILES};

impl ModelDesc {
    fn config(&self) -> Result<LaneConfig, CosimError> {
        let h = &self.header;
        let bad = |what: &str, v: &str| CosimError::Model(format!("{}: header {what} '{v}' is not known", self.source));
        let cfg = LaneConfig {
            name: self.name.to_string(),
            lanes: h.lanes,
            code_bits: h.code_bits,
            block: h.block,
            engine: h.engine,
            scale: parse_scale(h.scale).ok_or_else(|| bad("scale", h.scale))?,
            lut: parse_lut(h.lut).ok_or_else(|| bad("lut", h.lut))?,
            output: parse_output(h.output).ok_or_else(|| bad("output", h.output))?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A Verilated model linked into this crate.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The configuration, read from the Verilog header comment (its name is the top module).
    pub config: LaneConfig,
    /// Which build of the Verilog.
    pub variant: Variant,
    /// The Verilog file it was built from.
    pub source: PathBuf,
}

/// Every linked model (each configuration of `rtl-out/` in its variants), in file order.
pub fn models() -> Vec<ModelInfo> {
    MODELS
        .iter()
        .filter_map(|m| {
            Some(ModelInfo {
                config: m.config().ok()?,
                variant: m.variant,
                source: PathBuf::from(m.source),
            })
        })
        .collect()
}

/// The configurations that have a Verilated model ([`Variant::Plain`]), in file order.
pub fn compiled_configs() -> Vec<LaneConfig> {
    models()
        .into_iter()
        .filter(|m| m.variant == Variant::Plain)
        .map(|m| m.config)
        .collect()
}

fn find(name: &str, variant: Variant) -> Result<&'static ModelDesc, CosimError> {
    MODELS
        .iter()
        .find(|m| m.name == name && m.variant == variant)
        .ok_or_else(|| CosimError::NoModel {
            name: name.to_string(),
            variant,
            available: MODELS
                .iter()
                .filter(|m| m.variant == variant)
                .map(|m| m.name.to_string())
                .collect(),
        })
}

/// The ports of one lane, as raw pointers into the model.
struct LanePorts {
    valid_in: *mut u8,
    block_start: *mut u8,
    scale: *mut u8,
    sel: *mut u8,
    code: *mut u8,
    data_out: *const u16,
    valid_out: *const u8,
    /// The sparse stream of the lane's correction unit (engines).
    sparse: Option<SparsePorts>,
}

/// The sparse-stream ports of one lane.
struct SparsePorts {
    valid: *mut u8,
    pos: *mut u32,
    outlier: *mut u8,
    value: *mut u16,
    ready: *const u8,
}

/// `load_data`: 7 or 8 bits (HIF7/HIF8 tables) or 16 bits (FP16 tables), with its width mask.
enum DataPort {
    U8(*mut u8, u8),
    U16(*mut u16, u16),
}

struct Ports {
    reset: *mut u8,
    load_table: *mut u8,
    load_addr: *mut u8,
    load_data: DataPort,
    load_we: *mut u8,
    load_bias: Option<*mut u8>,
    load_bias_we: Option<*mut u8>,
    load_mode: Option<*mut u8>,
    load_mode_we: Option<*mut u8>,
    lanes: Vec<LanePorts>,
}

/// One write on the shared table load port (a clock cycle with `load_we` or `load_bias_we`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadOp {
    /// Write `word` into entry `addr` of table `table` (0 or 1) in every lane.
    Entry {
        /// Table select (0 = fixed codebook, 1 = dynamic).
        table: usize,
        /// Entry address (the code).
        addr: u32,
        /// The LUT word (HIF7/HIF8/FP16 bits).
        word: u32,
    },
    /// Write the bias register of table `table` (HIF configurations only).
    Bias {
        /// Table select.
        table: usize,
        /// Bias, written as 8-bit two's complement.
        bias: i32,
    },
    /// Write the mode register (engines only; [`sop_hw::mode`]).
    Mode {
        /// The mode word.
        word: u8,
    },
}

/// A running Verilated decode top (device under test).
///
/// Cycle convention (the same as `sop_hw::sim::RtlSim`): in cycle `n` the inputs are driven,
/// the outputs visible in cycle `n` are read, then the rising edge `n` is applied. A weight
/// driven in cycle `n` is visible on `data_out` in cycle `n + latency()`.
pub struct Dut {
    h: NonNull<c_void>,
    desc: &'static ModelDesc,
    cfg: LaneConfig,
    p: Ports,
    code_mask: u8,
    cycle: u64,
    vcd: bool,
}

// SAFETY: a Dut owns its model and the model's own VerilatedContext; nothing is shared with
// other models, and all access goes through `&mut self`.
unsafe impl Send for Dut {}

impl Dut {
    /// Instantiates the [`Variant::Plain`] model of configuration `name` (a file stem of
    /// `rtl-out/`), with the clock low. Call [`Dut::reset`] before use.
    pub fn new(name: &str) -> Result<Dut, CosimError> {
        Dut::with_variant(name, Variant::Plain)
    }

    /// Instantiates a given variant of configuration `name`.
    pub fn with_variant(name: &str, variant: Variant) -> Result<Dut, CosimError> {
        let desc = find(name, variant)?;
        let cfg = desc.config()?;
        // SAFETY: the shim's constructor has no preconditions; it returns a valid handle.
        let h = NonNull::new(unsafe { (desc.fns.new)() })
            .ok_or_else(|| CosimError::Model(format!("{name}: the model could not be created")))?;
        let mut ptrs = vec![std::ptr::null_mut::<c_void>(); desc.ports.len()];
        // SAFETY: `ptrs` has room for `desc.ports.len()` pointers, as passed.
        let n = unsafe { (desc.fns.ports)(h.as_ptr(), ptrs.as_mut_ptr(), ptrs.len() as u32) };
        let result = if n as usize != desc.ports.len() {
            Err(CosimError::Model(format!(
                "{name}: the shim reports {n} ports, the port table {}",
                desc.ports.len()
            )))
        } else {
            Ports::bind(name, desc, &ptrs, cfg.lanes as usize)
        };
        let p = match result {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: `h` came from `new` and is freed once.
                unsafe { (desc.fns.free)(h.as_ptr()) };
                return Err(e);
            }
        };
        let code_mask = ((1u32 << cfg.code_bits) - 1) as u8;
        let mut dut = Dut {
            h,
            desc,
            cfg,
            p,
            code_mask,
            cycle: 0,
            vcd: false,
        };
        dut.idle_inputs();
        Ok(dut)
    }

    /// The configuration of this model (from its Verilog header).
    pub fn config(&self) -> &LaneConfig {
        &self.cfg
    }

    /// The variant running.
    pub fn variant(&self) -> Variant {
        self.desc.variant
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.p.lanes.len()
    }

    /// The current cycle number: clock cycles since creation (plus any [`Dut::set_cycle`]).
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Renumbers the current cycle (used to align a replay with the original run; also the
    /// VCD time base, `10 * cycle`).
    pub fn set_cycle(&mut self, cycle: u64) {
        self.cycle = cycle;
        // SAFETY: valid handle.
        unsafe { (self.desc.fns.vcd_cycle)(self.h.as_ptr(), cycle) };
    }

    /// Drives every lane idle and the load port inactive (reset is left as it is).
    pub fn idle_inputs(&mut self) {
        for i in 0..self.lanes() {
            self.set_lane(i, &Beat::idle());
            self.set_sparse(i, None);
        }
        self.set_load(None);
    }

    /// Drives lane `i`'s inputs for the current cycle (the code is masked to the code width).
    #[inline(always)]
    pub fn set_lane(&mut self, i: usize, b: &Beat) {
        let l = &self.p.lanes[i];
        // SAFETY: the pointers address this model's one-byte input ports (checked in `bind`),
        // valid while `self` lives.
        unsafe {
            l.valid_in.write(b.valid as u8);
            l.block_start.write(b.block_start as u8);
            l.scale.write(b.scale);
            l.sel.write(b.sel as u8);
            l.code.write(b.code as u8 & self.code_mask);
        }
    }

    /// Lane `i`'s outputs visible in the current cycle: `(valid_out, data_out)`.
    #[inline(always)]
    pub fn out_raw(&self, i: usize) -> (bool, u16) {
        let l = &self.p.lanes[i];
        // SAFETY: output port pointers of this model (one and two bytes, checked in `bind`).
        unsafe { (l.valid_out.read() != 0, l.data_out.read()) }
    }

    /// True when the lanes have sparse correction units (engines).
    pub fn has_sparse(&self) -> bool {
        self.p.lanes.first().is_some_and(|l| l.sparse.is_some())
    }

    /// Drives lane `i`'s sparse stream for the current cycle: `Some((position, entry))`
    /// presents an entry, `None` none. No-op without a correction unit (then `entry` must
    /// be `None`).
    #[inline(always)]
    pub fn set_sparse(&mut self, i: usize, entry: Option<(u32, Correction)>) {
        let Some(sp) = &self.p.lanes[i].sparse else {
            assert!(entry.is_none(), "{}: no sparse correction unit", self.cfg.name);
            return;
        };
        let (pos, c) = entry.unwrap_or((
            0,
            Correction {
                outlier: false,
                value: 0,
            },
        ));
        // SAFETY: input ports of this model with the sizes checked in `bind`.
        unsafe {
            sp.valid.write(entry.is_some() as u8);
            sp.pos.write(pos);
            sp.outlier.write(c.outlier as u8);
            sp.value.write(c.value);
        }
    }

    /// Lane `i`'s `sp_ready` in the current cycle (false without a correction unit): a
    /// presented entry is taken at the next clock edge.
    #[inline(always)]
    pub fn sp_ready(&self, i: usize) -> bool {
        // SAFETY: one-byte output port of this model.
        self.p.lanes[i]
            .sparse
            .as_ref()
            .is_some_and(|sp| unsafe { sp.ready.read() != 0 })
    }

    /// The pipeline latency in cycles: a beat driven in cycle `n` is visible on `data_out` in
    /// cycle `n + latency()`.
    pub fn latency(&self) -> u32 {
        sop_hw::params::Params::new(&self.cfg).latency
    }

    /// Lane `i`'s output word visible in the current cycle, if `valid_out`.
    #[inline(always)]
    pub fn out(&self, i: usize) -> Option<u16> {
        let (v, w) = self.out_raw(i);
        v.then_some(w)
    }

    /// Drives the synchronous reset input for the current cycle.
    pub fn set_reset(&mut self, on: bool) {
        // SAFETY: one-byte input port of this model.
        unsafe { self.p.reset.write(on as u8) };
    }

    /// Drives the load port for the current cycle (`None`: no write).
    ///
    /// # Panics
    /// On a bias write for a configuration without bias registers (FP16 tables); use
    /// [`Dut::has_bias`].
    pub fn set_load(&mut self, op: Option<LoadOp>) {
        let (table, addr, data, we, bias, bias_we) = match op {
            None | Some(LoadOp::Mode { .. }) => (0, 0, 0, false, 0u8, false),
            Some(LoadOp::Entry { table, addr, word }) => (table, addr, word, true, 0, false),
            Some(LoadOp::Bias { table, bias }) => (table, 0, 0, false, bias as i8 as u8, true),
        };
        let (mode, mode_we) = match op {
            Some(LoadOp::Mode { word }) => (word, true),
            _ => (0, false),
        };
        // SAFETY: input ports of this model with the sizes checked in `bind`.
        unsafe {
            self.p.load_table.write((table & 1) as u8);
            self.p.load_addr.write(addr as u8 & self.code_mask);
            match self.p.load_data {
                DataPort::U8(p, m) => p.write(data as u8 & m),
                DataPort::U16(p, m) => p.write(data as u16 & m),
            }
            self.p.load_we.write(we as u8);
            if let (Some(b), Some(bwe)) = (self.p.load_bias, self.p.load_bias_we) {
                b.write(bias);
                bwe.write(bias_we as u8);
            } else {
                assert!(!bias_we, "{}: no bias registers (FP16 tables)", self.cfg.name);
            }
            if let (Some(m), Some(mwe)) = (self.p.load_mode, self.p.load_mode_we) {
                m.write(mode);
                mwe.write(mode_we as u8);
            } else {
                assert!(!mode_we, "{}: no mode register (a fixed lane)", self.cfg.name);
            }
        }
    }

    /// True when the model has the table bias registers (HIF tables).
    pub fn has_bias(&self) -> bool {
        self.p.load_bias.is_some()
    }

    /// Applies one clock cycle (rising edge, then falling edge) and advances the cycle count.
    #[inline(always)]
    pub fn tick(&mut self) {
        // SAFETY: valid handle; the shim only touches its own model.
        unsafe { (self.desc.fns.tick)(self.h.as_ptr()) };
        self.cycle += 1;
    }

    /// One cycle with the synchronous reset asserted and every other input idle.
    pub fn reset(&mut self) {
        self.idle_inputs();
        self.set_reset(true);
        self.tick();
        self.set_reset(false);
    }

    /// One cycle writing `word` into entry `addr` of table `table` (lanes idle).
    pub fn load_table(&mut self, table: usize, addr: u32, word: u32) {
        for i in 0..self.lanes() {
            self.set_lane(i, &Beat::idle());
        }
        self.set_load(Some(LoadOp::Entry { table, addr, word }));
        self.tick();
        self.set_load(None);
    }

    /// One cycle writing the bias register of table `table` (lanes idle). Error for
    /// configurations with FP16 tables, which have no bias registers.
    pub fn load_bias(&mut self, table: usize, bias: i32) -> Result<(), CosimError> {
        if !self.has_bias() {
            return Err(CosimError::Model(format!(
                "{}: FP16 tables have no bias register",
                self.cfg.name
            )));
        }
        for i in 0..self.lanes() {
            self.set_lane(i, &Beat::idle());
        }
        self.set_load(Some(LoadOp::Bias { table, bias }));
        self.tick();
        self.set_load(None);
        Ok(())
    }

    /// Loads both tables (and, for HIF, both bias registers) through the load port, one word
    /// per cycle, lanes idle. The order is [`load_ops`].
    pub fn load_tables(&mut self, t: &Tables) -> Result<(), CosimError> {
        t.check(&self.cfg)?;
        for op in load_ops(&self.cfg, t) {
            match op {
                LoadOp::Entry { table, addr, word } => self.load_table(table, addr, word),
                LoadOp::Bias { table, bias } => self.load_bias(table, bias)?,
                LoadOp::Mode { word } => {
                    for i in 0..self.lanes() {
                        self.set_lane(i, &Beat::idle());
                    }
                    self.set_load(Some(LoadOp::Mode { word }));
                    self.tick();
                    self.set_load(None);
                }
            }
        }
        Ok(())
    }

    /// One cycle: drives `beats[i]` on lane `i`, returns each lane's output visible in this
    /// cycle into `out`, then applies the clock edge.
    pub fn step_into(&mut self, beats: &[Beat], out: &mut [Option<u16>]) {
        assert_eq!(beats.len(), self.lanes(), "one beat per lane");
        for (i, b) in beats.iter().enumerate() {
            self.set_lane(i, b);
            out[i] = self.out(i);
        }
        self.tick();
    }

    /// [`Dut::step_into`] returning a new vector.
    pub fn step(&mut self, beats: &[Beat]) -> Vec<Option<u16>> {
        let mut out = vec![None; self.lanes()];
        self.step_into(beats, &mut out);
        out
    }

    /// The benchmark's raw loop: `cycles` cycles clocked in a pure C++ loop, every lane valid
    /// every cycle with pseudo-random codes and scales, nothing checked. Returns a checksum.
    pub fn raw_clock(&mut self, cycles: u64) -> u64 {
        // SAFETY: valid handle.
        let sum = unsafe { (self.desc.fns.raw)(self.h.as_ptr(), cycles) };
        self.cycle += cycles;
        self.idle_inputs();
        sum
    }

    /// The benchmark's raw replay loop: drives the prepared stimulus `buf` in a pure C++ loop,
    /// nothing checked, and returns a checksum of the outputs. `buf` holds 4 bytes per lane
    /// per cycle (see [`raw_stimulus`]); the number of cycles is `buf.len() / (4 * lanes)`.
    pub fn raw_stream(&mut self, buf: &[u8]) -> u64 {
        let cycles = (buf.len() / (4 * self.lanes())) as u64;
        // SAFETY: valid handle; `buf` holds `cycles * 4 * lanes` bytes.
        let sum = unsafe { (self.desc.fns.raw_stream)(self.h.as_ptr(), buf.as_ptr(), cycles) };
        self.cycle += cycles;
        self.idle_inputs();
        sum
    }

    /// Opens a VCD file (traced variants only); the next cycle is numbered as
    /// [`Dut::cycle`]. Dumping starts with [`Dut::vcd_dump`]`(true)`.
    pub fn vcd_open(&mut self, path: &Path) -> Result<(), CosimError> {
        if !self.desc.variant.is_traced() {
            return Err(CosimError::Vcd(format!(
                "{}: the {:?} model was built without --trace",
                self.cfg.name, self.desc.variant
            )));
        }
        if self.vcd {
            return Err(CosimError::Vcd("a VCD file is already open".into()));
        }
        let c = CString::new(path.as_os_str().to_string_lossy().as_bytes())
            .map_err(|_| CosimError::Vcd(format!("{}: path contains a NUL byte", path.display())))?;
        // SAFETY: valid handle and NUL-terminated path.
        let r = unsafe { (self.desc.fns.vcd_open)(self.h.as_ptr(), c.as_ptr(), self.cycle) };
        if r != 0 {
            return Err(CosimError::Vcd(format!("{}: cannot open for writing", path.display())));
        }
        self.vcd = true;
        Ok(())
    }

    /// Enables or disables dumping of the following cycles into the open VCD.
    pub fn vcd_dump(&mut self, on: bool) {
        // SAFETY: valid handle.
        unsafe { (self.desc.fns.vcd_dump)(self.h.as_ptr(), on as c_int) };
    }

    /// Flushes and closes the VCD file (no-op when none is open).
    pub fn vcd_close(&mut self) {
        if self.vcd {
            // SAFETY: valid handle.
            unsafe { (self.desc.fns.vcd_close)(self.h.as_ptr()) };
            self.vcd = false;
        }
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        self.vcd_close();
        // SAFETY: `h` came from `new` and is freed exactly once.
        unsafe { (self.desc.fns.free)(self.h.as_ptr()) };
    }
}

impl std::fmt::Debug for Dut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dut")
            .field("config", &self.cfg.name)
            .field("variant", &self.desc.variant)
            .field("cycle", &self.cycle)
            .finish()
    }
}

/// Encodes per-cycle lane beats for [`Dut::raw_stream`]: for each cycle, for each lane, 4
/// bytes (flags: bit 0 `valid_in`, bit 1 `block_start`, bit 2 `sel`; scale code; code; 0).
/// `beats` yields one beat per lane per cycle, lane-major within a cycle.
pub fn raw_stimulus(beats: impl IntoIterator<Item = Beat>) -> Vec<u8> {
    let mut v = Vec::new();
    for b in beats {
        v.extend_from_slice(&[
            b.valid as u8 | (b.block_start as u8) << 1 | (b.sel as u8) << 2,
            b.scale,
            b.code as u8,
            0,
        ]);
    }
    v
}

/// The table load sequence for `t`: the mode word (engines), then table 0 entries in address
/// order, table 0's bias (HIF only), then table 1 likewise. One cycle each. An engine in a
/// direct minifloat mode reads no table, so only its mode is written; in a LUT mode with
/// 4-bit codes only the 16 entries it can address.
pub fn load_ops(cfg: &LaneConfig, t: &Tables) -> Vec<LoadOp> {
    let mut ops = Vec::new();
    let mut used = usize::MAX;
    if let Some(m) = t.mode {
        ops.push(LoadOp::Mode { word: m.word() });
        if m.element != sop_hw::mode::ElementPath::Lut {
            return ops;
        }
        used = 1 << m.code_bits;
    }
    for (table, entries) in t.entries.iter().enumerate() {
        for (addr, &word) in entries.iter().enumerate().take(used) {
            ops.push(LoadOp::Entry {
                table,
                addr: addr as u32,
                word,
            });
        }
        if cfg.lut.hif().is_some() {
            ops.push(LoadOp::Bias {
                table,
                bias: t.bias[table],
            });
        }
    }
    ops
}

impl Ports {
    fn bind(name: &str, desc: &ModelDesc, ptrs: &[*mut c_void], lanes: usize) -> Result<Ports, CosimError> {
        let get = |port: &str, input: bool, bytes: &[u32]| -> Result<(*mut c_void, u32), CosimError> {
            let i = desc
                .ports
                .iter()
                .position(|p| p.name == port)
                .ok_or_else(|| CosimError::Model(format!("{name}: the model has no port `{port}`")))?;
            let p = &desc.ports[i];
            if p.input != input || !bytes.contains(&p.bytes) || ptrs[i].is_null() {
                return Err(CosimError::Model(format!(
                    "{name}: port `{port}` is an {} of {} bytes, expected an {} of {bytes:?} bytes",
                    if p.input { "input" } else { "output" },
                    p.bytes,
                    if input { "input" } else { "output" },
                )));
            }
            Ok((ptrs[i], p.bytes))
        };
        let in8 = |port: &str| get(port, true, &[1]).map(|(p, _)| p as *mut u8);
        let opt8 = |port: &str| -> Result<Option<*mut u8>, CosimError> {
            if desc.ports.iter().any(|p| p.name == port) {
                in8(port).map(Some)
            } else {
                Ok(None)
            }
        };
        let (dp, db) = get("load_data", true, &[1, 2])?;
        let bits = desc.ports.iter().find(|p| p.name == "load_data").map_or(16, |p| p.bits);
        let mask = ((1u32 << bits) - 1) as u16;
        let load_data = if db == 1 {
            DataPort::U8(dp as *mut u8, mask as u8)
        } else {
            DataPort::U16(dp as *mut u16, mask)
        };
        let mut lp = Vec::with_capacity(lanes);
        for i in 0..lanes {
            lp.push(LanePorts {
                valid_in: in8(&format!("valid_in_{i}"))?,
                block_start: in8(&format!("block_start_{i}"))?,
                scale: in8(&format!("scale_{i}"))?,
                sel: in8(&format!("sel_{i}"))?,
                code: in8(&format!("code_{i}"))?,
                data_out: get(&format!("data_out_{i}"), false, &[2])?.0 as *const u16,
                valid_out: get(&format!("valid_out_{i}"), false, &[1])?.0 as *const u8,
                sparse: match opt8(&format!("sp_valid_{i}"))? {
                    None => None,
                    Some(valid) => Some(SparsePorts {
                        valid,
                        pos: get(&format!("sp_pos_{i}"), true, &[4])?.0 as *mut u32,
                        outlier: in8(&format!("sp_outlier_{i}"))?,
                        value: get(&format!("sp_value_{i}"), true, &[2])?.0 as *mut u16,
                        ready: get(&format!("sp_ready_{i}"), false, &[1])?.0 as *const u8,
                    }),
                },
            });
        }
        let load_bias = opt8("load_bias")?;
        let load_bias_we = opt8("load_bias_we")?;
        if load_bias.is_some() != load_bias_we.is_some() {
            return Err(CosimError::Model(format!(
                "{name}: has only one of load_bias, load_bias_we"
            )));
        }
        let load_mode = opt8("load_mode")?;
        let load_mode_we = opt8("load_mode_we")?;
        if load_mode.is_some() != load_mode_we.is_some() {
            return Err(CosimError::Model(format!(
                "{name}: has only one of load_mode, load_mode_we"
            )));
        }
        Ok(Ports {
            reset: in8("reset")?,
            load_table: in8("load_table")?,
            load_addr: in8("load_addr")?,
            load_data,
            load_we: in8("load_we")?,
            load_bias,
            load_bias_we,
            load_mode,
            load_mode_we,
            lanes: lp,
        })
    }
}
