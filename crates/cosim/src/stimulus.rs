//! From quantized layers to lane stimulus: which operating point each configuration decodes
//! ([`point_for`]), the table contents ([`tables_for`]), a layer as stimulus data
//! ([`LayerStim`]) and its cycle-by-cycle stream with idle gaps, early block strobes and
//! re-sends after a reset ([`LayerStream`]).

use sop_formats::point::{Element, LutEntry, OperatingPoint, ScaleFormat};
use sop_formats::Ieee16;
use sop_hw::mode::{ElementPath, Mode};
use sop_hw::sparse::Correction;
use sop_hw::{Beat, LaneConfig, Tables};
use sop_quantize::{minifloat_of, QuantizedLayer};

use crate::harness::{Geometry, Stimulus};
use crate::CosimError;

/// The operating point whose quantized layers configuration `cfg` decodes:
///
/// | configuration | operating point |
/// |---|---|
/// | 4-bit codes, HIF7/HIF8/FP16 LUT, unsigned scale (UE4M4, E4M3) | `NF4+DD4s<scale>b<block>-<lut>` |
/// | 4-bit codes, HIF7/HIF8/FP16 LUT, signed scale (SE4M3) | `Split87+DD4sSE4M3b<block>-<lut>` |
/// | 6-bit codes, HIF7/HIF8 LUT | `DD6s<scale>b<block>-<lut>` |
/// | 6-bit codes, FP16 LUT | `E2M3s<scale>b<block>`, table 0 = the 64 E2M3 values as FP16 |
/// | a HIF engine | `E2M3sUE4M4b<block>` (its direct E2M3 path) |
/// | an FP16-LUT engine | `NF4+DD4sUE4M4b<block>-FP16` (its LUT path, 4-bit mode) |
///
/// For the committed configurations: `sop_c4_hif8_ue4m4_fp16` <- `NF4+DD4sUE4M4b16`,
/// `sop_c4_hif7_ue4m4_fp16` <- `NF4+DD4sUE4M4b16-HIF7`, `sop_c4_hif8_se4m3_fp16` <-
/// `Split87+DD4sSE4M3b16`, `sop_c4_fp16lut_ue4m4_fp16` <- `NF4+DD4sUE4M4b16-FP16`,
/// `sop_c6_fp16lut_ue4m4_bf16` <- `E2M3sUE4M4`, `sop_c6_hif8_ue4m4_bf16` <- `DD6sUE4M4`.
pub fn point_for(cfg: &LaneConfig) -> Result<OperatingPoint, CosimError> {
    if cfg.engine && cfg.lut == LutEntry::Fp16 {
        // The FP16-LUT engine (the HIF engine's baseline): its FP16 tables, in a 4-bit mode.
        return Ok(OperatingPoint::Block {
            element: Element::NF4,
            dynamic: Some(Element::DD4),
            scale: ScaleFormat::UE4M4,
            block: cfg.block,
            lut: cfg.lut,
        });
    }
    if cfg.engine {
        // The paper's FP6 point through the engine's direct E2M3 path: what no fixed HIF
        // lane decodes. Model files (`--quantized`) exercise its other modes.
        return Ok(OperatingPoint::Block {
            element: Element::E2M3,
            dynamic: None,
            scale: ScaleFormat::UE4M4,
            block: cfg.block,
            lut: cfg.lut,
        });
    }
    let (element, dynamic, lut) = match (cfg.code_bits, cfg.lut) {
        (4, lut) => {
            let first = if cfg.scale.is_signed() {
                Element::Split87
            } else {
                Element::NF4
            };
            (first, Some(Element::DD4), lut)
        }
        (6, LutEntry::Hif7 | LutEntry::Hif8) => (Element::DD6, None, cfg.lut),
        (6, LutEntry::Fp16) => (Element::E2M3, None, LutEntry::Hif8),
        (c, _) => {
            return Err(CosimError::Config(format!(
                "{}: no operating point for {c}-bit codes",
                cfg.name
            )))
        }
    };
    if !matches!(cfg.scale, ScaleFormat::UE4M4 | ScaleFormat::E4M3 | ScaleFormat::SE4M3) {
        return Err(CosimError::Config(format!(
            "{}: scale {} is not a decode-lane scale",
            cfg.name,
            cfg.scale.name()
        )));
    }
    Ok(OperatingPoint::Block {
        element,
        dynamic,
        scale: cfg.scale,
        block: cfg.block,
        lut,
    })
}

