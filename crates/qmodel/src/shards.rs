//! Streaming and sharded quantized models: [`ShardWriter`] writes one model file layer by
//! layer without holding the layers in memory (same bytes as [`crate::to_bytes`]);
//! [`ModelWriter`] splits a model into shards with an index in the style of Hugging Face's
//! `model.safetensors.index.json`; [`read_index`] loads a sharded model back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::{json, Value};
use sop_quantize::sparse::MenuOption;
use sop_quantize::QuantizedLayer;

use crate::{
    check, dtype_width, ensure_layers, file_metadata, from_bytes, invalid, layer_tensors, LayerMeta, Loaded,
    QmodelError, Result, FORMAT, MODEL_FILE,
};

/// [`QmodelError::Io`] of `what` on `path`.
fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> QmodelError {
    let (what, path) = (what.to_string(), path.to_path_buf());
    move |error| QmodelError::Io { what, path, error }
}

/// Name of the index of a sharded model inside its directory.
pub const INDEX_FILE: &str = "model.sop.safetensors.index.json";

/// File name of shard `k` (1-based) of `n`: `model-00001-of-00003.sop.safetensors`.
pub fn shard_file_name(k: usize, n: usize) -> String {
    format!("model-{k:05}-of-{n:05}.sop.safetensors")
}

/// File name of file `k` (0-based) of a model written as `n` files: [`MODEL_FILE`] when
/// `n == 1`, else [`shard_file_name`]`(k + 1, n)`.
pub fn layout_file_name(k: usize, n: usize) -> String {
    if n == 1 {
        MODEL_FILE.to_string()
    } else {
        shard_file_name(k + 1, n)
    }
}

/// What the index of a sharded model records of one written file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// File name inside the model directory ([`layout_file_name`]).
    pub name: String,
    /// The tensors it holds.
    pub tensors: Vec<String>,
    /// Bytes of tensor data it holds (the index's `total_size` sums them).
    pub data_bytes: u64,
    /// Size of the whole file in bytes (header included).
    pub file_bytes: u64,
}

/// Completes a model directory whose files `files` (in file order, every one written) are
/// already in `dir`: writes the [`INDEX_FILE`] when there is more than one file (the index
/// last, so a model whose index exists is complete), then removes the other layout's stale
/// entry point (a [`MODEL_FILE`] or [`INDEX_FILE`] of an earlier run) so that readers see
/// the new model. Returns the index path when one was written.
pub fn finish_layout(dir: &Path, files: &[FileEntry], extra: &[(&str, String)]) -> Result<Option<PathBuf>> {
    ensure_layers!(!files.is_empty(), "{}: a model needs at least one file", dir.display());
    let (index, stale) = if files.len() == 1 {
        (None, dir.join(INDEX_FILE))
    } else {
        let mut metadata = serde_json::Map::new();
        metadata.insert("format".into(), FORMAT.into());
        metadata.insert(
            "total_size".into(),
            files.iter().map(|f| f.data_bytes).sum::<u64>().into(),
        );
        for (k, v) in extra {
            metadata.insert(k.to_string(), v.clone().into());
        }
        let mut weight_map = BTreeMap::new();
        for f in files {
            for t in &f.tensors {
                weight_map.insert(t.clone(), f.name.clone());
            }
        }
        let shards: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let index = json!({"metadata": metadata, "shards": shards, "weight_map": weight_map});
        let text = serde_json::to_string_pretty(&index).map_err(|e| QmodelError::Layers(format!("index: {e}")))? + "\n";
        (
            Some(crate::write_atomic(dir, INDEX_FILE, text.as_bytes())?),
            dir.join(MODEL_FILE),
        )
    };
    match fs::remove_file(&stale) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing the stale", &stale)(e)),
    }
    Ok(index)
}

/// Splits layers of the given (estimated) stored sizes, in order, into shards of at most
/// `max_shard_bytes` each (a layer larger than that gets a shard of its own). Returns the
/// number of layers in each shard; one shard when everything fits.
pub fn shard_plan(layer_bytes: &[u64], max_shard_bytes: u64) -> Vec<usize> {
    let mut plan = vec![0usize];
    let mut size = 0u64;
    for &b in layer_bytes {
        let cur = plan.last_mut().expect("non-empty");
        if *cur > 0 && size.saturating_add(b) > max_shard_bytes {
            plan.push(1);
            size = b;
        } else {
            *cur += 1;
            size = size.saturating_add(b);
        }
    }
    plan
}

