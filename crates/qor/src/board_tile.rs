//! The iCE40-HX8K dot-product tile example (`fpga/hx8k/sop_hx8k_tile.v`, top
//! [`TILE_BOARD_TOP`]): one layer block held in the FPGA's block RAM and streamed through
//! row 0 of the committed tile [`TILE_BOARD_CORE`] at [`TILE_BOARD_MHZ`] MHz from the
//! FPGA's PLL. This module is the
//! host side: the frames that load a layer block and an activation vector and start a run
//! ([`layer_frames`], [`vector_frames`]), the reply ([`parse_reply`]) and the run's cycle
//! count ([`run_cycles`]). The synthesis and place-and-route check is
//! [`crate::board::place_and_route`] on [`board_files`].
//!
//! The wire protocol is documented in the wrapper's header and in `docs/qor.md`.

use std::path::Path;

use sop_hw::tile::ActFormat;
use sop_hw::tile_sim::{tile_engine, GemvJob, TileGeom, TILE_LATENCY, TILE_MIN_BLOCK};
use sop_hw::{HwError, Tables};

use crate::board::BoardFiles;

/// Top module of the tile board wrapper.
pub const TILE_BOARD_TOP: &str = "sop_hx8k_tile";
/// The committed tile the wrapper instantiates (row 0 used; rows 1..3 tied off).
pub const TILE_BOARD_CORE: &str = "sop_tile_hif8_bf16";
/// The design clock (MHz): the PLL's output, 12 MHz x 3/2 (parameters in the wrapper).
pub const TILE_BOARD_MHZ: u32 = 18;
/// UART bit period in design clock cycles (18 MHz / 115200 baud = 156.25, rounded down).
pub const TILE_CLKS_PER_BIT: u32 = 156;
/// Weight codes the board holds (code memory words; a job's `rows x cols`).
pub const CODE_WORDS: usize = 4096;
/// Activation words the board holds (a job's `cols`).
pub const ACT_WORDS: usize = 1024;
/// Row blocks the board holds (`(scale, sel)` words; a job's `rows x cols / block`, which
/// the code memory bounds: blocks have at least `TILE_MIN_BLOCK` weights).
pub const BLOCK_WORDS: usize = 512;
const _: () = assert!(CODE_WORDS / TILE_MIN_BLOCK as usize <= BLOCK_WORDS);
/// Rows (results) of one run.
pub const MAX_ROWS: usize = 256;
/// Width of a frame's address field (bits).
pub const ADDR_BITS: u32 = 12;
/// Cycles of a run besides the pre-pass (`cols`) and the stream (`rows x cols`): the
/// memories' registered reads and the tile's input registers (2, before the pre-pass and
/// again before the stream), the pre-pass's answer of the last block and its store (2), the
/// hand-over to the stream (1) and the tile's latency ([`TILE_LATENCY`]), the last result's
/// cycle included.
pub const RUN_OVERHEAD: u64 = 2 + 2 + 2 + TILE_LATENCY as u64;

/// Errors of the host-side framing: a job the board cannot hold, a value that does not fit
/// its field, or a reply of the wrong length.
#[derive(Debug, thiserror::Error)]
pub enum BoardTileError {
    /// A job dimension exceeds what the board's memories hold.
    #[error("{what} = {value} does not fit the board: at most {max}")]
    Capacity {
        /// Which dimension (`rows`, `cols`, `rows x cols`, ...).
        what: &'static str,
        /// Its value.
        value: usize,
        /// The board's limit.
        max: usize,
    },
    /// One value of a job is out of its field's range.
    #[error("{what} {index} = {value} is out of range 0..={max}")]
    Value {
        /// Which array (`code`, `frame address`).
        what: &'static str,
        /// Index in that array.
        index: usize,
        /// The value.
        value: u64,
        /// Largest value the field takes.
        max: u64,
    },
    /// The tables or the job do not suit the tile (limits of `sop_hw`).
    #[error(transparent)]
    Hw(#[from] HwError),
    /// A frame's op field names no command.
    #[error("frame op {0} is not a command (1..=7)")]
    Op(u8),
    /// The reply has the wrong number of bytes.
    #[error("reply of {got} bytes for a run of {rows} rows: expected {want} (4 per row and 4 for the cycle count)")]
    Reply {
        /// Bytes received.
        got: usize,
        /// Rows of the run.
        rows: usize,
        /// Bytes expected.
        want: usize,
    },
}

/// The command of a host frame (field `v[3:0]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Code memory word `addr` <- `data[5:0]`.
    Code = 1,
    /// Activation memory word `addr` <- `data` (BF16).
    Act = 2,
    /// Block memory word `addr` <- `(sel data[8], scale data[7:0])`.
    Block = 3,
    /// Tile load port: entry `addr[5:0]` of table `aux[0]` <- `data[7:0]`.
    Table = 4,
    /// Tile bias register of table `aux[0]` <- `data[7:0]`.
    Bias = 5,
    /// Tile mode register <- `data[7:0]`.
    Mode = 6,
    /// Run: `rows = addr`, `cols = data`, `block = aux`.
    Run = 7,
}

