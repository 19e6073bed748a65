//! Atomic outputs: the real `sop` binary is SIGKILLed while it writes, and every output file
//! under its final name must then be absent or complete (byte-identical to a reference run);
//! a rerun into the same place succeeds and leaves no temporary file behind.
//!
//! The kill lands mid-write deterministically through the hidden test hook
//! `SOP_TEST_WRITE_PAUSE_MS` (`sop_atomic_write::PAUSE_ENV`): an atomic write pauses once with
//! part of its bytes in the temporary file and announces it on stderr, and the test kills
//! during that pause; `SOP_TEST_WRITE_PAUSE_SKIP=K` lets the first `K` writes go unpaused. A second test kills at random instants across whole runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{f32s, files, kill_at_pause, safetensors, sop};

/// Runs `sop args` to completion and asserts success.
fn sop_ok(args: &[&str]) {
    let (code, _, err) = sop(args);
    assert_eq!(code, 0, "sop {args:?}: {err}");
}

/// Temporary-file names (`.<name>.tmp-<pid>-<n>`) in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
        .collect()
}

/// Asserts that every final-named file in `dir` is one of the reference outputs, complete.
fn assert_absent_or_whole(what: &str, dir: &Path, reference: &BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in files(dir) {
        if name.starts_with('.') {
            continue;
        }
        let Some(r) = reference.get(&name) else {
            panic!("{what}: unexpected file {name}");
        };
        assert!(
            &bytes == r,
            "{what}: {name} is {} bytes, the complete file {} bytes",
            bytes.len(),
            r.len()
        );
    }
}

/// Builds a command's arguments from its output directory.
type ArgsFn = Box<dyn Fn(&Path) -> Vec<String>>;

/// One command writing several outputs into `out` (its arguments built by `args`).
struct Case {
    name: &'static str,
    args: ArgsFn,
    /// Whether a rerun into an existing output directory needs `--force`.
    force: bool,
}

