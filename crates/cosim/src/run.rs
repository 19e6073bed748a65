//! The co-simulation run behind `sop cosim`: quantize a model's linear layers at each
//! configuration's operating point, stream them through the Verilated models, check every
//! output word, and summarize (text, JUnit, VCD around the first mismatch).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use sop_hw::{LaneConfig, Tables};
use sop_model::Model;
use sop_quantize::sparse::MenuOption;
use sop_quantize::{LayerRef, QuantOptions, QuantizedLayer, Quantizer};

use crate::ffi::{compiled_configs, Dut, Variant, MUTANT_CONFIG, VERILATOR_VERSION};
use crate::harness::{Harness, Stimulus};
use crate::report::Mismatch;
use crate::shard::{Shard, WorkItem};
use crate::stimulus::{point_for, LayerStim, LayerStream, StimulusOptions, StreamEvent};
use crate::CosimError;

/// What to co-simulate. [`CosimOptions::default`] is the full run of `sop cosim --model
/// minilm`: every linear layer, every compiled configuration, stop after 10 mismatches.
#[derive(Clone, Debug)]
pub struct CosimOptions {
    /// Model: a safetensors file, a Hugging Face directory, or the alias `minilm`.
    pub model: String,
    /// Only the linear layers whose name matches this regular expression (a pattern that is
    /// not a valid regex is matched as a plain substring). `None`: every linear layer.
    pub layers: Option<String>,
    /// A configuration file (TOML, `sop_hw::config`): run only its configurations, each of
    /// which must be compiled in (same name and parameters as its `rtl-out/` file).
    pub config: Option<PathBuf>,
    /// Run only the configurations with these names (empty: all). Applied after `config`.
    pub only: Vec<String>,
    /// Stream at most this many weights of each layer (a prefix of whole blocks; the layer
    /// is still quantized whole, so its tables and scales are the real ones).
    pub max_weights: Option<u64>,
    /// Stop after this many mismatches (0: never stop).
    pub max_mismatches: u64,
    /// Write a VCD waveform around the first mismatch to this file (replaying its layer on
    /// the traced model from the layer's table load).
    pub vcd: Option<PathBuf>,
    /// Longest stretch dumped before the mismatch, in cycles (the dump starts at the later of
    /// the last reset / table load and `mismatch - vcd_before`).
    pub vcd_before: u64,
    /// Write a JUnit XML report (one test case per layer x configuration) to this file.
    pub junit: Option<PathBuf>,
    /// Stream shape: idle gaps, early strobes, bubbles, mid-layer resets, seed.
    pub stimulus: StimulusOptions,
    /// Quantizer settings.
    pub quant: QuantOptions,
    /// Run the deliberately broken RTL ([`Variant::Mutant`]) for [`MUTANT_CONFIG`] (the
    /// mutation check; the other configurations run normally).
    pub mutant: bool,
    /// Run only this shard of the layer x configuration work items ([`Shard::select`]):
    /// the union of the shards `1/N ..= N/N` is the whole run.
    pub shard: Shard,
    /// Worker threads, each with its own Verilated models (0: the available cores). The
    /// results do not depend on it.
    pub threads: usize,
}

impl Default for CosimOptions {
    fn default() -> Self {
        CosimOptions {
            model: "minilm".into(),
            layers: None,
            config: None,
            only: Vec::new(),
            max_weights: None,
            max_mismatches: 10,
            vcd: None,
            vcd_before: 2000,
            junit: None,
            stimulus: StimulusOptions::default(),
            quant: QuantOptions::default(),
            mutant: false,
            shard: Shard::ALL,
            threads: 0,
        }
    }
}

/// The result of one layer on one configuration.
#[derive(Clone, Debug)]
pub struct LayerReport {
    /// Configuration name.
    pub config: String,
    /// Operating point the layer was quantized at.
    pub point: String,
    /// Layer (tensor) name.
    pub layer: String,
    /// Rows x columns of the layer.
    pub shape: (usize, usize),
    /// Weights checked: all the layer's streamed weights, unless the run stopped inside it.
    pub weights: u64,
    /// Mismatches attributed to this layer.
    pub mismatches: u64,
    /// The first of them.
    pub first_mismatch: Option<Mismatch>,
    /// Seconds spent loading and quantizing the layer.
    pub quant_secs: f64,
    /// Seconds spent simulating it (table load, stream, checks).
    pub sim_secs: f64,
    /// Of `weights`, the words that came out (and were checked) during the table load after
    /// the layer ([`reload_tables`]): the check that words in flight keep their tables.
    pub reload_checked: u64,
}

/// A progress event of [`run`].
#[derive(Debug)]
pub enum Progress<'a> {
    /// The run starts: configurations (with their points) and layers.
    Start {
        /// Configurations and the operating point each decodes.
        configs: &'a [(LaneConfig, String)],
        /// Layers.
        layers: &'a [String],
        /// Layer x configuration items this run (this shard) streams.
        items: usize,
        /// Items of the whole (unsharded) run.
        total_items: usize,
        /// The shard run.
        shard: Shard,
        /// Worker threads.
        threads: usize,
    },
    /// A layer finished on one configuration (reported once its last output was checked).
    Layer(&'a LayerReport),
}

/// Where the waveform around the first mismatch went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcdReport {
    /// The VCD file.
    pub path: PathBuf,
    /// Configuration and layer replayed.
    pub config: String,
    /// Layer replayed.
    pub layer: String,
    /// First and last cycle dumped (VCD time `10 * cycle`, rising edge at `+5`).
    pub cycles: (u64, u64),
    /// Whether the replay showed the same mismatch (same cycle, lane and word).
    pub reproduced: bool,
}

