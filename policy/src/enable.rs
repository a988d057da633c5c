//! `set_enabled`: rewrite a policy file's top-level `"enabled"` value, touching nothing else.
//!
//! `popgate policy enable|disable` edits files that administrators wrote by hand, so field
//! order, spacing and every other byte must survive; re-serializing through serde would
//! lose them. This is a minimal scanner over already-validated JSON that finds the
//! top-level members' value spans. Writing the file (atomically) is `proxy`'s job.

use std::ops::Range;

use thiserror::Error;

/// Why a policy file's `enabled` flag could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnableError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The text is JSON, but its top-level value is not an object.
    #[error("the top-level JSON value is not an object")]
    NotObject,
}

/// Returns `json_text` with the top-level `"enabled"` value set to `enabled`, every other
/// byte unchanged. When the key is absent it is inserted as the first member, indented like
/// the member that follows it. Nested objects and string contents are never touched.
///
/// # Errors
/// [`EnableError`] when the text is not a JSON object.
pub fn set_enabled(json_text: &str, enabled: bool) -> Result<String, EnableError> {
    let value: serde_json::Value =
        serde_json::from_str(json_text).map_err(|e| EnableError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(EnableError::NotObject);
    }
    // The text is a valid JSON object from here on, so the scanner cannot fail; `None`
    // would only mean a bug in it, reported as NotJson rather than a panic.
    let layout = Scanner::new(json_text)
        .object_layout()
        .ok_or_else(|| EnableError::NotJson("unexpected structure".to_owned()))?;
    let literal = if enabled { "true" } else { "false" };
    if layout.enabled_values.is_empty() {
        return Ok(insert_first(json_text, &layout, literal));
    }
    let mut out = json_text.to_owned();
    for span in layout.enabled_values.iter().rev() {
        out.replace_range(span.clone(), literal);
    }
    Ok(out)
}

