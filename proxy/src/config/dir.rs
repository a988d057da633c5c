//! Reading the configuration directory (SPEC §4) into the policy crate's `Sources`.
//!
//! Only I/O lives here; parsing and validation are `popgate_policy::Config::from_sources`.
// Runs at start-up and on the blocking pool (`runtime::reload`), never on a runtime thread.
#![allow(clippy::disallowed_methods)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use popgate_policy::{Config, ConfigError, Source, Sources};

/// The sub-directories holding one JSON document per file.
const KINDS: [&str; 3] = ["policies", "actions", "tls-profiles"];

/// Why a configuration directory could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The configuration directory itself does not exist (or is not a directory): a
    /// mistyped `--config` must not pass for an empty configuration.
    NoDirectory {
        /// The directory as given.
        dir: PathBuf,
        /// Why it is not usable.
        error: io::Error,
    },
    /// A file or directory could not be read.
    Io {
        /// Relative to the configuration directory.
        file: String,
        /// The cause.
        error: io::Error,
    },
    /// The files were read but are not a valid configuration.
    Invalid(Vec<ConfigError>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoDirectory { dir, error } if error.kind() == io::ErrorKind::NotFound => {
                write!(
                    f,
                    "{}: configuration directory does not exist",
                    dir.display()
                )
            }
            LoadError::NoDirectory { dir, error } => {
                write!(
                    f,
                    "{}: not a usable configuration directory: {error}",
                    dir.display()
                )
            }
            LoadError::Io { file, error } => write!(f, "{file}: {error}"),
            LoadError::Invalid(errors) => {
                for (i, error) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// Every error as its own line, for `popgate check` and the reload log.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_owned).collect()
    }
}

/// Reads and checks the configuration in `dir`.
///
/// # Errors
/// Unreadable files, or every validation error found.
pub fn load(dir: &Path) -> Result<Config, LoadError> {
    let sources = read_sources(dir)?;
    Config::from_sources(&sources).map_err(LoadError::Invalid)
}

/// Reads the files of `dir` without checking them.
///
/// # Errors
/// A file or directory that exists but cannot be read.
pub fn read_sources(dir: &Path) -> Result<Sources, LoadError> {
    let no_directory = |error| LoadError::NoDirectory {
        dir: dir.to_owned(),
        error,
    };
    let meta = fs::metadata(dir).map_err(no_directory)?;
    if !meta.is_dir() {
        return Err(no_directory(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    let global = match fs::read(dir.join("popgate.json")) {
        Ok(bytes) => Some(Source::new("popgate.json", bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(LoadError::Io {
                file: "popgate.json".into(),
                error,
            })
        }
    };
    let [policies, actions, tls_profiles] = KINDS.map(|kind| read_kind(dir, kind));
    Ok(Sources {
        global,
        policies: policies?,
        actions: actions?,
        tls_profiles: tls_profiles?,
    })
}

/// The JSON files of one sub-directory (`policies`, `actions`, `tls-profiles`), sorted by
/// name so errors come in a stable order, each with its name relative to `dir`. A missing
/// sub-directory has no files. Only names ending in `.json` and not starting with `.` count:
/// editors keep lock and backup files beside the one being edited (`.#out.json`,
/// `.out.json.swp`, `out.json~`), and a reload must not load them while someone edits.
///
/// # Errors
/// The sub-directory exists but cannot be read.
pub fn json_files(dir: &Path, kind: &str) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(dir.join(kind)) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| is_config_file(path))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (format!("{kind}/{}", name.unwrap_or_default()), path)
        })
        .collect())
}

/// A configuration file: `*.json`, not hidden (see [`json_files`]).
fn is_config_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.len() > ".json".len() && name.ends_with(".json")
}

fn read_kind(dir: &Path, kind: &str) -> Result<Vec<Source>, LoadError> {
    let io_err = |file: String| move |error| LoadError::Io { file, error };
    json_files(dir, kind)
        .map_err(io_err(kind.to_owned()))?
        .into_iter()
        .map(|(file, path)| {
            fs::read(&path)
                .map(|bytes| Source::new(file.clone(), bytes))
                .map_err(io_err(file))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_files_are_not_configuration() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("policies")).unwrap();
        for name in [
            "out.json",
            ".#out.json",
            ".out.json.swp",
            "out.json~",
            "notes.txt",
            ".json",
        ] {
            fs::write(dir.path().join("policies").join(name), "{").unwrap();
        }
        let files = json_files(dir.path(), "policies").unwrap();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["policies/out.json"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = read_sources(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: configuration directory does not exist",
                missing.display()
            )
        );
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = read_sources(&file).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "{}: not a usable configuration directory: ",
                file.display()
            )),
            "{err}"
        );
    }
}
