//! Driving the dot-product tile: its port protocol as one driver ([`run_gemv`]) over a
//! small port interface ([`TilePorts`]), implemented by rust-hdl's simulator here
//! ([`TileSim`]) and by the Verilated model in `sop-cosim`, so both run the same cycles.
//! The expected results come from the golden model ([`golden_gemv`], [`crate::tile`]).
//!
//! Protocol (docs/hardware.md, "Dot-product tile"): tables, biases and mode through the
//! load port; the activation vector once through the pre-pass (`x_valid`, `x_last` at each
//! block's last word), which answers each block's `emax` and non-finite flag one cycle
//! later; then the weight matrix `R` rows at a time, one column per cycle, back to back:
//! the column's activation word, `block_start` with the block's `emax`/`nan` and each
//! row's scale code and selection bit, `last` at the row's last column. Each group's
//! results appear together `TILE_LATENCY` cycles after its last column.

use rust_hdl::prelude::*;

use crate::config::LaneConfig;
use crate::model::decode_word;
use crate::model::Tables;
use crate::rtl::tile::Tile;
pub use crate::rtl::tile::{TileGeom, TILE_LATENCY, TILE_MIN_BLOCK};
use crate::rtl::tile_conv::ConvTile;
pub use crate::rtl::tile_conv::{CONV_LATENCY, CONV_MIN_COLS};
use crate::tile::{dot_row, dot_row_conventional, ActFormat};
use crate::HwError;

/// Settling passes allowed per half clock cycle.
const SETTLE: usize = 2000;

/// One cycle of the tile's weight stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileCol {
    /// A column is presented.
    pub valid: bool,
    /// First column of a block.
    pub block_start: bool,
    /// Last column of the rows.
    pub last: bool,
    /// The column's activation word.
    pub act: u16,
    /// The block's largest exponent field (with `block_start`).
    pub emax: u8,
    /// The block holds Inf/NaN (with `block_start`).
    pub nan: bool,
    /// Per row: `(code, scale code, selection bit)`.
    pub rows: Vec<(u32, u8, bool)>,
}

/// The two dot-product tiles. Both have the same ports and protocol and take the same jobs
/// (the block limits of the HIF tile's [`TileGeom`]); they differ in the datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// The block dot-product tile (`crates/hw/src/rtl/tile.rs`) on the HIF engine:
    /// shift-add elements, an exact block sum, one block-scale multiply and one FP32 add
    /// per block.
    Hif,
    /// Its conventional baseline (`crates/hw/src/rtl/tile_conv.rs`) on the FP16-LUT engine:
    /// FP16 weights, a multiplier per row and one FP32 add per product.
    Conventional,
}

impl TileKind {
    /// Both kinds.
    pub const ALL: [TileKind; 2] = [TileKind::Hif, TileKind::Conventional];

    /// Module name of the tile with activations in `act`: `sop_tile_hif8_bf16`,
    /// `sop_tile_fp16lut_bf16`. Files whose stem starts with `sop_tile_` are tiles.
    pub fn name(self, act: ActFormat) -> String {
        let w = match self {
            TileKind::Hif => "hif8",
            TileKind::Conventional => "fp16lut",
        };
        format!("sop_tile_{w}_{}", act.name().to_lowercase())
    }

    /// The kind and activation format of a tile module name ([`Self::name`]).
    pub fn from_name(name: &str) -> Option<(TileKind, ActFormat)> {
        TileKind::ALL
            .into_iter()
            .flat_map(|k| ActFormat::ALL.map(|a| (k, a)))
            .find(|&(k, a)| k.name(a) == name)
    }

    /// The decode engine the tile's rows are built on.
    pub fn engine(self) -> LaneConfig {
        let hif = self == TileKind::Hif;
        crate::default_configs()
            .into_iter()
            .find(|c| c.engine && c.lut.hif().is_some() == hif)
            .expect("the default configurations include both engines")
    }

