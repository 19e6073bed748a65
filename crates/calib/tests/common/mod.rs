//! Shared helpers: the real all-MiniLM-L6-v2 weights (fetched into the cache on first use).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use sop_calib::{builtin_texts, calibrate, CalibOptions, ImatrixStats};

/// Path of minilm's model.safetensors, fetching it if needed (panics with the fetch error).
pub fn minilm() -> PathBuf {
    sop_model::resolve("minilm").unwrap_or_else(|e| panic!("minilm weights unavailable: {e}"))
}

/// Statistics of minilm on the first 64 built-in sentences, computed once per test binary.
pub fn small_stats() -> &'static ImatrixStats {
    static S: OnceLock<ImatrixStats> = OnceLock::new();
    S.get_or_init(|| {
        let opts = CalibOptions {
            max_sentences: Some(64),
            ..CalibOptions::default()
        };
        calibrate(&minilm(), &builtin_texts(), &opts, &mut |_| {}).expect("calibrate")
    })
}
