//! The Verilated dot-product tile against the golden model (docs/spec.md 6.2): random
//! tables in every engine mode, random block scales and codes, BF16 activations spread over
//! the whole exponent range (zeros, subnormals, Inf/NaN blocks), several block sizes; and
//! the same stimulus through rust-hdl's simulation of the tile, cycle for cycle. The same for
//! the conventional baseline tile (docs/spec.md 6.3) with random FP16 tables.

use sop_cosim::TileDut;
use sop_hw::mode::all_modes;
use sop_hw::tile::{ActFormat, ROW_NAN};
use sop_hw::tile_sim::{
    golden_blocks, golden_for, load_tables, reset, run_gemv, tile_engine, ConvTileSim, GemvJob, GemvOut, TileGeom,
    TileKind, TilePorts, TileSim,
};
use sop_hw::Tables;

use sop_hw::rng::XorShift as Rng;

struct Case {
    tables: Tables,
    rows: usize,
    cols: usize,
    block: usize,
    codes: Vec<u8>,
    scales: Vec<u8>,
    sel: Vec<bool>,
    x: Vec<u16>,
}

impl Case {
    fn job(&self) -> GemvJob<'_> {
        GemvJob {
            rows: self.rows,
            cols: self.cols,
            block: self.block,
            codes: &self.codes,
            scales: &self.scales,
            sel: &self.sel,
            x: &self.x,
        }
    }
}

fn case(rng: &mut Rng, k: usize) -> Case {
    let cfg = tile_engine();
    let modes = all_modes();
    let h = cfg.lut.hif().unwrap();
    let mut t = Tables::zeroed(&cfg);
    for tb in 0..2 {
        for e in t.entries[tb].iter_mut() {
            *e = rng.below(1 << h.bits()) as u32;
        }
        t.bias[tb] = rng.below(200) as i32 - 100;
    }
    t.mode = Some(modes[k % modes.len()]);
    let block = [8usize, 16, 32, 64][k % 4];
    let cols = block * (1 + rng.below(4) as usize);
    let rows = 1 + rng.below(9) as usize;
    let nb = rows * cols / block;
    let mut x = Vec::with_capacity(cols);
    for b in 0..cols / block {
        // One exponent level per block, a spread around it; every fourth case has a block
        // with an Inf or NaN.
        let level = rng.below(256);
        let spread = [2u64, 8, 30][b % 3];
        for _ in 0..block {
            let w = if rng.below(6) == 0 {
                (rng.below(2) << 15) as u16
            } else {
                let e = (level + rng.below(spread)).saturating_sub(spread / 2).min(254);
                ((rng.below(2) << 15) | (e << 7) | rng.below(128)) as u16
            };
            x.push(w);
        }
        if k % 4 == 3 && b == 0 {
            let i = rng.below(block as u64) as usize;
            x[i] = [0x7f80u16, 0xff80, 0x7fc0, 0xffa1][k / 4 % 4];
        }
    }
    Case {
        tables: t,
        rows,
        cols,
        block,
        codes: (0..rows * cols).map(|_| rng.below(64) as u8).collect(),
        scales: (0..nb).map(|_| rng.below(256) as u8).collect(),
        sel: (0..nb).map(|_| rng.below(2) == 1).collect(),
        x,
    }
}

/// A random job for a tile of `kind` ([`case`], [`conv_case`]).
fn case_for(kind: TileKind, rng: &mut Rng, k: usize) -> Case {
    match kind {
        TileKind::Hif => case(rng, k),
        TileKind::Conventional => conv_case(rng, k),
    }
}

/// The tile of `kind` (BF16 activations) as `variant`, reset.
fn dut(kind: TileKind, variant: sop_cosim::Variant) -> TileDut {
    let mut d = TileDut::with_variant(&kind.name(ActFormat::Bf16), variant).unwrap();
    reset(&mut d);
    d
}

/// Runs `n` random jobs of `kind` from `seed` on `dut`; returns per job the tile's results
/// and pre-pass answers, and the golden model's.
fn jobs(dut: &mut TileDut, kind: TileKind, seed: u64, n: usize) -> Vec<(Case, GemvOut, Vec<u32>)> {
    let cfg = kind.engine();
    let g = TileGeom::new(&tile_engine(), ActFormat::Bf16);
    let mut rng = Rng(seed);
    (0..n)
        .map(|k| {
            let c = case_for(kind, &mut rng, k);
            load_tables(dut, &cfg, &c.tables).unwrap();
            let got = run_gemv(dut, &g, &c.job()).unwrap();
            let want = golden_for(kind, &c.tables, ActFormat::Bf16, &c.job());
            (c, got, want)
        })
        .collect()
}