/// The hardware table contents for a quantized layer: the layer's LUTs in selection order
/// (table 0 = the first member's, table 1 = the dynamic member's; a layer with one table
/// leaves table 1 all zero), with their words and bias registers. A minifloat element
/// (E2M3 on the FP16-LUT configuration) gets table 0 = the FP16 encoding of every code's
/// value (exact: every E2M3 value is an FP16 value).
pub fn tables_for(ql: &QuantizedLayer, cfg: &LaneConfig) -> Result<Tables, CosimError> {
    let bad = |reason: String| CosimError::Layer {
        layer: ql.name.clone(),
        config: cfg.name.clone(),
        reason,
    };
    let mut n = 1usize << cfg.code_bits;
    let mut t = Tables::zeroed(cfg);
    cfg.decodes(&ql.point)
        .map_err(|e| bad(format!("cannot decode {}: {e}", ql.point)))?;
    let OperatingPoint::Block { element, .. } = ql.point else {
        return Err(bad(format!("{} has no block scales", ql.point)));
    };
    if cfg.engine {
        // The engine's mode says how it decodes; a direct minifloat path reads no table, a
        // LUT path the first 2^code_bits entries of each.
        let mode = Mode::for_point(&ql.point).map_err(|e| bad(format!("cannot decode {}: {e}", ql.point)))?;
        t.mode = Some(mode);
        if mode.element != ElementPath::Lut {
            return Ok(t);
        }
        n = 1 << mode.code_bits;
    }
    if ql.tables.is_empty() {
        let mf = minifloat_of(element)
            .ok_or_else(|| bad(format!("{} has neither LUTs nor a minifloat element", ql.point)))?;
        if mf.num_codes() as usize != n {
            return Err(bad(format!("{} has {} codes, the table {n}", mf.name, mf.num_codes())));
        }
        for (code, e) in t.entries[0].iter_mut().enumerate() {
            let v = mf.decode(code as u32);
            let w = Ieee16::Fp16.encode(v);
            if Ieee16::Fp16.decode(w) != v {
                return Err(bad(format!("{} value {v} is not exact in FP16", mf.name)));
            }
            *e = w;
        }
        return Ok(t);
    }
    if ql.tables.len() > 2 {
        return Err(bad(format!("{} tables, the hardware has 2", ql.tables.len())));
    }
    for (i, lut) in ql.tables.iter().enumerate() {
        if lut.entry != cfg.lut {
            return Err(bad(format!(
                "table {i} has {} entries, the configuration {}",
                lut.entry.name(),
                cfg.lut.name()
            )));
        }
        if lut.words.len() != n {
            return Err(bad(format!("table {i} has {} entries, expected {n}", lut.words.len())));
        }
        for (e, &w) in t.entries[i].iter_mut().zip(&lut.words) {
            *e = w as u32;
        }
        t.bias[i] = lut.bias;
    }
    t.check(cfg).map_err(|e| bad(e.to_string()))?;
    Ok(t)
}

/// A layer's outliers and residuals as one list of corrections by flat index, ascending;
/// `Err` when an index is out of range or used twice (the model file refuses both).
pub fn corrections(ql: &QuantizedLayer) -> Result<Vec<(u32, Correction)>, String> {
    let n = ql.rows * ql.cols;
    let mut v: Vec<(u32, Correction)> = ql
        .outliers
        .iter()
        .map(|e| {
            (
                e.index,
                Correction {
                    outlier: true,
                    value: e.bf16,
                },
            )
        })
        .chain(ql.residuals.iter().map(|e| {
            (
                e.index,
                Correction {
                    outlier: false,
                    value: e.bf16,
                },
            )
        }))
        .collect();
    v.sort_unstable_by_key(|e| e.0);
    if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("weight {} has two sparse entries", w[0].0));
    }
    if let Some(e) = v.last().filter(|e| e.0 as usize >= n) {
        return Err(format!("sparse entry at {} is outside the {n} weights", e.0));
    }
    Ok(v)
}

