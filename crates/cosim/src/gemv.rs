//! Matrix-vector products of real quantized layers with real activations through the
//! Verilated dot-product tile, every output checked against the golden model
//! (docs/spec.md 6.2): the engine of `sop gemv` (`crates/cli`), which supplies the
//! activations (the MiniLM forward pass) and prints the summary.

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sop_hw::tile::ActFormat;
use sop_hw::tile_sim::{golden_gemv, load_tables, reset, run_gemv, tile_engine, GemvJob, TileGeom};
use sop_hw::LaneConfig;

use crate::junit::esc;
use crate::stimulus::LayerStim;
use crate::tile::TileDut;
use crate::CosimError;

/// The committed tile `sop gemv` runs (BF16 activations).
pub const GEMV_TILE: &str = "sop_tile_hif8_bf16";

/// One output that differs from the golden model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GemvMismatch {
    /// Layer.
    pub layer: String,
    /// Token (activation vector) index within the layer's inputs.
    pub token: usize,
    /// Output row.
    pub row: usize,
    /// Golden result bits (binary32, before the tensor scale).
    pub expected: u32,
    /// Tile result bits.
    pub actual: u32,
    /// The tile's clock cycle at which the job of this token started.
    pub cycle: u64,
}

impl fmt::Display for GemvMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MISMATCH layer {} token {} row {} (job from cycle {}): expected {:#010x} ({:e}), tile {:#010x} ({:e})",
            self.layer,
            self.token,
            self.row,
            self.cycle,
            self.expected,
            f32::from_bits(self.expected),
            self.actual,
            f32::from_bits(self.actual)
        )
    }
}

/// What one layer's run checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GemvLayerReport {
    /// Layer.
    pub layer: String,
    /// Operating point of its codes.
    pub point: String,
    /// `(rows, cols)`.
    pub shape: (usize, usize),
    /// Activation vectors.
    pub tokens: usize,
    /// Dot products checked (`rows x tokens`).
    pub dot_products: u64,
    /// Multiply-accumulates (`rows x cols x tokens`).
    pub macs: u64,
    /// Outputs that differ.
    pub mismatches: u64,
    /// The first few mismatches.
    pub first: Vec<GemvMismatch>,
    /// Tile clock cycles (pre-passes included).
    pub cycles: u64,
    /// Seconds in the Verilated model.
    pub sim_secs: f64,
}

/// A whole run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GemvSummary {
    /// Per layer, in run order.
    pub layers: Vec<GemvLayerReport>,
    /// Wall seconds of the run (golden model included).
    pub wall_secs: f64,
}

impl GemvSummary {
    /// Total mismatches.
    pub fn mismatches(&self) -> u64 {
        self.layers.iter().map(|l| l.mismatches).sum()
    }

    /// Millions of multiply-accumulates per second of Verilated simulation.
    pub fn mmacs_per_sec(&self) -> f64 {
        let macs: u64 = self.layers.iter().map(|l| l.macs).sum();
        let secs: f64 = self.layers.iter().map(|l| l.sim_secs).sum();
        if secs > 0.0 {
            macs as f64 / secs / 1e6
        } else {
            0.0
        }
    }

    /// The summary line: `gemv: <L> layers, <T> tokens, <D> dot products, <K> mismatches,
    /// <R> M MAC/s` (`T`: activation vectors per layer, the largest over the layers).
    pub fn line(&self) -> String {
        let tokens = self.layers.iter().map(|l| l.tokens).max().unwrap_or(0);
        let d: u64 = self.layers.iter().map(|l| l.dot_products).sum();
        format!(
            "gemv: {} layers, {tokens} tokens, {d} dot products, {} mismatches, {:.2} M MAC/s",
            self.layers.len(),
            self.mismatches(),
            self.mmacs_per_sec()
        )
    }
}

/// A layer the tile can take: engine stimulus without sparse corrections, whole blocks.
pub fn tile_stim(stim: &LayerStim, g: &TileGeom) -> Result<(), CosimError> {
    let bad = |reason: String| CosimError::Layer {
        layer: stim.name.clone(),
        config: GEMV_TILE.into(),
        reason,
    };
    if !stim.corr.is_empty() {
        return Err(bad(format!(
            "{} sparse corrections (outliers/residuals): the tile has no sparse correction unit; quantize without them",
            stim.corr.len()
        )));
    }
    if stim.cols % stim.block != 0 {
        return Err(bad(format!(
            "{} columns are not whole blocks of {} (the tile takes whole blocks)",
            stim.cols, stim.block
        )));
    }
    if stim.block < sop_hw::tile_sim::TILE_MIN_BLOCK as usize || stim.block > g.max_block as usize {
        return Err(bad(format!(
            "blocks of {} weights: the tile takes {} ..= {}",
            stim.block,
            sop_hw::tile_sim::TILE_MIN_BLOCK,
            g.max_block
        )));
    }
    Ok(())
}

/// A Verilated tile ready for jobs: reset once, tables loaded per layer.
pub struct GemvTile {
    dut: TileDut,
    cfg: LaneConfig,
    geom: TileGeom,
}

impl GemvTile {
    /// The committed BF16 tile ([`GEMV_TILE`]), reset.
    pub fn new(traced: bool) -> Result<GemvTile, CosimError> {
        let mut dut = TileDut::new(GEMV_TILE, traced)?;
        reset(&mut dut);
        let cfg = tile_engine();
        let geom = TileGeom::new(&cfg, ActFormat::Bf16);
        Ok(GemvTile { dut, cfg, geom })
    }

