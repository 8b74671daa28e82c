//! Runs: execution, rescoring, streaming of results.
