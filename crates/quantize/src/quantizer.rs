//! The quantizer: an operating point prepared once ([`Quantizer::new`]), applied to layers
//! ([`Quantizer::quantize`]). The decisions are documented in `docs/quantizer.md`.

use std::borrow::Cow;

use rayon::prelude::*;
use sop_formats::{Element, LutEntry, OperatingPoint, ScaleFormat};

use crate::dd::{self, Hist};
use crate::error::QuantError;
use crate::layer::{Lut, QuantizedLayer};
use crate::member::{base_levels, minifloat_of, table_member, Member, MiniMember, TableMember, LANES};
use crate::scale::{pot_exponent, tensor_scale, ScaleCodec, MAX_CANDIDATES, MAX_RADIUS};

/// Weights per parallel work unit: a layer is processed in chunks of
/// `max(1, CHUNK_WEIGHTS / cols)` whole rows. The chunking depends only on the shape, so every
/// per-chunk partial sum, and therefore every result, is independent of the thread count.
pub const CHUNK_WEIGHTS: usize = 32_768;

/// Tuning of the quantizer. The defaults are the documented reference settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantOptions {
    /// Scale codes tried on each side of a block's starting (absmax) code; 0 disables the
    /// search. At most [`MAX_RADIUS`]. Default 2 (five candidates).
    pub search_radius: u32,
    /// EM rounds of the data-driven member (assign blocks, refit the table on the blocks it
    /// serves). Default 4.
    pub em_rounds: u32,
    /// Scale search radius used inside the EM rounds (the final assignment always uses
    /// `search_radius`). Default 0: the rounds compare both members at their starting codes.
    pub em_search_radius: u32,
    /// HIF LUT entries with 8-bit block scales only: choose each table's top level per layer,
    /// by the layer's weighted error, among the HIF mantissas [`TABLE_TOPS`] (the fixed table
    /// is prescaled, the data-driven table's extremes sit there). The HIF grid is coarse and not scale
    /// invariant, so where a table's levels fall on it matters; an FP16 LUT is unaffected.
    /// Default on; off keeps every table normalized to a top level of 1.
    pub table_search: bool,
}

/// Top levels tried per table by [`QuantOptions::table_search`]: the HIF mantissas
/// `{1, 1.125, 1.25, 1.5, 1.75, 1.875}` (`MANT_EIGHTHS / 8`), each exactly representable so
/// that a block's extreme weight can be reproduced exactly. The first is the untouched table.
pub const TABLE_TOPS: [f32; 6] = [1.0, 1.125, 1.25, 1.5, 1.75, 1.875];

/// Weights the table search quantizes per candidate: it ranks the tops on every
/// `max(1, rows * cols / SEARCH_SAMPLE)`-th row, each block at its starting scale code,
/// then quantizes the whole layer once (with the scale search).
pub const SEARCH_SAMPLE: usize = 65_536;

impl Default for QuantOptions {
    fn default() -> Self {
        Self {
            search_radius: 2,
            em_rounds: 4,
            em_search_radius: 0,
            table_search: true,
        }
    }
}

/// A borrowed 2-D weight: `rows` (output features) x `cols` (input features), row-major.
#[derive(Clone, Copy, Debug)]
pub struct LayerRef<'a> {
    /// Tensor name (used in errors and copied into the result).
    pub name: &'a str,
    /// Output features.
    pub rows: usize,
    /// Input features.
    pub cols: usize,
    /// `rows * cols` finite values, row-major.
    pub data: &'a [f32],
}

/// The first member of a point, prepared.
#[derive(Clone, Debug)]
enum First {
    /// A minifloat decoded by its format.
    Mini(MiniMember),
    /// A fixed codebook in a LUT.
    /// One prepared table per top level tried ([`TABLE_TOPS`]; a single one without the
    /// table search); the first is the table as defined.
    Table(Vec<(TableMember, Lut)>),
    /// The point's element is itself data-driven (`DD4sUE4M4`): fitted per layer.
    Dynamic,
}

