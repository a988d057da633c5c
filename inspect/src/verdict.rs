//! Decisions: a [`Verdict`] (the `policy` crate's, with its strength order) together with
//! the rule that produced it and a human-readable reason. The strongest decision wins, so
//! combining is a `max` over [`Verdict::strength`]. No I/O here.

use popgate_policy::Verdict;

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
    fn strongest_keeps_the_first_on_a_tie() {
        let a = decision(Verdict::Strip, "a");
        let b = decision(Verdict::Strip, "b");
        assert_eq!(a.clone().strongest(b).rule, "a");
        let c = decision(Verdict::Deny, "c");
        assert_eq!(a.strongest(c).rule, "c");
    }
}