impl Op {
    /// Every command.
    pub const ALL: [Op; 7] = [Op::Code, Op::Act, Op::Block, Op::Table, Op::Bias, Op::Mode, Op::Run];
}

/// One host-to-board frame: 40 bits, `v[3:0]` op, `v[15:4]` addr, `v[31:16]` data,
/// `v[39:32]` aux. The address is below `2^ADDR_BITS` (checked by [`TileFrame::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileFrame {
    op: Op,
    addr: u16,
    data: u16,
    aux: u8,
}

impl TileFrame {
    /// A frame; `Err` when `addr` does not fit its 12 bits.
    pub fn new(op: Op, addr: usize, data: u16, aux: u8) -> Result<TileFrame, BoardTileError> {
        let max = (1usize << ADDR_BITS) - 1;
        if addr > max {
            return Err(BoardTileError::Value {
                what: "frame address",
                index: 0,
                value: addr as u64,
                max: max as u64,
            });
        }
        Ok(TileFrame {
            op,
            addr: addr as u16,
            data,
            aux,
        })
    }

    /// The command.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The address field (12 bits).
    pub fn addr(&self) -> u16 {
        self.addr
    }

    /// The data field.
    pub fn data(&self) -> u16 {
        self.data
    }

    /// The aux field.
    pub fn aux(&self) -> u8 {
        self.aux
    }

    /// The 40-bit vector.
    pub fn vector(&self) -> u64 {
        self.op as u64 | u64::from(self.addr) << 4 | u64::from(self.data) << 16 | u64::from(self.aux) << 32
    }

    /// The five bytes sent over the UART, least significant first.
    pub fn bytes(&self) -> [u8; 5] {
        let v = self.vector();
        std::array::from_fn(|i| (v >> (8 * i)) as u8)
    }

    /// The frame of five received bytes (the board's decoding); `Err` for an op that is
    /// no command (the board ignores such frames).
    pub fn from_bytes(b: [u8; 5]) -> Result<TileFrame, BoardTileError> {
        let v = b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x));
        let op = (v & 0xf) as u8;
        let op = *Op::ALL.iter().find(|o| **o as u8 == op).ok_or(BoardTileError::Op(op))?;
        Ok(TileFrame {
            op,
            addr: (v >> 4 & 0xfff) as u16,
            data: (v >> 16) as u16,
            aux: (v >> 32) as u8,
        })
    }
}

/// The files of the tile example under the repository root `root`.
pub fn board_files(root: &Path) -> BoardFiles {
    BoardFiles::new(root, TILE_BOARD_TOP, TILE_BOARD_CORE, TILE_BOARD_MHZ, TILE_CLKS_PER_BIT)
}

/// Clock cycles the board counts for a run of `rows x cols` (see [`RUN_OVERHEAD`]).
pub fn run_cycles(rows: usize, cols: usize) -> u64 {
    (rows * cols + cols) as u64 + RUN_OVERHEAD
}

fn capacity(what: &'static str, value: usize, max: usize) -> Result<(), BoardTileError> {
    if value > max {
        return Err(BoardTileError::Capacity { what, value, max });
    }
    Ok(())
}

