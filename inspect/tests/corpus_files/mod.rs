//! The `.eml` files of a test corpus directory. Shared by the inspect crate's tests and the
//! integration test that fetches the evasion corpus through the relay
//! (`tests/tests/evasion_relay.rs`, by `#[path]`).

use std::fs;
use std::path::{Path, PathBuf};

/// The `.eml` files in `dir`, sorted by name (the order Dovecot numbers them in).
pub fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort();
    paths
}
