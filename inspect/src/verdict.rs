//! Verdicts and the decisions that carry them.
//!
//! A [`Verdict`] is what an action says about a message or one of its parts; a [`Decision`]
//! is a verdict together with the rule that produced it and a human-readable reason. The
//! strongest decision wins, so combining is a `max` over [`Verdict::strength`]. No I/O here.

use std::fmt;

/// What to do with a message or a MIME part (spec §4, "Verdicts").
///
/// The variants are ordered by strength, weakest first: `Allow < Tag < Strip < Deny <
/// Quarantine < Tempfail`. When several rules fire, the strongest verdict decides. `Strip`
/// acts on the offending parts and `Tag` on the Subject; both can apply together. A `Deny`
/// or `Quarantine` anywhere replaces the whole message. `Tempfail` withholds the message
/// (the client gets `-ERR [SYS/TEMP]` and retries later), so it never loses mail and ranks
/// above everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The message passes byte for byte.
    Allow,
    /// The Subject gets the `spam_tag` prefix.
    Tag,
    /// The offending MIME part is replaced by a text/plain part carrying `deny_message`.
    Strip,
    /// The whole message is replaced by a short message carrying `deny_message`.
    Deny,
    /// As `Deny`, and the caller keeps the original under the quarantine id.
    Quarantine,
    /// Nothing is delivered now; the message stays on the server (antivirus `on_error`).
    Tempfail,
}

impl Verdict {
    /// The lowercase name used in configuration, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Tag => "tag",
            Verdict::Strip => "strip",
            Verdict::Deny => "deny",
            Verdict::Quarantine => "quarantine",
            Verdict::Tempfail => "tempfail",
        }
    }

    /// The verdict as it applies to a whole message rather than to one part.
    ///
    /// `Strip` has no single part to remove when a message-level rule (a header rule,
    /// `unparseable`, antivirus) asks for it, so it escalates to `Deny`.
    pub fn for_message(self) -> Verdict {
        match self {
            Verdict::Strip => Verdict::Deny,
            other => other,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict with the rule that produced it, for the log line and for `deny_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// The rule that decided, e.g. `file_names: *.exe` or `content_types: default`.
    pub rule: String,
    /// Why, in words, e.g. `file name "evil.exe" matches *.exe`.
    pub reason: String,
    /// The file name of the part concerned, when there is one (fills `{filename}`).
    pub filename: Option<String>,
}

impl Decision {
    /// The decision for a message no rule objected to.
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            rule: "none".to_owned(),
            reason: "no rule matched".to_owned(),
            filename: None,
        }
    }

    /// Keeps the stronger of `self` and `other`; on a tie the earlier one (`self`) stays.
    pub fn strongest(self, other: Decision) -> Decision {
        if other.verdict > self.verdict {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(verdict: Verdict, rule: &str) -> Decision {
        Decision {
            verdict,
            rule: rule.to_owned(),
            reason: String::new(),
            filename: None,
        }
    }

    #[test]
    fn strength_order_matches_the_spec() {
        let ordered = [
            Verdict::Allow,
            Verdict::Tag,
            Verdict::Strip,
            Verdict::Deny,
            Verdict::Quarantine,
            Verdict::Tempfail,
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn strongest_keeps_the_first_on_a_tie() {
        let a = decision(Verdict::Strip, "a");
        let b = decision(Verdict::Strip, "b");
        assert_eq!(a.clone().strongest(b).rule, "a");
        let c = decision(Verdict::Deny, "c");
        assert_eq!(a.strongest(c).rule, "c");
    }

    #[test]
    fn message_level_strip_escalates_to_deny() {
        assert_eq!(Verdict::Strip.for_message(), Verdict::Deny);
        assert_eq!(Verdict::Tag.for_message(), Verdict::Tag);
    }
}