/// The data-driven member's fixed parameters.
#[derive(Clone, Debug)]
struct DynSpec {
    element: Element,
    entry: LutEntry,
    /// HIF bias of the table (normalized levels: `bias_for(1)`); unused for FP16.
    bias: i32,
    /// Normalized starting levels (unrounded).
    init: Vec<f32>,
    /// Levels the fit never moves: `-top, 0, +top` (unsigned scales) or `0, +top` (signed).
    fixed: Vec<f32>,
    /// The table's top level (`1`, or one of [`TABLE_TOPS`]): the starting scale of a block
    /// maps its extreme weight there.
    top: f32,
}

/// An operating point prepared for quantizing layers: fixed tables built (and rounded to the
/// LUT entry format) once, options validated. Cheap to share between threads.
#[derive(Clone, Debug)]
pub struct Quantizer {
    point: OperatingPoint,
    opts: QuantOptions,
    codec: Option<ScaleCodec>,
    first: First,
    /// The data-driven member, one spec per top level tried (first: top 1).
    dynamic: Option<Vec<DynSpec>>,
}

impl Quantizer {
    /// Prepares `point`. Errors: options out of range, a `-POT` point with a non-minifloat or
    /// an element without subnormals, a pair whose dynamic member is not DD4/DD6.
    pub fn new(point: OperatingPoint, opts: QuantOptions) -> Result<Quantizer, QuantError> {
        let unsupported = |reason: String| QuantError::Unsupported {
            point: point.to_string(),
            reason,
        };
        if opts.search_radius > MAX_RADIUS || opts.em_search_radius > MAX_RADIUS {
            return Err(unsupported(format!("scale search radius must be at most {MAX_RADIUS}")));
        }
        match point {
            OperatingPoint::Pot { element } => {
                let m = minifloat_of(element)
                    .and_then(MiniMember::new)
                    .ok_or_else(|| unsupported("-POT needs a minifloat element".into()))?;
                Ok(Quantizer {
                    point,
                    opts,
                    codec: None,
                    first: First::Mini(m),
                    dynamic: None,
                })
            }
            OperatingPoint::Block {
                element,
                dynamic,
                scale,
                block,
                lut,
            } => {
                let signed = scale.is_signed();
                // F32 scales store the block absmax by definition (bitsandbytes-like): no search.
                let tops: &[f32] = if lut.hif().is_some() && opts.table_search && scale != ScaleFormat::F32 {
                    &TABLE_TOPS
                } else {
                    &TABLE_TOPS[..1]
                };
                let dyn_spec = |e: Element, top: f32| DynSpec {
                    element: e,
                    entry: lut,
                    bias: lut.hif().map(|h| h.bias_for(top)).unwrap_or(0),
                    init: base_levels(e, block, signed).iter().map(|v| v * top).collect(),
                    fixed: if signed { vec![0.0, top] } else { vec![-top, 0.0, top] },
                    top,
                };
                let first = if let Some(m) = minifloat_of(element) {
                    First::Mini(MiniMember::new(m).ok_or_else(|| unsupported(format!("{} has no subnormals", m.name)))?)
                } else if element.is_dynamic() {
                    First::Dynamic
                } else {
                    let base = base_levels(element, block, signed);
                    First::Table(
                        tops.iter()
                            .map(|&top| {
                                let scaled: Vec<f32> = base.iter().map(|v| v * top).collect();
                                let lut = Lut::from_levels(element, lut, &scaled);
                                (table_member(&lut), lut)
                            })
                            .collect(),
                    )
                };
                let all = |e: Element| tops.iter().map(|&t| dyn_spec(e, t)).collect::<Vec<_>>();
                let dynamic = match (&first, dynamic) {
                    (First::Dynamic, None) => Some(all(element)),
                    (First::Dynamic, Some(_)) => return Err(unsupported("a pair's first member must be fixed".into())),
                    (_, Some(d)) if d.is_dynamic() => Some(all(d)),
                    (_, Some(d)) => return Err(unsupported(format!("{} cannot be the dynamic member", d.name()))),
                    (_, None) => None,
                };
                Ok(Quantizer {
                    point,
                    opts,
                    codec: Some(ScaleCodec::new(scale)),
                    first,
                    dynamic,
                })
            }
        }
    }

    /// The operating point.
    pub fn point(&self) -> OperatingPoint {
        self.point
    }

