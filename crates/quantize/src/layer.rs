//! The quantized layer: everything the decode hardware needs, as plain data.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sop_formats::{Element, Ieee16, LutEntry, OperatingPoint, ScaleFormat, E4M3, UE4M4, UE8M0};

use crate::member::minifloat_of;

/// One lookup table of a layer: a codebook as the hardware stores it.
///
/// Invariants: `words.len() == levels.len() == 2^code_bits`; `levels[i]` is exactly the
/// decoded value of `words[i]` (HIF with `bias`, or FP16); `levels` is sorted ascending
/// (non-decreasing: rounding can make neighbours equal) with `max |level| <= 1` for
/// normalized tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lut {
    /// Which codebook this is (NF4, BOF4, ..., DD4, DD6).
    pub element: Element,
    /// The entry word format: HIF7 (7 bits), HIF8 (8 bits) or FP16 (16 bits).
    pub entry: LutEntry,
    /// The stored entry words, one per code, in code order: a HIF word (low 7 or 8 bits) or
    /// an IEEE binary16 bit pattern.
    pub words: Vec<u16>,
    /// The table's HIF exponent-bias register (8 bits, signed; value =
    /// `(-1)^s 2^(e - bias) m`). 0 and unused for FP16 tables.
    pub bias: i32,
    /// The decoded value of each word (dimensionless, in units of the block scale): exactly
    /// what the hardware LUT outputs, and what the software reference uses when choosing
    /// codes and when dequantizing.
    pub levels: Vec<f32>,
}

impl Lut {
    /// Builds the table by rounding `levels` (normalized, ascending) to the entry format: for
    /// HIF the bias is [`sop_formats::HifFormat::bias_for`] of the largest magnitude (the
    /// finest bias that does not saturate), then each level is HIF-rounded; FP16 rounds RNE.
    pub fn from_levels(element: Element, entry: LutEntry, levels: &[f32]) -> Lut {
        let max_abs = levels.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (bias, words): (i32, Vec<u16>) = match entry.hif() {
            Some(h) => {
                let bias = h.bias_for(max_abs);
                (bias, levels.iter().map(|&v| h.encode(v, bias) as u16).collect())
            }
            None => (0, levels.iter().map(|&v| Ieee16::Fp16.encode(v) as u16).collect()),
        };
        let decoded = words.iter().map(|&w| decode_entry(entry, bias, w)).collect();
        Lut {
            element,
            entry,
            words,
            bias,
            levels: decoded,
        }
    }

    /// Number of entries (`2^code_bits`).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Always `false` for a table built by this crate.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Stored bits: entries times entry width plus the bias register
    /// ([`sop_formats::point::LUT_BIAS_BITS`]).
    pub fn bits(&self) -> u64 {
        self.len() as u64 * self.entry.bits() as u64 + sop_formats::point::LUT_BIAS_BITS
    }
}

/// Decodes one LUT word.
pub fn decode_entry(entry: LutEntry, bias: i32, word: u16) -> f32 {
    match entry.hif() {
        Some(h) => h.decode(word as u32, bias),
        None => Ieee16::Fp16.decode(word as u32),
    }
}

