//! The checking harness: drives a [`Dut`] cycle by cycle from a [`Stimulus`], models the
//! lanes' block registers, and compares every output word with the golden model (through a
//! [`ProductTable`]) in the cycle it is due.
//!
//! Per lane the harness keeps the latched `(sel, scale)` exactly as the hardware does
//! (`block_start` latches them, also in a cycle without a weight; reset clears them to
//! table 0, scale code 0) and a ring of the words due in the next `latency` cycles. In
//! every cycle, for every lane, `valid_out` must be high exactly when a word is due, and the
//! word must equal the expected one; anything else is a [`Mismatch`]. Table loads and resets
//! are cycles of the same loop, so outputs still in flight are checked while the next layer's
//! tables load.
//!
//! On an engine the harness also drives each lane's sparse stream: a beat's correction
//! becomes an entry at the weight's position (the lane's weights since reset), presented
//! until the correction unit takes it, and the expected word is the corrected one.

use sop_hw::sparse::{correct, Correction, StreamDriver};
use sop_hw::{Beat, LaneConfig, Tables};

use crate::coverage::{Collected, Event};
use crate::ffi::{load_ops, Dut, LoadOp};
use crate::golden::ProductTable;
use crate::report::{Mismatch, MismatchKind, WeightPos};
use crate::CosimError;

/// Slots of the per-lane ring of words in flight: more than any pipeline latency.
const RING: usize = 8;

/// A source of lane inputs, one beat per lane per cycle.
pub trait Stimulus {
    /// The beat of lane `lane` in the current cycle, and its tag (the weight's index in its
    /// layer, or any number that identifies it in reports; ignored for beats without a
    /// weight).
    fn next(&mut self, lane: usize) -> (Beat, u32);
    /// A reset cleared lane `lane`'s block registers; `first_lost` is the tag of the
    /// earliest weight whose output was lost (issued in the `latency - 1` cycles before the
    /// reset edge), if any. A stream that wants every weight checked re-sends from there,
    /// starting with a `block_start`.
    fn on_reset(&mut self, lane: usize, first_lost: Option<u32>);
    /// True when every lane has issued its last weight.
    fn done(&self) -> bool;
}

/// Shape of a layer, to turn a weight tag (flat index) into block, row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Columns (input features).
    pub cols: usize,
    /// Weights per block.
    pub block: usize,
}

impl Geometry {
    /// Block, row and column of flat weight index `tag`.
    pub fn pos(&self, tag: u32) -> WeightPos {
        let t = tag as usize;
        let (row, col) = (t / self.cols, t % self.cols);
        WeightPos {
            block: row * self.cols.div_ceil(self.block) + col / self.block,
            row,
            col,
        }
    }
}

/// A weight in flight: what is due and where it came from.
#[derive(Clone, Copy, Debug, Default)]
struct Expect {
    valid: bool,
    sel: bool,
    scale: u8,
    code: u8,
    word: u16,
    stream: u16,
    tag: u32,
    corr: Option<Correction>,
}

#[derive(Clone, Debug)]
struct LaneModel {
    base: u32,
    scale: u8,
    sel: bool,
    /// A weight was issued since the lane's last strobe or reset (coverage: mid-block).
    in_block: bool,
    /// A table load happened while the lane was inside a block (coverage: the next weight
    /// without a strobe continues the block across the load).
    loaded_in_block: bool,
    ring: [Expect; RING],
    /// The lane's sparse stream (engines).
    sparse: StreamDriver,
}

/// A named stream (layer) that expects refer to, for reports.
#[derive(Clone, Debug)]
struct StreamCtx {
    name: String,
    geometry: Option<Geometry>,
    mismatches: u64,
    first: Option<Mismatch>,
}

/// Counters of one harness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Output words that were due and compared (matching or not).
    pub checked: u64,
    /// Weights issued (valid beats), including re-sent ones.
    pub issued: u64,
    /// Weights whose output was lost to a reset.
    pub lost: u64,
    /// Mismatches found.
    pub mismatches: u64,
    /// Clock cycles run by this harness.
    pub cycles: u64,
}

