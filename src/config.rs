//! Configuration of the server.