/// One layer as stimulus: codes, per-block selection bits and scale codes, and the tables.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStim {
    /// Layer (tensor) name.
    pub name: String,
    /// Rows (output features).
    pub rows: usize,
    /// Columns (input features).
    pub cols: usize,
    /// Weights per block (the last block of a row is short when it does not divide `cols`).
    pub block: usize,
    /// One code per weight, row-major.
    pub codes: Vec<u8>,
    /// Selection bit per block.
    pub sel: Vec<bool>,
    /// Scale code per block.
    pub scales: Vec<u8>,
    /// Table contents.
    pub tables: Tables,
    /// Blocks streamed: a prefix of the layer's blocks (all by default).
    pub blocks: usize,
    /// Sparse corrections (outliers and residuals) by flat weight index, ascending and
    /// unique; empty for a dense layer. Engines only (a correction unit per lane).
    pub corr: Vec<(u32, Correction)>,
}

impl LayerStim {
    /// The stimulus of a quantized layer for configuration `cfg` (see [`tables_for`]).
    pub fn from_quantized(ql: &QuantizedLayer, cfg: &LaneConfig) -> Result<LayerStim, CosimError> {
        let tables = tables_for(ql, cfg)?;
        let bad = |reason: String| CosimError::Layer {
            layer: ql.name.clone(),
            config: cfg.name.clone(),
            reason,
        };
        let scales = ql
            .scale_codes
            .iter()
            .map(|&s| u8::try_from(s).map_err(|_| bad(format!("scale code {s:#x} is wider than 8 bits"))))
            .collect::<Result<Vec<u8>, _>>()?;
        let cmax = 1u32 << cfg.code_bits;
        if let Some(i) = ql.codes.iter().position(|&c| c as u32 >= cmax) {
            return Err(bad(format!(
                "code {} at {i} is wider than {} bits",
                ql.codes[i], cfg.code_bits
            )));
        }
        if ql.sel.len() != ql.num_blocks() || scales.len() != ql.num_blocks() {
            return Err(bad("selection bits or scale codes do not match the blocks".into()));
        }
        let corr = corrections(ql).map_err(bad)?;
        if !corr.is_empty() && !cfg.engine {
            return Err(bad(format!(
                "{} sparse entries, and a fixed lane has no sparse correction unit (an engine has)",
                corr.len()
            )));
        }
        Ok(LayerStim {
            name: ql.name.clone(),
            rows: ql.rows,
            cols: ql.cols,
            block: ql.block(),
            codes: ql.codes.clone(),
            sel: ql.sel.iter().map(|&s| s != 0).collect(),
            scales,
            tables,
            blocks: ql.num_blocks(),
            corr,
        })
    }

    /// The sparse correction of flat weight index `i`, if any.
    #[inline]
    pub fn correction(&self, i: usize) -> Option<Correction> {
        if self.corr.is_empty() {
            return None;
        }
        self.corr
            .binary_search_by_key(&(i as u32), |e| e.0)
            .ok()
            .map(|k| self.corr[k].1)
    }

    /// Blocks per row.
    pub fn blocks_per_row(&self) -> usize {
        self.cols.div_ceil(self.block)
    }

    /// Total blocks of the layer.
    pub fn num_blocks(&self) -> usize {
        self.rows * self.blocks_per_row()
    }

    /// Flat index of block `b`'s first weight, and its length.
    pub fn block_span(&self, b: usize) -> (usize, usize) {
        let bpr = self.blocks_per_row();
        let (r, k) = (b / bpr, b % bpr);
        let c0 = k * self.block;
        (r * self.cols + c0, self.block.min(self.cols - c0))
    }

    /// Streams only the longest prefix of whole blocks with at most `max` weights (at least
    /// one block).
    pub fn truncate_weights(&mut self, max: u64) {
        let bpr = self.blocks_per_row();
        let full_rows = ((max / self.cols as u64) as usize).min(self.rows);
        let mut blocks = full_rows * bpr;
        let mut w = (full_rows * self.cols) as u64;
        while blocks < self.num_blocks() {
            let (_, len) = self.block_span(blocks);
            if w + len as u64 > max {
                break;
            }
            w += len as u64;
            blocks += 1;
        }
        self.blocks = blocks.clamp(1, self.num_blocks());
    }

