//! The properties the fuzz targets check, shared with `inspect/tests/fuzz_corpus.rs`, which
//! replays the checked-in corpora as ordinary tests. The includer declares `reference`
//! (`inspect/tests/reference/mod.rs`, the independent reader).

#![allow(dead_code)]

use popgate_inspect::{
    inspect, ContentTypePattern, Glob, Output, Rule, RuleSet, Rules, StreamInspector, Verdict,
};

/// The SPEC example action's content rules with the given `unparseable`.
pub fn spec_rules(unparseable: Verdict) -> Rules {
    let ct = ContentTypePattern::parse("application/x-msdownload").expect("pattern");
    let names = ["*.exe", "*.scr"]
        .iter()
        .map(|g| {
            Rule::new(
                Glob::parse(g).expect("glob"),
                Verdict::Strip,
                (*g).to_owned(),
            )
        })
        .collect();
    Rules {
        content_types: RuleSet::new(
            Verdict::Allow,
            vec![Rule::new(
                ct,
                Verdict::Strip,
                "application/x-msdownload".into(),
            )],
        ),
        file_names: RuleSet::new(Verdict::Allow, names),
        unparseable,
        ..Rules::default()
    }
}

/// `splitter`: no panic, and what the client would receive holds nothing the reference
/// reader calls forbidden unless the whole message was replaced.
pub fn splitter(data: &[u8]) {
    let rules = spec_rules(Verdict::Quarantine);
    let result = inspect(data, &rules, None, "fuzz");
    if matches!(
        result.verdict,
        Verdict::Deny | Verdict::Quarantine | Verdict::Tempfail
    ) {
        return;
    }
    let output: &[u8] = match &result.output {
        Output::Original => data,
        Output::Rewritten(bytes) => bytes,
        Output::Withhold => return,
    };
    let found = crate::reference::forbidden(output);
    assert!(
        found.is_empty(),
        "verdict {} ({}; ambiguity {:?}) but the reference reader finds {found:?}",
        result.verdict,
        result.reason,
        result.ambiguity
    );
}

/// `stream_vs_batch`: the stream gives the batch verdict and bytes, or `Diverged`. The
/// first byte picks the chunk size and `unparseable`.
pub fn stream_vs_batch(data: &[u8]) {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(selector & 0x3f) + 1;
    let unparseable = if selector & 0x40 == 0 {
        Verdict::Allow
    } else {
        Verdict::Quarantine
    };
    let rules = spec_rules(unparseable);
    let batch = inspect(message, &rules, None, "fuzz");
    let expected: &[u8] = match &batch.output {
        Output::Original => message,
        Output::Rewritten(bytes) => bytes,
        Output::Withhold => return,
    };
    let Some(mut stream) = StreamInspector::new(&rules, false, "fuzz") else {
        panic!("the SPEC rules stream");
    };
    let mut out = Vec::new();
    for piece in message.chunks(chunk) {
        stream.push(piece, &mut out);
    }
    if let Ok(outcome) = stream.finish(message, &mut out) {
        assert_eq!(
            outcome.verdict, batch.verdict,
            "{} vs {}",
            outcome.rule, batch.rule
        );
        assert!(
            out == expected,
            "streamed bytes differ from the batch output"
        );
    }
}
