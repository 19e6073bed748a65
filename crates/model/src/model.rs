//! Opening safetensors files / Hugging Face model directories and loading tensors.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::convert::{apply_policy, decode_into, Src};
use crate::gguf::Value;
use crate::gguf_model::{is_gguf_path, GgufFile};
use crate::natural::natural_cmp;
use crate::{ModelError, NonFinitePolicy};

/// File name of an unsharded model inside a Hugging Face model directory.
pub const SINGLE_FILE: &str = "model.safetensors";
/// File name of the shard index inside a sharded Hugging Face model directory.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Element type of a tensor as stored in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the upper 16 bits of a binary32).
    BF16,
    /// A ggml block-quantized type of a GGUF file (`Q8_0`, `Q4_0`, `Q4_1`, `Q4_K`, `Q5_K`,
    /// `Q6_K`), named as ggml names it. [`Model::load_f32`] dequantizes it: the values are an
    /// already quantized model's weights (see [`Model::already_quantized`]).
    Quantized(String),
    /// Any other dtype (safetensors: e.g. `I32`, `F64`, `F8_E4M3`, named as in the file header;
    /// GGUF: a ggml type this crate does not convert, e.g. `IQ2_XXS`). Such tensors are listed
    /// but cannot be loaded as f32.
    Other(String),
}

impl DType {
    fn from_safetensors(d: Dtype) -> Self {
        match d {
            Dtype::F32 => Self::F32,
            Dtype::F16 => Self::F16,
            Dtype::BF16 => Self::BF16,
            other => Self::Other(other.to_string()),
        }
    }

    /// True for the dtypes [`Model::load_f32`] can convert (F32, F16, BF16, and the GGUF
    /// block types it dequantizes).
    pub fn is_float_loadable(&self) -> bool {
        !matches!(self, Self::Other(_))
    }

    fn src(&self) -> Option<Src> {
        match self {
            Self::F32 => Some(Src::F32),
            Self::F16 => Some(Src::F16),
            Self::BF16 => Some(Src::BF16),
            Self::Quantized(_) | Self::Other(_) => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F32 => f.write_str("F32"),
            Self::F16 => f.write_str("F16"),
            Self::BF16 => f.write_str("BF16"),
            Self::Quantized(s) | Self::Other(s) => f.write_str(s),
        }
    }
}

/// Description of one tensor of a [`Model`] (no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name as in the safetensors header, e.g. `encoder.layer.0.attention.self.query.weight`.
    pub name: String,
    /// Shape in elements, outermost dimension first (C order). For an `nn.Linear` weight this is
    /// `[out_features, in_features]`.
    pub shape: Vec<usize>,
    /// Element type as stored.
    pub dtype: DType,
    /// The safetensors file (shard) that holds the tensor.
    pub file: PathBuf,
}

impl TensorInfo {
    /// Number of elements (product of `shape`; 1 for a scalar, 0 if any dimension is 0).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// `(rows, cols)` of a tensor that can be loaded as a matrix; [`ModelError::NotTwoD`] or
    /// [`ModelError::ZeroSize`] otherwise.
    pub(crate) fn matrix_dims(&self) -> Result<(usize, usize), ModelError> {
        let &[rows, cols] = self.shape.as_slice() else {
            return Err(ModelError::NotTwoD {
                file: self.file.clone(),
                tensor: self.name.clone(),
                shape: self.shape.clone(),
            });
        };
        if rows == 0 || cols == 0 {
            return Err(ModelError::ZeroSize {
                file: self.file.clone(),
                tensor: self.name.clone(),
                shape: self.shape.clone(),
            });
        }
        Ok((rows, cols))
    }
}

