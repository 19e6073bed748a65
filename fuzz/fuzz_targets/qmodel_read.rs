//! Fuzzes the quantized-model reader (`sop-qmodel`, what `sop inspect` loads).
//!
//! Input: the bytes of a `model.sop.safetensors` file. Checks: no panic; every loaded layer
//! dequantizes (as `sop inspect` does) to `rows * cols` values and its stored bits match; the
//! loaded layers written again and re-read are identical (the writer and the reader agree on
//! everything the reader accepts).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.sop.safetensors");
    let Ok(loaded) = sop_qmodel::from_bytes(data, path) else {
        return;
    };
    for (l, _) in &loaded.layers {
        assert_eq!(l.dequantize().len(), l.rows * l.cols, "{}", l.name);
        let _ = l.bpw();
    }
    let extra: Vec<(&str, String)> = loaded
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "format" && k.as_str() != "layers")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let bytes = sop_qmodel::to_bytes(&loaded.layers, &extra).expect("loaded layers must serialize");
    let again = sop_qmodel::from_bytes(&bytes, path).expect("written layers must load");
    // Debug text compares NaN levels and signed zeros exactly (PartialEq would not).
    assert_eq!(format!("{:?}", again.layers), format!("{:?}", loaded.layers));
});
