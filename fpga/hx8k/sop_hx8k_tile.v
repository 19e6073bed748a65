// sop_hx8k_tile.v -- iCE40-HX8K breakout board example for the SOP dot-product tile.
//
// Holds one layer block in the FPGA's block RAM (EBR: inferred arrays that Yosys maps to
// SB_RAM40_4K) -- up to 4096 weight codes, 512 per-row-block (scale, selection bit) pairs and
// an activation vector of up to 1024 BF16 words -- loaded over the board's FTDI UART, and on
// a run command streams it through row 0 of the committed tile `sop_tile_hif8_bf16`
// (rtl-out/, 4 rows; rows 1..3 are tied off and their results unused, so synthesis removes
// them: 4 rows do not fit the HX8K) back to back, one weight per clock cycle, then sends the
// results (binary32) and the cycle count back. The tables, biases and mode live where the
// tile keeps them, in its load-port registers. Everything runs in one clock domain, 18 MHz
// from the iCE40's PLL (the board's 12 MHz oscillator x 3/2; nextpnr's Fmax for the design
// is about 22 MHz, limited by the tile row's FP32 accumulator). See docs/qor.md
// ("iCE40-HX8K: the dot-product tile").
//
// Protocol, 115200 baud 8N1 (18 MHz clock / 156; UART and frame assembly in sop_uart.v):
//   host -> board: frames of 5 bytes, least significant byte first, forming a 40-bit
//   vector v: v[3:0] op, v[15:4] addr, v[31:16] data, v[39:32] aux. Frames that arrive
//   while a run is in progress (until its last reply byte is sent) are ignored.
//     op 1  code:   code memory[addr] <= data[5:0]           (addr < 4096, row-major codes)
//     op 2  act:    activation memory[addr] <= data           (addr < 1024, BF16 words)
//     op 3  block:  block memory[addr] <= {sel data[8], scale data[7:0]} (addr < 512,
//                   row-major: row r's block b at r x cols/block + b)
//     op 4  table:  tile load port: entry addr[5:0] of table aux[0] <= data[7:0] (HIF8 word)
//     op 5  bias:   bias register of table aux[0] <= data[7:0] (two's complement)
//     op 6  mode:   mode register <= data[7:0]
//     op 7  run:    rows = addr (1..256), cols = data (1..1024), block = aux (8..128);
//                   cols a multiple of block, rows x cols <= 4096, rows x cols / block <= 512
//                   (the board does not check: sop_qor::board_tile encodes only valid frames)
//   board -> host, after a run: rows x 4 bytes, each row's result (binary32 bits, before
//   the tensor scale) low byte first, then the cycle count (32 bits, low byte first): clock
//   cycles from the first activation read of the pre-pass to the last result, both
//   included, rows x cols + cols + 15 (the pre-pass reads cols activations; 15 cycles of
//   memory reads, input registers, hand-over and the tile's latency of 9, TILE_LATENCY).
//   A pause of more than 2^16 clock cycles (3.6 ms) inside a frame drops the partial frame,
//   so a host resynchronizes by waiting 10 ms.
// Run: the pre-pass streams the activations once through the tile's ActMax (x_last at each
// block's last word) and stores each block's (emax, nan) answer in a small memory; then the
// weights stream row-major, one column per cycle without gaps: code, activation, the
// block's scale, selection bit, emax and nan, block_start and last. Memory reads are
// registered (EBR) and the tile's inputs registered once more.
// LEDs: led[0] lit during a run; led[7:1] the top bits of the last result's high byte.
// Reset: until the PLL locks, then 16 cycles.

