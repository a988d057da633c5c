//! Judging one message: [`inspect`] and what it returns.
//!
//! The message is parsed once; every part is matched against `content_types` and
//! `file_names`, the top-level header against `headers`, and the caller's antivirus outcome
//! and any parse damage are folded in. The strongest verdict decides (see [`Verdict`]);
//! `strip` and `tag` decisions below a `deny` are applied together. An allowed message is
//! not copied: the caller forwards its original bytes. No I/O here: the caller scans with
//! clamd beforehand and writes the quarantine file afterwards.

use mail_parser::{Header, HeaderValue};
use popgate_policy::{DenyContext, Oversize, Pattern, Verdict};

use crate::clamd::ScanResult;
use crate::parsed;
use crate::replacement;
use crate::rewrite::{self, Plan};
use crate::rules::Rules;
use crate::structure::{self, HeaderCache, Part, Reading, Structure, Target};
use crate::verdict::Decision;

/// The outcome of inspecting one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The strongest verdict that applied.
    pub verdict: Verdict,
    /// The rule that decided, e.g. `file_names: *.exe`, `headers: X-Spam-Flag: YES`,
    /// `antivirus: on_virus`, `unparseable`, `general: oversize`, or `none`.
    pub rule: String,
    /// Why, in words (also what `{reason}` became).
    pub reason: String,
    /// Why readers could disagree about this message's structure, when they could (see
    /// SPEC §4): every reading was judged and the strongest verdict taken. For the log.
    pub ambiguity: Option<String>,
    /// What to send to the client.
    pub output: Output,
}

/// What the caller sends to the client in place of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Forward the original bytes unchanged (as the server sent them, still stuffed).
    Original,
    /// Send this unstuffed message instead (stuff it with [`crate::restuff_into`]). For
    /// [`Verdict::Quarantine`] the caller also writes the original under the quarantine id.
    Rewritten(Vec<u8>),
    /// Send nothing: answer `-ERR [SYS/TEMP] ...` and leave the message on the server.
    Withhold,
}

/// Inspects `message` (unstuffed RFC 5322 bytes) under `rules`.
///
/// `scan` is the antivirus outcome the caller obtained for these bytes, if antivirus is
/// enabled. `quarantine_id` is the id the caller will store the original under if the
/// verdict is [`Verdict::Quarantine`]; the replacement names it. Never panics on any input.
pub fn inspect(
    message: &[u8],
    rules: &Rules,
    scan: Option<&ScanResult>,
    quarantine_id: &str,
) -> Inspection {
    if message.len() as u64 > rules.max_message_size {
        return oversize(message, rules);
    }
    let mut judge = Judge::new(rules);
    if let Some(scan) = scan {
        judge.antivirus(scan);
    }
    let top = parsed::parse_headers(message);
    let headers = top
        .as_ref()
        .and_then(|parsed| parsed.parts.first())
        .map_or(&[][..], |root| root.headers.as_slice());
    let readings = readings(message);
    if let Some(damage) = readings.iter().find_map(|r| r.damage.as_ref()) {
        judge.unparseable(damage.to_string());
    }
    judge.headers(message, headers);
    for reading in &readings {
        judge.reading(reading);
    }
    judge.finish(message, headers, quarantine_id)
}

/// The strict reading, and every other reading when the strict one met an ambiguity.
pub(crate) fn readings(message: &[u8]) -> Vec<Structure> {
    let mut headers = HeaderCache::new();
    let strict = structure::read(message, Reading::STRICT, &mut headers);
    if strict.ambiguity.is_empty() {
        return vec![strict];
    }
    let mut all = vec![strict];
    all.extend(
        Reading::OTHERS
            .iter()
            .map(|r| structure::read(message, *r, &mut headers)),
    );
    all
}

/// An oversize message is not parsed; a denied one is replaced using its header alone.
fn oversize(message: &[u8], rules: &Rules) -> Inspection {
    let reason = format!(
        "message of {} bytes exceeds the limit of {} bytes",
        message.len(),
        rules.max_message_size
    );
    let rule = "general: oversize".to_owned();
    match rules.oversize {
        Oversize::Allow => Inspection {
            verdict: Verdict::Allow,
            rule,
            reason,
            ambiguity: None,
            output: Output::Original,
        },
        Oversize::Deny => {
            let text = fill(rules, "(none)", &reason);
            Inspection {
                verdict: Verdict::Deny,
                rule,
                reason,
                ambiguity: None,
                output: Output::Rewritten(replacement::deny_replacement(message, &text, None)),
            }
        }
    }
}

