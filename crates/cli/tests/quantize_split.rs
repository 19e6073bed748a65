//! `sop quantize` split across machines (`--shard K/N`, docs/performance.md): pass 1 per
//! shard, the plan, pass 2 per shard and the final merge give a directory byte-identical to
//! the one-machine run, every file (report.json included: it holds no wall time); pass-2
//! shards writing into separate directories (no shared file system) as well as into one. Bad
//! input: tables or manifests of another model, target or menu, split differently, a missing
//! or duplicated shard, an edited plan, a model changed between the passes, a missing or
//! different model file: one-line errors naming the file. Interruptions and a full disk: a
//! stage killed inside any of its writes, or refused a write by the kernel, leaves every
//! output under its final name absent or whole, and its rerun completes with the same bytes.

mod common;

use common::{files, imatrix, kill_at_pause, linear_tensor, one_line_error, safetensors, sop};

use std::path::{Path, PathBuf};

/// Five linear layers of different sizes.
const LAYERS: [(&str, usize, usize); 5] = [
    ("l.0.weight", 32, 64),
    ("l.1.weight", 64, 32),
    ("l.2.weight", 48, 64),
    ("l.3.weight", 64, 64),
    ("l.4.weight", 16, 64),
];

fn write_model(path: &Path, salt: usize) {
    let tensors: Vec<_> = LAYERS.iter().map(|&(n, r, c)| linear_tensor(n, r + salt, c)).collect();
    std::fs::write(path, safetensors(&tensors).0).unwrap();
}

fn ok(args: &[String]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, err) = sop(&a);
    assert_eq!(code, 0, "sop {a:?}: {err}");
    stdout
}

fn fails(args: &[String], needles: &[&str]) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = sop(&a);
    one_line_error(code, &err, needles);
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    base.iter().cloned().chain(more.iter().map(|m| m.to_string())).collect()
}

/// Paths of a split run in `work`: pass-1 tables, plan, pass-2 manifests.
struct Work {
    dir: PathBuf,
    n: usize,
}

impl Work {
    fn table(&self, k: usize) -> String {
        s(&self.dir.join(format!("pass1-{k}-of-{}.json", self.n)))
    }
    fn tables(&self) -> Vec<String> {
        (1..=self.n).map(|k| self.table(k)).collect()
    }
    fn plan(&self) -> String {
        s(&self.dir.join("plan.json"))
    }
    fn manifest(&self, k: usize) -> String {
        s(&self.dir.join(format!("pass2-{k}-of-{}.json", self.n)))
    }
    fn manifests(&self) -> Vec<String> {
        (1..=self.n).map(|k| self.manifest(k)).collect()
    }

    fn pass1(&self, base: &[String], k: usize) {
        let shard = format!("{k}/{}", self.n);
        ok(&with(base, &["--shard", &shard, "--pass1-out", &self.table(k)]));
    }

    fn plan_args(&self, base: &[String], tables: &[String]) -> Vec<String> {
        let mut a = with(base, &["--plan-out", &self.plan(), "--from-pass1"]);
        a.extend(tables.iter().cloned());
        a
    }

    fn pass2_args(&self, base: &[String], k: usize, out: &Path) -> Vec<String> {
        let shard = format!("{k}/{}", self.n);
        with(
            base,
            &[
                "--plan",
                &self.plan(),
                "--shard",
                &shard,
                "--pass2-out",
                &self.manifest(k),
                "--out",
                &s(out),
            ],
        )
    }

    fn finish_args(&self, base: &[String], manifests: &[String], out: &Path) -> Vec<String> {
        let mut a = with(base, &["--plan", &self.plan(), "--out", &s(out), "--from-pass2"]);
        a.extend(manifests.iter().cloned());
        a
    }

    /// Every stage; pass 2 of shard k into `outs[k - 1]` (or `out` when `separate` is false),
    /// then the files copied into `out` and the final merge there.
    fn run(&self, base: &[String], out: &Path, separate: bool) {
        std::fs::create_dir_all(&self.dir).unwrap();
        for k in 1..=self.n {
            self.pass1(base, k);
        }
        ok(&self.plan_args(base, &self.tables()));
        for k in 1..=self.n {
            let dir = if separate {
                self.dir.join(format!("out-{k}"))
            } else {
                out.to_path_buf()
            };
            ok(&self.pass2_args(base, k, &dir));
            if separate {
                std::fs::create_dir_all(out).unwrap();
                for (name, bytes) in files(&dir) {
                    std::fs::write(out.join(name), bytes).unwrap();
                }
            }
        }
        let stdout = ok(&self.finish_args(base, &self.manifests(), out));
        assert!(stdout.contains("wrote"), "{stdout}");
    }
}