`default_nettype none

module sop_hx8k_tile #(
    parameter integer CLKS_PER_BIT = 156    // 18 MHz / 115200 (0.16 % fast)
) (
    input  wire       clk12m,   // 12 MHz oscillator (J3), the PLL's reference
    input  wire       rx,       // from the FTDI (B10)
    output wire       tx,       // to the FTDI (B12)
    output reg  [7:0] led       // D2..D9
);
    localparam [3:0] OP_CODE = 4'd1, OP_ACT = 4'd2, OP_BLOCK = 4'd3, OP_TABLE = 4'd4,
                     OP_BIAS = 4'd5, OP_MODE = 4'd6, OP_RUN = 4'd7;
    localparam [2:0] S_IDLE = 3'd0, S_PRE = 3'd1, S_GAP = 3'd2, S_STREAM = 3'd3,
                     S_DRAIN = 3'd4, S_SEND_RD = 3'd5, S_SEND_LD = 3'd6, S_SEND_TX = 3'd7;

    // The design clock `clk`: 18 MHz from the PLL, 12 MHz x (DIVF + 1) / ((DIVR + 1) x
    // 2^DIVQ) = 12 x 48 / 32 (VCO 576 MHz, phase detector 12 MHz; icepll -i 12 -o 18).
    // Simulation has no PLL model: there the testbench's clock stands for `clk`.
    wire clk;
    wire lock;
`ifdef SYNTHESIS
    SB_PLL40_CORE #(
        .FEEDBACK_PATH("SIMPLE"), .DIVR(4'd0), .DIVF(7'd47), .DIVQ(3'd5), .FILTER_RANGE(3'd1)
    ) pll (
        .REFERENCECLK(clk12m), .PLLOUTGLOBAL(clk), .LOCK(lock), .RESETB(1'b1), .BYPASS(1'b0)
    );
