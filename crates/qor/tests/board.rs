//! The iCE40-HX8K breakout example (`fpga/hx8k/`): lint-clean, simulates correctly
//! through its UART against the golden model (Verilator), and synthesizes, places and
//! routes with its pin constraints at the board clock (Yosys, nextpnr-ice40, icepack).
//! A missing tool fails the test, naming it and its install command.

mod common;

use common::{leds, lint, reply_bytes, root, run_sim};
use sop_qor::board::{place_and_route, BoardFiles, Frame, BOARD_CONFIG, BOARD_MHZ};

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
    lint(&files());
}

use sop_hw::rng::XorShift as Rng;

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
    let bytes: Vec<u8> = frames.iter().flat_map(|f| f.bytes()).collect();
    let out = run_sim(dir.path(), &files(), &[(bytes, 2 * expected.len())], 1 << 20);
    let words: Vec<u16> = reply_bytes(&out)
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(words, expected, "simulation output:\n{out}");
    assert_eq!(leds(&out), (expected.last().unwrap() >> 8) as u8);
}