/// The functional coverage a harness collects ([`Harness::enable_coverage`]): the words
/// checked per golden-table index since the last table switch (folded into classes when the
/// tables change), the classes, and the events.
struct CovState {
    hits: Vec<u32>,
    collected: Collected,
}

/// Drives a [`Dut`] and checks every output against the golden model.
pub struct Harness {
    dut: Dut,
    cfg: LaneConfig,
    /// Pipeline latency in cycles.
    lat: u64,
    /// The lanes have sparse correction units (engines).
    sparse_unit: bool,
    prod: ProductTable,
    code_mask: u32,
    lanes: Vec<LaneModel>,
    streams: Vec<StreamCtx>,
    cur: u16,
    mismatches: Vec<Mismatch>,
    keep: usize,
    max_mismatches: u64,
    stop: bool,
    n: Counters,
    vcd_window: Option<(u64, u64)>,
    last_sync: u64,
    capture: Option<Vec<u16>>,
    cov: Option<Box<CovState>>,
}

impl Harness {
    /// A harness around `dut`, with all-zero tables assumed loaded (call
    /// [`Harness::load_tables`]) and the lanes in their reset state. Call [`Harness::reset`]
    /// first: outputs are undefined before the first reset.
    pub fn new(dut: Dut) -> Harness {
        let cfg = dut.config().clone();
        let tables = Tables::zeroed(&cfg);
        let prod = ProductTable::new(&cfg, &tables);
        let lane = LaneModel {
            base: prod.base(false, 0),
            scale: 0,
            sel: false,
            in_block: false,
            loaded_in_block: false,
            ring: [Expect::default(); RING],
            sparse: StreamDriver::default(),
        };
        let lat = u64::from(dut.latency());
        assert!((lat as usize) < RING, "latency {lat} exceeds the harness ring");
        Harness {
            lat,
            sparse_unit: dut.has_sparse(),
            lanes: vec![lane; dut.lanes()],
            code_mask: (1 << cfg.code_bits) - 1,
            streams: vec![StreamCtx {
                name: "(no stream)".into(),
                geometry: None,
                mismatches: 0,
                first: None,
            }],
            cur: 0,
            prod,
            cfg,
            dut,
            mismatches: Vec::new(),
            keep: 16,
            max_mismatches: 0,
            stop: false,
            n: Counters::default(),
            vcd_window: None,
            last_sync: 0,
            capture: None,
            cov: None,
        }
    }

    /// Collects functional coverage from now on ([`Harness::take_coverage`]): the class of
    /// every checked word ([`sop_hw::coverage::classify_word`] of its table entry, latched
    /// selection bit and scale code) and the stream events. Costs one counter increment
    /// per checked word.
    pub fn enable_coverage(&mut self) {
        if self.cov.is_none() {
            self.cov = Some(Box::new(CovState {
                hits: vec![0; self.prod.len()],
                collected: Collected::default(),
            }));
        }
    }

    /// What was collected since [`Harness::enable_coverage`] (`None` when it was not
    /// called); the counts restart from zero. Words still in flight are not counted yet.
    pub fn take_coverage(&mut self) -> Option<Collected> {
        self.fold_coverage();
        self.cov.as_mut().map(|c| std::mem::take(&mut c.collected))
    }

    /// Turns the per-index counts of the current tables into word classes.
    fn fold_coverage(&mut self) {
        let Some(cov) = self.cov.as_mut() else { return };
        let tables = self.prod.tables();
        let path = tables.mode.map(|m| m.word());
        let cb = self.cfg.code_bits;
        for (i, n) in cov.hits.iter_mut().enumerate().filter(|(_, n)| **n > 0) {
            let code = (i & ((1 << cb) - 1)) as u32;
            let scale = ((i >> cb) & 0xff) as u8;
            let sel = (i >> (cb + 8)) & 1 == 1;
            let (w, class) = sop_hw::coverage::classify_word(&self.cfg, tables, sel, code, scale);
            debug_assert_eq!(w, self.prod.at(i as u32), "classification and golden model disagree");
            *cov.collected.words.entry((path, class, sel)).or_default() += u64::from(*n);
            *n = 0;
        }
    }