/// Checks `job` against the tile (block size, shapes: [`GemvJob::check`]) and the board's
/// memories.
pub fn check_job(job: &GemvJob) -> Result<(), BoardTileError> {
    job.check(&TileGeom::new(&tile_engine(), ActFormat::Bf16))?;
    if job.rows == 0 {
        return Err(BoardTileError::Capacity {
            what: "rows (at least 1)",
            value: 0,
            max: MAX_ROWS,
        });
    }
    capacity("rows", job.rows, MAX_ROWS)?;
    capacity("cols", job.cols, ACT_WORDS)?;
    capacity("rows x cols (weight codes)", job.rows * job.cols, CODE_WORDS)?;
    let cmax = (1u64 << tile_engine().code_bits) - 1;
    if let Some((i, &c)) = job.codes.iter().enumerate().find(|(_, &c)| u64::from(c) > cmax) {
        return Err(BoardTileError::Value {
            what: "code",
            index: i,
            value: c.into(),
            max: cmax,
        });
    }
    Ok(())
}

/// The frames that load a layer block: the tile's mode register, both tables and biases,
/// then the codes and the row blocks' `(scale, sel)` of `job` (its activations are sent by
/// [`vector_frames`]). `Err` when the tables do not suit the tile's engine or the job does
/// not fit the board ([`check_job`]).
pub fn layer_frames(tables: &Tables, job: &GemvJob) -> Result<Vec<TileFrame>, BoardTileError> {
    tables.check(&tile_engine())?;
    check_job(job)?;
    let mut v = Vec::with_capacity(3 + 2 * 64 + job.codes.len() + job.scales.len());
    if let Some(m) = tables.mode {
        v.push(TileFrame::new(Op::Mode, 0, m.word().into(), 0)?);
    }
    for (t, entries) in tables.entries.iter().enumerate() {
        for (a, &w) in entries.iter().enumerate() {
            // Words fit 8 bits (checked by `Tables::check` against the HIF8 engine).
            v.push(TileFrame::new(Op::Table, a, w as u16, t as u8)?);
        }
        v.push(TileFrame::new(Op::Bias, 0, tables.bias_code(t).into(), t as u8)?);
    }
    for (i, &c) in job.codes.iter().enumerate() {
        v.push(TileFrame::new(Op::Code, i, c.into(), 0)?);
    }
    for (i, (&s, &l)) in job.scales.iter().zip(job.sel).enumerate() {
        v.push(TileFrame::new(Op::Block, i, u16::from(s) | u16::from(l) << 8, 0)?);
    }
    Ok(v)
}

/// The frames that write `job`'s activation vector and start the run (the layer block
/// loaded by [`layer_frames`] stays; a new vector needs only these). `Err` as
/// [`check_job`].
pub fn vector_frames(job: &GemvJob) -> Result<Vec<TileFrame>, BoardTileError> {
    check_job(job)?;
    let mut v = Vec::with_capacity(job.x.len() + 1);
    for (i, &w) in job.x.iter().enumerate() {
        v.push(TileFrame::new(Op::Act, i, w, 0)?);
    }
    // check_job bounds all three: cols <= 1024 fits 16 bits, block <= 128 fits 8 bits.
    v.push(TileFrame::new(Op::Run, job.rows, job.cols as u16, job.block as u8)?);
    Ok(v)
}

/// What the board sends back after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileReply {
    /// Per row, the result (binary32 bits, before the tensor scale).
    pub y: Vec<u32>,
    /// Clock cycles of the run ([`run_cycles`]).
    pub cycles: u32,
}

/// Bytes of the reply to a run of `rows` rows.
pub fn reply_len(rows: usize) -> usize {
    4 * rows + 4
}

