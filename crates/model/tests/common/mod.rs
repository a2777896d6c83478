//! Where the shared parity data and the MiniLM backbone live.
#![allow(dead_code)]

use std::path::PathBuf;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `../shared` beside the checkout, or `CALLTYPE_SHARED` (the one locator, `testdata`): `None`
/// with a note when its `parity/` is absent locally; a panic under `CI=true`.
pub fn shared_dir() -> Option<PathBuf> {
    testdata::shared("parity").map(|_| testdata::shared_root())
}

/// `models/all-MiniLM-L6-v2` at the repo root, or `CALLTYPE_BACKBONE`.
pub fn backbone_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CALLTYPE_BACKBONE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/all-MiniLM-L6-v2"
            ))
        });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    if ci() {
        panic!("backbone not found at {}: run make backbone", dir.display());
    }
    eprintln!(
        "note: backbone not found at {}; run make backbone. Skipping.",
        dir.display()
    );
    None
}
