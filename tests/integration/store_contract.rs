//! The storage contract: every Store backend must pass these tests.
