//! The co-simulation run behind `sop cosim`: the layer x configuration work items (quantize
//! a model's linear layers at each configuration's operating point, or take a quantized
//! model's layers as stored), each streamed through a fresh Verilated model on a worker
//! thread with every output word checked, combined in run order into a [`CosimSummary`]
//! (text, JUnit, VCD around the first mismatch).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use sop_hw::{LaneConfig, Tables};
use sop_model::Model;
use sop_quantize::sparse::MenuOption;
use sop_quantize::{LayerRef, QuantOptions, QuantizedLayer, Quantizer};

use crate::coverage::{Collected, Coverage, CoverageModel};
use crate::directed::{directed_weights, run_directed, DIRECTED_LAYER};
use crate::ffi::{Dut, Variant, MUTANT_CONFIG, VERILATOR_VERSION};
use crate::harness::{Harness, Stimulus};
use crate::replay::{replay_vcd, FirstMismatch};
use crate::report::Mismatch;
use crate::select::{select_configs, select_layers, LayerMatcher};
use crate::shard::{Shard, WorkItem};
use crate::stimulus::{point_for, LayerStim, LayerStream, StimulusOptions, StreamEvent};
use crate::summary::{CosimSummary, LayerReport, OptionCount, Progress};
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
    /// Collect functional coverage ([`crate::coverage`]) and write its JSON report to this
    /// file; the summary carries the report ([`CosimSummary::coverage`]).
    pub coverage: Option<PathBuf>,
    /// With `coverage`: add one directed coverage item per configuration
    /// ([`crate::directed`], layer [`DIRECTED_LAYER`]) that reaches every reachable bin.
    /// `false`: the coverage of the layers alone.
    pub directed: bool,
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
            coverage: None,
            directed: true,
        }
    }
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
pub(crate) fn work_queue<R: Send>(
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
    // With coverage, the directed items: one per configuration, after the layers.
    let directed = (opts.coverage.is_some() && opts.directed).then_some(layers.len());
    let mut layers = layers.to_vec();
    let mut items = items.to_vec();
    if let Some(d) = directed {
        layers.push(DIRECTED_LAYER.to_string());
        for (ci, cfg) in configs.iter().enumerate() {
            items.push(WorkItem {
                layer: d,
                config: ci,
                weights: directed_weights(cfg, cfg.lanes as usize),
            });
        }
    }
    let (layers, items) = (&layers[..], &items[..]);
    // The coverage model covers the whole run's configurations, so that shards' reports
    // have the same bins and merge.
    let model = opts.coverage.as_ref().map(|_| CoverageModel::new(configs));
    let mine: Vec<WorkItem> = opts.shard.select(items, |i| i.weights).into_iter().copied().collect();
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
            if Some(it.layer) == directed {
                return run_directed_item(opts, cfg, variant_for(opts, cfg), keep);
            }
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
    let mut cov = Coverage::default();
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
        // The directed coverage items are not a layer of the model.
        used_layers[it.layer] = Some(it.layer) != directed;
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
        if let Some(c) = &out.coverage {
            cov.add_item(&configs[it.config].name, &layers[it.layer], c);
        }
        if Some(it.layer) == directed {
            s.reports.push(out.report);
            continue;
        }
        ran.push((it, out.streamed));
        s.reports.push(out.report);
    }
    s.layers = used_layers.iter().filter(|&&u| u).count();
    s.configs = used_configs.iter().filter(|&&u| u).count();
    if let (Some(path), Some(fm)) = (&opts.vcd, &first) {
        s.vcd = Some(replay_vcd(fm, opts, path)?);
    }
    if let (Some(path), Some(model)) = (&opts.coverage, &model) {
        let report = model.report(&cov)?;
        report.write(path)?;
        s.coverage = Some(report);
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
    /// The item's functional coverage (when collected).
    coverage: Option<Collected>,
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
pub(crate) fn item_body(
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
    if opts.coverage.is_some() {
        h.enable_coverage();
    }
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
        coverage: h.take_coverage(),
    })
}

/// Runs the directed coverage item of `cfg` ([`run_directed`]) on a fresh model, with
/// coverage collected. Its mismatches are reported like a layer's; no VCD replay.
fn run_directed_item(
    opts: &CosimOptions,
    cfg: &LaneConfig,
    variant: Variant,
    keep: usize,
) -> Result<ItemOut, CosimError> {
    let t = Instant::now();
    let mut h = Harness::new(Dut::with_variant(&cfg.name, variant)?);
    h.set_keep(keep);
    h.set_max_mismatches(opts.max_mismatches);
    h.enable_coverage();
    h.reset();
    let streamed = run_directed(&mut h)?;
    if !h.stopped() {
        h.drain();
    }
    let n = h.counters();
    let kept: Vec<Mismatch> = h.mismatches().to_vec();
    Ok(ItemOut {
        report: LayerReport {
            config: cfg.name.clone(),
            point: "directed coverage stimulus (the first input of every reachable class, every path)".into(),
            layer: DIRECTED_LAYER.to_string(),
            shape: (1, streamed as usize),
            weights: n.checked,
            mismatches: n.mismatches,
            first_mismatch: kept.first().cloned(),
            quant_secs: 0.0,
            sim_secs: t.elapsed().as_secs_f64(),
            reload_checked: 0,
        },
        kept,
        streamed,
        first: None,
        coverage: h.take_coverage(),
    })
}

/// The RTL variant a configuration runs: the mutant only when asked for and only for
/// [`MUTANT_CONFIG`].
pub(crate) fn variant_for(opts: &CosimOptions, cfg: &LaneConfig) -> Variant {
    if opts.mutant && cfg.name == MUTANT_CONFIG {
        Variant::Mutant
    } else {
        Variant::Plain
    }
}

/// Quantizes layer `w` for configuration `cfg` and turns it into its stimulus, keeping at
/// most `max_weights` weights (whole blocks) when given.
pub(crate) fn layer_stim(
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