/// The outcome of [`run`].
#[derive(Clone, Debug, Default)]
pub struct CosimSummary {
    /// Output words checked, summed over configurations.
    pub weights: u64,
    /// Distinct layers streamed.
    pub layers: usize,
    /// Configurations run.
    pub configs: usize,
    /// Mismatches found (the run stops at `max_mismatches`).
    pub mismatches: u64,
    /// Seconds of simulation (table loads, streams and checks; the rate's denominator).
    pub sim_secs: f64,
    /// Seconds spent loading and quantizing layers.
    pub quant_secs: f64,
    /// Wall-clock seconds of the whole run.
    pub wall_secs: f64,
    /// Per layer and configuration, in run order.
    pub reports: Vec<LayerReport>,
    /// Layer x configuration pairs not run because the run stopped early.
    pub skipped: Vec<(String, String)>,
    /// The first mismatch reports (at most `max_mismatches`, at most 100).
    pub mismatch_reports: Vec<Mismatch>,
    /// The waveform, when one was asked for and a mismatch was found.
    pub vcd: Option<VcdReport>,
    /// The run stopped at `max_mismatches`.
    pub stopped: bool,
    /// `verilator --version` of the build.
    pub verilator: String,
    /// Per menu option, in first-streamed order ([`run_quantized`] only; empty otherwise).
    pub options: Vec<OptionCount>,
    /// The configurations of the whole (unsharded) run, in run order.
    pub plan_configs: Vec<String>,
    /// The layers of the whole (unsharded) run, in run order.
    pub plan_layers: Vec<String>,
    /// The shard this summary covers.
    pub shard: Shard,
    /// Worker threads the items ran on (0 or 1: one).
    pub threads: usize,
}

impl CosimSummary {
    /// Millions of checked weights per second of simulation: on one thread, per second of
    /// [`CosimSummary::sim_secs`]; on several, per second of the simulation's share of the
    /// wall-clock time (`wall_secs x sim / (sim + quant)`), i.e. the rate of all threads
    /// together.
    pub fn mweights_per_sec(&self) -> f64 {
        let secs = if self.threads > 1 && self.wall_secs > 0.0 && self.sim_secs + self.quant_secs > 0.0 {
            self.wall_secs * self.sim_secs / (self.sim_secs + self.quant_secs)
        } else {
            self.sim_secs
        };
        if secs > 0.0 {
            self.weights as f64 / secs / 1e6
        } else {
            0.0
        }
    }

    /// True when no mismatch was found.
    pub fn passed(&self) -> bool {
        self.mismatches == 0
    }

    /// The last line: `cosim: <W> weights, <L> layers, <C> configs, <K> mismatches, <R> M
    /// weights/s`.
    pub fn line(&self) -> String {
        format!(
            "cosim: {} weights, {} layers, {} configs, {} mismatches, {:.1} M weights/s",
            self.weights,
            self.layers,
            self.configs,
            self.mismatches,
            self.mweights_per_sec()
        )
    }
}

impl fmt::Display for CosimSummary {
    /// The mismatch reports, the waveform note, one line per menu option
    /// ([`OptionCount::line`]), then [`CosimSummary::line`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mismatch_reports {
            writeln!(f, "{m}")?;
        }
        if self.mismatches > self.mismatch_reports.len() as u64 {
            writeln!(
                f,
                "({} more mismatches not shown)",
                self.mismatches - self.mismatch_reports.len() as u64
            )?;
        }
        if self.stopped {
            writeln!(
                f,
                "stopped after {} mismatches; {} layer x configuration runs skipped",
                self.mismatches,
                self.skipped.len()
            )?;
        }
        if let Some(v) = &self.vcd {
            writeln!(
                f,
                "waveform: {} (config {}, layer {}, cycles {}..={}, VCD time 10 x cycle; the replay {} the mismatch)",
                v.path.display(),
                v.config,
                v.layer,
                v.cycles.0,
                v.cycles.1,
                if v.reproduced {
                    "reproduced"
                } else {
                    "did NOT reproduce"
                }
            )?;
        }
        for o in &self.options {
            writeln!(f, "{}", o.line())?;
        }
        write!(f, "{}", self.line())
    }
}

/// Selects the linear layers matching `pattern` (a regular expression, or a plain substring
/// when it is not a valid one), in model order.
pub fn select_layers(model: &Model, pattern: Option<&str>) -> Result<Vec<String>, CosimError> {
    let linear: Vec<String> = model.linear_layers().into_iter().map(|t| t.name).collect();
    if linear.is_empty() {
        return Err(CosimError::Config(format!(
            "{}: no linear (2-D weight) tensors",
            model.path().display()
        )));
    }
    let Some(p) = pattern else { return Ok(linear) };
    let m = LayerMatcher::new(p);
    let chosen: Vec<String> = linear.iter().filter(|n| m.is_match(n)).cloned().collect();
    if chosen.is_empty() {
        return Err(CosimError::Config(format!(
            "--layers '{p}' matches none of the {} linear layers of {}",
            linear.len(),
            model.path().display()
        )));
    }
    Ok(chosen)
}

/// A `--layers` pattern: a regular expression, or a plain substring when it is not a valid
/// one.
enum LayerMatcher<'a> {
    Regex(regex::Regex),
    Substring(&'a str),
}

impl<'a> LayerMatcher<'a> {
    fn new(p: &'a str) -> Self {
        match regex::Regex::new(p) {
            Ok(re) => LayerMatcher::Regex(re),
            Err(_) => LayerMatcher::Substring(p),
        }
    }

    fn is_match(&self, name: &str) -> bool {
        match self {
            LayerMatcher::Regex(re) => re.is_match(name),
            LayerMatcher::Substring(p) => name.contains(p),
        }
    }
}

/// The configurations to run: the compiled ones, or those of `opts.config` (each must be
/// compiled in with the same parameters), filtered by `opts.only`.
pub fn select_configs(opts: &CosimOptions) -> Result<Vec<LaneConfig>, CosimError> {
    let compiled = compiled_configs();
    let mut chosen = match &opts.config {
        None => compiled.clone(),
        Some(path) => {
            let wanted = sop_hw::config::load_configs(path)
                .map_err(|e| CosimError::Config(format!("--config {}: {e}", path.display())))?;
            let mut v = Vec::new();
            for w in wanted {
                match compiled.iter().find(|c| c.name == w.name) {
                    None => {
                        return Err(CosimError::NoModel {
                            name: w.name.clone(),
                            variant: Variant::Plain,
                            available: compiled.iter().map(|c| c.name.clone()).collect(),
                        })
                    }
                    Some(c) if *c != w => {
                        return Err(CosimError::Config(format!(
                            "{}: configuration '{}' ({}) differs from the compiled Verilog ({}); re-emit rtl-out/ and rebuild",
                            path.display(),
                            w.name,
                            w.summary(),
                            c.summary()
                        )))
                    }
                    Some(c) => v.push(c.clone()),
                }
            }
            v
        }
    };
    if !opts.only.is_empty() {
        for n in &opts.only {
            if !chosen.iter().any(|c| &c.name == n) {
                return Err(CosimError::NoModel {
                    name: n.clone(),
                    variant: Variant::Plain,
                    available: chosen.iter().map(|c| c.name.clone()).collect(),
                });
            }
        }
        chosen.retain(|c| opts.only.contains(&c.name));
    }
    if chosen.is_empty() {
        return Err(CosimError::Config("no configuration to run".into()));
    }
    Ok(chosen)
}

