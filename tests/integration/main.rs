//! Integration tests: one binary, so the crate links once. Each module covers one area.

mod catalogue;
mod e2e;
mod store_contract;
