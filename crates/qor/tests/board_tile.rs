//! The iCE40-HX8K dot-product tile example (`fpga/hx8k/sop_hx8k_tile.v`): lint-clean; a
//! Verilator simulation of the whole board top through its UART with a real MiniLM layer
//! segment quantized by the project's quantizer and the layer's real inputs on held-out
//! sentences, every result compared bit for bit with the golden model and the cycle count
//! with the stated one; the PLL's parameters give the stated clock and UART bit period;
//! and the bitstream (Yosys, nextpnr-ice40 at that clock without `--timing-allow-fail`,
//! icepack) with every memory in block RAM. A missing tool or a missing minilm fails the
//! test, naming what to install or fetch.

mod common;

use common::{leds, lint, reply_bytes, root, run_sim};
use sop_calib::{heldout_texts, Encoder, F32Linear, LinearExec, LinearRef};
use sop_cosim::gemv::tile_stim;
use sop_cosim::LayerStim;
use sop_formats::Ieee16;
use sop_hw::tile::ActFormat;
use sop_hw::tile_sim::{golden_gemv, tile_engine, GemvJob, TileGeom};
use sop_qor::board::{place_and_route, BOARD_MHZ};
use sop_qor::board_tile::{
    board_files, layer_frames, parse_reply, reply_len, run_cycles, vector_frames, TILE_BOARD_MHZ, TILE_CLKS_PER_BIT,
};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

/// The layer a segment of which the board runs: 1536 x 384, its input the attention
/// block's output (after LayerNorm).
const LAYER: &str = "encoder.layer.0.intermediate.dense.weight";
/// A HIF8 LUT point the tile's engine decodes (two 16-entry tables, selection bits).
const POINT: &str = "NF4+DD4sUE4M4b16";
/// Rows of the segment (8 x 384 = 3,072 weights of the board's 4,096).
const ROWS: usize = 8;
/// Activation vectors (tokens) run through the loaded segment.
const TOKENS: usize = 2;

#[test]
fn tile_board_is_lint_clean() {
    lint(&board_files(&root()));
}

/// The integer parameter `name` of the wrapper: its declaration `NAME = V`, or else its
/// first instance parameter `.NAME(W'dV)`.
fn param(v: &str, name: &str) -> u64 {
    let at = v
        .find(&format!("{name} = "))
        .map(|i| i + name.len() + 3)
        .or_else(|| v.find(&format!(".{name}(")).map(|i| i + name.len() + 2))
        .unwrap_or_else(|| panic!("no {name} in the wrapper"));
    let token: String = v[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '\'')
        .collect();
    let value = token.split_once("'d").map_or(token.as_str(), |(_, d)| d);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name} = {token}: not a decimal number"))
}

#[test]
fn tile_board_clock_is_the_stated_one() {
    let v = std::fs::read_to_string(root().join("fpga/hx8k/sop_hx8k_tile.v")).unwrap();
    let (divr, divf, divq) = (param(&v, "DIVR"), param(&v, "DIVF"), param(&v, "DIVQ"));
    // iCE40 PLL, simple feedback: f_out = f_in (DIVF + 1) / ((DIVR + 1) 2^DIVQ); the phase
    // detector 10..133 MHz, the VCO 533..1066 MHz (Lattice TN1251).
    let f_in = f64::from(BOARD_MHZ);
    let pfd = f_in / (divr + 1) as f64;
    let vco = pfd * (divf + 1) as f64;
    assert!(
        (10.0..=133.0).contains(&pfd) && (533.0..=1066.0).contains(&vco),
        "{pfd} {vco}"
    );
    assert_eq!(vco / (1u64 << divq) as f64, f64::from(TILE_BOARD_MHZ));
    assert_eq!(param(&v, "CLKS_PER_BIT"), u64::from(TILE_CLKS_PER_BIT));
    assert_eq!(
        u64::from(TILE_CLKS_PER_BIT),
        u64::from(TILE_BOARD_MHZ) * 1_000_000 / 115_200
    );
}

/// Records one linear layer's weights and first input vectors while the encoder runs in f32.
struct Recorder {
    w: Vec<f32>,
    shape: (usize, usize),
    x: Vec<Vec<f32>>,
}

impl LinearExec for Recorder {
    fn apply(&mut self, layer: &LinearRef<'_>, x: &[f32]) -> Vec<f32> {
        if layer.name == LAYER {
            self.w = layer.w.to_vec();
            self.shape = (layer.rows, layer.cols);
            self.x = x.chunks_exact(layer.cols).map(<[f32]>::to_vec).collect();
        }
        F32Linear.apply(layer, x)
    }
}

/// The job of the first [`ROWS`] rows of `stim` (`nblk` blocks per row) with activations `x`.
fn segment<'a>(stim: &'a LayerStim, nblk: usize, x: &'a [u16]) -> GemvJob<'a> {
    GemvJob {
        rows: ROWS,
        cols: stim.cols,
        block: stim.block,
        codes: &stim.codes[..ROWS * stim.cols],
        scales: &stim.scales[..ROWS * nblk],
        sel: &stim.sel[..ROWS * nblk],
        x,
    }
}