/// The decisions collected for one message, in the order the walk meets them (shared with
/// the streaming inspector, so both rank and tie-break decisions the same way).
#[derive(Debug)]
pub(crate) struct Tally {
    /// The strongest decision so far.
    pub strongest: Decision,
    /// Parts to strip, with the decision for each.
    pub strips: Vec<(Target, Decision)>,
    /// Whether any rule asked for `tag`.
    pub tagged: bool,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            strongest: Decision::allow(),
            strips: Vec::new(),
            tagged: false,
        }
    }

    pub(crate) fn record(&mut self, decision: Decision) {
        self.tagged |= decision.verdict == Verdict::Tag;
        let strongest = std::mem::replace(&mut self.strongest, Decision::allow());
        self.strongest = strongest.strongest(decision);
    }

    /// Records a message-level verdict (a header rule, `unparseable`, antivirus).
    pub(crate) fn message_level(&mut self, verdict: Verdict, rule: &str, reason: String) {
        if verdict == Verdict::Allow {
            return;
        }
        self.record(Decision {
            verdict: verdict.for_message(),
            rule: rule.to_owned(),
            reason,
            filename: None,
        });
    }

    /// Records every `headers` rule that matches the top-level fields `headers` of `raw`.
    pub(crate) fn headers(&mut self, rules: &Rules, raw: &[u8], headers: &[Header<'_>]) {
        for rule in rules.headers.rules() {
            // The name test is the pattern's own first test: unfolding every field's value
            // for every rule cost an eighth of a small message's inspection (issue 16).
            let hit = headers.iter().any(|header| {
                header
                    .name()
                    .trim()
                    .eq_ignore_ascii_case(rule.pattern().name())
                    && header_values(raw, header)
                        .iter()
                        .any(|v| rule.pattern().matches((header.name(), v)))
            });
            if hit {
                let value = rule.text().split_once(':').map_or("*", |(_, v)| v.trim());
                let reason = format!("header {} matches {value}", rule.pattern().name());
                let label = format!("headers: {}", rule.text());
                self.message_level(rule.verdict(), &label, reason);
            }
        }
    }

    /// Records the decision for one part (see [`part_decision`]).
    pub(crate) fn part(&mut self, rules: &Rules, part: &Part) {
        if let Some(decision) = part_decision(rules, part) {
            if decision.verdict == Verdict::Strip {
                self.strips.push((part.target, decision.clone()));
            }
            self.record(decision);
        }
    }
}

/// The decisions collected for one message, with the rules that produce them.
struct Judge<'r> {
    rules: &'r Rules,
    /// Message-level decisions (antivirus, `unparseable`, header rules).
    tally: Tally,
    /// Part decisions, one tally per reading (the strict reading first).
    readings: Vec<Tally>,
    /// What made the message ambiguous (from the strict reading).
    ambiguity: Vec<structure::Ambiguity>,
    /// Why the message is unparseable, when `unparseable: allow` let it pass.
    unparseable_allowed: Option<String>,
}