/// A 2-D weight matrix converted to f32.
///
/// Invariants: `data.len() == rows * cols`, `rows > 0`, `cols > 0`; `data` is row-major, i.e.
/// element `(r, c)` is `data[r * cols + c]`. `rows` is the number of output features and `cols`
/// the number of input features, as PyTorch stores `nn.Linear.weight`. Unless a
/// [`NonFinitePolicy`] other than `Refuse` was used, every value is finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights2D {
    /// Tensor name it was loaded from.
    pub name: String,
    /// Number of rows (output features).
    pub rows: usize,
    /// Number of columns (input features).
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl Weights2D {
    /// Row `r` (the weights of output feature `r`), `cols` values. Panics if `r >= rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The loaded matrix of tensor `info` after `policy` has dealt with its NaN/Inf values
    /// (`data`: `rows * cols` values, row-major).
    pub(crate) fn checked(
        info: &TensorInfo,
        rows: usize,
        cols: usize,
        mut data: Vec<f32>,
        policy: NonFinitePolicy,
    ) -> Result<Weights2D, ModelError> {
        apply_policy(&info.name, cols, &mut data, policy)?;
        Ok(Weights2D {
            name: info.name.clone(),
            rows,
            cols,
            data,
        })
    }

    /// Element at row `r`, column `c`. Panics if out of range.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        assert!(c < self.cols, "column {c} out of range ({} cols)", self.cols);
        self.data[r * self.cols + c]
    }
}

/// One memory-mapped safetensors file with its parsed header.
struct Shard {
    path: PathBuf,
    /// The whole file, mapped read-only (never zero-length: shorter files are refused first).
    map: Mmap,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
    metadata: safetensors::tensor::Metadata,
}

impl Shard {
    fn open(path: &Path) -> Result<Shard, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 8 {
            // Too short to hold the length prefix (and never map a zero-length file).
            return Err(ModelError::Format {
                path: path.to_path_buf(),
                source: safetensors::SafeTensorError::HeaderTooSmall,
            });
        }
        // SAFETY: the mapping is read-only and only ever read through `&[u8]`. Modifying or truncating
        // the file while a `Model` holds it mapped is undefined behaviour (as with every mmap
        // reader); model files are not expected to change while being read.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (n, metadata) = SafeTensors::read_metadata(&map).map_err(|source| ModelError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Shard {
            path: path.to_path_buf(),
            map,
            data_start: 8 + n,
            metadata,
        })
    }
}

/// Where a tensor lives.
#[derive(Debug, Clone)]
struct Entry {
    shard: usize,
    info: TensorInfo,
}