    /// The options.
    pub fn options(&self) -> QuantOptions {
        self.opts
    }

    /// Quantizes one layer. `col_weights` are the per-input-column importances `a_j`
    /// (length `cols`, finite, `>= 0`; `None` = all ones), weighting the squared error that
    /// the scale search, the pair selection and the DD fit minimize.
    ///
    /// Errors: empty tensor, `data.len() != rows * cols`, a NaN/Inf weight (named by tensor,
    /// flat index, row and column), bad column weights. Deterministic: the result does not
    /// depend on the number of rayon threads.
    pub fn quantize(&self, w: LayerRef<'_>, col_weights: Option<&[f32]>) -> Result<QuantizedLayer, QuantError> {
        validate(&w)?;
        let ones;
        let a: &[f32] = match col_weights {
            Some(a) => {
                let bad = |reason: String| QuantError::ColumnWeights {
                    tensor: w.name.to_string(),
                    reason,
                };
                if a.len() != w.cols {
                    return Err(bad(format!("{} weights for {} columns", a.len(), w.cols)));
                }
                if let Some(j) = a.iter().position(|v| !v.is_finite() || *v < 0.0) {
                    return Err(bad(format!("weight {} of column {j} is negative or not finite", a[j])));
                }
                a
            }
            None => {
                ones = vec![1.0f32; w.cols];
                &ones
            }
        };
        let amax = w
            .data
            .par_chunks(CHUNK_WEIGHTS)
            .map(|c| c.iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .reduce(|| 0.0, f32::max);
        match self.point {
            OperatingPoint::Pot { element } => Ok(self.quantize_pot(&w, element, amax)),
            OperatingPoint::Block { block, .. } => Ok(self.quantize_block(&w, a, block as usize, amax)),
        }
    }

    fn quantize_pot(&self, w: &LayerRef<'_>, element: Element, amax: f32) -> QuantizedLayer {
        let First::Mini(m) = &self.first else {
            unreachable!("-POT points have a minifloat member")
        };
        let k = pot_exponent(amax, m.elem_max());
        let t = pow2(k);
        let mut codes = vec![0u8; w.data.len()];
        codes
            .par_chunks_mut(CHUNK_WEIGHTS)
            .zip(w.data.par_chunks(CHUNK_WEIGHTS))
            .for_each(|(c, d)| {
                for (c, &x) in c.iter_mut().zip(d) {
                    *c = m.encode(x / t);
                }
            });
        let _ = element;
        QuantizedLayer {
            name: w.name.to_string(),
            rows: w.rows,
            cols: w.cols,
            point: self.point,
            codes,
            sel: Vec::new(),
            scale_codes: Vec::new(),
            tables: Vec::new(),
            tensor_scale: t,
            outliers: Vec::new(),
            residuals: Vec::new(),
        }
    }

    fn quantize_block(&self, w: &LayerRef<'_>, a: &[f32], block: usize, amax: f32) -> QuantizedLayer {
        let codec = self.codec.as_ref().expect("block points have a scale codec");
        let first_max = match &self.first {
            First::Mini(m) => m.elem_max(),
            First::Table(t) => t[0].0.elem_max(),
            First::Dynamic => 1.0,
        };
        let elem_max = if self.dynamic.is_some() {
            first_max.min(1.0)
        } else {
            first_max
        };
        let t = tensor_scale(codec, amax, elem_max);
        let u: Cow<[f32]> = if t == 1.0 {
            Cow::Borrowed(w.data)
        } else {
            let mut u = vec![0.0f32; w.data.len()];
            u.par_chunks_mut(CHUNK_WEIGHTS)
                .zip(w.data.par_chunks(CHUNK_WEIGHTS))
                .for_each(|(u, d)| {
                    for (u, &x) in u.iter_mut().zip(d) {
                        *u = x / t;
                    }
                });
            Cow::Owned(u)
        };
        let ctx = Ctx::new(&u, a, w.rows, w.cols, block, codec);
        // One candidate per (fixed table, data-driven spec); the table search tries the fixed
        // table's tops first (data-driven top 1), then the data-driven tops with the best
        // fixed table, and keeps the lowest weighted error (ties: the earlier candidate).
        let run = |ctx: &Ctx<'_>, fi: usize, di: usize, opts: &QuantOptions| -> Candidate {
            let n = ctx.n_blocks;
            match (&self.first, &self.dynamic) {
                (First::Mini(m), None) => {
                    let (c, s) = ctx.single(m, self.radius(m, opts));
                    (c, s, vec![0; n], Vec::new())
                }
                (First::Table(t), None) => {
                    let (m, lut) = &t[fi];
                    let (c, s) = ctx.single(m, self.radius(m, opts));
                    (c, s, vec![0; n], vec![lut.clone()])
                }
                (First::Dynamic, Some(d)) => {
                    let (c, s, _, dl) = ctx.with_dynamic::<MiniMember>(None, &d[di], opts);
                    (c, s, vec![0; n], vec![dl])
                }
                (First::Mini(m), Some(d)) => {
                    let (c, s, sel, dl) = ctx.with_dynamic(Some((m, self.radius(m, opts))), &d[di], opts);
                    (c, s, sel, vec![dl])
                }
                (First::Table(t), Some(d)) => {
                    let (m, lut) = &t[fi];
                    let (c, s, sel, dl) = ctx.with_dynamic(Some((m, self.radius(m, opts))), &d[di], opts);
                    (c, s, sel, vec![lut.clone(), dl])
                }
                (First::Dynamic, None) => unreachable!("a dynamic element always has a DynSpec"),
            }
        };
        // The search needs every selection to be a table (a minifloat first member has none).
        let (n_fixed, n_dyn) = match &self.first {
            First::Mini(_) => (1, 1),
            First::Table(t) => (t.len(), self.dynamic.as_ref().map_or(1, Vec::len)),
            First::Dynamic => (1, self.dynamic.as_ref().map_or(1, Vec::len)),
        };
        let best = if n_fixed > 1 || n_dyn > 1 {
            // Choose on an evenly spaced subset of rows (about SEARCH_SAMPLE weights), then
            // quantize the whole layer once with the chosen tables.
            let stride = (w.rows * w.cols / SEARCH_SAMPLE).clamp(1, w.rows);
            let (sub_u, sub_rows): (Cow<[f32]>, usize) = if stride == 1 {
                (Cow::Borrowed(&u[..]), w.rows)
            } else {
                let rows: Vec<usize> = (0..w.rows).step_by(stride).collect();
                let mut v = Vec::with_capacity(rows.len() * w.cols);
                for &r in &rows {
                    v.extend_from_slice(&u[r * w.cols..(r + 1) * w.cols]);
                }
                (Cow::Owned(v), rows.len())
            };
            let sub = Ctx::new(&sub_u, a, sub_rows, w.cols, block, codec);
            // Candidates are ranked at their blocks' starting scale codes (no scale search: a
            // fifth of the work); the chosen tables then get the full search on every row.
            let probe = QuantOptions {
                search_radius: 0,
                ..self.opts
            };
            // The candidates of each phase run in parallel: a sample is only a few parallel
            // chunks, so one candidate alone would leave cores idle. The choice is the first
            // lowest error in candidate order, whatever the thread count.
            let first_min = |errs: &[f64]| {
                errs.iter()
                    .enumerate()
                    .fold(0, |b, (i, e)| if *e < errs[b] { i } else { b })
            };
            let fixed_errs: Vec<f64> = (0..n_fixed)
                .into_par_iter()
                .map(|fi| sub.error(&run(&sub, fi, 0, &probe)))
                .collect();
            let fi = first_min(&fixed_errs);
            let mut dyn_errs = vec![fixed_errs[fi]];
            dyn_errs.par_extend(
                (1..n_dyn)
                    .into_par_iter()
                    .map(|di| sub.error(&run(&sub, fi, di, &probe))),
            );
            run(&ctx, fi, first_min(&dyn_errs), &self.opts)
        } else {
            run(&ctx, 0, 0, &self.opts)
        };
        let (codes, scale_codes, sel, tables) = best;
        QuantizedLayer {
            name: w.name.to_string(),
            rows: w.rows,
            cols: w.cols,
            point: self.point,
            codes,
            sel,
            scale_codes,
            tables,
            tensor_scale: t,
            outliers: Vec::new(),
            residuals: Vec::new(),
        }
    }