/// A quantized 2-D weight (`rows` = output features, `cols` = input features), laid out like
/// a llama.cpp block struct but unpacked for legibility.
///
/// **Blocks.** Row `r` is cut into `blocks_per_row = ceil(cols / block)` blocks of `block`
/// consecutive weights along the input dimension; the last block of a row is *short*
/// (`cols % block` weights) when `block` does not divide `cols`. Short blocks are not padded
/// in storage: their scale is computed from, and their codes cover, only the real weights
/// (equivalently, they are padded with zeros that are never stored or decoded). Block `k` of
/// row `r` has the flat block index `r * blocks_per_row + k`.
///
/// **Reconstruction** (see [`QuantizedLayer::dequantize`]):
/// `w_hat = tensor_scale * (level * block_scale)`, where `level` is the decoded element
/// (minifloat value or LUT entry) and `level * block_scale` is the exact product the decode
/// lane computes before its output rounding. For `-POT` points there are no blocks:
/// `w_hat = tensor_scale * level` with `tensor_scale = 2^k`. Sparse entries (outliers,
/// residuals) hold values in the lane-output domain, before the tensor scale (see
/// [`crate::sparse`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedLayer {
    /// Name of the source tensor.
    pub name: String,
    /// Output features (rows of W).
    pub rows: usize,
    /// Input features (columns of W).
    pub cols: usize,
    /// The operating point (element(s), scale format, block size, LUT entry format).
    pub point: OperatingPoint,
    /// One code per weight, row-major, `point.code_bits()` wide (4, 6 or 8 bits): the
    /// minifloat bit pattern for minifloat members (sign in the top bit), the LUT index for
    /// codebook members. Which member a block's codes address is given by [`Self::sel`].
    pub codes: Vec<u8>,
    /// Selection bit per block (1 bit, 0 or 1): 0 = the first member (`point`'s element),
    /// 1 = the dynamic member of a pair. All zero for points that are not pairs. Empty for
    /// `-POT` points. For scale formats with a spare bit (E4M3, F32) the hardware carries it
    /// in the scale word's sign bit; it is kept separate here.
    pub sel: Vec<u8>,
    /// Scale word per block (empty for `-POT`), in the low `scale.bits()` bits: a UE4M4,
    /// UE8M0 or E4M3 code (8 bits; E4M3 sign bit 0), an S+E4M3 code (8 bits, sign = bit 7),
    /// or an IEEE binary32 bit pattern for `F32`.
    pub scale_codes: Vec<u32>,
    /// The layer's lookup tables (0, 1 or 2), in selection order: the first member's table
    /// (if it is a codebook) then the dynamic member's table. Use [`Self::table_for`].
    pub tables: Vec<Lut>,
    /// Per-tensor FP32 scale (stored as 32 bits; `2^k` for `-POT`, stored as the 8-bit `k`).
    pub tensor_scale: f32,
    /// Outliers extracted before block scaling (see [`crate::sparse`]), ascending flat index:
    /// the dense codes at these positions quantize 0 and the reconstruction is replaced by
    /// `tensor_scale * v`, `v = bf16(w / tensor_scale)` the stored value (lane-output
    /// domain). Empty unless requested. [`SPARSE_ENTRY_BITS`] bits each.
    #[serde(default)]
    pub outliers: Vec<SparseEntry>,
    /// Sparse residual corrections after quantization, ascending flat index, never at an
    /// outlier position: the stored value `r = bf16(w / tensor_scale - p)` (lane-output
    /// domain, `p` = [`Self::product`]) makes the reconstruction `tensor_scale * f32(p + r)`.
    /// Empty unless requested. [`SPARSE_ENTRY_BITS`] bits each.
    #[serde(default)]
    pub residuals: Vec<SparseEntry>,
}

/// Stored bits of one sparse entry: a 32-bit flat index and a bf16 value.
pub const SPARSE_ENTRY_BITS: u64 = 48;

/// One sparse entry: a flat (row-major) weight index and a bf16 value (bit pattern). The
/// value is in the lane-output domain: the units of [`QuantizedLayer::product`], before the
/// layer's tensor scale (an outlier's weight over the tensor scale, or a residual's correction
/// to the product; see [`crate::sparse`]). Finite in every layer this crate writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseEntry {
    /// Row-major flat index, `r * cols + c`.
    pub index: u32,
    /// The value (lane-output domain) as a bfloat16 bit pattern.
    pub bf16: u16,
}

impl SparseEntry {
    /// The stored value as f32 (exact), in the lane-output domain (before the tensor scale).
    pub fn value(&self) -> f32 {
        f32::from_bits(u32::from(self.bf16) << 16)
    }

    /// Whether the value is finite (the bf16 exponent field is not all ones).
    pub fn is_finite(&self) -> bool {
        self.bf16 & 0x7f80 != 0x7f80
    }
}

impl QuantizedLayer {
    /// Block size (weights per block along the input dimension); 0 for `-POT` points.
    pub fn block(&self) -> usize {
        self.point.block().unwrap_or(0) as usize
    }

    /// Blocks per row, `ceil(cols / block)` (0 for `-POT`).
    pub fn blocks_per_row(&self) -> usize {
        match self.block() {
            0 => 0,
            b => self.cols.div_ceil(b),
        }
    }

    /// Total number of blocks, `rows * blocks_per_row`.
    pub fn num_blocks(&self) -> usize {
        self.rows * self.blocks_per_row()
    }

    /// Flat block index of weight `(r, c)`; `None` for `-POT`.
    pub fn block_of(&self, r: usize, c: usize) -> Option<usize> {
        match self.block() {
            0 => None,
            b => Some(r * self.blocks_per_row() + c / b),
        }
    }

    /// Exact stored bits ([`OperatingPoint::layer_bits`]: codes, scale words, selection bits,
    /// tensor scale, LUT entries and bias registers).
    /// Plus [`SPARSE_ENTRY_BITS`] per outlier and residual entry.
    pub fn bits(&self) -> u64 {
        self.dense_bits() + SPARSE_ENTRY_BITS * self.sparse_entries() as u64
    }

    /// Outlier plus residual entries: what a sparse correction stream would carry (0 for a
    /// dense layer).
    pub fn sparse_entries(&self) -> usize {
        self.outliers.len() + self.residuals.len()
    }

    /// Stored bits of the dense part only (what the decode hardware reads).
    pub fn dense_bits(&self) -> u64 {
        self.point.layer_bits(self.rows as u64, self.cols as u64)
    }

    /// Exact bits per weight, [`Self::bits`] / (rows * cols).
    pub fn bpw(&self) -> f64 {
        self.bits() as f64 / (self.rows * self.cols).max(1) as f64
    }

