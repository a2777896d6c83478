//! Shared test helpers: where the shared fixtures live.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data directory (`../shared` beside the repository, or `$CALLTYPE_SHARED`).
///
/// Returns `None` (after printing a note) when it is missing, so a checkout without the data
/// still passes; with `CI=true` a missing directory is a failure.
pub fn shared_dir() -> Option<PathBuf> {
    testdata::shared("fixtures").map(|_| testdata::shared_root())
}

/// The bytes of `fixtures/contact-lens/<name>` in the shared directory.
pub fn fixture(shared: &std::path::Path, name: &str) -> Vec<u8> {
    let p = shared.join("fixtures/contact-lens").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The bytes of one of this crate's own fixtures (`tests/fixtures/<name>`).
pub fn local_fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}
