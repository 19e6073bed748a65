//! `sop-qmodel`: the quantized-model file format, reader and writer.
//!
//! The file (`model.sop.safetensors`) holds every layer's [`QuantizedLayer`] as byte tensors
//! plus JSON metadata, loadable back bit-exactly: [`to_bytes`] writes it, [`from_bytes`] reads
//! it (`sop quantize` / `sop inspect`). Layout in `docs/quantizer.md`.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sop_formats::pack::{pack, unpack};
use sop_formats::{Element, LutEntry, OperatingPoint};
use sop_quantize::sparse::MenuOption;
use sop_quantize::{decode_entry, Lut, QuantizedLayer, SparseEntry};

mod shards;

/// A failed read or write of a quantized model. Every message names the file (or the layer
/// the writer was given).
#[derive(Debug, thiserror::Error)]
pub enum QmodelError {
    /// `path` is not a valid quantized model, shard or index; `reason` says what is wrong.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the layer or tensor.
        reason: String,
    },
    /// Reading a file failed (`what`: e.g. `reading the quantized model`).
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// The step.
        what: String,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// An output file could not be written whole (nothing was left under its name).
    #[error(transparent)]
    Write(#[from] sop_atomic_write::Error),
    /// Layers the writer cannot store as given (an option that does not match its layer, a
    /// layer twice, more or fewer layers than the shard plan), or that do not serialize.
    #[error("{0}")]
    Layers(String),
}

/// Results of this crate.
pub type Result<T, E = QmodelError> = std::result::Result<T, E>;

/// [`QmodelError::Invalid`] of `path` with a formatted reason.
macro_rules! invalid {
    ($path:expr, $($fmt:tt)*) => {
        $crate::QmodelError::Invalid { path: $path.to_path_buf(), reason: format!($($fmt)*) }
    };
}
pub(crate) use invalid;

/// `Err(`[`QmodelError::Layers`]`)` unless `cond`.
macro_rules! ensure_layers {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err($crate::QmodelError::Layers(format!($($fmt)*)));
        }
    };
}
pub(crate) use ensure_layers;

/// `return Err(err)` unless `cond`.
macro_rules! check {
    ($cond:expr, $err:expr) => {
        if !$cond {
            return Err($err);
        }
    };
}
pub(crate) use check;

pub use shards::{
    finish_layout, layout_file_name, read_index, shard_file_name, shard_plan, FileEntry, ModelWriter, ShardWriter,
    INDEX_FILE,
};

/// Value of the `format` metadata key: the format name and its version. Version 2 stores
/// sparse entries (outliers, residuals) in the lane-output domain, before the tensor scale
/// (`sop_quantize::sparse`); version 1 stored them in the final domain and is refused.
pub const FORMAT: &str = "sop-quantized/2";
/// The `format` value without its version: a file whose `format` starts with this but is not
/// [`FORMAT`] is another version of this format.
const FORMAT_NAME: &str = "sop-quantized/";
/// File name inside the output directory.
pub const MODEL_FILE: &str = "model.sop.safetensors";

/// Per-layer metadata (JSON array under the `layers` metadata key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// Tensor name.
    pub name: String,
    /// The chosen menu option (`POINT[+O<p>%][+R<p>%]`).
    pub option: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The LUTs' element, entry format and bias (words are in the `.lutN` tensors).
    pub tables: Vec<TableMeta>,
    /// Exact stored bits of the layer.
    pub bits: u64,
}

/// A LUT's scalar parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Codebook.
    pub element: Element,
    /// Entry word format.
    pub entry: LutEntry,
    /// HIF bias register.
    pub bias: i32,
}

fn sparse_bytes(v: &[SparseEntry]) -> Vec<u8> {
    v.iter()
        .flat_map(|e| e.index.to_le_bytes().into_iter().chain(e.bf16.to_le_bytes()))
        .collect()
}

