//! The library entry point behind `sop cosim`: summary line, JUnit XML, the mismatch limit
//! and the VCD written around the first mismatch (on the mutated RTL).

use sop_cosim::ffi::MUTANT_CONFIG;
use sop_cosim::{run, CosimOptions, Progress};
use sop_testbenches::SMALL_LAYER;

fn layer_pattern() -> String {
    format!("^{}$", SMALL_LAYER.replace('.', "\\."))
}

fn check_line(line: &str, weights: u64, layers: usize, configs: usize, mismatches: u64) {
    let prefix = format!("cosim: {weights} weights, {layers} layers, {configs} configs, {mismatches} mismatches, ");
    assert!(line.starts_with(&prefix), "{line}");
    let rate = line[prefix.len()..].strip_suffix(" M weights/s").expect(line);
    let (int, frac) = rate.split_once('.').expect(line);
    assert!(int.chars().all(|c| c.is_ascii_digit()) && frac.len() == 1, "{line}");
}

#[test]
fn passing_run_summary_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("cosim.xml");
    let opts = CosimOptions {
        layers: Some(layer_pattern()),
        only: vec!["sop_c4_hif8_ue4m4_fp16".into(), "sop_c6_hif8_ue4m4_bf16".into()],
        max_weights: Some(20_000),
        junit: Some(junit.clone()),
        ..CosimOptions::default()
    };
    let mut layer_events = 0;
    let s = run(&opts, |p| {
        if let Progress::Layer(r) = p {
            assert_eq!(r.mismatches, 0);
            layer_events += 1;
        }
    })
    .unwrap();
    assert_eq!(layer_events, 2);
    assert!(s.passed(), "{s}");
    // 20000 weights of 384 columns: 52 full rows (19968 weights), then no further whole block
    // of 16 fits... 19968 + 2 * 16 = 20000 does.
    assert_eq!(s.reports[0].weights, 20_000);
    assert_eq!(s.weights, 40_000);
    check_line(&s.line(), 40_000, 1, 2, 0);
    assert_eq!(s.to_string().lines().last().unwrap(), s.line());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(xml.contains(&format!("name=\"{SMALL_LAYER}\"")), "{xml}");
}

#[test]
fn mutant_run_stops_writes_vcd_and_junit_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("cosim.xml");
    let vcd = dir.path().join("first.vcd");
    let opts = CosimOptions {
        layers: Some("layer\\.0\\.attention\\.self\\.(query|key)\\.weight$".into()),
        only: vec![MUTANT_CONFIG.into()],
        mutant: true,
        max_mismatches: 3,
        junit: Some(junit.clone()),
        vcd: Some(vcd.clone()),
        ..CosimOptions::default()
    };
    let s = run(&opts, |_| {}).unwrap();
    assert_eq!(s.mismatches, 3, "{s}");
    assert!(s.stopped && !s.passed());
    assert_eq!(s.mismatch_reports.len(), 3);
    assert_eq!(s.skipped.len(), 1, "the second layer is skipped: {:?}", s.skipped);
    let text = s.to_string();
    assert!(text.contains("MISMATCH (wrong word)"), "{text}");
    assert!(text.contains("waveform:"), "{text}");
    let line = text.lines().last().unwrap();
    assert!(line.contains(", 3 mismatches, "), "{line}");
    let v = s.vcd.as_ref().expect("a VCD report");
    assert!(v.reproduced, "the replay reproduces the first mismatch: {v:?}");
    let first = &s.mismatch_reports[0];
    assert!(v.cycles.0 <= first.cycle && first.cycle < v.cycles.1, "{v:?} {first}");
    let dump = std::fs::read_to_string(&vcd).unwrap();
    assert!(dump.contains("$enddefinitions"), "not a VCD");
    assert!(dump.contains("data_out_0"), "ports traced");
    assert!(
        dump.contains(&format!("#{}", first.cycle * 10 + 5)),
        "the mismatch cycle's rising edge is dumped"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), 1, "{xml}");
    assert!(xml.contains("MISMATCH (wrong word)"), "{xml}");
    // Both were written under a temporary name and renamed into place: nothing else is left.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cosim.xml", "first.vcd"]);
}

/// `run_quantized` (behind `sop cosim --quantized`): layers read from a model file at their
/// own options and block sizes; the mutant FP16-LUT RTL is caught on such a layer, with the
/// JUnit failure and a VCD that reproduces the first mismatch, and the per-option lines.
#[test]
fn quantized_model_run_catches_the_mutant_with_junit_and_vcd() {
    use sop_cosim::run_quantized;
    use sop_quantize::sparse::MenuOption;

    let w = sop_testbenches::load(SMALL_LAYER);
    let model: Vec<_> = ["NF4+DD4sUE4M4b32-FP16", "E2M3sUE4M4b64"]
        .iter()
        .map(|o| {
            let opt: MenuOption = o.parse().unwrap();
            let mut ql = sop_testbenches::quantize_at(opt.point, &w);
            ql.name = format!("{}:{o}", w.name);
            (ql, opt)
        })
        .collect();

    // The fixed FP16-LUT lane (the mutated one) and the HIF engine: without the FP16-LUT
    // engine, which would take the FP16-LUT layer first.
    let only: Vec<String> = vec![MUTANT_CONFIG.into(), "sop_engine_hif8_fp16".into()];
    // The plain RTL: every word of both layers, one line per option.
    let plain = CosimOptions {
        only: only.clone(),
        ..CosimOptions::default()
    };
    let s = run_quantized(&plain, &model, |_| {}).unwrap();
    assert!(s.passed(), "{s}");
    let n = (w.rows * w.cols) as u64;
    check_line(&s.line(), 2 * n, 2, 2, 0);
    let text = s.to_string();
    assert!(
        text.contains(&format!(
            "NF4+DD4sUE4M4b32-FP16: 1 layers, {n} weights, 0 sparse entries"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("E2M3sUE4M4b64: 1 layers, {n} weights, 0 sparse entries")),
        "{text}"
    );
    assert_eq!(s.reports[0].config, MUTANT_CONFIG);

    // The mutant.
    let dir = tempfile::tempdir().unwrap();
    let (junit, vcd) = (dir.path().join("q.xml"), dir.path().join("q.vcd"));
    let opts = CosimOptions {
        only,
        mutant: true,
        max_mismatches: 2,
        junit: Some(junit.clone()),
        vcd: Some(vcd.clone()),
        ..CosimOptions::default()
    };
    let s = run_quantized(&opts, &model, |_| {}).unwrap();
    assert_eq!(s.mismatches, 2, "{s}");
    // Only the pair that would have run is skipped: the E2M3 layer on the engine.
    assert_eq!(
        s.skipped,
        [("sop_engine_hif8_fp16".to_string(), model[1].0.name.clone())],
        "{:?}",
        s.skipped
    );
    assert!(s.vcd.as_ref().expect("a VCD").reproduced);
    assert!(s.mismatch_reports[0].to_string().contains(MUTANT_CONFIG));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(std::fs::read_to_string(&vcd).unwrap().contains("$enddefinitions"));
}
