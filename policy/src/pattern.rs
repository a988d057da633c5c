//! Rule patterns of a proxy action: content types, file-name globs and header rules, and
//! the first-match rule lists that hold them.
//!
//! All matching is case-insensitive (SPEC §4). Patterns are compiled once, when the
//! configuration is checked; `inspect` only calls [`RuleSet::first_match`] with what it
//! found in a message (decoding RFC 2047/2231 names is its job, not ours).

use std::fmt;

use crate::raw::Verdict;

/// Something a rule can match against.
pub trait Pattern {
    /// What the pattern is matched against.
    type Subject<'a>: Copy;

    /// True when the subject matches.
    fn matches(&self, subject: Self::Subject<'_>) -> bool;
}

/// One rule: a pattern, its verdict, and the text it was written as (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<P> {
    pattern: P,
    verdict: Verdict,
    text: String,
}

/// Ordered rules, first match wins, with the verdict for "no rule matched".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet<P> {
    default: Verdict,
    rules: Vec<Rule<P>>,
}

/// A case-insensitive glob: `*` is any run of characters, `?` exactly one, everything else
/// (including `[`) is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    lowered: Vec<char>,
}

/// `type/subtype`, `type/*`, or `*/*` (also written `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypePattern {
    /// Exactly this type and subtype (lowercase).
    Exact {
        /// Top-level type, e.g. `application`.
        kind: String,
        /// Subtype, e.g. `x-msdownload`.
        subtype: String,
    },
    /// Any subtype of this top-level type (lowercase).
    AnySubtype(String),
    /// Every content type.
    Any,
}

/// `Name: value`: a header field name (exact, case-insensitive) and a glob on its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPattern {
    name: String,
    value: Glob,
}

impl<P> Rule<P> {
    /// A rule from an already checked pattern; `text` names it in logs. Configuration
    /// loading builds these; code that builds rules directly (tests, benches) may too.
    pub fn new(pattern: P, verdict: Verdict, text: String) -> Self {
        Self {
            pattern,
            verdict,
            text,
        }
    }

    /// The compiled pattern.
    pub fn pattern(&self) -> &P {
        &self.pattern
    }

    /// The verdict when it matches.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The rule's `match` text as configured, to name the deciding rule in logs.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<P> Default for RuleSet<P> {
    /// No rules, default `allow`.
    fn default() -> Self {
        Self {
            default: Verdict::Allow,
            rules: Vec::new(),
        }
    }
}

impl<P: Pattern> RuleSet<P> {
    /// Ordered rules and the verdict when none matches.
    pub fn new(default: Verdict, rules: Vec<Rule<P>>) -> Self {
        Self { default, rules }
    }

    /// The verdict when no rule matches.
    pub fn default_verdict(&self) -> Verdict {
        self.default
    }

    /// The rules, in the order they are tried.
    pub fn rules(&self) -> &[Rule<P>] {
        &self.rules
    }

    /// The first rule matching `subject`, if any.
    pub fn first_match(&self, subject: P::Subject<'_>) -> Option<&Rule<P>> {
        self.rules.iter().find(|rule| rule.pattern.matches(subject))
    }

    /// The first matching rule's verdict, else the default.
    pub fn verdict_for(&self, subject: P::Subject<'_>) -> Verdict {
        self.first_match(subject)
            .map_or(self.default, Rule::verdict)
    }
}

impl Glob {
    /// Compiles a file-name glob; `None` when empty or containing a path separator or a
    /// control character (file names from MIME headers never contain them).
    pub fn parse(text: &str) -> Option<Self> {
        let bad = |c: char| c == '/' || c == '\\' || c.is_control();
        if text.is_empty() || text.chars().any(bad) {
            return None;
        }
        Some(Self::compile(text))
    }

    fn compile(text: &str) -> Self {
        Self {
            lowered: text.to_lowercase().chars().collect(),
        }
    }
}

impl Pattern for Glob {
    type Subject<'a> = &'a str;

    /// Linear-time wildcard matching with one backtrack point, so no pattern can make
    /// matching a hostile file name expensive.
    fn matches(&self, subject: &str) -> bool {
        let text: Vec<char> = subject.to_lowercase().chars().collect();
        let pat = &self.lowered;
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pat.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        p = sp + 1;
                        t = st + 1;
                    }
                    None => return false,
                },
            }
        }
        pat[p..].iter().all(|&c| c == '*')
    }
}

impl ContentTypePattern {
    /// Parses `type/subtype`, `type/*`, `*/*` or `*`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        if lower == "*" || lower == "*/*" {
            return Some(Self::Any);
        }
        let (kind, subtype) = lower.split_once('/')?;
        if !is_token(kind) || kind == "*" {
            return None;
        }
        match subtype {
            "*" => Some(Self::AnySubtype(kind.to_owned())),
            s if is_token(s) => Some(Self::Exact {
                kind: kind.to_owned(),
                subtype: s.to_owned(),
            }),
            _ => None,
        }
    }
}

impl Pattern for ContentTypePattern {
    /// A Content-Type value; parameters after `;` are ignored.
    type Subject<'a> = &'a str;

