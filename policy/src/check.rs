//! `Checker`: the error sink and the small value checks shared by every file type.
//!
//! Checking never stops at the first problem: each check records a [`ConfigError`] for the
//! current file and returns a harmless stand-in, so `popgate check` reports everything in
//! one run. Whether the stand-in is ever used does not matter: any error rejects the whole
//! configuration.

use serde::de::DeserializeOwned;

use crate::address::AddressMatcher;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::salvage::FirstError;

/// Records errors for one file.
pub(crate) struct Checker<'a> {
    file: &'a str,
    errors: &'a mut Vec<ConfigError>,
}

/// Which side of a connection an address list describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Clients: domains are an error, since clients have no names.
    Client,
    /// Servers: domains match SNI and certificate names.
    Server,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, errors: &'a mut Vec<ConfigError>) -> Self {
        Self { file, errors }
    }

    /// The file being checked.
    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    /// Records an error at `path`.
    pub(crate) fn error(&mut self, path: impl Into<String>, kind: ConfigErrorKind) {
        self.errors.push(ConfigError::new(self.file, path, kind));
    }

    /// Names (of policies, actions, profiles) are shown and typed on the command line.
    pub(crate) fn name(&mut self, path: &str, name: &str) {
        const MAX_NAME: usize = 128;
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_NAME
            && name.trim() == name
            && !name.chars().any(char::is_control);
        if !ok {
            self.error(path, ConfigErrorKind::BadName);
        }
    }

    /// Returns `value` if it lies in `min..=max`, else records the error and returns `min`.
    pub(crate) fn range<T>(&mut self, path: &str, value: T, min: T, max: T) -> T
    where
        T: Copy + PartialOrd + Into<u64>,
    {
        if value < min || value > max {
            self.error(
                path,
                ConfigErrorKind::OutOfRange {
                    value: value.into(),
                    min: min.into(),
                    max: max.into(),
                },
            );
            return min;
        }
        value
    }

    /// Parses an address list, recording an error per bad entry and for an empty list
    /// when `nonempty` is set.
    pub(crate) fn matchers(
        &mut self,
        path: &str,
        entries: &[String],
        side: Side,
        nonempty: bool,
    ) -> Vec<AddressMatcher> {
        if nonempty && entries.is_empty() {
            self.error(path, ConfigErrorKind::EmptyList);
        }
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match AddressMatcher::parse(entry) {
                Ok(m) if side == Side::Client && m.is_domain() => {
                    self.error(at, ConfigErrorKind::DomainForClient);
                }
                Ok(m) => out.push(m),
                Err(_) => self.error(at, ConfigErrorKind::BadAddress),
            }
        }
        out
    }
}

/// Deserializes one file, with the JSON path of the first problem.
///
/// # Errors
/// The translated serde error; also rejects bytes after the top-level value.
#[cfg(test)]
pub(crate) fn parse_json<T: DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, ConfigError> {
    parse_json_with_path(file, bytes).map_err(|first| first.error)
}

/// Deserializes one file like `parse_json`, also returning where serde stopped, for
/// `salvage` (which finds the file's further errors).
pub(crate) fn parse_json_with_path<T: DeserializeOwned>(
    file: &str,
    bytes: &[u8],
) -> Result<T, Box<FirstError>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = crate::salvage::owned_segments(e.path());
        Box::new(FirstError {
            path,
            error: ConfigError::from_serde(file, e),
        })
    })?;
    de.end().map_err(|e| {
        Box::new(FirstError {
            path: None,
            error: ConfigError::trailing(file, &e),
        })
    })?;
    Ok(value)
}

/// The `name` of a file that failed to parse, if its JSON is still readable: references
/// to it are then not reported a second time as unknown.
pub(crate) fn salvage_name(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct NameOnly {
        name: String,
    }
    serde_json::from_slice::<NameOnly>(bytes)
        .ok()
        .map(|n| n.name)
}
