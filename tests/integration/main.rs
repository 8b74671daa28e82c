//! Integration tests: one binary, so the crate links once. Each module covers one area; every
//! test talks to a real server on 127.0.0.1 through the generated client.

mod app_server;
mod catalogue;
mod cli;
mod crash;
mod docs;
mod e2e;
mod execution;
mod fixtures;
mod grpc_web;
mod harness;
mod metrics;
mod observability;
mod on_postgres;
mod postgres;
mod regressions;
mod replicas;
mod resilience;
mod runs;
mod scorers;
mod security;
mod semantic;
mod spend;
mod standard_services;
mod store_contract;
mod suite;