fn assert_same_dir(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "{} vs {}",
        a.display(),
        b.display()
    );
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{name} differs");
    }
}

#[test]
fn split_run_is_byte_identical_to_one_machine() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.safetensors");
    write_model(&model, 0);
    let im = d.path().join("m.imatrix.gguf");
    imatrix(&im, &LAYERS.map(|(n, _, c)| (n, c)));
    let base: Vec<String> = [
        "quantize",
        "--model",
        &s(&model),
        "--imatrix",
        &s(&im),
        "--target-bpw",
        "5",
        "--sample-weights",
        "1024",
    ]
    .map(String::from)
    .to_vec();
    // Sharded output (five files of one layer each), and one file.
    for (shards, size, n, separate) in [("5", "1KB", 3, true), ("1", "5GB", 2, false), ("5", "1KB", 7, false)] {
        let base = with(&base, &["--max-shard-size", size]);
        let one = d.path().join(format!("one-{size}"));
        if !one.exists() {
            ok(&with(&base, &["--out", &s(&one)]));
        }
        let work = Work {
            dir: d.path().join(format!("work-{size}-{n}")),
            n,
        };
        let out = d.path().join(format!("split-{size}-{n}"));
        work.run(&base, &out, separate);
        assert_same_dir(&one, &out);
        let names = files(&out);
        let model_files = names.keys().filter(|n| n.ends_with(".sop.safetensors")).count();
        assert_eq!(model_files.to_string(), shards, "{:?}", names.keys());
    }
}

