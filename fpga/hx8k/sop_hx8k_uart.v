// sop_hx8k_uart.v -- iCE40-HX8K breakout board example for the SOP decode lane.
//
// Wraps lane 0 of the committed top `sop_c4_hif8_ue4m4_fp16` (rtl-out/, HIF8 tables, UE4M4
// scales, FP16 out) behind the board's FTDI UART, because the lane has 57 ports and the
// board's host link is two wires. Lanes 1..3 of the top are tied off; their outputs are
// unused, so synthesis removes them. See docs/qor.md ("FPGA packaging").
//
// Protocol, 115200 baud 8N1 (12 MHz clock / 104):
//   host -> board: frames of 5 bytes, least significant byte first, forming a 40-bit
//   vector v that is applied to the lane's inputs for exactly one clock cycle (all inputs
//   are 0 in every other cycle, so strobes fire once):
//     v[0]      valid_in        v[15]     load_table
//     v[1]      block_start     v[19:16]  load_addr
//     v[9:2]    scale           v[27:20]  load_data (HIF8 word)
//     v[10]     sel             v[28]     load_we
//     v[14:11]  code            v[36:29]  load_bias (two's complement)
//                               v[37]     load_bias_we      v[39:38] unused, send 0
//   board -> host: for every valid_out (4 cycles after a frame with valid_in = 1) the
//   16-bit data_out, low byte first.
//   A pause of more than 2^16 clock cycles (5.5 ms) inside a frame drops the partial frame,
//   so a host resynchronizes by waiting 10 ms.
// UART receiver, frame assembly and transmitter: sop_uart.v (shared with sop_hx8k_tile.v).
// LEDs: the high byte of the last output word. Reset: 16 cycles after configuration.

`default_nettype none

module sop_hx8k_uart (
    input  wire       clk12m,   // 12 MHz oscillator (J3)
    input  wire       rx,       // from the FTDI (B10)
    output wire       tx,       // to the FTDI (B12)
    output reg  [7:0] led       // D2..D9
);
    localparam integer CLKS_PER_BIT = 104;  // 12 MHz / 115200 (sop_uart.v)

    // Power-on reset: iCE40 flip-flops start at 0 after configuration.
    reg [4:0] por = 5'd0;
    wire reset = !por[4];
    always @(posedge clk12m) if (!por[4]) por <= por + 5'd1;

    // ---- UART receiver and frame assembly (sop_uart.v) ----
    wire        fire;
    wire [39:0] frame;
    sop_uart_frames #(.CLKS_PER_BIT(CLKS_PER_BIT)) ufr (
        .clk(clk12m), .rx(rx), .fire(fire), .frame(frame)
    );
    /* verilator lint_off UNUSEDSIGNAL */
    wire [39:0] v = fire ? frame : 40'd0;  // v[39:38] unused
    /* verilator lint_on UNUSEDSIGNAL */

    // ---- the decode top, lane 0 ----
    wire [15:0] data_out_0;
    wire        valid_out_0;
    /* verilator lint_off PINCONNECTEMPTY */
    sop_c4_hif8_ue4m4_fp16 dut (
        .clock(clk12m), .reset(reset),
        .load_table(v[15]), .load_addr(v[19:16]), .load_data(v[27:20]), .load_we(v[28]),
        .load_bias(v[36:29]), .load_bias_we(v[37]),
        .valid_in_0(v[0]), .valid_in_1(1'b0), .valid_in_2(1'b0), .valid_in_3(1'b0),
        .block_start_0(v[1]), .block_start_1(1'b0), .block_start_2(1'b0), .block_start_3(1'b0),
        .scale_0(v[9:2]), .scale_1(8'd0), .scale_2(8'd0), .scale_3(8'd0),
        .sel_0(v[10]), .sel_1(1'b0), .sel_2(1'b0), .sel_3(1'b0),
        .code_0(v[14:11]), .code_1(4'd0), .code_2(4'd0), .code_3(4'd0),
        .data_out_0(data_out_0), .data_out_1(), .data_out_2(), .data_out_3(),
        .valid_out_0(valid_out_0), .valid_out_1(), .valid_out_2(), .valid_out_3()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // ---- UART transmitter (sop_uart.v): two bytes per output word ----
    reg  [7:0] tx_high = 8'd0;
    reg        tx_pending = 1'b0;  // high byte still to send
    wire       tx_busy;
    wire       tx_start = !tx_busy && (valid_out_0 || tx_pending);
    wire [7:0] tx_data = valid_out_0 ? data_out_0[7:0] : tx_high;
    sop_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) utx (
        .clk(clk12m), .start(tx_start), .data(tx_data), .busy(tx_busy), .tx(tx)
    );
    always @(posedge clk12m) begin
        if (valid_out_0) led <= data_out_0[15:8];
        if (!tx_busy) begin
            if (valid_out_0) begin
                tx_high <= data_out_0[15:8];
                tx_pending <= 1'b1;
            end else if (tx_pending) begin
                tx_pending <= 1'b0;
            end
        end
    end
endmodule

`default_nettype wire
