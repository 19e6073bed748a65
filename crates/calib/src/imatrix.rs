//! Activation statistics per linear layer and their exchange format, llama.cpp's importance
//! matrix (`imatrix.gguf`, and the legacy `imatrix.dat` for reading).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::gguf::{self, Gguf, OutTensor, Value};
use crate::names::{gguf_to_hf, hf_to_gguf};
use crate::CalibError;

/// GGUF key holding the list of calibration data sets (array of strings).
pub const KEY_DATASETS: &str = "imatrix.datasets";
/// GGUF key holding the number of chunks the statistics were computed on (u32).
pub const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
/// GGUF key holding the chunk size in tokens (u32).
pub const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";
/// GGUF key naming the kind of file; `imatrix` for importance matrices.
pub const KEY_TYPE: &str = "general.type";
/// Tensor-name suffix of the per-column sums of squared activations.
pub const SUFFIX_SUM2: &str = ".in_sum2";
/// Tensor-name suffix of the token counts.
pub const SUFFIX_COUNTS: &str = ".counts";
/// Tensor-name suffix of the per-column sums of activations (optional).
pub const SUFFIX_SUM: &str = ".in_sum";

const IN_MEMORY: &str = "(in-memory statistics)";

/// Statistics of the inputs of one linear layer `y = W x`, per input column `j` of `W`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    /// Sum over all calibration tokens of `x_j^2`, one entry per input column.
    pub sum_x2: Vec<f64>,
    /// Sum over all calibration tokens of `x_j`, if recorded (llama.cpp's optional `in_sum`).
    pub sum_x: Option<Vec<f64>>,
    /// Number of tokens summed (for a legacy `.dat` file: its `ncall`, see the docs).
    pub count: u64,
}

impl LayerStats {
    /// Number of input columns.
    pub fn cols(&self) -> usize {
        self.sum_x2.len()
    }

    /// `E[x_j^2] = sum_x2[j] / count` per column (all zeros when `count == 0`).
    pub fn mean_x2(&self) -> Vec<f64> {
        if self.count == 0 {
            return vec![0.0; self.sum_x2.len()];
        }
        let c = self.count as f64;
        self.sum_x2.iter().map(|s| s / c).collect()
    }
}

/// Which file format statistics were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImatrixFormat {
    /// Computed in this process (not read from a file).
    Memory,
    /// GGUF importance matrix (`llama-imatrix` default since 2025; what [`ImatrixStats::write`]
    /// produces).
    Gguf,
    /// Legacy binary `imatrix.dat`.
    LegacyDat,
}

/// Activation statistics for the linear layers of one model: an importance matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ImatrixStats {
    /// Statistics per layer, keyed by tensor name (the weight's name, e.g.
    /// `encoder.layer.0.attention.self.query.weight` or, for llama.cpp files,
    /// `blk.0.attn_q.weight`).
    pub per_layer: BTreeMap<String, LayerStats>,
    /// Names of the calibration data sets (GGUF `imatrix.datasets`).
    pub datasets: Vec<String>,
    /// Number of chunks processed (GGUF `imatrix.chunk_count`); for statistics made by
    /// [`crate::calibrate`], one chunk is one sentence.
    pub chunks: u32,
    /// Chunk size in tokens (GGUF `imatrix.chunk_size`); for [`crate::calibrate`], the maximum
    /// sequence length (longer sentences are truncated).
    pub chunk_size: u32,
    /// The file the statistics were read from, if any (used in error messages).
    pub source: Option<PathBuf>,
    /// The format they were read from.
    pub format: ImatrixFormat,
}

/// How an importance matrix covers the linear layers of a model (see
/// [`ImatrixStats::match_model`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Model layers with statistics, with the imatrix entry name used for each (equal to the
    /// layer name unless the GGUF name mapping was needed).
    pub matched: Vec<(String, String)>,
    /// Model layers without statistics (they get uniform column weights).
    pub missing: Vec<String>,
    /// Imatrix entries that name no linear layer of the model.
    pub unused: Vec<String>,
}

impl ImatrixStats {
    /// Empty statistics (no layers) made in memory.
    pub fn new() -> Self {
        ImatrixStats {
            per_layer: BTreeMap::new(),
            datasets: Vec::new(),
            chunks: 0,
            chunk_size: 0,
            source: None,
            format: ImatrixFormat::Memory,
        }
    }

    fn path(&self) -> PathBuf {
        self.source.clone().unwrap_or_else(|| PathBuf::from(IN_MEMORY))
    }