/// The first mismatch's layer, kept for the VCD replay.
struct FirstMismatch {
    cfg: LaneConfig,
    variant: Variant,
    stim: LayerStim,
    other: Option<LayerStim>,
    index: u64,
    load_start: u64,
    mismatch: Mismatch,
}

/// What [`stream_layer`] did besides streaming the layer's own weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Mid-layer resets.
    pub resets: u64,
    /// Reloads of the layer's own tables.
    pub reloads: u64,
    /// Interleaves: another layer's tables and blocks, then the layer's tables again.
    pub interleaves: u64,
    /// All-lane pauses.
    pub pauses: u64,
    /// Weights of other layers streamed by interleaves.
    pub other_weights: u64,
    /// The harness streams of the interleaved blocks (their mismatches belong to this
    /// layer's run).
    pub streams: Vec<usize>,
}

impl EventCounts {
    /// Adds `o`'s counts (not its streams).
    pub fn add(&mut self, o: &EventCounts) {
        self.resets += o.resets;
        self.reloads += o.reloads;
        self.interleaves += o.interleaves;
        self.pauses += o.pauses;
        self.other_weights += o.other_weights;
    }
}

/// Streams `stim`, whose tables are loaded, on `h` as harness stream `stream_id` with the
/// mid-layer events of `opts` ([`LayerStream::events`] for stream number `index`): resets,
/// reloads of its own tables, pauses and, when `other` is given, interleaves of `other`'s
/// tables and first blocks (then `stim`'s tables again and a fresh strobe on every lane).
/// Stops when the stream is done, the harness stopped at its mismatch limit, or before
/// cycle `until`. Outputs still in flight at the end are checked by the following cycles.
pub fn stream_layer(
    h: &mut Harness,
    stim: &LayerStim,
    other: Option<&LayerStim>,
    opts: StimulusOptions,
    index: u64,
    stream_id: usize,
    until: u64,
) -> Result<EventCounts, CosimError> {
    let lanes = h.dut().lanes();
    let mut ls = LayerStream::new(stim, lanes, opts, index);
    let mut n = EventCounts::default();
    let mut t = 0u64;
    let halt = |h: &Harness| h.stopped() || h.cycle() >= until;
    for (at, ev) in ls.events(index) {
        while t < at && !ls.done() && !halt(h) {
            h.step(&mut ls);
            t += 1;
        }
        if ls.done() || halt(h) {
            break;
        }
        match (ev, other) {
            (StreamEvent::Reset, _) => {
                h.reset_with(&mut ls);
                t += 1;
                n.resets += 1;
            }
            (StreamEvent::Reload, _) | (StreamEvent::Interleave { .. }, None) => {
                h.load_tables(&stim.tables)?;
                n.reloads += 1;
            }
            (StreamEvent::Interleave { blocks }, Some(o)) => {
                h.load_tables(&o.tables)?;
                n.streams.push(h.begin_stream(&o.name, Some(o.geometry())));
                let chunk_opts = StimulusOptions {
                    reset_mid_layer: false,
                    ..opts
                };
                let mut cs = LayerStream::prefix(o, lanes, chunk_opts, index ^ (t << 16), blocks);
                let before = h.counters().issued;
                while !cs.done() && !halt(h) {
                    h.step(&mut cs);
                }
                n.other_weights += h.counters().issued - before;
                h.load_tables(&stim.tables)?;
                h.resume_stream(stream_id);
                ls.restrobe();
                n.interleaves += 1;
            }
            (StreamEvent::Pause(c), _) => {
                h.idle((c as u64).min(until.saturating_sub(h.cycle())));
                n.pauses += 1;
            }
        }
    }
    while !ls.done() && !halt(h) {
        h.step(&mut ls);
    }
    Ok(n)
}

/// Runs the co-simulation (see [`CosimOptions`]); `progress` sees each finished layer.
///
/// The work is one item per layer x configuration ([`WorkItem`], layer-major), each on a
/// fresh Verilated model: reset, the layer's table load, the layer streamed with the gaps,
/// strobes, bubbles and mid-layer reset of `opts.stimulus`, then a table load of different
/// tables (table 0 and 1 swapped, [`reload_tables`]) while the layer's last outputs drain,
/// which must still carry the layer's own tables. Every output word is compared with the
/// golden model. `opts.shard` picks a share of the items, `opts.threads` runs them in
/// parallel; the result is the same at any thread count.
pub fn run(opts: &CosimOptions, progress: impl FnMut(Progress<'_>)) -> Result<CosimSummary, CosimError> {
    let configs = select_configs(opts)?;
    let path = sop_model::resolve(&opts.model)?;
    let model = Model::open(&path)?;
    let layers = select_layers(&model, opts.layers.as_deref())?;
    let mut quantizers = Vec::new();
    let mut points = Vec::new();
    for cfg in &configs {
        let point = point_for(cfg)?;
        quantizers.push(Quantizer::new(point, opts.quant)?);
        points.push(point.to_string());
    }
    let infos = model.linear_layers();
    let mut items = Vec::new();
    for (li, name) in layers.iter().enumerate() {
        let n = infos
            .iter()
            .find(|t| &t.name == name)
            .map_or(0, |t| t.shape.iter().product::<usize>() as u64);
        let weights = opts.max_weights.map_or(n, |m| n.min(m));
        for ci in 0..configs.len() {
            items.push(WorkItem {
                layer: li,
                config: ci,
                weights,
            });
        }
    }
    let source = |li: usize, ci: usize, cfg: &LaneConfig| -> Result<Job, CosimError> {
        let t = Instant::now();
        let w = model.load_f32(&layers[li])?;
        let stim = layer_stim(&quantizers[ci], &w, cfg, opts.max_weights)?;
        Ok(Job {
            stim,
            point: points[ci].clone(),
            quant_secs: t.elapsed().as_secs_f64(),
        })
    };
    run_jobs(opts, &configs, &points, &layers, &items, source, progress)
}

/// What one menu option of a quantized model contributed to a [`run_quantized`] run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionCount {
    /// The menu option (`POINT[+O<p>%][+R<p>%]`).
    pub option: String,
    /// The configuration that decoded it.
    pub config: String,
    /// Layers with this option that were streamed.
    pub layers: usize,
    /// Their weights streamed.
    pub weights: u64,
    /// Their outlier and residual entries.
    pub sparse_entries: u64,
}

