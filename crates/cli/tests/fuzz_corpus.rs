//! The seed corpora of the fuzz targets (`fuzz/corpus/<target>/`): small valid inputs made by
//! the project's real writers.
//!
//! `committed_seeds_are_valid` checks that every committed seed is accepted by the parser its
//! target fuzzes, that each target has seeds and that the corpora stay small. The ignored
//! `write_seed_corpora` regenerates them:
//!
//! ```sh
//! cargo test -p sop-cli --test fuzz_corpus -- --ignored write_seed_corpora
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sop_calib::{to_legacy_bytes, ImatrixStats, LayerStats};
use sop_formats::{Ieee16, OperatingPoint};
use sop_hw::config::parse_configs;
use sop_hw::default_configs;
use sop_model::Model;
use sop_quantize::sparse::{quantize_option, MenuOption};
use sop_quantize::{LayerRef, QuantOptions, Quantizer};

/// The fuzz targets, in `scripts/fuzz` order.
const TARGETS: [&str; 8] = [
    "safetensors_load",
    "onnx_load",
    "imatrix_read",
    "qmodel_read",
    "hw_config",
    "point_name",
    "format_codecs",
    "vcd_activity",
];

/// Upper bound on the committed corpora, all targets together.
const MAX_TOTAL_BYTES: u64 = 256 * 1024;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Named seeds of one target: (file name without the `seed-` prefix, bytes).
type Seeds = Vec<(String, Vec<u8>)>;

/// One tensor of a hand-assembled safetensors file: name, dtype, shape, little-endian bytes.
struct St<'a>(&'a str, &'a str, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn half_bytes(f: Ieee16, v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| (f.encode(x) as u16).to_le_bytes()).collect()
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 - n as f32 / 2.0) / 4.0).collect()
}

