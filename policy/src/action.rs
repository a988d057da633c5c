//! `ProxyAction`: the checked `actions/NAME.json` (limits, authentication, content rules,
//! antivirus, verdict texts, TLS handling).
//!
//! An action is shared by any number of policies and refers to one TLS profile by name; the
//! reference is resolved here, so a checked action holds its `Arc<TlsProfile>`. What the
//! verdicts do to a message is `inspect`'s business; this file only guarantees that every
//! pattern compiled and every verdict makes sense where it is used.

use std::sync::Arc;
use std::time::Duration;

use crate::check::Checker;
use crate::defaults as d;
use crate::endpoint::Clamd;
use crate::error::{ConfigErrorKind, RefTarget};
use crate::pattern::{ContentTypePattern, Glob, HeaderPattern, Rule, RuleSet};
use crate::raw::{
    OnError, Oversize, RawAction, RawAntivirus, RawAuthentication, RawHeaderRules, RawRule,
    RawRuleSet, TlsActionKind, Verdict,
};
use crate::template::{DenyMessage, TemplateError};
use crate::tls_profile::TlsProfile;

/// A checked proxy action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAction {
    name: String,
    file: String,
    idle_timeout: Duration,
    max_line_length: u32,
    max_message_size: u64,
    oversize: Oversize,
    authentication: Authentication,
    content_types: RuleSet<ContentTypePattern>,
    file_names: RuleSet<Glob>,
    headers: RuleSet<HeaderPattern>,
    antivirus: Antivirus,
    unparseable: Verdict,
    spam_tag: String,
    deny_message: DenyMessage,
    tls: TlsAction,
}

/// Which logins clients may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    allow: Vec<AuthMethod>,
    require_tls: bool,
}

/// One entry of `authentication.allow`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `USER`/`PASS`.
    User,
    /// `APOP`.
    Apop,
    /// `SASL:NAME`: one SASL mechanism (uppercase).
    Sasl(String),
    /// `SASL:*`: every SASL mechanism.
    AnySasl,
}

/// Checked `antivirus` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Antivirus {
    enabled: bool,
    clamd: Clamd,
    timeout: Duration,
    on_virus: Verdict,
    on_error: OnError,
}

/// What the action does with TLS, and with which profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsAction {
    action: TlsActionKind,
    profile: Arc<TlsProfile>,
}

/// How an action's `tls.profile` name resolved.
pub(crate) enum ProfileLookup {
    /// Defined (by a file or built in).
    Found(Arc<TlsProfile>),
    /// Defined by a file that failed to parse: already reported.
    Broken,
    /// Not defined anywhere.
    Missing,
}

impl ProxyAction {
    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The defining file, relative to the config directory.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Silent-peer timeout once the session is up (default: `limits.idle_timeout_s`).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Longest line accepted from either peer, CRLF included (at least 1000, RFC 5322).
    pub fn max_line_length(&self) -> u32 {
        self.max_line_length
    }

    /// Largest message inspected, in bytes.
    pub fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    /// What happens to a message above [`Self::max_message_size`].
    pub fn oversize(&self) -> Oversize {
        self.oversize
    }

    /// Which logins clients may use.
    pub fn authentication(&self) -> &Authentication {
        &self.authentication
    }

    /// Content-Type rules.
    pub fn content_types(&self) -> &RuleSet<ContentTypePattern> {
        &self.content_types
    }

    /// Attachment file-name rules.
    pub fn file_names(&self) -> &RuleSet<Glob> {
        &self.file_names
    }

    /// Header rules (default `allow`).
    pub fn headers(&self) -> &RuleSet<HeaderPattern> {
        &self.headers
    }

    /// clamd settings.
    pub fn antivirus(&self) -> &Antivirus {
        &self.antivirus
    }

    /// Verdict for a message the MIME parser cannot read.
    pub fn unparseable(&self) -> Verdict {
        self.unparseable
    }

    /// Subject prefix for `tag` (no control characters).
    pub fn spam_tag(&self) -> &str {
        &self.spam_tag
    }

    /// Text replacing stripped parts and denied messages.
    pub fn deny_message(&self) -> &DenyMessage {
        &self.deny_message
    }

    /// TLS handling and profile.
    pub fn tls(&self) -> &TlsAction {
        &self.tls
    }

