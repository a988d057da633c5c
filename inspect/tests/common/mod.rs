//! Rule builders shared by the inspect tests: the `policy` crate's checked rule types from
//! `(pattern, verdict)` pairs.

#![allow(dead_code)]

use popgate_inspect::{ContentTypePattern, Glob, HeaderPattern, Rule, RuleSet, Verdict};

/// `content_types` rules.
pub fn content_rules(default: Verdict, rules: &[(&str, Verdict)]) -> RuleSet<ContentTypePattern> {
    let rules = rules
        .iter()
        .map(|&(text, verdict)| {
            let pattern = ContentTypePattern::parse(text).expect("content type pattern");
            Rule::new(pattern, verdict, text.to_owned())
        })
        .collect();
    RuleSet::new(default, rules)
}

/// `file_names` rules.
pub fn name_rules(default: Verdict, rules: &[(&str, Verdict)]) -> RuleSet<Glob> {
    let rules = rules
        .iter()
        .map(|&(text, verdict)| {
            let pattern = Glob::parse(text).expect("file name glob");
            Rule::new(pattern, verdict, text.to_owned())
        })
        .collect();
    RuleSet::new(default, rules)
}

/// `headers` rules (`Name: value glob`).
pub fn header_rules(rules: &[(&str, Verdict)]) -> RuleSet<HeaderPattern> {
    let rules = rules
        .iter()
        .map(|&(text, verdict)| {
            let pattern = HeaderPattern::parse(text).expect("header rule");
            Rule::new(pattern, verdict, text.to_owned())
        })
        .collect();
    RuleSet::new(Verdict::Allow, rules)
}