    /// Search radius for a member under this point's scale format and `opts`.
    fn radius<M: Member>(&self, m: &M, opts: &QuantOptions) -> u32 {
        let codec = self.codec.as_ref().expect("block point");
        if codec.searchable(m.is_minifloat()) {
            opts.search_radius
        } else {
            0
        }
    }
}

fn validate(w: &LayerRef<'_>) -> Result<(), QuantError> {
    if w.rows == 0 || w.cols == 0 {
        return Err(QuantError::Empty {
            tensor: w.name.to_string(),
            rows: w.rows,
            cols: w.cols,
        });
    }
    if w.rows.checked_mul(w.cols) != Some(w.data.len()) {
        return Err(QuantError::Shape {
            tensor: w.name.to_string(),
            rows: w.rows,
            cols: w.cols,
            len: w.data.len(),
        });
    }
    if let Some(index) = w.data.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite {
            tensor: w.name.to_string(),
            index,
            row: index / w.cols,
            col: index % w.cols,
            value: w.data[index],
        });
    }
    Ok(())
}

/// `2^k` as an f32 for `-149 <= k <= 127`, exactly.
fn pow2(k: i32) -> f32 {
    if k >= -126 {
        f32::from_bits(((k + 127) as u32) << 23)
    } else {
        f32::from_bits(1u32 << (k + 149))
    }
}