/// A safetensors file: 8-byte LE header length, JSON header (sorted keys), data.
fn safetensors(tensors: &[St<'_>]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut data = Vec::new();
    for St(name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

/// `safetensors_load` input for a model directory: mode 1, then u32-LE-length-prefixed parts
/// (the index JSON, then shards `s0.safetensors`, `s1.safetensors`, ...).
fn model_dir_input(index: &str, shards: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![1u8];
    for part in std::iter::once(index.as_bytes()).chain(shards.iter().map(Vec::as_slice)) {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn with_mode(mode: u8, bytes: Vec<u8>) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend(bytes);
    out
}

fn safetensors_seeds() -> Seeds {
    let two = safetensors(&[
        St("layer.0.dense.weight", "F32", vec![3, 4], f32_bytes(&ramp(12))),
        St("layer.0.dense.bias", "F32", vec![3], f32_bytes(&[0.5, -0.5, 1.0])),
    ]);
    let halves = safetensors(&[
        St("q.weight", "F16", vec![2, 8], half_bytes(Ieee16::Fp16, &ramp(16))),
        St("k.weight", "BF16", vec![4, 2], half_bytes(Ieee16::Bf16, &ramp(8))),
        St(
            "embed_tokens.weight",
            "F32",
            vec![2, 2],
            f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
        ),
    ]);
    let non_finite = safetensors(&[St(
        "mlp.weight",
        "F32",
        vec![2, 3],
        f32_bytes(&[1.0, f32::NAN, f32::INFINITY, -2.0, f32::NEG_INFINITY, 0.0]),
    )]);
    let shard0 = safetensors(&[St("a.weight", "F32", vec![2, 2], f32_bytes(&ramp(4)))]);
    let shard1 = safetensors(&[
        St("b.weight", "F16", vec![2, 4], half_bytes(Ieee16::Fp16, &ramp(8))),
        St("b.bias", "F32", vec![2], f32_bytes(&[1.0, 2.0])),
    ]);
    let index = r#"{"metadata":{"total_size":56},"weight_map":{"a.weight":"s0.safetensors","b.weight":"s1.safetensors","b.bias":"s1.safetensors"}}"#;
    vec![
        ("f32_two_tensors".into(), with_mode(0, two)),
        ("f16_bf16_embed".into(), with_mode(0, halves)),
        ("non_finite".into(), with_mode(0, non_finite)),
        ("sharded_dir".into(), model_dir_input(index, &[shard0, shard1])),
    ]
}

/// `onnx_load` seeds: the small models of `scripts/make-onnx-models.py small`, written by the
/// PyPI `onnx` package (the ONNX project's own writer). Mode 0: one model file; mode 1: the
/// model and its external data file `external.bin`, each u32-LE-length-prefixed.
fn onnx_seeds() -> Seeds {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-onnx-models.py");
    let st = std::process::Command::new("python3")
        .arg(&script)
        .arg("small")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 with onnx (scripts/install-deps)");
    assert!(st.success(), "{} small: {st}", script.display());
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    let mut external = vec![1u8];
    for part in [read("external.onnx"), read("external.bin")] {
        external.extend_from_slice(&(part.len() as u32).to_le_bytes());
        external.extend(part);
    }
    vec![
        ("typed_f16_f32".into(), with_mode(0, read("typed.onnx"))),
        ("double_weight".into(), with_mode(0, read("double.onnx"))),
        ("external_data".into(), external),
    ]
}

fn imatrix_sample(with_sum: bool) -> ImatrixStats {
    let mut per_layer = BTreeMap::new();
    per_layer.insert(
        "blk.0.attn_q.weight".to_string(),
        LayerStats {
            sum_x2: vec![1.5, 0.25, 3.0, 0.0, 8.0, 2.0, 1.0, 0.5],
            sum_x: with_sum.then(|| vec![-1.0, 0.5, 2.0, 0.0, 1.0, -3.0, 0.25, 4.0]),
            count: 10,
        },
    );
    per_layer.insert(
        "encoder.layer.0.output.dense.weight".to_string(),
        LayerStats {
            sum_x2: (0..6).map(|i| f64::from(i as f32 * 0.5)).collect(),
            sum_x: None,
            count: 4,
        },
    );
    ImatrixStats {
        per_layer,
        datasets: vec!["wiki.train.raw".into()],
        chunks: 3,
        chunk_size: 64,
        ..ImatrixStats::new()
    }
}

fn imatrix_seeds() -> Seeds {
    let llama = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../calib/tests/fixtures/llama_imatrix.gguf"))
        .expect("the llama.cpp-written imatrix fixture");
    vec![
        ("gguf_with_in_sum".into(), imatrix_sample(true).to_gguf_bytes()),
        ("gguf_plain".into(), imatrix_sample(false).to_gguf_bytes()),
        ("legacy_dat".into(), to_legacy_bytes(&imatrix_sample(false))),
        ("llama_cpp_written".into(), llama),
    ]
}

fn qmodel_seeds() -> Seeds {
    let (rows, cols) = (4, 40);
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 333.0)
        .collect();
    let a: Vec<f32> = (0..cols).map(|j| 0.5 + j as f32 / 10.0).collect();
    let groups: [(&str, &[&str]); 3] = [
        ("pairs_sparse", &["NF4+DD4sUE4M4b16+O1%+R2%", "Split87+DD4sSE4M3b16"]),
        ("minifloats", &["E2M1sE4M3b16+R1%", "E2M3sUE4M4b32", "E4M3-POT+O1%"]),
        ("f32_scale_hif7", &["NF4sF32b8", "BOF4sUE4M4-HIF7"]),
    ];
    groups
        .iter()
        .map(|(file, options)| {
            let layers: Vec<_> = options
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let opt: MenuOption = name.parse().unwrap();
                    let q = Quantizer::new(opt.point, QuantOptions::default()).unwrap();
                    let lname = format!("layer.{i}.weight");
                    let w = LayerRef {
                        name: &lname,
                        rows,
                        cols,
                        data: &data,
                    };
                    (quantize_option(&q, &opt, w, Some(&a)).unwrap(), opt)
                })
                .collect();
            let bytes = sop_qmodel::to_bytes(&layers, &[("model", "seed".into())]).unwrap();
            (file.to_string(), bytes)
        })
        .collect()
}

fn hw_config_seeds() -> Seeds {
    let configs = default_configs();
    let mut seeds: Seeds = configs
        .iter()
        .map(|c| (c.name.clone(), c.to_toml().into_bytes()))
        .collect();
    let all: String = configs
        .iter()
        .map(|c| format!("[[config]]\n{}\n", c.to_toml()))
        .collect();
    seeds.push(("all_defaults".into(), all.into_bytes()));
    seeds
}

/// Names of operating points and menu options, one seed each.
const POINT_NAMES: [&str; 14] = [
    "NF4+DD4sUE4M4b16-HIF8",
    "E4M3-POT",
    "E2M1-POT",
    "BOF4sUE4M4",
    "BOF4SsE4M3b32-FP16",
    "Split87+DD4sSE4M3b16",
    "SH4sS+E4M3b8-HIF7",
    "E2M3+DD6sUE4M4b64",
    "INT4sUE8M0b4096",
    "E2M1sF32b1",
    "E3M2sFP32",
    "E2M3sUE4M4b32+O0.05%+R1%",
    "NF4+DD4sUE4M4b16+R0.5%",
    "hif8",
];

fn point_seeds() -> Seeds {
    POINT_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("name{i:02}"), n.as_bytes().to_vec()))
        .collect()
}

