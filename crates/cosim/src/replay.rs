//! The waveform around the first mismatch: its item replayed on the traced model.

use std::path::Path;

use sop_atomic_write::ExternalFile;
use sop_hw::LaneConfig;

use crate::ffi::{Dut, Variant};
use crate::harness::Harness;
use crate::report::Mismatch;
use crate::run::{item_body, CosimOptions};
use crate::stimulus::{LayerStim, LayerStream};
use crate::summary::VcdReport;
use crate::CosimError;

/// Opens `dut`'s VCD for `path` (a traced variant): Verilator's tracer opens the file by
/// name, so it writes a reserved temporary name, renamed by [`commit_vcd`] after the close:
/// `path` appears whole or not at all. Dropping the returned file removes the temporary.
pub(crate) fn open_vcd(dut: &mut Dut, path: &Path) -> Result<ExternalFile, CosimError> {
    let out = ExternalFile::reserve(path).map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })?;
    dut.vcd_open(out.temp_path())?;
    Ok(out)
}

/// Gives the closed VCD of [`open_vcd`] its name `path`.
pub(crate) fn commit_vcd(out: ExternalFile, path: &Path) -> Result<(), CosimError> {
    out.commit().map(|_| ()).map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })
}

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
    // On an early return the harness (declared later) drops first and closes the tracer, then
    // `out` removes the temporary.
    let out = open_vcd(&mut dut, path)?;
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
    commit_vcd(out, path)?;
    Ok(VcdReport {
        path: path.to_path_buf(),
        config: cfg.name.clone(),
        layer: fm.stim.name.clone(),
        cycles: (from, to),
        reproduced,
    })
}