/// Where things are in the top-level object.
struct Layout {
    /// Just after the opening `{`.
    after_open: usize,
    /// Start of the first key, or of the closing `}` when the object is empty.
    first_member: usize,
    /// Whether the object has members.
    has_members: bool,
    /// What the file puts between a key and its value (`": "` by default).
    colon: String,
    /// Value spans of every top-level `"enabled"` key.
    enabled_values: Vec<Range<usize>>,
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn object_layout(&mut self) -> Option<Layout> {
        self.skip_ws();
        self.eat(b'{')?;
        let after_open = self.pos;
        self.skip_ws();
        let first_member = self.pos;
        let mut layout = Layout {
            after_open,
            first_member,
            has_members: self.peek()? != b'}',
            colon: ": ".to_owned(),
            enabled_values: Vec::new(),
        };
        if !layout.has_members {
            return Some(layout);
        }
        let mut first = true;
        loop {
            self.skip_ws();
            let key_start = self.pos;
            self.skip_string()?;
            let key: String = serde_json::from_str(self.text.get(key_start..self.pos)?).ok()?;
            let key_end = self.pos;
            self.skip_ws();
            self.eat(b':')?;
            self.skip_ws();
            let value_start = self.pos;
            if first {
                layout.colon = self.text.get(key_end..value_start)?.to_owned();
                first = false;
            }
            self.skip_value()?;
            if key == "enabled" {
                layout.enabled_values.push(value_start..self.pos);
            }
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => return Some(layout),
                _ => return None,
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.pos += 1,
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth = depth.checked_sub(1)?,
                        _ => {}
                    }
                    self.pos += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
            _ => {
                // A number or literal runs until the next delimiter.
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                ) {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }
}

/// Inserts `"enabled": LITERAL` as the first member.
fn insert_first(text: &str, layout: &Layout, literal: &str) -> String {
    let (head, tail) = text.split_at(layout.after_open);
    let (gap, rest) = tail.split_at(layout.first_member - layout.after_open);
    let member = format!("\"enabled\"{}{literal}", layout.colon);
    if layout.has_members {
        // `{<gap>"enabled": true,<gap>"name"...`: the new member copies the next one's
        // indentation; a compact `{"name"` gets a single space.
        let separator = if gap.is_empty() { " " } else { gap };
        format!("{head}{gap}{member},{separator}{rest}")
    } else if let Some(newline) = gap.rfind('\n') {
        // `{\n}`: indent two spaces more than the closing brace.
        let indent = &gap[newline + 1..];
        format!("{head}\n{indent}  {member}{gap}{rest}")
    } else {
        format!("{head}{gap}{member}{gap}{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str =
        "{\n  \"name\": \"POP3-proxy-out\",\n  \"enabled\": true,\n  \"order\": 10\n}\n";

    #[test]
    fn replaces_only_the_value() {
        let out = set_enabled(PRETTY, false).unwrap();
        assert_eq!(
            out,
            PRETTY.replace("\"enabled\": true", "\"enabled\": false")
        );
        assert_eq!(set_enabled(&out, true).unwrap(), PRETTY);
        assert_eq!(set_enabled(PRETTY, true).unwrap(), PRETTY);
    }

    #[test]
    fn ignores_nested_and_quoted_enabled() {
        let text = r#"{ "name": "x \"enabled\": true, \\", "nested": {"enabled": true, "a": [{"enabled": true}]},
  "enabled"  :  true ,"order":1}"#;
        let out = set_enabled(text, false).unwrap();
        let want = text.replace("\"enabled\"  :  true", "\"enabled\"  :  false");
        assert_eq!(out, want);
    }

    #[test]
    fn replaces_non_boolean_values_and_duplicates() {
        let text = r#"{"enabled": "yes", "x": 1, "enabled": null}"#;
        assert_eq!(
            set_enabled(text, true).unwrap(),
            r#"{"enabled": true, "x": 1, "enabled": true}"#
        );
    }

    #[test]
    fn inserts_when_absent() {
        let pretty = "{\n    \"name\": \"p\",\n    \"order\": 1\n}\n";
        assert_eq!(
            set_enabled(pretty, false).unwrap(),
            "{\n    \"enabled\": false,\n    \"name\": \"p\",\n    \"order\": 1\n}\n"
        );
        let tabs = "{\n\t\"name\": \"p\"\n}";
        assert_eq!(
            set_enabled(tabs, true).unwrap(),
            "{\n\t\"enabled\": true,\n\t\"name\": \"p\"\n}"
        );
        assert_eq!(
            set_enabled(r#"{"name":"p"}"#, true).unwrap(),
            r#"{"enabled":true, "name":"p"}"#
        );
        assert_eq!(
            set_enabled(r#"{ "name": "p" }"#, true).unwrap(),
            r#"{ "enabled": true, "name": "p" }"#
        );
        assert_eq!(set_enabled("{}", false).unwrap(), r#"{"enabled": false}"#);
        assert_eq!(
            set_enabled("{\n}\n", true).unwrap(),
            "{\n  \"enabled\": true\n}\n"
        );
        assert_eq!(
            set_enabled("  { }", true).unwrap(),
            r#"  { "enabled": true }"#
        );
    }

    #[test]
    fn refuses_non_objects() {
        assert!(matches!(
            set_enabled("{", true),
            Err(EnableError::NotJson(_))
        ));
        assert!(matches!(
            set_enabled("{} x", true),
            Err(EnableError::NotJson(_))
        ));
        assert_eq!(set_enabled("[1]", true), Err(EnableError::NotObject));
        assert_eq!(set_enabled("true", true), Err(EnableError::NotObject));
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "[a-z\"\\\\{}\\[\\], :]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::vec(("(enabled|name|[a-z]{1,4})", inner), 0..4)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn only_the_top_level_flag_changes(
            members in proptest::collection::vec(("(enabled|name|[a-z]{1,4})", json_value()), 0..5),
            pretty: bool,
            enabled: bool,
        ) {
            let object = serde_json::Value::Object(members.into_iter().collect());
            let text = if pretty {
                serde_json::to_string_pretty(&object).unwrap()
            } else {
                serde_json::to_string(&object).unwrap()
            };
            let out = set_enabled(&text, enabled).unwrap();
            let mut want = object.clone();
            if let Some(map) = want.as_object_mut() {
                map.insert("enabled".to_owned(), serde_json::Value::Bool(enabled));
            }
            let got: serde_json::Value = serde_json::from_str(&out).unwrap();
            // Compare as maps: order of keys is checked by the byte-level tests above.
            let got: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_value(got).unwrap();
            let want: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_value(want).unwrap();
            proptest::prop_assert_eq!(got, want);
            if object.get("enabled").is_some() && !pretty {
                proptest::prop_assert_eq!(out.len() as i64 - text.len() as i64,
                    replaced_len_delta(&object, enabled));
            }
        }
    }

    fn replaced_len_delta(object: &serde_json::Value, enabled: bool) -> i64 {
        let old = serde_json::to_string(&object["enabled"]).unwrap();
        let new = if enabled { "true" } else { "false" };
        new.len() as i64 - old.len() as i64
    }
}