/// The safetensors header (8-byte length, JSON, space padding to a multiple of 8) of a file
/// holding `tensors` (name, dtype, byte length) and metadata `md`, and the order in which the
/// tensors' data follows it. Byte-identical to `safetensors::serialize` followed by
/// `sorted_header`: data sorted by descending dtype then name, JSON keys sorted.
fn header(md: &HashMap<String, String>, tensors: &[(String, Dtype, u64)]) -> Result<(Vec<u8>, Vec<usize>)> {
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| tensors[b].1.cmp(&tensors[a].1).then(tensors[a].0.cmp(&tensors[b].0)));
    let mut map = serde_json::Map::new();
    let mut offset = 0u64;
    for &i in &order {
        let (name, dtype, len) = &tensors[i];
        let shape = *len / dtype_width(*dtype) as u64;
        let dtype = serde_json::to_value(dtype).map_err(|e| QmodelError::Layers(format!("tensor `{name}`: {e}")))?;
        let entry = json!({"dtype": dtype, "shape": [shape], "data_offsets": [offset, offset + len]});
        ensure_layers!(
            map.insert(name.clone(), entry).is_none(),
            "tensor `{name}` appears twice"
        );
        offset += len;
    }
    let md: serde_json::Map<String, Value> = md.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    map.insert("__metadata__".to_string(), Value::Object(md));
    let mut h = serde_json::to_vec(&Value::Object(map)).map_err(|e| QmodelError::Layers(format!("header: {e}")))?;
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + h.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    Ok((out, order))
}

/// Writes one model file layer by layer: each layer's tensors go to a spool file beside the
/// destination as they come (memory: one layer at a time), and [`ShardWriter::finish`] writes
/// the header and copies the data in file order into the destination, whole or not at all
/// (`sop_atomic_write`). The file equals [`crate::to_bytes`] of the same layers byte for byte.
/// Dropping the writer without finishing removes the spool and writes nothing. The spool is
/// an uncommitted `sop_atomic_write` temporary (`.<name>.spool.tmp-<pid>-<n>`), so a spool
/// left by a killed process is removed by the next writer of the same file.
pub struct ShardWriter {
    dest: PathBuf,
    spool_path: PathBuf,
    spool: Option<BufWriter<sop_atomic_write::AtomicFile>>,
    /// (name, dtype, length, offset in the spool) of every tensor pushed.
    tensors: Vec<(String, Dtype, u64, u64)>,
    metas: Vec<LayerMeta>,
    spooled: u64,
}

impl ShardWriter {
    /// Starts writing `dir/name` (the directory must exist).
    pub fn create(dir: &Path, name: &str) -> Result<Self> {
        let dest = dir.join(name);
        let f = sop_atomic_write::AtomicFile::create(&dir.join(format!("{name}.spool")))?;
        let spool_path = f.temp_path().to_path_buf();
        Ok(ShardWriter {
            dest,
            spool_path,
            spool: Some(BufWriter::with_capacity(1 << 20, f)),
            tensors: Vec::new(),
            metas: Vec::new(),
            spooled: 0,
        })
    }

    /// Appends a layer with its menu option. A layer name given twice is an error.
    pub fn push(&mut self, l: &QuantizedLayer, opt: &MenuOption) -> Result<()> {
        if self.metas.iter().any(|m| m.name == l.name) {
            return Err(QmodelError::Layers(format!(
                "{}: layer `{}` written twice",
                self.dest.display(),
                l.name
            )));
        }
        let (tensors, meta) = layer_tensors(l, opt)?;
        let spool = self.spool.as_mut().expect("spool open until finish");
        for (name, dtype, bytes) in tensors {
            spool
                .write_all(&bytes)
                .map_err(io("writing the spool file", &self.spool_path))?;
            self.tensors.push((name, dtype, bytes.len() as u64, self.spooled));
            self.spooled += bytes.len() as u64;
        }
        self.metas.push(meta);
        Ok(())
    }

    /// Bytes of tensor data pushed so far.
    pub fn data_bytes(&self) -> u64 {
        self.spooled
    }

