//! Sharding and threads on real minilm layers: the shards `1/N ..= N/N` together check
//! exactly the words of the whole run (same words per layer x configuration, same verdict,
//! their merged JUnit equal to the whole run's), and the results and reports are the same at
//! any thread count, mismatches and the mismatch limit included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sop_cosim::ffi::MUTANT_CONFIG;
use sop_cosim::junit::merge_junit;
use sop_cosim::{run, CosimOptions, CosimSummary, Shard};

/// Three layers of two sizes (384 x 384 and 1536 x 384), two configurations: a fixed lane and
/// the engine.
fn small_run(junit: Option<PathBuf>) -> CosimOptions {
    CosimOptions {
        layers: Some("layer\\.0\\.(attention\\.self\\.(query|key)|intermediate\\.dense)\\.weight$".into()),
        only: vec!["sop_c4_hif8_ue4m4_fp16".into(), "sop_engine_hif8_fp16".into()],
        junit,
        ..CosimOptions::default()
    }
}

/// The JUnit text without its `time` attributes (the only run-dependent values).
fn untimed(path: &Path) -> String {
    let x = std::fs::read_to_string(path).unwrap();
    let mut out = String::with_capacity(x.len());
    let mut rest = x.as_str();
    while let Some(k) = rest.find(" time=\"") {
        out.push_str(&rest[..k]);
        let after = &rest[k + 7..];
        let end = after.find('"').expect("closing quote");
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Per (configuration, layer): words checked, mismatches, words checked during the reload.
fn per_item(s: &CosimSummary) -> BTreeMap<(String, String), (u64, u64, u64)> {
    s.reports
        .iter()
        .map(|r| {
            (
                (r.config.clone(), r.layer.clone()),
                (r.weights, r.mismatches, r.reload_checked),
            )
        })
        .collect()
}

#[test]
fn shards_together_check_exactly_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let full_xml = dir.path().join("full.xml");
    let full = run(&small_run(Some(full_xml.clone())), |_| {}).unwrap();
    assert!(full.passed(), "{full}");
    assert_eq!(full.reports.len(), 6);
    assert_eq!(full.layers, 3);
    assert_eq!(full.configs, 2);
    let whole = per_item(&full);
    // Every item checks its whole layer, and some of its words drain during the reload
    // after it (the cross-table check runs in every item).
    for ((c, l), (w, _, reload)) in &whole {
        let n = if l.contains("intermediate") {
            1536 * 384
        } else {
            384 * 384
        };
        assert_eq!(*w, n, "{c} {l}");
        assert!(*reload > 0, "{c} {l}: no word drained during the reload");
    }
    for n in [2u32, 3] {
        let mut union = BTreeMap::new();
        let mut words = 0;
        let mut files = Vec::new();
        let mut loads = Vec::new();
        for k in 1..=n {
            let p = dir.path().join(format!("shard-{k}-of-{n}.xml"));
            let opts = CosimOptions {
                shard: Shard { index: k, count: n },
                ..small_run(Some(p.clone()))
            };
            let s = run(&opts, |_| {}).unwrap();
            assert!(s.passed(), "{s}");
            assert!(!s.reports.is_empty(), "shard {k}/{n} is empty");
            words += s.weights;
            loads.push(s.weights);
            for (key, v) in per_item(&s) {
                assert!(union.insert(key.clone(), v).is_none(), "{key:?} in two shards");
            }
            files.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
        assert_eq!(union, whole, "{n} shards");
        assert_eq!(words, full.weights, "{n} shards");
        // Balanced by weights: within the largest item (one 1536 x 384 layer).
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(hi - lo <= 1536 * 384, "{n} shards: {loads:?}");
        // Their JUnit files, merged (in any order), are the whole run's but for the times.
        files.reverse();
        let merged = merge_junit(&files).unwrap();
        let m = dir.path().join(format!("merged-{n}.xml"));
        std::fs::write(&m, &merged.xml).unwrap();
        assert_eq!(untimed(&m), untimed(&full_xml), "{n} shards");
        assert_eq!((merged.tests, merged.failures, merged.skipped), (6, 0, 0));
    }
    // A shard given twice overlaps itself.
    let p = dir.path().join("shard-1-of-2.xml");
    let text = std::fs::read_to_string(&p).unwrap();
    let e = merge_junit(&[(p.clone(), text.clone()), (p, text)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("the inputs overlap"), "{e}");
}

/// Everything but the timing: the summary text without its rate, and the JUnit file without
/// times.
/// (summary text without the rate, untimed JUnit, per report: config, layer, words, mismatches).
type Fingerprint = (String, String, Vec<(String, String, u64, u64)>);

fn fingerprint(s: &CosimSummary, junit: &Path) -> Fingerprint {
    let text = s.to_string();
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let line = last.rsplit_once(", ").unwrap().0.to_string();
    (
        format!("{body}\n{line}"),
        untimed(junit),
        s.reports
            .iter()
            .map(|r| (r.config.clone(), r.layer.clone(), r.weights, r.mismatches))
            .collect(),
    )
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut prints = Vec::new();
    for threads in [1, 2, 3] {
        let p = dir.path().join(format!("t{threads}.xml"));
        let opts = CosimOptions {
            threads,
            ..small_run(Some(p.clone()))
        };
        let s = run(&opts, |_| {}).unwrap();
        assert!(s.passed(), "{s}");
        prints.push(fingerprint(&s, &p));
    }
    assert_eq!(prints[0], prints[1]);
    assert_eq!(prints[0], prints[2]);

    // With mismatches and the limit: the mutant on the first row of four layers, stopping at
    // 25 mismatches (inside the second or a later item, whose count is cut to the limit): the
    // same mismatches, counts and skipped items at 1 and 2 threads.
    let mut prints = Vec::new();
    for threads in [1, 2] {
        let p = dir.path().join(format!("m{threads}.xml"));
        let opts = CosimOptions {
            layers: Some("layer\\.0\\.attention\\.".into()),
            only: vec![MUTANT_CONFIG.into()],
            mutant: true,
            max_mismatches: 25,
            max_weights: Some(384),
            threads,
            junit: Some(p.clone()),
            ..CosimOptions::default()
        };
        let s = run(&opts, |_| {}).unwrap();
        assert_eq!(s.mismatches, 25, "{s}");
        assert!(s.stopped);
        assert!(
            s.reports.len() >= 2,
            "the limit is reached after the first item: {:?}",
            s.reports
        );
        assert_eq!(s.reports.len() + s.skipped.len(), 4);
        prints.push((fingerprint(&s, &p), s.skipped.clone()));
    }
    assert_eq!(prints[0], prints[1]);
}

/// The soak's summary without its timing (`..., <T> s, <M> M weights/s`), the mismatch
/// reports and the per-round counts.
fn soak_print(threads: usize, mutant: bool) -> (String, Vec<(u64, u64, u64)>) {
    let opts = CosimOptions {
        layers: Some("layer\\.0\\.attention\\.self\\.(query|key)\\.weight$".into()),
        max_weights: Some(12_288),
        mutant,
        max_mismatches: if mutant { 40 } else { 10 },
        threads,
        ..CosimOptions::default()
    };
    let mut rounds = Vec::new();
    let s = sop_cosim::soak(&opts, 3, |r| rounds.push((r.seed, r.weights, r.mismatches))).unwrap();
    let text = s.to_string();
    let cut = text.rfind(", ").and_then(|k| text[..k].rfind(", ")).unwrap();
    (text[..cut].to_string(), rounds)
}

#[test]
fn soak_results_do_not_depend_on_the_thread_count() {
    let clean = soak_print(1, false);
    assert_eq!(clean.1.len(), 3);
    assert!(clean.0.contains(" 0 mismatches"), "{}", clean.0);
    assert_eq!(clean, soak_print(2, false));
    // The mutant: the limit reached inside a round, the same mismatches at 1 and 2 threads.
    let m = soak_print(1, true);
    assert!(m.0.contains(" 40 mismatches"), "{}", m.0);
    assert_eq!(m, soak_print(2, true));
}