    /// Cycles from a row group's last column to its results (`out_valid`).
    pub fn latency(self) -> u32 {
        match self {
            TileKind::Hif => TILE_LATENCY,
            TileKind::Conventional => CONV_LATENCY,
        }
    }

    /// Fewest columns of a job.
    pub fn min_cols(self) -> usize {
        match self {
            TileKind::Hif => TILE_MIN_BLOCK as usize,
            TileKind::Conventional => CONV_MIN_COLS as usize,
        }
    }
}

/// The ports of a tile, cycle by cycle: set inputs, then [`TilePorts::tick`] (outputs read
/// before a tick are those of the current cycle).
pub trait TilePorts {
    /// Which tile this is.
    fn kind(&self) -> TileKind;
    /// Rows of the tile.
    fn rows(&self) -> usize;
    /// Synchronous reset input.
    fn set_reset(&mut self, r: bool);
    /// Load port: table select, address, word and write enable; bias value and write enable.
    fn set_load(&mut self, table: bool, addr: u32, data: u32, we: bool, bias: u8, bias_we: bool);
    /// Mode register input.
    fn set_mode(&mut self, mode: u8, we: bool);
    /// Pre-pass inputs.
    fn set_x(&mut self, valid: bool, word: u16, last: bool);
    /// Pre-pass outputs: `(valid, emax, nan)`.
    fn xm(&mut self) -> (bool, u8, bool);
    /// Weight-stream inputs of this cycle.
    fn set_col(&mut self, col: &TileCol);
    /// `out_valid`.
    fn out_valid(&mut self) -> bool;
    /// Row `i`'s result.
    fn acc(&mut self, i: usize) -> u32;
    /// One clock cycle.
    fn tick(&mut self);
}

/// One matrix-vector product for the tile: `y[r] = sum_c w[r][c] x[c]` before the tensor
/// scale, the weights as the decode engine streams them.
#[derive(Clone, Debug)]
pub struct GemvJob<'a> {
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs).
    pub cols: usize,
    /// Weights per block; `cols` must be a multiple.
    pub block: usize,
    /// Codes, row-major (`rows x cols`).
    pub codes: &'a [u8],
    /// Scale code per block, row-major.
    pub scales: &'a [u8],
    /// Selection bit per block, row-major.
    pub sel: &'a [bool],
    /// Activation words (`cols`).
    pub x: &'a [u16],
}

impl GemvJob<'_> {
    /// Checks the shape against the tile's limits.
    pub fn check(&self, g: &TileGeom) -> Result<(), HwError> {
        let bad = |m: String| Err(HwError::Sim(m));
        if self.block < TILE_MIN_BLOCK as usize || self.block > g.max_block as usize {
            return bad(format!(
                "blocks of {} weights: the tile takes {TILE_MIN_BLOCK} ..= {} ({} activations)",
                self.block,
                g.max_block,
                g.act.name()
            ));
        }
        if self.cols == 0 || self.cols % self.block != 0 {
            return bad(format!(
                "{} columns are not a non-zero multiple of the block ({})",
                self.cols, self.block
            ));
        }
        let nb = self.rows * self.cols / self.block;
        if self.codes.len() != self.rows * self.cols || self.scales.len() != nb || self.sel.len() != nb {
            return bad("codes, scales or selection bits do not match the shape".into());
        }
        if self.x.len() != self.cols {
            return bad(format!("{} activations for {} columns", self.x.len(), self.cols));
        }
        Ok(())
    }
}

/// What the tile returned for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GemvOut {
    /// Per row, the result bits (binary32, before the tensor scale).
    pub y: Vec<u32>,
    /// Per block of the activation vector, the pre-pass's `(emax, nan)`.
    pub blocks: Vec<(u8, bool)>,
    /// Clock cycles, pre-pass included.
    pub cycles: u64,
}

/// One reset cycle.
pub fn reset(p: &mut dyn TilePorts) {
    idle(p);
    p.set_reset(true);
    p.tick();
    p.set_reset(false);
}

