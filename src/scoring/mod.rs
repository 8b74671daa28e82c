//! Scoring answers with metrics.
