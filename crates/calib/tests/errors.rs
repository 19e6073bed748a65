//! Calibration input errors: clear messages, no panics.

mod common;

use sop_calib::{builtin_texts, calibrate, read_texts, CalibError, CalibOptions, Encoder, BUILTIN_TEXT};

/// A model directory with minilm's weights (symlinked) and the given config / tokenizer.
fn model_dir(config: Option<&str>, with_tokenizer: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = common::minilm();
    std::os::unix::fs::symlink(&src, d.path().join("model.safetensors")).unwrap();
    let cfg = match config {
        Some(c) => c.to_string(),
        None => std::fs::read_to_string(src.with_file_name("config.json")).unwrap(),
    };
    std::fs::write(d.path().join("config.json"), cfg).unwrap();
    if with_tokenizer {
        std::fs::copy(src.with_file_name("tokenizer.json"), d.path().join("tokenizer.json")).unwrap();
    }
    d
}

#[test]
fn builtin_text_is_real_and_small() {
    let t = builtin_texts();
    assert_eq!(t.len(), 520);
    assert!(BUILTIN_TEXT.len() < 100_000);
    assert!(t.iter().all(|s| s.split_whitespace().count() >= 6));
    assert!(t[0].starts_with("After more than a century of rule by France"));
}

#[test]
fn directory_and_file_paths_both_work() {
    let d = model_dir(None, true);
    let texts = vec!["A short sentence.".to_string()];
    let a = Encoder::load(d.path(), 256).unwrap().embed(&texts).unwrap();
    let b = Encoder::load(&d.path().join("model.safetensors"), 256)
        .unwrap()
        .embed(&texts)
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn non_bert_model_is_refused_with_a_hint() {
    let d = model_dir(Some(r#"{"model_type": "llama", "hidden_size": 384}"#), true);
    let e = calibrate(d.path(), &builtin_texts(), &CalibOptions::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(e, CalibError::UnsupportedModel { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("llama") && e.contains("config.json") && e.contains("imatrix"),
        "{e}"
    );
    let d = model_dir(Some("{not json"), true);
    let e = Encoder::load(d.path(), 256).unwrap_err().to_string();
    assert!(e.contains("not valid JSON"), "{e}");
}

#[test]
fn missing_tokenizer_is_named() {
    let d = model_dir(None, false);
    let e = Encoder::load(d.path(), 256).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json") && e.contains("not found"), "{e}");
}

#[test]
fn bad_options_and_texts() {
    let m = common::minilm();
    let none: Vec<String> = Vec::new();
    let e = calibrate(&m, &none, &CalibOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no calibration text"), "{e}");
    let o = CalibOptions {
        max_sentences: Some(0),
        ..CalibOptions::default()
    };
    assert!(calibrate(&m, &builtin_texts(), &o, &mut |_| {}).is_err());
    let o = CalibOptions {
        threads: Some(0),
        ..CalibOptions::default()
    };
    assert!(calibrate(&m, &builtin_texts(), &o, &mut |_| {}).is_err());
    assert!(Encoder::load(&m, 1).is_err());

    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.txt");
    std::fs::write(&p, "  first line \r\n\n\nsecond\n").unwrap();
    assert_eq!(
        read_texts(&p).unwrap(),
        vec!["first line".to_string(), "second".to_string()]
    );
    std::fs::write(&p, b"\xff\xfe bad").unwrap();
    let e = read_texts(&p).unwrap_err().to_string();
    assert!(e.contains("t.txt") && e.contains("UTF-8"), "{e}");
    std::fs::write(&p, "\n \n").unwrap();
    assert!(read_texts(&p).unwrap_err().to_string().contains("no non-blank line"));
}

#[test]
fn long_texts_are_truncated() {
    let enc = Encoder::load(&common::minilm(), 16).unwrap();
    assert_eq!(enc.max_seq_len(), 16);
    let ids = enc.encode(&[builtin_texts().concat()]).unwrap();
    assert_eq!(ids[0].len(), 16);
    assert_eq!((ids[0][0], ids[0][15]), (101, 102));
    let enc = Encoder::load(&common::minilm(), 100_000).unwrap();
    assert_eq!(enc.max_seq_len(), 512);
}

#[test]
fn missing_model_and_config_are_named() {
    let e = Encoder::load(std::path::Path::new("/no/such/model"), 256)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/model") && e.contains("does not exist"), "{e}");
    let d = model_dir(None, true);
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    let e = Encoder::load(d.path(), 256).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("not found"), "{e}");
}