fn codec_seeds() -> Seeds {
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        -1.5,
        448.0,
        464.0,
        496.0,
        6.0,
        7.5,
        28.0,
        57344.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-45,
        0.0625,
        3.0e38,
    ];
    let mut floats = vec![3u8];
    floats.extend(f32_bytes(&specials));
    let codes: Vec<u8> = (0..=255u8).collect();
    let mut all_codes = vec![7u8];
    all_codes.extend(&codes);
    let mut narrow = vec![0u8];
    narrow.extend([0x00, 0x01, 0x7f, 0x80, 0xff, 0x55, 0xaa]);
    vec![
        ("special_values".into(), floats),
        ("all_bytes_width8".into(), all_codes),
        ("width1".into(), narrow),
    ]
}

/// Small VCDs of a top `top` in the form Verilator's tracer writes (the recordings of
/// `sop rtl qor --activity` are tens of MB): ports only; nested scopes with an array element
/// `mem(1)` and an upward range; a range written without a space and values before the
/// first time stamp.
fn vcd_seeds() -> Seeds {
    let cycles = |n: u64, extra: &dyn Fn(u64) -> String| -> String {
        (0..n)
            .map(|c| format!("#{}\n0!\n{}#{}\n1!\n", c * 10, extra(c), c * 10 + 5))
            .collect()
    };
    let ports = format!(
        "$version Generated by VerilatedVcd $end\n$timescale 1ps $end\n $scope module TOP $end\n  \
         $scope module top $end\n   $var wire  1 ! clock $end\n   $var wire  4 \" code_0 [3:0] $end\n   \
         $var wire  1 # valid_in_0 $end\n  $upscope $end\n $upscope $end\n$enddefinitions $end\n{}",
        cycles(6, &|c| format!("b{:04b} \"\n{}#\n", (c * 5) % 16, c % 2))
    );
    let nested = format!(
        "$timescale 1ps $end\n$scope module TOP $end\n$var wire 1 ! clock $end\n$scope module top $end\n\
         $var wire 1 ! clock $end\n$scope module lanes$0 $end\n$scope module lut $end\n\
         $var wire 8 $ mem(1) [7:0] $end\n$var wire 2 % rdata [0:1] $end\n$upscope $end\n$upscope $end\n\
         $upscope $end\n$upscope $end\n$enddefinitions $end\n$dumpvars\nb0 $\nb0 %\n$end\n{}",
        cycles(5, &|c| format!("b{:08b} $\nb{:b} %\n", c * 37 % 256, c % 4))
    );
    let unspaced = format!(
        "$scope module top $end\n$var reg 1 c clock $end\n$var reg 3 d s3_rs[2:0] $end\n$upscope $end\n\
         $enddefinitions $end\n0c\nb101 d\n{}",
        (0..4u64)
            .map(|c| format!("#{}\n1c\nb{:b} d\n#{}\n0c\n", c * 10 + 5, c, c * 10 + 10))
            .collect::<String>()
    );
    vec![
        ("ports".into(), ports.into_bytes()),
        ("nested".into(), nested.into_bytes()),
        ("unspaced_range".into(), unspaced.into_bytes()),
    ]
}