/// Every output of `n` random jobs of `kind` equals the golden model's, every pre-pass
/// answer the golden pre-pass; the stimulus reaches real sums and the NaN rule.
fn matches_the_golden_model(kind: TileKind, seed: u64, n: usize) {
    let mut d = dut(kind, sop_cosim::Variant::Plain);
    let (mut outputs, mut nonzero, mut nans) = (0usize, 0usize, 0usize);
    for (k, (c, got, want)) in jobs(&mut d, kind, seed, n).into_iter().enumerate() {
        assert_eq!(
            got.blocks,
            golden_blocks(ActFormat::Bf16, &c.x, c.block),
            "{kind:?} case {k}: pre-pass"
        );
        for (r, (a, b)) in got.y.iter().zip(&want).enumerate() {
            assert_eq!(
                a,
                b,
                "{kind:?} case {k} ({:?}, block {}, {} columns) row {r}: tile {a:#010x} ({}), golden {b:#010x} ({})",
                c.tables.mode,
                c.block,
                c.cols,
                f32::from_bits(*a),
                f32::from_bits(*b)
            );
            outputs += 1;
            nonzero += usize::from(a & 0x7fff_ffff != 0);
            nans += usize::from(*a == ROW_NAN);
        }
    }
    assert!(
        outputs > 2 * n && nonzero > outputs / 2 && nans > 10,
        "{kind:?}: {outputs} outputs, {nonzero} non-zero, {nans} NaN"
    );
}

/// The mutant of `kind` differs from the golden model on some output of the same jobs.
fn mutant_is_caught(kind: TileKind, seed: u64, n: usize) {
    let mut d = dut(kind, sop_cosim::Variant::Mutant);
    let differ: usize = jobs(&mut d, kind, seed, n)
        .iter()
        .map(|(_, got, want)| got.y.iter().zip(want).filter(|(a, b)| a != b).count())
        .sum();
    assert!(
        differ > 0,
        "the mutant {kind:?} tile agreed with the golden model on every output"
    );
}

/// rust-hdl's simulation `sim` of `kind` and the Verilated tile return the same results and
/// pre-pass answers on the same jobs, cycle for cycle.
fn same_cycles(kind: TileKind, sim: &mut dyn TilePorts, seed: u64, n: usize) {
    let cfg = kind.engine();
    let g = TileGeom::new(&tile_engine(), ActFormat::Bf16);
    let mut d = dut(kind, sop_cosim::Variant::Plain);
    reset(sim);
    let mut rng = Rng(seed);
    for k in 0..n {
        let c = case_for(kind, &mut rng, k);
        load_tables(&mut d, &cfg, &c.tables).unwrap();
        load_tables(sim, &cfg, &c.tables).unwrap();
        let a = run_gemv(&mut d, &g, &c.job()).unwrap();
        let b = run_gemv(sim, &g, &c.job()).unwrap();
        assert_eq!(a, b, "{kind:?} case {k}");
    }
}

#[test]
fn verilated_tile_matches_the_golden_model() {
    matches_the_golden_model(TileKind::Hif, 0x5eed_7117, 400);
}

#[test]
fn rust_hdl_and_verilator_run_the_same_cycles() {
    let mut sim = TileSim::new(ActFormat::Bf16, sop_hw::emit::TILE_ROWS);
    same_cycles(TileKind::Hif, sim.ports(), 0xc0ff_ee11, 8);
}

/// The mutant tile (bit 3 of the block-scale significand ignored) must be caught by the same
/// random jobs.
#[test]
fn the_mutant_tile_is_caught() {
    let (from, to) = sop_cosim::ffi::TILE_MUTATION;
    assert_ne!(from, to);
    mutant_is_caught(TileKind::Hif, 0x5eed_7117, 40);
}

#[test]
fn verilated_conventional_tile_matches_the_golden_model() {
    matches_the_golden_model(TileKind::Conventional, 0x5eed_c0e1, 200);
}

#[test]
fn conventional_tile_rust_hdl_and_verilator_run_the_same_cycles() {
    let mut sim = ConvTileSim::new(ActFormat::Bf16, sop_hw::emit::TILE_ROWS);
    same_cycles(TileKind::Conventional, sim.ports(), 0xc0ff_ee12, 6);
}