fn idle(p: &mut dyn TilePorts) {
    let n = p.rows();
    p.set_load(false, 0, 0, false, 0, false);
    p.set_mode(0, false);
    p.set_x(false, 0, false);
    p.set_col(&TileCol {
        rows: vec![(0, 0, false); n],
        ..TileCol::default()
    });
}

/// Writes the mode register, both tables and both bias registers, one word per cycle.
pub fn load_tables(p: &mut dyn TilePorts, cfg: &LaneConfig, t: &Tables) -> Result<(), HwError> {
    t.check(cfg)?;
    idle(p);
    if let Some(m) = t.mode {
        p.set_mode(m.word(), true);
        p.tick();
        p.set_mode(0, false);
    }
    for (ti, entries) in t.entries.iter().enumerate() {
        for (a, w) in entries.iter().enumerate() {
            p.set_load(ti == 1, a as u32, *w, true, 0, false);
            p.tick();
        }
        p.set_load(ti == 1, 0, 0, false, t.bias_code(ti), true);
        p.tick();
    }
    p.set_load(false, 0, 0, false, 0, false);
    Ok(())
}

/// Runs one job (tables already loaded): the pre-pass, then the rows in groups of
/// `p.rows()`, back to back. Errors when the tile's outputs break the protocol (a result
/// missing or early).
pub fn run_gemv(p: &mut dyn TilePorts, g: &TileGeom, job: &GemvJob) -> Result<GemvOut, HwError> {
    job.check(g)?;
    let kind = p.kind();
    if job.cols < kind.min_cols() {
        return Err(HwError::Sim(format!(
            "{} columns: the {kind:?} tile takes rows of {} columns or more",
            job.cols,
            kind.min_cols()
        )));
    }
    let latency = kind.latency() as usize;
    let r = p.rows();
    let nblk = job.cols / job.block;
    let mut cycles = 0u64;
    idle(p);
    // Pre-pass.
    let mut blocks = Vec::with_capacity(nblk);
    for (i, &w) in job.x.iter().enumerate() {
        p.set_x(true, w, (i + 1) % job.block == 0);
        let (v, e, n) = p.xm();
        if v {
            blocks.push((e, n));
        }
        p.tick();
        cycles += 1;
    }
    p.set_x(false, 0, false);
    let (v, e, n) = p.xm();
    if v {
        blocks.push((e, n));
    }
    p.tick();
    cycles += 1;
    if blocks.len() != nblk {
        return Err(HwError::Sim(format!(
            "the pre-pass answered {} blocks for {nblk}",
            blocks.len()
        )));
    }
    // Weight stream.
    let groups = job.rows.div_ceil(r);
    let mut y = Vec::with_capacity(groups * r);
    let total = groups * job.cols + latency;
    let mut col = TileCol {
        rows: vec![(0, 0, false); r],
        ..TileCol::default()
    };
    for k in 0..total {
        if p.out_valid() {
            let done = y.len() / r;
            let expect = (done + 1) * job.cols - 1 + latency;
            if k != expect {
                return Err(HwError::Sim(format!(
                    "results of row group {done} in stream cycle {k}, expected {expect}"
                )));
            }
            for i in 0..r {
                y.push(p.acc(i));
            }
        }
        if k < groups * job.cols {
            let (gi, c) = (k / job.cols, k % job.cols);
            let b = c / job.block;
            col.valid = true;
            col.block_start = c % job.block == 0;
            col.last = c + 1 == job.cols;
            col.act = job.x[c];
            (col.emax, col.nan) = blocks[b];
            for (i, slot) in col.rows.iter_mut().enumerate() {
                let row = gi * r + i;
                *slot = if row < job.rows {
                    let bi = row * nblk + b;
                    (job.codes[row * job.cols + c] as u32, job.scales[bi], job.sel[bi])
                } else {
                    (0, 0, false)
                };
            }
        } else {
            col = TileCol {
                rows: vec![(0, 0, false); r],
                ..TileCol::default()
            };
        }
        p.set_col(&col);
        p.tick();
        cycles += 1;
    }
    if y.len() != groups * r {
        return Err(HwError::Sim(format!("{} results for {} rows", y.len(), groups * r)));
    }
    y.truncate(job.rows);
    Ok(GemvOut { y, blocks, cycles })
}