/// Largest magnitude of a block and its largest-magnitude value with sign (the first such
/// weight on ties). The maximum is an integer maximum over the magnitude bit patterns (their
/// order is the value order), which vectorizes.
#[inline]
fn extremes(u: &[f32]) -> (f32, f32) {
    let abits = u.iter().fold(0u32, |m, x| m.max(x.to_bits() & 0x7fff_ffff));
    let smax = u
        .iter()
        .copied()
        .find(|x| x.to_bits() & 0x7fff_ffff == abits)
        .unwrap_or(0.0);
    (f32::from_bits(abits), smax)
}

/// Weighted squared error `sum a_j (u_j - s * round(u_j / s))^2` of one block under scale
/// `s`; with `s == 0` every weight reconstructs to 0. The terms are f64 and accumulated in
/// [`LANES`] partial sums by position (`j % LANES`), added in lane order at the end: a fixed
/// order, so the value is deterministic, and the loop vectorizes.
#[inline]
fn block_error<M: Member>(m: &M, u: &[f32], a: &[f32], s: f32) -> f64 {
    let mut acc = [0.0f64; LANES];
    let sd = s as f64;
    let zero = s == 0.0;
    for (uc, ac) in u.chunks(LANES).zip(a.chunks(LANES)) {
        let mut x = [0.0f32; LANES];
        let mut w = [0.0f32; LANES];
        x[..uc.len()].copy_from_slice(uc);
        w[..ac.len()].copy_from_slice(ac);
        let mut q = [0.0f32; LANES];
        if !zero {
            for l in 0..LANES {
                q[l] = x[l] / s;
            }
            m.round_lanes(&mut q);
        }
        for l in 0..LANES {
            let d = x[l] as f64 - q[l] as f64 * sd;
            acc[l] += w[l] as f64 * (d * d);
        }
    }
    acc.iter().sum()
}

/// Writes the codes of one block under scale `s` (the member's zero code when `s == 0`).
#[inline]
fn block_codes<M: Member>(m: &M, u: &[f32], s: f32, out: &mut [u8]) {
    if s == 0.0 {
        let z = m.encode(0.0);
        out.fill(z);
        return;
    }
    for (oc, uc) in out.chunks_mut(LANES).zip(u.chunks(LANES)) {
        let mut x = [0.0f32; LANES];
        for (x, &u) in x.iter_mut().zip(uc) {
            *x = u / s;
        }
        let mut codes = [0u8; LANES];
        m.encode_lanes(&x, &mut codes);
        oc.copy_from_slice(&codes[..oc.len()]);
    }
}

