//! gRPC services: convert proto <-> domain, call the domain, map errors to `Status`.