/// The golden model's results of a job (docs/spec.md 6.2, before the tensor scale).
pub fn golden_gemv(cfg: &LaneConfig, tables: &Tables, act: ActFormat, job: &GemvJob) -> Vec<u32> {
    let nblk = job.cols / job.block;
    let x: Vec<u32> = job.x.iter().map(|&w| w as u32).collect();
    (0..job.rows)
        .map(|row| {
            let codes: Vec<u32> = job.codes[row * job.cols..(row + 1) * job.cols]
                .iter()
                .map(|&c| c as u32)
                .collect();
            let blocks: Vec<(u8, bool)> = (0..nblk)
                .map(|b| (job.scales[row * nblk + b], job.sel[row * nblk + b]))
                .collect();
            dot_row(cfg, tables, act, &x, &codes, &blocks, job.block).to_bits()
        })
        .collect()
}

/// The golden model's results of a job on the conventional tile (docs/spec.md 6.3, before
/// the tensor scale): each weight decoded to its FP16 word by the FP16-LUT engine's golden
/// model ([`decode_word`]), then [`dot_row_conventional`].
pub fn golden_gemv_conventional(cfg: &LaneConfig, tables: &Tables, act: ActFormat, job: &GemvJob) -> Vec<u32> {
    let nblk = job.cols / job.block;
    let x: Vec<u32> = job.x.iter().map(|&w| w as u32).collect();
    let mut w = vec![0u16; job.cols];
    (0..job.rows)
        .map(|row| {
            for (c, wc) in w.iter_mut().enumerate() {
                let bi = row * nblk + c / job.block;
                let code = job.codes[row * job.cols + c] as u32;
                *wc = decode_word(cfg, tables, job.sel[bi], code, job.scales[bi]);
            }
            dot_row_conventional(act, &w, &x).to_bits()
        })
        .collect()
}

/// The golden results of a job on a tile of kind `kind` (tables for its engine,
/// [`TileKind::engine`]).
pub fn golden_for(kind: TileKind, tables: &Tables, act: ActFormat, job: &GemvJob) -> Vec<u32> {
    let cfg = kind.engine();
    match kind {
        TileKind::Hif => golden_gemv(&cfg, tables, act, job),
        TileKind::Conventional => golden_gemv_conventional(&cfg, tables, act, job),
    }
}

/// The golden pre-pass: per block, the largest exponent field `max(e, 1)` over its non-zero
/// activations (0 when all are zero) and whether one is not finite.
pub fn golden_blocks(act: ActFormat, x: &[u16], block: usize) -> Vec<(u8, bool)> {
    let (_, mb, bias, _) = act.layout();
    x.chunks(block)
        .map(|ws| {
            let mut emax = 0u8;
            let mut nan = false;
            for &w in ws {
                match act.fields(w as u32) {
                    crate::tile::Act::NonFinite => nan = true,
                    crate::tile::Act::Finite { sig, exp, .. } => {
                        if sig != 0 {
                            emax = emax.max((exp + bias + mb as i32) as u8);
                        }
                    }
                }
            }
            (emax, nan)
        })
        .collect()
}