    /// Weights streamed (the weights of the first [`LayerStim::blocks`] blocks).
    pub fn weights(&self) -> u64 {
        let bpr = self.blocks_per_row();
        let full = self.blocks / bpr;
        let mut w = (full * self.cols) as u64;
        for b in full * bpr..self.blocks {
            w += self.block_span(b).1 as u64;
        }
        w
    }

    /// The shape for reports.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            cols: self.cols,
            block: self.block,
        }
    }
}

/// How layers are streamed (all pseudo-random choices are drawn from `seed`, so a run is
/// reproducible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StimulusOptions {
    /// Per mille of blocks preceded by an idle gap (`valid_in` low) on their lane.
    pub gap_per_mille: u32,
    /// Longest gap, in cycles (gaps are 1 ..= `max_gap` cycles).
    pub max_gap: u32,
    /// Per mille of gaps whose last cycle carries the next block's `block_start` (with
    /// `valid_in` low; the block's first weight then follows without a strobe).
    pub early_strobe_per_mille: u32,
    /// Per mille of blocks with a one-cycle bubble (`valid_in` low) inside the block.
    pub bubble_per_mille: u32,
    /// Assert the reset for one cycle in the middle of every layer's stream (lanes re-send
    /// from the first lost weight with a fresh `block_start`).
    pub reset_mid_layer: bool,
    /// Mid-layer table reloads per layer (soak): each is either a reload of the layer's own
    /// tables (the lanes keep their latched block state and continue without a strobe) or,
    /// when another layer is at hand, an interleave ([`StreamEvent::Interleave`]).
    pub reloads_per_layer: u32,
    /// Per mille of reloads that are interleaves (another layer's tables and blocks, then the
    /// layer's own tables again).
    pub interleave_per_mille: u32,
    /// Mid-layer pauses per layer (soak): every lane idle for 1 ..= `max_pause` cycles, the
    /// pipeline drains and the lanes continue their blocks without a strobe.
    pub pauses_per_layer: u32,
    /// Longest pause, in cycles.
    pub max_pause: u32,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

impl Default for StimulusOptions {
    fn default() -> Self {
        StimulusOptions {
            gap_per_mille: 125,
            max_gap: 3,
            early_strobe_per_mille: 250,
            bubble_per_mille: 30,
            reset_mid_layer: true,
            reloads_per_layer: 0,
            interleave_per_mille: 500,
            pauses_per_layer: 0,
            max_pause: 64,
            seed: 0x5eed_c051,
        }
    }
}

impl StimulusOptions {
    /// Back-to-back blocks: no gaps, bubbles or resets (the throughput benchmark).
    pub fn dense() -> Self {
        StimulusOptions {
            gap_per_mille: 0,
            max_gap: 1,
            early_strobe_per_mille: 0,
            bubble_per_mille: 0,
            reset_mid_layer: false,
            ..StimulusOptions::default()
        }
    }

    /// One soak round's stream, every choice drawn from `seed`: idle gaps before 5-35% of
    /// the blocks, 1-8 cycles long, early strobes in 0-60% of them, bubbles in 0-10% of the
    /// blocks, the mid-layer reset, 1-3 table reloads (half of them interleaves) and 1-3
    /// pauses of up to 64 cycles per layer.
    pub fn soak(seed: u64) -> Self {
        let r = mix(seed ^ 0x50a4);
        StimulusOptions {
            gap_per_mille: 50 + (r % 301) as u32,
            max_gap: 1 + ((r >> 9) % 8) as u32,
            early_strobe_per_mille: ((r >> 12) % 601) as u32,
            bubble_per_mille: ((r >> 22) % 101) as u32,
            reset_mid_layer: true,
            reloads_per_layer: 1 + ((r >> 32) % 3) as u32,
            interleave_per_mille: 500,
            pauses_per_layer: 1 + ((r >> 34) % 3) as u32,
            max_pause: 64,
            seed,
        }
    }
}

/// A mid-layer event of a [`LayerStream`], at a cycle offset from the stream's start
/// ([`LayerStream::events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// Assert the reset for one cycle (lanes re-send from the first lost weight).
    Reset,
    /// Reload the layer's own tables; the lanes continue without a strobe.
    Reload,
    /// Load another layer's tables, stream its first `blocks` blocks, reload this layer's
    /// tables and continue with a fresh strobe on every lane (falls back to
    /// [`StreamEvent::Reload`] when no other layer is at hand).
    Interleave {
        /// Blocks of the other layer streamed (a prefix, at most all of its streamed ones).
        blocks: usize,
    },
    /// Every lane idle for this many cycles; the lanes continue without a strobe.
    Pause(u32),
}