impl OptionCount {
    /// `<option>: <layers> layers, <weights> weights, <entries> sparse entries`.
    pub fn line(&self) -> String {
        format!(
            "{}: {} layers, {} weights, {} sparse entries",
            self.option, self.layers, self.weights, self.sparse_entries
        )
    }
}

/// Co-simulates the layers of a quantized model exactly as stored (`sop cosim --quantized`):
/// each layer goes to the first configuration of [`select_configs`] that decodes its menu
/// option ([`sop_hw::config::decoder_for`]) with its own tables, bias registers, codes, block
/// scales and selection bits; nothing is re-quantized. Every layer is checked before the
/// simulation starts: a layer no configuration decodes is an error naming the layer, its
/// option and what each configuration lacks. `opts.model` and `opts.quant` are not used.
pub fn run_quantized(
    opts: &CosimOptions,
    model: &[(QuantizedLayer, MenuOption)],
    progress: impl FnMut(Progress<'_>),
) -> Result<CosimSummary, CosimError> {
    let all = select_configs(opts)?;
    let selected: Vec<&(QuantizedLayer, MenuOption)> = match &opts.layers {
        None => model.iter().collect(),
        Some(p) => {
            let m = LayerMatcher::new(p);
            model.iter().filter(|(l, _)| m.is_match(&l.name)).collect()
        }
    };
    if selected.is_empty() {
        return Err(CosimError::Config(match &opts.layers {
            Some(p) => format!("--layers '{p}' matches no layer of the quantized model"),
            None => "the quantized model has no layers".into(),
        }));
    }
    let mut assigned = Vec::with_capacity(selected.len());
    for (l, o) in &selected {
        let cfg = sop_hw::config::decoder_for(&all, &l.point, l.sparse_entries() > 0)
            .map_err(|e| CosimError::Config(format!("layer {} (option {o}): cannot be co-simulated: {e}", l.name)))?;
        assigned.push(cfg.name.clone());
    }
    let configs: Vec<LaneConfig> = all.iter().filter(|c| assigned.contains(&c.name)).cloned().collect();
    let points: Vec<String> = configs
        .iter()
        .map(|c| {
            let mut opts: Vec<String> = Vec::new();
            for ((_, o), a) in selected.iter().zip(&assigned) {
                let o = o.to_string();
                if *a == c.name && !opts.contains(&o) {
                    opts.push(o);
                }
            }
            opts.join(", ")
        })
        .collect();
    let layers: Vec<String> = selected.iter().map(|(l, _)| l.name.clone()).collect();
    let mut items = Vec::new();
    for (li, ((l, _), a)) in selected.iter().zip(&assigned).enumerate() {
        let n = (l.rows * l.cols) as u64;
        for (ci, c) in configs.iter().enumerate() {
            if *a == c.name {
                items.push(WorkItem {
                    layer: li,
                    config: ci,
                    weights: opts.max_weights.map_or(n, |m| n.min(m)),
                });
            }
        }
    }
    let source = |li: usize, _ci: usize, cfg: &LaneConfig| -> Result<Job, CosimError> {
        let t = Instant::now();
        let (l, o) = selected[li];
        let mut stim = LayerStim::from_quantized(l, cfg)?;
        if let Some(m) = opts.max_weights {
            stim.truncate_weights(m);
        }
        Ok(Job {
            stim,
            point: o.to_string(),
            quant_secs: t.elapsed().as_secs_f64(),
        })
    };
    let (mut s, ran) = run_jobs_with(opts, &configs, &points, &layers, &items, source, progress)?;
    // Per option, in the order of the items that ran.
    let mut counts: Vec<OptionCount> = Vec::new();
    for (it, streamed) in ran {
        let (l, o) = selected[it.layer];
        let option = o.to_string();
        let entries = l.sparse_entries() as u64;
        match counts.iter_mut().find(|c| c.option == option) {
            Some(c) => {
                c.layers += 1;
                c.weights += streamed;
                c.sparse_entries += entries;
            }
            None => counts.push(OptionCount {
                option,
                config: configs[it.config].name.clone(),
                layers: 1,
                weights: streamed,
                sparse_entries: entries,
            }),
        }
    }
    s.options = counts;
    Ok(s)
}

/// One layer x configuration run of [`run_jobs`]: the layer's stimulus, the operating point
/// it was quantized at (or the menu option it was read with), and the seconds it took to
/// produce.
struct Job {
    stim: LayerStim,
    point: String,
    quant_secs: f64,
}

/// [`run_jobs_with`], without the list of the items that ran.
fn run_jobs(
    opts: &CosimOptions,
    configs: &[LaneConfig],
    points: &[String],
    layers: &[String],
    items: &[WorkItem],
    source: impl Fn(usize, usize, &LaneConfig) -> Result<Job, CosimError> + Sync,
    progress: impl FnMut(Progress<'_>),
) -> Result<CosimSummary, CosimError> {
    run_jobs_with(opts, configs, points, layers, items, source, progress).map(|r| r.0)
}

/// Runs `work(i)` for every `i` of `order`, in that order, on `threads` scoped worker
/// threads, and hands each result to `arrived(i, Some(result))` on the calling thread as it
/// comes (in completion order). An item `i` greater than `stop` (read when a worker takes
/// it; `arrived` may lower it) is not run: `arrived(i, None)`.
fn work_queue<R: Send>(
    threads: usize,
    order: &[usize],
    stop: &AtomicUsize,
    work: impl Fn(usize) -> R + Sync,
    mut arrived: impl FnMut(usize, Option<R>),
) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Option<R>)>();
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                let r = (i <= stop.load(Ordering::Relaxed)).then(|| work(i));
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            arrived(i, r);
        }
    });
}