    /// The entry name holding statistics for `layer`: `layer` itself, else its GGUF name
    /// ([`hf_to_gguf`]), else its Hugging Face name ([`gguf_to_hf`]).
    pub fn entry_for(&self, layer: &str) -> Option<&str> {
        if let Some((k, _)) = self.per_layer.get_key_value(layer) {
            return Some(k);
        }
        [hf_to_gguf(layer), gguf_to_hf(layer)]
            .into_iter()
            .flatten()
            .find_map(|n| self.per_layer.get_key_value(n.as_str()).map(|(k, _)| k.as_str()))
    }

    /// Per-column weights `a_j = E[x_j^2]` for the linear layer `layer` (a tensor name of the
    /// model) whose weight has `cols` input columns.
    ///
    /// Returns `Ok(None)` when there are no statistics for the layer (no entry under its name
    /// or its mapped name, or an entry with a zero token count): the caller then uses uniform
    /// weights and must say so in its report. Fails when the entry has a different number of
    /// columns (statistics from another model) or a value that is negative or not finite.
    pub fn column_weights(&self, layer: &str, cols: usize) -> Result<Option<Vec<f32>>, CalibError> {
        let Some(entry) = self.entry_for(layer) else {
            return Ok(None);
        };
        let s = &self.per_layer[entry];
        let bad = |reason: String| CalibError::Tensor {
            path: self.path(),
            tensor: entry.to_string(),
            reason,
        };
        if s.cols() != cols {
            return Err(bad(format!(
                "has {} columns but layer `{layer}` has {cols} input columns: statistics from another model?",
                s.cols()
            )));
        }
        if s.count == 0 {
            return Ok(None);
        }
        let w: Vec<f32> = s.mean_x2().iter().map(|&m| m as f32).collect();
        if let Some((j, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
            return Err(bad(format!(
                "column {j} has mean x^2 = {v}, expected a finite value >= 0"
            )));
        }
        Ok(Some(w))
    }

    /// Matches the entries against the linear layers of a model (`layers` as from
    /// `sop_model::Model::linear_layers`, whose `shape[1]` is the input-column count).
    ///
    /// Fails if an entry has the wrong column count for its layer, or if the file has entries
    /// but none of them names a layer of the model (an importance matrix of another model).
    pub fn match_model(&self, model: &Path, layers: &[sop_model::TensorInfo]) -> Result<Coverage, CalibError> {
        let mut cov = Coverage::default();
        let mut used = std::collections::BTreeSet::new();
        for t in layers {
            match self.entry_for(&t.name) {
                Some(e) => {
                    let cols = t.shape.get(1).copied().unwrap_or(0);
                    self.column_weights(&t.name, cols)?;
                    used.insert(e.to_string());
                    cov.matched.push((t.name.clone(), e.to_string()));
                }
                None => cov.missing.push(t.name.clone()),
            }
        }
        cov.unused = self.per_layer.keys().filter(|k| !used.contains(*k)).cloned().collect();
        if cov.matched.is_empty() && !self.per_layer.is_empty() {
            let few = |v: Vec<&str>| {
                v.into_iter()
                    .take(3)
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(CalibError::NoMatchingLayer {
                path: self.path(),
                model: model.to_path_buf(),
                examples: few(self.per_layer.keys().map(String::as_str).collect()),
                model_examples: few(layers.iter().map(|t| t.name.as_str()).collect()),
            });
        }
        Ok(cov)
    }

    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.per_layer.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.per_layer.is_empty()
    }

    /// Reads an importance matrix: GGUF (`imatrix.gguf`, recognized by its magic) or, failing
    /// that, the legacy `imatrix.dat` layout. See `docs/calibration.md` for the subset read.
    pub fn read(path: &Path) -> Result<Self, CalibError> {
        let bytes = std::fs::read(path).map_err(|e| CalibError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// [`ImatrixStats::read`] on bytes already in memory; `path` is used in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CalibError> {
        if bytes.starts_with(gguf::MAGIC) {
            return Self::from_gguf(bytes, path);
        }
        Self::from_legacy(bytes, path).map_err(|e| match e {
            CalibError::Format { path, reason } => CalibError::Format {
                path,
                reason: format!(
                    "not an importance matrix: no GGUF magic (starts with {:02x?}) and not a legacy .dat imatrix ({reason})",
                    &bytes[..bytes.len().min(4)]
                ),
            },
            other => other,
        })
    }

    fn from_gguf(bytes: &[u8], path: &Path) -> Result<Self, CalibError> {
        let fmt = |reason: String| CalibError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let tensor_err = |tensor: &str, reason: String| CalibError::Tensor {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        };
        let g = Gguf::parse(bytes).map_err(|r| fmt(format!("invalid GGUF: {r}")))?;
        match g.get(KEY_TYPE) {
            None => {}
            Some(Value::Str(s)) if s == "imatrix" => {}
            Some(v) => {
                return Err(fmt(format!(
                    "GGUF `{KEY_TYPE}` is {v:?}, not \"imatrix\": a model file rather than an importance matrix?"
                )))
            }
        }
        let datasets = match g.get(KEY_DATASETS) {
            None => Vec::new(),
            Some(Value::Array(_, items)) => items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s.clone()),
                    other => Err(fmt(format!(
                        "`{KEY_DATASETS}` must be an array of strings, has {other:?}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(v) => return Err(fmt(format!("`{KEY_DATASETS}` must be an array of strings, is {v:?}"))),
        };
        let u32_key = |key: &str| -> Result<u32, CalibError> {
            match g.get(key) {
                None => Ok(0),
                Some(v) => v
                    .as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .ok_or_else(|| fmt(format!("`{key}` must be an integer in 0..2^32, is {v:?}"))),
            }
        };
        let chunks = u32_key(KEY_CHUNK_COUNT)?;
        let chunk_size = u32_key(KEY_CHUNK_SIZE)?;

        // Group the tensors by entry name; other tensors are ignored, as llama.cpp does.
        #[derive(Default)]
        struct Parts<'t> {
            sum2: Option<&'t gguf::TensorInfo>,
            counts: Option<&'t gguf::TensorInfo>,
            sum: Option<&'t gguf::TensorInfo>,
        }
        let mut parts: BTreeMap<&str, Parts> = BTreeMap::new();
        for t in &g.tensors {
            if let Some(base) = t.name.strip_suffix(SUFFIX_SUM2) {
                parts.entry(base).or_default().sum2 = Some(t);
            } else if let Some(base) = t.name.strip_suffix(SUFFIX_COUNTS) {
                parts.entry(base).or_default().counts = Some(t);
            } else if let Some(base) = t.name.strip_suffix(SUFFIX_SUM) {
                parts.entry(base).or_default().sum = Some(t);
            }
        }
        let mut per_layer = BTreeMap::new();
        for (base, p) in parts {
            let (Some(sum2), Some(counts)) = (p.sum2, p.counts) else {
                let (have, lack) = if p.sum2.is_some() {
                    (SUFFIX_SUM2, SUFFIX_COUNTS)
                } else if p.counts.is_some() {
                    (SUFFIX_COUNTS, SUFFIX_SUM2)
                } else {
                    (SUFFIX_SUM, SUFFIX_SUM2)
                };
                return Err(tensor_err(
                    &format!("{base}{have}"),
                    format!("has no matching `{base}{lack}` tensor"),
                ));
            };
            let cdata = g.tensor_f32(counts).map_err(|r| tensor_err(&counts.name, r))?;
            if cdata.len() != 1 {
                return Err(tensor_err(
                    &counts.name,
                    format!(
                        "holds {} counts (one per expert matrix of a mixture-of-experts layer); only dense layers (one count) are supported",
                        cdata.len()
                    ),
                ));
            }
            let c = cdata[0];
            if !c.is_finite() || c < 0.0 || c >= 2f32.powi(63) {
                return Err(tensor_err(
                    &counts.name,
                    format!("token count {c} is not a finite value >= 0"),
                ));
            }
            let count = c.round() as u64;
            let cols = sum2.ne[0];
            let s2 = g.tensor_f32(sum2).map_err(|r| tensor_err(&sum2.name, r))?;
            if s2.is_empty() || s2.len() as u64 != cols {
                return Err(tensor_err(
                    &sum2.name,
                    format!(
                        "has shape {:?}; expected [columns] or [columns, 1] with columns > 0",
                        sum2.ne
                    ),
                ));
            }
            if let Some((j, v)) = s2.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
                return Err(tensor_err(
                    &sum2.name,
                    format!("column {j} holds {v}; sums of squares must be finite and >= 0"),
                ));
            }
            let sum_x = match p.sum {
                None => None,
                Some(t) => {
                    let d = g.tensor_f32(t).map_err(|r| tensor_err(&t.name, r))?;
                    if d.len() != s2.len() {
                        return Err(tensor_err(
                            &t.name,
                            format!("has {} values but `{}` has {}", d.len(), sum2.name, s2.len()),
                        ));
                    }
                    if let Some((j, v)) = d.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                        return Err(tensor_err(&t.name, format!("column {j} holds {v}")));
                    }
                    Some(d.iter().map(|&v| f64::from(v)).collect())
                }
            };
            per_layer.insert(
                base.to_string(),
                LayerStats {
                    sum_x2: s2.iter().map(|&v| f64::from(v)).collect(),
                    sum_x,
                    count,
                },
            );
        }
        Ok(ImatrixStats {
            per_layer,
            datasets,
            chunks,
            chunk_size,
            source: Some(path.to_path_buf()),
            format: ImatrixFormat::Gguf,
        })
    }

    /// Legacy `imatrix.dat`: `i32 n_entries`, then per entry `i32 len`, name, `i32 ncall`,
    /// `i32 nval`, `nval x f32` (each `E[x^2] * ncall`); then optionally `i32 chunks`,
    /// `i32 len`, dataset name.
    fn from_legacy(bytes: &[u8], path: &Path) -> Result<Self, CalibError> {
        let fmt = |reason: String| CalibError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let mut pos = 0usize;
        let i32_at = |what: &str, pos: &mut usize| -> Result<i32, CalibError> {
            let b = bytes.get(*pos..*pos + 4).ok_or_else(|| {
                fmt(format!(
                    "truncated: {what} at offset {} (file is {} bytes)",
                    *pos,
                    bytes.len()
                ))
            })?;
            *pos += 4;
            Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let n = i32_at("entry count", &mut pos)?;
        // An entry takes at least 4 + 1 + 4 + 4 + 4 bytes.
        if n < 1 || (n as usize).saturating_mul(17) > bytes.len() {
            return Err(fmt(format!(
                "entry count {n} is impossible for a {}-byte file",
                bytes.len()
            )));
        }
        let mut per_layer = BTreeMap::new();
        for i in 0..n {
            let len = i32_at(&format!("name length of entry {i}"), &mut pos)?;
            let name = usize::try_from(len)
                .ok()
                .filter(|&l| l > 0)
                .and_then(|l| bytes.get(pos..pos.checked_add(l)?))
                .ok_or_else(|| {
                    fmt(format!(
                        "entry {i}: name length {len} at offset {} is out of bounds",
                        pos - 4
                    ))
                })?;
            pos += name.len();
            let name = String::from_utf8(name.to_vec()).map_err(|_| fmt(format!("entry {i}: name is not UTF-8")))?;
            let tensor_err = |reason: String| CalibError::Tensor {
                path: path.to_path_buf(),
                tensor: name.clone(),
                reason,
            };
            let ncall = i32_at(&format!("ncall of `{name}`"), &mut pos)?;
            let nval = i32_at(&format!("value count of `{name}`"), &mut pos)?;
            let nbytes = usize::try_from(nval)
                .ok()
                .filter(|&v| v > 0)
                .and_then(|v| v.checked_mul(4))
                .filter(|&b| pos.checked_add(b).is_some_and(|end| end <= bytes.len()))
                .ok_or_else(|| {
                    tensor_err(format!(
                        "value count {nval} at offset {} is out of bounds: truncated file?",
                        pos - 4
                    ))
                })?;
            let vals: Vec<f64> = bytes[pos..pos + nbytes]
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect();
            pos += nbytes;
            if let Some((j, v)) = vals.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < 0.0) {
                return Err(tensor_err(format!(
                    "column {j} holds {v}; expected a finite value >= 0"
                )));
            }
            if per_layer.contains_key(&name) {
                return Err(tensor_err("appears twice".into()));
            }
            per_layer.insert(
                name,
                LayerStats {
                    sum_x2: vals,
                    sum_x: None,
                    count: u64::try_from(ncall).unwrap_or(0),
                },
            );
        }
        let mut chunks = 0u32;
        let mut datasets = Vec::new();
        if pos < bytes.len() {
            let c = i32_at("chunk count", &mut pos)?;
            chunks = u32::try_from(c).unwrap_or(0);
            let len = i32_at("dataset name length", &mut pos)?;
            let ds = usize::try_from(len)
                .ok()
                .and_then(|l| bytes.get(pos..pos.checked_add(l)?))
                .ok_or_else(|| {
                    fmt(format!(
                        "dataset name length {len} at offset {} is out of bounds",
                        pos - 4
                    ))
                })?;
            pos += ds.len();
            datasets.push(String::from_utf8_lossy(ds).into_owned());
            if pos != bytes.len() {
                return Err(fmt(format!(
                    "{} unexpected bytes after the dataset name",
                    bytes.len() - pos
                )));
            }
        }
        Ok(ImatrixStats {
            per_layer,
            datasets,
            chunks,
            chunk_size: 0,
            source: Some(path.to_path_buf()),
            format: ImatrixFormat::LegacyDat,
        })
    }

    /// The GGUF bytes [`ImatrixStats::write`] stores: keys `general.type = "imatrix"`,
    /// `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`; per entry, in name
    /// order, F32 tensors `<name>.in_sum2` (shape `[cols]`), `<name>.counts` (shape `[1]`) and,
    /// if present, `<name>.in_sum` (shape `[cols]`). Values are rounded to f32 as in llama.cpp.
    pub fn to_gguf_bytes(&self) -> Vec<u8> {
        let kv = vec![
            (KEY_TYPE.to_string(), Value::Str("imatrix".into())),
            (
                KEY_DATASETS.to_string(),
                Value::Array(8, self.datasets.iter().map(|d| Value::Str(d.clone())).collect()),
            ),
            (KEY_CHUNK_COUNT.to_string(), Value::U32(self.chunks)),
            (KEY_CHUNK_SIZE.to_string(), Value::U32(self.chunk_size)),
        ];
        let mut tensors = Vec::new();
        for (name, s) in &self.per_layer {
            let cols = s.sum_x2.len() as u64;
            tensors.push(OutTensor {
                name: format!("{name}{SUFFIX_SUM2}"),
                ne: vec![cols],
                data: s.sum_x2.iter().map(|&v| v as f32).collect(),
            });
            tensors.push(OutTensor {
                name: format!("{name}{SUFFIX_COUNTS}"),
                ne: vec![1],
                data: vec![s.count as f32],
            });
            if let Some(sx) = &s.sum_x {
                tensors.push(OutTensor {
                    name: format!("{name}{SUFFIX_SUM}"),
                    ne: vec![sx.len() as u64],
                    data: sx.iter().map(|&v| v as f32).collect(),
                });
            }
        }
        gguf::write(&kv, &tensors)
    }

    /// Writes the statistics as a GGUF importance matrix (see [`ImatrixStats::to_gguf_bytes`])
    /// atomically: into a temporary file in the same directory, flushed to disk, then renamed
    /// over `path`. Entries with no columns are refused.
    pub fn write(&self, path: &Path) -> Result<(), CalibError> {
        if let Some((name, _)) = self.per_layer.iter().find(|(_, s)| s.sum_x2.is_empty()) {
            return Err(CalibError::Tensor {
                path: path.to_path_buf(),
                tensor: name.clone(),
                reason: "has no columns".into(),
            });
        }
        if let Some((name, s)) = self
            .per_layer
            .iter()
            .find(|(_, s)| s.sum_x.as_ref().is_some_and(|x| x.len() != s.sum_x2.len()))
        {
            return Err(CalibError::Tensor {
                path: path.to_path_buf(),
                tensor: name.clone(),
                reason: format!("sum_x has a different length than sum_x2 ({})", s.sum_x2.len()),
            });
        }
        write_atomic(path, &self.to_gguf_bytes())
    }
}

impl Default for ImatrixStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `bytes` to `path` whole or not at all (see `sop_atomic_write`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CalibError> {
    sop_atomic_write::write(path, bytes).map_err(|e| CalibError::io(path, e.into_io()))
}

/// Serializes statistics in the legacy `imatrix.dat` layout (for tests and for tools that
/// only read the old format): values are `E[x^2] * ncall` with `ncall = count`.
pub fn to_legacy_bytes(stats: &ImatrixStats) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(stats.per_layer.len() as i32).to_le_bytes());
    for (name, s) in &stats.per_layer {
        out.extend_from_slice(&(name.len() as i32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(s.count.min(i32::MAX as u64) as i32).to_le_bytes());
        out.extend_from_slice(&(s.sum_x2.len() as i32).to_le_bytes());
        for v in &s.sum_x2 {
            out.extend_from_slice(&(*v as f32).to_le_bytes());
        }
    }
    out.extend_from_slice(&(stats.chunks as i32).to_le_bytes());
    let ds = stats.datasets.last().map(String::as_str).unwrap_or("");
    out.extend_from_slice(&(ds.len() as i32).to_le_bytes());
    out.extend_from_slice(ds.as_bytes());
    out
}
