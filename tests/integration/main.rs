//! Integration tests: one binary, so the crate links once. Each module covers one area.

mod store_contract;
