//! A minimal GGUF reader and writer: the container llama.cpp uses for models and, since 2025,
//! for importance matrices (`imatrix.gguf`).
//!
//! Layout (little-endian): magic `GGUF`, `u32` version (2 and 3 are read, 3 is written),
//! `u64` tensor count, `u64` key/value count, the key/value pairs (key = GGUF string, `u32`
//! value type, value), the tensor infos (name, `u32` n_dims, `n_dims` x `u64` ne, `u32` ggml
//! type, `u64` offset relative to the data section), padding up to `general.alignment`
//! (default 32), then the data section. A GGUF string is a `u64` byte length and UTF-8 bytes
//! (no terminator); an array is a `u32` element type, a `u64` element count and the elements.
//!
//! Every read is bounds-checked; counts and lengths are checked against the bytes left before
//! anything is allocated, and array nesting is limited, so no input makes this module panic or
//! allocate unboundedly. Errors are plain strings; the caller adds the file name.
//!
//! One parser for both kinds of GGUF file this project reads: models (`crate::Model::open`
//! on a `.gguf` file, which converts tensors of the types in `ggml_quants`) and importance
//! matrices (`sop_calib::ImatrixStats::read`, which uses [`Gguf::tensor_f32`]).

/// The four magic bytes at the start of every GGUF file.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// The version this module writes.
pub const WRITE_VERSION: u32 = 3;
/// The default (and written) data alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml type id of IEEE binary32 tensors, the only tensor type this crate reads or writes.
pub const GGML_TYPE_F32: u32 = 0;

/// Deepest nesting of arrays accepted (arrays of arrays of ...).
const MAX_ARRAY_DEPTH: usize = 4;
/// GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;

/// Name of ggml tensor type `t` (`Q4_K`), or `None` for an unknown id. Ids 4, 5 and 31-33
/// are retired in ggml.
pub fn ggml_type_name(t: u32) -> Option<&'static str> {
    const NAMES: [&str; 40] = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32",
        "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0", "TQ2_0", "", "", "", "MXFP4",
    ];
    NAMES.get(t as usize).copied().filter(|s| !s.is_empty())
}