/// The run loop shared by [`run`] (layers quantized on the fly) and [`run_quantized`] (layers
/// read from a quantized model file). `items` are the whole run's layer x configuration items
/// in run order (layer-major); `opts.shard` selects this run's share ([`Shard::select`]) and
/// `source(layer, config, cfg)` gives an item's stimulus. `points[i]` describes what
/// configuration `i` decodes (for the progress display).
///
/// The items run on `opts.threads` worker threads, each on its own fresh model
/// ([`run_item`]), heaviest first; the results are combined in run order, so the summary,
/// its reports and the JUnit file do not depend on the thread count or the timing: the
/// mismatch limit applies in run order (the item that reaches it has its count cut to the
/// limit; the items after it are skipped, even if a worker already ran them). Returns the
/// summary and, for each reported item in run order, the item and its streamed weights.
fn run_jobs_with(
    opts: &CosimOptions,
    configs: &[LaneConfig],
    points: &[String],
    layers: &[String],
    items: &[WorkItem],
    source: impl Fn(usize, usize, &LaneConfig) -> Result<Job, CosimError> + Sync,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<(CosimSummary, Vec<(WorkItem, u64)>), CosimError> {
    let wall = Instant::now();
    let mine: Vec<WorkItem> = opts.shard.select(items).into_iter().copied().collect();
    let threads = effective_threads(opts.threads).min(mine.len().max(1));
    let listed: Vec<(LaneConfig, String)> = configs.iter().cloned().zip(points.iter().cloned()).collect();
    progress(Progress::Start {
        configs: &listed,
        layers,
        items: mine.len(),
        total_items: items.len(),
        shard: opts.shard,
        threads,
    });
    let limit = opts.max_mismatches;
    let keep = limit.clamp(1, 100) as usize;
    // Heaviest first for the load balance (ties: run order).
    let mut order: Vec<usize> = (0..mine.len()).collect();
    order.sort_by(|&a, &b| mine[b].weights.cmp(&mine[a].weights).then(a.cmp(&b)));
    // Items after this position need not start: the mismatch limit was reached (or an error
    // happened) at or before it, in run order.
    let stop_after = AtomicUsize::new(usize::MAX);
    let mut results: Vec<Option<Result<ItemOut, CosimError>>> = (0..mine.len()).map(|_| None).collect();
    // The longest prefix (in run order) of finished items, and its mismatches.
    let mut done = 0usize;
    let mut found = 0u64;
    work_queue(
        threads,
        &order,
        &stop_after,
        |pos| {
            let it = mine[pos];
            let cfg = &configs[it.config];
            source(it.layer, it.config, cfg).and_then(|job| {
                run_item(
                    opts,
                    cfg,
                    variant_for(opts, cfg),
                    &layers[it.layer],
                    it.layer,
                    job,
                    keep,
                )
            })
        },
        |pos, r| {
            if let Some(Ok(out)) = &r {
                progress(Progress::Layer(&out.report));
            }
            results[pos] = r;
            while done < results.len() {
                match &results[done] {
                    None => break,
                    Some(Err(_)) => {
                        stop_after.fetch_min(done, Ordering::Relaxed);
                        break;
                    }
                    Some(Ok(out)) => {
                        found += out.report.mismatches;
                        if limit != 0 && found >= limit {
                            stop_after.fetch_min(done, Ordering::Relaxed);
                        }
                        done += 1;
                    }
                }
            }
        },
    );

    let mut s = CosimSummary {
        verilator: VERILATOR_VERSION.to_string(),
        plan_configs: configs.iter().map(|c| c.name.clone()).collect(),
        plan_layers: layers.to_vec(),
        shard: opts.shard,
        threads,
        ..CosimSummary::default()
    };
    let mut first: Option<FirstMismatch> = None;
    let mut ran = Vec::new();
    let mut used_layers = vec![false; layers.len()];
    let mut used_configs = vec![false; configs.len()];
    for (pos, r) in results.into_iter().enumerate() {
        let it = mine[pos];
        if s.stopped {
            s.skipped
                .push((configs[it.config].name.clone(), layers[it.layer].clone()));
            continue;
        }
        let mut out = match r {
            Some(Ok(out)) => out,
            Some(Err(e)) => return Err(e),
            None => unreachable!("an item before the stop point was not run"),
        };
        used_layers[it.layer] = true;
        used_configs[it.config] = true;
        if limit != 0 && s.mismatches + out.report.mismatches >= limit {
            out.report.mismatches = limit - s.mismatches;
            out.kept.truncate(out.report.mismatches as usize);
            s.stopped = true;
        }
        s.mismatches += out.report.mismatches;
        s.weights += out.report.weights;
        s.sim_secs += out.report.sim_secs;
        s.quant_secs += out.report.quant_secs;
        for m in out.kept {
            if s.mismatch_reports.len() < keep {
                s.mismatch_reports.push(m);
            }
        }
        if first.is_none() {
            first = out.first;
        }
        ran.push((it, out.streamed));
        s.reports.push(out.report);
    }
    s.layers = used_layers.iter().filter(|&&u| u).count();
    s.configs = used_configs.iter().filter(|&&u| u).count();
    if let (Some(path), Some(fm)) = (&opts.vcd, &first) {
        s.vcd = Some(replay_vcd(fm, opts, path)?);
    }
    s.wall_secs = wall.elapsed().as_secs_f64();
    if let Some(p) = &opts.junit {
        crate::junit::write_junit(&s, p)?;
    }
    Ok((s, ran))
}

/// The worker threads for `threads` (0: the available cores).
pub fn effective_threads(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The outcome of one item ([`run_item`]).
struct ItemOut {
    report: LayerReport,
    /// The first mismatch reports of the item (at most the harness's `keep`).
    kept: Vec<Mismatch>,
    /// Weights of the layer's stream (the stimulus), whether or not all were checked.
    streamed: u64,
    /// What the VCD replay needs, when the item has a mismatch.
    first: Option<FirstMismatch>,
}

/// The tables loaded after a layer while its last outputs drain: the layer's tables with
/// table 0 and table 1 (entries and bias registers) swapped, the mode unchanged. The words
/// in flight must come out with the tables they were issued with; with the swap, a lane
/// that applied the load early would deliver the other table's entry. (Where both tables
/// are equal, e.g. an engine layer on the direct minifloat path, there is nothing to tell
/// apart.)
pub fn reload_tables(t: &Tables) -> Tables {
    let mut r = t.clone();
    r.entries.swap(0, 1);
    r.bias.swap(0, 1);
    r
}

/// The body of an item on `h` (reset, nothing in flight): the layer's table load, its
/// stream (as [`stream_layer`] stream `index`, interleaving `other`), then, unless the
/// harness stopped or `until` was reached, the load of [`reload_tables`] while the last
/// outputs drain. Returns the load's first cycle, the stream's events and the words checked
/// during the reload.
fn item_body(
    h: &mut Harness,
    stim: &LayerStim,
    other: Option<&LayerStim>,
    so: StimulusOptions,
    index: u64,
    until: u64,
) -> Result<(u64, EventCounts, u64), CosimError> {
    let load_start = h.cycle();
    h.load_tables(&stim.tables)?;
    let sid = h.begin_stream(&stim.name, Some(stim.geometry()));
    let events = stream_layer(h, stim, other, so, index, sid, until)?;
    let mut reload_checked = 0;
    if !h.stopped() && h.cycle() < until {
        let before = h.counters().checked;
        h.load_tables(&reload_tables(&stim.tables))?;
        reload_checked = h.counters().checked - before;
    }
    Ok((load_start, events, reload_checked))
}

/// Runs one layer x configuration item on a fresh model of `cfg`: reset, [`item_body`],
/// drain. With `reloads_per_layer` in the stimulus, interleaves stream the layer's own
/// blocks under [`reload_tables`].
fn run_item(
    opts: &CosimOptions,
    cfg: &LaneConfig,
    variant: Variant,
    name: &str,
    index: usize,
    job: Job,
    keep: usize,
) -> Result<ItemOut, CosimError> {
    let Job {
        stim,
        point,
        quant_secs,
    } = job;
    let t = Instant::now();
    let mut h = Harness::new(Dut::with_variant(&cfg.name, variant)?);
    h.set_keep(keep);
    h.set_max_mismatches(opts.max_mismatches);
    h.reset();
    let other = (opts.stimulus.reloads_per_layer > 0).then(|| {
        let mut o = stim.clone();
        o.tables = reload_tables(&stim.tables);
        o
    });
    let (load_start, events, reload_checked) =
        item_body(&mut h, &stim, other.as_ref(), opts.stimulus, index as u64, u64::MAX)?;
    if !h.stopped() {
        h.drain();
    }
    let n = h.counters();
    debug_assert!(h.stopped() || n.checked == stim.weights() + events.other_weights);
    let kept: Vec<Mismatch> = h.mismatches().to_vec();
    let first = kept.first().map(|m| FirstMismatch {
        cfg: cfg.clone(),
        variant,
        stim: stim.clone(),
        other: other.clone(),
        index: index as u64,
        load_start,
        mismatch: m.clone(),
    });
    Ok(ItemOut {
        report: LayerReport {
            config: cfg.name.clone(),
            point,
            layer: name.to_string(),
            shape: (stim.rows, stim.cols),
            weights: n.checked,
            mismatches: n.mismatches,
            first_mismatch: kept.first().cloned(),
            quant_secs,
            sim_secs: t.elapsed().as_secs_f64(),
            reload_checked,
        },
        kept,
        streamed: stim.weights(),
        first,
    })
}

/// One finished round of [`soak`].
#[derive(Clone, Debug)]
pub struct SoakRound {
    /// Round number, from 0.
    pub round: u64,
    /// The round's stimulus seed ([`StimulusOptions::soak`]).
    pub seed: u64,
    /// Output words checked in the round, summed over configurations.
    pub weights: u64,
    /// Mismatches found in the round.
    pub mismatches: u64,
    /// The round's mid-layer events, summed over layers and configurations.
    pub events: EventCounts,
    /// Seconds of simulation, summed over the round's configurations (each ran on one
    /// worker thread; they may have run side by side).
    pub secs: f64,
}

/// The outcome of [`soak`].
#[derive(Clone, Debug, Default)]
pub struct SoakSummary {
    /// Rounds run (fewer than asked when the mismatch limit stopped the soak).
    pub rounds: u64,
    /// Layers per round.
    pub layers: usize,
    /// Configurations per round.
    pub configs: usize,
    /// Output words checked, summed over rounds and configurations.
    pub weights: u64,
    /// Mismatches found.
    pub mismatches: u64,
    /// Mid-layer events, summed.
    pub events: EventCounts,
    /// Seconds spent loading and quantizing the layers (once, before the first round).
    pub quant_secs: f64,
    /// Wall-clock seconds of the rounds (simulation and checks on every worker thread; the
    /// rate's denominator).
    pub sim_secs: f64,
    /// The first mismatch reports (at most `max_mismatches`, at most 100).
    pub mismatch_reports: Vec<Mismatch>,
}

impl SoakSummary {
    /// Millions of checked weights per second of the rounds.
    pub fn mweights_per_sec(&self) -> f64 {
        if self.sim_secs > 0.0 {
            self.weights as f64 / self.sim_secs / 1e6
        } else {
            0.0
        }
    }

    /// The last line: `soak: <N> rounds, <W> weights, <L> layers, <C> configs, <K>
    /// mismatches, <E> events (resets, reloads, interleaves, pauses), <T> s, <R> M weights/s`.
    pub fn line(&self) -> String {
        let e = &self.events;
        format!(
            "soak: {} rounds, {} weights, {} layers, {} configs, {} mismatches, {} resets, {} reloads, {} interleaves, {} pauses, {:.1} s, {:.1} M weights/s",
            self.rounds,
            self.weights,
            self.layers,
            self.configs,
            self.mismatches,
            e.resets,
            e.reloads,
            e.interleaves,
            e.pauses,
            self.sim_secs,
            self.mweights_per_sec()
        )
    }
}

impl fmt::Display for SoakSummary {
    /// The mismatch reports, then [`SoakSummary::line`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mismatch_reports {
            writeln!(f, "{m}")?;
        }
        write!(f, "{}", self.line())
    }
}