/// Outcome of a block's scale search.
#[derive(Clone, Copy, Debug)]
struct Found {
    /// Best scale word over the full radius.
    code: u32,
    /// Its error.
    err: f64,
    /// Best error among the candidates within the EM radius.
    em_err: f64,
}

/// Searches the scale codes around the starting code; strict improvement is required to
/// leave an earlier candidate, so ties go to the starting code, then the smaller one.
#[inline]
fn search<M: Member>(m: &M, codec: &ScaleCodec, u: &[f32], a: &[f32], radius: u32, em_radius: u32) -> Found {
    let (amax, smax) = extremes(u);
    let base = codec.base_code(amax, smax, m.elem_max());
    let mut cands = [(0u32, 0u32); MAX_CANDIDATES];
    let n = codec.candidates(base, radius.max(em_radius), &mut cands);
    let mut best = Found {
        code: base,
        err: f64::INFINITY,
        em_err: f64::INFINITY,
    };
    for &(code, dist) in &cands[..n] {
        let e = block_error(m, u, a, codec.decode(code));
        if dist <= radius && e < best.err {
            best.code = code;
            best.err = e;
        }
        if dist <= em_radius && e < best.em_err {
            best.em_err = e;
        }
    }
    best
}

/// One quantization of a layer: codes, scale words, selection bits, tables.
type Candidate = (Vec<u8>, Vec<u32>, Vec<u8>, Vec<Lut>);

/// Per-block state of a point with a data-driven member.
#[derive(Clone, Copy, Debug)]
struct BlockState {
    /// The first (fixed) member's best scale word and error (full radius), and its best error
    /// within the EM radius; +inf when there is no fixed member.
    f_code: u32,
    f_err: f64,
    f_em_err: f64,
}

/// Shape and inputs of one layer being quantized.
struct Ctx<'a> {
    u: &'a [f32],
    a: &'a [f32],
    cols: usize,
    block: usize,
    bpr: usize,
    n_blocks: usize,
    /// Rows per parallel chunk.
    chunk_rows: usize,
    codec: &'a ScaleCodec,
}

impl<'a> Ctx<'a> {
    fn new(u: &'a [f32], a: &'a [f32], rows: usize, cols: usize, block: usize, codec: &'a ScaleCodec) -> Self {
        let bpr = cols.div_ceil(block);
        Self {
            u,
            a,
            cols,
            block,
            bpr,
            n_blocks: rows * bpr,
            chunk_rows: (CHUNK_WEIGHTS / cols).max(1),
            codec,
        }
    }

    /// The column range of block `k` of a row (short at the end of the row).
    #[inline]
    fn range(&self, k: usize) -> std::ops::Range<usize> {
        k * self.block..((k + 1) * self.block).min(self.cols)
    }

    /// Weighted squared error `sum a_j (u - level * scale)^2` of a candidate (normalized
    /// units): per-chunk sums in block order, added in chunk order, so the value does not
    /// depend on the thread count.
    fn error(&self, (codes, scales, sel, tables): &Candidate) -> f64 {
        let (cols, bpr) = (self.cols, self.bpr);
        let parts: Vec<f64> = codes
            .par_chunks(self.chunk_rows * cols)
            .enumerate()
            .map(|(ci, crows)| {
                let row0 = ci * self.chunk_rows;
                let mut sum = 0.0f64;
                for (i, crow) in crows.chunks(cols).enumerate() {
                    let r = row0 + i;
                    let urow = &self.u[r * cols..(r + 1) * cols];
                    for k in 0..bpr {
                        let b = r * bpr + k;
                        let levels = &tables[sel[b] as usize].levels;
                        let s = self.codec.decode(scales[b]);
                        let range = self.range(k);
                        for ((&u, &c), &a) in urow[range.clone()].iter().zip(&crow[range.clone()]).zip(&self.a[range]) {
                            let e = (u - levels[c as usize] * s) as f64;
                            sum += a as f64 * e * e;
                        }
                    }
                }
                sum
            })
            .collect();
        parts.iter().sum()
    }