/// splitmix64: the seed of lane `lane` of stream `stream`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
struct Cursor {
    /// Index of the lane's current block in its sequence (block `lane + k * lanes`).
    k: usize,
    /// Next weight within the block.
    off: usize,
    /// Flat index of the block's first weight, and its length.
    start: usize,
    len: usize,
    scale: u8,
    sel: bool,
    /// Idle cycles left before the block's next weight.
    gap: u32,
    /// The last gap cycle carries the block's strobe.
    strobe_in_gap: bool,
    /// The block's strobe was given (early, in a gap).
    strobed: bool,
    /// Force a strobe on the next weight (after a reset).
    need_start: bool,
    /// Offset of a one-cycle bubble in the block (`usize::MAX`: none).
    bubble: usize,
    done: bool,
    rng: u64,
}

/// A layer streamed over the lanes: block `b` goes to lane `b % lanes`, each lane plays its
/// blocks in order, one weight per cycle, with the idle gaps, early strobes and bubbles of
/// [`StimulusOptions`]. Tags are flat weight indices.
#[derive(Clone, Debug)]
pub struct LayerStream<'a> {
    stim: &'a LayerStim,
    lanes: usize,
    cur: Vec<Cursor>,
    active: usize,
    opts: StimulusOptions,
    /// Blocks streamed (a prefix of the layer's).
    blocks: usize,
}

impl<'a> LayerStream<'a> {
    /// The stream of `stim` over `lanes` lanes; `stream` numbers the layer in its run (it
    /// selects the pseudo-random choices together with `opts.seed`).
    pub fn new(stim: &'a LayerStim, lanes: usize, opts: StimulusOptions, stream: u64) -> LayerStream<'a> {
        Self::prefix(stim, lanes, opts, stream, stim.blocks)
    }

    /// [`LayerStream::new`] for the first `blocks` blocks of `stim` only (at most
    /// [`LayerStim::blocks`]).
    pub fn prefix(
        stim: &'a LayerStim,
        lanes: usize,
        opts: StimulusOptions,
        stream: u64,
        blocks: usize,
    ) -> LayerStream<'a> {
        let mut s = LayerStream {
            stim,
            lanes,
            cur: Vec::with_capacity(lanes),
            active: 0,
            opts,
            blocks: blocks.min(stim.blocks),
        };
        for lane in 0..lanes {
            let mut c = Cursor {
                k: 0,
                off: 0,
                start: 0,
                len: 0,
                scale: 0,
                sel: false,
                gap: 0,
                strobe_in_gap: false,
                strobed: false,
                need_start: true,
                bubble: usize::MAX,
                done: false,
                rng: mix(opts.seed ^ mix(stream) ^ mix(lane as u64 + 1)),
            };
            s.enter(&mut c, lane, 0, 0);
            if !c.done {
                s.active += 1;
            }
            s.cur.push(c);
        }
        s
    }

    /// The cycle offset of the mid-layer reset, if enabled: between a quarter and three
    /// quarters of the lanes' streaming time.
    pub fn reset_offset(&self, stream: u64) -> Option<u64> {
        if !self.opts.reset_mid_layer {
            return None;
        }
        let per_lane = self.blocks.div_ceil(self.lanes) * self.stim.block;
        let span = (per_lane / 2).max(1) as u64;
        Some((per_lane / 4) as u64 + mix(self.opts.seed ^ mix(stream) ^ 0x7e5e7) % span)
    }

