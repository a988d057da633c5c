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
/// sub-directory has no files.
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
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
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