impl<'r> Judge<'r> {
    fn new(rules: &'r Rules) -> Judge<'r> {
        Judge {
            rules,
            tally: Tally::new(),
            readings: Vec::new(),
            ambiguity: Vec::new(),
            unparseable_allowed: None,
        }
    }

    fn message_level(&mut self, verdict: Verdict, rule: &str, reason: String) {
        self.tally.message_level(verdict, rule, reason);
    }

    fn antivirus(&mut self, scan: &ScanResult) {
        match scan {
            ScanResult::Clean => {}
            ScanResult::Virus(name) => self.message_level(
                self.rules.antivirus.on_virus,
                "antivirus: on_virus",
                format!("virus {name} found"),
            ),
            ScanResult::Failed(error) => self.message_level(
                self.rules.antivirus.on_error,
                "antivirus: on_error",
                format!("virus scan failed: {error}"),
            ),
        }
    }

    fn headers(&mut self, raw: &[u8], headers: &[Header<'_>]) {
        self.tally.headers(self.rules, raw, headers);
    }

    /// `unparseable: allow` still names the rule when nothing stronger applies (SPEC: the
    /// message is logged either way).
    fn unparseable(&mut self, reason: String) {
        if self.rules.unparseable == Verdict::Allow {
            self.unparseable_allowed = Some(reason);
        } else {
            self.message_level(self.rules.unparseable, "unparseable", reason);
        }
    }

    fn reading(&mut self, structure: &Structure) {
        if self.readings.is_empty() {
            self.ambiguity.clone_from(&structure.ambiguity);
        }
        let mut tally = Tally::new();
        for part in &structure.parts {
            tally.part(self.rules, part);
        }
        self.readings.push(tally);
    }

    /// Folds the readings into the message tally: the strongest decision of any reading
    /// wins; a strip that is not the same set of byte ranges in every reading becomes a
    /// deny (no single rewrite removes the part for every reader).
    fn combine(&mut self) -> Option<String> {
        let readings = std::mem::take(&mut self.readings);
        let ambiguity = (!self.ambiguity.is_empty()).then(|| {
            let why: Vec<String> = self.ambiguity.iter().map(ToString::to_string).collect();
            why.join("; ")
        });
        let strip_sets: Vec<Vec<Target>> = readings
            .iter()
            .map(|tally| outermost(tally.strips.iter().map(|(t, _)| *t)))
            .collect();
        // A root strip keeps the header fields as mail-parser delimits them; when readers
        // could end that header elsewhere, no single rewrite is safe (fuzz finding).
        let root_strip = strip_sets.iter().any(|set| set.contains(&Target::Root));
        let disagree = strip_sets.iter().any(|set| Some(set) != strip_sets.first())
            || (root_strip && !self.ambiguity.is_empty());
        let mut readings = readings.into_iter();
        if let Some(first) = readings.next() {
            self.tally.strips = first.strips;
            self.tally.tagged |= first.tagged;
            self.tally.record(first.strongest);
        }
        for other in readings {
            self.tally.tagged |= other.tagged;
            self.tally.record(other.strongest);
        }
        if disagree && self.tally.strongest.verdict < Verdict::Deny {
            let strongest = std::mem::replace(&mut self.tally.strongest, Decision::allow());
            self.tally.strongest = Decision {
                verdict: Verdict::Deny,
                rule: format!("ambiguous: {}", strongest.rule),
                reason: format!(
                    "{}, and readers disagree about which part that is ({})",
                    strongest.reason,
                    ambiguity.as_deref().unwrap_or("structure")
                ),
                filename: strongest.filename,
            };
        }
        ambiguity
    }

    fn finish(mut self, raw: &[u8], headers: &[Header<'_>], quarantine_id: &str) -> Inspection {
        let ambiguity = self.combine();
        if let Some(reason) = self.unparseable_allowed.take() {
            if self.tally.strongest.verdict == Verdict::Allow {
                self.tally.strongest.rule = "unparseable".to_owned();
                self.tally.strongest.reason = reason;
            }
        }
        let Decision {
            verdict,
            rule,
            reason,
            filename,
        } = self.tally.strongest;
        let filename = filename.unwrap_or_else(|| "(none)".to_owned());
        let output = match verdict {
            Verdict::Tempfail => Output::Withhold,
            Verdict::Deny | Verdict::Quarantine => {
                let text = fill(self.rules, &filename, &reason);
                let id = (verdict == Verdict::Quarantine).then_some(quarantine_id);
                Output::Rewritten(replacement::build(raw, headers, &text, id))
            }
            Verdict::Allow | Verdict::Tag | Verdict::Strip => {
                let plan = Plan {
                    strips: self
                        .tally
                        .strips
                        .iter()
                        .map(|(target, d)| {
                            let name = d.filename.as_deref().unwrap_or("(none)");
                            (*target, fill(self.rules, name, &d.reason))
                        })
                        .collect(),
                    tag: self.tally.tagged.then(|| self.rules.spam_tag.clone()),
                };
                if plan.strips.is_empty() && (plan.tag.is_none() || headers.is_empty()) {
                    Output::Original
                } else {
                    let rewritten = rewrite::apply(raw, headers, &plan);
                    if rewritten == raw {
                        Output::Original
                    } else {
                        Output::Rewritten(rewritten)
                    }
                }
            }
        };
        Inspection {
            verdict,
            rule,
            reason,
            ambiguity,
            output,
        }
    }
}

/// The byte ranges a set of strips removes, as sorted outermost targets: a root strip
/// replaces everything, and a range inside another stripped range changes nothing.
fn outermost(targets: impl Iterator<Item = Target>) -> Vec<Target> {
    let mut targets: Vec<Target> = targets.collect();
    if targets.contains(&Target::Root) {
        return vec![Target::Root];
    }
    targets.sort_by_key(|t| match *t {
        Target::Range { start, end } => (start, std::cmp::Reverse(end)),
        Target::Root => (0, std::cmp::Reverse(usize::MAX)),
    });
    let mut kept: Vec<Target> = Vec::with_capacity(targets.len());
    for target in targets {
        let inside = match (kept.last(), target) {
            (Some(Target::Range { end: outer_end, .. }), Target::Range { end, .. }) => {
                end <= *outer_end
            }
            _ => false,
        };
        if !inside {
            kept.push(target);
        }
    }
    kept
}

/// The strongest non-`allow` decision of `content_types` and `file_names` for one part.
pub(crate) fn part_decision(rules: &Rules, part: &Part) -> Option<Decision> {
    let label = match part.file_names.first() {
        Some(name) => name.clone(),
        None => format!("(unnamed {} part)", part.content_type),
    };
    let by_type = match rules.content_types.first_match(&part.content_type) {
        Some(rule) => Some((
            rule.verdict(),
            format!("content_types: {}", rule.text()),
            format!("content type {} matches {}", part.content_type, rule.text()),
        )),
        None if !part.is_container => Some((
            rules.content_types.default_verdict(),
            "content_types: default".to_owned(),
            format!("content type {} is not allowed", part.content_type),
        )),
        None => None,
    };
    let mut found: Vec<(Verdict, String, String, String)> = Vec::new();
    if let Some((verdict, rule, reason)) = by_type {
        found.push((verdict, rule, reason, label));
    }
    for name in &part.file_names {
        match rules.file_names.first_match(name) {
            Some(rule) => found.push((
                rule.verdict(),
                format!("file_names: {}", rule.text()),
                format!("file name {name} matches {}", rule.text()),
                name.clone(),
            )),
            None => found.push((
                rules.file_names.default_verdict(),
                "file_names: default".to_owned(),
                format!("file name {name} is not allowed"),
                name.clone(),
            )),
        }
    }
    let mut strongest: Option<Decision> = None;
    for (verdict, rule, reason, filename) in found {
        if verdict == Verdict::Allow {
            continue;
        }
        let decision = Decision {
            verdict,
            rule,
            reason,
            filename: Some(filename),
        };
        strongest = Some(match strongest {
            Some(current) => current.strongest(decision),
            None => decision,
        });
    }
    strongest
}

/// The raw (unfolded, trimmed) value of a header field, and its decoded text if different.
fn header_values(raw: &[u8], header: &Header<'_>) -> Vec<String> {
    let bytes = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    let mut unfolded = String::from_utf8_lossy(bytes).into_owned();
    unfolded.retain(|c| c != '\r' && c != '\n');
    let mut values = vec![unfolded.trim().to_owned()];
    if let HeaderValue::Text(text) = header.value() {
        if text.trim() != values[0] {
            values.push(text.trim().to_owned());
        }
    }
    values
}

/// The action's `deny_message` filled in. File names and reasons can come from the sender,
/// so control characters become `?` and each value is cut to [`MAX_VALUE_CHARS`].
pub(crate) fn fill(rules: &Rules, filename: &str, reason: &str) -> String {
    let (filename, policy, action, reason) = (
        clean(filename),
        clean(&rules.policy),
        clean(&rules.action),
        clean(reason),
    );
    rules.deny_message.render(&DenyContext {
        filename: &filename,
        policy: &policy,
        action: &action,
        reason: &reason,
    })
}

/// Longest value inserted for one placeholder, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 200;

fn clean(value: &str) -> String {
    value
        .chars()
        .take(MAX_VALUE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_are_cleaned_before_filling() {
        let rules = Rules::default();
        let long = "a".repeat(1000);
        let text = fill(&rules, "x\r\n--boundary\u{0}.exe", &long);
        assert!(text.contains("x??--boundary?.exe"), "{text}");
        assert!(!text.contains(&"a".repeat(MAX_VALUE_CHARS + 1)));
        assert!(text.contains(&"a".repeat(MAX_VALUE_CHARS)));
    }
}