#[test]
fn split_run_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.safetensors");
    write_model(&model, 0);
    let other = d.path().join("other.safetensors");
    write_model(&other, 0);
    let base = uniform_1kb(&model);
    let w = Work {
        dir: d.path().join("w"),
        n: 3,
    };
    std::fs::create_dir_all(&w.dir).unwrap();
    for k in 1..=3 {
        w.pass1(&base, k);
    }
    let t = w.tables();

    // Pass-1 tables: a missing shard, a shard twice, another count, another run, not a table.
    fails(&w.plan_args(&base, &t[..2]), &["missing pass-1 table of shard 3/3"]);
    fails(
        &w.plan_args(&base, &[t[0].clone(), t[1].clone(), t[1].clone(), t[2].clone()]),
        &["shard 2/3 given twice", "pass1-2-of-3.json"],
    );
    let w2 = Work {
        dir: d.path().join("w2"),
        n: 2,
    };
    std::fs::create_dir_all(&w2.dir).unwrap();
    w2.pass1(&base, 1);
    fails(
        &w.plan_args(&base, &[t[0].clone(), t[1].clone(), t[2].clone(), w2.table(1)]),
        &["1/2", "split differently"],
    );
    let mut odd = Vec::new();
    for (k, (flag, value)) in [
        ("--target-bpw", "4.5"),
        ("--menu", "E2M3sUE4M4b32,NF4+DD4sUE4M4b16"),
        ("--model", other.to_str().unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = base.clone();
        let at = b.iter().position(|x| x == flag).map(|i| i + 1);
        match at {
            Some(i) => b[i] = value.to_string(),
            None => b.extend([flag.to_string(), value.to_string()]),
        }
        let f = s(&w.dir.join(format!("odd-{k}.json")));
        ok(&with(&b, &["--shard", "2/3", "--pass1-out", &f]));
        odd.push((flag, f));
    }
    for (flag, f) in &odd {
        let field = match *flag {
            "--target-bpw" => "`target_bpw`",
            "--menu" => "`menu`",
            _ => "`model`",
        };
        fails(
            &w.plan_args(&base, &[t[0].clone(), f.clone(), t[2].clone()]),
            &[f.as_str(), "made by another run", field],
        );
    }
    let junk = d.path().join("junk.json");
    std::fs::write(&junk, "{\"format\": \"something else\"}").unwrap();
    fails(
        &w.plan_args(&base, &[t[0].clone(), s(&junk), t[2].clone()]),
        &["junk.json", "not a pass-1 table"],
    );
    // A renamed copy: shard 1's table given as shard 2's is still shard 1.
    let copy = w.dir.join("pass1-copy.json");
    std::fs::copy(&t[0], &copy).unwrap();
    fails(
        &w.plan_args(&base, &[t[0].clone(), s(&copy), t[2].clone()]),
        &["shard 1/3 given twice"],
    );
    // Nothing written by any of these.
    assert!(!Path::new(&w.plan()).exists());
    ok(&w.plan_args(&base, &t));

    // Incomplete or mixed flags.
    fails(&with(&base, &["--shard", "1/3"]), &["split-run flags"]);
    fails(
        &with(&base, &["--shard", "1/3", "--pass1-out", "x.json", "--out", "o"]),
        &["--out"],
    );
    fails(
        &with(&base, &["--plan", &w.plan(), "--shard", "1/3", "--pass2-out", "x.json"]),
        &["--out"],
    );

    // An edited plan.
    let out = d.path().join("out");
    let text = std::fs::read_to_string(w.plan()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = v["choice"][0].as_u64().unwrap();
    v["choice"][0] = (c + 1).into();
    std::fs::write(w.plan(), v.to_string()).unwrap();
    fails(&w.pass2_args(&base, 1, &out), &["plan.json", "edited"]);
    std::fs::write(w.plan(), &text).unwrap();

    // The model changed between the passes (same path, same shapes, other weights).
    std::fs::copy(&model, d.path().join("m.orig")).unwrap();
    write_model(&model, 0);
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&model, &bytes).unwrap();
    let mut changed = false;
    for k in 1..=3 {
        let a: Vec<String> = w.pass2_args(&base, k, &out);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, _, err) = sop(&a);
        if code != 0 {
            one_line_error(code, &err, &["l.4.weight", "changed between the passes"]);
            changed = true;
        }
    }
    assert!(changed, "the shard writing l.4.weight must refuse it");
    std::fs::copy(d.path().join("m.orig"), &model).unwrap();

    for k in 1..=3 {
        ok(&w.pass2_args(&base, k, &out));
    }
    let mf = w.manifests();
    // Manifests: a missing one, one twice, another run's.
    fails(
        &w.finish_args(&base, &mf[1..], &out),
        &["missing pass-2 manifest of shard 1/3"],
    );
    fails(
        &w.finish_args(
            &base,
            &[mf[0].clone(), mf[0].clone(), mf[1].clone(), mf[2].clone()],
            &out,
        ),
        &["given twice"],
    );
    let b45 = {
        let mut b = base.clone();
        b[4] = "4.5".into();
        b
    };
    fails(
        &w.finish_args(&b45, &mf, &out),
        &["plan.json", "made by another run", "`target_bpw`"],
    );
    // A model file missing from the output, or different from what its shard wrote.
    let first = out.join("model-00001-of-00005.sop.safetensors");
    let kept = std::fs::read(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    fails(
        &w.finish_args(&base, &mf, &out),
        &["model-00001-of-00005.sop.safetensors", "missing"],
    );
    std::fs::write(&first, &kept[..kept.len() - 8]).unwrap();
    fails(
        &w.finish_args(&base, &mf, &out),
        &["model-00001-of-00005.sop.safetensors", "bytes"],
    );
    std::fs::write(&first, &kept).unwrap();
    // No index and no report was written by any failure; then the merge completes.
    assert!(!out.join("model.sop.safetensors.index.json").exists());
    assert!(!out.join("report.json").exists());
    ok(&w.finish_args(&base, &mf, &out));
    let (code, stdout, err) = sop(&["inspect", &s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("5 layers verified"), "{stdout}");
}

/// Final-named files of `dir` (temporaries, `.<name>.tmp-...`, left out).
fn finals(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files(dir).into_iter().filter(|(n, _)| !n.starts_with('.')).collect()
}

/// Every final-named file of `dir` is the reference's file of that name, whole.
fn absent_or_whole(what: &str, dir: &Path, reference: &std::collections::BTreeMap<String, Vec<u8>>) {
    for (name, bytes) in finals(dir) {
        let r = reference
            .get(&name)
            .unwrap_or_else(|| panic!("{what}: unexpected file {name}"));
        assert!(
            &bytes == r,
            "{what}: {name} is {} bytes, whole {}",
            bytes.len(),
            r.len()
        );
    }
}

/// `sop quantize` of `model` at 5 bpw, uniform column weights, model files of at most 1 KB
/// (one layer each).
fn uniform_1kb(model: &Path) -> Vec<String> {
    [
        "quantize",
        "--model",
        &s(model),
        "--target-bpw",
        "5",
        "--max-shard-size",
        "1KB",
    ]
    .map(String::from)
    .to_vec()
}

/// The run of the interruption tests (five model files of one layer each, uniform column
/// weights) and its one-machine output, by file name.
fn five_files(dir: &Path) -> (Vec<String>, std::collections::BTreeMap<String, Vec<u8>>) {
    let model = dir.join("m.safetensors");
    write_model(&model, 0);
    let base = uniform_1kb(&model);
    let one = dir.join("one");
    ok(&with(&base, &["--out", &s(&one)]));
    (base, files(&one))
}

/// Pass 1 of two shards and the plan, in `dir/w`.
fn planned(dir: &Path, base: &[String]) -> Work {
    let w = Work {
        dir: dir.join("w"),
        n: 2,
    };
    std::fs::create_dir_all(&w.dir).unwrap();
    for k in 1..=2 {
        w.pass1(base, k);
    }
    ok(&w.plan_args(base, &w.tables()));
    w
}

/// Pass 2 of a shard and the final merge, each killed inside each of its atomic writes: the
/// output directory holds only whole files, and rerunning the stage (then the remaining ones)
/// gives the one-machine directory byte for byte.
#[test]
fn interrupted_split_stages_rerun_to_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let (base, reference) = five_files(d.path());
    let w = planned(d.path(), &base);
    // Stage 0: pass 2 of shard 1 (shard 2 done before); stage 1: the final merge.
    for stage in 0..2 {
        let mut k = 0;
        loop {
            let out = d.path().join(format!("out-{stage}-{k}"));
            ok(&w.pass2_args(&base, 2, &out));
            if stage == 1 {
                ok(&w.pass2_args(&base, 1, &out));
            }
            let args = if stage == 0 {
                // Its manifest as well must not be there half-written: none before the run.
                let _ = std::fs::remove_file(w.manifest(1));
                w.pass2_args(&base, 1, &out)
            } else {
                w.finish_args(&base, &w.manifests(), &out)
            };
            let what = format!("stage {stage}, killed in write {k}");
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let Some(killed) = kill_at_pause(&a, k) else {
                assert!(k > 1, "{what}: too few writes");
                break;
            };
            assert!(!killed.dest.exists(), "{what}: {} exists", killed.dest.display());
            absent_or_whole(&what, &out, &reference);
            ok(&args);
            if stage == 0 {
                ok(&w.finish_args(&base, &w.manifests(), &out));
            }
            assert_eq!(finals(&out), reference, "{what}: the rerun's outputs differ");
            k += 1;
        }
    }
}

