// sop_uart.v -- the 8N1 UART receiver and transmitter shared by the iCE40-HX8K breakout
// examples (sop_hx8k_uart.v: a decode lane; sop_hx8k_tile.v: the dot-product tile).
//
// Both run in their board top's clock domain. CLKS_PER_BIT is the bit period in clock cycles
// (at most 255; 12 MHz / 115200 baud = 104, 18 MHz / 115200 = 156). The receiver samples each bit in its middle (half a bit
// after the falling start edge, then every bit period) after a two-flip-flop synchronizer;
// a start bit that is high again at its middle is a glitch and ignored, a byte whose stop
// bit is low is dropped (framing error). Bits are sent and received least significant first.
// sop_uart_frames assembles the received bytes into the examples' 5-byte host frames.

`default_nettype none
/* verilator lint_off DECLFILENAME */

module sop_uart_rx #(
    parameter integer CLKS_PER_BIT = 104
) (
    input  wire       clk,
    input  wire       rx,       // line (idle high)
    output reg        valid,    // one cycle with each received byte
    output reg  [7:0] data
);
    localparam integer HALF = CLKS_PER_BIT / 2;
    localparam integer LAST = CLKS_PER_BIT - 1;
    localparam [7:0] HALF_BIT = HALF[7:0];
    localparam [7:0] BIT_LAST = LAST[7:0];

    reg [1:0] sync = 2'b11;
    always @(posedge clk) sync <= {sync[0], rx};
    wire in = sync[1];

    reg [7:0] cnt = 8'd0;
    reg [3:0] bitn = 4'd0;
    reg [7:0] shift = 8'd0;
    reg       busy = 1'b0;
    initial valid = 1'b0;
    initial data = 8'd0;
    always @(posedge clk) begin
        valid <= 1'b0;
        if (!busy) begin
            if (!in) begin
                busy <= 1'b1;
                cnt <= HALF_BIT;
                bitn <= 4'd0;
            end
        end else if (cnt != 8'd0) begin
            cnt <= cnt - 8'd1;
        end else begin
            cnt <= BIT_LAST;
            if (bitn == 4'd0) begin
                if (in) busy <= 1'b0;              // glitch, not a start bit
                bitn <= 4'd1;
            end else if (bitn <= 4'd8) begin
                shift <= {in, shift[7:1]};
                bitn <= bitn + 4'd1;
            end else begin                         // stop bit
                busy <= 1'b0;
                if (in) begin
                    valid <= 1'b1;
                    data <= shift;
                end
            end
        end
    end
endmodule

module sop_uart_tx #(
    parameter integer CLKS_PER_BIT = 104
) (
    input  wire       clk,
    input  wire       start,    // send `data` (taken only when !busy)
    input  wire [7:0] data,
    output wire       busy,     // a byte is being sent
    output wire       tx        // line (idle high)
);
    localparam integer LAST = CLKS_PER_BIT - 1;
    localparam [7:0] BIT_LAST = LAST[7:0];

    reg [9:0] shift = 10'h3ff;
    reg [3:0] left = 4'd0;
    reg [7:0] cnt = 8'd0;
    assign tx = shift[0];
    assign busy = left != 4'd0;
    always @(posedge clk) begin
        if (busy) begin
            if (cnt != 8'd0) begin
                cnt <= cnt - 8'd1;
            end else begin
                cnt <= BIT_LAST;
                shift <= {1'b1, shift[9:1]};
                left <= left - 4'd1;
            end
        end else if (start) begin
            shift <= {1'b1, data, 1'b0};
            left <= 4'd10;
            cnt <= BIT_LAST;
        end
    end
endmodule

// Host frames: 5 bytes, least significant first, form a 40-bit `frame`, presented with
// `fire` for one cycle after the fifth byte. A pause of more than 2^16 clock cycles (5.5 ms
// at 12 MHz, 3.6 ms at 18 MHz) inside a frame drops the partial frame, so a host
// resynchronizes by waiting 10 ms.
module sop_uart_frames #(
    parameter integer CLKS_PER_BIT = 104
) (
    input  wire        clk,
    input  wire        rx,
    output reg         fire,    // one cycle: `frame` is complete
    output reg  [39:0] frame
);
    wire       rx_valid;
    wire [7:0] rx_byte;
    sop_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) urx (
        .clk(clk), .rx(rx), .valid(rx_valid), .data(rx_byte)
    );

    reg [2:0]  nbytes = 3'd0;
    reg [15:0] idle = 16'd0;
    initial fire = 1'b0;
    initial frame = 40'd0;
    always @(posedge clk) begin
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
endmodule
/* verilator lint_on DECLFILENAME */

`default_nettype wire
