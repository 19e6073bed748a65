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
// LEDs: the high byte of the last output word. Reset: 16 cycles after configuration.

`default_nettype none

module sop_hx8k_uart (
    input  wire       clk12m,   // 12 MHz oscillator (J3)
    input  wire       rx,       // from the FTDI (B10)
    output wire       tx,       // to the FTDI (B12)
    output reg  [7:0] led       // D2..D9
);
    localparam [7:0] CLKS_PER_BIT = 8'd104;  // 12 MHz / 115200
    localparam [7:0] HALF_BIT = 8'd52;
    localparam [7:0] BIT_LAST = CLKS_PER_BIT - 8'd1;

    // Power-on reset: iCE40 flip-flops start at 0 after configuration.
    reg [4:0] por = 5'd0;
    wire reset = !por[4];
    always @(posedge clk12m) if (!por[4]) por <= por + 5'd1;

    // ---- UART receiver ----
    reg [1:0] rx_sync = 2'b11;
    always @(posedge clk12m) rx_sync <= {rx_sync[0], rx};
    wire rx_in = rx_sync[1];

    reg [7:0] rx_cnt = 8'd0;
    reg [3:0] rx_bit = 4'd0;
    reg [7:0] rx_shift = 8'd0;
    reg       rx_busy = 1'b0;
    reg       rx_valid = 1'b0;
    reg [7:0] rx_byte = 8'd0;
    always @(posedge clk12m) begin
        rx_valid <= 1'b0;
        if (!rx_busy) begin
            if (!rx_in) begin
                rx_busy <= 1'b1;
                rx_cnt <= HALF_BIT;
                rx_bit <= 4'd0;
            end
        end else if (rx_cnt != 8'd0) begin
            rx_cnt <= rx_cnt - 8'd1;
        end else begin
            rx_cnt <= BIT_LAST;
            if (rx_bit == 4'd0) begin
                if (rx_in) rx_busy <= 1'b0;           // glitch, not a start bit
                rx_bit <= 4'd1;
            end else if (rx_bit <= 4'd8) begin
                rx_shift <= {rx_in, rx_shift[7:1]};   // LSB first
                rx_bit <= rx_bit + 4'd1;
            end else begin                            // stop bit
                rx_busy <= 1'b0;
                if (rx_in) begin
                    rx_valid <= 1'b1;
                    rx_byte <= rx_shift;
                end
            end
        end
    end

    // ---- frame assembly ----
    reg [39:0] frame = 40'd0;
    reg [2:0]  nbytes = 3'd0;
    reg [15:0] idle = 16'd0;
    reg        fire = 1'b0;
    always @(posedge clk12m) begin
        fire <= 1'b0;
        if (rx_valid) begin
            frame <= {rx_byte, frame[39:8]};
            idle <= 16'd0;
            if (nbytes == 3'd4) begin
                nbytes <= 3'd0;
                fire <= 1'b1;
            end else begin
                nbytes <= nbytes + 3'd1;
            end
        end else if (nbytes != 3'd0) begin
            if (&idle) nbytes <= 3'd0;
            idle <= idle + 16'd1;
        end
    end
    wire [37:0] v = fire ? frame[37:0] : 38'd0;

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

    // ---- UART transmitter: two bytes per output word ----
    reg [7:0]  tx_high = 8'd0;
    reg        tx_pending = 1'b0;  // high byte still to send
    reg [9:0]  tx_shift = 10'h3ff;
    reg [3:0]  tx_left = 4'd0;
    reg [7:0]  tx_cnt = 8'd0;
    assign tx = tx_shift[0];
    always @(posedge clk12m) begin
        if (valid_out_0) led <= data_out_0[15:8];
        if (tx_left != 4'd0) begin
            if (tx_cnt != 8'd0) begin
                tx_cnt <= tx_cnt - 8'd1;
            end else begin
                tx_cnt <= BIT_LAST;
                tx_shift <= {1'b1, tx_shift[9:1]};
                tx_left <= tx_left - 4'd1;
            end
        end else if (valid_out_0) begin
            tx_high <= data_out_0[15:8];
            tx_pending <= 1'b1;
            tx_shift <= {1'b1, data_out_0[7:0], 1'b0};
            tx_left <= 4'd10;
            tx_cnt <= BIT_LAST;
        end else if (tx_pending) begin
            tx_pending <= 1'b0;
            tx_shift <= {1'b1, tx_high, 1'b0};
            tx_left <= 4'd10;
            tx_cnt <= BIT_LAST;
        end
    end
endmodule

`default_nettype wire