    /// The layer's mid-stream events by cycle offset from the stream's start, ascending: the
    /// reset of [`LayerStream::reset_offset`] (same offset), then
    /// [`StimulusOptions::reloads_per_layer`] reloads or interleaves and
    /// [`StimulusOptions::pauses_per_layer`] pauses at offsets spread over the lanes'
    /// streaming time. Reproducible from `opts.seed` and `stream`.
    pub fn events(&self, stream: u64) -> Vec<(u64, StreamEvent)> {
        let o = self.opts;
        let mut ev: Vec<(u64, StreamEvent)> = Vec::new();
        if let Some(r) = self.reset_offset(stream) {
            ev.push((r, StreamEvent::Reset));
        }
        let per_lane = (self.blocks.div_ceil(self.lanes) * self.stim.block).max(1) as u64;
        let mut rng = mix(o.seed ^ mix(stream) ^ 0x7e10_ad5e) | 1;
        let mut draw = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..o.reloads_per_layer {
            let (at, r) = (draw() % per_lane, draw());
            let e = if (r % 1000) < o.interleave_per_mille as u64 {
                StreamEvent::Interleave {
                    blocks: self.lanes * (1 + ((r >> 10) % 8) as usize),
                }
            } else {
                StreamEvent::Reload
            };
            ev.push((at, e));
        }
        for _ in 0..o.pauses_per_layer {
            let (at, r) = (draw() % per_lane, draw());
            ev.push((at, StreamEvent::Pause(1 + (r % o.max_pause.max(1) as u64) as u32)));
        }
        ev.sort_by_key(|e| e.0);
        ev
    }

    /// Forces a `block_start` on every lane's next weight: the lanes' block registers were
    /// overwritten by another stream (an interleave).
    pub fn restrobe(&mut self) {
        for lane in 0..self.lanes {
            self.on_reset(lane, None);
        }
    }

    /// Positions cursor `c` of lane `lane` at its `k`-th block, weight `off` (no gap).
    fn enter(&self, c: &mut Cursor, lane: usize, k: usize, off: usize) {
        let b = lane + k * self.lanes;
        c.k = k;
        c.off = off;
        c.gap = 0;
        c.strobe_in_gap = false;
        c.strobed = false;
        c.bubble = usize::MAX;
        if b >= self.blocks {
            c.done = true;
            return;
        }
        c.done = false;
        let (start, len) = self.stim.block_span(b);
        c.start = start;
        c.len = len;
        c.scale = self.stim.scales[b];
        c.sel = self.stim.sel[b];
    }

    #[inline]
    fn rand(c: &mut Cursor) -> u64 {
        c.rng ^= c.rng << 13;
        c.rng ^= c.rng >> 7;
        c.rng ^= c.rng << 17;
        c.rng
    }

    /// Moves lane `lane` to its next block, drawing its gap, strobe and bubble.
    #[cold]
    fn advance(&mut self, lane: usize) {
        let mut c = self.cur[lane].clone();
        let k = c.k + 1;
        self.enter(&mut c, lane, k, 0);
        if c.done {
            self.active -= 1;
        } else {
            let o = self.opts;
            let r = Self::rand(&mut c);
            if (r % 1000) < o.gap_per_mille as u64 {
                c.gap = 1 + ((r >> 10) % o.max_gap.max(1) as u64) as u32;
                c.strobe_in_gap = ((r >> 20) % 1000) < o.early_strobe_per_mille as u64;
            }
            if ((r >> 30) % 1000) < o.bubble_per_mille as u64 && c.len > 1 {
                c.bubble = 1 + ((r >> 40) as usize % (c.len - 1));
            }
        }
        self.cur[lane] = c;
    }
}

