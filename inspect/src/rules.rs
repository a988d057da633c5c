//! The inspection rules of one proxy action, as this crate consumes them.
//!
//! These are plain input types: the `proxy` crate maps the `policy` crate's checked action
//! into a [`Rules`] value (this crate depends on no workspace crate). Nothing is validated
//! here; `policy` has already done that. Lists are evaluated in order and the first matching
//! entry of a list decides for that list (firewall style), so an exception such as
//! `report.exe → allow` placed before `*.exe → strip` works. Across lists the strongest
//! verdict wins (see [`Verdict`]).

use crate::verdict::Verdict;

/// Everything [`crate::inspect`] needs to judge a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The policy's name, for `{policy}` in `deny_message`.
    pub policy: String,
    /// The proxy action's name, for `{action}` in `deny_message`.
    pub action: String,
    /// Rules on each part's `type/subtype`.
    pub content_types: ContentTypeRules,
    /// Rules on each part's file names.
    pub file_names: FileNameRules,
    /// Rules on the top-level message header fields.
    pub headers: Vec<HeaderRule>,
    /// Messages larger than this many bytes (unstuffed) are not parsed.
    pub max_message_size: u64,
    /// What happens to a message larger than `max_message_size`.
    pub oversize: Oversize,
    /// The verdict for a message the MIME parser cannot make sense of.
    pub unparseable: Verdict,
    /// What the antivirus outcome turns into.
    pub antivirus: AntivirusRules,
    /// The prefix the `tag` verdict puts before the Subject, e.g. `[SPAM] `.
    pub spam_tag: String,
    /// The replacement text, with `{filename}`, `{policy}`, `{action}` and `{reason}`.
    pub deny_message: String,
}

impl Default for Rules {
    /// The spec's defaults: everything allowed, 32 MiB size limit, oversize passed.
    fn default() -> Rules {
        Rules {
            policy: String::new(),
            action: String::new(),
            content_types: ContentTypeRules::default(),
            file_names: FileNameRules::default(),
            headers: Vec::new(),
            max_message_size: 33_554_432,
            oversize: Oversize::Allow,
            unparseable: Verdict::Allow,
            antivirus: AntivirusRules::default(),
            spam_tag: "[SPAM] ".to_owned(),
            deny_message: "The attachment {filename} was removed by {policy}: {reason}.".to_owned(),
        }
    }
}

/// `content_types`: patterns over the lowercase `type/subtype` of every part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentTypeRules {
    /// The verdict for a leaf part no rule matches. Containers (multipart, parsed
    /// message/rfc822) only meet explicit rules: their contents are judged part by part.
    pub default: Verdict,
    /// `(pattern, verdict)`; the pattern is a glob such as `application/x-msdownload`,
    /// `application/*` or `*/*`.
    pub rules: Vec<(String, Verdict)>,
}

impl Default for ContentTypeRules {
    fn default() -> ContentTypeRules {
        ContentTypeRules {
            default: Verdict::Allow,
            rules: Vec::new(),
        }
    }
}

/// `file_names`: globs over every file name a part declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNameRules {
    /// The verdict for a named part no rule matches (parts without a name are not affected).
    pub default: Verdict,
    /// `(glob, verdict)`, e.g. `("*.exe", Strip)`.
    pub rules: Vec<(String, Verdict)>,
}

impl Default for FileNameRules {
    fn default() -> FileNameRules {
        FileNameRules {
            default: Verdict::Allow,
            rules: Vec::new(),
        }
    }
}

/// One `headers` rule: a header field name and a glob over its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    /// The field name, compared case-insensitively, e.g. `X-Spam-Flag`.
    pub name: String,
    /// A glob over the unfolded, trimmed value, compared case-insensitively, e.g. `YES`.
    pub value: String,
    /// The verdict when a top-level field matches. `Strip` acts as `Deny` here.
    pub verdict: Verdict,
}

impl HeaderRule {
    /// Builds a rule from the spec's `"match": "X-Spam-Flag: YES"` form.
    ///
    /// The text before the first `:` is the name and the trimmed rest the value glob; without
    /// a `:` the whole text is the name and any value matches.
    pub fn from_match(text: &str, verdict: Verdict) -> HeaderRule {
        let (name, value) = text.split_once(':').unwrap_or((text, "*"));
        HeaderRule {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            verdict,
        }
    }

    /// The rule as it appears in logs: `X-Spam-Flag: YES`.
    pub fn label(&self) -> String {
        format!("{}: {}", self.name, self.value)
    }
}

/// `general.oversize`: what to do with a message above `max_message_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// Passed uninspected (the caller logs it).
    Allow,
    /// Replaced by the deny message, built from its header alone.
    Deny,
}

/// `antivirus`: the verdicts for the scanner's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AntivirusRules {
    /// The verdict when the scanner finds a virus (`Strip` acts as `Deny`).
    pub on_virus: Verdict,
    /// The verdict when the scanner failed: `Allow`, `Deny` or `Tempfail`.
    pub on_error: Verdict,
}

impl Default for AntivirusRules {
    fn default() -> AntivirusRules {
        AntivirusRules {
            on_virus: Verdict::Deny,
            on_error: Verdict::Tempfail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rule_from_spec_match_text() {
        let rule = HeaderRule::from_match("X-Spam-Flag: YES", Verdict::Tag);
        assert_eq!(rule.name, "X-Spam-Flag");
        assert_eq!(rule.value, "YES");
        assert_eq!(rule.label(), "X-Spam-Flag: YES");
    }

    #[test]
    fn header_rule_without_colon_matches_any_value() {
        let rule = HeaderRule::from_match("X-Virus", Verdict::Deny);
        assert_eq!((rule.name.as_str(), rule.value.as_str()), ("X-Virus", "*"));
    }
}