    #[inline(always)]
    fn cov_event(&mut self, e: Event) {
        if let Some(c) = self.cov.as_mut() {
            c.collected.event(e);
        }
    }

    /// Stops streaming once `max` mismatches were found ([`Harness::stopped`]; later
    /// differences are not counted); 0 = never.
    pub fn set_max_mismatches(&mut self, max: u64) {
        self.max_mismatches = max;
    }

    /// Keeps the first `keep` mismatch reports (all are counted). Default 16.
    pub fn set_keep(&mut self, keep: usize) {
        self.keep = keep;
    }

    /// Dumps cycles `from ..= to` into the VCD opened on the [`Dut`] (traced variants).
    pub fn set_vcd_window(&mut self, from: u64, to: u64) {
        self.vcd_window = Some((from, to));
    }

    /// Records the actual output words from now on: the word of the weight tagged `t` goes to
    /// index `t` of a vector of `len` words (tags beyond `len` are not recorded). For checks
    /// beyond the golden model (e.g. the end-to-end check against dequantized weights).
    pub fn capture_outputs(&mut self, len: usize) {
        self.capture = Some(vec![0; len]);
    }

    /// Stops recording and returns the recorded words.
    pub fn take_capture(&mut self) -> Option<Vec<u16>> {
        self.capture.take()
    }

    /// The configuration.
    pub fn config(&self) -> &LaneConfig {
        &self.cfg
    }

    /// The device under test.
    pub fn dut(&self) -> &Dut {
        &self.dut
    }

    /// The device under test, mutably (driving it directly bypasses the checks).
    pub fn dut_mut(&mut self) -> &mut Dut {
        &mut self.dut
    }

    /// The current cycle.
    pub fn cycle(&self) -> u64 {
        self.dut.cycle()
    }

    /// The golden product table of the tables loaded last.
    pub fn product_table(&self) -> &ProductTable {
        &self.prod
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.n
    }

    /// The mismatch reports kept (the first [`Harness::set_keep`] ones).
    pub fn mismatches(&self) -> &[Mismatch] {
        &self.mismatches
    }

    /// True once [`Harness::set_max_mismatches`] mismatches were found.
    pub fn stopped(&self) -> bool {
        self.stop
    }

    /// Cycle of the last reset or of the start of the last table load.
    pub fn last_sync(&self) -> u64 {
        self.last_sync
    }

    /// Names the weights issued from now on (reports show it and, with a geometry, the
    /// block, row and column of each weight) and returns the stream's id for
    /// [`Harness::stream_mismatches`]. Stream 0 is everything before the first call.
    ///
    /// # Panics
    /// After 65535 streams.
    pub fn begin_stream(&mut self, name: &str, geometry: Option<Geometry>) -> usize {
        assert!(
            self.streams.len() < u16::MAX as usize,
            "too many streams for one harness"
        );
        self.streams.push(StreamCtx {
            name: name.to_string(),
            geometry,
            mismatches: 0,
            first: None,
        });
        self.cur = (self.streams.len() - 1) as u16;
        self.streams.len() - 1
    }

    /// Makes the existing stream `id` (from [`Harness::begin_stream`]) current again, e.g.
    /// after another layer was interleaved.
    ///
    /// # Panics
    /// When `id` was not returned by [`Harness::begin_stream`].
    pub fn resume_stream(&mut self, id: usize) {
        assert!(id < self.streams.len(), "no stream {id}");
        self.cur = id as u16;
    }

    /// Mismatches attributed to stream `id` (by the weight's stream; an unexpected output
    /// counts for the stream current when it appeared) and the first of them.
    pub fn stream_mismatches(&self, id: usize) -> (u64, Option<&Mismatch>) {
        self.streams
            .get(id)
            .map(|s| (s.mismatches, s.first.as_ref()))
            .unwrap_or((0, None))
    }

    #[inline(always)]
    fn tick(&mut self) {
        if let Some((from, to)) = self.vcd_window {
            let c = self.dut.cycle();
            if c == from {
                self.dut.vcd_dump(true);
            }
            self.dut.tick();
            if c == to {
                self.dut.vcd_dump(false);
            }
        } else {
            self.dut.tick();
        }
        self.n.cycles += 1;
    }

