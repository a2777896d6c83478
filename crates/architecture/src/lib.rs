//! No code: this crate holds the test that checks the workspace's architecture invariants
//! (`tests/invariants.rs`, listed in `ARCHITECTURE.md`) against the dependency graph that
//! `cargo metadata` reports, so that `cargo test` fails when a core crate gains a dependency
//! on AWS, Lambda or an async runtime.
//!
//! Architecture invariant: nothing depends on this crate.