/// Decodes the reply to a run of `rows` rows: `rows` little-endian words, then the cycle
/// count. `Err` when `bytes` is not [`reply_len`] long.
pub fn parse_reply(bytes: &[u8], rows: usize) -> Result<TileReply, BoardTileError> {
    let want = reply_len(rows);
    if bytes.len() != want {
        return Err(BoardTileError::Reply {
            got: bytes.len(),
            rows,
            want,
        });
    }
    let mut words = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let y: Vec<u32> = words.by_ref().take(rows).collect();
    let cycles = words.next().expect("length checked");
    Ok(TileReply { y, cycles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sop_hw::mode::all_modes;

    #[test]
    fn frame_layout() {
        let f = TileFrame::new(Op::Run, 8, 384, 16).unwrap();
        assert_eq!(f.vector(), 7 | 8 << 4 | 384 << 16 | 16 << 32);
        assert_eq!(f.bytes(), [0x87, 0, 0x80, 0x01, 0x10]);
        let f = TileFrame::new(Op::Code, 4095, 63, 0).unwrap();
        assert_eq!(f.bytes(), [0xf1, 0xff, 63, 0, 0]);
        let e = TileFrame::new(Op::Code, 4096, 0, 0).unwrap_err().to_string();
        assert!(e.contains("frame address 0 = 4096 is out of range 0..=4095"), "{e}");
        let e = TileFrame::from_bytes([0x08, 0, 0, 0, 0]).unwrap_err().to_string();
        assert_eq!(e, "frame op 8 is not a command (1..=7)");
        assert_eq!(run_cycles(8, 384), 8 * 384 + 384 + 6 + TILE_LATENCY as u64);
    }

    fn tables() -> Tables {
        let cfg = tile_engine();
        let mut t = Tables::zeroed(&cfg);
        for (i, e) in t.entries[1].iter_mut().enumerate() {
            *e = (i as u32 * 37) & 0xff;
        }
        t.bias = [-3, 5];
        t.mode = Some(all_modes()[1]);
        t
    }

    /// Job data: codes, scale codes, selection bits, activations.
    type Data = (Vec<u8>, Vec<u8>, Vec<bool>, Vec<u16>);

    /// Deterministic data of a `rows x cols` job in blocks of `block`.
    fn data(rows: usize, cols: usize, block: usize) -> Data {
        let nb = rows * cols / block;
        (
            (0..rows * cols).map(|i| (i * 7 % 64) as u8).collect(),
            (0..nb).map(|i| (i * 13) as u8).collect(),
            (0..nb).map(|i| i % 3 == 0).collect(),
            (0..cols).map(|i| (i * 977) as u16).collect(),
        )
    }

    /// The job of `d` (its columns: the activations).
    fn job(rows: usize, block: usize, d: &Data) -> GemvJob<'_> {
        let (codes, scales, sel, x) = d;
        GemvJob {
            rows,
            cols: x.len(),
            block,
            codes,
            scales,
            sel,
            x,
        }
    }

    #[test]
    fn jobs_the_board_cannot_hold_are_refused() {
        let t = tables();
        let err = |rows, cols, block| {
            let d = data(rows, cols, block);
            layer_frames(&t, &job(rows, block, &d)).unwrap_err().to_string()
        };
        assert_eq!(err(1, 2048, 128), "cols = 2048 does not fit the board: at most 1024");
        assert_eq!(err(300, 8, 8), "rows = 300 does not fit the board: at most 256");
        assert_eq!(
            err(5, 1024, 128),
            "rows x cols (weight codes) = 5120 does not fit the board: at most 4096"
        );
        let mut d = data(2, 16, 8);
        d.0[5] = 64;
        let e = layer_frames(&t, &job(2, 8, &d)).unwrap_err().to_string();
        assert_eq!(e, "code 5 = 64 is out of range 0..=63");
        let e = err(0, 16, 8);
        assert!(e.contains("rows (at least 1)"), "{e}");
        // The tile's own limits (block size) come from sop_hw.
        let e = err(2, 16, 4);
        assert!(e.contains("blocks of 4 weights"), "{e}");
        let mut bad = t.clone();
        bad.bias[0] = 1000;
        let d = data(2, 16, 8);
        let e = layer_frames(&bad, &job(2, 8, &d)).unwrap_err().to_string();
        assert!(e.contains("bias"), "{e}");
        let d = data(1, 2048, 128);
        let e = vector_frames(&job(1, 128, &d)).unwrap_err().to_string();
        assert!(e.contains("cols = 2048"), "{e}");
    }

    #[test]
    fn replies_are_decoded() {
        let mut b = vec![];
        for w in [0x3f80_0000u32, 0xc000_0001, 3085] {
            b.extend(w.to_le_bytes());
        }
        let r = parse_reply(&b, 2).unwrap();
        assert_eq!(r.y, vec![0x3f80_0000, 0xc000_0001]);
        assert_eq!(r.cycles, 3085);
        let e = parse_reply(&b[..11], 2).unwrap_err().to_string();
        assert_eq!(
            e,
            "reply of 11 bytes for a run of 2 rows: expected 12 (4 per row and 4 for the cycle count)"
        );
    }

    /// The board's memories and tile registers as the wrapper writes them, frame by frame.
    #[derive(Default)]
    struct Image {
        code: Vec<u8>,
        act: Vec<u16>,
        block: Vec<u16>,
        table: [Vec<u8>; 2],
        bias: [u8; 2],
        mode: Option<u8>,
        run: Option<(usize, usize, usize)>,
    }

    impl Image {
        fn new() -> Image {
            Image {
                code: vec![0; CODE_WORDS],
                act: vec![0; ACT_WORDS],
                block: vec![0; BLOCK_WORDS],
                table: [vec![0; 64], vec![0; 64]],
                ..Image::default()
            }
        }

        fn apply(&mut self, bytes: [u8; 5]) {
            let f = TileFrame::from_bytes(bytes).unwrap();
            let (a, d, t) = (f.addr() as usize, f.data(), (f.aux() & 1) as usize);
            match f.op() {
                Op::Code => self.code[a] = (d & 0x3f) as u8,
                Op::Act => self.act[a & 0x3ff] = d,
                Op::Block => self.block[a & 0x1ff] = d & 0x1ff,
                Op::Table => self.table[t][a & 0x3f] = d as u8,
                Op::Bias => self.bias[t] = d as u8,
                Op::Mode => self.mode = Some(d as u8),
                Op::Run => self.run = Some((a, d as usize, f.aux() as usize)),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any frame survives the byte encoding.
        #[test]
        fn frames_round_trip(op in 0usize..7, addr in 0usize..4096, data: u16, aux: u8) {
            let f = TileFrame::new(Op::ALL[op], addr, data, aux).unwrap();
            prop_assert_eq!(TileFrame::from_bytes(f.bytes()).unwrap(), f);
        }

        /// The frames of any job that fits write exactly the job into the board's memories
        /// and the tile's registers, and start a run of its shape.
        #[test]
        fn frames_load_the_job(
            rows in 1usize..=8,
            nblk in 1usize..=8,
            block in prop::sample::select(vec![8usize, 16, 32, 64, 128]),
            seed: u64,
        ) {
            let cols = nblk * block;
            prop_assume!(rows * cols <= CODE_WORDS && cols <= ACT_WORDS);
            let mut rng = sop_hw::rng::XorShift(seed | 1);
            let mut d = data(rows, cols, block);
            d.0.iter_mut().for_each(|c| *c = rng.below(64) as u8);
            d.1.iter_mut().for_each(|s| *s = rng.below(256) as u8);
            d.2.iter_mut().for_each(|s| *s = rng.below(2) == 1);
            d.3.iter_mut().for_each(|x| *x = rng.below(1 << 16) as u16);
            let t = tables();
            let mut img = Image::new();
            let j = job(rows, block, &d);
            for f in layer_frames(&t, &j).unwrap().into_iter().chain(vector_frames(&j).unwrap()) {
                img.apply(f.bytes());
            }
            let (codes, scales, sel, x) = &d;
            prop_assert_eq!(&img.code[..rows * cols], &codes[..]);
            prop_assert_eq!(&img.act[..cols], &x[..]);
            let blocks: Vec<u16> = scales.iter().zip(sel).map(|(&s, &l)| u16::from(s) | u16::from(l) << 8).collect();
            prop_assert_eq!(&img.block[..blocks.len()], &blocks[..]);
            for tb in 0..2 {
                let words: Vec<u8> = t.entries[tb].iter().map(|&w| w as u8).collect();
                prop_assert_eq!(&img.table[tb], &words);
                prop_assert_eq!(img.bias[tb], t.bias_code(tb));
            }
            prop_assert_eq!(img.mode, t.mode.map(|m| m.word()));
            prop_assert_eq!(img.run, Some((rows, cols, block)));
        }
    }
}
