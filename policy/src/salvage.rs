//! Every error of a file that does not fit its schema, not only serde's first.
//!
//! serde stops at the first mismatch (an unknown field, an unknown variant, a wrong type),
//! so an administrator fixing a file one `popgate check` at a time would meet its errors
//! one by one. Here, after the first one, the file is read as a JSON value, the offending
//! field is removed, and the value is deserialized again, collecting each next error the
//! same way until the rest fits. A file that is not JSON at all stops at its syntax error.
//!
//! Removing a field can only hide later errors, never invent one, with two exceptions
//! handled here: a required field removed by us is not reported as missing (we stop there
//! instead), and the caller's semantic check of what remains ([`Salvaged::pruned`]) must
//! drop errors about removed fields and errors that depend on other fields' values, since
//! a removed field reads as its default ([`ConfigErrorKind::depends_on_other_fields`]).
//! No I/O here.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ConfigError, ConfigErrorKind};

/// At most this many schema errors per file: a file of garbage keys stays readable.
const MAX_ERRORS_PER_FILE: usize = 64;

/// Where serde stopped in a file, and the error it gave.
#[derive(Debug)]
pub(crate) struct FirstError {
    /// The path as steps; `None` when part of it is unknown.
    pub path: Option<Vec<Step>>,
    /// The translated error.
    pub error: ConfigError,
}

/// What is left of a file that did not fit its schema.
#[derive(Debug)]
pub(crate) struct Salvaged<R> {
    /// Every schema error found, serde's first one first.
    pub errors: Vec<ConfigError>,
    /// The file without its offending fields, when that fits the schema: the caller may
    /// check it for further (semantic) errors.
    pub pruned: Option<R>,
    /// The JSON paths removed (`.tls_support`, `.rules[1].frobnicate`).
    pub removed: Vec<String>,
}

/// Whether a semantic error found in [`Salvaged::pruned`] is worth reporting: not about
/// one of the `removed` fields, and not depending on another field's value.
pub(crate) fn keeps(removed: &[String], error: &ConfigError) -> bool {
    !error.kind.depends_on_other_fields()
        && !removed.iter().any(|removed| {
            error.path == *removed
                || error.path.starts_with(&format!("{removed}."))
                || error.path.starts_with(&format!("{removed}["))
        })
}

/// Parses `bytes` as `R`, or returns every schema error of the file.
pub(crate) fn parse_all<R: DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<R, Salvaged<R>> {
    let first = match crate::check::parse_json_with_path::<R>(file, bytes) {
        Ok(raw) => return Ok(raw),
        Err(first) => first,
    };
    let FirstError {
        path: mut segments,
        error: first,
    } = *first;
    let stop = |errors| Salvaged {
        errors,
        pruned: None,
        removed: Vec::new(),
    };
    if matches!(
        first.kind,
        ConfigErrorKind::Syntax { .. } | ConfigErrorKind::MissingField
    ) {
        return Err(stop(vec![first]));
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return Err(stop(vec![first]));
    };
    let mut last_kind = first.kind.clone();
    let mut salvaged = stop(vec![first]);
    while salvaged.errors.len() < MAX_ERRORS_PER_FILE {
        // A duplicate field is gone already: the value keeps one of them.
        if last_kind != ConfigErrorKind::DuplicateField {
            let Some(target) = removal_target(&segments) else {
                break;
            };
            if !remove(&mut value, target) {
                break;
            }
            salvaged.removed.push(render(target));
        }
        match serde_path_to_error::deserialize::<_, R>(&value) {
            Ok(raw) => {
                salvaged.pruned = Some(raw);
                break;
            }
            Err(err) => {
                segments = owned_segments(err.path());
                let error = ConfigError::from_serde(file, err);
                let ours = error.kind == ConfigErrorKind::MissingField
                    && salvaged.removed.contains(&error.path);
                if ours {
                    break;
                }
                last_kind = error.kind.clone();
                let stop_here = last_kind == ConfigErrorKind::MissingField;
                salvaged.errors.push(error);
                if stop_here {
                    break;
                }
            }
        }
    }
    Err(salvaged)
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A serde path as steps; `None` when part of it is unknown.
pub(crate) fn owned_segments(path: &serde_path_to_error::Path) -> Option<Vec<Step>> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|segment| match segment {
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// What to remove for an error at `segments`: the path up to its last object member.
/// Array elements are never removed (later elements would shift and their errors would
/// name the wrong index): an error inside `from[2]` removes `from`.
fn removal_target(segments: &Option<Vec<Step>>) -> Option<&[Step]> {
    let segments = segments.as_deref()?;
    let last_key = segments
        .iter()
        .rposition(|step| matches!(step, Step::Key(_)))?;
    Some(&segments[..=last_key])
}

/// Removes the member at `path` (ending in a key); false when it is not there.
fn remove(value: &mut Value, path: &[Step]) -> bool {
    let Some((Step::Key(key), parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for step in parents {
        let next = match step {
            Step::Key(key) => node.get_mut(key.as_str()),
            Step::Index(index) => node.get_mut(*index),
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    node.as_object_mut()
        .is_some_and(|object| object.remove(key).is_some())
}

/// `.a.b[2].c`, as [`ConfigError`] paths are written.
fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => crate::error::push_field(&mut out, key),
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    if !out.starts_with('.') {
        out.insert(0, '.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawPolicy;

    fn errors(json: &str) -> Vec<String> {
        match parse_all::<RawPolicy>("policies/p.json", json.as_bytes()) {
            Ok(_) => Vec::new(),
            Err(salvaged) => salvaged.errors.iter().map(ToString::to_string).collect(),
        }
    }

    const BASE: &str =
        r#""name": "P", "order": 1, "from": ["any"], "to": ["any"], "proxy_action": "A""#;

    #[test]
    fn every_schema_error_of_a_file_is_reported() {
        let json = format!(
            r#"{{{BASE}, "frobnicate": 1, "tls_support": "yes", "ports": {{"pop3": "x", "extra": 2}}}}"#
        );
        assert_eq!(
            errors(&json),
            [
                "policies/p.json: .frobnicate: unknown field",
                r#"policies/p.json: .ports.pop3: invalid type: string "x", expected u16"#,
                "policies/p.json: .ports.extra: unknown field",
                r#"policies/p.json: .tls_support: unknown variant "yes", expected one of disabled, enabled, required"#,
            ]
        );
    }

    #[test]
    fn a_required_field_we_removed_is_not_reported_missing() {
        let json = r#"{"name": "P", "order": "ten", "from": ["any"], "to": ["any"], "proxy_action": "A", "x": 1}"#;
        assert_eq!(
            errors(json),
            [
                r#"policies/p.json: .order: invalid type: string "ten", expected u32"#,
                "policies/p.json: .x: unknown field",
            ]
        );
    }

    #[test]
    fn syntax_errors_stop_at_the_first() {
        let found = errors(r#"{"name": "P" "frobnicate": 1, "x": 2}"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("invalid JSON"), "{found:?}");
    }

    #[test]
    fn array_elements_are_not_removed_one_by_one() {
        let json = format!(r#"{{{BASE}, "frobnicate": 1}}"#)
            .replace(r#"["any"], "to""#, r#"["any", 7], "to""#);
        let found = errors(&json);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0],
            "policies/p.json: .from[1]: invalid type: integer `7`, expected a string"
        );
        // `from` was removed whole; the unknown field after it is still found, and the
        // removed required `from` is not reported missing.
        assert_eq!(found[1], "policies/p.json: .frobnicate: unknown field");
    }
}
