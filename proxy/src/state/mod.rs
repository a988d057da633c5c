//! What popgate writes under `state_dir` (SPEC §4): the quarantine (`quarantine.rs`) and
//! the spool, both bounded. The configuration directory is only read.
//!
//! Blocking file system code: the daemon calls it through `spawn_blocking`.

pub mod purge;
pub mod quarantine;

use std::path::Path;
use std::time::SystemTime;

/// Total size of the regular files directly in `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|meta| meta.len())
        .sum()
}

/// `2026-12-02T01:30:00Z`: RFC 3339 in UTC, whole seconds.
pub fn rfc3339(at: SystemTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        assert_eq!(rfc3339(at), "2026-11-30T00:53:20Z");
    }

    #[test]
    fn sizes_count_files_and_a_missing_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"12345").unwrap();
        std::fs::write(dir.path().join("b"), b"678").unwrap();
        assert_eq!(dir_bytes(dir.path()), 8);
        assert_eq!(dir_bytes(&dir.path().join("missing")), 0);
    }
}