/// The port access of both tiles (the same port names).
macro_rules! tile_ports {
    ($kind:expr, $($g:ident),+ ; $ty:ty) => {
impl<$(const $g: usize),+> TilePorts for $ty {
    fn kind(&self) -> TileKind {
        $kind
    }
    fn rows(&self) -> usize {
        self.acc.len()
    }
    fn set_reset(&mut self, r: bool) {
        self.reset.next = r;
    }
    fn set_load(&mut self, table: bool, addr: u32, data: u32, we: bool, bias: u8, bias_we: bool) {
        self.load_table.next = table;
        self.load_addr.next = (addr as u64).into();
        self.load_data.next = (data as u64).into();
        self.load_we.next = we;
        self.load_bias.next = (bias as u64).into();
        self.load_bias_we.next = bias_we;
    }
    fn set_mode(&mut self, mode: u8, we: bool) {
        self.load_mode.next = (mode as u64).into();
        self.load_mode_we.next = we;
    }
    fn set_x(&mut self, valid: bool, word: u16, last: bool) {
        self.x_valid.next = valid;
        self.x_word.next = (word as u64).into();
        self.x_last.next = last;
    }
    fn xm(&mut self) -> (bool, u8, bool) {
        settle(self);
        (
            self.xm_valid.val(),
            self.xm_emax.val().to_u64() as u8,
            self.xm_nan.val(),
        )
    }
    fn set_col(&mut self, col: &TileCol) {
        self.valid.next = col.valid;
        self.block_start.next = col.block_start;
        self.last.next = col.last;
        self.act.next = (col.act as u64).into();
        self.emax.next = (col.emax as u64).into();
        self.nan.next = col.nan;
        for (i, &(c, s, l)) in col.rows.iter().enumerate() {
            self.code[i].next = (c as u64).into();
            self.scale[i].next = (s as u64).into();
            self.sel[i].next = l;
        }
    }
    fn out_valid(&mut self) -> bool {
        settle(self);
        self.out_valid.val()
    }
    fn acc(&mut self, i: usize) -> u32 {
        settle(self);
        self.acc[i].val().to_u64() as u32
    }
    fn tick(&mut self) {
        settle(self);
        self.clock.next = Clock { clk: true };
        settle(self);
        self.clock.next = Clock { clk: false };
        settle(self);
    }
}
    };
}

tile_ports!(TileKind::Hif, C, A, W; Tile<C, A, W>);
tile_ports!(TileKind::Conventional, C, A, W, PW, WW; ConvTile<C, A, W, PW, WW>);

fn settle<B: Block>(b: &mut B) {
    assert!(simulate(b, SETTLE), "rust-hdl simulation did not settle");
}

/// The tile's configuration: the HIF decode engine (the only one a tile is built on).
pub fn tile_engine() -> LaneConfig {
    TileKind::Hif.engine()
}

/// A rust-hdl simulation of a tile.
pub struct TileSim {
    tile: Box<Tile<6, 7, 8>>,
    /// The tile's geometry.
    pub geom: TileGeom,
}

impl TileSim {
    /// A tile of `rows` rows with activations in `act` on the HIF engine.
    pub fn new(act: ActFormat, rows: usize) -> TileSim {
        let cfg = tile_engine();
        let geom = TileGeom::new(&cfg, act);
        let mut tile = Box::new(Tile::<6, 7, 8>::new(&cfg, &geom, rows));
        tile.connect_all();
        TileSim { tile, geom }
    }

    /// The ports.
    pub fn ports(&mut self) -> &mut dyn TilePorts {
        self.tile.as_mut()
    }

    /// The tile's Verilog (rust-hdl's text, before the emitter's header).
    pub fn verilog(&mut self) -> String {
        generate_verilog(self.tile.as_ref())
    }
}

/// A rust-hdl simulation of the conventional tile.
pub struct ConvTileSim {
    tile: Box<ConvTile<6, 7, 16, 16, 17>>,
}

impl ConvTileSim {
    /// A conventional tile of `rows` rows with activations in `act` on the FP16-LUT engine.
    pub fn new(act: ActFormat, rows: usize) -> ConvTileSim {
        let cfg = TileKind::Conventional.engine();
        let mut tile = Box::new(ConvTile::<6, 7, 16, 16, 17>::new(&cfg, act, rows));
        tile.connect_all();
        ConvTileSim { tile }
    }

    /// The ports.
    pub fn ports(&mut self) -> &mut dyn TilePorts {
        self.tile.as_mut()
    }

