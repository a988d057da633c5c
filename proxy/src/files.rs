//! File I/O for the administrator commands: reading with the path in the error, and
//! replacing files atomically with a chosen mode.
//!
//! Every write goes to a temporary file in the target's directory, is fsynced, renamed over
//! the target, and then the directory is fsynced: a reader (the running daemon, whose
//! watcher only reads `*.json` and `pki/` names) sees either the old file or the new one,
//! never half of either, and a crash leaves at most a stray `.NAME.popgate-tmp-PID` file.
//! What to write is the commands' business.
// The administrator commands' file helpers: synchronous by design (see cli/).
#![allow(clippy::disallowed_methods)]

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Mode of private keys.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates and requests (public data).
pub const CERT_MODE: u32 = 0o644;
/// Mode of directories this tool creates.
pub const DIR_MODE: u32 = 0o700;

/// Reads a whole file.
///
/// # Errors
/// Any I/O error, with the path as context.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a file that may be absent.
///
/// # Errors
/// I/O errors other than "not found", with the path as context.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Whether `path` exists (a dangling symlink counts: something is there).
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it
/// is.
///
/// # Errors
/// I/O errors, or `dir` existing as something other than a directory.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    if !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    Ok(())
}

/// Atomically writes `bytes` to `path` with exactly `mode` (the umask does not apply).
/// The directory must exist.
///
/// # Errors
/// I/O errors, with the path as context; the target is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace(path, bytes, mode, None)
}

/// Atomically rewrites the existing file `path`, keeping its mode and (when it differs from
/// ours) its owner and group. A symlink is followed: the file it points to is replaced and
/// the link stays.
///
/// # Errors
/// I/O errors, with the path as context; the file is then untouched.
pub fn rewrite_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let meta = fs::metadata(&target).with_context(|| format!("reading {}", target.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    replace(&target, bytes, mode, Some((meta.uid(), meta.gid())))
}

/// Removes `path` if it exists.
///
/// # Errors
/// I/O errors other than "not found".
pub fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn replace(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = parent_dir(path);
    let temp = temp_path(path)?;
    let result = write_temp(&temp, bytes, mode, owner)
        .and_then(|()| fs::rename(&temp, path))
        .and_then(|()| File::open(&dir)?.sync_all());
    if let Err(err) = result {
        // Best effort: the temporary file is ours and useless now; the target is untouched
        // unless the rename succeeded, in which case only the directory sync failed.
        let _ = fs::remove_file(&temp);
        return Err(err).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn write_temp(temp: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    // `mode` above went through the umask; a key must end up exactly 0600 and a config
    // file exactly as it was.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        let meta = file.metadata()?;
        if (meta.uid(), meta.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
    }
    file.write_all(bytes)?;
    file.sync_all()
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.popgate-tmp-PID` beside `path`: hidden, and not ending in `.json`, `.crt` or
/// `.key`, so nothing that reads the directory mistakes it for the real file.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".popgate-tmp-{}", std::process::id()));
    Ok(parent_dir(path).join(temp_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn write_atomic_sets_exact_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ca.key");
        write_atomic(&key, b"secret", KEY_MODE).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        assert_eq!(mode_of(&key), 0o600);
        write_atomic(&key, b"other", CERT_MODE).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"other");
        assert_eq!(mode_of(&key), 0o644);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn rewrite_keeps_mode_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, b"{}").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        rewrite_atomic(&link, b"{\"a\":1}").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"{\"a\":1}");
        assert_eq!(mode_of(&real), 0o640);
    }

    #[test]
    fn failed_write_leaves_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("x.key");
        let err = write_atomic(&missing, b"x", KEY_MODE).unwrap_err();
        assert!(format!("{err:#}").contains("no-such-dir/x.key"), "{err:#}");
    }

    #[test]
    fn create_private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("a/pki");
        create_private_dir(&pki).unwrap();
        assert_eq!(mode_of(&pki), 0o700);
        create_private_dir(&pki).unwrap();
    }

    #[test]
    fn read_optional_distinguishes_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_optional(&dir.path().join("none")).unwrap().is_none());
        let err = read(&dir.path().join("none")).unwrap_err();
        assert!(format!("{err:#}").starts_with("reading "), "{err:#}");
    }
}
