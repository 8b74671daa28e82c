//! Security and robustness through the real server: API keys, the environment variables clients
//! may use, the bounds on work a request can cause, and durability under faults.

mod api_keys;
mod database_faults;
mod durability;
mod limits;
mod outbound;
mod recorder;
mod secrets;
mod shutdown;
mod stored_size;
mod tls;