/// An opened model: one safetensors file or all shards of a Hugging Face model directory,
/// memory-mapped. Opening parses and validates every header (so later loads cannot hit a
/// corrupt header) but reads no tensor data. `Model` is `Send + Sync`: layers can be loaded
/// from several threads at once.
pub struct Model {
    path: PathBuf,
    shards: Vec<Shard>,
    /// Tensors in natural name order.
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// An ONNX model (opened from a `.onnx` file): then `shards` and `entries` are empty and
    /// every method asks it instead.
    onnx: Option<Box<crate::onnx::OnnxModel>>,
    /// The GGUF file, when the model is one (then `shards` is empty and every entry's data
    /// lives here).
    gguf: Option<GgufFile>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("shards", &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>())
            .field("tensors", &self.entries.len())
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct IndexJson {
    weight_map: BTreeMap<String, String>,
}

impl Model {
    /// Opens `path`, which is one of:
    /// - a `.safetensors` file (any file name);
    /// - a directory containing `model.safetensors.index.json` (sharded; its `weight_map` maps
    ///   tensor name -> shard file name in the same directory), which takes precedence;
    /// - a directory containing `model.safetensors`;
    /// - an ONNX model (a file named `*.onnx`): the weights of its `MatMul` and `Gemm` nodes
    ///   are the linear layers, oriented `[out, in]` (see the `onnx` module's rules; external
    ///   data files are read from the model's directory).
    /// - a `.gguf` file (llama.cpp's container, recognized by the extension): F32/F16/BF16
    ///   tensors and the block types Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K (dequantized); shapes
    ///   outermost first (`[out, in]`), names as llama.cpp writes them (`blk.0.attn_q.weight`).
    ///
    /// For a sharded model every tensor named in `weight_map` must be present in the shard it
    /// names, and no tensor may appear in two shards. Tensors present in a shard but absent from
    /// `weight_map` are included too. Dtypes are not checked here (any dtype can be listed);
    /// only [`Model::load_f32`] requires F32/F16/BF16.
    pub fn open(path: &Path) -> Result<Model, ModelError> {
        let meta = std::fs::metadata(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ModelError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                ModelError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        if !meta.is_dir() && is_gguf_path(path) {
            let (g, infos) = GgufFile::open(path)?;
            let mut m = Self::from_entries(
                path,
                Vec::new(),
                infos.into_iter().map(|info| Entry { shard: 0, info }).collect(),
            );
            m.gguf = Some(g);
            return Ok(m);
        }
        let shards = if meta.is_dir() {
            let index = path.join(INDEX_FILE);
            let single = path.join(SINGLE_FILE);
            if index.is_file() {
                return Self::open_sharded(path, &index);
            } else if single.is_file() {
                vec![Shard::open(&single)?]
            } else {
                return Err(ModelError::NoWeightsInDir {
                    path: path.to_path_buf(),
                });
            }
        } else if crate::onnx::is_onnx_path(path) {
            let onnx = crate::onnx::OnnxModel::open(path)?;
            return Ok(Model {
                path: path.to_path_buf(),
                shards: Vec::new(),
                entries: Vec::new(),
                by_name: HashMap::new(),
                onnx: Some(Box::new(onnx)),
                gguf: None,
            });
        } else {
            vec![Shard::open(path)?]
        };
        Self::assemble(path, path, shards, None)
    }

    fn open_sharded(dir: &Path, index: &Path) -> Result<Model, ModelError> {
        let bad = |reason: String| ModelError::BadIndex {
            path: index.to_path_buf(),
            reason,
        };
        let text = std::fs::read(index).map_err(|source| ModelError::Io {
            path: index.to_path_buf(),
            source,
        })?;
        let parsed: IndexJson = serde_json::from_slice(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        // Shard files in first-seen (sorted-by-file-name) order, deduplicated.
        let mut files: Vec<&str> = parsed.weight_map.values().map(String::as_str).collect();
        files.sort_by(|a, b| natural_cmp(a, b));
        files.dedup();
        if files.is_empty() {
            return Err(bad("weight_map is empty".into()));
        }
        let mut shards = Vec::with_capacity(files.len());
        for f in &files {
            let rel = Path::new(f);
            let plain = rel.components().count() == 1 && matches!(rel.components().next(), Some(Component::Normal(_)));
            if !plain {
                return Err(bad(format!(
                    "shard name `{f}` is not a plain file name in the model directory"
                )));
            }
            let shard = dir.join(rel);
            if !shard.is_file() {
                return Err(ModelError::ShardMissing {
                    index: index.to_path_buf(),
                    shard,
                });
            }
            shards.push(Shard::open(&shard)?);
        }
        let shard_of: HashMap<&str, usize> = files.iter().enumerate().map(|(i, f)| (*f, i)).collect();
        let expected: Vec<(&str, usize)> = parsed
            .weight_map
            .iter()
            .map(|(name, f)| (name.as_str(), shard_of[f.as_str()]))
            .collect();
        Self::assemble(dir, index, shards, Some(&expected))
    }

    /// `path` is what the model was opened from; `err_path` is the file blamed for
    /// inconsistencies between shards (the index file, or `path` itself).
    fn assemble(
        path: &Path,
        err_path: &Path,
        shards: Vec<Shard>,
        expected: Option<&[(&str, usize)]>,
    ) -> Result<Model, ModelError> {
        let mut entries = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (si, shard) in shards.iter().enumerate() {
            for (name, info) in shard.metadata.tensors() {
                if let Some(&prev) = by_name.get(&name) {
                    let prev: &Entry = &entries[prev];
                    return Err(ModelError::BadIndex {
                        path: err_path.to_path_buf(),
                        reason: format!(
                            "tensor `{name}` appears in both {} and {}",
                            prev.info.file.display(),
                            shard.path.display()
                        ),
                    });
                }
                by_name.insert(name.clone(), entries.len());
                entries.push(Entry {
                    shard: si,
                    info: TensorInfo {
                        name,
                        shape: info.shape.clone(),
                        dtype: DType::from_safetensors(info.dtype),
                        file: shard.path.clone(),
                    },
                });
            }
        }
        if let Some(expected) = expected {
            for &(name, si) in expected {
                let ok = by_name.get(name).is_some_and(|&e| entries[e].shard == si);
                if !ok {
                    return Err(ModelError::BadIndex {
                        path: err_path.to_path_buf(),
                        reason: format!(
                            "tensor `{name}` is listed in weight_map for {} but that shard does not contain it",
                            shards[si].path.display()
                        ),
                    });
                }
            }
        }
        Ok(Self::from_entries(path, shards, entries))
    }

    /// The model over `entries` (sorted here into natural name order).
    fn from_entries(path: &Path, shards: Vec<Shard>, mut entries: Vec<Entry>) -> Model {
        entries.sort_by(|a, b| natural_cmp(&a.info.name, &b.info.name));
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.info.name.clone(), i))
            .collect();
        Model {
            path: path.to_path_buf(),
            shards,
            entries,
            by_name,
            onnx: None,
            gguf: None,
        }
    }

