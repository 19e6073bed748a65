//! ONNX models (`.onnx`): the weights of `MatMul` and `Gemm` nodes as linear layers.
//!
//! The file is decoded with prost from the official ONNX schema (`proto/onnx.proto3`, compiled
//! by `build.rs`). The model file is memory-mapped and handed to the decoder as one
//! [`bytes::Bytes`], so initializers' `raw_data` stay slices of the map; external data files
//! (`data_location = EXTERNAL`) are memory-mapped too. Only the top-level graph is read
//! (subgraphs of `If` / `Loop` / `Scan` and sparse initializers are not).
//!
//! Which initializers are linear layers, and how they are oriented, follows from the graph:
//! - `MatMul(A, B)` computes `A · B` with `B` of shape `[in, out]`: a 2-D initializer in input B
//!   is a linear layer, transposed to `[out, in]`;
//! - `Gemm(A, B, C)` computes `alpha · A' · B' + beta · C` with `B' = B^T` when `transB = 1`:
//!   a 2-D initializer in input B is a linear layer, `[out, in]` as stored when `transB = 1`,
//!   transposed when `transB = 0`. `alpha` and `beta` are not applied (a scalar factor on a
//!   whole tensor is not part of what a quantizer stores);
//! - every other case (the initializer is input A, B is computed by another node or is a graph
//!   input, B is not 2-D or has no elements, B was already listed for an earlier node) is
//!   skipped and reported with its reason ([`crate::Model::skipped_weights`]).
//!
//! A layer is named after its initializer, unless that name is anonymous (empty, all digits, or
//! starting with `onnx::` as PyTorch's exporter writes `onnx::MatMul_123`); then it is named
//! after its node (e.g. `/encoder/layer.0/attention/self/query/MatMul`), or `<op>_<index>`
//! for a node without a name. Initializers that are not linear layers are listed under their
//! own names and shapes ([`crate::Model::tensors`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use memmap2::Mmap;
use prost::Message;

use crate::convert::{decode_into, Src};
use crate::model::{DType, TensorInfo, Weights2D};
use crate::natural::natural_cmp;
use crate::{ModelError, NonFinitePolicy};

/// The types prost generates from `proto/onnx.proto3`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::tensor_proto::{DataLocation, DataType};
use proto::{NodeProto, TensorProto};

/// True for a path whose extension is `onnx` (ASCII case-insensitive): [`crate::Model::open`]
/// reads such a file as an ONNX model.
pub(crate) fn is_onnx_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// A `MatMul` or `Gemm` node of an ONNX graph whose weight is not read as a linear layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedWeight {
    /// The node's name, or `<op>_<index>` (its position in the graph) when it has none.
    pub node: String,
    /// `MatMul` or `Gemm`.
    pub op_type: String,
    /// Why it is not a linear layer, e.g. "input B `x` is computed by node `t` (Transpose), not
    /// an initializer".
    pub reason: String,
}

