//! Writing quarantined originals (SPEC §4 `quarantine`): `DIR/quarantine/ID.eml`, written
//! to a temporary name, synced, then linked to its final name, so a file under its final
//! name is complete and never replaces another.
// `store` runs only on the blocking pool (`inspection::decide`).
#![allow(clippy::disallowed_methods)]

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Stores `message` as `dir/ID.eml` (mode 0600, directory 0700 when created).
///
/// # Errors
/// Any file system failure; the caller withholds the message rather than lose it.
pub fn store(dir: &Path, id: &str, message: &[u8]) -> io::Result<PathBuf> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let final_path = dir.join(format!("{id}.eml"));
    let temp_path = dir.join(format!(".{id}.eml.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp_path)?;
    let written = file.write_all(message).and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(err);
    }
    // A hard link, unlike rename, refuses to replace an existing entry.
    let linked = fs::hard_link(&temp_path, &final_path);
    let _ = fs::remove_file(&temp_path);
    linked?;
    fs::File::open(dir)?.sync_all()?;
    Ok(final_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stores_the_exact_bytes_privately() {
        let dir = tempfile::tempdir().unwrap();
        let qdir = dir.path().join("quarantine");
        let path = store(&qdir, "42-1-3", b"From: a\r\n\r\nbody\r\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"From: a\r\n\r\nbody\r\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            store(&qdir, "42-1-3", b"again").is_err(),
            "ids are never reused"
        );
    }
}
