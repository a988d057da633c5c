//! The inspection rules of one proxy action, in the `policy` crate's checked types.
//!
//! There is one rule model: patterns ([`Glob`], [`ContentTypePattern`], [`HeaderPattern`]),
//! first-match lists ([`RuleSet`]), the [`Verdict`] with its strength order and the
//! [`DenyMessage`] template all come from `popgate-policy`, compiled once when the
//! configuration is checked. [`Rules::for_action`] takes them from a checked
//! [`ProxyAction`]; nothing is re-parsed from strings here. Lists are evaluated in order
//! and the first matching entry of a list decides for that list (firewall style), so an
//! exception such as `report.exe → allow` placed before `*.exe → strip` works. Across lists
//! the strongest verdict wins.

use popgate_policy::{
    ContentTypePattern, DenyMessage, Glob, HeaderPattern, OnError, Oversize, ProxyAction, RuleSet,
    Verdict,
};

/// Everything [`crate::inspect`] needs to judge a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The policy's name, for `{policy}` in `deny_message`.
    pub policy: String,
    /// The proxy action's name, for `{action}` in `deny_message`.
    pub action: String,
    /// Rules on each part's `type/subtype`. The default applies to leaf parts only:
    /// containers (multipart, nested message) meet explicit rules, their contents are
    /// judged part by part.
    pub content_types: RuleSet<ContentTypePattern>,
    /// Rules on every file name a part declares or carries (the default applies to named
    /// parts only).
    pub file_names: RuleSet<Glob>,
    /// Rules on the top-level message header fields (`strip` acts as `deny`).
    pub headers: RuleSet<HeaderPattern>,
    /// Messages larger than this many bytes (unstuffed) are not parsed.
    pub max_message_size: u64,
    /// What happens to a message larger than `max_message_size`.
    pub oversize: Oversize,
    /// The verdict for a message that cannot be judged at all.
    pub unparseable: Verdict,
    /// What the antivirus outcome turns into.
    pub antivirus: AntivirusRules,
    /// The prefix the `tag` verdict puts before the Subject, e.g. `[SPAM] `.
    pub spam_tag: String,
    /// The replacement text, with `{filename}`, `{policy}`, `{action}` and `{reason}`.
    pub deny_message: DenyMessage,
}

impl Rules {
    /// The rules of `action` as used by the policy named `policy`.
    pub fn for_action(policy: &str, action: &ProxyAction) -> Rules {
        let antivirus = action.antivirus();
        Rules {
            policy: policy.to_owned(),
            action: action.name().to_owned(),
            content_types: action.content_types().clone(),
            file_names: action.file_names().clone(),
            headers: action.headers().clone(),
            max_message_size: action.max_message_size(),
            oversize: action.oversize(),
            unparseable: action.unparseable(),
            antivirus: AntivirusRules {
                on_virus: antivirus.on_virus(),
                on_error: match antivirus.on_error() {
                    OnError::Allow => Verdict::Allow,
                    OnError::Deny => Verdict::Deny,
                    OnError::Tempfail => Verdict::Tempfail,
                },
            },
            spam_tag: action.spam_tag().to_owned(),
            deny_message: action.deny_message().clone(),
        }
    }
}

impl Default for Rules {
    /// Everything allowed, 32 MiB size limit, oversize and unparseable messages passed
    /// (the permissive base tests and benches start from; a configured action always goes
    /// through [`Rules::for_action`]).
    fn default() -> Rules {
        Rules {
            policy: String::new(),
            action: String::new(),
            content_types: RuleSet::default(),
            file_names: RuleSet::default(),
            headers: RuleSet::default(),
            max_message_size: 33_554_432,
            oversize: Oversize::Allow,
            unparseable: Verdict::Allow,
            antivirus: AntivirusRules::default(),
            spam_tag: "[SPAM] ".to_owned(),
            deny_message: DenyMessage::default(),
        }
    }
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