    /// The path given to [`Model::open`] (a file or a model directory), as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files backing this model: the safetensors file or shards, the GGUF file; for ONNX
    /// the model file, then its external data files.
    pub fn files(&self) -> Vec<&Path> {
        if let Some(o) = &self.onnx {
            return o.files();
        }
        match &self.gguf {
            Some(g) => vec![g.path.as_path()],
            None => self.shards.iter().map(|s| s.path.as_path()).collect(),
        }
    }

    /// The metadata key/value pairs of a GGUF model (in file order), `None` for safetensors.
    pub fn gguf_metadata(&self) -> Option<&[(String, Value)]> {
        self.gguf.as_ref().map(|g| g.kv.as_slice())
    }

    /// The block-quantized types among this model's tensors with how many tensors have each,
    /// sorted by type name (e.g. `[("Q4_1", 210), ("Q8_0", 1)]`); empty when every tensor is
    /// stored in a float type. Their f32 values are a dequantization: the source was already
    /// on a quantization grid, which every error figure computed from it must say
    /// ([`Model::quantized_source_note`]).
    pub fn already_quantized(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in &self.entries {
            if let DType::Quantized(t) = &e.info.dtype {
                *counts.entry(t.clone()).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// A one-line note for stderr and reports when the model was already quantized (see
    /// [`Model::already_quantized`]), `None` otherwise.
    pub fn quantized_source_note(&self) -> Option<String> {
        let q = self.already_quantized();
        if q.is_empty() {
            return None;
        }
        let what: Vec<String> = q.iter().map(|(t, n)| format!("{n} x {t}")).collect();
        Some(format!(
            "note: {} was already quantized ({} tensors): they are dequantized to f32 and every \
             figure is measured against those dequantized weights, which already lie on a quantization \
             grid, not against the original training weights",
            self.path.display(),
            what.join(", ")
        ))
    }

    /// All tensors, sorted by name in natural order (`layer.2` before `layer.10`; see
    /// [`natural_cmp`]). The order is deterministic and independent of file layout.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        if let Some(o) = &self.onnx {
            return o.tensors();
        }
        self.entries.iter().map(|e| e.info.clone()).collect()
    }

    /// Metadata of one tensor, or `None` if there is no tensor of that name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        if let Some(o) = &self.onnx {
            return o.tensor(name);
        }
        self.by_name.get(name).map(|&i| &self.entries[i].info)
    }

