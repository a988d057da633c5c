//! Editing a running popgate's configuration directory the way an administrator (or
//! `popgate policy disable`) does it: write a temporary file next to the target, then
//! rename it over the target, so popgate never reads a half-written file.
//!
//! Also the conditions reload tests wait on: a listener refusing connections, and log lines
//! counted by message.

use std::fs;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::ports::wait_until;

/// Replaces `path` atomically with `bytes` (temporary file in the same directory, then
/// `rename`).
///
/// # Errors
/// I/O failures.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .context("a file path has a name")?
        .to_string_lossy();
    // Not `*.json`: popgate ignores the temporary file itself.
    let temp = dir.join(format!(".{name}.tmp"));
    fs::write(&temp, bytes).with_context(|| format!("writing {}", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

/// Reads the JSON file `file` (relative to `config_dir`), sets `pointer` (which must exist
/// up to its parent object) to `value`, and replaces the file atomically.
///
/// # Errors
/// I/O failures, invalid JSON, or a pointer whose parent is not an object.
pub fn edit_json(config_dir: &Path, file: &str, pointer: &str, value: Value) -> Result<()> {
    let path = config_dir.join(file);
    let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut json: Value = serde_json::from_slice(&text)?;
    let (parent, key) = pointer
        .rsplit_once('/')
        .context("a JSON pointer starts with /")?;
    let Some(Value::Object(map)) = json.pointer_mut(parent) else {
        bail!("{file}: {parent} is not an object");
    };
    map.insert(key.to_owned(), value);
    replace_file(&path, &serde_json::to_vec_pretty(&json)?)
}

/// Writes `value` as the JSON file `file` (relative to `config_dir`), atomically.
///
/// # Errors
/// I/O failures.
pub fn write_json(config_dir: &Path, file: &str, value: &Value) -> Result<()> {
    replace_file(&config_dir.join(file), &serde_json::to_vec_pretty(value)?)
}

/// Waits until a TCP connect to `addr` is refused (nothing listens there any more).
///
/// # Errors
/// When something still accepts after `timeout`.
pub fn wait_for_refusal(addr: SocketAddr, timeout: Duration) -> Result<()> {
    wait_until(&format!("{addr} to refuse connections"), timeout, || {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => Ok(false),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(true),
            Err(_) => Ok(false),
        }
    })
}

/// How many lines of `log` contain every one of `needles`.
pub fn count_lines(log: &str, needles: &[&str]) -> usize {
    log.lines()
        .filter(|line| needles.iter().all(|needle| line.contains(needle)))
        .count()
}