    fn matches(&self, content_type: &str) -> bool {
        let bare = content_type.split(';').next().unwrap_or_default().trim();
        let Some((kind, subtype)) = bare.split_once('/') else {
            return matches!(self, Self::Any);
        };
        match self {
            Self::Any => true,
            Self::AnySubtype(k) => kind.trim().eq_ignore_ascii_case(k),
            Self::Exact {
                kind: k,
                subtype: s,
            } => kind.trim().eq_ignore_ascii_case(k) && subtype.trim().eq_ignore_ascii_case(s),
        }
    }
}

impl fmt::Display for ContentTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact { kind, subtype } => write!(f, "{kind}/{subtype}"),
            Self::AnySubtype(kind) => write!(f, "{kind}/*"),
            Self::Any => f.write_str("*/*"),
        }
    }
}

impl HeaderPattern {
    /// Parses `Name: value`; the value is a glob (`*` for "present with any value").
    /// `None` when the name is not an RFC 5322 field name or the value is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, value) = text.split_once(':')?;
        let value = value.trim();
        let name_ok = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b));
        if !name_ok || value.is_empty() || value.chars().any(char::is_control) {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            value: Glob::compile(value),
        })
    }

    /// The header field name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Pattern for HeaderPattern {
    /// `(field name, unfolded value)`; the value's outer whitespace is ignored.
    type Subject<'a> = (&'a str, &'a str);

    fn matches(&self, (name, value): (&str, &str)) -> bool {
        name.trim().eq_ignore_ascii_case(&self.name) && self.value.matches(value.trim())
    }
}

/// An RFC 2045 token: printable ASCII without spaces and tspecials.
fn is_token(text: &str) -> bool {
    const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (33..=126).contains(&b) && !TSPECIALS.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    #[test]
    fn glob_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.exe", "setup.exe", true),
            ("*.exe", "SETUP.EXE", true),
            ("*.EXE", "setup.exe", true),
            ("*.exe", "setup.exe.txt", false),
            ("*.exe", ".exe", true),
            ("*.exe", "exe", false),
            ("invoice?.pdf", "invoice1.pdf", true),
            ("invoice?.pdf", "invoice12.pdf", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("[x].doc", "[x].doc", true),
            ("*.DOCM", "Überweisung.docm", true),
            ("ÜBER*", "über.txt", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob(pattern).matches(name), *want, "{pattern} vs {name}");
        }
        for bad in ["", "a/b", "a\\b", "a\nb"] {
            assert_eq!(Glob::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn content_type_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("application/x-msdownload", "application/x-msdownload", true),
            (
                "application/x-msdownload",
                "Application/X-MSDownload; name=a.exe",
                true,
            ),
            ("application/x-msdownload", "application/zip", false),
            ("application/*", "application/zip", true),
            ("application/*", "text/plain", false),
            ("*/*", "text/plain", true),
            ("*", "garbage", true),
            ("text/plain", "garbage", false),
        ];
        for (pattern, ct, want) in cases {
            let p = ContentTypePattern::parse(pattern).unwrap();
            assert_eq!(p.matches(ct), *want, "{pattern} vs {ct}");
        }
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "text/pla in",
            "*/plain",
            "te(x)t/plain",
        ] {
            assert_eq!(ContentTypePattern::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_table() {
        let p = HeaderPattern::parse("X-Spam-Flag: YES").unwrap();
        assert_eq!(p.name(), "X-Spam-Flag");
        assert!(p.matches(("x-spam-flag", " yes ")));
        assert!(!p.matches(("X-Spam-Flag", "NO")));
        assert!(!p.matches(("X-Spam-Status", "YES")));
        let any = HeaderPattern::parse("X-Virus:*").unwrap();
        assert!(any.matches(("X-Virus", "whatever")));
        let level = HeaderPattern::parse("X-Spam-Level: ****").unwrap();
        assert!(level.matches(("X-Spam-Level", "*******")));
        for bad in [
            "X-Spam-Flag",
            "X-Spam-Flag:",
            ": YES",
            "X Spam: YES",
            "X-Spam:   ",
        ] {
            assert_eq!(HeaderPattern::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rule_set_first_match_wins_then_default() {
        let rules = vec![
            Rule::new(glob("*.exe"), Verdict::Strip, "*.exe".into()),
            Rule::new(glob("*"), Verdict::Tag, "*".into()),
        ];
        let set = RuleSet::new(Verdict::Allow, rules);
        assert_eq!(set.first_match("a.exe").map(Rule::text), Some("*.exe"));
        assert_eq!(set.verdict_for("a.exe"), Verdict::Strip);
        assert_eq!(set.verdict_for("a.txt"), Verdict::Tag);
        let empty: RuleSet<Glob> = RuleSet::new(Verdict::Deny, Vec::new());
        assert_eq!(empty.verdict_for("a.txt"), Verdict::Deny);
    }

    proptest::proptest! {
        #[test]
        fn glob_star_prefix_matches_any_suffix(name in "\\PC{0,30}", suffix in "[a-z.]{1,8}") {
            let pattern = format!("*{suffix}");
            let subject = format!("{name}{suffix}");
            proptest::prop_assert!(glob(&pattern).matches(&subject));
        }
    }
}