    /// Single member: search every block, write scale words and codes.
    fn single<M: Member>(&self, m: &M, radius: u32) -> (Vec<u8>, Vec<u32>) {
        let mut codes = vec![0u8; self.u.len()];
        let mut scales = vec![0u32; self.n_blocks];
        let (cols, bpr) = (self.cols, self.bpr);
        codes
            .par_chunks_mut(self.chunk_rows * cols)
            .zip(scales.par_chunks_mut(self.chunk_rows * bpr))
            .enumerate()
            .for_each(|(ci, (codes, scales))| {
                let row0 = ci * self.chunk_rows;
                for (i, (crow, srow)) in codes.chunks_mut(cols).zip(scales.chunks_mut(bpr)).enumerate() {
                    let urow = &self.u[(row0 + i) * cols..(row0 + i + 1) * cols];
                    for (k, sc) in srow.iter_mut().enumerate() {
                        let r = self.range(k);
                        let (ub, ab) = (&urow[r.clone()], &self.a[r.clone()]);
                        let code = if radius == 0 {
                            let (amax, smax) = extremes(ub);
                            self.codec.base_code(amax, smax, m.elem_max())
                        } else {
                            search(m, self.codec, ub, ab, radius, 0).code
                        };
                        *sc = code;
                        block_codes(m, ub, self.codec.decode(code), &mut crow[r]);
                    }
                }
            });
        (codes, scales)
    }

    /// Runs `f(block_index_in_chunk, row_u, block_range, state, codes_of_block)` over every
    /// block, chunk-parallel, and returns one histogram per chunk in chunk order, each built
    /// in block order: a deterministic reduction.
    fn pass<F>(&self, states: &mut [BlockState], codes: &mut [u8], f: F) -> Hist
    where
        F: Fn(&[f32], std::ops::Range<usize>, &mut BlockState, &mut [u8], &mut Hist) + Sync,
    {
        let (cols, bpr) = (self.cols, self.bpr);
        let hists: Vec<Hist> = codes
            .par_chunks_mut(self.chunk_rows * cols)
            .zip(states.par_chunks_mut(self.chunk_rows * bpr))
            .enumerate()
            .map(|(ci, (codes, states))| {
                let mut h = Hist::new();
                let row0 = ci * self.chunk_rows;
                for (i, (crow, srow)) in codes.chunks_mut(cols).zip(states.chunks_mut(bpr)).enumerate() {
                    let urow = &self.u[(row0 + i) * cols..(row0 + i + 1) * cols];
                    for (k, st) in srow.iter_mut().enumerate() {
                        let r = self.range(k);
                        f(urow, r.clone(), st, &mut crow[r], &mut h);
                    }
                }
                h
            })
            .collect();
        let mut total = Hist::new();
        for h in &hists {
            total.merge(h);
        }
        total
    }