impl Stimulus for LayerStream<'_> {
    #[inline(always)]
    fn next(&mut self, lane: usize) -> (Beat, u32) {
        let c = &mut self.cur[lane];
        if c.done {
            return (Beat::idle(), 0);
        }
        if c.gap > 0 {
            c.gap -= 1;
            if c.gap == 0 && c.strobe_in_gap {
                c.strobed = true;
                let b = Beat {
                    valid: false,
                    block_start: true,
                    scale: c.scale,
                    sel: c.sel,
                    code: 0,
                    corr: None,
                };
                return (b, 0);
            }
            return (Beat::idle(), 0);
        }
        if c.off == c.bubble {
            c.bubble = usize::MAX;
            return (Beat::idle(), 0);
        }
        let tag = c.start + c.off;
        let b = Beat {
            valid: true,
            block_start: (c.off == 0 && !c.strobed) || c.need_start,
            scale: c.scale,
            sel: c.sel,
            code: self.stim.codes[tag] as u32,
            corr: self.stim.correction(tag),
        };
        c.need_start = false;
        c.off += 1;
        if c.off == c.len {
            self.advance(lane);
        }
        (b, tag as u32)
    }

    fn on_reset(&mut self, lane: usize, first_lost: Option<u32>) {
        let mut c = self.cur[lane].clone();
        if let Some(tag) = first_lost {
            let t = tag as usize;
            let bpr = self.stim.blocks_per_row();
            let (r, col) = (t / self.stim.cols, t % self.stim.cols);
            let b = r * bpr + col / self.stim.block;
            debug_assert_eq!(b % self.lanes, lane, "weight {t} is not on lane {lane}");
            let was_done = c.done;
            self.enter(&mut c, lane, b / self.lanes, col % self.stim.block);
            if was_done && !c.done {
                self.active += 1;
            }
        }
        // Whatever the lane does next, its block registers were cleared: strobe again (this
        // also covers a block whose early strobe was given before the reset).
        c.need_start = true;
        c.strobe_in_gap = false;
        self.cur[lane] = c;
    }

    fn done(&self) -> bool {
        self.active == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::compiled_configs;

    #[test]
    fn committed_configs_map_to_the_documented_points() {
        let want = [
            ("sop_c4_hif8_ue4m4_fp16", "NF4+DD4sUE4M4b16"),
            ("sop_c4_hif7_ue4m4_fp16", "NF4+DD4sUE4M4b16-HIF7"),
            ("sop_c4_hif8_se4m3_fp16", "Split87+DD4sSE4M3b16"),
            ("sop_c4_fp16lut_ue4m4_fp16", "NF4+DD4sUE4M4b16-FP16"),
            ("sop_c6_fp16lut_ue4m4_bf16", "E2M3sUE4M4"),
            ("sop_c6_hif8_ue4m4_bf16", "DD6sUE4M4"),
            ("sop_engine_hif8_fp16", "E2M3sUE4M4"),
            ("sop_engine_fp16lut_fp16", "NF4+DD4sUE4M4b16-FP16"),
        ];
        let configs = compiled_configs();
        for (name, point) in want {
            let cfg = configs.iter().find(|c| c.name == name).expect(name);
            let p: OperatingPoint = point.parse().unwrap();
            assert_eq!(point_for(cfg).unwrap(), p, "{name}");
        }
    }

    fn stim(rows: usize, cols: usize, block: usize) -> LayerStim {
        let cfg = &compiled_configs()[0];
        let blocks = rows * cols.div_ceil(block);
        LayerStim {
            name: "t".into(),
            rows,
            cols,
            block,
            codes: (0..rows * cols).map(|i| (i % 16) as u8).collect(),
            sel: vec![false; blocks],
            scales: vec![0x70; blocks],
            tables: Tables::zeroed(cfg),
            blocks,
            corr: Vec::new(),
        }
    }

    #[test]
    fn truncation_keeps_whole_blocks() {
        // 3 rows of 40 columns in blocks of 16: 16 + 16 + 8 per row.
        let mut s = stim(3, 40, 16);
        assert_eq!(s.num_blocks(), 9);
        assert_eq!(s.weights(), 120);
        assert_eq!(s.block_span(2), (32, 8));
        assert_eq!(s.block_span(4), (56, 16));
        s.truncate_weights(60);
        assert_eq!((s.blocks, s.weights()), (4, 56));
        s.truncate_weights(1);
        assert_eq!((s.blocks, s.weights()), (1, 16));
        s.truncate_weights(1000);
        assert_eq!((s.blocks, s.weights()), (9, 120));
    }

    #[test]
    fn stream_plays_every_weight_once_per_lane_order() {
        let s = stim(5, 40, 16);
        let mut seen = vec![0u32; s.rows * s.cols];
        let opts = StimulusOptions {
            gap_per_mille: 500,
            early_strobe_per_mille: 500,
            bubble_per_mille: 500,
            ..StimulusOptions::default()
        };
        let mut ls = LayerStream::new(&s, 4, opts, 3);
        let mut strobes = 0;
        let mut guard = 0;
        while !ls.done() {
            for lane in 0..4 {
                let (b, tag) = ls.next(lane);
                strobes += b.block_start as u32;
                if b.valid {
                    let blk = (tag as usize / 40) * 3 + (tag as usize % 40) / 16;
                    assert_eq!(blk % 4, lane, "block {blk} on lane {lane}");
                    assert_eq!(b.code, s.codes[tag as usize] as u32);
                    seen[tag as usize] += 1;
                }
            }
            guard += 1;
            assert!(guard < 10_000);
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(strobes as usize, s.num_blocks());
    }

    #[test]
    fn reset_rewinds_to_the_first_lost_weight_with_a_strobe() {
        let s = stim(2, 64, 16);
        let mut ls = LayerStream::new(&s, 2, StimulusOptions::dense(), 0);
        // Lane 0 plays block 0 (weights 0..16); take 6 of them.
        for _ in 0..6 {
            ls.next(0);
        }
        ls.on_reset(0, Some(3));
        let (b, tag) = ls.next(0);
        assert!(b.valid && b.block_start, "{b:?}");
        assert_eq!(tag, 3);
        let (b, tag) = ls.next(0);
        assert!(!b.block_start && tag == 4);
        // Nothing lost: the next weight still carries a strobe.
        ls.on_reset(0, None);
        assert!(ls.next(0).0.block_start);
    }

    #[test]
    fn soak_events_are_seeded_sorted_and_complete() {
        let s = stim(64, 64, 16);
        let opts = StimulusOptions::soak(42);
        assert_ne!(opts, StimulusOptions::soak(43));
        let ls = LayerStream::new(&s, 4, opts, 5);
        let ev = ls.events(5);
        assert_eq!(ev, LayerStream::new(&s, 4, opts, 5).events(5), "reproducible");
        assert_ne!(ev, ls.events(6), "per stream");
        assert!(ev.windows(2).all(|w| w[0].0 <= w[1].0), "{ev:?}");
        let count = |f: fn(&StreamEvent) -> bool| ev.iter().filter(|e| f(&e.1)).count() as u32;
        assert_eq!(count(|e| *e == StreamEvent::Reset), 1);
        assert_eq!(
            count(|e| matches!(e, StreamEvent::Reload | StreamEvent::Interleave { .. })),
            opts.reloads_per_layer
        );
        assert_eq!(count(|e| matches!(e, StreamEvent::Pause(_))), opts.pauses_per_layer);
        // Offsets within the lanes' streaming time; pauses within 1..=max_pause; interleaves
        // a whole number of blocks per lane.
        let per_lane = (s.blocks.div_ceil(4) * 16) as u64;
        for (at, e) in &ev {
            assert!(*at < per_lane, "{at}");
            match e {
                StreamEvent::Pause(c) => assert!((1..=opts.max_pause).contains(c)),
                StreamEvent::Interleave { blocks } => assert!(*blocks % 4 == 0 && *blocks <= 32),
                _ => {}
            }
        }
        // Over many seeds both kinds of reload occur.
        let kinds: Vec<StreamEvent> = (0..64)
            .flat_map(|seed| LayerStream::new(&s, 4, StimulusOptions::soak(seed), 0).events(0))
            .map(|e| e.1)
            .collect();
        assert!(kinds.contains(&StreamEvent::Reload));
        assert!(kinds.iter().any(|e| matches!(e, StreamEvent::Interleave { .. })));
        // The default stream has only the reset.
        let d = LayerStream::new(&s, 4, StimulusOptions::default(), 5);
        assert_eq!(d.events(5), vec![(d.reset_offset(5).unwrap(), StreamEvent::Reset)]);
    }

    #[test]
    fn prefix_streams_its_blocks_and_restrobe_strobes_every_lane() {
        let s = stim(5, 40, 16);
        let mut ls = LayerStream::prefix(&s, 2, StimulusOptions::dense(), 0, 5);
        let mut tags = Vec::new();
        while !ls.done() {
            for lane in 0..2 {
                let (b, tag) = ls.next(lane);
                if b.valid {
                    tags.push(tag);
                }
            }
        }
        tags.sort_unstable();
        // Blocks 0..5 of rows of 16 + 16 + 8: row 0 (40 weights) and row 1's first 32.
        assert_eq!(tags, (0..72).collect::<Vec<u32>>());
        let mut ls = LayerStream::new(&s, 2, StimulusOptions::dense(), 0);
        for _ in 0..5 {
            ls.next(0);
            ls.next(1);
        }
        ls.restrobe();
        for lane in 0..2 {
            let (b, tag) = ls.next(lane);
            assert!(b.valid && b.block_start, "{b:?}");
            assert_eq!(tag as usize, [5, 21][lane], "continues where it was");
            assert!(!ls.next(lane).0.block_start);
        }
    }
}
