//! Helpers shared by the CLI end-to-end tests: running the binary, building small model and
//! imatrix fixtures, reading an output directory. Each test crate uses a subset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sop_atomic_write::{PAUSE_ENV, PAUSE_MARKER, PAUSE_SKIP_ENV};

/// Asserts a failed run that printed exactly one `error:` line containing every needle,
/// and no panic.
pub fn one_line_error(code: i32, err: &str, needles: &[&str]) {
    assert_ne!(code, 0, "expected failure, stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' missing from: {}", lines[0]);
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs the `sop` binary with `args`: (exit code, -1 when killed; stdout; stderr).
pub fn sop(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sop")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every file of `dir` (hidden ones included), by name; empty when `dir` does not exist.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// A safetensors tensor: name, dtype, shape, raw little-endian data.
pub type Tensor = (String, &'static str, Vec<usize>, Vec<u8>);

/// Little-endian bytes of f32 values.
pub fn f32s(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An F32 `rows x cols` weight tensor with deterministic values in [-0.5, 0.5) and every 97th
/// weight 20 x larger (a few outliers stretch their blocks).
pub fn linear_tensor(name: &str, rows: usize, cols: usize) -> Tensor {
    let v = (0..rows * cols).map(|i| {
        let v = ((i * 7919 + rows) % 1013) as f32 / 1013.0 - 0.5;
        if i % 97 == 0 {
            v * 20.0
        } else {
            v
        }
    });
    (name.to_string(), "F32", vec![rows, cols], f32s(v))
}

/// A safetensors file, tensors stored in order (header keys sorted); returns the bytes and the
/// data span (start, end) of each tensor relative to the file.
pub fn safetensors(tensors: &[Tensor]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut header = serde_json::Map::new();
    let mut off = 0;
    for (name, dtype, shape, data) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + data.len()]}),
        );
        off += data.len();
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    let base = out.len();
    let mut spans = Vec::new();
    for (_, _, _, data) in tensors {
        spans.push((out.len(), out.len() + data.len()));
        out.extend_from_slice(data);
    }
    debug_assert_eq!(out.len(), base + off);
    (out, spans)
}

/// Writes a llama.cpp imatrix.gguf at `path` with the given layers (name, columns): column
/// `j` has `sum x^2 = 1 + j` over 10 tokens.
pub fn imatrix(path: &Path, layers: &[(&str, usize)]) {
    let per_layer: BTreeMap<String, sop_calib::LayerStats> = layers
        .iter()
        .map(|&(n, c)| {
            (
                n.to_string(),
                sop_calib::LayerStats {
                    sum_x2: (0..c).map(|j| 1.0 + j as f64).collect(),
                    sum_x: None,
                    count: 10,
                },
            )
        })
        .collect();
    sop_calib::ImatrixStats {
        per_layer,
        datasets: vec!["test".into()],
        chunks: 1,
        chunk_size: 8,
        source: None,
        format: sop_calib::ImatrixFormat::Memory,
    }
    .write(path)
    .unwrap();
}

/// Where a paused write was killed: its temporary file and its destination.
pub struct Killed {
    /// The killed process.
    pub pid: u32,
    /// Its temporary file.
    pub temp: PathBuf,
    /// The destination of that file.
    pub dest: PathBuf,
}

/// Runs `sop args` with the pause hook and SIGKILLs it during the pause of its `k`-th atomic
/// write (0-based). `None` if the run finished with fewer than `k + 1` writes.
pub fn kill_at_pause(args: &[&str], k: usize) -> Option<Killed> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        // Long enough that the kill below always lands inside the pause.
        .env(PAUSE_ENV, "60000")
        .env(PAUSE_SKIP_ENV, k.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix(PAUSE_MARKER) else {
            continue;
        };
        child.kill().unwrap(); // SIGKILL: no destructors, no cleanup.
        child.wait().unwrap();
        let (temp, dest) = rest.trim().split_once(" -> ").expect("marker: TEMP -> DEST");
        return Some(Killed {
            pid,
            temp: temp.into(),
            dest: dest.into(),
        });
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "sop {args:?} failed before pause {k}");
    None
}
