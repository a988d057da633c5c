//! Filling the action's `deny_message` template.
//!
//! Placeholders: `{filename}`, `{policy}`, `{action}`, `{reason}`; any other text, braces
//! included, is copied as written. Values are cleaned before they are inserted: file names
//! and reasons can come from the sender, so control characters become `?` and each value is
//! cut to [`MAX_VALUE_CHARS`] characters. No I/O here.

/// The values for one filled template.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    /// `{filename}`.
    pub filename: &'a str,
    /// `{policy}`.
    pub policy: &'a str,
    /// `{action}`.
    pub action: &'a str,
    /// `{reason}`.
    pub reason: &'a str,
}

/// Longest value inserted for one placeholder, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 200;

/// `template` with every placeholder replaced by its cleaned value.
pub(crate) fn fill(template: &str, values: &Values<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let value = [
            ("{filename}", values.filename),
            ("{policy}", values.policy),
            ("{action}", values.action),
            ("{reason}", values.reason),
        ]
        .into_iter()
        .find(|(key, _)| rest.starts_with(key));
        match value {
            Some((key, value)) => {
                push_clean(value, &mut out);
                rest = &rest[key.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn push_clean(value: &str, out: &mut String) {
    for ch in value.chars().take(MAX_VALUE_CHARS) {
        out.push(if ch.is_control() { '?' } else { ch });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values<'static> = Values {
        filename: "evil.exe",
        policy: "POP3-proxy-out",
        action: "POP3-Client.Standard",
        reason: "file name evil.exe matches *.exe",
    };

    #[test]
    fn spec_template_is_filled() {
        let text = fill(
            "The attachment {filename} was removed by {policy}: {reason}.",
            &VALUES,
        );
        assert_eq!(
            text,
            "The attachment evil.exe was removed by POP3-proxy-out: file name evil.exe matches *.exe."
        );
        assert_eq!(fill("{action}", &VALUES), "POP3-Client.Standard");
    }

    #[test]
    fn unknown_braces_are_kept() {
        assert_eq!(fill("{x} {filename", &VALUES), "{x} {filename");
    }

    #[test]
    fn hostile_values_are_cleaned() {
        let long = "a".repeat(1000);
        let values = Values {
            filename: "x\r\n--boundary\u{0}.exe",
            reason: &long,
            ..VALUES
        };
        assert_eq!(fill("{filename}", &values), "x??--boundary?.exe");
        assert_eq!(fill("{reason}", &values).len(), MAX_VALUE_CHARS);
    }
}
