//! Security and robustness through the real server: API keys, the environment variables clients
//! may use, and the bounds on work a request can cause.

mod api_keys;
mod limits;
mod outbound;
mod recorder;
mod secrets;
mod tls;