/// The mutant conventional tile (bank 3 dropped from the drain) is caught by the same jobs.
#[test]
fn the_mutant_conventional_tile_is_caught() {
    let (from, to) = sop_cosim::ffi::CONV_TILE_MUTATION;
    assert_ne!(from, to);
    mutant_is_caught(TileKind::Conventional, 0x5eed_c0e1, 20);
}

/// `sop gemv --vcd`'s replay: the traced tile writes a waveform of a whole job (the table
/// load, the pre-pass and the rows) with the tile's ports in it; the untraced build refuses.
#[test]
fn a_job_replays_into_a_vcd() {
    let mut rng = Rng(0x7cd0_0001);
    let c = case(&mut rng, 1);
    let nb = c.rows * c.cols / c.block;
    let stim = sop_cosim::LayerStim {
        name: "random".into(),
        rows: c.rows,
        cols: c.cols,
        block: c.block,
        codes: c.codes.clone(),
        sel: c.sel.clone(),
        scales: c.scales.clone(),
        tables: c.tables.clone(),
        blocks: nb,
        corr: Vec::new(),
    };
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tile-vcd");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("job.vcd");
    sop_cosim::gemv::write_vcd(&stim, &c.x, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("$enddefinitions"), "not a VCD");
    for port in ["xm_emax", "block_start", "acc_0", "out_valid"] {
        assert!(text.contains(port), "{port} missing from the VCD");
    }
    // Time stamps cover the job: table load (2 x 65 + 1 cycles), pre-pass, rows.
    let last: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|t| t.parse().ok())
        .max()
        .unwrap();
    assert!(last >= 10 * (131 + c.cols as u64), "last time stamp {last}");
    let mut plain = TileDut::new("sop_tile_hif8_bf16", false).unwrap();
    let e = plain.open_vcd(&dir.join("no.vcd")).unwrap_err().to_string();
    assert!(e.contains("no tracing"), "{e}");
}

/// A job for the conventional tile: the HIF case's activations, codes and scales, random FP16
/// tables (exponents over the whole range, Inf/NaN words in some cases), rows of at least
/// `CONV_MIN_COLS` columns.
fn conv_case(rng: &mut Rng, k: usize) -> Case {
    let mut c = case(rng, k);
    let cfg = TileKind::Conventional.engine();
    let mut t = Tables::zeroed(&cfg);
    for tb in 0..2 {
        for e in t.entries[tb].iter_mut() {
            let ex = if k % 5 == 4 && rng.below(32) == 0 {
                31
            } else {
                rng.below(31)
            };
            *e = (rng.below(2) << 15 | ex << 10 | rng.below(1024)) as u32;
        }
    }
    t.mode = c.tables.mode;
    c.tables = t;
    // Repeat the columns until the row is long enough (whole blocks).
    let min = sop_hw::tile_sim::CONV_MIN_COLS as usize;
    if c.cols < min {
        let reps = min.div_ceil(c.cols);
        let cols = c.cols * reps;
        let rep = |v: &[u8], w: usize| -> Vec<u8> {
            v.chunks(w)
                .flat_map(|r| r.iter().copied().cycle().take(w * reps))
                .collect()
        };
        let nbr = c.cols / c.block;
        c.codes = rep(&c.codes, c.cols);
        c.scales = rep(&c.scales, nbr);
        c.sel = c
            .sel
            .chunks(nbr)
            .flat_map(|r| r.iter().copied().cycle().take(nbr * reps))
            .collect();
        c.x = c.x.iter().copied().cycle().take(cols).collect();
        c.cols = cols;
    }
    c
}

/// A job shorter than the conventional tile's drain is refused with a clear error.
#[test]
fn the_conventional_tile_refuses_short_rows() {
    let kind = TileKind::Conventional;
    let mut dut = TileDut::new(&kind.name(ActFormat::Bf16), false).unwrap();
    let g = TileGeom::new(&tile_engine(), ActFormat::Bf16);
    reset(&mut dut);
    let x = [0x3f80u16; 16];
    let job = GemvJob {
        rows: 1,
        cols: 16,
        block: 8,
        codes: &[0; 16],
        scales: &[0; 2],
        sel: &[false; 2],
        x: &x,
    };
    let e = run_gemv(&mut dut, &g, &job).unwrap_err().to_string();
    assert!(e.contains("16 columns") && e.contains("17 columns or more"), "{e}");
}
