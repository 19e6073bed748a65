//! The weights exactly as the decode hardware delivers them to a MAC array (`sop export`):
//! every weight of a quantized layer through the golden model of the configuration that
//! decodes it ([`sop_hw::config::decoder_for`]), the same words `sop cosim --quantized`
//! checks against the Verilated RTL (sparse corrections included: an engine's correction
//! unit applies them), then times the layer's tensor scale.

use rayon::prelude::*;
use sop_hw::sparse::correct;
use sop_hw::LaneConfig;
use sop_quantize::QuantizedLayer;

use crate::golden::ProductTable;
use crate::stimulus::LayerStim;
use crate::CosimError;

/// Rows handed to one parallel task (fixed, so the work split does not depend on the
/// thread count; the result is the same either way, element by element).
const ROWS_PER_TASK: usize = 16;

/// The output words (FP16 or BF16 bit patterns, `cfg.output`) of every weight of `ql`,
/// row-major: what configuration `cfg` puts on `data_out` for the layer's codes, block scales
/// and selection bits with its tables loaded, each outlier and residual applied by the
/// correction unit's rule ([`sop_hw::sparse::correct`]). Errors when `cfg` cannot decode
/// the layer (also a fixed lane for a layer with sparse entries).
pub fn hardware_words(ql: &QuantizedLayer, cfg: &LaneConfig) -> Result<Vec<u16>, CosimError> {
    let stim = LayerStim::from_quantized(ql, cfg)?;
    let golden = ProductTable::new(cfg, &stim.tables);
    let (cols, bpr, block) = (stim.cols, stim.blocks_per_row(), stim.block);
    let mut out = vec![0u16; stim.rows * cols];
    out.par_chunks_mut(cols * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, rows)| {
            for (i, row) in rows.chunks_mut(cols).enumerate() {
                let r = task * ROWS_PER_TASK + i;
                for (c, o) in row.iter_mut().enumerate() {
                    let b = r * bpr + c / block;
                    let base = golden.base(stim.sel[b], stim.scales[b]);
                    *o = golden.at(base | stim.codes[r * cols + c] as u32);
                }
            }
        });
    for &(i, c) in &stim.corr {
        out[i as usize] = correct(cfg.output, out[i as usize], Some(c));
    }
    Ok(out)
}

/// The weights the hardware delivers, as f32, row-major: each output word's value (exact in
/// f32) times the layer's tensor scale (one f32 multiplication, round to nearest even).
pub fn hardware_values(ql: &QuantizedLayer, cfg: &LaneConfig) -> Result<Vec<f32>, CosimError> {
    let words = hardware_words(ql, cfg)?;
    let t = ql.tensor_scale;
    Ok(words
        .par_iter()
        .with_min_len(4096)
        .map(|&w| cfg.output.decode(w as u32) * t)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_quantize::{LayerRef, QuantOptions, Quantizer};

    /// The hardware's words round `QuantizedLayer::product` (the exact pre-rounding product)
    /// to the output format with the packer's rules (`sop_hw::model::pack`).
    #[test]
    fn delivered_values_are_the_rounded_products() {
        let data: Vec<f32> = (0..24 * 40)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 333.0)
            .collect();
        let cfgs = sop_hw::default_configs();
        for p in ["NF4+DD4sUE4M4b16", "E2M3sUE4M4b32", "Split87+DD4sSE4M3b8"] {
            let point = p.parse().unwrap();
            let q = Quantizer::new(point, QuantOptions::default()).unwrap();
            let ql = q
                .quantize(
                    LayerRef {
                        name: p,
                        rows: 24,
                        cols: 40,
                        data: &data,
                    },
                    None,
                )
                .unwrap();
            let cfg = sop_hw::config::decoder_for(&cfgs, &point, false).unwrap();
            let words = hardware_words(&ql, cfg).unwrap();
            for r in 0..24 {
                for c in 0..40 {
                    let want = sop_hw::model::pack(cfg.output, ql.product(r, c) as f64);
                    assert_eq!(words[r * 40 + c], want, "{p} ({r}, {c})");
                }
            }
            // Where the output word holds the product exactly, the delivered value is the
            // software reconstruction bit for bit (up to the sign of zero).
            let v = hardware_values(&ql, cfg).unwrap();
            let sw = ql.dequantize();
            let mut exact = 0;
            for (i, (a, b)) in v.iter().zip(&sw).enumerate() {
                if cfg.output.decode(words[i] as u32) == ql.product(i / 40, i % 40) {
                    // The packer gives +0 for a zero product; software keeps a -0.
                    assert!(
                        a.to_bits() == b.to_bits() || (*a == 0.0 && *b == 0.0),
                        "{p} weight {i}: {a} {b}"
                    );
                    exact += 1;
                }
            }
            assert!(exact > v.len() / 2, "{p}: {exact} exact words");
        }
    }

    /// With outliers and residuals (only an engine decodes them): the corrected words at
    /// their positions, the plain words elsewhere; a fixed lane refuses the layer.
    #[test]
    fn sparse_entries_are_applied() {
        let data: Vec<f32> = (0..16 * 64)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 77.0)
            .collect();
        let opt: sop_quantize::sparse::MenuOption = "NF4+DD4sUE4M4b16+O1%+R2%".parse().unwrap();
        let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
        let w = LayerRef {
            name: "t",
            rows: 16,
            cols: 64,
            data: &data,
        };
        let ql = sop_quantize::sparse::quantize_option(&q, &opt, w, None).unwrap();
        assert!(!ql.outliers.is_empty() && !ql.residuals.is_empty());
        let cfgs = sop_hw::default_configs();
        let eng = sop_hw::config::decoder_for(&cfgs, &opt.point, true).unwrap();
        assert!(eng.engine);
        let dense = {
            let mut d = ql.clone();
            d.outliers.clear();
            d.residuals.clear();
            hardware_words(&d, eng).unwrap()
        };
        let words = hardware_words(&ql, eng).unwrap();
        let corr = crate::stimulus::corrections(&ql).unwrap();
        let mut k = 0;
        for (i, (&a, &b)) in words.iter().zip(&dense).enumerate() {
            if k < corr.len() && corr[k].0 as usize == i {
                assert_eq!(a, correct(eng.output, b, Some(corr[k].1)), "weight {i}");
                k += 1;
            } else {
                assert_eq!(a, b, "weight {i}");
            }
        }
        assert_eq!(k, corr.len());
        let fixed = cfgs.iter().find(|c| c.name == "sop_c4_hif8_ue4m4_fp16").unwrap();
        let e = hardware_words(&ql, fixed).unwrap_err().to_string();
        assert!(e.contains("no sparse correction unit"), "{e}");
    }
}