`else
    assign clk = clk12m;
    assign lock = 1'b1;
`endif

    // Power-on reset: iCE40 flip-flops start at 0 after configuration; held until the PLL
    // has locked, then 16 more cycles.
    reg [4:0] por = 5'd0;
    wire reset = !por[4];
    always @(posedge clk) if (!lock) por <= 5'd0; else if (!por[4]) por <= por + 5'd1;

    // ---- UART receiver and frame assembly (sop_uart.v) ----
    wire        fire;
    wire [39:0] frame;
    sop_uart_frames #(.CLKS_PER_BIT(CLKS_PER_BIT)) ufr (
        .clk(clk), .rx(rx), .fire(fire), .frame(frame)
    );
    wire [3:0]  f_op = frame[3:0];
    wire [11:0] f_addr = frame[15:4];
    wire [15:0] f_data = frame[31:16];
    wire [7:0]  f_aux = frame[39:32];

    reg [2:0] state = S_IDLE;
    wire idle = state == S_IDLE;
    wire cmd = fire && idle && !reset;

    // ---- run shape (minus one) and sequencer counters ----
    /* verilator lint_off UNUSEDSIGNAL */
    wire [11:0] addr_m1 = f_addr - 12'd1;
    wire [15:0] data_m1 = f_data - 16'd1;
    wire [7:0]  aux_m1 = f_aux - 8'd1;
    /* verilator lint_on UNUSEDSIGNAL */
    reg [7:0]  rows_m1 = 8'd0;
    reg [9:0]  cols_m1 = 10'd0;
    reg [6:0]  blk_m1 = 7'd0;

    reg [9:0]  xc = 10'd0;      // pre-pass: activation read
    reg [6:0]  xcb = 7'd0;      //   its place in the block
    reg [7:0]  nblk = 8'd0;     //   blocks of the vector (x_last sent)
    reg [7:0]  wi = 8'd0;       //   pre-pass answers stored
    reg [11:0] k = 12'd0;       // stream: code address (row-major)
    reg [9:0]  c = 10'd0;       //   column
    reg [6:0]  cb = 7'd0;       //   its place in the block
    reg [6:0]  ib = 7'd0;       //   block of the vector
    reg [8:0]  bk = 9'd0;       //   block of the layer (row-major)
    reg [7:0]  r = 8'd0;        //   row
    reg [7:0]  ri = 8'd0;       // results stored
    reg [31:0] cycles = 32'd0;  // cycles of the run

    // ---- block RAM: written by the frames, read by the sequencer (registered reads) ----
    reg [5:0]  code_mem [0:4095];
    reg [15:0] act_mem  [0:1023];
    reg [8:0]  blk_mem  [0:511];
    reg [8:0]  info_mem [0:127];   // {nan, emax} per block of the vector
    reg [31:0] res_mem  [0:255];
    reg [5:0]  code_q = 6'd0;
    reg [15:0] act_q = 16'd0;
    reg [8:0]  blk_q = 9'd0;
    reg [8:0]  info_q = 9'd0;
    reg [31:0] res_q = 32'd0;
    wire [9:0] act_ra = state == S_PRE ? xc : c;
    reg  [7:0] si = 8'd0;          // result being sent
    reg  [31:0] txw = 32'd0;   // reply word being sent
    reg  [1:0]  nb = 2'd0;
    reg         tail = 1'b0;    // sending the cycle count
    wire        tx_busy;

    wire       xm_valid;
    wire [7:0] xm_emax;
    wire       xm_nan;
    wire       out_valid;
    wire [31:0] acc_0;

    always @(posedge clk) begin
        if (cmd && f_op == OP_CODE) code_mem[f_addr] <= f_data[5:0];
        code_q <= code_mem[k];
    end
    always @(posedge clk) begin
        if (cmd && f_op == OP_ACT) act_mem[f_addr[9:0]] <= f_data;
        act_q <= act_mem[act_ra];
    end
    always @(posedge clk) begin
        if (cmd && f_op == OP_BLOCK) blk_mem[f_addr[8:0]] <= f_data[8:0];
        blk_q <= blk_mem[bk];
    end
    always @(posedge clk) begin
        if (xm_valid) info_mem[wi[6:0]] <= {xm_nan, xm_emax};
        info_q <= info_mem[ib];
    end
    always @(posedge clk) begin
        if (out_valid) res_mem[ri] <= acc_0;
        res_q <= res_mem[si];
    end

    // ---- sequencer ----
    // Issued in the previous cycle: valid together with the memories' read data.
    reg        px = 1'b0, px_last = 1'b0;                 // pre-pass
    reg        ps = 1'b0, ps_bs = 1'b0, ps_last = 1'b0;    // stream
    always @(posedge clk) begin
        px <= 1'b0;
        ps <= 1'b0;
        if (xm_valid) wi <= wi + 8'd1;
        if (out_valid) ri <= ri + 8'd1;
        if (state != S_IDLE && state < S_SEND_RD) cycles <= cycles + 32'd1;
        case (state)
            S_IDLE: if (cmd && f_op == OP_RUN) begin
                rows_m1 <= addr_m1[7:0];
                cols_m1 <= data_m1[9:0];
                blk_m1 <= aux_m1[6:0];
                xc <= 10'd0;
                xcb <= 7'd0;
                nblk <= 8'd0;
                wi <= 8'd0;
                k <= 12'd0;
                c <= 10'd0;
                cb <= 7'd0;
                ib <= 7'd0;
                bk <= 9'd0;
                r <= 8'd0;
                ri <= 8'd0;
                si <= 8'd0;
                cycles <= 32'd0;
                state <= S_PRE;
            end
            S_PRE: begin
                px <= 1'b1;
                px_last <= xcb == blk_m1;
                xcb <= xcb == blk_m1 ? 7'd0 : xcb + 7'd1;
                if (xcb == blk_m1) nblk <= nblk + 8'd1;
                xc <= xc + 10'd1;
                if (xc == cols_m1) state <= S_GAP;
            end
            // Wait until every block's pre-pass answer is stored (the stream reads the first
            // one with its first column).
            S_GAP: if (!px && !(xm_valid || wi != nblk)) state <= S_STREAM;
            S_STREAM: begin
                ps <= 1'b1;
                ps_bs <= cb == 7'd0;
                ps_last <= c == cols_m1;
                k <= k + 12'd1;
                if (c == cols_m1) begin
                    c <= 10'd0;
                    cb <= 7'd0;
                    ib <= 7'd0;
                    bk <= bk + 9'd1;
                    r <= r + 8'd1;
                    if (r == rows_m1) state <= S_DRAIN;
                end else begin
                    c <= c + 10'd1;
                    if (cb == blk_m1) begin
                        cb <= 7'd0;
                        ib <= ib + 7'd1;
                        bk <= bk + 9'd1;
                    end else begin
                        cb <= cb + 7'd1;
                    end
                end
            end
            S_DRAIN: if (out_valid && ri == rows_m1) state <= S_SEND_RD;
            S_SEND_RD: state <= S_SEND_LD;  // res_q <= res_mem[si]
            S_SEND_LD: begin
                txw <= res_q;
                nb <= 2'd0;
                tail <= 1'b0;
                state <= S_SEND_TX;
            end
            S_SEND_TX: if (!tx_busy) begin
                txw <= {8'd0, txw[31:8]};
                nb <= nb + 2'd1;
                if (nb == 2'd3) begin
                    if (tail) begin
                        state <= S_IDLE;
                    end else if (si == rows_m1) begin
                        txw <= cycles;
                        tail <= 1'b1;
                    end else begin
                        si <= si + 8'd1;
                        state <= S_SEND_RD;
                    end
                end
            end
            default: ;
        endcase
        if (reset) state <= S_IDLE;
    end

    // ---- tile inputs, registered once more after the memories ----
    reg        t_x_valid = 1'b0, t_x_last = 1'b0;
    reg        t_valid = 1'b0, t_bs = 1'b0, t_last = 1'b0;
    reg [15:0] t_act = 16'd0;
    reg [8:0]  t_info = 9'd0;
    reg [8:0]  t_blk = 9'd0;
    reg [5:0]  t_code = 6'd0;
    reg        t_load_table = 1'b0, t_load_we = 1'b0, t_bias_we = 1'b0, t_mode_we = 1'b0;
    reg [5:0]  t_load_addr = 6'd0;
    reg [7:0]  t_load_data = 8'd0;
    always @(posedge clk) begin
        t_x_valid <= px;
        t_x_last <= px && px_last;
        t_valid <= ps;
        t_bs <= ps && ps_bs;
        t_last <= ps && ps_last;
        t_act <= act_q;
        t_info <= info_q;
        t_blk <= blk_q;
        t_code <= code_q;
        t_load_we <= cmd && f_op == OP_TABLE;
        t_bias_we <= cmd && f_op == OP_BIAS;
        t_mode_we <= cmd && f_op == OP_MODE;
        t_load_table <= f_aux[0];
        t_load_addr <= f_addr[5:0];
        t_load_data <= f_data[7:0];
    end

    // ---- the tile, row 0 ----
    /* verilator lint_off PINCONNECTEMPTY */
    sop_tile_hif8_bf16 tile (
        .clock(clk), .reset(reset),
        .load_table(t_load_table), .load_addr(t_load_addr), .load_data(t_load_data),
        .load_we(t_load_we), .load_bias(t_load_data), .load_bias_we(t_bias_we),
        .load_mode(t_load_data), .load_mode_we(t_mode_we),
        .x_valid(t_x_valid), .x_word(t_act), .x_last(t_x_last),
        .xm_valid(xm_valid), .xm_emax(xm_emax), .xm_nan(xm_nan),
        .valid(t_valid), .block_start(t_bs), .last(t_last), .act(t_act),
        .emax(t_info[7:0]), .nan(t_info[8]),
        .scale_0(t_blk[7:0]), .scale_1(8'd0), .scale_2(8'd0), .scale_3(8'd0),
        .sel_0(t_blk[8]), .sel_1(1'b0), .sel_2(1'b0), .sel_3(1'b0),
        .code_0(t_code), .code_1(6'd0), .code_2(6'd0), .code_3(6'd0),
        .out_valid(out_valid),
        .acc_0(acc_0), .acc_1(), .acc_2(), .acc_3()
    );
    /* verilator lint_on PINCONNECTEMPTY */

    // ---- reply: rows x 4 result bytes, then 4 cycle-count bytes (sop_uart.v) ----
    wire        tx_start = state == S_SEND_TX && !tx_busy;
    sop_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) utx (
        .clk(clk), .start(tx_start), .data(txw[7:0]), .busy(tx_busy), .tx(tx)
    );
    always @(posedge clk) begin
        if (out_valid) led[7:1] <= acc_0[31:25];
        led[0] <= !idle;
    end
endmodule

`default_nettype wire
