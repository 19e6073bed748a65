//! The rust-hdl description of the decode datapath. Everything rust-hdl-specific lives
//! under this module; the rest of the crate talks to it through [`crate::sim`] and
//! [`crate::emit`] only, so that a later move to another HDL library (rhdl) replaces
//! this module and nothing else.

pub(crate) mod corr;
pub(crate) mod engine;
pub(crate) mod fpacc;
pub(crate) mod lane;
pub(crate) mod mul;
pub(crate) mod npack;
pub(crate) mod pack;
pub(crate) mod prims;
pub(crate) mod tile;
pub(crate) mod tile_conv;
pub(crate) mod top;

#[cfg(test)]
mod tests;

use rust_hdl::prelude::*;

/// A sized constant (`localparam` of width `N`).
pub(crate) fn cb<const N: usize>(v: u64) -> Constant<Bits<N>> {
    assert!(N >= 64 || v < (1u64 << N), "constant {v} does not fit {N} bits");
    Constant::new(v.into())
}

/// The raw rust-hdl Verilog of a [`corr::CorrUnit`] for lane words in format `out` (top
/// module `top`).
pub(crate) fn corr_verilog(out: sop_formats::Ieee16) -> String {
    let mut u = corr::CorrUnit::new(out);
    u.connect_all();
    generate_verilog(&u)
}

/// A 1-bit constant.
pub(crate) fn cbool(v: bool) -> Constant<bool> {
    Constant::new(v)
}
