//! The iCE40-HX8K breakout-board examples in `fpga/hx8k/`: lane 0 of the committed top
//! [`BOARD_CONFIG`] behind the board's UART (wrapper [`BOARD_TOP`]) with its host-side frame
//! encoding ([`Frame`]), and the files and synthesis + place-and-route check shared with
//! the dot-product tile example ([`crate::board_tile`]): [`BoardFiles`], [`place_and_route`].
//!
//! The wire protocols are documented in the wrappers' headers and in `docs/qor.md`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parse::{nextpnr_fmax, nextpnr_utilisation, unparsed, yosys_stat_top};
use crate::tools::{run_tool, Tool, NEXTPNR_ICE40, YOSYS};
use crate::QorError;

/// The committed configuration the board example wraps (its `rtl-out/` file).
pub const BOARD_CONFIG: &str = "sop_c4_hif8_ue4m4_fp16";
/// Top module of the wrapper.
pub const BOARD_TOP: &str = "sop_hx8k_uart";
/// Board clock (MHz): the breakout's 12 MHz oscillator; place and route must meet it.
pub const BOARD_MHZ: u32 = 12;
/// UART bit period in clock cycles (12 MHz / 115200 baud, rounded).
pub const CLKS_PER_BIT: u32 = 104;

/// `icepack` from Project IceStorm (bitstream packing).
pub const ICEPACK: Tool = Tool {
    program: "icepack",
    install: "apt-get install -y fpga-icestorm",
};

/// The files of one board example and its clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardFiles {
    /// Top module of the board design.
    pub top: &'static str,
    /// Its design clock (MHz); place and route must meet it.
    pub mhz: u32,
    /// Its UART bit period in design clock cycles (`mhz` / 115200 baud, rounded).
    pub clks_per_bit: u32,
    /// Its Verilog: the committed generated top, the shared UART (`fpga/hx8k/sop_uart.v`)
    /// and the board wrapper, in that order.
    pub verilog: Vec<PathBuf>,
    /// The pin constraints (`fpga/hx8k/hx8k_breakout.pcf`).
    pub pcf: PathBuf,
}

impl BoardFiles {
    /// The files of a board top `top` (`fpga/hx8k/<top>.v`) around the committed
    /// `rtl-out/<core>.v`, under the repository root `root`, clocked at `mhz` MHz with a UART
    /// bit period of `clks_per_bit` cycles.
    pub fn new(root: &Path, top: &'static str, core: &str, mhz: u32, clks_per_bit: u32) -> BoardFiles {
        let hx8k = root.join("fpga/hx8k");
        BoardFiles {
            top,
            mhz,
            clks_per_bit,
            verilog: vec![
                root.join("rtl-out").join(format!("{core}.v")),
                hx8k.join("sop_uart.v"),
                hx8k.join(format!("{top}.v")),
            ],
            pcf: hx8k.join("hx8k_breakout.pcf"),
        }
    }

    /// The decode-lane example ([`BOARD_TOP`] around [`BOARD_CONFIG`]) under the repository
    /// root `root`.
    pub fn under(root: &Path) -> BoardFiles {
        BoardFiles::new(root, BOARD_TOP, BOARD_CONFIG, BOARD_MHZ, CLKS_PER_BIT)
    }
}

/// One host-to-board frame: the lane-0 inputs applied for exactly one clock cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// A weight code is presented.
    pub valid_in: bool,
    /// Latch `scale` and `sel` (block start).
    pub block_start: bool,
    /// Block-scale code (UE4M4).
    pub scale: u8,
    /// Table selection bit.
    pub sel: bool,
    /// Weight code (4 bits).
    pub code: u8,
    /// Table the load port writes (false: table 0).
    pub load_table: bool,
    /// Entry address (4 bits).
    pub load_addr: u8,
    /// HIF8 entry word.
    pub load_data: u8,
    /// Write `load_data` into entry `load_addr` of table `load_table`.
    pub load_we: bool,
    /// Table bias (two's complement).
    pub load_bias: i8,
    /// Write `load_bias` into the bias register of table `load_table`.
    pub load_bias_we: bool,
}

impl Frame {
    /// A frame writing one table entry.
    pub fn table_entry(table: bool, addr: u8, word: u8) -> Frame {
        Frame {
            load_table: table,
            load_addr: addr,
            load_data: word,
            load_we: true,
            ..Frame::default()
        }
    }

    /// A frame writing one table's bias register.
    pub fn bias(table: bool, bias: i8) -> Frame {
        Frame {
            load_table: table,
            load_bias: bias,
            load_bias_we: true,
            ..Frame::default()
        }
    }

    /// A frame presenting one weight, optionally starting a block with `(scale, sel)`.
    pub fn weight(code: u8, block: Option<(u8, bool)>) -> Frame {
        let (scale, sel) = block.unwrap_or((0, false));
        Frame {
            valid_in: true,
            block_start: block.is_some(),
            scale,
            sel,
            code,
            ..Frame::default()
        }
    }