    /// A stand-in for a policy whose action did not resolve (the error is already recorded,
    /// so the configuration is rejected and the stand-in never serves a connection).
    pub(crate) fn placeholder() -> Self {
        let raw = RawAction {
            name: String::new(),
            general: None,
            authentication: None,
            content_types: None,
            file_names: None,
            headers: None,
            antivirus: None,
            unparseable: None,
            spam_tag: None,
            deny_message: None,
            tls: None,
        };
        let mut ignored = Vec::new();
        let builtin = Arc::new(TlsProfile::builtin());
        let lookup = |_: &str| ProfileLookup::Found(Arc::clone(&builtin));
        Self::check(
            raw,
            &mut Checker::new("", &mut ignored),
            d::IDLE_TIMEOUT,
            &lookup,
        )
    }

    /// Checks a parsed action file, recording every problem. `idle_default` is the global
    /// `limits.idle_timeout`; `lookup` resolves profile names.
    pub(crate) fn check(
        raw: RawAction,
        ck: &mut Checker<'_>,
        idle_default: Duration,
        lookup: &dyn Fn(&str) -> ProfileLookup,
    ) -> Self {
        ck.name(".name", &raw.name);
        let general = raw.general.unwrap_or_default();
        let idle_timeout = general.idle_timeout_s.map_or(idle_default, |s| {
            Duration::from_secs(ck.range(".general.idle_timeout_s", s, 1, d::MAX_TIMEOUT_S))
        });
        let max_line_length = general.max_line_length.map_or(d::MAX_LINE_LENGTH, |v| {
            let max = d::MAX_LINE_LENGTH_LIMIT;
            ck.range(".general.max_line_length", v, d::MIN_LINE_LENGTH, max)
        });
        let max_message_size = general.max_message_size.map_or(d::MAX_MESSAGE_SIZE, |v| {
            ck.range(".general.max_message_size", v, 1, d::MAX_MESSAGE_SIZE_LIMIT)
        });

        let (content_types, file_names, headers) =
            rule_sets(ck, raw.content_types, raw.file_names, raw.headers);

        // An unparseable message has no part to strip either.
        let unparseable = raw.unparseable.unwrap_or(d::UNPARSEABLE);
        allowed(ck, ".unparseable", unparseable, &NOT_A_PART);

        let spam_tag = raw.spam_tag.unwrap_or_else(|| d::SPAM_TAG.to_owned());
        // The tag goes into the Subject header: a CR or LF would inject headers.
        if spam_tag.chars().any(char::is_control) {
            ck.error(".spam_tag", ConfigErrorKind::ControlCharacter);
        }
        let deny_message = deny_message(ck, raw.deny_message.as_deref());
        let tls = raw.tls.unwrap_or_default();
        let profile = profile(ck, tls.profile, lookup);

        Self {
            name: raw.name,
            file: ck.file().to_owned(),
            idle_timeout,
            max_line_length,
            max_message_size,
            oversize: general.oversize.unwrap_or(d::OVERSIZE),
            authentication: Authentication::check(raw.authentication.unwrap_or_default(), ck),
            content_types,
            file_names,
            headers,
            antivirus: Antivirus::check(raw.antivirus.unwrap_or_default(), ck),
            unparseable,
            spam_tag,
            deny_message,
            tls: TlsAction {
                action: tls.action.unwrap_or(d::TLS_ACTION),
                profile,
            },
        }
    }
}

/// Verdicts for what is not a MIME part (a header, an unparseable message): nothing to
/// strip.
const NOT_A_PART: [Verdict; 4] = [
    Verdict::Allow,
    Verdict::Deny,
    Verdict::Quarantine,
    Verdict::Tag,
];

