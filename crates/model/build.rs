//! Compiles the vendored ONNX schema (`proto/onnx.proto3`, see `proto/README.md`) into Rust
//! types with prost. The schema is parsed by protox, a protobuf compiler written in Rust, so the
//! build needs no `protoc` binary. Every `bytes` field becomes a `bytes::Bytes`, which lets the
//! reader decode initializers' `raw_data` as zero-copy slices of the memory-mapped model file.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let proto_dir = dir.join("proto");
    let schema = proto_dir.join("onnx.proto3");
    println!("cargo:rerun-if-changed={}", schema.display());
    println!("cargo:rerun-if-changed=build.rs");
    let descriptors = match protox::compile([&schema], [&proto_dir]) {
        Ok(d) => d,
        Err(e) => panic!("compiling the ONNX schema {}: {e}", schema.display()),
    };
    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    if let Err(e) = config.compile_fds(descriptors) {
        panic!("generating Rust types from {}: {e}", schema.display());
    }
}