#[test]
fn tile_board_runs_a_real_layer_through_the_uart() {
    // The layer and its real inputs: MiniLM's forward pass on a held-out sentence.
    let path = sop_model::resolve("minilm").unwrap_or_else(|e| panic!("{e}"));
    let enc = Encoder::load(&path, 16).unwrap_or_else(|e| panic!("{e}"));
    let seqs = enc.encode(&heldout_texts()[..1]).unwrap();
    let mut rec = Recorder {
        w: Vec::new(),
        shape: (0, 0),
        x: Vec::new(),
    };
    enc.bert().embed_with(&seqs, &mut rec).unwrap();
    let (rows, cols) = rec.shape;
    assert_eq!((rows, cols), (1536, 384), "{LAYER}");
    assert!(rec.x.len() >= TOKENS, "{} tokens", rec.x.len());

    // The whole layer quantized by the project's quantizer, as the engine decodes it.
    let q = Quantizer::new(POINT.parse().unwrap(), QuantOptions::default()).unwrap();
    let ql = q
        .quantize(
            LayerRef {
                name: LAYER,
                rows,
                cols,
                data: &rec.w,
            },
            None,
        )
        .unwrap();
    let cfg = tile_engine();
    let geom = TileGeom::new(&cfg, ActFormat::Bf16);
    let stim = LayerStim::from_quantized(&ql, &cfg).unwrap();
    tile_stim(&stim, &geom).unwrap();
    assert!(stim.tables.mode.is_some() && stim.tables.entries[1].iter().any(|&w| w != 0));

    // Its first ROWS rows (whole rows: every block of the segment), TOKENS real vectors.
    let nblk = cols / stim.block;
    let xs: Vec<Vec<u16>> = rec.x[..TOKENS]
        .iter()
        .map(|x| x.iter().map(|&v| Ieee16::Bf16.encode(v) as u16).collect())
        .collect();
    assert!(
        segment(&stim, nblk, &xs[0]).sel.iter().any(|&s| s) && segment(&stim, nblk, &xs[0]).sel.iter().any(|&s| !s),
        "the segment uses both tables"
    );
    let mut segments = Vec::new();
    let mut want = Vec::new();
    for (t, x) in xs.iter().enumerate() {
        let j = segment(&stim, nblk, x);
        let mut bytes: Vec<u8> = Vec::new();
        if t == 0 {
            // The layer block once; each vector then runs on it.
            let frames = layer_frames(&stim.tables, &j).unwrap();
            bytes.extend(frames.iter().flat_map(|f| f.bytes()));
        }
        bytes.extend(vector_frames(&j).unwrap().iter().flat_map(|f| f.bytes()));
        segments.push((bytes, reply_len(ROWS)));
        want.push(golden_gemv(&cfg, &stim.tables, ActFormat::Bf16, &j));
    }

    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let out = run_sim(dir.path(), &board_files(&root()), &segments, 1 << 20);
    let bytes = reply_bytes(&out);
    assert_eq!(bytes.len(), TOKENS * reply_len(ROWS), "{out}");
    let mut nonzero = 0;
    for (t, chunk) in bytes.chunks(reply_len(ROWS)).enumerate() {
        let r = parse_reply(chunk, ROWS).unwrap();
        for (row, (&a, &e)) in r.y.iter().zip(&want[t]).enumerate() {
            assert_eq!(
                a,
                e,
                "token {t} row {row}: board {a:#010x} ({}), golden {e:#010x} ({})",
                f32::from_bits(a),
                f32::from_bits(e)
            );
            nonzero += usize::from(a & 0x7fff_ffff != 0);
        }
        assert_eq!(u64::from(r.cycles), run_cycles(ROWS, cols), "token {t}");
    }
    assert!(nonzero >= TOKENS * ROWS - 1, "real sums, not zeros: {want:08x?}");
    // led[7:1]: the last result's top bits; led[0] off once the run is over.
    let last = *want.last().unwrap().last().unwrap();
    assert_eq!(leds(&out), ((last >> 25) << 1) as u8);
    eprintln!(
        "{ROWS} x {cols} of {LAYER} ({POINT}), {TOKENS} tokens: {} cycles per run at {TILE_BOARD_MHZ} MHz, simulated in {:.1} s",
        run_cycles(ROWS, cols),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn tile_board_bitstream_builds() {
    let dir = tempfile::tempdir().unwrap();
    let r = place_and_route(&board_files(&root()), dir.path()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{r:?}");
    assert!(r.fmax_mhz >= f64::from(TILE_BOARD_MHZ), "{r:?}");
    assert_eq!(r.ios, 11, "{r:?}");
    // The five memories (55 kbit) are in block RAM: at least one SB_RAM40_4K each, and the
    // flip-flops are the tile row's and the sequencer's (a memory left in flip-flops would
    // add thousands).
    assert!(r.brams >= 5 && r.brams <= 32, "{r:?}");
    assert!(r.ffs < 3000, "{r:?}");
    assert!(r.lcs <= 7680 && r.lut4 > 1000, "{r:?}");
    let bin = std::fs::metadata(&r.bitstream).expect("bitstream written");
    assert!(bin.len() > 100_000, "HX8K bitstream is ~130 kB, got {}", bin.len());
}