    /// The tile's geometry.
    pub fn geom(&self) -> &TileGeom {
        &self.geom
    }

    /// The engine configuration the tile decodes like.
    pub fn config(&self) -> &LaneConfig {
        &self.cfg
    }

    /// The Verilated model (for waveforms).
    pub fn dut_mut(&mut self) -> &mut TileDut {
        &mut self.dut
    }

    /// Loads a layer's tables and mode.
    pub fn load(&mut self, stim: &LayerStim) -> Result<(), CosimError> {
        tile_stim(stim, &self.geom)?;
        load_tables(&mut self.dut, &self.cfg, &stim.tables)?;
        Ok(())
    }

    /// One activation vector (BF16 words) through a loaded layer: the tile's results (binary32
    /// bits, before the tensor scale) and the cycles it took.
    pub fn apply(&mut self, stim: &LayerStim, x: &[u16]) -> Result<(Vec<u32>, u64), CosimError> {
        let job = job(stim, x);
        let out = run_gemv(&mut self.dut, &self.geom, &job)?;
        Ok((out.y, out.cycles))
    }

    /// A layer's products for every activation vector in `xs`, each output checked against
    /// the golden model (computed in parallel). Keeps the first `keep` mismatches.
    pub fn check_layer(
        &mut self,
        stim: &LayerStim,
        point: &str,
        xs: &[Vec<u16>],
        keep: usize,
    ) -> Result<GemvLayerReport, CosimError> {
        self.load(stim)?;
        let mut rep = GemvLayerReport {
            layer: stim.name.clone(),
            point: point.to_string(),
            shape: (stim.rows, stim.cols),
            tokens: xs.len(),
            ..GemvLayerReport::default()
        };
        let cfg = self.cfg.clone();
        let want: Vec<Vec<u32>> = xs
            .par_iter()
            .map(|x| golden_gemv(&cfg, &stim.tables, ActFormat::Bf16, &job(stim, x)))
            .collect();
        for (t, x) in xs.iter().enumerate() {
            let start = self.dut.cycle();
            let t0 = Instant::now();
            let (y, cycles) = self.apply(stim, x)?;
            rep.sim_secs += t0.elapsed().as_secs_f64();
            rep.cycles += cycles;
            for (r, (&a, &e)) in y.iter().zip(&want[t]).enumerate() {
                if a != e {
                    rep.mismatches += 1;
                    if rep.first.len() < keep {
                        rep.first.push(GemvMismatch {
                            layer: stim.name.clone(),
                            token: t,
                            row: r,
                            expected: e,
                            actual: a,
                            cycle: start,
                        });
                    }
                }
            }
        }
        rep.dot_products = (stim.rows * xs.len()) as u64;
        rep.macs = (stim.rows * stim.cols * xs.len()) as u64;
        Ok(rep)
    }
}

fn job<'a>(stim: &'a LayerStim, x: &'a [u16]) -> GemvJob<'a> {
    GemvJob {
        rows: stim.rows,
        cols: stim.cols,
        block: stim.block,
        codes: &stim.codes,
        scales: &stim.scales,
        sel: &stim.sel,
        x,
    }
}

/// Replays one layer's job for token `token` on the traced tile and writes its waveform to
/// `path` (every cycle of the job, table load included).
pub fn write_vcd(stim: &LayerStim, x: &[u16], path: &Path) -> Result<PathBuf, CosimError> {
    let mut t = GemvTile::new(true)?;
    t.dut_mut().open_vcd(path)?;
    t.load(stim)?;
    t.apply(stim, x)?;
    t.dut_mut().close_vcd();
    Ok(path.to_path_buf())
}

/// JUnit XML of a run: one `<testcase classname="sop-gemv.<tile>" name="<layer>">` per layer,
/// `<failure>` with the first mismatch for a layer with mismatches.
pub fn junit_xml(s: &GemvSummary) -> String {
    let failures = s.layers.iter().filter(|l| l.mismatches > 0).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"sop-gemv\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        s.layers.len(),
        s.wall_secs
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{GEMV_TILE}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        s.layers.len(),
        s.layers.iter().map(|l| l.sim_secs).sum::<f64>()
    );
    for l in &s.layers {
        let _ = writeln!(
            x,
            "    <testcase classname=\"sop-gemv.{GEMV_TILE}\" name=\"{}\" time=\"{:.3}\">",
            esc(&l.layer),
            l.sim_secs
        );
        if let Some(m) = l.first.first() {
            let _ = writeln!(
                x,
                "      <failure type=\"mismatch\" message=\"{} mismatches against the golden model\">{}</failure>",
                l.mismatches,
                esc(&m.to_string())
            );
        }
        let _ = writeln!(
            x,
            "      <system-out>point {}, shape {}x{}, {} tokens, {} dot products, {} mismatches</system-out>",
            esc(&l.point),
            l.shape.0,
            l.shape.1,
            l.tokens,
            l.dot_products,
            l.mismatches
        );
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes [`junit_xml`] to `path`, whole or not at all.
pub fn write_junit(s: &GemvSummary, path: &Path) -> Result<(), CosimError> {
    sop_atomic_write::write(path, junit_xml(s).as_bytes()).map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })
}