    /// A point with a data-driven member `d`, alone (`fixed = None`) or paired with the fixed
    /// member `fixed = (member, radius)`. Returns codes, scale words, selection bits (1 =
    /// dynamic member) and the fitted LUT. Algorithm in `docs/quantizer.md`:
    /// 1. fixed member: full scale search per block (codes written now);
    /// 2. initial fit of the dynamic table on every block, at its starting scale codes;
    /// 3. `em_rounds` rounds: each block compares both members (at `em_search_radius`) and the
    ///    table is refitted on the blocks the dynamic member wins (stop early if none, or when
    ///    the rounded table no longer changes);
    /// 4. final assignment with the full radius; the dynamic member must be strictly better.
    fn with_dynamic<F: Member>(
        &self,
        fixed: Option<(&F, u32)>,
        d: &DynSpec,
        opts: &QuantOptions,
    ) -> (Vec<u8>, Vec<u32>, Vec<u8>, Lut) {
        let mut codes = vec![0u8; self.u.len()];
        let init = BlockState {
            f_code: 0,
            f_err: f64::INFINITY,
            f_em_err: f64::INFINITY,
        };
        let mut states = vec![init; self.n_blocks];
        let em_r = opts.em_search_radius.min(opts.search_radius);
        let d_radius = if self.codec.searchable(false) {
            opts.search_radius
        } else {
            0
        };
        let d_em = em_r.min(d_radius);
        if let Some((f, radius)) = fixed {
            self.pass(&mut states, &mut codes, |urow, r, st, c, _| {
                let (ub, ab) = (&urow[r.clone()], &self.a[r]);
                let found = search(f, self.codec, ub, ab, radius, em_r.min(radius));
                st.f_code = found.code;
                st.f_err = found.err;
                st.f_em_err = found.em_err;
                block_codes(f, ub, self.codec.decode(found.code), c);
            });
        }
        // Initial fit on every block at the dynamic member's starting code (extreme -> 1).
        let h = self.pass(&mut states, &mut codes, |urow, r, _, _, h| {
            let (ub, ab) = (&urow[r.clone()], &self.a[r]);
            let (amax, smax) = extremes(ub);
            let s = self.codec.decode(self.codec.base_code(amax, smax, d.top));
            accumulate(h, ub, ab, s);
        });
        let mut fit = dd::fit(&h, &d.init, &d.fixed, d.entry, d.bias).unwrap_or_else(|| dd::Fit {
            unrounded: d.init.clone(),
            rounded: d.init.clone(),
        });
        let mut lut = Lut::from_levels(d.element, d.entry, &fit.rounded);
        for _ in 0..opts.em_rounds {
            let dm = table_member(&lut);
            let h = self.pass(&mut states, &mut codes, |urow, r, st, _, h| {
                let (ub, ab) = (&urow[r.clone()], &self.a[r]);
                let found = search(&dm, self.codec, ub, ab, d_em, d_em);
                if found.em_err < st.f_em_err {
                    accumulate(h, ub, ab, self.codec.decode(found.code));
                }
            });
            match dd::fit(&h, &fit.unrounded, &d.fixed, d.entry, d.bias) {
                Some(f) => fit = f,
                None => break,
            }
            let next = Lut::from_levels(d.element, d.entry, &fit.rounded);
            // An unchanged table gives an unchanged assignment, hence the same fit: converged.
            let done = next.levels == lut.levels;
            lut = next;
            if done {
                break;
            }
        }
        // Final assignment.
        let dm = table_member(&lut);
        let mut scales = vec![0u32; self.n_blocks];
        let mut sel = vec![0u8; self.n_blocks];
        let dynamic_wins: Vec<(u32, bool)> = {
            let mut out = vec![(0u32, false); self.n_blocks];
            let (cols, bpr) = (self.cols, self.bpr);
            codes
                .par_chunks_mut(self.chunk_rows * cols)
                .zip(states.par_chunks(self.chunk_rows * bpr))
                .zip(out.par_chunks_mut(self.chunk_rows * bpr))
                .enumerate()
                .for_each(|(ci, ((codes, states), out))| {
                    let row0 = ci * self.chunk_rows;
                    for (i, (crow, (srow, orow))) in codes
                        .chunks_mut(cols)
                        .zip(states.chunks(bpr).zip(out.chunks_mut(bpr)))
                        .enumerate()
                    {
                        let urow = &self.u[(row0 + i) * cols..(row0 + i + 1) * cols];
                        for (k, (st, o)) in srow.iter().zip(orow.iter_mut()).enumerate() {
                            let r = self.range(k);
                            let (ub, ab) = (&urow[r.clone()], &self.a[r.clone()]);
                            let found = search(&dm, self.codec, ub, ab, d_radius, 0);
                            if found.err < st.f_err {
                                *o = (found.code, true);
                                block_codes(&dm, ub, self.codec.decode(found.code), &mut crow[r]);
                            } else {
                                *o = (st.f_code, false);
                            }
                        }
                    }
                });
            out
        };
        for (b, &(code, wins)) in dynamic_wins.iter().enumerate() {
            scales[b] = code;
            sel[b] = (wins && fixed.is_some()) as u8;
        }
        (codes, scales, sel, lut)
    }
}

/// Adds a block's normalized values `u / s` with weights `a_j s^2` to the histogram.
#[inline]
fn accumulate(h: &mut Hist, u: &[f32], a: &[f32], s: f32) {
    if s == 0.0 {
        return;
    }
    let s2 = s as f64 * s as f64;
    for (&x, &w) in u.iter().zip(a) {
        if w > 0.0 {
            h.add(x / s, w as f64 * s2);
        }
    }
}