    /// The weight matrices of linear layers, in the same order as [`Model::tensors`].
    ///
    /// Rule: a tensor is a linear-layer weight iff
    /// 1. its name ends with `.weight`, and
    /// 2. it has rank 2 with both dimensions non-zero, and
    /// 3. it is not an embedding table: no dot-separated component of its name contains `embed`
    ///    (case-insensitive; covers `word_embeddings`, `position_embeddings`,
    ///    `token_type_embeddings`, `embed_tokens`, `embed_positions`) or equals `wte` / `wpe`
    ///    (GPT-2 token / position embeddings), and
    /// 4. it is not a normalisation weight: no component contains `norm` (case-insensitive;
    ///    `LayerNorm`, `layer_norm`, `RMSNorm`, `input_layernorm`) and none starts with `ln_`.
    ///    These are 1-D anyway; the check guards against unusual layouts.
    ///
    /// 5. it is not llama.cpp's token embedding or output head (GGUF names `token_embd.*` and
    ///    `output.weight`); its linear layers are `blk.N.attn_q.weight`, `blk.N.ffn_gate.weight`
    ///    and so on.
    ///
    /// `lm_head.weight` IS included (it is an `nn.Linear`, even when tied to the embedding).
    /// Dtype is not part of the rule; [`Model::load_f32`] rejects non-float weights.
    /// Note: GPT-2-style `Conv1D` weights are stored `[in, out]`; this crate assumes the
    /// `nn.Linear` `[out, in]` layout and does not transpose.
    ///
    /// For an ONNX model the graph decides instead: the 2-D weight initializers of `MatMul`
    /// and `Gemm` nodes, `[out, in]` ([`Model::skipped_weights`] lists the nodes left out).
    pub fn linear_layers(&self) -> Vec<TensorInfo> {
        if let Some(o) = &self.onnx {
            return o.linear_layers();
        }
        self.entries
            .iter()
            .filter(|e| is_linear_weight(&e.info.name, &e.info.shape))
            .map(|e| e.info.clone())
            .collect()
    }

    /// Loads tensor `name` as an f32 matrix, refusing NaN/Inf ([`NonFinitePolicy::Refuse`]).
    ///
    /// Errors: [`ModelError::UnknownTensor`], [`ModelError::UnsupportedDtype`] (not
    /// F32/F16/BF16), [`ModelError::UnsupportedGgmlType`] (a GGUF tensor type that is not
    /// converted), [`ModelError::NotTwoD`], [`ModelError::ZeroSize`],
    /// [`ModelError::NonFinite`].
    pub fn load_f32(&self, name: &str) -> Result<Weights2D, ModelError> {
        self.load_f32_with(name, NonFinitePolicy::Refuse)
    }

    /// Like [`Model::load_f32`], with an explicit policy for NaN/Inf values (see
    /// [`NonFinitePolicy`]). F16/BF16 values convert exactly to f32.
    pub fn load_f32_with(&self, name: &str, policy: NonFinitePolicy) -> Result<Weights2D, ModelError> {
        if let Some(o) = &self.onnx {
            return o.load_f32_with(name, policy);
        }
        let entry = self.entry(name)?;
        let info = &entry.info;
        let unsupported = || ModelError::UnsupportedDtype {
            file: info.file.clone(),
            tensor: info.name.clone(),
            dtype: info.dtype.to_string(),
        };
        // A GGUF file converts more types (its own check names the ggml type).
        if self.gguf.is_none() && info.dtype.src().is_none() {
            return Err(unsupported());
        }
        let (rows, cols) = info.matrix_dims()?;
        let data = self.decode(entry)?;
        if data.len() != rows * cols {
            // Cannot happen for a header that passed validation; kept as a guard.
            return Err(ModelError::Format {
                path: info.file.clone(),
                source: safetensors::SafeTensorError::TensorInvalidInfo,
            });
        }
        Weights2D::checked(info, rows, cols, data, policy)
    }