    /// Drives beat `b` on lane `i` in cycle `c`, checks the lane's output visible in `c`,
    /// and records the weight's expected word.
    #[inline(always)]
    fn lane(&mut self, i: usize, b: &Beat, tag: u32, c: u64, streaming: bool) {
        self.dut.set_lane(i, b);
        let (v, w) = self.dut.out_raw(i);
        let lm = &mut self.lanes[i];
        let due = lm.ring[c as usize % RING];
        lm.ring[c as usize % RING].valid = false;
        if let Some(cov) = self.cov.as_mut() {
            if due.valid {
                let idx = self.prod.base(due.sel, due.scale) | due.code as u32;
                cov.hits[idx as usize] += 1;
                match due.corr {
                    Some(k) if k.outlier => cov.collected.event(Event::CorrOutlier),
                    Some(_) => cov.collected.event(Event::CorrResidual),
                    None => {}
                }
            }
            match (b.block_start, b.valid) {
                (true, true) => cov.collected.event(Event::StrobeValid),
                (true, false) => cov.collected.event(Event::StrobeIdle),
                (false, true) if lm.loaded_in_block => cov.collected.event(Event::ReloadMidBlock),
                (false, false) if streaming => cov.collected.event(Event::IdleGap),
                _ => {}
            }
        }
        if b.block_start {
            lm.scale = b.scale;
            lm.sel = b.sel;
            lm.base = self.prod.base(b.sel, b.scale);
            lm.in_block = false;
            lm.loaded_in_block = false;
        }
        if b.valid {
            lm.in_block = true;
            lm.loaded_in_block = false;
            let code = b.code & self.code_mask;
            let mut word = self.prod.at(lm.base | code);
            if b.corr.is_some() {
                word = correct(self.cfg.output, word, b.corr);
            }
            lm.sparse.weight(b.corr);
            lm.ring[(c + self.lat) as usize % RING] = Expect {
                valid: true,
                sel: lm.sel,
                scale: lm.scale,
                code: code as u8,
                word,
                stream: self.cur,
                tag,
                corr: b.corr,
            };
            self.n.issued += 1;
        }
        if self.sparse_unit {
            // The unit takes the presented entry at this edge when it is ready.
            let front = lm.sparse.presented();
            self.dut.set_sparse(i, front);
            if front.is_some() && self.dut.sp_ready(i) {
                lm.sparse.taken();
            }
        }
        self.n.checked += due.valid as u64;
        if let Some(cap) = &mut self.capture {
            if let (true, true, Some(slot)) = (v, due.valid, cap.get_mut(due.tag as usize)) {
                *slot = w;
            }
        }
        if (v | due.valid) && !(v & due.valid & (w == due.word)) {
            self.mismatch(i, c, due, v, w);
        }
    }

    #[cold]
    #[inline(never)]
    fn mismatch(&mut self, lane: usize, cycle: u64, due: Expect, v: bool, w: u16) {
        if self.stop {
            // The limit was reached earlier in this cycle: not counted.
            return;
        }
        self.n.mismatches += 1;
        if self.max_mismatches != 0 && self.n.mismatches >= self.max_mismatches {
            self.stop = true;
        }
        let sid = if due.valid { due.stream } else { self.cur } as usize;
        self.streams[sid].mismatches += 1;
        let want_first = self.streams[sid].first.is_none();
        if self.mismatches.len() >= self.keep && !want_first {
            return;
        }
        let kind = match (due.valid, v) {
            (true, true) => MismatchKind::Word,
            (true, false) => MismatchKind::Missing,
            _ => MismatchKind::Unexpected,
        };
        let ctx = &self.streams[sid];
        // The tables the weight was read from: a table load takes more cycles than the
        // pipeline is deep and checks the outputs in flight meanwhile, so every weight is
        // checked while the golden model still holds the tables it was issued with.
        let tables = self.prod.tables();
        let t = due.sel as usize;
        let code = due.code as u32;
        let m = Mismatch {
            config: self.cfg.name.clone(),
            layer: ctx.name.clone(),
            kind,
            lane,
            cycle,
            issue_cycle: cycle.saturating_sub(self.lat),
            pos: if due.valid {
                ctx.geometry.map(|g| g.pos(due.tag))
            } else {
                None
            },
            tag: due.tag,
            code,
            sel: due.sel,
            scale: due.scale,
            entry: tables.entries[t].get(code as usize).copied().unwrap_or(0),
            correction: due.corr,
            mode: tables.mode,
            bias: tables.bias[t],
            expected: due.valid.then_some(due.word),
            actual: v.then_some(w),
            cfg: self.cfg.clone(),
        };
        if want_first {
            self.streams[sid].first = Some(m.clone());
        }
        if self.mismatches.len() < self.keep {
            self.mismatches.push(m);
        }
    }

