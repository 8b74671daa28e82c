//! Compiles `proto/` with protox (pure Rust, no protoc) and generates the tonic code, and writes
//! the file descriptor set that gRPC reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=migrations");

    let files = [
        "assay/v1/metric.proto",
        "assay/v1/behavior.proto",
        "assay/v1/endpoint.proto",
        "assay/v1/test_set.proto",
        "assay/v1/execution.proto",
        "assay/v1/scorer.proto",
    ];
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("assay_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure().compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
