//! Code generated from `proto/assay/v1` by `build.rs`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `assay.v1`.
pub mod v1 {
    tonic::include_proto!("assay.v1");
}

/// The encoded file descriptor set of `proto/`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("assay_descriptor");
