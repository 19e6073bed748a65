//! A GGUF model file (llama.cpp's container) as the tensor source of a [`crate::Model`].
//!
//! The file is memory-mapped; its header is parsed by [`crate::gguf`] (the one GGUF parser of
//! the project) and every tensor of a convertible type is checked to lie inside the file, so a
//! truncated file fails on open. Shapes are reported outermost first like safetensors: a ggml
//! `ne = [in, out]` weight becomes `[out, in]`, the `nn.Linear` layout, with the same bytes.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::gguf::{describe_type, ggml_type_name, Gguf, Value};
use crate::{ggml_quants, DType, ModelError, TensorInfo};

/// One tensor's place in the file.
#[derive(Debug, Clone)]
struct Slot {
    ggml_type: u32,
    /// Absolute byte offset of its data in the file.
    start: usize,
    /// Byte length, when the type is one [`ggml_quants`] converts.
    len: Option<usize>,
}

/// An opened, memory-mapped GGUF model file.
pub(crate) struct GgufFile {
    pub(crate) path: PathBuf,
    map: Mmap,
    /// Metadata key/value pairs in file order.
    pub(crate) kv: Vec<(String, Value)>,
    slots: HashMap<String, Slot>,
}

impl GgufFile {
    /// Opens and validates `path`; returns the file and its tensors (in file order).
    pub(crate) fn open(path: &Path) -> Result<(GgufFile, Vec<TensorInfo>), ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |reason: String| ModelError::Gguf {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() < 8 {
            // Never map an empty file; too short for magic and version anyway.
            return Err(bad("too short for a GGUF file".into()));
        }
        // SAFETY: read-only mapping, only read through `&[u8]`; as for safetensors shards, the
        // file must not be modified while the model is open.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let g = Gguf::parse(&map).map_err(bad)?;
        let data_start = g.data_start();
        let Gguf { kv, tensors, .. } = g;
        let mut infos = Vec::with_capacity(tensors.len());
        let mut slots = HashMap::with_capacity(tensors.len());
        for t in tensors {
            let numel = t
                .numel()
                .ok_or_else(|| bad(format!("tensor `{}`: shape {:?} overflows", t.name, t.ne)))?;
            let shape: Vec<usize> =
                t.ne.iter()
                    .rev()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad(format!("tensor `{}`: shape {:?} overflows", t.name, t.ne)))?;
            let start = (data_start as u64).checked_add(t.offset);
            let len = if ggml_quants::layout(t.ggml_type).is_some() {
                let len = ggml_quants::byte_len(t.ggml_type, numel).ok_or_else(|| {
                    bad(format!(
                        "tensor `{}`: {numel} elements are not a whole number of {} blocks",
                        t.name,
                        describe_type(t.ggml_type)
                    ))
                })?;
                let end = start.and_then(|s| s.checked_add(len));
                if end.map_or(true, |e| e > map.len() as u64) {
                    return Err(bad(format!(
                        "truncated: tensor `{}` ({numel} x {} at data offset {}) ends beyond the end of the file ({} bytes)",
                        t.name,
                        describe_type(t.ggml_type),
                        t.offset,
                        map.len()
                    )));
                }
                Some(len as usize)
            } else {
                None
            };
            let dtype = match t.ggml_type {
                ggml_quants::F32 => DType::F32,
                ggml_quants::F16 => DType::F16,
                ggml_quants::BF16 => DType::BF16,
                ty => {
                    let name = ggml_type_name(ty).map_or_else(|| describe_type(ty), str::to_string);
                    if ggml_quants::is_block_quantized(ty) {
                        DType::Quantized(name)
                    } else {
                        DType::Other(name)
                    }
                }
            };
            slots.insert(
                t.name.clone(),
                Slot {
                    ggml_type: t.ggml_type,
                    start: start.unwrap_or(u64::MAX) as usize,
                    len,
                },
            );
            infos.push(TensorInfo {
                name: t.name,
                shape,
                dtype,
                file: path.to_path_buf(),
            });
        }
        Ok((
            GgufFile {
                path: path.to_path_buf(),
                map,
                kv,
                slots,
            },
            infos,
        ))
    }

    fn slot(&self, name: &str) -> Result<&Slot, ModelError> {
        self.slots.get(name).ok_or_else(|| ModelError::UnknownTensor {
            model: self.path.clone(),
            name: name.to_string(),
        })
    }

    fn unsupported(&self, name: &str, ty: u32) -> ModelError {
        ModelError::UnsupportedGgmlType {
            file: self.path.clone(),
            tensor: name.to_string(),
            ggml_type: describe_type(ty),
        }
    }

    /// The stored bytes of tensor `name` (validated on open to lie inside the file).
    pub(crate) fn bytes(&self, name: &str) -> Result<&[u8], ModelError> {
        let s = self.slot(name)?;
        let len = s.len.ok_or_else(|| self.unsupported(name, s.ggml_type))?;
        Ok(&self.map[s.start..s.start + len])
    }

    /// Tensor `name` converted to f32 (exactly for F32/F16/BF16, dequantized for block types).
    pub(crate) fn to_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let ty = self.slot(name)?.ggml_type;
        let bytes = self.bytes(name)?;
        let mut out = Vec::new();
        if !ggml_quants::to_f32(ty, bytes, &mut out) {
            return Err(self.unsupported(name, ty));
        }
        Ok(out)
    }
}

/// True when `path` names a GGUF file by its extension (`.gguf`, any case): the one place the
/// container is chosen for a model path.
pub(crate) fn is_gguf_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}
