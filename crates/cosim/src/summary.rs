//! What a co-simulation reports: per item ([`LayerReport`]), progress events, the run's
//! summary ([`CosimSummary`]: the mismatch reports and the `cosim: ...` line), per menu
//! option counts, the waveform note, and the soak's rounds and summary.

use std::fmt;
use std::path::PathBuf;

use sop_hw::LaneConfig;

use crate::report::Mismatch;
use crate::run::EventCounts;
use crate::shard::Shard;

/// Coverage holes printed by [`CosimSummary`]'s `Display` (the JSON report lists all).
pub const MAX_HOLES_SHOWN: usize = 200;

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
    /// the layer ([`reload_tables`](crate::reload_tables)): the check that words in flight keep their tables.
    pub reload_checked: u64,
}

/// A progress event of [`run`](crate::run()).
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

/// The outcome of [`run`](crate::run()).
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
    /// Per menu option, in first-streamed order ([`run_quantized`](crate::run_quantized) only; empty otherwise).
    pub options: Vec<OptionCount>,
    /// The configurations of the whole (unsharded) run, in run order.
    pub plan_configs: Vec<String>,
    /// The layers of the whole (unsharded) run, in run order.
    pub plan_layers: Vec<String>,
    /// The shard this summary covers.
    pub shard: Shard,
    /// Worker threads the items ran on (0 or 1: one).
    pub threads: usize,
    /// The functional coverage report (`--coverage`).
    pub coverage: Option<crate::coverage::Report>,
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
    /// ([`OptionCount::line`]), the coverage holes (at most [`MAX_HOLES_SHOWN`]) and line
    /// ([`crate::coverage::Report::line`]), then [`CosimSummary::line`].
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
        if let Some(c) = &self.coverage {
            let holes = c.holes();
            for h in holes.iter().take(MAX_HOLES_SHOWN) {
                writeln!(f, "coverage hole: {h}")?;
            }
            if holes.len() > MAX_HOLES_SHOWN {
                writeln!(
                    f,
                    "({} more coverage holes in the JSON report)",
                    holes.len() - MAX_HOLES_SHOWN
                )?;
            }
            writeln!(f, "{}", c.line())?;
        }
        write!(f, "{}", self.line())
    }
}

/// What one menu option of a quantized model contributed to a [`run_quantized`](crate::run_quantized) run.
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

/// One finished round of [`soak`](crate::soak()).
#[derive(Clone, Debug)]
pub struct SoakRound {
    /// Round number, from 0.
    pub round: u64,
    /// The round's stimulus seed ([`StimulusOptions::soak`](crate::StimulusOptions::soak)).
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

/// The outcome of [`soak`](crate::soak()).
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
}
