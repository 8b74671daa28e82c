//! Assay: a gRPC service that runs test suites against LLM applications and scores every answer.
//!
//! Layers, each knowing only the ones below it:
//! - [`api`]: tonic services; converts proto <-> domain and maps [`error::Error`] to `Status`.
//! - [`catalogue`]: metrics, behaviours, endpoints and test sets between a request and the store
//!   (references, defaults, judge rules, validation, transactional updates, imports).
//! - [`engine`]: runs, rescoring and streaming of results.
//! - [`scoring`] and [`endpoint_client`]: scoring answers and calling endpoints.
//! - [`store`]: persistence behind the [`store::Store`] trait.
//! - [`domain`]: plain types, free of transport and storage.
//! - [`telemetry`]: metrics, spans and logs; the engine and endpoint client record into it.
//!
//! [`cli`] is the `assay` command's client: it talks to a server through the generated clients.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod config;
mod degraded;
pub mod domain;
pub mod endpoint_client;
pub mod engine;
pub mod error;
pub mod health;
pub mod proto;
pub mod scoring;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
