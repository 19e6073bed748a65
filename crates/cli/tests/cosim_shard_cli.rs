//! `sop cosim` through the binary: `--shard K/N` runs and `sop cosim merge-junit` give the
//! whole run's JUnit (but for the times), and `--threads 1` and `--threads 2` give the same
//! stdout (but for the rate) and JUnit (but for the times). Real minilm layers (cached weights,
//! fetched on first use), a prefix of each.

use std::path::Path;
use std::process::Command;

/// Two layers of different sizes, the first 3 rows' worth of blocks of each (every
/// configuration).
const ARGS: [&str; 6] = [
    "cosim",
    "--model",
    "minilm",
    "--layers",
    "layer\\.1\\.(attention\\.self\\.value|output\\.dense)\\.weight$",
    "--max-weights=4608",
];

/// `sop [--threads T] ARGS extra...`: (stdout, stderr), asserting success.
fn sop(threads: Option<&str>, extra: &[&str]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sop"));
    if let Some(t) = threads {
        cmd.args(["--threads", t]);
    }
    let out = cmd.args(ARGS).args(extra).output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "sop {extra:?}: {e}");
    (o, e)
}

/// The file without its `time="..."` attributes.
fn untimed(p: &Path) -> String {
    let x = std::fs::read_to_string(p).unwrap();
    let re = regex::Regex::new(r#" time="[^"]*""#).unwrap();
    re.replace_all(&x, "").into_owned()
}

/// Stdout without the rate at the end of the summary line.
fn unrated(out: &str) -> String {
    let re = regex::Regex::new(r", [0-9]+\.[0-9] M weights/s\n?$").unwrap();
    assert!(re.is_match(out), "{out}");
    re.replace(out, "").into_owned()
}

fn words(out: &str) -> u64 {
    let line = out.lines().last().unwrap();
    line.strip_prefix("cosim: ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn threads_give_the_same_reports_and_shards_merge_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let s = |n: &str| p(n).to_str().unwrap().to_string();

    let (one, _) = sop(Some("1"), &["--junit", &s("t1.xml")]);
    let (two, err) = sop(Some("2"), &["--junit", &s("t2.xml")]);
    assert!(err.contains("on 2 threads"), "{err}");
    assert_eq!(unrated(&one), unrated(&two));
    assert_eq!(untimed(&p("t1.xml")), untimed(&p("t2.xml")));
    assert!(one.contains(" 2 layers, ") && one.contains(" 0 mismatches"), "{one}");

    let mut shard_words = 0;
    for k in 1..=3 {
        let (out, err) = sop(
            None,
            &["--shard", &format!("{k}/3"), "--junit", &s(&format!("s{k}.xml"))],
        );
        assert!(err.contains(&format!("shard {k}/3: ")), "{err}");
        shard_words += words(&out);
    }
    assert_eq!(shard_words, words(&one));
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args([
            "cosim",
            "merge-junit",
            &s("merged.xml"),
            &s("s3.xml"),
            &s("s1.xml"),
            &s("s2.xml"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("merge-junit: 3 files, "), "{text}");
    assert!(text.contains(" 0 failures, 0 errors, 0 skipped -> "), "{text}");
    assert_eq!(untimed(&p("merged.xml")), untimed(&p("t1.xml")));

    // A shard missing from the merge: a different file, not the whole run.
    let out = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(["cosim", "merge-junit", &s("part.xml"), &s("s1.xml"), &s("s2.xml")])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(untimed(&p("part.xml")), untimed(&p("t1.xml")));
}

/// The CI workflow runs one job per shard, 1..=SHARDS, with the commands this binary takes.
#[test]
fn the_ci_workflow_covers_every_shard_and_merges_them() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.github/workflows/cosim-shards.yml");
    let y = std::fs::read_to_string(path).unwrap();
    let n: u32 = regex::Regex::new(r"(?m)^  SHARDS: ([0-9]+)$")
        .unwrap()
        .captures(&y)
        .expect("SHARDS")[1]
        .parse()
        .unwrap();
    let list = regex::Regex::new(r"(?m)^        shard: \[([0-9, ]+)\]$")
        .unwrap()
        .captures(&y)
        .expect("matrix")[1]
        .split(',')
        .map(|k| k.trim().parse::<u32>().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(list, (1..=n).collect::<Vec<_>>(), "the matrix lists shards 1..=SHARDS");
    assert!(y.contains("./sop cosim --model minilm --shard ${{ matrix.shard }}/${{ env.SHARDS }}"));
    assert!(y.contains("./sop cosim merge-junit cosim.xml shards/cosim-shard-*.xml"));
    // The arguments the jobs pass parse (`--shard 1/N` with --help stops before running).
    for k in [1, n] {
        let out = Command::new(env!("CARGO_BIN_EXE_sop"))
            .args(["cosim", "--shard", &format!("{k}/{n}"), "--junit", "x.xml", "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