/// Every seed: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let per_target: [(&str, Seeds); 8] = [
        ("safetensors_load", safetensors_seeds()),
        ("onnx_load", onnx_seeds()),
        ("imatrix_read", imatrix_seeds()),
        ("qmodel_read", qmodel_seeds()),
        ("hw_config", hw_config_seeds()),
        ("point_name", point_seeds()),
        ("format_codecs", codec_seeds()),
        ("vcd_activity", vcd_seeds()),
    ];
    per_target
        .into_iter()
        .flat_map(|(t, v)| v.into_iter().map(move |(n, b)| (t, format!("seed-{n}"), b)))
        .collect()
}

/// Asserts that `bytes` is a valid input of `target`'s parser (what a seed must be).
fn assert_accepted(target: &str, name: &str, bytes: &[u8]) {
    let what = format!("{target}/{name}");
    match target {
        "safetensors_load" => {
            let dir = tempfile::tempdir().unwrap();
            let path = if bytes[0].is_multiple_of(2) {
                let p = dir.path().join("seed.safetensors");
                std::fs::write(&p, &bytes[1..]).unwrap();
                p
            } else {
                let mut rest = &bytes[1..];
                let mut i = 0;
                while rest.len() >= 4 {
                    let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
                    let file = if i == 0 {
                        sop_model::INDEX_FILE.to_string()
                    } else {
                        format!("s{}.safetensors", i - 1)
                    };
                    std::fs::write(dir.path().join(file), &rest[4..4 + n]).unwrap();
                    rest = &rest[4 + n..];
                    i += 1;
                }
                dir.path().to_path_buf()
            };
            let m = Model::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!m.linear_layers().is_empty(), "{what}: no linear layer");
        }
        "onnx_load" => {
            let dir = tempfile::tempdir().unwrap();
            let model = dir.path().join("model.onnx");
            if bytes[0].is_multiple_of(2) {
                std::fs::write(&model, &bytes[1..]).unwrap();
            } else {
                let mut rest = &bytes[1..];
                for file in [model.clone(), dir.path().join("external.bin")] {
                    let n = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
                    std::fs::write(file, &rest[4..4 + n]).unwrap();
                    rest = &rest[4 + n..];
                }
            }
            let m = Model::open(&model).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!m.linear_layers().is_empty(), "{what}: no linear layer");
        }
        "imatrix_read" => {
            let s = ImatrixStats::from_bytes(bytes, Path::new(name)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!s.is_empty(), "{what}");
        }
        "qmodel_read" => {
            let l = sop_qmodel::from_bytes(bytes, Path::new(name)).unwrap_or_else(|e| panic!("{what}: {e:#}"));
            assert!(!l.layers.is_empty(), "{what}");
        }
        "hw_config" => {
            parse_configs(std::str::from_utf8(bytes).unwrap()).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        "point_name" => {
            let s = std::str::from_utf8(bytes).unwrap();
            let ok = s.parse::<OperatingPoint>().is_ok()
                || s.parse::<MenuOption>().is_ok()
                || s.parse::<sop_formats::Format>().is_ok();
            assert!(ok, "{what}: `{s}` is not a point, option or format name");
        }
        "format_codecs" => assert!(!bytes.is_empty(), "{what}"),
        "vcd_activity" => {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("seed.vcd");
            std::fs::write(&p, bytes).unwrap();
            let a = sop_qor::activity::read_vcd(&p, "top").unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(a.cycles >= 3 && a.bits.len() >= 3, "{what}: {a:?}");
        }
        other => panic!("unknown target {other}"),
    }
}

#[test]
fn committed_seeds_are_valid() {
    let mut total = 0;
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            if !e.file_name().to_string_lossy().starts_with("seed-") {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap();
            total += bytes.len() as u64;
            assert_accepted(target, &e.file_name().to_string_lossy(), &bytes);
            n += 1;
        }
        assert!(n >= 3, "{target}: only {n} seeds");
    }
    assert!(total <= MAX_TOTAL_BYTES, "seed corpora take {total} bytes");
}

#[test]
fn generated_seeds_are_valid() {
    for (target, name, bytes) in seeds() {
        assert_accepted(target, &name, &bytes);
    }
}

/// Rewrites `fuzz/corpus/<target>/seed-*` from the generators above.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing a format"]
fn write_seed_corpora() {
    for target in TARGETS {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")) {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    for (target, name, bytes) in seeds() {
        std::fs::write(corpus_dir().join(target).join(name), bytes).unwrap();
    }
}
