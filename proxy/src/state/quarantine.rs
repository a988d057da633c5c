//! The quarantine (SPEC §4, §6 `popgate quarantine`): originals held back by the
//! `quarantine` verdict, each as `ID.eml` (the original bytes, 0600) beside `ID.json` (who,
//! when, policy, rule, reason, Message-ID), in `state_dir/quarantine`.
//!
//! Bounded: an entry that would take the store past `quarantine.max_bytes` is refused
//! ([`QuarantineError::Full`]; the relay then answers `-ERR [SYS/TEMP]` and the message
//! stays on the server), and entries older than `max_age_days` are purged before each
//! store. An entry appears only once complete: the original is written under a temporary
//! name, synced and linked (a link never replaces an entry), then the metadata is renamed
//! into place; listing reads metadata files only. Blocking I/O: the daemon calls
//! [`Quarantine::store`] from `spawn_blocking`; the CLI calls the rest directly.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The quarantine directory and its bounds.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
    max_bytes: u64,
    max_age: Duration,
}

/// One entry's metadata: `popgate quarantine list --json` shows an array of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The id the replacement message names.
    pub id: String,
    /// When it was quarantined (RFC 3339, UTC).
    pub received_at: String,
    /// The policy that handled the session.
    pub policy: String,
    /// Its proxy action.
    pub action: String,
    /// The logged-in user (the mailbox the message came from).
    pub user: String,
    /// The rule that decided.
    pub rule: String,
    /// Why, in words.
    pub reason: String,
    /// Size of the original in bytes.
    pub size: u64,
    /// The original's Message-ID, or empty.
    pub message_id: String,
}

/// Why a quarantine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    /// Storing would pass `quarantine.max_bytes`.
    #[error("the quarantine is full ({used} of {max_bytes} bytes used, {needed} more needed)")]
    Full {
        /// Bytes held now.
        used: u64,
        /// Bytes the new entry needs.
        needed: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// No entry has this id.
    #[error("no quarantined message {0}")]
    UnknownId(String),
    /// An id that cannot be one of ours (it would name a path elsewhere).
    #[error("{0:?} is not a quarantine id")]
    BadId(String),
    /// A file system failure.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A metadata file that does not parse.
    #[error("{path}: unreadable metadata")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        #[source]
        source: serde_json::Error,
    },
}

impl Quarantine {
    /// The quarantine of `state` (`state_dir/quarantine` and its bounds).
    pub fn new(state: &popgate_policy::State) -> Quarantine {
        Quarantine {
            dir: state.quarantine_dir(),
            max_bytes: state.quarantine_max_bytes(),
            max_age: state.quarantine_max_age(),
        }
    }

    /// A quarantine in `dir` with explicit bounds (tests).
    pub fn with_bounds(dir: PathBuf, max_bytes: u64, max_age: Duration) -> Quarantine {
        Quarantine {
            dir,
            max_bytes,
            max_age,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `original` under `entry.id` (its `size` is set here), after purging entries
    /// past `max_age`.
    ///
    /// # Errors
    /// [`QuarantineError::Full`], a reused id, or any file system failure: the caller
    /// withholds the message rather than lose it.
    pub fn store(&self, mut entry: Entry, original: &[u8]) -> Result<PathBuf, QuarantineError> {
        check_id(&entry.id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.io("creating", self.dir.clone(), e))?;
        self.purge(self.max_age, SystemTime::now())?;
        let used = crate::state::dir_bytes(&self.dir);
        let needed = original.len() as u64;
        if used.saturating_add(needed) > self.max_bytes {
            return Err(QuarantineError::Full {
                used,
                needed,
                max_bytes: self.max_bytes,
            });
        }
        entry.size = needed;
        let eml = self.eml(&entry.id);
        self.write_new(&entry.id, "eml", &eml, original)?;
        let json = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        let meta = self.meta(&entry.id);
        let temp = self.dir.join(format!(".{}.json.tmp", entry.id));
        write_synced(&temp, &json).map_err(|e| self.io("writing", temp.clone(), e))?;
        fs::rename(&temp, &meta).map_err(|e| self.io("renaming", meta.clone(), e))?;
        sync_dir(&self.dir).map_err(|e| self.io("syncing", self.dir.clone(), e))?;
        Ok(eml)
    }

    /// Every complete entry, oldest first.
    ///
    /// # Errors
    /// The directory cannot be read (a missing directory is an empty quarantine).
    pub fn list(&self) -> Result<Vec<Entry>, QuarantineError> {
        let read = match fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.io("reading", self.dir.clone(), err)),
        };
        let mut entries = Vec::new();
        for item in read.filter_map(Result::ok) {
            let name = item.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if check_id(id).is_ok() {
                entries.push(self.show(id)?);
            }
        }
        entries.sort_by(|a, b| (&a.received_at, &a.id).cmp(&(&b.received_at, &b.id)));
        Ok(entries)
    }

