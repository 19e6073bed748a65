//! The golden model as a lookup table: every (table, scale code, code) -> output word of one
//! set of tables (and, for an engine, one mode), computed once per table load with
//! `sop_hw::model::decode_word`, so that checking a weight costs one indexed load.

use sop_hw::{decode_word, LaneConfig, Tables};

/// The expected output word of every input combination of one set of tables:
/// `words[((sel * 256 + scale) << code_bits) | code]`, `2 * 256 * 2^code_bits` words
/// (16 Ki for 4-bit codes, 64 Ki for 6-bit codes).
#[derive(Clone, Debug)]
pub struct ProductTable {
    code_bits: u32,
    words: Vec<u16>,
    /// The tables it was computed from (for reports).
    tables: Tables,
}

impl ProductTable {
    /// Computes the table for `tables` in configuration `cfg` with the golden model
    /// (`sop_hw::model::decode_word` for every input).
    pub fn new(cfg: &LaneConfig, tables: &Tables) -> ProductTable {
        let n = 1usize << cfg.code_bits;
        let mut words = vec![0u16; 2 * 256 * n];
        for t in 0..2 {
            for scale in 0..=255u8 {
                let base = (t * 256 + scale as usize) * n;
                for code in 0..n {
                    words[base + code] = decode_word(cfg, tables, t == 1, code as u32, scale);
                }
            }
        }
        ProductTable {
            code_bits: cfg.code_bits,
            words,
            tables: tables.clone(),
        }
    }

    /// Index base of the latched block state `(sel, scale)`; add the code.
    #[inline(always)]
    pub fn base(&self, sel: bool, scale: u8) -> u32 {
        (sel as u32 * 256 + scale as u32) << self.code_bits
    }

    /// The expected word at `base | code` (`base` from [`ProductTable::base`]).
    #[inline(always)]
    pub fn at(&self, index: u32) -> u16 {
        // The length is a power of two: the mask removes the bounds check.
        self.words[index as usize & (self.words.len() - 1)]
    }

    /// The expected word for one weight.
    pub fn word(&self, sel: bool, scale: u8, code: u32) -> u16 {
        self.at(self.base(sel, scale) | (code & ((1 << self.code_bits) - 1)))
    }

    /// Number of entries (`2 * 256 * 2^code_bits`).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false (a table has every input combination).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The tables this was computed from.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The LUT word at `{sel, code}`.
    #[inline(always)]
    pub fn entry(&self, sel: bool, code: u32) -> u32 {
        let e = &self.tables.entries[sel as usize];
        e[code as usize & (e.len() - 1)]
    }
}