    /// The LUT addressed with selection bit `sel`, or `None` when that member is a minifloat
    /// (decoded by its format) or does not exist.
    pub fn table_for(&self, sel: u8) -> Option<&Lut> {
        let OperatingPoint::Block { element, dynamic, .. } = self.point else {
            return None;
        };
        match sel {
            0 if element.is_codebook() => self.tables.first(),
            1 if dynamic.is_some() => self.tables.last(),
            _ => None,
        }
    }

    /// Decoded element value of `code` under selection bit `sel` (a LUT entry or a minifloat
    /// value, before the block scale); NaN for a code or selection the layer cannot hold.
    pub fn level(&self, sel: u8, code: u8) -> f32 {
        if let Some(t) = self.table_for(sel) {
            return t.levels.get(code as usize).copied().unwrap_or(f32::NAN);
        }
        let element = match self.point {
            OperatingPoint::Pot { element } | OperatingPoint::Block { element, .. } => element,
        };
        match minifloat_of(element) {
            Some(m) if sel == 0 && (code as u32) < m.num_codes() => m.decode(code as u32),
            _ => f32::NAN,
        }
    }

    /// Decoded block scale of block `b` (the value of its scale word; signed for S+E4M3).
    pub fn block_scale(&self, b: usize) -> f32 {
        match self.point {
            OperatingPoint::Pot { .. } => 1.0,
            OperatingPoint::Block { scale, .. } => decode_scale(scale, self.scale_codes[b]),
        }
    }

    /// `level * block_scale` of weight `(r, c)`: the product the decode lane computes before
    /// rounding to its output format. Exact in f32 for the 8-bit scale formats (a minifloat,
    /// HIF or FP16 level has at most 11 significant bits, an 8-bit scale at most 5), unless it
    /// falls below f32's normal range (only with UE8M0 codes far below 1); an f32 product
    /// (RNE) for `F32` scales. For `-POT`, the level itself.
    pub fn product(&self, r: usize, c: usize) -> f32 {
        let i = r * self.cols + c;
        match self.block_of(r, c) {
            None => self.level(0, self.codes[i]),
            Some(b) => self.level(self.sel[b], self.codes[i]) * self.block_scale(b),
        }
    }

    /// Reconstructed weights, row-major: `tensor_scale * (level * block_scale)` in f32, the
    /// inner product exact (see [`Self::product`]) and the outer one rounded to nearest even.
    /// Sparse entries hold lane-output values (before the tensor scale `t`): an outlier `v`
    /// makes its position `t * v`; a residual `r` makes its position `t * f32(p + r)` with
    /// `p` = [`Self::product`] (the sum rounded to f32, then the product with `t`, both RNE;
    /// the hardware's correction unit rounds `p + r` in its output format instead). Files
    /// never hold a residual at an outlier position (the reader refuses it); if one did, the
    /// residual would override the outlier.
    /// Deterministic and independent of the thread count.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        let cols = self.cols;
        let t = self.tensor_scale;
        let bpr = self.blocks_per_row();
        let block = self.block();
        // Per-selection decode tables (256 entries each) so the loop does no dispatch.
        let dec: [Vec<f32>; 2] = [0u8, 1].map(|s| (0..=255u8).map(|c| self.level(s, c)).collect());
        out.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
            let codes = &self.codes[r * cols..(r + 1) * cols];
            if block == 0 {
                for (o, &c) in row.iter_mut().zip(codes) {
                    *o = t * dec[0][c as usize];
                }
                return;
            }
            for k in 0..bpr {
                let b = r * bpr + k;
                let s = self.block_scale(b);
                let d = &dec[self.sel[b] as usize];
                let range = k * block..((k + 1) * block).min(cols);
                for (o, &c) in row[range.clone()].iter_mut().zip(&codes[range]) {
                    *o = t * (d[c as usize] * s);
                }
            }
        });
        for o in &self.outliers {
            out[o.index as usize] = t * o.value();
        }
        for e in &self.residuals {
            let i = e.index as usize;
            out[i] = t * (self.product(i / cols, i % cols) + e.value());
        }
        out
    }

    /// The codes packed LSB-first, `code_bits` each ([`sop_formats::pack::pack`]).
    pub fn packed_codes(&self) -> Vec<u8> {
        sop_formats::pack::pack(&self.codes, self.point.code_bits()).expect("codes fit their width")
    }
}

/// Value of a scale word in `format` (signed for S+E4M3; the f32 bit pattern for `F32`).
pub fn decode_scale(format: ScaleFormat, code: u32) -> f32 {
    match format {
        ScaleFormat::UE4M4 => UE4M4.decode(code),
        ScaleFormat::UE8M0 => UE8M0.decode(code),
        ScaleFormat::E4M3 | ScaleFormat::SE4M3 => E4M3.decode(code),
        ScaleFormat::F32 => f32::from_bits(code),
    }
}