/// What can be wrong with an ONNX model in particular (the errors it shares with safetensors
/// files, such as an unsupported data type or NaN weights, are [`ModelError`]'s own variants).
/// Every variant names the model file and, where it applies, the tensor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file is not a protobuf-encoded `ModelProto` (truncated, corrupt, not ONNX).
    #[error("{path}: not a valid ONNX model (truncated or corrupt protobuf): {source}")]
    Decode {
        /// The model file.
        path: PathBuf,
        /// The protobuf decoder's diagnosis.
        #[source]
        source: prost::DecodeError,
    },

    /// The model has no graph.
    #[error("{path}: the ONNX model has no graph")]
    NoGraph {
        /// The model file.
        path: PathBuf,
    },

    /// No `MatMul` or `Gemm` node of the graph takes a 2-D weight initializer, so the model has
    /// no linear layer to quantize.
    #[error(
        "{path}: no MatMul or Gemm node takes a 2-D weight initializer, so there is no linear layer to quantize \
         ({nodes} MatMul/Gemm nodes{detail})"
    )]
    NoLinearWeights {
        /// The model file.
        path: PathBuf,
        /// How many `MatMul` / `Gemm` nodes the graph has.
        nodes: usize,
        /// The first skipped nodes and their reasons (`; skipped: ...`), or empty.
        detail: String,
    },

    /// An initializer that is malformed: negative or overflowing dimensions, data whose size
    /// does not match the shape, a typed-data value out of its type's range, a segmented
    /// tensor, an unknown data location, a duplicate name.
    #[error("{path}: initializer `{tensor}`: {reason}")]
    BadTensor {
        /// The model file.
        path: PathBuf,
        /// The initializer (or layer) name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// An initializer stored in an external data file that does not exist.
    #[error("{path}: initializer `{tensor}`: its external data file {file} does not exist")]
    ExternalMissing {
        /// The model file.
        path: PathBuf,
        /// The initializer name.
        tensor: String,
        /// The missing file (the location resolved against the model's directory).
        file: PathBuf,
    },

    /// An initializer's external-data description is unusable: no `location`, a location that
    /// is absolute or leaves the model's directory, an offset or length that is not a number or
    /// points past the end of the file.
    #[error("{path}: initializer `{tensor}`: bad external data: {reason}")]
    BadExternal {
        /// The model file.
        path: PathBuf,
        /// The initializer name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// A tensor whose ONNX data type has no safetensors equivalent, so its bytes cannot be
    /// copied into a safetensors file ([`crate::Model::raw_tensor`]).
    #[error("{path}: tensor `{tensor}` has ONNX data type {dtype}, which has no safetensors equivalent")]
    NoSafetensorsDtype {
        /// The model file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The ONNX data type name.
        dtype: String,
    },
}

/// Where a tensor's elements are.
#[derive(Debug, Clone)]
enum Data {
    /// Little-endian elements: `raw_data`, or a slice of an external data file.
    Raw(Bytes),
    /// In the typed field of the tensor proto (`float_data`, `int32_data`, ...).
    Typed(Box<TensorProto>),
}

/// One tensor as this crate presents it.
#[derive(Debug, Clone)]
struct Presented {
    info: TensorInfo,
    /// A linear layer (the weight of a MatMul / Gemm node).
    linear: bool,
    /// Stored `[in, out]`: presented transposed, as `[out, in]`.
    transpose: bool,
    /// The ONNX `TensorProto.DataType` number.
    data_type: i32,
    data: Data,
}

/// An opened ONNX model (held by [`crate::Model`]).
#[derive(Debug)]
pub(crate) struct OnnxModel {
    path: PathBuf,
    /// The model file, then the external data files in first-use order.
    files: Vec<PathBuf>,
    /// In natural name order.
    tensors: Vec<Presented>,
    by_name: HashMap<String, usize>,
    skipped: Vec<SkippedWeight>,
}

/// Bytes per element of the ONNX data types whose elements are whole bytes, and the
/// safetensors dtype with the same encoding.
fn element_type(data_type: i32) -> Option<(usize, safetensors::Dtype)> {
    use safetensors::Dtype as D;
    Some(match DataType::try_from(data_type).ok()? {
        DataType::Float => (4, D::F32),
        DataType::Uint8 => (1, D::U8),
        DataType::Int8 => (1, D::I8),
        DataType::Uint16 => (2, D::U16),
        DataType::Int16 => (2, D::I16),
        DataType::Int32 => (4, D::I32),
        DataType::Int64 => (8, D::I64),
        DataType::Bool => (1, D::BOOL),
        DataType::Float16 => (2, D::F16),
        DataType::Double => (8, D::F64),
        DataType::Uint32 => (4, D::U32),
        DataType::Uint64 => (8, D::U64),
        DataType::Bfloat16 => (2, D::BF16),
        DataType::Float8e4m3fn => (1, D::F8_E4M3),
        DataType::Float8e4m3fnuz => (1, D::F8_E4M3FNUZ),
        DataType::Float8e5m2 => (1, D::F8_E5M2),
        DataType::Float8e5m2fnuz => (1, D::F8_E5M2FNUZ),
        DataType::Float8e8m0 => (1, D::F8_E8M0),
        _ => return None,
    })
}

/// The name of an ONNX data type number, as in the schema (`FLOAT`, `BFLOAT16`, ...).
fn data_type_name(data_type: i32) -> String {
    match DataType::try_from(data_type) {
        Ok(d) => d.as_str_name().to_string(),
        Err(_) => format!("unknown data type {data_type}"),
    }
}

fn dtype_of(data_type: i32) -> DType {
    match DataType::try_from(data_type) {
        Ok(DataType::Float) => DType::F32,
        Ok(DataType::Float16) => DType::F16,
        Ok(DataType::Bfloat16) => DType::BF16,
        _ => DType::Other(data_type_name(data_type)),
    }
}

/// PyTorch names the initializers it creates `onnx::<Op>_<n>` (older exporters: plain numbers);
/// such a name says nothing about the layer.
fn is_anonymous(name: &str) -> bool {
    name.is_empty() || name.starts_with("onnx::") || name.bytes().all(|b| b.is_ascii_digit())
}

fn node_label(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("{}_{index}", node.op_type)
    } else {
        node.name.clone()
    }
}

fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// Memory-maps `path` as one `Bytes` (an empty file becomes empty bytes: a zero-length map is
/// not portable).
fn map_file(path: &Path) -> Result<Bytes, std::io::Error> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only and only read through `&[u8]`. Modifying or truncating
    // the file while it is mapped is undefined behaviour (as with every mmap reader); model
    // files are not expected to change while being read.
    let map = unsafe { Mmap::map(&file) }?;
    Ok(Bytes::from_owner(map))
}

/// Decides, for one MatMul / Gemm node, which initializer is its linear weight and whether it
/// is stored `[in, out]`; or why there is none.
fn weight_of<'g>(
    node: &'g NodeProto,
    inits: &HashMap<&str, &'g TensorProto>,
    producers: &HashMap<&str, (usize, &'g NodeProto)>,
) -> Result<(&'g TensorProto, bool), String> {
    let (Some(a), Some(b)) = (node.input.first(), node.input.get(1)) else {
        return Err(format!("has {} inputs, expected at least 2", node.input.len()));
    };
    let transpose = if node.op_type == "Gemm" {
        match int_attribute(node, "transB").unwrap_or(0) {
            0 => true,
            1 => false,
            t => return Err(format!("attribute transB = {t} is neither 0 nor 1")),
        }
    } else {
        true
    };
    if let Some(t) = inits.get(b.as_str()) {
        return if t.dims.len() != 2 {
            Err(format!(
                "input B `{b}` is a {}-D initializer {:?}; only a 2-D weight is a linear layer",
                t.dims.len(),
                t.dims
            ))
        } else if t.dims.contains(&0) {
            Err(format!("input B `{b}` has shape {:?} with no elements", t.dims))
        } else {
            Ok((t, transpose))
        };
    }
    if inits.contains_key(a.as_str()) {
        return Err(format!(
            "the initializer `{a}` is input A (the left operand), which is not a weight applied to activations; \
             only an initializer in input B is read"
        ));
    }
    let source = match producers.get(b.as_str()) {
        Some((i, p)) => format!("is computed by node `{}` ({})", node_label(p, *i), p.op_type),
        None => "is a graph input".to_string(),
    };
    Err(format!("input B `{b}` {source}, not an initializer"))
}

