//! The `--model` argument of every command: resolve the alias, open the model, and say
//! loudly when its weights were already quantized (a GGUF file of Q4_1 tensors, ...).

use std::path::PathBuf;

use anyhow::{Context, Result};
use sop_model::Model;

/// Resolves `spec` (a path or an alias such as `minilm`), opens the model and prints
/// [`Model::quantized_source_note`] to stderr when there is one.
pub fn open(spec: &str) -> Result<(PathBuf, Model)> {
    let path = sop_model::resolve(spec).with_context(|| format!("model '{spec}'"))?;
    let model = Model::open(&path)?;
    if let Some(note) = model.quantized_source_note() {
        eprintln!("{note}");
    }
    Ok((path, model))
}