fn sparse_from(b: &[u8]) -> Result<Vec<SparseEntry>, String> {
    if b.len() % 6 != 0 {
        return Err(format!("sparse tensor of {} bytes is not a multiple of 6", b.len()));
    }
    Ok(b.chunks_exact(6)
        .map(|c| SparseEntry {
            index: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            bf16: u16::from_le_bytes([c[4], c[5]]),
        })
        .collect())
}

fn scale_width(p: &OperatingPoint) -> usize {
    match p {
        OperatingPoint::Block { scale, .. } if scale.bits() > 8 => 4,
        _ => 1,
    }
}

/// One tensor of a layer as stored: name, dtype and little-endian bytes.
type Tensor = (String, Dtype, Vec<u8>);

/// The tensors and the metadata entry of one layer, as [`to_bytes`] and [`ShardWriter`] store
/// them.
fn layer_tensors(l: &QuantizedLayer, opt: &MenuOption) -> Result<(Vec<Tensor>, LayerMeta)> {
    ensure_layers!(
        opt.point == l.point,
        "{}: option {opt} does not match point {}",
        l.name,
        l.point
    );
    let n = &l.name;
    let mut bufs: Vec<Tensor> = Vec::new();
    let mut add = |suffix: &str, dtype: Dtype, bytes: Vec<u8>| {
        bufs.push((format!("{n}.{suffix}"), dtype, bytes));
    };
    add("codes", Dtype::U8, l.packed_codes());
    let sel = pack(&l.sel, 1).map_err(|e| QmodelError::Layers(format!("{}: selection bits: {e}", l.name)))?;
    add("sel", Dtype::U8, sel);
    let sw = scale_width(&l.point);
    add(
        "scales",
        Dtype::U8,
        l.scale_codes
            .iter()
            .flat_map(|c| c.to_le_bytes()[..sw].to_vec())
            .collect(),
    );
    for (i, t) in l.tables.iter().enumerate() {
        add(
            &format!("lut{i}"),
            Dtype::U8,
            t.words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        );
    }
    add("tensor_scale", Dtype::F32, l.tensor_scale.to_le_bytes().to_vec());
    add("outliers", Dtype::U8, sparse_bytes(&l.outliers));
    add("residuals", Dtype::U8, sparse_bytes(&l.residuals));
    let meta = LayerMeta {
        name: l.name.clone(),
        option: opt.to_string(),
        rows: l.rows,
        cols: l.cols,
        tables: l
            .tables
            .iter()
            .map(|t| TableMeta {
                element: t.element,
                entry: t.entry,
                bias: t.bias,
            })
            .collect(),
        bits: l.bits(),
    };
    Ok((bufs, meta))
}

/// Element width in bytes of the dtypes this format stores.
fn dtype_width(d: Dtype) -> usize {
    if d == Dtype::F32 {
        4
    } else {
        1
    }
}

/// The file metadata: `format`, the `layers` JSON and the caller's extra keys.
fn file_metadata(metas: &[LayerMeta], extra: &[(&str, String)]) -> Result<HashMap<String, String>> {
    let mut md = HashMap::new();
    md.insert("format".to_string(), FORMAT.to_string());
    md.insert(
        "layers".to_string(),
        serde_json::to_string(metas).map_err(|e| QmodelError::Layers(format!("layer metadata: {e}")))?,
    );
    for (k, v) in extra {
        md.insert(k.to_string(), v.clone());
    }
    Ok(md)
}