    /// One streaming cycle: every lane's beat from `stim`, outputs checked, clock edge.
    #[inline(always)]
    pub fn step<S: Stimulus + ?Sized>(&mut self, stim: &mut S) {
        let c = self.dut.cycle();
        for i in 0..self.lanes.len() {
            let (b, tag) = stim.next(i);
            self.lane(i, &b, tag, c, true);
        }
        self.tick();
    }

    /// One cycle with every lane idle, checking outputs.
    pub fn idle(&mut self, cycles: u64) {
        for _ in 0..cycles {
            let c = self.dut.cycle();
            for i in 0..self.lanes.len() {
                self.lane(i, &Beat::idle(), 0, c, false);
            }
            self.tick();
        }
    }

    /// One cycle driving `op` on the load port (lanes idle), checking outputs.
    pub fn load_cycle(&mut self, op: LoadOp) {
        self.dut.set_load(Some(op));
        self.idle(1);
        self.dut.set_load(None);
    }

    /// Loads both tables and (HIF) both bias registers, one word per cycle with the lanes
    /// idle (outputs still in flight are checked meanwhile), and switches the golden model to
    /// the new tables. The tables take effect for weights issued after the load.
    pub fn load_tables(&mut self, t: &Tables) -> Result<(), CosimError> {
        t.check(&self.cfg)?;
        self.last_sync = self.dut.cycle();
        if self.cov.is_some() {
            if self.lanes.iter().any(|l| l.ring.iter().any(|e| e.valid)) {
                self.cov_event(Event::LoadDraining);
            }
            for l in &mut self.lanes {
                l.loaded_in_block |= l.in_block;
            }
        }
        let ops = load_ops(&self.cfg, t);
        let n = ops.len() as u64;
        for op in ops {
            self.load_cycle(op);
        }
        // The golden model switches once every weight issued before the load has come out:
        // a load shorter than the pipeline (an engine's mode write alone) waits for it.
        if n < self.lat {
            self.idle(self.lat - n);
        }
        self.fold_coverage();
        self.prod = ProductTable::new(&self.cfg, t);
        if let Some(cov) = self.cov.as_mut() {
            cov.hits.resize(self.prod.len(), 0);
        }
        for lm in &mut self.lanes {
            lm.base = self.prod.base(lm.sel, lm.scale);
        }
        Ok(())
    }

