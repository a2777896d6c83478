//! Test-only access to `../shared` (real Contact Lens files, events, datasets), which lives
//! beside the repository and is never copied into it.
//!
//! [`shared`] finds a path under it. When the folder is missing, tests skip with a note —
//! except under `CI=true`, where they fail with a message naming the path, so CI can never
//! pass by skipping.

use std::path::PathBuf;

/// The shared folder: `$CALLTYPE_SHARED`, else `../shared` beside the repository.
pub fn shared_root() -> PathBuf {
    match std::env::var_os("CALLTYPE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

/// `rel` under the shared folder, or `None` (after printing why) when it is absent outside CI.
///
/// # Panics
/// When the path is absent and `CI=true`.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = shared_root().join(rel);
    if p.exists() {
        return Some(p);
    }
    let msg = format!(
        "{} is missing: tests need the shared data folder beside the repository (or CALLTYPE_SHARED)",
        p.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// Reads `rel` under the shared folder (see [`shared`]).
pub fn read_shared(rel: &str) -> Option<Vec<u8>> {
    shared(rel).map(|p| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// A path inside this repository.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}