/// The soak: quantizes the selected layers once per configuration, then runs `rounds`
/// rounds, each streaming every layer through every configuration on a fresh, reset model
/// with its own seed ([`StimulusOptions::soak`] of `opts.stimulus.seed` and the round):
/// idle gaps, early strobes, bubbles, a reset, table reloads, interleaves of another
/// (seeded) layer's tables and blocks, and pauses, checking every output word. Stops at
/// `opts.max_mismatches` (0: never). `opts.stimulus` other than its seed, `vcd` and
/// `junit` are not used; `progress` sees each finished round.
///
/// The round x configuration items run on `opts.threads` worker threads (round-major) and
/// are combined in that order, so the counts, mismatches and reports do not depend on the
/// thread count (the mismatch limit applies in that order, as in [`run`]).
pub fn soak(opts: &CosimOptions, rounds: u64, mut progress: impl FnMut(&SoakRound)) -> Result<SoakSummary, CosimError> {
    if rounds == 0 {
        return Err(CosimError::Config("--soak 0: run at least one round".into()));
    }
    let configs = select_configs(opts)?;
    let path = sop_model::resolve(&opts.model)?;
    let model = Model::open(&path)?;
    let layers = select_layers(&model, opts.layers.as_deref())?;
    let t0 = Instant::now();
    let mut quantizers = Vec::new();
    for cfg in &configs {
        quantizers.push(Quantizer::new(point_for(cfg)?, opts.quant)?);
    }
    let mut stims: Vec<Vec<LayerStim>> = vec![Vec::with_capacity(layers.len()); configs.len()];
    for name in &layers {
        let w = model.load_f32(name)?;
        for ((cfg, q), out) in configs.iter().zip(&quantizers).zip(&mut stims) {
            out.push(layer_stim(q, &w, cfg, opts.max_weights)?);
        }
    }
    let mut s = SoakSummary {
        layers: layers.len(),
        configs: configs.len(),
        quant_secs: t0.elapsed().as_secs_f64(),
        ..SoakSummary::default()
    };
    let keep = opts.max_mismatches.clamp(1, 100) as usize;
    let limit = opts.max_mismatches;
    let n = layers.len();
    let nc = configs.len();
    let seed_of = |round: u64| {
        opts.stimulus
            .seed
            .wrapping_add(round.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    };
    // One item per round x configuration (round-major), each on a fresh, reset model.
    let item = |i: usize| -> Result<SoakItem, CosimError> {
        let (round, ci) = ((i / nc) as u64, i % nc);
        let (cfg, cs) = (&configs[ci], &stims[ci]);
        let t = Instant::now();
        let seed = seed_of(round);
        let so = StimulusOptions::soak(seed);
        let mut h = Harness::new(Dut::with_variant(&cfg.name, variant_for(opts, cfg))?);
        h.set_keep(keep);
        h.set_max_mismatches(limit);
        h.reset();
        let mut events = EventCounts::default();
        for (li, stim) in cs.iter().enumerate() {
            h.load_tables(&stim.tables)?;
            let sid = h.begin_stream(&stim.name, Some(stim.geometry()));
            // Another layer, chosen by the round's seed, for the interleaves.
            let other = (n > 1).then(|| &cs[(li + 1 + (seed.rotate_left(li as u32) % (n as u64 - 1)) as usize) % n]);
            let ev = stream_layer(&mut h, stim, other, so, li as u64, sid, u64::MAX)?;
            events.add(&ev);
            if h.stopped() {
                break;
            }
        }
        if !h.stopped() {
            h.drain();
        }
        let c = h.counters();
        Ok(SoakItem {
            weights: c.checked,
            mismatches: c.mismatches,
            kept: h.mismatches().to_vec(),
            events,
            secs: t.elapsed().as_secs_f64(),
        })
    };
    let total = rounds as usize * nc;
    let order: Vec<usize> = (0..total).collect();
    let stop_after = AtomicUsize::new(usize::MAX);
    let mut results: Vec<Option<Result<SoakItem, CosimError>>> = (0..total).map(|_| None).collect();
    // Items combined in order so far; the round being summed.
    let mut done = 0usize;
    let mut r = SoakRound {
        round: 0,
        seed: seed_of(0),
        weights: 0,
        mismatches: 0,
        events: EventCounts::default(),
        secs: 0.0,
    };
    let mut error: Option<CosimError> = None;
    let t_rounds = Instant::now();
    work_queue(effective_threads(opts.threads), &order, &stop_after, item, |i, res| {
        results[i] = res;
        while done < total && !s.stopped_early(limit) && error.is_none() {
            let Some(res) = results[done].take() else { break };
            let mut it = match res {
                Ok(it) => it,
                Err(e) => {
                    error = Some(e);
                    stop_after.fetch_min(done, Ordering::Relaxed);
                    break;
                }
            };
            if limit != 0 && s.mismatches + r.mismatches + it.mismatches >= limit {
                it.mismatches = limit - s.mismatches - r.mismatches;
                it.kept.truncate(it.mismatches as usize);
                stop_after.fetch_min(done, Ordering::Relaxed);
            }
            r.weights += it.weights;
            r.mismatches += it.mismatches;
            r.events.add(&it.events);
            r.secs += it.secs;
            for m in it.kept {
                if s.mismatch_reports.len() < keep {
                    s.mismatch_reports.push(m);
                }
            }
            done += 1;
            let round_over = done % nc == 0;
            let limit_hit = limit != 0 && s.mismatches + r.mismatches >= limit;
            if round_over || limit_hit {
                s.rounds += 1;
                s.weights += r.weights;
                s.mismatches += r.mismatches;
                s.events.add(&r.events);
                progress(&r);
                let next = r.round + 1;
                r = SoakRound {
                    round: next,
                    seed: seed_of(next),
                    weights: 0,
                    mismatches: 0,
                    events: EventCounts::default(),
                    secs: 0.0,
                };
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    s.sim_secs = t_rounds.elapsed().as_secs_f64();
    Ok(s)
}

/// One round x configuration item of [`soak`].
struct SoakItem {
    weights: u64,
    mismatches: u64,
    kept: Vec<Mismatch>,
    events: EventCounts,
    secs: f64,
}

impl SoakSummary {
    /// The mismatch limit `limit` (0: none) was reached.
    fn stopped_early(&self, limit: u64) -> bool {
        limit != 0 && self.mismatches >= limit
    }
}

/// The RTL variant a configuration runs: the mutant only when asked for and only for
/// [`MUTANT_CONFIG`].
fn variant_for(opts: &CosimOptions, cfg: &LaneConfig) -> Variant {
    if opts.mutant && cfg.name == MUTANT_CONFIG {
        Variant::Mutant
    } else {
        Variant::Plain
    }
}

/// Quantizes layer `w` for configuration `cfg` and turns it into its stimulus, keeping at
/// most `max_weights` weights (whole blocks) when given.
fn layer_stim(
    q: &Quantizer,
    w: &sop_model::Weights2D,
    cfg: &LaneConfig,
    max_weights: Option<u64>,
) -> Result<LayerStim, CosimError> {
    let ql = q.quantize(
        LayerRef {
            name: &w.name,
            rows: w.rows,
            cols: w.cols,
            data: &w.data,
        },
        None,
    )?;
    let mut stim = LayerStim::from_quantized(&ql, cfg)?;
    if let Some(m) = max_weights {
        stim.truncate_weights(m);
    }
    Ok(stim)
}

/// Replays the item of the first mismatch on the traced model ([`item_body`] after a
/// reset, as the item ran), dumping the cycles from the last reset or table load before the mismatch (at
/// most `opts.vcd_before` cycles before it) to `latency + 4` cycles after it.
fn replay_vcd(fm: &FirstMismatch, opts: &CosimOptions, path: &Path) -> Result<VcdReport, CosimError> {
    let (cfg, variant) = (&fm.cfg, fm.variant);
    let mut dut = Dut::with_variant(&cfg.name, variant.traced())?;
    let start = fm.load_start.saturating_sub(1);
    dut.set_cycle(start);
    // Verilator's tracer opens the file by name: let it write a temporary name and rename it
    // after the close, so `path` appears whole or not at all. On an early return the harness
    // (declared later) drops first and closes the tracer, then `out` removes the temporary.
    let out = sop_atomic_write::ExternalFile::reserve(path).map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })?;
    dut.vcd_open(out.temp_path())?;
    let mut h = Harness::new(dut);
    h.set_keep(usize::MAX);
    let m = &fm.mismatch;
    let ls0 = LayerStream::new(&fm.stim, cfg.lanes as usize, opts.stimulus, fm.index);
    let resets: Vec<u64> = ls0.reset_offset(fm.index).into_iter().collect();
    drop(ls0);
    // The stream starts after the reset cycle and the table load (at least the pipeline
    // latency: `Harness::load_tables`).
    let stream_start = fm.load_start + (crate::ffi::load_ops(cfg, &fm.stim.tables).len() as u64).max(h.latency());
    let mut sync = start;
    for r in &resets {
        if stream_start + r <= m.issue_cycle {
            sync = stream_start + r;
        }
    }
    let from = sync.max(m.cycle.saturating_sub(opts.vcd_before));
    let to = m.cycle + h.latency() + 4;
    h.set_vcd_window(from, to);
    h.reset();
    item_body(&mut h, &fm.stim, fm.other.as_ref(), opts.stimulus, fm.index, to + 1)?;
    if h.cycle() <= to {
        h.idle(to + 1 - h.cycle());
    }
    let reproduced = h
        .mismatches()
        .iter()
        .any(|x| x.cycle == m.cycle && x.lane == m.lane && x.actual == m.actual && x.expected == m.expected);
    h.dut_mut().vcd_close();
    out.commit().map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })?;
    Ok(VcdReport {
        path: path.to_path_buf(),
        config: cfg.name.clone(),
        layer: fm.stim.name.clone(),
        cycles: (from, to),
        reproduced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_format() {
        let s = CosimSummary {
            weights: 1_000_000,
            layers: 2,
            configs: 3,
            mismatches: 0,
            sim_secs: 0.04,
            ..CosimSummary::default()
        };
        assert_eq!(
            s.line(),
            "cosim: 1000000 weights, 2 layers, 3 configs, 0 mismatches, 25.0 M weights/s"
        );
        assert_eq!(s.to_string(), s.line());
    }

    #[test]
    fn config_files_must_match_the_compiled_verilog() {
        let dir = std::env::temp_dir().join(format!("sop-cosim-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = compiled_configs()[0].clone();
        let path = dir.join("c.toml");
        std::fs::write(&path, good.to_toml()).unwrap();
        let opts = CosimOptions {
            config: Some(path.clone()),
            ..CosimOptions::default()
        };
        assert_eq!(select_configs(&opts).unwrap(), vec![good.clone()]);
        let mut other = good.clone();
        other.lanes = 2;
        std::fs::write(&path, other.to_toml()).unwrap();
        let e = select_configs(&opts).unwrap_err().to_string();
        assert!(e.contains("differs from the compiled Verilog"), "{e}");
        let mut unknown = good;
        unknown.name = "not_compiled".into();
        std::fs::write(&path, unknown.to_toml()).unwrap();
        let e = select_configs(&opts).unwrap_err().to_string();
        assert!(
            e.contains("not_compiled") && e.contains("sop_c4_hif8_ue4m4_fp16"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let only = CosimOptions {
            only: vec!["nope".into()],
            ..CosimOptions::default()
        };
        assert!(select_configs(&only).is_err());
    }
}
