//! The soak (`sop cosim --soak ROUNDS`): every layer through every configuration per round,
//! with a new seed, table reloads, interleaved layers and pauses, on worker threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sop_model::Model;
use sop_quantize::Quantizer;

use crate::ffi::Dut;
use crate::harness::Harness;
use crate::report::Mismatch;
use crate::run::{effective_threads, layer_stim, stream_layer, variant_for, work_queue, CosimOptions, EventCounts};
use crate::select::{select_configs, select_layers};
use crate::stimulus::{point_for, LayerStim, StimulusOptions};
use crate::summary::{SoakRound, SoakSummary};
use crate::CosimError;

/// The soak: quantizes the selected layers once per configuration, then runs `rounds`
/// rounds, each streaming every layer through every configuration on a fresh, reset model
/// with its own seed ([`StimulusOptions::soak`](crate::StimulusOptions::soak) of `opts.stimulus.seed` and the round):
/// idle gaps, early strobes, bubbles, a reset, table reloads, interleaves of another
/// (seeded) layer's tables and blocks, and pauses, checking every output word. Stops at
/// `opts.max_mismatches` (0: never). `opts.stimulus` other than its seed, `vcd` and
/// `junit` are not used; `progress` sees each finished round.
///
/// The round x configuration items run on `opts.threads` worker threads (round-major) and
/// are combined in that order, so the counts, mismatches and reports do not depend on the
/// thread count (the mismatch limit applies in that order, as in [`run`](crate::run())).
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
