//! SQLite backend (stub).

/// SQLite store.
pub struct SqliteStore;