    /// Tensor `name` of any rank (a norm's 1-D weight, ...) as f32 values in C order with its
    /// shape (outermost first), converted like [`Model::load_f32`] and refusing NaN/Inf. Errors
    /// as [`Model::load_f32`] but for the rank.
    pub fn load_any_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let entry = self.entry(name)?;
        let mut data = self.decode(entry)?;
        let inner = entry.info.shape.last().copied().unwrap_or(1);
        apply_policy(name, inner, &mut data, NonFinitePolicy::Refuse)?;
        Ok((entry.info.shape.clone(), data))
    }

    /// The f32 values of `entry` (F32/F16/BF16 exactly, GGUF block types dequantized).
    fn decode(&self, entry: &Entry) -> Result<Vec<f32>, ModelError> {
        let info = &entry.info;
        let mut data = Vec::new();
        match (info.dtype.src(), &self.gguf) {
            (Some(src), _) => decode_into(src, self.raw_bytes(entry)?, &mut data),
            (None, Some(g)) => data = g.to_f32(&info.name)?,
            (None, None) => {
                return Err(ModelError::UnsupportedDtype {
                    file: info.file.clone(),
                    tensor: info.name.clone(),
                    dtype: info.dtype.to_string(),
                })
            }
        }
        Ok(data)
    }

    /// The stored bytes of tensor `name` as they are in the file (little-endian elements of
    /// its safetensors dtype, which is returned with them): for copying a tensor through
    /// unchanged. Errors: [`ModelError::UnknownTensor`], a bad offset as
    /// [`ModelError::Format`]; for a GGUF model, [`ModelError::UnsupportedDtype`] for a tensor
    /// that is not F32/F16/BF16 (a block-quantized tensor has no safetensors dtype). For ONNX:
    /// the elements in the shape [`Model::tensor`] gives (a layer stored `[in, out]` is
    /// transposed), typed-data fields converted; a data type safetensors lacks is
    /// [`crate::OnnxError::NoSafetensorsDtype`].
    pub fn raw_tensor(&self, name: &str) -> Result<(safetensors::Dtype, Cow<'_, [u8]>), ModelError> {
        if let Some(o) = &self.onnx {
            return o.raw_tensor(name);
        }
        let entry = self.entry(name)?;
        if self.gguf.is_some() {
            let dtype = match entry.info.dtype {
                DType::F32 => safetensors::Dtype::F32,
                DType::F16 => safetensors::Dtype::F16,
                DType::BF16 => safetensors::Dtype::BF16,
                _ => {
                    return Err(ModelError::UnsupportedDtype {
                        file: entry.info.file.clone(),
                        tensor: name.to_string(),
                        dtype: entry.info.dtype.to_string(),
                    })
                }
            };
            return Ok((dtype, Cow::Borrowed(self.raw_bytes(entry)?)));
        }
        let shard = &self.shards[entry.shard];
        let dtype = shard
            .metadata
            .info(name)
            .map(|ti| ti.dtype)
            .ok_or_else(|| ModelError::Format {
                path: shard.path.clone(),
                source: safetensors::SafeTensorError::InvalidOffset(name.to_string()),
            })?;
        Ok((dtype, Cow::Borrowed(self.raw_bytes(entry)?)))
    }

    /// The `MatMul` / `Gemm` nodes of an ONNX model whose weight is not a linear layer, each
    /// with its reason, in graph order; empty for safetensors models.
    pub fn skipped_weights(&self) -> &[crate::SkippedWeight] {
        self.onnx.as_ref().map_or(&[], |o| o.skipped())
    }

    fn entry(&self, name: &str) -> Result<&Entry, ModelError> {
        self.by_name
            .get(name)
            .map(|&i| &self.entries[i])
            .ok_or_else(|| ModelError::UnknownTensor {
                model: self.path.clone(),
                name: name.to_string(),
            })
    }

    fn raw_bytes(&self, entry: &Entry) -> Result<&[u8], ModelError> {
        if let Some(g) = &self.gguf {
            return g.bytes(&entry.info.name);
        }
        let shard = &self.shards[entry.shard];
        let bad = || ModelError::Format {
            path: shard.path.clone(),
            source: safetensors::SafeTensorError::InvalidOffset(entry.info.name.clone()),
        };
        let ti = shard.metadata.info(&entry.info.name).ok_or_else(bad)?;
        let (s, e) = ti.data_offsets;
        let start = shard.data_start.checked_add(s).ok_or_else(bad)?;
        let end = shard.data_start.checked_add(e).ok_or_else(bad)?;
        shard.map.get(start..end).ok_or_else(bad)
    }
}

/// The linear-layer rule of [`Model::linear_layers`], on a name and shape.
pub fn is_linear_weight(name: &str, shape: &[usize]) -> bool {
    if !name.ends_with(".weight") || shape.len() != 2 || shape.contains(&0) {
        return false;
    }
    // llama.cpp's names of the token embedding and the output head (GGUF files).
    if name.starts_with("token_embd.") || name == "output.weight" {
        return false;
    }
    !name.split('.').any(|part| {
        let p = part.to_ascii_lowercase();
        p.contains("embed") || p == "wte" || p == "wpe" || p.contains("norm") || p.starts_with("ln_")
    })
}