/// Describes a ggml type id for an error message: `F16 (type 1)` or `unknown type 77`.
pub fn describe_type(t: u32) -> String {
    match ggml_type_name(t) {
        Some(n) => format!("{n} (ggml type {t})"),
        None => format!("unknown ggml type {t}"),
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `GGUF_TYPE_UINT8` (0).
    U8(u8),
    /// `GGUF_TYPE_INT8` (1).
    I8(i8),
    /// `GGUF_TYPE_UINT16` (2).
    U16(u16),
    /// `GGUF_TYPE_INT16` (3).
    I16(i16),
    /// `GGUF_TYPE_UINT32` (4).
    U32(u32),
    /// `GGUF_TYPE_INT32` (5).
    I32(i32),
    /// `GGUF_TYPE_FLOAT32` (6).
    F32(f32),
    /// `GGUF_TYPE_BOOL` (7).
    Bool(bool),
    /// `GGUF_TYPE_STRING` (8).
    Str(String),
    /// `GGUF_TYPE_ARRAY` (9): element type id and the elements (all of that type).
    Array(u32, Vec<Value>),
    /// `GGUF_TYPE_UINT64` (10).
    U64(u64),
    /// `GGUF_TYPE_INT64` (11).
    I64(i64),
    /// `GGUF_TYPE_FLOAT64` (12).
    F64(f64),
}

impl Value {
    fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::Str(_) => 8,
            Value::Array(..) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// The value as a non-negative integer, for any integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One tensor's description as stored in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Extent of each dimension, innermost (contiguous) first, as ggml's `ne`.
    pub ne: Vec<u64>,
    /// ggml type id.
    pub ggml_type: u32,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements, or `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
}

/// A parsed GGUF file borrowing its bytes.
#[derive(Debug)]
pub struct Gguf<'a> {
    /// Format version (2 or 3).
    pub version: u32,
    /// Key/value pairs in file order (keys are unique).
    pub kv: Vec<(String, Value)>,
    /// Tensor infos in file order (names are unique).
    pub tensors: Vec<TensorInfo>,
    bytes: &'a [u8],
    data_start: usize,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {} but only {} remain (file is {} bytes)",
                self.pos,
                self.left(),
                self.b.len()
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let at = self.pos;
        let n = self.u64(what)?;
        let n = usize::try_from(n).ok().filter(|&n| n <= self.left()).ok_or_else(|| {
            format!(
                "truncated: {what} at offset {at} claims {n} bytes but only {} remain",
                self.left()
            )
        })?;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} at offset {at} is not valid UTF-8"))
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value, String> {
        let w = || format!("value of `{key}`");
        Ok(match ty {
            0 => Value::U8(self.arr::<1>(&w())?[0]),
            1 => Value::I8(i8::from_le_bytes(self.arr(&w())?)),
            2 => Value::U16(u16::from_le_bytes(self.arr(&w())?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(&w())?)),
            4 => Value::U32(self.u32(&w())?),
            5 => Value::I32(i32::from_le_bytes(self.arr(&w())?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(&w())?)),
            7 => match self.arr::<1>(&w())?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("key `{key}`: invalid bool byte {b}")),
            },
            8 => Value::Str(self.string(&w())?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!("key `{key}`: arrays nested deeper than {MAX_ARRAY_DEPTH}"));
                }
                let ety = self.u32(&w())?;
                let n = self.u64(&w())?;
                let min = min_size(ety).ok_or_else(|| format!("key `{key}`: unknown array element type {ety}"))?;
                // Every element takes at least `min` bytes: refuse counts the file cannot hold
                // before allocating anything.
                if n.checked_mul(min).map_or(true, |need| need > self.left() as u64) {
                    return Err(format!(
                        "truncated: array `{key}` claims {n} elements but only {} bytes remain",
                        self.left()
                    ));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(ety, key, depth + 1)?);
                }
                Value::Array(ety, v)
            }
            10 => Value::U64(self.u64(&w())?),
            11 => Value::I64(i64::from_le_bytes(self.arr(&w())?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(&w())?)),
            t => return Err(format!("key `{key}`: unknown value type {t}")),
        })
    }
}

/// Smallest encoded size of a value of type `ty` (None for unknown types).
fn min_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

impl<'a> Gguf<'a> {
    /// Parses the header of `bytes` (the whole file). Tensor data is checked lazily by
    /// [`Gguf::tensor_f32`].
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, String> {
        let mut c = Cursor { b: bytes, pos: 0 };
        let magic = c
            .take(4, "magic")
            .map_err(|_| format!("too short for a GGUF file ({} bytes)", bytes.len()))?;
        if magic != MAGIC {
            return Err(format!("not a GGUF file: magic is {magic:02x?}, expected \"GGUF\""));
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            let hint = if version.swap_bytes() <= 3 {
                " (big-endian GGUF is not supported)"
            } else {
                ""
            };
            return Err(format!(
                "unsupported GGUF version {version}{hint}; versions 2 and 3 are read"
            ));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("key/value count")?;
        // A key/value pair takes at least 8 + 4 + 1 bytes and a tensor info at least 8 + 4 + 4 + 8.
        if n_kv.checked_mul(13).map_or(true, |need| need > c.left() as u64) {
            return Err(format!(
                "truncated or corrupt: {n_kv} key/value pairs cannot fit in {} bytes",
                c.left()
            ));
        }
        let mut kv: Vec<(String, Value)> = Vec::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = c.string(&format!("key #{i}"))?;
            if kv.iter().any(|(k, _)| *k == key) {
                return Err(format!("duplicate key `{key}`"));
            }
            let ty = c.u32(&format!("type of key `{key}`"))?;
            let v = c.value(ty, &key, 0)?;
            kv.push((key, v));
        }
        if n_tensors.checked_mul(24).map_or(true, |need| need > c.left() as u64) {
            return Err(format!(
                "truncated or corrupt: {n_tensors} tensor infos cannot fit in {} bytes",
                c.left()
            ));
        }
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut names = std::collections::HashSet::new();
        for i in 0..n_tensors {
            let name = c.string(&format!("name of tensor #{i}"))?;
            let n_dims = c.u32(&format!("n_dims of tensor `{name}`"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(format!("tensor `{name}`: n_dims {n_dims} is outside 1..={MAX_DIMS}"));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                ne.push(c.u64(&format!("shape of tensor `{name}`"))?);
            }
            let ggml_type = c.u32(&format!("type of tensor `{name}`"))?;
            let offset = c.u64(&format!("offset of tensor `{name}`"))?;
            if !names.insert(name.clone()) {
                return Err(format!("duplicate tensor name `{name}`"));
            }
            tensors.push(TensorInfo {
                name,
                ne,
                ggml_type,
                offset,
            });
        }
        let alignment = match kv.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, Value::U32(a))) if *a > 0 && a.is_power_of_two() => u64::from(*a),
            Some((_, v)) => return Err(format!("general.alignment must be a power-of-two u32, found {v:?}")),
        };
        let pos = c.pos as u64;
        let data_start = pos.div_ceil(alignment) * alignment;
        // A file with no tensors may end right after the header, without padding.
        let data_start = if data_start > bytes.len() as u64 && tensors.is_empty() {
            pos
        } else {
            data_start
        };
        if data_start > bytes.len() as u64 {
            return Err(format!(
                "truncated: data section should start at offset {data_start} but the file is {} bytes",
                bytes.len()
            ));
        }
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(format!(
                    "tensor `{}`: data offset {} is not a multiple of the alignment {alignment}",
                    t.name, t.offset
                ));
            }
        }
        Ok(Gguf {
            version,
            kv,
            tensors,
            bytes,
            data_start: data_start as usize,
        })
    }

    /// Byte offset in the file where the data section starts (tensor offsets are relative to it).
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The data of tensor `t` as f32 values. Fails (with a reason that does not repeat the
    /// tensor name) if its type is not F32 or its data lies outside the file.
    pub fn tensor_f32(&self, t: &TensorInfo) -> Result<Vec<f32>, String> {
        if t.ggml_type != GGML_TYPE_F32 {
            return Err(format!("has type {}, expected F32", describe_type(t.ggml_type)));
        }
        let n = t.numel().ok_or_else(|| format!("shape {:?} overflows", t.ne))?;
        let avail = (self.bytes.len() - self.data_start) as u64;
        let len = n
            .checked_mul(4)
            .filter(|&l| t.offset.checked_add(l).is_some_and(|end| end <= avail));
        let Some(len) = len else {
            return Err(format!(
                "data ({n} x F32 at data offset {}) lies beyond the end of the file (data section has {avail} bytes): truncated file?",
                t.offset
            ));
        };
        let start = self.data_start + t.offset as usize;
        let raw = &self.bytes[start..start + len as usize];
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// A tensor to write: name, `ne` (innermost first) and F32 data (`data.len()` must equal the
/// product of `ne`).
#[derive(Debug, Clone)]
pub struct OutTensor {
    /// Tensor name.
    pub name: String,
    /// Extent of each dimension, innermost first.
    pub ne: Vec<u64>,
    /// The values.
    pub data: Vec<f32>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Str(s) => put_str(out, s),
        Value::Array(ety, items) => {
            out.extend_from_slice(&ety.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// Serializes a GGUF v3 file with the default alignment (32 bytes), keys and tensors in the
/// given order, like ggml's `gguf_write_to_file`: header, tensor infos, zero padding, then each
/// tensor's data zero-padded to the alignment.
pub fn write(kv: &[(String, Value)], tensors: &[OutTensor]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        put_str(&mut out, k);
        out.extend_from_slice(&v.type_id().to_le_bytes());
        put_value(&mut out, v);
    }
    let pad = |n: u64| n.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    let mut offset = 0u64;
    for t in tensors {
        debug_assert_eq!(t.ne.iter().product::<u64>(), t.data.len() as u64);
        put_str(&mut out, &t.name);
        out.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
        for d in &t.ne {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&GGML_TYPE_F32.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += pad(t.data.len() as u64 * 4);
    }
    out.resize(pad(out.len() as u64) as usize, 0);
    for t in tensors {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.resize(pad(out.len() as u64) as usize, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let kv = vec![
            ("general.type".to_string(), Value::Str("imatrix".into())),
            (
                "a.arr".to_string(),
                Value::Array(8, vec![Value::Str("x".into()), Value::Str("yz".into())]),
            ),
            ("a.u32".to_string(), Value::U32(7)),
            ("a.f64".to_string(), Value::F64(-2.5)),
            ("a.b".to_string(), Value::Bool(true)),
        ];
        let t = vec![
            OutTensor {
                name: "t0".into(),
                ne: vec![3],
                data: vec![1.0, 2.0, 3.0],
            },
            OutTensor {
                name: "t1".into(),
                ne: vec![2, 2],
                data: vec![4.0, 5.0, 6.0, -7.0],
            },
        ];
        write(&kv, &t)
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let g = Gguf::parse(&b).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.get("a.u32"), Some(&Value::U32(7)));
        assert_eq!(g.get("a.b"), Some(&Value::Bool(true)));
        assert_eq!(g.tensors.len(), 2);
        assert_eq!(g.tensors[1].offset, 32);
        assert_eq!(g.tensor_f32(&g.tensors[0]).unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(g.tensor_f32(&g.tensors[1]).unwrap(), vec![4.0, 5.0, 6.0, -7.0]);
        assert_eq!(b.len() % 32, 0);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let b = sample();
        // The last tensor (4 x f32) ends 16 bytes before the end (zero padding after it).
        for n in 0..b.len() - 16 {
            let cut = &b[..n];
            if let Ok(g) = Gguf::parse(cut) {
                // Header intact: the data of some tensor must then be reported missing.
                assert!(g.tensors.iter().any(|t| g.tensor_f32(t).is_err()), "cut at {n}");
            }
        }
    }

    #[test]
    fn bad_magic_and_version() {
        let mut b = sample();
        b[0] = b'X';
        assert!(Gguf::parse(&b).unwrap_err().contains("not a GGUF file"));
        let mut b = sample();
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(Gguf::parse(&b).unwrap_err().contains("unsupported GGUF version 1"));
        let mut b = sample();
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        assert!(Gguf::parse(&b).unwrap_err().contains("big-endian"));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Gguf::parse(&b).unwrap_err().contains("cannot fit"));
    }

    #[test]
    fn type_names() {
        assert_eq!(describe_type(1), "F16 (ggml type 1)");
        assert_eq!(describe_type(30), "BF16 (ggml type 30)");
        assert_eq!(describe_type(4), "unknown ggml type 4");
        assert_eq!(describe_type(1000), "unknown ggml type 1000");
    }
}
