//! `DenyMessage`: the checked `deny_message` template and its rendering.
//!
//! Placeholders are checked when the configuration loads, so a typo such as `{polcy}` is a
//! configuration error instead of text that reaches users. Rendering is pure string work;
//! where the text goes (a text/plain part, a replacement message) is `inspect`'s business.

use std::fmt;

/// A `deny_message` with only known placeholders: `{filename}`, `{policy}`, `{action}`,
/// `{reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyMessage {
    text: String,
}

/// Values substituted into a [`DenyMessage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DenyContext<'a> {
    /// The attachment's file name (empty when the verdict is not about one attachment).
    pub filename: &'a str,
    /// The policy's name.
    pub policy: &'a str,
    /// The proxy action's name.
    pub action: &'a str,
    /// Why: the rule or virus name.
    pub reason: &'a str,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// `{name}` with an unknown name.
    Unknown(String),
    /// `{` without `}`.
    Unclosed,
    /// A control character other than newline and tab.
    Control,
}

const PLACEHOLDERS: [&str; 4] = ["filename", "policy", "action", "reason"];

impl Default for DenyMessage {
    /// The SPEC default template ([`crate::defaults::DENY_MESSAGE`]).
    fn default() -> Self {
        Self {
            text: crate::defaults::DENY_MESSAGE.to_owned(),
        }
    }
}

impl DenyMessage {
    /// Checks a template.
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(TemplateError::Control);
        }
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(TemplateError::Unknown(name.to_owned()));
            }
            rest = &after[close + 1..];
        }
        Ok(Self {
            text: text.to_owned(),
        })
    }

    /// The stand-in for a refused template (the configuration is rejected anyway).
    pub(crate) fn empty() -> Self {
        Self {
            text: String::new(),
        }
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text with every placeholder replaced. Values are inserted verbatim; they are
    /// not re-scanned, so a file name containing `{policy}` stays as it is.
    pub fn render(&self, ctx: &DenyContext<'_>) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            // parse() proved every `{` has a `}` and a known name.
            let close = after.find('}').unwrap_or(after.len());
            out.push_str(match &after[..close] {
                "filename" => ctx.filename,
                "policy" => ctx.policy,
                "action" => ctx.action,
                _ => ctx.reason,
            });
            rest = after.get(close + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }
}

impl fmt::Display for DenyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let m = DenyMessage::parse("{filename} by {policy}/{action}: {reason}.").unwrap();
        let ctx = DenyContext {
            filename: "a{policy}.exe",
            policy: "P",
            action: "A",
            reason: "blocked type",
        };
        assert_eq!(m.render(&ctx), "a{policy}.exe by P/A: blocked type.");
    }

    #[test]
    fn refuses_unknown_unclosed_and_control() {
        assert_eq!(
            DenyMessage::parse("{polcy}"),
            Err(TemplateError::Unknown("polcy".into()))
        );
        assert_eq!(
            DenyMessage::parse("x {policy"),
            Err(TemplateError::Unclosed)
        );
        assert_eq!(DenyMessage::parse("a\rb"), Err(TemplateError::Control));
        assert!(DenyMessage::parse("line one\n\tline two } alone").is_ok());
    }
}