    /// The tile's Verilog (rust-hdl's text, before the emitter's header).
    pub fn verilog(&mut self) -> String {
        generate_verilog(self.tile.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{all_modes, Mode};

    use crate::rng::XorShift as Rng;

    /// Random tables for the engine in `mode`: HIF words with random signs, exponents and
    /// mantissa codes (some zero codes), biases in range.
    fn tables(rng: &mut Rng, cfg: &LaneConfig, mode: Mode) -> Tables {
        let h = cfg.lut.hif().unwrap();
        let mut t = Tables::zeroed(cfg);
        for tb in 0..2 {
            for e in t.entries[tb].iter_mut() {
                *e = rng.below(1 << h.bits()) as u32;
            }
            t.bias[tb] = rng.below(24) as i32 - 8;
        }
        t.mode = Some(mode);
        t
    }

    /// BF16 activations of one block: a spread of exponents around a block level, some
    /// zeros, negative values, subnormals when the level is low; `nan` puts an Inf or NaN
    /// somewhere.
    fn acts(rng: &mut Rng, n: usize, level: u64, nan: bool) -> Vec<u16> {
        let mut x: Vec<u16> = (0..n)
            .map(|_| {
                if rng.below(8) == 0 {
                    return 0;
                }
                let e = (level + rng.below(12)).saturating_sub(6).min(254);
                let s = rng.below(2) << 15;
                (s | e << 7 | rng.below(128)) as u16
            })
            .collect();
        if nan {
            let i = rng.below(n as u64) as usize;
            x[i] = if rng.below(2) == 0 { 0x7f80 } else { 0xffc1 };
        }
        x
    }

    /// Runs `job` (tables `t` loaded) on `p` and checks every result and pre-pass answer
    /// against the golden model of `p`'s kind; counts `(results, non-zero, NaN)`.
    fn check_job(
        p: &mut dyn TilePorts,
        g: &TileGeom,
        t: &Tables,
        job: &GemvJob,
        case: usize,
        counts: &mut (usize, usize, usize),
    ) {
        let kind = p.kind();
        let got = run_gemv(p, g, job).unwrap();
        assert_eq!(
            got.blocks,
            golden_blocks(ActFormat::Bf16, job.x, job.block),
            "case {case}"
        );
        let want = golden_for(kind, t, ActFormat::Bf16, job);
        for (r, (a, b)) in got.y.iter().zip(&want).enumerate() {
            assert_eq!(
                a,
                b,
                "{kind:?} case {case} ({:?}, block {}) row {r}: tile {} ({a:#010x}), golden {} ({b:#010x})",
                t.mode,
                job.block,
                f32::from_bits(*a),
                f32::from_bits(*b)
            );
            counts.0 += 1;
            counts.1 += usize::from(*a & 0x7fff_ffff != 0);
            counts.2 += usize::from(*a == crate::tile::ROW_NAN);
        }
    }

    #[test]
    fn tile_matches_the_golden_model_in_rust_hdl() {
        let cfg = tile_engine();
        let mut sim = TileSim::new(ActFormat::Bf16, 2);
        let g = sim.geom;
        let mut rng = Rng(0x7153_a11e);
        reset(sim.ports());
        let modes = all_modes();
        let mut counts = (0, 0, 0);
        for case in 0..12 {
            let mode = modes[case % modes.len()];
            let t = tables(&mut rng, &cfg, mode);
            load_tables(sim.ports(), &cfg, &t).unwrap();
            let block = [8usize, 16, 32][case % 3];
            let (rows, cols) = (3, 2 * block);
            let levels = [1u64, 60, 127, 200];
            let mut x = Vec::new();
            for b in 0..cols / block {
                let nan = case == 7 && b == 1;
                x.extend(acts(&mut rng, block, levels[(case + b) % 4], nan));
            }
            let codes: Vec<u8> = (0..rows * cols).map(|_| rng.below(64) as u8).collect();
            let nb = rows * cols / block;
            let scales: Vec<u8> = (0..nb).map(|_| rng.below(256) as u8).collect();
            let sel: Vec<bool> = (0..nb).map(|_| rng.below(2) == 1).collect();
            let job = GemvJob {
                rows,
                cols,
                block,
                codes: &codes,
                scales: &scales,
                sel: &sel,
                x: &x,
            };
            check_job(sim.ports(), &g, &t, &job, case, &mut counts);
        }
        let (checked, nonzero, nans) = counts;
        assert_eq!(checked, 36);
        // The stimulus reaches real sums and the NaN rule, not only zeros.
        assert!(nonzero >= 24 && nans >= 1, "{nonzero} non-zero, {nans} NaN results");
    }

    /// Random FP16 tables for the FP16-LUT engine in `mode`: words over the whole range,
    /// a few Inf/NaN ones when `special`.
    fn fp16_tables(rng: &mut Rng, cfg: &LaneConfig, mode: Mode, special: bool) -> Tables {
        let mut t = Tables::zeroed(cfg);
        for tb in 0..2 {
            for e in t.entries[tb].iter_mut() {
                let ex = if special && rng.below(16) == 0 {
                    31
                } else {
                    1 + rng.below(20)
                };
                *e = (rng.below(2) << 15 | ex << 10 | rng.below(1024)) as u32;
            }
        }
        t.mode = Some(mode);
        t
    }

    #[test]
    fn conventional_tile_matches_the_golden_model_in_rust_hdl() {
        let kind = TileKind::Conventional;
        let cfg = kind.engine();
        let g = TileGeom::new(&tile_engine(), ActFormat::Bf16);
        let mut sim = ConvTileSim::new(ActFormat::Bf16, 2);
        let mut rng = Rng(0xc0_57a1);
        reset(sim.ports());
        let modes = all_modes();
        let mut counts = (0, 0, 0);
        for case in 0..8 {
            let mode = modes[(3 * case) % modes.len()];
            let t = fp16_tables(&mut rng, &cfg, mode, case == 5);
            load_tables(sim.ports(), &cfg, &t).unwrap();
            let block = [8usize, 16, 32][case % 3];
            let (rows, cols) = (3, (CONV_MIN_COLS as usize).div_ceil(block) * block);
            let levels = [1u64, 60, 127, 200];
            let mut x = Vec::new();
            for b in 0..cols / block {
                x.extend(acts(&mut rng, block, levels[(case + b) % 4], case == 6 && b == 1));
            }
            let codes: Vec<u8> = (0..rows * cols).map(|_| rng.below(64) as u8).collect();
            let nb = rows * cols / block;
            let scales: Vec<u8> = (0..nb).map(|_| rng.below(256) as u8).collect();
            let sel: Vec<bool> = (0..nb).map(|_| rng.below(2) == 1).collect();
            let job = GemvJob {
                rows,
                cols,
                block,
                codes: &codes,
                scales: &scales,
                sel: &sel,
                x: &x,
            };
            check_job(sim.ports(), &g, &t, &job, case, &mut counts);
        }
        let (checked, nonzero, nans) = counts;
        assert_eq!(checked, 24);
        assert!(nonzero >= 16 && nans >= 2, "{nonzero} non-zero, {nans} NaN results");
    }

    #[test]
    fn tile_names_round_trip() {
        for k in TileKind::ALL {
            for a in ActFormat::ALL {
                assert_eq!(TileKind::from_name(&k.name(a)), Some((k, a)));
            }
        }
        assert_eq!(TileKind::Hif.name(ActFormat::Bf16), "sop_tile_hif8_bf16");
        assert_eq!(TileKind::Conventional.name(ActFormat::Bf16), "sop_tile_fp16lut_bf16");
        assert_eq!(TileKind::from_name("sop_tile_x"), None);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let mut sim = TileSim::new(ActFormat::Bf16, 2);
        let g = sim.geom;
        let x = [0u16; 12];
        let job = GemvJob {
            rows: 1,
            cols: 12,
            block: 4,
            codes: &[0; 12],
            scales: &[0; 3],
            sel: &[false; 3],
            x: &x,
        };
        let e = run_gemv(sim.ports(), &g, &job).unwrap_err().to_string();
        assert!(e.contains("blocks of 4 weights"), "{e}");
    }
}
