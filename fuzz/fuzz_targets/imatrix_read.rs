//! Fuzzes the importance-matrix reader (`sop-calib`: imatrix.gguf and the legacy .dat).
//!
//! Input: the bytes of an imatrix file. Checks: no panic; what is read gives column weights
//! for every entry (finite and >= 0, `None` only for a zero token count); writing it as GGUF
//! and reading that back gives the same sums, datasets and chunk counts.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sop_calib::ImatrixStats;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.imatrix");
    let Ok(stats) = ImatrixStats::from_bytes(data, path) else {
        return;
    };
    for (name, s) in &stats.per_layer {
        let w = stats
            .column_weights(name, s.cols())
            .unwrap_or_else(|e| panic!("entry `{name}` was read but its column weights fail: {e}"));
        match w {
            None => assert_eq!(s.count, 0, "{name}"),
            Some(w) => {
                assert_eq!(w.len(), s.cols());
                assert!(w.iter().all(|v| v.is_finite() && *v >= 0.0), "{name}");
            }
        }
    }
    let bytes = stats.to_gguf_bytes();
    let back = ImatrixStats::from_bytes(&bytes, path).expect("what was read must re-read after writing");
    assert_eq!(back.datasets, stats.datasets);
    assert_eq!(back.chunks, stats.chunks);
    assert_eq!(back.chunk_size, stats.chunk_size);
    assert_eq!(back.per_layer.len(), stats.per_layer.len());
    for ((n, a), (m, b)) in stats.per_layer.iter().zip(&back.per_layer) {
        assert_eq!(n, m);
        assert_eq!(a.sum_x2, b.sum_x2, "{n}");
        assert_eq!(a.sum_x, b.sum_x, "{n}");
        // Counts are stored as f32 (as llama.cpp does).
        assert_eq!((a.count as f32).round() as u64, b.count, "{n}");
    }
});