    /// One cycle with the synchronous reset asserted (lanes idle): the outputs visible in
    /// this cycle are still checked; the weights issued in the `latency - 1` cycles before
    /// are lost (their tags are returned per lane, earliest first, as the first lost tag);
    /// the lanes' block registers return to table 0, scale code 0.
    pub fn reset_cycle(&mut self) -> Vec<Option<u32>> {
        self.last_sync = self.dut.cycle();
        if self.cov.is_some() {
            if self.lanes.iter().any(|l| l.in_block) {
                self.cov_event(Event::ResetMidBlock);
            }
            // Weights issued in the cycles before the reset edge whose outputs it loses.
            let c = self.dut.cycle() + 1;
            let lat = self.lat;
            if self
                .lanes
                .iter()
                .any(|l| (0..lat).any(|k| l.ring[(c + k) as usize % RING].valid))
            {
                self.cov_event(Event::ResetInFlight);
            }
        }
        // The entries of weights in flight are lost with them; no handshake in a reset.
        for (i, lm) in self.lanes.iter_mut().enumerate() {
            lm.sparse.reset();
            self.dut.set_sparse(i, None);
        }
        self.dut.set_reset(true);
        self.idle(1);
        self.dut.set_reset(false);
        let c = self.dut.cycle(); // the first cycle after the reset edge
        let mut lost = Vec::with_capacity(self.lanes.len());
        for lm in &mut self.lanes {
            let mut first = None;
            for k in 0..self.lat {
                let slot = &mut lm.ring[(c + k) as usize % RING];
                if slot.valid {
                    first.get_or_insert(slot.tag);
                    slot.valid = false;
                    self.n.lost += 1;
                }
            }
            lm.scale = 0;
            lm.sel = false;
            lm.in_block = false;
            lm.loaded_in_block = false;
            lm.base = self.prod.base(false, 0);
            lost.push(first);
        }
        lost
    }

    /// [`Harness::reset_cycle`], telling `stim` what each lane lost.
    pub fn reset_with<S: Stimulus + ?Sized>(&mut self, stim: &mut S) {
        for (lane, first) in self.reset_cycle().into_iter().enumerate() {
            stim.on_reset(lane, first);
        }
    }

    /// A reset without a stream.
    pub fn reset(&mut self) {
        self.reset_cycle();
    }

    /// Streams `stim` until it is done (or the mismatch limit stops the harness), asserting
    /// the reset for one cycle at each cycle offset in `resets` (counted from the call,
    /// ascending). Does not drain the pipeline: outputs still in flight are checked by the
    /// following cycles (the next table load, or [`Harness::drain`]).
    pub fn run<S: Stimulus + ?Sized>(&mut self, stim: &mut S, resets: &[u64]) {
        self.run_until(stim, resets, u64::MAX);
    }

    /// [`Harness::run`], stopping before cycle `until` at the latest.
    pub fn run_until<S: Stimulus + ?Sized>(&mut self, stim: &mut S, resets: &[u64], until: u64) {
        let start = self.dut.cycle();
        let mut resets = resets.iter().map(|r| start + r).peekable();
        while !stim.done() && !self.stop && self.dut.cycle() < until {
            let c = self.dut.cycle();
            if resets.peek() == Some(&c) {
                resets.next();
                self.reset_with(stim);
                continue;
            }
            // Stream until the next reset (or `until`) without looking at the schedule.
            let end = resets.peek().copied().unwrap_or(u64::MAX).min(until);
            while self.dut.cycle() < end && !stim.done() && !self.stop {
                self.step(stim);
            }
        }
    }

    /// Runs idle cycles until every issued weight's output was due (`latency` cycles).
    pub fn drain(&mut self) {
        self.idle(self.lat);
    }

    /// The pipeline latency in cycles.
    pub fn latency(&self) -> u64 {
        self.lat
    }
}

/// Fixed per-lane beat sequences (for directed and random tests): lane `i` plays `beats[i]`
/// and then idles; a beat's tag is its index. Lost weights are not re-sent.
#[derive(Clone, Debug, Default)]
pub struct BeatStreams {
    /// One sequence per lane.
    pub beats: Vec<Vec<Beat>>,
    pos: Vec<usize>,
}

impl BeatStreams {
    /// Streams `beats` (one sequence per lane).
    pub fn new(beats: Vec<Vec<Beat>>) -> BeatStreams {
        let pos = vec![0; beats.len()];
        BeatStreams { beats, pos }
    }
}

impl Stimulus for BeatStreams {
    fn next(&mut self, lane: usize) -> (Beat, u32) {
        let p = self.pos[lane];
        match self.beats[lane].get(p) {
            Some(b) => {
                self.pos[lane] += 1;
                (*b, p as u32)
            }
            None => (Beat::idle(), 0),
        }
    }

    fn on_reset(&mut self, _lane: usize, _first_lost: Option<u32>) {}

    fn done(&self) -> bool {
        self.pos.iter().zip(&self.beats).all(|(p, b)| *p >= b.len())
    }
}