/// Serializes layers (with their menu options) to safetensors bytes.
pub fn to_bytes(layers: &[(QuantizedLayer, MenuOption)], extra: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut metas = Vec::new();
    for (l, opt) in layers {
        let (tensors, meta) = layer_tensors(l, opt)?;
        for (name, dtype, bytes) in tensors {
            let shape = vec![bytes.len() / dtype_width(dtype)];
            bufs.push((name, dtype, shape, bytes));
        }
        metas.push(meta);
    }
    let md = file_metadata(&metas, extra)?;
    let views: Vec<(String, TensorView<'_>)> = bufs
        .iter()
        .map(|(k, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| QmodelError::Layers(format!("tensor `{k}`: {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::serialize(views, Some(md)).map_err(|e| QmodelError::Layers(format!("serializing: {e}")))?;
    sorted_header(&bytes)
}

/// A loaded quantized model.
pub struct Loaded {
    /// Layers with their options, in file order.
    pub layers: Vec<(QuantizedLayer, MenuOption)>,
    /// All metadata.
    pub metadata: HashMap<String, String>,
}

/// Parses safetensors bytes written by [`to_bytes`].
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Loaded> {
    let ctx = |e: &dyn std::fmt::Display| invalid!(path, "not a SOP quantized model: {e}");
    let (_, md) = SafeTensors::read_metadata(bytes).map_err(|e| ctx(&e))?;
    let metadata = md.metadata().clone().unwrap_or_default();
    match metadata.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) if other.starts_with(FORMAT_NAME) => {
            return Err(invalid!(
                path,
                "metadata key `format` is not `{FORMAT}`: the file is `{other}`, another format \
                 version (quantize the model again with this `sop quantize`)"
            ))
        }
        _ => return Err(invalid!(path, "metadata key `format` is not `{FORMAT}`")),
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| ctx(&e))?;
    let metas: Vec<LayerMeta> =
        serde_json::from_str(metadata.get("layers").map(String::as_str).unwrap_or("")).map_err(|e| ctx(&e))?;
    let mut layers: Vec<(QuantizedLayer, MenuOption)> = Vec::new();
    for m in metas {
        let bad = |reason: String| invalid!(path, "layer `{}`: {reason}", m.name);
        if layers.iter().any(|(l, _)| l.name == m.name) {
            return Err(bad("appears twice in the `layers` metadata".into()));
        }
        let get = |s: &str| -> Result<Vec<u8>> {
            Ok(st
                .tensor(&format!("{}.{s}", m.name))
                .map_err(|_| invalid!(path, "layer `{}` has no `.{s}` tensor", m.name))?
                .data()
                .to_vec())
        };
        let opt: MenuOption = m.option.parse().map_err(|e: String| bad(format!("option {e}")))?;
        let point = opt.point;
        let n = m
            .rows
            .checked_mul(m.cols)
            .filter(|&n| n > 0 && u32::try_from(n).is_ok())
            .ok_or_else(|| bad(format!("shape {}x{} is empty or too large", m.rows, m.cols)))?;
        let codes = unpack(&get("codes")?, point.code_bits(), n).map_err(|e| bad(format!("codes: {e}")))?;
        let blocks = match point.block() {
            Some(b) => m.rows * m.cols.div_ceil(b as usize),
            None => 0,
        };
        let sel = unpack(&get("sel")?, 1, blocks).map_err(|e| bad(format!("selection bits: {e}")))?;
        let sw = scale_width(&point);
        let sb = get("scales")?;
        check!(
            sb.len() == blocks * sw,
            bad(format!("{} scale bytes for {blocks} blocks", sb.len()))
        );
        let scale_codes = sb
            .chunks_exact(sw)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..sw].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        check!(
            m.tables.len() == point.tables() as usize,
            bad(format!(
                "{} LUTs recorded, option {} has {}",
                m.tables.len(),
                m.option,
                point.tables()
            ))
        );
        let entries = 1usize << point.code_bits();
        let mut tables = Vec::new();
        for (i, t) in m.tables.iter().enumerate() {
            check!(
                (-100..=100).contains(&t.bias),
                bad(format!("LUT {i} bias {} is outside -100..=100", t.bias))
            );
            let wb = get(&format!("lut{i}"))?;
            check!(
                wb.len() == 2 * entries,
                bad(format!(
                    "LUT {i} has {} bytes, expected {entries} 16-bit words",
                    wb.len()
                ))
            );
            let words: Vec<u16> = wb.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            let levels = words.iter().map(|&w| decode_entry(t.entry, t.bias, w)).collect();
            tables.push(Lut {
                element: t.element,
                entry: t.entry,
                words,
                bias: t.bias,
                levels,
            });
        }
        let ts = get("tensor_scale")?;
        check!(ts.len() == 4, bad("tensor_scale must be 4 bytes".into()));
        let sparse = |s: &str| -> Result<Vec<SparseEntry>> {
            let v = sparse_from(&get(s)?).map_err(|e| bad(format!("{s}: {e}")))?;
            if let Some(e) = v.iter().find(|e| e.index as usize >= n) {
                return Err(bad(format!("{s}: index {} is outside the {n} weights", e.index)));
            }
            // Ascending and unique: a correction stream is applied in weight order.
            if let Some(w) = v.windows(2).find(|w| w[1].index <= w[0].index) {
                return Err(bad(format!(
                    "{s}: index {} follows index {}: entries must be sorted ascending without repeats",
                    w[1].index, w[0].index
                )));
            }
            if let Some(e) = v.iter().find(|e| !e.is_finite()) {
                return Err(bad(format!(
                    "{s}: index {} has the non-finite value 0x{:04x} (bf16 exponent all ones)",
                    e.index, e.bf16
                )));
            }
            Ok(v)
        };
        let outliers = sparse("outliers")?;
        let residuals = sparse("residuals")?;
        // Both are sorted (checked above): a residual never sits at an outlier position.
        if let Some(e) = residuals
            .iter()
            .find(|e| outliers.binary_search_by_key(&e.index, |o| o.index).is_ok())
        {
            return Err(bad(format!(
                "residuals: index {} is also an outlier: a residual never sits at an outlier position",
                e.index
            )));
        }
        let l = QuantizedLayer {
            name: m.name.clone(),
            rows: m.rows,
            cols: m.cols,
            point,
            codes,
            sel,
            scale_codes,
            tables,
            tensor_scale: f32::from_le_bytes([ts[0], ts[1], ts[2], ts[3]]),
            outliers,
            residuals,
        };
        check!(
            l.bits() == m.bits,
            bad(format!("{} bits recorded, {} loaded", m.bits, l.bits()))
        );
        layers.push((l, opt));
    }
    Ok(Loaded { layers, metadata })
}

/// Reads a quantized model: `path` is the directory `sop quantize` wrote (its
/// [`INDEX_FILE`] and shards when it has an index, else its [`MODEL_FILE`]), an index file,
/// or a model file itself. Errors name the file.
pub fn read(path: &Path) -> Result<Loaded> {
    let file = if path.is_dir() {
        if path.join(INDEX_FILE).is_file() {
            return read_index(&path.join(INDEX_FILE));
        }
        path.join(MODEL_FILE)
    } else if path.to_string_lossy().ends_with(".index.json") {
        return read_index(path);
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|error| QmodelError::Io {
        what: "reading the quantized model".into(),
        path: file.clone(),
        error,
    })?;
    from_bytes(&bytes, &file)
}

/// The safetensors file `bytes` with its JSON header re-serialized with every object's keys
/// sorted. `safetensors::serialize` takes the metadata as a `HashMap`, whose iteration order
/// (and so the header bytes) changes from run to run; the output must be a function of the
/// inputs alone. The tensor data is unchanged (offsets are relative to the header's end).
fn sorted_header(bytes: &[u8]) -> Result<Vec<u8>> {
    let err = |what: &str| QmodelError::Layers(format!("serialized model: {what}"));
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .filter(|&n| n <= bytes.len() - 8)
        .ok_or_else(|| err("truncated safetensors header"))?;
    // serde_json's `Map` is a `BTreeMap` (no `preserve_order` feature): keys come out sorted.
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| err(&format!("safetensors header: {e}")))?;
    let mut h = serde_json::to_vec(&header).map_err(|e| err(&format!("safetensors header: {e}")))?;
    // Pad with spaces to a multiple of 8 bytes, as safetensors does, to keep the data aligned.
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + h.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Writes `bytes` to `dir/name` whole or not at all (`sop_atomic_write::write`: temporary
/// file in `dir`, fsync, rename, directory fsync) and returns the path written.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let dest = dir.join(name);
    sop_atomic_write::write(&dest, bytes)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_quantize::sparse::quantize_option;
    use sop_quantize::{LayerRef, QuantOptions, Quantizer};
    use std::fs;

    #[test]
    fn round_trip_is_bit_exact() {
        let data: Vec<f32> = (0..48 * 40)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 333.0)
            .collect();
        let a: Vec<f32> = (0..40).map(|j| 0.5 + j as f32 / 10.0).collect();
        let mut layers = Vec::new();
        for name in [
            "NF4+DD4sUE4M4b16+O0.5%+R1%",
            "Split87+DD4sSE4M3b16",
            "E2M1sE4M3b16+R0.5%",
            "E2M3sUE4M4b32",
            "E4M3-POT+O1%",
            "NF4sF32b64",
        ] {
            let opt: MenuOption = name.parse().unwrap();
            let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
            let w = LayerRef {
                name,
                rows: 48,
                cols: 40,
                data: &data,
            };
            layers.push((quantize_option(&q, &opt, w, Some(&a)).unwrap(), opt));
        }
        let bytes = to_bytes(&layers, &[("k", "v".into())]).unwrap();
        let back = from_bytes(&bytes, Path::new("mem")).unwrap();
        assert_eq!(back.layers, layers);
        assert_eq!(back.metadata["k"], "v");
        for ((l, _), (m, _)) in back.layers.iter().zip(&layers) {
            let (x, y) = (l.dequantize(), m.dequantize());
            assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("x")).unwrap(); // the destination is a directory
        let e = write_atomic(d.path(), "x", b"data").unwrap_err();
        assert!(format!("{e:#}").contains("renaming"), "{e:#}");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x")]);
        assert!(from_bytes(b"garbage", Path::new("g")).is_err());
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use sop_quantize::sparse::quantize_option;
    use sop_quantize::{LayerRef, QuantOptions, Quantizer};
    use std::fs;

    /// Layers of several options, sparse entries included, names out of alphabetical order.
    fn layers() -> Vec<(QuantizedLayer, MenuOption)> {
        let data: Vec<f32> = (0..24 * 64)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 333.0)
            .collect();
        let mut out = Vec::new();
        for (i, name) in [
            "NF4+DD4sUE4M4b16+O0.5%+R1%",
            "E2M3sUE4M4b32",
            "E2M1sE4M3b16+R0.5%",
            "NF4sF32b64",
        ]
        .iter()
        .enumerate()
        {
            let opt: MenuOption = name.parse().unwrap();
            let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
            let lname = format!("blk.{}.w", 9 - i);
            let w = LayerRef {
                name: &lname,
                rows: 24,
                cols: 64,
                data: &data,
            };
            out.push((quantize_option(&q, &opt, w, None).unwrap(), opt));
        }
        out
    }

    fn files(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn streamed_file_equals_to_bytes() {
        let ls = layers();
        let extra = [("model", "m".to_string()), ("target_bpw", "4.75".to_string())];
        let d = tempfile::tempdir().unwrap();
        let mut w = ModelWriter::create(d.path(), vec![ls.len()], &extra).unwrap();
        for (l, o) in &ls {
            w.push(l, o).unwrap();
        }
        let written = w.finish().unwrap();
        assert_eq!(written, vec![d.path().join(MODEL_FILE)]);
        assert_eq!(fs::read(&written[0]).unwrap(), to_bytes(&ls, &extra).unwrap());
        assert_eq!(files(d.path()), vec![MODEL_FILE.to_string()], "no spool left behind");
    }

    #[test]
    fn sharded_model_reads_back_and_replaces_the_single_file() {
        let ls = layers();
        let d = tempfile::tempdir().unwrap();
        // A single-file model first, then a sharded one over it.
        fs::write(d.path().join(MODEL_FILE), to_bytes(&ls, &[]).unwrap()).unwrap();
        let sizes: Vec<u64> = ls.iter().map(|(l, _)| l.bits() / 8).collect();
        let plan = shard_plan(&sizes, sizes[0] + sizes[1]);
        assert_eq!(plan.iter().sum::<usize>(), ls.len());
        assert!(plan.len() >= 2, "{plan:?}");
        let mut w = ModelWriter::create(d.path(), plan.clone(), &[("k", "v".into())]).unwrap();
        for (l, o) in &ls {
            w.push(l, o).unwrap();
        }
        w.finish().unwrap();
        let mut expect: Vec<String> = (1..=plan.len()).map(|k| shard_file_name(k, plan.len())).collect();
        expect.push(INDEX_FILE.to_string());
        expect.sort();
        assert_eq!(files(d.path()), expect);
        let back = read(d.path()).unwrap();
        assert_eq!(back.layers, ls);
        assert_eq!(back.metadata["k"], "v");
        assert_eq!(read(&d.path().join(INDEX_FILE)).unwrap().layers, ls);
    }

    #[test]
    fn shard_plan_packs_in_order() {
        assert_eq!(shard_plan(&[5, 5, 5], 100), vec![3]);
        assert_eq!(shard_plan(&[5, 5, 5], 10), vec![2, 1]);
        assert_eq!(shard_plan(&[50, 5, 5], 10), vec![1, 2]);
        assert_eq!(shard_plan(&[], 10), vec![0]);
    }

    /// A sharded model in a temporary directory (2 shards).
    fn sharded() -> (tempfile::TempDir, Vec<usize>) {
        let ls = layers();
        let d = tempfile::tempdir().unwrap();
        let plan = vec![2, ls.len() - 2];
        let mut w = ModelWriter::create(d.path(), plan.clone(), &[]).unwrap();
        for (l, o) in &ls {
            w.push(l, o).unwrap();
        }
        w.finish().unwrap();
        (d, plan)
    }

    #[test]
    fn missing_shard_is_named() {
        let (d, plan) = sharded();
        let s = shard_file_name(2, plan.len());
        fs::remove_file(d.path().join(&s)).unwrap();
        let e = format!("{:#}", read(d.path()).err().expect("must fail"));
        assert!(e.contains(&s) && e.contains("missing") && e.contains(INDEX_FILE), "{e}");
    }

    #[test]
    fn index_disagreeing_with_shards_is_named() {
        let (d, plan) = sharded();
        let idx = d.path().join(INDEX_FILE);
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&idx).unwrap()).unwrap();
        // Map one tensor of shard 1 to shard 2.
        let t = "blk.9.w.codes";
        v["weight_map"][t] = shard_file_name(2, plan.len()).into();
        fs::write(&idx, v.to_string()).unwrap();
        let e = format!("{:#}", read(d.path()).err().expect("must fail"));
        assert!(e.contains(t) && e.contains(&shard_file_name(1, plan.len())), "{e}");
        // A tensor the index names that no shard holds.
        v["weight_map"][t] = shard_file_name(1, plan.len()).into();
        v["weight_map"]["ghost.codes"] = shard_file_name(2, plan.len()).into();
        fs::write(&idx, v.to_string()).unwrap();
        let e = format!("{:#}", read(d.path()).err().expect("must fail"));
        assert!(e.contains("ghost.codes") && e.contains("does not hold it"), "{e}");
        // A shard path that leaves the directory.
        v["shards"][0] = "../x".into();
        fs::write(&idx, v.to_string()).unwrap();
        let e = format!("{:#}", read(d.path()).err().expect("must fail"));
        assert!(e.contains("not a plain file name"), "{e}");
    }

    #[test]
    fn abandoned_writer_leaves_nothing() {
        let ls = layers();
        let d = tempfile::tempdir().unwrap();
        let mut w = ModelWriter::create(d.path(), vec![ls.len()], &[]).unwrap();
        w.push(&ls[0].0, &ls[0].1).unwrap();
        assert!(w.push(&ls[0].0, &ls[0].1).is_err(), "a layer twice");
        drop(w);
        assert!(files(d.path()).is_empty(), "{:?}", files(d.path()));
        // Fewer layers than planned: finish refuses, nothing under the final name.
        let mut w = ModelWriter::create(d.path(), vec![ls.len()], &[]).unwrap();
        w.push(&ls[0].0, &ls[0].1).unwrap();
        assert!(w.finish().is_err());
        assert!(files(d.path()).is_empty(), "{:?}", files(d.path()));
    }
}