/// The action's three rule sets: content types, file names, headers.
fn rule_sets(
    ck: &mut Checker<'_>,
    content: Option<RawRuleSet>,
    names: Option<RawRuleSet>,
    headers: Option<RawHeaderRules>,
) -> (
    RuleSet<ContentTypePattern>,
    RuleSet<Glob>,
    RuleSet<HeaderPattern>,
) {
    let content = content.unwrap_or_default();
    let content_types = RuleSet::new(
        content.default.unwrap_or(d::CONTENT_TYPES_DEFAULT),
        rules(ck, ".content_types", content.rules, &[], |text| {
            ContentTypePattern::parse(text).ok_or_else(|| ConfigErrorKind::BadContentType {
                value: text.to_owned(),
            })
        }),
    );
    let names = names.unwrap_or_default();
    let file_names = RuleSet::new(
        names.default.unwrap_or(d::FILE_NAMES_DEFAULT),
        rules(ck, ".file_names", names.rules, &[], |text| {
            Glob::parse(text).ok_or_else(|| ConfigErrorKind::BadFileNamePattern {
                value: text.to_owned(),
            })
        }),
    );
    let header_rules = headers.and_then(|h| h.rules);
    let headers = RuleSet::new(
        Verdict::Allow,
        rules(ck, ".headers", header_rules, &NOT_A_PART, |text| {
            HeaderPattern::parse(text).ok_or_else(|| ConfigErrorKind::BadHeaderRule {
                value: text.to_owned(),
            })
        }),
    );
    (content_types, file_names, headers)
}

/// `deny_message`, checked as a template (an empty one when it is not valid).
fn deny_message(ck: &mut Checker<'_>, text: Option<&str>) -> DenyMessage {
    let deny_text = text.unwrap_or(d::DENY_MESSAGE);
    DenyMessage::parse(deny_text).unwrap_or_else(|e| {
        let kind = match e {
            TemplateError::Unknown(name) => ConfigErrorKind::UnknownPlaceholder { name },
            TemplateError::Unclosed => ConfigErrorKind::UnclosedPlaceholder,
            TemplateError::Control => ConfigErrorKind::ControlCharacter,
        };
        ck.error(".deny_message", kind);
        DenyMessage::empty()
    })
}

/// The TLS profile `name` (default `TLS-Client.Standard`) refers to; the built-in one when
/// it is broken or missing (a missing one is an error).
fn profile(
    ck: &mut Checker<'_>,
    name: Option<String>,
    lookup: &dyn Fn(&str) -> ProfileLookup,
) -> Arc<TlsProfile> {
    let profile_name = name.unwrap_or_else(|| d::TLS_PROFILE.to_owned());
    match lookup(&profile_name) {
        ProfileLookup::Found(profile) => profile,
        ProfileLookup::Broken => Arc::new(TlsProfile::builtin()),
        ProfileLookup::Missing => {
            let kind = ConfigErrorKind::UnknownReference {
                target: RefTarget::TlsProfile,
                name: profile_name,
            };
            ck.error(".tls.profile", kind);
            Arc::new(TlsProfile::builtin())
        }
    }
}

impl Authentication {
    /// The allowed methods, as configured (default: `USER`, `APOP`, `SASL:*`).
    pub fn allow(&self) -> &[AuthMethod] {
        &self.allow
    }

    /// Login without TLS is refused for every client of the action.
    pub fn require_tls(&self) -> bool {
        self.require_tls
    }

    /// True when `USER`/`PASS` is allowed.
    pub fn allows_user(&self) -> bool {
        self.allow.contains(&AuthMethod::User)
    }

    /// True when `APOP` is allowed.
    pub fn allows_apop(&self) -> bool {
        self.allow.contains(&AuthMethod::Apop)
    }

    /// True when the SASL mechanism (any case) is allowed.
    pub fn allows_sasl(&self, mechanism: &str) -> bool {
        self.allow.iter().any(|m| match m {
            AuthMethod::AnySasl => true,
            AuthMethod::Sasl(name) => name.eq_ignore_ascii_case(mechanism),
            AuthMethod::User | AuthMethod::Apop => false,
        })
    }

    fn check(raw: RawAuthentication, ck: &mut Checker<'_>) -> Self {
        let allow = match raw.allow {
            None => d::AUTHENTICATION_ALLOW
                .iter()
                .filter_map(|m| AuthMethod::parse(m))
                .collect(),
            Some(list) => {
                if list.is_empty() {
                    ck.error(".authentication.allow", ConfigErrorKind::EmptyList);
                }
                let mut out = Vec::with_capacity(list.len());
                for (i, text) in list.into_iter().enumerate() {
                    match AuthMethod::parse(&text) {
                        Some(method) => out.push(method),
                        None => ck.error(
                            format!(".authentication.allow[{i}]"),
                            ConfigErrorKind::BadAuthMechanism { value: text },
                        ),
                    }
                }
                out
            }
        };
        Self {
            allow,
            require_tls: raw.require_tls.unwrap_or(d::REQUIRE_TLS),
        }
    }
}

