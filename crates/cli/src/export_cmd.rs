//! `sop export DIR --out FILE.safetensors`: the weights exactly as the decode hardware delivers
//! them to a MAC array (output words times the tensor scale), under the original tensor names
//! and shapes, for end-to-end evaluation with other tools.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use safetensors::tensor::{Dtype, TensorView};

#[derive(Args)]
pub struct ExportArgs {
    /// Directory written by `sop quantize` (or its model.sop.safetensors file).
    dir: PathBuf,
    /// Output safetensors file (written whole or not at all).
    #[arg(long)]
    out: PathBuf,
    /// Element type of the exported linear weights: f32 (every delivered value exactly), f16
    /// or bf16 (rounded to nearest even from the f32 value).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "bf16"])]
    dtype: String,
    /// The original checkpoint (safetensors file, Hugging Face directory, ONNX model or
    /// `minilm`): its tensors that are not in the quantized model (embeddings, norms, biases,
    /// unquantized layers) are copied through unchanged (an ONNX model's in the shapes
    /// `sop layers --all` lists), and the quantized layers' shapes are checked against it.
    #[arg(long)]
    model: Option<String>,
    /// The decode hardware (as for `sop quantize --hw`): `committed`, a comma-separated list of
    /// configuration names, or a configuration TOML file. Each layer is decoded by the first
    /// configuration that decodes its option.
    #[arg(long, value_name = "CONFIGS", default_value = "committed")]
    hw: String,
    /// Layers no configuration decodes (outlier/residual entries, -POT points, ...) get the
    /// software reconstruction instead of being an error; each is named on stderr.
    #[arg(long)]
    allow_software: bool,
}

/// The weights of layer `l` (menu option `o`) as the decode hardware delivers them: through
/// the first configuration of `hw` that decodes it, else (only when `allow_software`) its
/// software reconstruction. Says which on stderr; returns the values and whether hardware
/// decoded them.
pub fn delivered(
    l: &sop_quantize::QuantizedLayer,
    o: &impl std::fmt::Display,
    hw: &[sop_hw::LaneConfig],
    allow_software: bool,
) -> Result<(Vec<f32>, bool)> {
    match sop_hw::config::decoder_for(hw, &l.point, l.sparse_entries() > 0) {
        Ok(cfg) => {
            eprintln!("  {:<48} {o:<28} hardware {}", l.name, cfg.name);
            let v = sop_cosim::export::hardware_values(l, cfg).with_context(|| format!("layer `{}`", l.name))?;
            Ok((v, true))
        }
        Err(e) if allow_software => {
            eprintln!(
                "  {:<48} {o:<28} SOFTWARE reconstruction: no hardware decodes it ({e})",
                l.name
            );
            Ok((l.dequantize(), false))
        }
        Err(e) => bail!(
            "layer `{}` (option {o}): {e}; pass --allow-software to export its software reconstruction",
            l.name
        ),
    }
}

pub fn run(a: ExportArgs) -> Result<()> {
    let loaded = sop_qmodel::read(&a.dir)?;
    let Some(hw) = crate::quantize_cmd::hardware_configs(&a.hw)? else {
        bail!(
            "--hw none: export needs hardware to decode the layers (use --allow-software for layers it cannot decode)"
        );
    };
    let model = match &a.model {
        Some(m) => Some(crate::model_arg::open(m).context("--model")?.1),
        None => None,
    };
    // The 16-bit format the values are rounded to, or `None` for f32 (exact).
    let (dtype, half_format) = match a.dtype.as_str() {
        "f16" => (Dtype::F16, Some(sop_formats::Ieee16::Fp16)),
        "bf16" => (Dtype::BF16, Some(sop_formats::Ieee16::Bf16)),
        _ => (Dtype::F32, None),
    };
    let mut tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let (mut n_hw, mut n_sw, mut weights) = (0usize, 0usize, 0u64);
    for (l, o) in &loaded.layers {
        if let Some(m) = &model {
            let t = m
                .tensor(&l.name)
                .with_context(|| format!("layer `{}` of {} is not a tensor of --model", l.name, a.dir.display()))?;
            if t.shape != [l.rows, l.cols] {
                bail!(
                    "layer `{}`: {}x{} in the quantized model, shape {:?} in --model",
                    l.name,
                    l.rows,
                    l.cols,
                    t.shape
                );
            }
        }
        let (values, by_hw) = delivered(l, o, &hw, a.allow_software)?;
        if by_hw {
            n_hw += 1;
        } else {
            n_sw += 1;
        }
        weights += values.len() as u64;
        let bytes: Vec<u8> = match half_format {
            Some(f) => values
                .iter()
                .flat_map(|&v| (f.encode(v) as u16).to_le_bytes())
                .collect(),
            None => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        tensors.insert(l.name.clone(), (dtype, vec![l.rows, l.cols], bytes));
    }
    let mut copied = 0usize;
    if let Some(m) = &model {
        for t in m.tensors() {
            if tensors.contains_key(&t.name) {
                continue;
            }
            let (d, b) = m.raw_tensor(&t.name)?;
            tensors.insert(t.name.clone(), (d, t.shape.clone(), b.to_vec()));
            copied += 1;
        }
    }
    let views = tensors
        .iter()
        .map(|(k, (d, s, b))| Ok((k.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    let md: HashMap<String, String> = [
        ("format".to_string(), "sop-export/1".to_string()),
        ("source".to_string(), a.dir.display().to_string()),
        ("hardware".to_string(), a.hw.clone()),
    ]
    .into();
    let bytes = safetensors::serialize(views, Some(md))?;
    sop_atomic_write::write(&a.out, &bytes).with_context(|| format!("--out {}", a.out.display()))?;
    println!(
        "export: {} layers ({n_hw} decoded by the hardware model, {n_sw} software), {weights} weights as {}, {copied} tensors copied -> {}",
        loaded.layers.len(),
        a.dtype,
        a.out.display()
    );
    Ok(())
}