    /// The metadata of entry `id`.
    ///
    /// # Errors
    /// [`QuarantineError::UnknownId`], or an unreadable metadata file.
    pub fn show(&self, id: &str) -> Result<Entry, QuarantineError> {
        check_id(id)?;
        let path = self.meta(id);
        let bytes = fs::read(&path).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => QuarantineError::UnknownId(id.to_owned()),
            _ => self.io("reading", path.clone(), err),
        })?;
        serde_json::from_slice(&bytes).map_err(|source| QuarantineError::Metadata { path, source })
    }

    /// The original bytes of entry `id`, exactly as stored.
    ///
    /// # Errors
    /// [`QuarantineError::UnknownId`] or a read failure.
    pub fn original(&self, id: &str) -> Result<Vec<u8>, QuarantineError> {
        self.show(id)?;
        let path = self.eml(id);
        fs::read(&path).map_err(|e| self.io("reading", path, e))
    }

    /// Removes entry `id`.
    ///
    /// # Errors
    /// [`QuarantineError::UnknownId`] or a removal failure.
    pub fn delete(&self, id: &str) -> Result<(), QuarantineError> {
        self.show(id)?;
        // Metadata first: a half-deleted entry is no longer listed.
        let meta = self.meta(id);
        fs::remove_file(&meta).map_err(|e| self.io("removing", meta, e))?;
        let eml = self.eml(id);
        match fs::remove_file(&eml) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(self.io("removing", eml, err)),
            _ => Ok(()),
        }
    }

    /// Removes every entry stored more than `older_than` before `now`; returns their ids.
    ///
    /// # Errors
    /// The directory cannot be read or an entry cannot be removed.
    pub fn purge(
        &self,
        older_than: Duration,
        now: SystemTime,
    ) -> Result<Vec<String>, QuarantineError> {
        let mut purged = Vec::new();
        let Some(cutoff) = now.checked_sub(older_than) else {
            return Ok(purged);
        };
        for entry in self.list()? {
            let stored = fs::metadata(self.eml(&entry.id))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if stored < cutoff {
                self.delete(&entry.id)?;
                purged.push(entry.id);
            }
        }
        Ok(purged)
    }

    fn eml(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    fn meta(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn io(&self, op: &'static str, path: PathBuf, source: io::Error) -> QuarantineError {
        QuarantineError::Io { op, path, source }
    }

    /// Writes `bytes` to `path`, which must not exist yet.
    fn write_new(
        &self,
        id: &str,
        ext: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(), QuarantineError> {
        let temp = self.dir.join(format!(".{id}.{ext}.tmp"));
        write_synced(&temp, bytes).map_err(|e| {
            let _ = fs::remove_file(&temp);
            self.io("writing", temp.clone(), e)
        })?;
        // A hard link, unlike rename, refuses to replace an existing entry.
        let linked = fs::hard_link(&temp, path);
        let _ = fs::remove_file(&temp);
        linked.map_err(|e| self.io("storing", path.to_owned(), e))
    }
}

/// Ids are ours (`SECONDS_PID_N`): letters, digits, `_`, `-`, `.` not leading.
fn check_id(id: &str) -> Result<(), QuarantineError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(QuarantineError::BadId(id.to_owned()))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.to_owned(),
            received_at: "2026-12-02T01:00:00Z".to_owned(),
            policy: "out".to_owned(),
            action: "Standard".to_owned(),
            user: "alice".to_owned(),
            rule: "file_names: *.exe".to_owned(),
            reason: "attachment evil.exe".to_owned(),
            size: 0,
            message_id: "<m1@example.com>".to_owned(),
        }
    }

    fn store_in(dir: &Path, max_bytes: u64) -> Quarantine {
        Quarantine::with_bounds(
            dir.join("quarantine"),
            max_bytes,
            Duration::from_secs(86_400),
        )
    }

    #[test]
    fn an_entry_keeps_the_exact_bytes_privately_with_its_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let q = store_in(dir.path(), 1 << 20);
        let path = q.store(entry("1_2_3"), b"From: a\r\n\r\nbody\r\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"From: a\r\n\r\nbody\r\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let shown = q.show("1_2_3").unwrap();
        assert_eq!(shown.size, 17);
        assert_eq!(shown.message_id, "<m1@example.com>");
        assert_eq!(q.list().unwrap(), [shown]);
        assert_eq!(q.original("1_2_3").unwrap(), b"From: a\r\n\r\nbody\r\n");
        assert!(
            q.store(entry("1_2_3"), b"again").is_err(),
            "ids are never reused"
        );
    }

    #[test]
    fn a_full_quarantine_refuses_and_keeps_what_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let q = store_in(dir.path(), 1000);
        q.store(entry("a"), &[b'x'; 600]).unwrap();
        let err = q.store(entry("b"), &[b'y'; 600]).unwrap_err();
        assert!(
            matches!(err, QuarantineError::Full { needed: 600, .. }),
            "{err}"
        );
        assert_eq!(q.list().unwrap().len(), 1);
    }

    #[test]
    fn delete_and_purge_remove_entries_and_unknown_ids_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let q = store_in(dir.path(), 1 << 20);
        q.store(entry("a"), b"1").unwrap();
        q.store(entry("b"), b"2").unwrap();
        q.delete("a").unwrap();
        assert!(matches!(q.delete("a"), Err(QuarantineError::UnknownId(_))));
        assert!(matches!(
            q.show("../etc/passwd"),
            Err(QuarantineError::BadId(_))
        ));
        let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
        assert!(q
            .purge(Duration::from_secs(5 * 86_400), later)
            .unwrap()
            .is_empty());
        assert_eq!(q.purge(Duration::from_secs(86_400), later).unwrap(), ["b"]);
        assert!(q.list().unwrap().is_empty());
        assert_eq!(crate::state::dir_bytes(q.dir()), 0);
    }
}