impl AuthMethod {
    /// Parses `USER`, `APOP`, `SASL:*` or `SASL:NAME` (any case; RFC 4422 §3.1 names).
    pub fn parse(text: &str) -> Option<Self> {
        const MAX_SASL_NAME: usize = 20;
        let upper = text.trim().to_ascii_uppercase();
        match upper.as_str() {
            "USER" => Some(Self::User),
            "APOP" => Some(Self::Apop),
            "SASL:*" => Some(Self::AnySasl),
            _ => {
                let name = upper.strip_prefix("SASL:")?;
                let ok = !name.is_empty()
                    && name.len() <= MAX_SASL_NAME
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                ok.then(|| Self::Sasl(name.to_owned()))
            }
        }
    }
}

impl Antivirus {
    /// Whether messages are sent to clamd.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Where clamd listens.
    pub fn clamd(&self) -> &Clamd {
        &self.clamd
    }

    /// Bound on one scan.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Verdict for an infected message: `deny`, `quarantine` or `strip`.
    pub fn on_virus(&self) -> Verdict {
        self.on_virus
    }

    /// What happens when the scan fails.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    fn check(raw: RawAntivirus, ck: &mut Checker<'_>) -> Self {
        let text = raw.clamd.as_deref().unwrap_or(d::CLAMD);
        let clamd = Clamd::parse(text).unwrap_or_else(|| {
            let kind = ConfigErrorKind::BadClamd {
                value: text.to_owned(),
            };
            ck.error(".antivirus.clamd", kind);
            Clamd::Unix(d::CLAMD.trim_start_matches("unix:").into())
        });
        let timeout = raw.timeout_s.map_or(d::ANTIVIRUS_TIMEOUT, |s| {
            Duration::from_secs(ck.range(".antivirus.timeout_s", s, 1, d::MAX_TIMEOUT_S))
        });
        let on_virus = raw.on_virus.unwrap_or(d::ON_VIRUS);
        // Passing or merely tagging a virus would make scanning pointless.
        let virus_verdicts = [Verdict::Deny, Verdict::Quarantine, Verdict::Strip];
        allowed(ck, ".antivirus.on_virus", on_virus, &virus_verdicts);
        Self {
            enabled: raw.enabled.unwrap_or(d::ANTIVIRUS_ENABLED),
            clamd,
            timeout,
            on_virus,
            on_error: raw.on_error.unwrap_or(d::ON_ERROR),
        }
    }
}

impl TlsAction {
    /// `inspect`, `allow` or `drop`.
    pub fn action(&self) -> TlsActionKind {
        self.action
    }

    /// The TLS profile.
    pub fn profile(&self) -> &Arc<TlsProfile> {
        &self.profile
    }
}

/// Compiles a rule list; `allowed_verdicts` empty means every verdict is fine.
fn rules<P>(
    ck: &mut Checker<'_>,
    path: &str,
    raw: Option<Vec<RawRule>>,
    allowed_verdicts: &[Verdict],
    parse: impl Fn(&str) -> Result<P, ConfigErrorKind>,
) -> Vec<Rule<P>> {
    let mut out = Vec::new();
    for (i, rule) in raw.unwrap_or_default().into_iter().enumerate() {
        if !allowed_verdicts.is_empty() {
            allowed(
                ck,
                &format!("{path}.rules[{i}].action"),
                rule.action,
                allowed_verdicts,
            );
        }
        match parse(&rule.pattern) {
            Ok(pattern) => out.push(Rule::new(pattern, rule.action, rule.pattern)),
            Err(kind) => ck.error(format!("{path}.rules[{i}].match"), kind),
        }
    }
    out
}

fn allowed(ck: &mut Checker<'_>, path: &str, verdict: Verdict, allowed: &[Verdict]) {
    if !allowed.contains(&verdict) {
        let kind = ConfigErrorKind::VerdictNotAllowed {
            verdict,
            allowed: allowed.to_vec(),
        };
        ck.error(path, kind);
    }
}