impl OnnxModel {
    /// Opens and checks an ONNX model: decodes the protobuf, finds the linear layers, maps the
    /// external data files and checks that every initializer's data matches its shape.
    pub(crate) fn open(path: &Path) -> Result<OnnxModel, ModelError> {
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| ModelError::Io { path: p, source }
        };
        let bytes = map_file(path).map_err(io(path))?;
        let model = proto::ModelProto::decode(bytes).map_err(|source| OnnxError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
        let graph = model.graph.ok_or_else(|| OnnxError::NoGraph {
            path: path.to_path_buf(),
        })?;
        let bad = |tensor: &str, reason: String| OnnxError::BadTensor {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        };

        // Initializers by name. An unnamed one cannot be referenced by any node: not listed.
        let mut inits: HashMap<&str, &TensorProto> = HashMap::new();
        for t in graph.initializer.iter().filter(|t| !t.name.is_empty()) {
            if inits.insert(&t.name, t).is_some() {
                return Err(bad(&t.name, "two initializers have this name".into()).into());
            }
        }
        let mut producers: HashMap<&str, (usize, &NodeProto)> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producers.entry(o.as_str()).or_insert((i, n));
            }
        }

        // The linear layers, in graph order: (name, initializer, transpose, node index).
        let mut layers: Vec<(String, &TensorProto, bool, usize)> = Vec::new();
        let mut layer_of: HashMap<&str, usize> = HashMap::new();
        let mut skipped = Vec::new();
        let mut matmul_nodes = 0usize;
        for (i, node) in graph.node.iter().enumerate() {
            let standard = node.domain.is_empty() || node.domain == "ai.onnx";
            if !standard || !(node.op_type == "MatMul" || node.op_type == "Gemm") {
                continue;
            }
            matmul_nodes += 1;
            let reason = match weight_of(node, &inits, &producers) {
                Ok((t, transpose)) => match layer_of.get(t.name.as_str()) {
                    Some(&l) => Err(format!(
                        "its weight `{}` is already listed as layer `{}`",
                        t.name, layers[l].0
                    )),
                    None => {
                        let name = if is_anonymous(&t.name) {
                            node_label(node, i)
                        } else {
                            t.name.clone()
                        };
                        layer_of.insert(&t.name, layers.len());
                        layers.push((name, t, transpose, i));
                        Ok(())
                    }
                },
                Err(r) => Err(r),
            };
            if let Err(reason) = reason {
                skipped.push(SkippedWeight {
                    node: node_label(node, i),
                    op_type: node.op_type.clone(),
                    reason,
                });
            }
        }
        if layers.is_empty() {
            let mut detail: String = skipped
                .iter()
                .take(3)
                .map(|s| format!("; skipped {} `{}`: {}", s.op_type, s.node, s.reason))
                .collect();
            if skipped.len() > 3 {
                detail.push_str(&format!("; and {} more", skipped.len() - 3));
            }
            return Err(OnnxError::NoLinearWeights {
                path: path.to_path_buf(),
                nodes: matmul_nodes,
                detail,
            }
            .into());
        }

        // Names: every other initializer keeps its own; a layer named after its node that
        // collides with a taken name gets `#<node index>`.
        let mut taken: HashSet<String> = inits
            .keys()
            .filter(|n| !layer_of.contains_key(*n))
            .map(|n| n.to_string())
            .collect();
        for (name, t, _, _) in &layers {
            if *name == t.name {
                taken.insert(name.clone());
            }
        }
        for (name, t, _, i) in &mut layers {
            if *name == t.name {
                continue;
            }
            if taken.contains(name.as_str()) {
                *name = format!("{name}#{i}");
            }
            if !taken.insert(name.clone()) {
                return Err(bad(&t.name, format!("the layer name `{name}` is taken by another tensor")).into());
            }
        }

        let mut reader = DataReader {
            path,
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            maps: HashMap::new(),
            files: vec![path.to_path_buf()],
        };
        let mut tensors = Vec::with_capacity(inits.len());
        for (name, t, transpose, _) in &layers {
            let mut p = reader.present(t, name.clone(), *transpose)?;
            p.linear = true;
            tensors.push(p);
        }
        for (name, t) in &inits {
            if !layer_of.contains_key(name) {
                tensors.push(reader.present(t, name.to_string(), false)?);
            }
        }
        tensors.sort_by(|a, b| natural_cmp(&a.info.name, &b.info.name));
        let by_name = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.info.name.clone(), i))
            .collect();
        Ok(OnnxModel {
            path: path.to_path_buf(),
            files: reader.files,
            tensors,
            by_name,
            skipped,
        })
    }

    /// The model file, then its external data files.
    pub(crate) fn files(&self) -> Vec<&Path> {
        self.files.iter().map(PathBuf::as_path).collect()
    }

    /// Every tensor: linear layers `[out, in]`, other initializers as stored.
    pub(crate) fn tensors(&self) -> Vec<TensorInfo> {
        self.tensors.iter().map(|t| t.info.clone()).collect()
    }

    /// One tensor's description.
    pub(crate) fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i].info)
    }

    /// The weights of the MatMul / Gemm nodes, `[out, in]`.
    pub(crate) fn linear_layers(&self) -> Vec<TensorInfo> {
        self.tensors
            .iter()
            .filter(|t| t.linear)
            .map(|t| t.info.clone())
            .collect()
    }

    /// The MatMul / Gemm nodes whose weight is not a linear layer, in graph order.
    pub(crate) fn skipped(&self) -> &[SkippedWeight] {
        &self.skipped
    }

    fn get(&self, name: &str) -> Result<&Presented, ModelError> {
        self.by_name
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| ModelError::UnknownTensor {
                model: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// Loads a 2-D tensor as f32, linear layers oriented `[out, in]`.
    pub(crate) fn load_f32_with(&self, name: &str, policy: NonFinitePolicy) -> Result<Weights2D, ModelError> {
        let t = self.get(name)?;
        let info = &t.info;
        let src = match DataType::try_from(t.data_type) {
            Ok(DataType::Float) => Src::F32,
            Ok(DataType::Float16) => Src::F16,
            Ok(DataType::Bfloat16) => Src::BF16,
            _ => {
                return Err(ModelError::UnsupportedDtype {
                    file: info.file.clone(),
                    tensor: info.name.clone(),
                    dtype: info.dtype.to_string(),
                })
            }
        };
        let (rows, cols) = info.matrix_dims()?;
        let bytes = self.element_bytes(t)?;
        let mut stored = Vec::new();
        decode_into(src, &bytes, &mut stored);
        let data = if t.transpose {
            transpose(&stored, cols, rows)
        } else {
            stored
        };
        if data.len() != rows * cols {
            // Cannot happen for a tensor that passed `open`'s size check; kept as a guard.
            return Err(self.bad(info, format!("{} values for shape {:?}", data.len(), info.shape)));
        }
        Weights2D::checked(info, rows, cols, data, policy)
    }

    /// The tensor's elements as little-endian bytes of its safetensors dtype, in the presented
    /// orientation (a transposed layer's elements are permuted).
    pub(crate) fn raw_tensor(&self, name: &str) -> Result<(safetensors::Dtype, Cow<'_, [u8]>), ModelError> {
        let t = self.get(name)?;
        let Some((width, dtype)) = element_type(t.data_type) else {
            return Err(OnnxError::NoSafetensorsDtype {
                path: self.path.clone(),
                tensor: name.to_string(),
                dtype: data_type_name(t.data_type),
            }
            .into());
        };
        let bytes = self.element_bytes(t)?;
        if !t.transpose {
            return Ok((dtype, bytes));
        }
        let &[rows, cols] = t.info.shape.as_slice() else {
            return Err(self.bad(&t.info, "a transposed tensor that is not 2-D".into()));
        };
        let mut out = vec![0u8; bytes.len()];
        // Stored [cols, rows] (in, out); element (r, c) of the result is stored at (c, r).
        for r in 0..rows {
            for c in 0..cols {
                let s = (c * rows + r) * width;
                let d = (r * cols + c) * width;
                out[d..d + width].copy_from_slice(&bytes[s..s + width]);
            }
        }
        Ok((dtype, Cow::Owned(out)))
    }

    fn bad(&self, info: &TensorInfo, reason: String) -> ModelError {
        OnnxError::BadTensor {
            path: self.path.clone(),
            tensor: info.name.clone(),
            reason,
        }
        .into()
    }

    /// Little-endian element bytes as stored (`raw_data` / external data borrowed, typed fields
    /// converted).
    fn element_bytes<'a>(&'a self, t: &'a Presented) -> Result<Cow<'a, [u8]>, ModelError> {
        match &t.data {
            Data::Raw(b) => Ok(Cow::Borrowed(b.as_ref())),
            Data::Typed(p) => typed_bytes(p, t.info.numel())
                .map(Cow::Owned)
                .map_err(|reason| self.bad(&t.info, reason)),
        }
    }
}

/// `data` is `rows x cols` row-major; returns its `cols x rows` transpose.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    for (r, row) in data.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}

/// Converts a tensor's typed data field (the one its data type uses) to little-endian element
/// bytes, checking the count and each value's range.
fn typed_bytes(t: &TensorProto, numel: usize) -> Result<Vec<u8>, String> {
    fn count<T>(field: &str, v: &[T], numel: usize) -> Result<(), String> {
        if v.len() == numel {
            Ok(())
        } else {
            Err(format!("{field} holds {} values, the shape needs {numel}", v.len()))
        }
    }
    /// `int32_data` narrowed to `width` bytes: each value must lie in `lo..=hi`.
    fn narrow(t: &TensorProto, numel: usize, width: usize, lo: i64, hi: i64) -> Result<Vec<u8>, String> {
        count("int32_data", &t.int32_data, numel)?;
        let mut out = Vec::with_capacity(numel * width);
        for (i, &v) in t.int32_data.iter().enumerate() {
            if !(lo..=hi).contains(&i64::from(v)) {
                return Err(format!(
                    "int32_data[{i}] = {v} is outside {lo}..={hi}, the range of {}",
                    data_type_name(t.data_type)
                ));
            }
            out.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        Ok(out)
    }
    let dt = DataType::try_from(t.data_type).map_err(|_| data_type_name(t.data_type))?;
    match dt {
        DataType::Float => {
            count("float_data", &t.float_data, numel)?;
            Ok(t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DataType::Double => {
            count("double_data", &t.double_data, numel)?;
            Ok(t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DataType::Int64 => {
            count("int64_data", &t.int64_data, numel)?;
            Ok(t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DataType::Uint64 => {
            count("uint64_data", &t.uint64_data, numel)?;
            Ok(t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        DataType::Uint32 => {
            count("uint64_data", &t.uint64_data, numel)?;
            t.uint64_data
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    u32::try_from(v)
                        .map(u32::to_le_bytes)
                        .map_err(|_| format!("uint64_data[{i}] = {v} is outside the range of UINT32"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat())
        }
        DataType::Int32 => narrow(t, numel, 4, i64::from(i32::MIN), i64::from(i32::MAX)),
        DataType::Int16 => narrow(t, numel, 2, i64::from(i16::MIN), i64::from(i16::MAX)),
        // (b)float16 values are stored as their 16-bit patterns.
        DataType::Uint16 | DataType::Float16 | DataType::Bfloat16 => narrow(t, numel, 2, 0, 0xffff),
        DataType::Int8 => narrow(t, numel, 1, -128, 127),
        DataType::Bool => narrow(t, numel, 1, 0, 1),
        DataType::Uint8
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Float8e8m0 => narrow(t, numel, 1, 0, 0xff),
        other => Err(format!("typed data of type {} is not read", other.as_str_name())),
    }
}

/// Turns initializers into [`Presented`] tensors, memory-mapping each external data file once.
struct DataReader<'p> {
    path: &'p Path,
    dir: PathBuf,
    maps: HashMap<PathBuf, Bytes>,
    files: Vec<PathBuf>,
}

impl DataReader<'_> {
    fn bad(&self, tensor: &str, reason: String) -> ModelError {
        OnnxError::BadTensor {
            path: self.path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        }
        .into()
    }

    fn bad_external(&self, tensor: &str, reason: String) -> ModelError {
        OnnxError::BadExternal {
            path: self.path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        }
        .into()
    }

    /// Checks `t` (shape, data location and size) and describes it under `name`.
    fn present(&mut self, t: &TensorProto, name: String, transpose: bool) -> Result<Presented, ModelError> {
        let mut stored = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            let d = usize::try_from(d).map_err(|_| self.bad(&t.name, format!("negative dimension in {:?}", t.dims)))?;
            stored.push(d);
        }
        let numel = stored
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| self.bad(&t.name, format!("shape {:?} overflows", t.dims)))?;
        if t.segment.is_some() {
            return Err(self.bad(
                &t.name,
                "segmented tensors (TensorProto.segment) are not supported".into(),
            ));
        }
        let (data, file) = match DataLocation::try_from(t.data_location) {
            Ok(DataLocation::External) => {
                let (bytes, file) = self.external(t)?;
                (Data::Raw(bytes), file)
            }
            Ok(DataLocation::Default) if !t.raw_data.is_empty() => {
                (Data::Raw(t.raw_data.clone()), self.path.to_path_buf())
            }
            Ok(DataLocation::Default) => {
                let mut typed = t.clone();
                // Only the typed fields are needed later; do not keep a second copy of names.
                typed.doc_string.clear();
                (Data::Typed(Box::new(typed)), self.path.to_path_buf())
            }
            Err(_) => {
                return Err(self.bad(
                    &t.name,
                    format!(
                        "data_location {} is neither DEFAULT (0) nor EXTERNAL (1)",
                        t.data_location
                    ),
                ))
            }
        };
        if let Some((width, _)) = element_type(t.data_type) {
            match &data {
                Data::Raw(b) => {
                    let want = numel.checked_mul(width);
                    if want != Some(b.len()) {
                        return Err(self.bad(
                            &t.name,
                            format!(
                                "{} data bytes, but shape {:?} of {} needs {} x {width}",
                                b.len(),
                                t.dims,
                                data_type_name(t.data_type),
                                numel
                            ),
                        ));
                    }
                }
                Data::Typed(p) => {
                    typed_bytes(p, numel).map_err(|reason| self.bad(&t.name, reason))?;
                }
            }
        }
        let shape = match (transpose, stored.as_slice()) {
            (true, &[i, o]) => vec![o, i],
            _ => stored,
        };
        Ok(Presented {
            info: TensorInfo {
                name,
                shape,
                dtype: dtype_of(t.data_type),
                file,
            },
            linear: false,
            transpose,
            data_type: t.data_type,
            data,
        })
    }

    /// The bytes of an externally stored tensor, and the file they are in.
    fn external(&mut self, t: &TensorProto) -> Result<(Bytes, PathBuf), ModelError> {
        let (mut location, mut offset, mut length) = (None, None, None);
        for e in &t.external_data {
            let number = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| self.bad_external(&t.name, format!("{} `{v}` is not a byte count", e.key)))
            };
            match e.key.as_str() {
                "location" => location = Some(e.value.as_str()),
                "offset" => offset = Some(number(&e.value)?),
                "length" => length = Some(number(&e.value)?),
                // `checksum` (SHA-1 of the file) and unknown keys do not affect where data is.
                _ => {}
            }
        }
        let location = location
            .filter(|l| !l.is_empty())
            .ok_or_else(|| self.bad_external(&t.name, "no `location` key".into()))?;
        let rel = Path::new(location);
        if !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(self.bad_external(
                &t.name,
                format!("location `{location}` is not a relative path inside the model's directory"),
            ));
        }
        let file = self.dir.join(rel);
        let bytes = match self.maps.get(&file) {
            Some(b) => b.clone(),
            None => {
                if !file.is_file() {
                    return Err(OnnxError::ExternalMissing {
                        path: self.path.to_path_buf(),
                        tensor: t.name.clone(),
                        file,
                    }
                    .into());
                }
                let b = map_file(&file).map_err(|source| ModelError::Io {
                    path: file.clone(),
                    source,
                })?;
                self.maps.insert(file.clone(), b.clone());
                self.files.push(file.clone());
                b
            }
        };
        let len = bytes.len() as u64;
        let start = offset.unwrap_or(0);
        let end = match length {
            Some(n) => start.checked_add(n),
            None => Some(len.max(start)),
        };
        match end {
            Some(end) if start <= len && end <= len => {
                // Both fit in the file's length, a usize.
                Ok((bytes.slice(start as usize..end as usize), file))
            }
            _ => Err(self.bad_external(
                &t.name,
                format!(
                    "offset {start} and length {} reach past the end of {} ({len} bytes)",
                    length.map_or("(rest of file)".to_string(), |n| n.to_string()),
                    file.display()
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_names() {
        for n in ["", "onnx::MatMul_123", "1234"] {
            assert!(is_anonymous(n), "{n}");
        }
        for n in ["encoder.layer.0.attention.self.query.weight", "fc1.weight", "w1"] {
            assert!(!is_anonymous(n), "{n}");
        }
    }

    #[test]
    fn onnx_extension() {
        assert!(is_onnx_path(Path::new("a/model.onnx")));
        assert!(is_onnx_path(Path::new("MODEL.ONNX")));
        assert!(!is_onnx_path(Path::new("model.onnx.data")));
        assert!(!is_onnx_path(Path::new("model.safetensors")));
    }

    #[test]
    fn transposes() {
        // 2 x 3 -> 3 x 2.
        assert_eq!(transpose(&[1., 2., 3., 4., 5., 6.], 2, 3), [1., 4., 2., 5., 3., 6.]);
    }

    #[test]
    fn typed_ranges_are_checked() {
        let t = TensorProto {
            data_type: DataType::Float16 as i32,
            int32_data: vec![0x3c00, 70000],
            ..Default::default()
        };
        let e = typed_bytes(&t, 2).unwrap_err();
        assert!(e.contains("int32_data[1] = 70000") && e.contains("FLOAT16"), "{e}");
        let t = TensorProto {
            data_type: DataType::Bfloat16 as i32,
            int32_data: vec![0x3f80, 0xbf80],
            ..Default::default()
        };
        assert_eq!(typed_bytes(&t, 2).unwrap(), [0x80, 0x3f, 0x80, 0xbf]);
        assert!(typed_bytes(&t, 3).unwrap_err().contains("holds 2 values"));
    }
}