    /// The names of the tensors pushed so far.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.0.as_str())
    }

    /// Writes the file (header with `extra` metadata, then the data in file order) under its
    /// final name and returns that path.
    pub fn finish(self, extra: &[(&str, String)]) -> Result<PathBuf> {
        self.finish_entry(extra).map(|(p, _)| p)
    }

    /// [`ShardWriter::finish`], also returning what an index records of the file.
    pub fn finish_entry(mut self, extra: &[(&str, String)]) -> Result<(PathBuf, FileEntry)> {
        // Kept until the end: dropping it removes the spool.
        let spool_file = self
            .spool
            .take()
            .expect("spool open until finish")
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("writing the spool file", &self.spool_path))?;
        let mut spool = File::open(&self.spool_path).map_err(io("reading the spool file", &self.spool_path))?;
        let md = file_metadata(&self.metas, extra)?;
        let list: Vec<(String, Dtype, u64)> = self.tensors.iter().map(|(n, d, l, _)| (n.clone(), *d, *l)).collect();
        let (head, order) =
            header(&md, &list).map_err(|e| QmodelError::Layers(format!("{}: {e}", self.dest.display())))?;
        let entry = FileEntry {
            name: self
                .dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            tensors: list.iter().map(|t| t.0.clone()).collect(),
            data_bytes: self.spooled,
            file_bytes: head.len() as u64 + self.spooled,
        };
        let mut out = sop_atomic_write::AtomicFile::create(&self.dest)?;
        out.write_all(&head).map_err(io("writing", &self.dest))?;
        let mut buf = vec![0u8; 1 << 20];
        for &i in &order {
            let (_, _, mut len, off) = self.tensors[i];
            spool
                .seek(SeekFrom::Start(off))
                .map_err(io("reading the spool file", &self.spool_path))?;
            while len > 0 {
                let n = len.min(buf.len() as u64) as usize;
                spool
                    .read_exact(&mut buf[..n])
                    .map_err(io("reading the spool file", &self.spool_path))?;
                out.write_all(&buf[..n]).map_err(io("writing", &self.dest))?;
                len -= n as u64;
            }
        }
        let written = out.commit()?;
        drop(spool_file);
        Ok((written, entry))
    }
}

/// Writes a quantized model into a directory, layer by layer: one [`MODEL_FILE`] when the
/// plan has one shard (the same bytes as [`crate::to_bytes`]), otherwise shards named by
/// [`shard_file_name`] and an [`INDEX_FILE`] written last (so a model whose index exists is
/// complete). Every file appears whole or not at all; after the index (or the single file) is
/// written, the other layout's entry point (a stale [`MODEL_FILE`] or [`INDEX_FILE`] from an
/// earlier run) is removed so that readers see the new model.
pub struct ModelWriter {
    dir: PathBuf,
    extra: Vec<(String, String)>,
    plan: Vec<usize>,
    shard: usize,
    in_shard: usize,
    current: Option<ShardWriter>,
    written: Vec<PathBuf>,
    entries: Vec<FileEntry>,
    names: BTreeSet<String>,
}

impl ModelWriter {
    /// Starts writing into `dir` (which must exist) with `plan[k]` layers in shard `k` (see
    /// [`shard_plan`]) and `extra` metadata in every file.
    pub fn create(dir: &Path, plan: Vec<usize>, extra: &[(&str, String)]) -> Result<Self> {
        ensure_layers!(
            !plan.is_empty() && plan.iter().all(|&n| n > 0),
            "shard plan {plan:?}: every shard needs a layer"
        );
        Ok(ModelWriter {
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            plan,
            shard: 0,
            in_shard: 0,
            current: None,
            written: Vec::new(),
            entries: Vec::new(),
            names: BTreeSet::new(),
        })
    }

    fn file_name(&self, k: usize) -> String {
        layout_file_name(k, self.plan.len())
    }

    fn extra(&self) -> Vec<(&str, String)> {
        self.extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }

    /// Appends the next layer. More layers than the plan holds, or a name given twice, is an
    /// error.
    pub fn push(&mut self, l: &QuantizedLayer, opt: &MenuOption) -> Result<()> {
        ensure_layers!(
            self.shard < self.plan.len(),
            "layer `{}`: the shard plan holds {} layers",
            l.name,
            self.plan.iter().sum::<usize>()
        );
        ensure_layers!(self.names.insert(l.name.clone()), "layer `{}` written twice", l.name);
        if self.current.is_none() {
            self.current = Some(ShardWriter::create(&self.dir, &self.file_name(self.shard))?);
        }
        let w = self.current.as_mut().expect("just created");
        w.push(l, opt)?;
        self.in_shard += 1;
        if self.in_shard == self.plan[self.shard] {
            let w = self.current.take().expect("open shard");
            let extra = self.extra();
            let (path, entry) = w.finish_entry(&extra)?;
            self.written.push(path);
            self.entries.push(entry);
            self.shard += 1;
            self.in_shard = 0;
        }
        Ok(())
    }

    /// Writes the index (sharded models) after checking every planned layer came, removes the
    /// other layout's stale entry point, and returns the files written (the entry point last).
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        ensure_layers!(
            self.shard == self.plan.len(),
            "{} layers written, the shard plan holds {}",
            self.names.len(),
            self.plan.iter().sum::<usize>()
        );
        let extra = self.extra();
        if let Some(index) = finish_layout(&self.dir, &self.entries, &extra)? {
            self.written.push(index);
        }
        Ok(self.written)
    }
}

/// Reads a sharded model from its index file: every shard the index lists must exist, hold
/// exactly the tensors the index maps to it, and be a valid model file; layers come in shard
/// order. Errors name the index, the shard and the tensor.
pub fn read_index(index: &Path) -> Result<Loaded> {
    let text = fs::read_to_string(index).map_err(io("reading the index", index))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| invalid!(index, "not a JSON index: {e}"))?;
    let bad = |what: String| invalid!(index, "{what}");
    match v["metadata"]["format"].as_str() {
        Some(FORMAT) => {}
        other => return Err(bad(format!("metadata.format is {other:?}, not `{FORMAT}`"))),
    }
    let shards: Vec<&str> = v["shards"]
        .as_array()
        .ok_or_else(|| bad("no `shards` list".into()))?
        .iter()
        .map(|s| {
            s.as_str()
                .ok_or_else(|| bad(format!("shard entry {s} is not a file name")))
        })
        .collect::<Result<_>>()?;
    check!(!shards.is_empty(), bad("the `shards` list is empty".into()));
    let map = v["weight_map"]
        .as_object()
        .ok_or_else(|| bad("no `weight_map` object".into()))?;
    for s in &shards {
        if s.is_empty() || s.contains('/') || s.contains('\\') || *s == "." || *s == ".." {
            return Err(bad(format!("shard `{s}` is not a plain file name")));
        }
    }
    for (t, f) in map {
        let f = f.as_str().unwrap_or("");
        if !shards.contains(&f) {
            return Err(bad(format!(
                "weight_map maps tensor `{t}` to `{f}`, which is not in the `shards` list"
            )));
        }
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut loaded: Option<Loaded> = None;
    for s in &shards {
        let file = dir.join(s);
        if !file.is_file() {
            return Err(bad(format!(
                "shard `{s}` listed in the index is missing ({})",
                file.display()
            )));
        }
        let bytes = fs::read(&file).map_err(io("reading the shard", &file))?;
        let names: BTreeSet<String> = SafeTensors::deserialize(&bytes)
            .map_err(|e| invalid!(file, "not a SOP quantized model: {e}"))?
            .names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mapped: BTreeSet<String> = map
            .iter()
            .filter(|(_, f)| f.as_str() == Some(s))
            .map(|(t, _)| t.clone())
            .collect();
        if let Some(t) = names.difference(&mapped).next() {
            return Err(bad(format!(
                "shard `{s}` holds tensor `{t}`, which the index maps {}",
                match map.get(t).and_then(Value::as_str) {
                    Some(f) => format!("to `{f}`"),
                    None => "nowhere".to_string(),
                }
            )));
        }
        if let Some(t) = mapped.difference(&names).next() {
            return Err(bad(format!(
                "the index maps tensor `{t}` to shard `{s}`, which does not hold it"
            )));
        }
        let part = from_bytes(&bytes, &file)?;
        match &mut loaded {
            None => loaded = Some(part),
            Some(l) => {
                for (q, o) in part.layers {
                    if l.layers.iter().any(|(p, _)| p.name == q.name) {
                        return Err(bad(format!("layer `{}` appears in more than one shard", q.name)));
                    }
                    l.layers.push((q, o));
                }
            }
        }
    }
    Ok(loaded.expect("at least one shard"))
}
