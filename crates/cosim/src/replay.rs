//! The waveform around the first mismatch: its item replayed on the traced model.

use std::path::Path;

use sop_hw::LaneConfig;

use crate::ffi::{Dut, Variant};
use crate::harness::Harness;
use crate::report::Mismatch;
use crate::run::{item_body, CosimOptions};
use crate::stimulus::{LayerStim, LayerStream};
use crate::summary::VcdReport;
use crate::CosimError;

/// The first mismatch's layer, kept for the VCD replay.
pub(crate) struct FirstMismatch {
    pub(crate) cfg: LaneConfig,
    pub(crate) variant: Variant,
    pub(crate) stim: LayerStim,
    pub(crate) other: Option<LayerStim>,
    pub(crate) index: u64,
    pub(crate) load_start: u64,
    pub(crate) mismatch: Mismatch,
}

/// Replays the item of the first mismatch on the traced model ([`item_body`] after a
/// reset, as the item ran), dumping the cycles from the last reset or table load before the mismatch (at
/// most `opts.vcd_before` cycles before it) to `latency + 4` cycles after it.
pub(crate) fn replay_vcd(fm: &FirstMismatch, opts: &CosimOptions, path: &Path) -> Result<VcdReport, CosimError> {
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
