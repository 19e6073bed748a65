//! The UART testbench shared by the board examples' tests: a Verilator simulation of a board
//! top driven through its `rx` pin at the real bit period, its `tx` pin decoded.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sop_qor::board::BoardFiles;
use sop_qor::tools::{run_tool, VERILATOR};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The waiver file the generated Verilog is linted with.
pub fn waivers() -> PathBuf {
    root().join("rtl-out/verilator.vlt")
}

/// Verilator `-Wall` lint of a board design (fails the test with the tool's output).
pub fn lint(files: &BoardFiles) {
    let dir = tempfile::tempdir().unwrap();
    let vlt = waivers();
    let mut args = vec!["--lint-only", "-Wall", "--top-module", files.top, vlt.to_str().unwrap()];
    args.extend(files.verilog.iter().map(|p| p.to_str().unwrap()));
    run_tool(VERILATOR, &args, dir.path()).unwrap_or_else(|e| panic!("{e}"));
}

/// A testbench for `top` (ports `clk12m`, `rx`, `tx`, `led`; its clock stands for the design
/// clock, a UART bit lasts `bit` cycles): each segment's bytes are sent as 8N1 characters
/// back to back, then the bench waits until the board has sent the
/// segment's number of reply bytes (in total so far), at most `limit` cycles per segment
/// (`TIMEOUT` and the end of the run otherwise). It prints `BYTE hh` per received byte,
/// `FRAMING` for a low stop bit and `LED hh` at the end.
fn testbench(top: &str, bit: u32, segments: &[(Vec<u8>, usize)], limit: u64) -> String {
    let n: usize = segments.iter().map(|s| s.0.len()).sum();
    let mut init = String::new();
    let mut k = 0;
    let mut plan = String::new();
    let mut want = 0;
    for (bytes, reply) in segments {
        let _ = writeln!(plan, "    send({k}, {});", k + bytes.len());
        let _ = writeln!(plan, "    await({});", want + reply);
        for b in bytes {
            let _ = writeln!(init, "    stim[{k}] = 8'h{b:02x};");
            k += 1;
        }
        want += reply;
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
  integer nrx = 0;
  {top} dut(.clk12m(clk), .rx(rx), .tx(tx), .led(led));
  integer k, i;
  task send(input integer from, input integer to);
    for (k = from; k < to; k = k + 1) begin
      rx = 1'b0;
      repeat (BIT) @(posedge clk);
      for (i = 0; i < 8; i = i + 1) begin
        rx = stim[k][i];
        repeat (BIT) @(posedge clk);
      end
      rx = 1'b1;
      repeat (BIT) @(posedge clk);
    end
  endtask
  longint waited;
  task await(input integer want);
    waited = 0;
    while (nrx < want && waited < {limit}) begin
      @(posedge clk);
      waited = waited + 1;
    end
    if (nrx < want) begin
      $display("TIMEOUT after %0d bytes of %0d", nrx, want);
      $finish;
    end
  endtask
  initial begin
{init}
    repeat (64) @(posedge clk);
{plan}
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
      nrx = nrx + 1;
    end
  end
endmodule
"#,
    )
}

/// Builds and runs the testbench of `files` with `segments` (see [`testbench`]) in `dir`;
/// returns its standard output.
pub fn run_sim(dir: &Path, files: &BoardFiles, segments: &[(Vec<u8>, usize)], limit: u64) -> String {
    std::fs::write(
        dir.join("tb.sv"),
        testbench(files.top, files.clks_per_bit, segments, limit),
    )
    .unwrap();
    let vlt = waivers();
    let mut args = vec![
        "--binary",
        "-j",
        "2",
        "-Wno-fatal",
        "--top-module",
        "tb",
        vlt.to_str().unwrap(),
    ];
    args.extend(files.verilog.iter().map(|p| p.to_str().unwrap()));
    args.push("tb.sv");
    run_tool(VERILATOR, &args, dir).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(dir.join("obj_dir/Vtb")).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("FRAMING") && !text.contains("TIMEOUT"), "{text}");
    text
}

/// The bytes the board sent (`BYTE hh` lines).
pub fn reply_bytes(out: &str) -> Vec<u8> {
    out.lines()
        .filter_map(|l| l.strip_prefix("BYTE "))
        .map(|h| u8::from_str_radix(h.trim(), 16).unwrap())
        .collect()
}

/// The LEDs at the end of the run (`LED hh`).
pub fn leds(out: &str) -> u8 {
    let led = out.lines().find_map(|l| l.strip_prefix("LED ")).expect("LED line");
    u8::from_str_radix(led.trim(), 16).unwrap()
}