impl Case {
    fn run_args(&self, out: &Path, rerun: bool) -> Vec<String> {
        let mut a = (self.args)(out);
        if rerun && self.force {
            a.push("--force".into());
        }
        a
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Two linear layers: `a.weight` (32 x 64) and `b.weight` (64 x 32), deterministic values.
fn write_model(path: &Path) {
    let tensors: Vec<_> = [("a.weight", 32usize, 64usize), ("b.weight", 64, 32)]
        .iter()
        .map(|&(name, r, c)| {
            let v = (0..r * c).map(|i| ((i * 7919 + r) % 1013) as f32 / 1013.0 - 0.5);
            (name.to_string(), "F32", vec![r, c], f32s(v))
        })
        .collect();
    std::fs::write(path, safetensors(&tensors).0).unwrap();
}

fn cases(model: &Path) -> Vec<Case> {
    let m = model.to_str().unwrap().to_string();
    let m2 = m.clone();
    vec![
        Case {
            name: "rtl emit",
            args: Box::new(|out| {
                ["rtl", "emit", "--out", out.to_str().unwrap()]
                    .map(String::from)
                    .to_vec()
            }),
            force: false,
        },
        Case {
            name: "quantize",
            args: Box::new(move |out| {
                [
                    "quantize",
                    "--model",
                    &m,
                    "--target-bpw",
                    "5",
                    "--out",
                    out.to_str().unwrap(),
                ]
                .map(String::from)
                .to_vec()
            }),
            force: true,
        },
        Case {
            name: "eval --json --plot",
            args: Box::new(move |out| {
                let j = out.join("eval.json");
                let p = out.join("eval.svg");
                [
                    "eval",
                    "--model",
                    &m2,
                    "--json",
                    j.to_str().unwrap(),
                    "--plot",
                    p.to_str().unwrap(),
                ]
                .map(String::from)
                .to_vec()
            }),
            force: false,
        },
        Case {
            name: "calibrate",
            args: Box::new(|out| {
                let f = out.join("imatrix.gguf");
                [
                    "calibrate",
                    "--model",
                    "minilm",
                    "--max-sentences",
                    "4",
                    "--out",
                    f.to_str().unwrap(),
                ]
                .map(String::from)
                .to_vec()
            }),
            force: false,
        },
    ]
}

/// Commands whose output file lives in `out` but which do not create `out` themselves.
fn needs_dir(c: &Case) -> bool {
    matches!(c.name, "eval --json --plot" | "calibrate")
}

#[test]
fn killed_mid_write_leaves_no_partial_file() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model.safetensors");
    write_model(&model);
    for (ci, case) in cases(&model).iter().enumerate() {
        let refdir = d.path().join(format!("ref{ci}"));
        if needs_dir(case) {
            std::fs::create_dir(&refdir).unwrap();
        }
        sop_ok(&strs(&case.run_args(&refdir, false)));
        let reference = files(&refdir);
        assert!(!reference.is_empty() && temps(&refdir).is_empty(), "{}", case.name);
        let mut k = 0;
        loop {
            let out = d.path().join(format!("out{ci}-{k}"));
            if needs_dir(case) {
                std::fs::create_dir(&out).unwrap();
            }
            let what = format!("{}, killed in write {k}", case.name);
            let Some(killed) = kill_at_pause(&strs(&case.run_args(&out, false)), k) else {
                assert!(k > 0, "{}: no atomic write paused", case.name);
                break;
            };
            // The kill landed mid-write: part of the bytes in the temporary file, the
            // destination absent, every other output absent or whole.
            let name = killed.dest.file_name().unwrap().to_str().unwrap().to_string();
            assert_eq!(killed.dest.parent(), Some(out.as_path()), "{what}");
            assert_eq!(killed.temp.parent(), Some(out.as_path()), "{what}");
            let partial = std::fs::read(&killed.temp).unwrap();
            if let Some(model_file) = name.strip_suffix(".spool") {
                // The spool of a streamed model file (its layers' data before the header): an
                // uncommitted temporary; neither it nor the model file may carry a final name.
                assert!(!partial.is_empty(), "{what}: empty spool");
                assert!(!out.join(model_file).exists(), "{what}: {model_file} exists");
            } else {
                let whole = &reference[&name];
                assert!(
                    !partial.is_empty() && partial.len() < whole.len(),
                    "{what}: temporary {} holds {} of {} bytes",
                    killed.temp.display(),
                    partial.len(),
                    whole.len()
                );
            }
            assert!(!killed.dest.exists(), "{what}: {name} exists");
            assert_absent_or_whole(&what, &out, &reference);
            // A rerun into the same place succeeds, produces the reference outputs and removes
            // the dead process's temporary file.
            sop_ok(&strs(&case.run_args(&out, true)));
            let after: BTreeMap<String, Vec<u8>> =
                files(&out).into_iter().filter(|(n, _)| !n.starts_with('.')).collect();
            assert!(after == reference, "{what}: rerun outputs differ from the reference");
            if !Path::new(&format!("/proc/{}", killed.pid)).exists() {
                assert!(temps(&out).is_empty(), "{what}: left {:?}", temps(&out));
            }
            k += 1;
        }
        eprintln!("{}: killed in each of its {k} atomic writes", case.name);
    }
}

/// A small xorshift generator (the seed is printed so that a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn killed_at_random_instants_leaves_no_partial_file() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model.safetensors");
    write_model(&model);
    let seed = std::env::var("SOP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("SOP_TEST_SEED={seed}");
    let mut rng = Rng(seed);
    // Calibration is left out here: each run loads the full MiniLM, and its writer is the
    // same code the other commands use.
    for (ci, case) in cases(&model).iter().enumerate().filter(|(_, c)| c.name != "calibrate") {
        let refdir = d.path().join(format!("ref{ci}"));
        if needs_dir(case) {
            std::fs::create_dir(&refdir).unwrap();
        }
        let t0 = Instant::now();
        sop_ok(&strs(&case.run_args(&refdir, false)));
        let span = t0.elapsed().as_micros() as u64;
        let reference = files(&refdir);
        for i in 0..10 {
            let out = d.path().join(format!("out{ci}-{i}"));
            if needs_dir(case) {
                std::fs::create_dir(&out).unwrap();
            }
            let delay = rng.below(span + span / 5);
            let mut child = Command::new(env!("CARGO_BIN_EXE_sop"))
                .args(case.run_args(&out, false))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(delay));
            let _ = child.kill(); // may have finished already
            child.wait().unwrap();
            assert_absent_or_whole(&format!("{}, killed after {delay} us", case.name), &out, &reference);
        }
    }
}
