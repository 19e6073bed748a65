//! Functional coverage closure: real minilm layers plus the directed coverage items reach
//! 100 % of the reachable bins on every committed configuration (the test fails when the
//! coverage drops); the real layers alone leave holes (the HIF lanes never round on real
//! weights); the report is the same at 1 and 2 threads and the shards' reports merge into
//! the whole run's.

use sop_cosim::coverage::Report;
use sop_cosim::{run, CosimOptions, Shard};

fn opts(dir: &std::path::Path, name: &str) -> CosimOptions {
    CosimOptions {
        // Two real layers, a prefix of each (the default stream: gaps, strobes, bubbles,
        // the mid-layer reset, the reload while draining).
        layers: Some(r"encoder\.layer\.0\.attention\.self\.(query|key)\.weight".into()),
        max_weights: Some(16 * 1024),
        coverage: Some(dir.join(name)),
        threads: 2,
        ..CosimOptions::default()
    }
}

#[test]
fn real_layers_and_directed_stimulus_close_the_reachable_space() {
    let dir = tempfile::tempdir().unwrap();
    let s = run(&opts(dir.path(), "cov.json"), |_| {}).unwrap();
    assert!(s.passed(), "{s}");
    let c = s.coverage.as_ref().expect("a coverage report");
    let holes = c.holes();
    assert!(
        holes.is_empty(),
        "{} holes, first: {:?}",
        holes.len(),
        &holes[..holes.len().min(20)]
    );
    assert_eq!(c.hit(), c.reachable());
    assert!(c.line().contains(" (100.0 %), "), "{}", c.line());
    assert!(c.excluded() > 0);
    // Every excluded bin has a reason, and the file says the same as the summary.
    let text = std::fs::read_to_string(dir.path().join("cov.json")).unwrap();
    let back = Report::from_json("cov.json", &text).unwrap();
    assert!(back == *c, "the JSON file is the summary's report");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["reachable"].as_u64().unwrap() as usize, c.reachable());
    assert_eq!(v["hit"].as_u64().unwrap() as usize, c.hit());
    assert!(v["bins"][0]["name"].is_string() && v["bins"][0]["hits"].is_u64());
    assert!(v["excluded_bins"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| !b["reason"].as_str().unwrap().is_empty()));
    // The one-line summary and the holes are printed with the summary.
    assert!(s.to_string().contains(&c.line()));
    eprintln!("{}", c.line());
}

#[test]
fn real_layers_alone_leave_the_rounding_bins_open() {
    let dir = tempfile::tempdir().unwrap();
    let o = CosimOptions {
        directed: false,
        ..opts(dir.path(), "real.json")
    };
    let s = run(&o, |_| {}).unwrap();
    let c = s.coverage.as_ref().unwrap();
    let holes = c.holes();
    assert!(c.hit() < c.reachable(), "{}", c.line());
    // Real weights never make a HIF lane's packer round (mutation.rs); the coverage says so.
    assert!(
        holes
            .iter()
            .any(|h| h.starts_with("sop_c4_hif8_ue4m4_fp16/lane/pack/underflow_subnormal_tie")),
        "{holes:?}"
    );
    // And they do hit the plain bins.
    assert!(!holes.contains(&"sop_c4_hif8_ue4m4_fp16/lane/pack/exact"));
    assert!(!holes.contains(&"sop_c4_hif8_ue4m4_fp16/event/reset_mid_block"));
    eprintln!("real layers alone: {}", c.line());
}

#[test]
fn coverage_is_the_same_at_any_thread_count_and_shards_merge() {
    let dir = tempfile::tempdir().unwrap();
    let base = CosimOptions {
        only: vec!["sop_c4_hif8_se4m3_fp16".into(), "sop_c6_fp16lut_ue4m4_bf16".into()],
        ..opts(dir.path(), "t1.json")
    };
    let one = run(
        &CosimOptions {
            threads: 1,
            ..base.clone()
        },
        |_| {},
    )
    .unwrap();
    let two = run(
        &CosimOptions {
            threads: 2,
            coverage: Some(dir.path().join("t2.json")),
            ..base.clone()
        },
        |_| {},
    )
    .unwrap();
    let (a, b) = (one.coverage.unwrap(), two.coverage.unwrap());
    assert!(a == b, "coverage differs between 1 and 2 threads");
    let mut parts = Vec::new();
    for k in 1..=3 {
        let f = dir.path().join(format!("s{k}.json"));
        let s = run(
            &CosimOptions {
                shard: Shard { index: k, count: 3 },
                coverage: Some(f.clone()),
                ..base.clone()
            },
            |_| {},
        )
        .unwrap();
        parts.push((format!("s{k}.json"), s.coverage.unwrap()));
    }
    parts.reverse();
    let merged = Report::merge(&parts).unwrap();
    assert!(merged == a, "the shards' merged coverage is the whole run's");
    let twice = Report::merge(&[parts[0].clone(), parts[0].clone()]).unwrap_err();
    assert!(twice.to_string().contains("in both"), "{twice}");
}
