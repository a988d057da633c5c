//! The spool (SPEC §4): message bodies collected for inspection past the in-memory
//! threshold are written to unlinked files in `state_dir/spool`, under one quota for the
//! whole process (`spool.max_bytes`). A body that would pass the quota is withheld with
//! `-ERR [SYS/TEMP]` and stays on the server: nothing is lost, and a full disk or a flood of
//! large downloads cannot take the gateway down.
//!
//! Every file operation here blocks: callers run [`SpoolFile::append`] and
//! [`SpoolFile::read_all`] on the blocking pool, never on the runtime threads.
// Runs only on the blocking pool (`MessageBuffer::spill`, `read_back`); see the module doc.
#![allow(clippy::disallowed_methods)]

use std::fs::{DirBuilder, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a spill failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The quota would be passed.
    #[error("spool full: {used} of {max} bytes in use, {wanted} more wanted")]
    Full {
        /// Bytes in use.
        used: u64,
        /// `spool.max_bytes`.
        max: u64,
        /// Bytes the write needed.
        wanted: u64,
    },
    /// The file system refused.
    #[error("spool I/O in {dir}: {source}")]
    Io {
        /// The spool directory.
        dir: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// The process's spool: its directory and its quota, shared by every session.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: AtomicU64,
    used: AtomicU64,
}

impl Spool {
    /// A spool in `dir` (created on first use, mode 0700) holding at most `max_bytes`.
    pub fn new(dir: PathBuf, max_bytes: u64) -> Arc<Spool> {
        Arc::new(Spool {
            dir,
            max_bytes: AtomicU64::new(max_bytes),
            used: AtomicU64::new(0),
        })
    }

    /// A reload changed `spool.max_bytes`; files already written stay.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        self.max_bytes.store(max_bytes, Ordering::Relaxed);
    }

    /// Bytes held by open spool files.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn reserve(&self, wanted: u64) -> Result<(), SpoolError> {
        let max = self.max_bytes.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(wanted).filter(|total| *total <= max)
            })
            .map(|_| ())
            .map_err(|used| SpoolError::Full { used, max, wanted })
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn io(&self, source: io::Error) -> SpoolError {
        SpoolError::Io {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// One body's spilled bytes: an unlinked file whose size counts against the quota until it
/// is dropped.
#[derive(Debug)]
pub struct SpoolFile {
    spool: Arc<Spool>,
    file: File,
    len: u64,
}

impl SpoolFile {
    /// Creates an unlinked file in the spool (O_TMPFILE where available). Blocking.
    ///
    /// # Errors
    /// The directory cannot be created or the file opened.
    pub fn create(spool: &Arc<Spool>) -> Result<SpoolFile, SpoolError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spool.dir)
            .map_err(|e| spool.io(e))?;
        let file = tempfile::tempfile_in(&spool.dir).map_err(|e| spool.io(e))?;
        Ok(SpoolFile {
            spool: spool.clone(),
            file,
            len: 0,
        })
    }

    /// Appends `bytes` once the quota allows them. Blocking.
    ///
    /// # Errors
    /// The quota is reached, or the write failed (the bytes are then not counted).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        let wanted = bytes.len() as u64;
        self.spool.reserve(wanted)?;
        if let Err(err) = self.file.write_all(bytes) {
            self.spool.release(wanted);
            return Err(self.spool.io(err));
        }
        self.len += wanted;
        Ok(())
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the whole file back, after `prefix` (bytes kept in memory before the spill
    /// are the caller's business). Blocking; call it only where a whole body in memory is
    /// bounded (under the inspection semaphore).
    ///
    /// # Errors
    /// Seeking or reading failed.
    pub fn read_all(&mut self, out: &mut Vec<u8>) -> Result<(), SpoolError> {
        out.reserve(self.len as usize);
        let spool = self.spool.clone();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&mut self.file).take(self.len).read_to_end(out))
            .map(|_| ())
            .map_err(|e| spool.io(e))
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        self.spool.release(self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_reserved_per_write_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), 10);
        let mut file = SpoolFile::create(&spool).unwrap();
        file.append(b"123456").unwrap();
        assert_eq!(spool.used(), 6);
        let full = file.append(b"12345").unwrap_err();
        assert!(
            matches!(
                full,
                SpoolError::Full {
                    used: 6,
                    max: 10,
                    wanted: 5
                }
            ),
            "{full:?}"
        );
        let mut back = b"prefix:".to_vec();
        file.read_all(&mut back).unwrap();
        assert_eq!(back, b"prefix:123456");
        drop(file);
        assert_eq!(spool.used(), 0, "a dropped file gives its bytes back");
        let mode = std::fs::metadata(dir.path().join("spool")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::read_dir(dir.path().join("spool")).unwrap().count(),
            0,
            "spool files have no name"
        );
    }
}