    /// The 40-bit vector (bit layout of the wrapper's header).
    pub fn vector(&self) -> u64 {
        let b = |x: bool| u64::from(x);
        b(self.valid_in)
            | b(self.block_start) << 1
            | u64::from(self.scale) << 2
            | b(self.sel) << 10
            | u64::from(self.code & 0xf) << 11
            | b(self.load_table) << 15
            | u64::from(self.load_addr & 0xf) << 16
            | u64::from(self.load_data) << 20
            | b(self.load_we) << 28
            | u64::from(self.load_bias as u8) << 29
            | b(self.load_bias_we) << 37
    }

    /// The five bytes sent over the UART, least significant first.
    pub fn bytes(&self) -> [u8; 5] {
        let v = self.vector();
        std::array::from_fn(|i| (v >> (8 * i)) as u8)
    }
}

/// Result of the board flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoardReport {
    /// `SB_LUT4` cells of the whole board design (Yosys).
    pub lut4: u64,
    /// Logic cells placed (`ICESTORM_LC` of nextpnr's utilisation: LUT4, flip-flop and
    /// carry packed together), of the HX8K's 7,680.
    pub lcs: u64,
    /// Flip-flops (`SB_DFF*`).
    pub ffs: u64,
    /// Block RAMs (`SB_RAM40_4K`, 4 kbit each; the HX8K has 32).
    pub brams: u64,
    /// Pads used (`SB_IO` of the utilisation report).
    pub ios: u64,
    /// Routed maximum frequency (MHz); place and route fails below [`BoardFiles::mhz`].
    pub fmax_mhz: f64,
    /// The bitstream written by icepack.
    pub bitstream: PathBuf,
}

fn copy_into(src: &Path, dir: &Path) -> Result<String, QorError> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::copy(src, dir.join(&name)).map_err(|e| QorError::Io {
        path: src.to_path_buf(),
        source: e,
    })?;
    Ok(name)
}

/// Synthesizes a board example (Yosys `synth_ice40`), places and routes it with its pin
/// constraints on the HX8K/CT256 at its clock, [`BoardFiles::mhz`] (nextpnr-ice40 without
/// `--timing-allow-fail`: missing the clock is an error) and packs the bitstream
/// (icepack), all in `dir`.
pub fn place_and_route(files: &BoardFiles, dir: &Path) -> Result<BoardReport, QorError> {
    fs::create_dir_all(dir).map_err(|e| QorError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let sources = files
        .verilog
        .iter()
        .map(|f| copy_into(f, dir))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");
    let pcf = copy_into(&files.pcf, dir)?;
    let top = files.top;
    let script = format!(
        "read_verilog {sources}\n\
         synth_ice40 -top {top} -json {top}.json\n\
         tee -q -o stat.json stat -json\n"
    );
    let ys = dir.join("board.ys");
    fs::write(&ys, script).map_err(|e| QorError::Io { path: ys, source: e })?;
    run_tool(YOSYS, &["-q", "-l", "board.log", "-s", "board.ys"], dir)?;
    let stat_path = dir.join("stat.json");
    let stat = fs::read_to_string(&stat_path).map_err(|e| QorError::Io {
        path: stat_path,
        source: e,
    })?;
    let stats = yosys_stat_top("yosys", &stat, top)?;
    let json = format!("{top}.json");
    let asc = format!("{top}.asc");
    let freq = files.mhz.to_string();
    let p = run_tool(
        NEXTPNR_ICE40,
        &[
            "--hx8k",
            "--package",
            "ct256",
            "--pcf",
            &pcf,
            "--json",
            &json,
            "--asc",
            &asc,
            "--freq",
            &freq,
        ],
        dir,
    )?;
    let log = dir.join("nextpnr.log");
    fs::write(&log, &p.text).map_err(|e| QorError::Io { path: log, source: e })?;
    let fmax = nextpnr_fmax("nextpnr-ice40", &p.text)?;
    let util = nextpnr_utilisation("nextpnr-ice40", &p.text)?;
    let bin = format!("{top}.bin");
    run_tool(ICEPACK, &[&asc, &bin], dir)?;
    Ok(BoardReport {
        lut4: stats.count("SB_LUT4"),
        lcs: util
            .get("ICESTORM_LC")
            .map(|u| u.0)
            .ok_or_else(|| unparsed("nextpnr-ice40", "ICESTORM_LC in the device utilisation", &p.text))?,
        ffs: stats.sum_where(|c| c.starts_with("SB_DFF")),
        brams: stats.sum_where(|c| c.starts_with("SB_RAM")),
        ios: util.get("SB_IO").map(|u| u.0).unwrap_or(0),
        fmax_mhz: fmax,
        bitstream: dir.join(bin),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout() {
        assert_eq!(Frame::weight(0xf, None).vector(), 1 | 0xf << 11);
        let f = Frame::weight(3, Some((0x80, true)));
        assert_eq!(f.vector(), 1 | 2 | 0x80 << 2 | 1 << 10 | 3 << 11);
        assert_eq!(
            Frame::table_entry(true, 5, 0xa7).vector(),
            1 << 15 | 5 << 16 | 0xa7 << 20 | 1 << 28
        );
        assert_eq!(Frame::bias(false, -2).vector(), 0xfe << 29 | 1 << 37);
        assert_eq!(Frame::bias(false, -2).bytes(), [0, 0, 0, 0xc0, 0x3f]);
        assert_eq!(Frame::default().bytes(), [0; 5]);
    }
}