/// `sop` run under a file-size limit (`ulimit -f`, in 512-byte blocks; SIGXFSZ ignored, so a
/// write past the limit fails with EFBIG as a full disk fails with ENOSPC).
fn sop_limited(blocks: u32, args: &[String]) -> (i32, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stderr).unwrap())
}

/// The disk fills up mid-write (a file-size limit: the model files are 1.5-3.4 KB, the
/// report 4.9 KB): the one-machine run, a pass-2 shard and the final merge fail with one
/// error naming the file, leave no temporary file and nothing half-written under a final
/// name; rerun without the limit, they give the same bytes.
#[test]
fn disk_full_mid_write_leaves_nothing_half_written() {
    let d = tempfile::tempdir().unwrap();
    let (base, reference) = five_files(d.path());
    let big = reference.values().map(Vec::len).max().unwrap();
    assert!(big > 4096 && reference["model-00001-of-00005.sop.safetensors"].len() > 2048);
    // 4 blocks: the first model file fails; 8 blocks: every model file and the index fit, the
    // report does not.
    for (blocks, file) in [(4, "model-00001-of-00005"), (8, "report.json")] {
        let out = d.path().join(format!("full-{blocks}"));
        let args = with(&base, &["--out", &s(&out)]);
        let (code, err) = sop_limited(blocks, &args);
        one_line_error(code, &err, &[file, "File too large"]);
        absent_or_whole(&format!("one machine, {blocks} blocks"), &out, &reference);
        assert!(!out.join(file).exists() || file.starts_with("model"));
        assert!(
            files(&out).keys().all(|n| !n.starts_with('.')),
            "{:?}",
            files(&out).keys()
        );
        ok(&with(&args, &["--force"]));
        assert_eq!(files(&out), reference);
    }
    let w = planned(d.path(), &base);
    let out = d.path().join("split");
    for k in 1..=2 {
        let (code, err) = sop_limited(4, &w.pass2_args(&base, k, &out));
        if code != 0 {
            one_line_error(code, &err, &["File too large"]);
        }
        absent_or_whole(&format!("pass 2 of {k}/2"), &out, &reference);
        ok(&w.pass2_args(&base, k, &out));
    }
    let (code, err) = sop_limited(8, &w.finish_args(&base, &w.manifests(), &out));
    one_line_error(code, &err, &["report.json", "File too large"]);
    absent_or_whole("final merge", &out, &reference);
    assert!(files(&out).keys().all(|n| !n.starts_with('.')));
    ok(&w.finish_args(&base, &w.manifests(), &out));
    assert_eq!(files(&out), reference);
}
