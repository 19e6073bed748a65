//! The iCE40-HX8K breakout example (`fpga/hx8k/`): lint-clean, simulates correctly
//! through its UART against the golden model (Verilator), and synthesizes, places and
//! routes with its pin constraints at the board clock (Yosys, nextpnr-ice40, icepack).
//! A missing tool fails the test, naming it and its install command.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sop_qor::board::{place_and_route, BoardFiles, Frame, BOARD_CONFIG, BOARD_MHZ, BOARD_TOP, CLKS_PER_BIT};
use sop_qor::tools::{run_tool, VERILATOR};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files() -> BoardFiles {
    BoardFiles::under(&root())
}

#[test]
fn board_example_places_and_routes() {
    let dir = tempfile::tempdir().unwrap();
    let r = place_and_route(&files(), dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.fmax_mhz >= f64::from(BOARD_MHZ), "{r:?}");
    // clk12m, rx, tx and eight LEDs.
    assert_eq!(r.ios, 11, "{r:?}");
    assert!(r.lut4 > 100 && r.ffs > 50, "{r:?}");
    let bin = std::fs::metadata(&r.bitstream).expect("bitstream written");
    assert!(bin.len() > 100_000, "HX8K bitstream is ~130 kB, got {}", bin.len());
}

#[test]
fn board_wrapper_is_lint_clean() {
    let f = files();
    let dir = tempfile::tempdir().unwrap();
    let vlt = root().join("rtl-out/verilator.vlt");
    run_tool(
        VERILATOR,
        &[
            "--lint-only",
            "-Wall",
            "--top-module",
            BOARD_TOP,
            vlt.to_str().unwrap(),
            f.core.to_str().unwrap(),
            f.wrapper.to_str().unwrap(),
        ],
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

use sop_hw::rng::XorShift as Rng;

fn testbench(frames: &[Frame]) -> String {
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.bytes()).collect();
    let mut init = String::new();
    for (i, b) in bytes.iter().enumerate() {
        let _ = writeln!(init, "    stim[{i}] = 8'h{b:02x};");
    }
    format!(
        r#"module tb;
  localparam integer N = {n};
  localparam integer BIT = {bit};
  reg clk = 1'b0;
  always #5 clk = ~clk;
  reg rx = 1'b1;
  wire tx;
  wire [7:0] led;
  reg [7:0] stim [0:N-1];
  {top} dut(.clk12m(clk), .rx(rx), .tx(tx), .led(led));
  integer k, i;
  initial begin
{init}
    repeat (64) @(posedge clk);
    for (k = 0; k < N; k = k + 1) begin
      rx = 1'b0;
      repeat (BIT) @(posedge clk);
      for (i = 0; i < 8; i = i + 1) begin
        rx = stim[k][i];
        repeat (BIT) @(posedge clk);
      end
      rx = 1'b1;
      repeat (BIT) @(posedge clk);
    end
    repeat (30 * BIT) @(posedge clk);
    $display("LED %02x", led);
    $finish;
  end
  reg [7:0] got;
  integer j;
  initial begin
    forever begin
      @(negedge tx);
      repeat (BIT / 2) @(posedge clk);
      for (j = 0; j < 8; j = j + 1) begin
        repeat (BIT) @(posedge clk);
        got[j] = tx;
      end
      repeat (BIT) @(posedge clk);
      if (!tx) $display("FRAMING");
      $display("BYTE %02x", got);
    end
  end
endmodule
"#,
        n = bytes.len(),
        bit = CLKS_PER_BIT,
        top = BOARD_TOP,
    )
}

fn run_sim(dir: &Path, frames: &[Frame]) -> String {
    let f = files();
    std::fs::write(dir.join("tb.sv"), testbench(frames)).unwrap();
    let vlt = root().join("rtl-out/verilator.vlt");
    run_tool(
        VERILATOR,
        &[
            "--binary",
            "-j",
            "2",
            "-Wno-fatal",
            "--top-module",
            "tb",
            vlt.to_str().unwrap(),
            f.core.to_str().unwrap(),
            f.wrapper.to_str().unwrap(),
            "tb.sv",
        ],
        dir,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(dir.join("obj_dir/Vtb")).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn board_example_decodes_through_the_uart() {
    let cfg = sop_hw::default_configs()
        .into_iter()
        .find(|c| c.name == BOARD_CONFIG)
        .unwrap();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let biases = [-3i8, 4];
    let mut tables = [[0u8; 16]; 2];
    let mut frames = Vec::new();
    for (t, table) in tables.iter_mut().enumerate() {
        frames.push(Frame::bias(t == 1, biases[t]));
        for (a, w) in table.iter_mut().enumerate() {
            // HIF8 word s|e[2:0]|c[3:0]: mostly non-zero mantissa codes (c < 6), one zero.
            let (sign, e, c) = (rng.next() % 2, rng.next() % 8, rng.next() % 6);
            *w = if a == 15 { 0x0f } else { (sign << 7 | e << 4 | c) as u8 };
            frames.push(Frame::table_entry(t == 1, a as u8, *w));
        }
    }
    let mut expected = Vec::new();
    let (mut scale, mut sel) = (0u8, false);
    for k in 0..24 {
        let code = (rng.next() % 16) as u8;
        let block = if k % 6 == 0 {
            // UE4M4 scales between 2^-4 and 2^4 (exponent field 3..=11).
            scale = (((3 + rng.next() % 9) << 4) | (rng.next() % 16)) as u8;
            sel = rng.next() % 2 == 1;
            Some((scale, sel))
        } else {
            None
        };
        frames.push(Frame::weight(code, block));
        let t = usize::from(sel);
        expected.push(sop_hw::model::decode_entry(
            &cfg,
            u32::from(tables[t][usize::from(code)]),
            i32::from(biases[t]),
            scale,
        ));
    }
    let distinct: std::collections::BTreeSet<u16> = expected.iter().copied().collect();
    assert!(distinct.len() > 12, "stimulus too uniform: {expected:04x?}");
    let dir = tempfile::tempdir().unwrap();
    let out = run_sim(dir.path(), &frames);
    assert!(!out.contains("FRAMING"), "{out}");
    let bytes: Vec<u8> = out
        .lines()
        .filter_map(|l| l.strip_prefix("BYTE "))
        .map(|h| u8::from_str_radix(h.trim(), 16).unwrap())
        .collect();
    let words: Vec<u16> = bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    assert_eq!(words, expected, "simulation output:\n{out}");
    let led = out.lines().find_map(|l| l.strip_prefix("LED ")).unwrap();
    assert_eq!(
        u8::from_str_radix(led.trim(), 16).unwrap(),
        (expected.last().unwrap() >> 8) as u8
    );
}
