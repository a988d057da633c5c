//! Golden fixtures: `fixtures/NAME.eml` with `NAME.expected` (verdict, rule, output kind and
//! optional rule overrides) and, for rewrites, the exact expected bytes in `NAME.out.eml`.
//!
//! A mismatch writes the actual output to `NAME.actual` beside the fixture; the test fails if
//! no fixture ran. To accept a reviewed `.actual`, rename it to `.out.eml`.

use std::fs;
use std::path::{Path, PathBuf};

use popgate_inspect::{inspect, Output, Oversize, Rules, ScanError, ScanResult, Verdict};

mod common;
use common::{content_rules, header_rules, name_rules};

/// The spec's example action, with a deny and a quarantine rule added for coverage.
pub fn standard_rules() -> Rules {
    Rules {
        policy: "POP3-proxy-out".into(),
        action: "POP3-Client.Standard".into(),
        content_types: content_rules(
            Verdict::Allow,
            &[("application/x-msdownload", Verdict::Strip)],
        ),
        file_names: name_rules(
            Verdict::Allow,
            &[
                ("*.exe", Verdict::Strip),
                ("*.scr", Verdict::Strip),
                ("*.vbs", Verdict::Deny),
                ("*.jar", Verdict::Quarantine),
            ],
        ),
        headers: header_rules(&[("X-Spam-Flag: YES", Verdict::Tag)]),
        ..Rules::default()
    }
}

fn verdict_named(name: &str) -> Verdict {
    match name {
        "allow" => Verdict::Allow,
        "tag" => Verdict::Tag,
        "strip" => Verdict::Strip,
        "deny" => Verdict::Deny,
        "quarantine" => Verdict::Quarantine,
        "tempfail" => Verdict::Tempfail,
        other => panic!("unknown verdict {other:?}"),
    }
}

struct Expected {
    verdict: Verdict,
    rule: String,
    output: String,
    rules: Rules,
    scan: Option<ScanResult>,
}

fn read_expected(path: &Path) -> Expected {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut expected = Expected {
        verdict: Verdict::Allow,
        rule: String::new(),
        output: String::new(),
        rules: standard_rules(),
        scan: None,
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        match key {
            "verdict" => expected.verdict = verdict_named(value),
            "rule" => expected.rule = value.to_owned(),
            "output" => expected.output = value.to_owned(),
            "max_message_size" => expected.rules.max_message_size = value.parse().expect("size"),
            "oversize" => {
                expected.rules.oversize = match value {
                    "deny" => Oversize::Deny,
                    _ => Oversize::Allow,
                }
            }
            "unparseable" => expected.rules.unparseable = verdict_named(value),
            "scan" => {
                expected.scan = Some(match value.split_once(' ') {
                    Some(("virus", name)) => ScanResult::Virus(name.to_owned()),
                    _ => ScanResult::Failed(ScanError::TimedOut),
                })
            }
            other => panic!("{}: unknown key {other:?}", path.display()),
        }
    }
    expected
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".eml") && !name.ends_with(".out.eml")
        })
        .collect();
    paths.sort();
    paths
}

fn with_suffix(eml: &Path, suffix: &str) -> PathBuf {
    let stem = eml
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 name");
    eml.with_file_name(format!("{stem}{suffix}"))
}

#[test]
fn golden_fixtures() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for eml in fixtures() {
        ran += 1;
        let message = fs::read(&eml).expect("read fixture");
        let expected = read_expected(&with_suffix(&eml, ".expected"));
        let result = inspect(&message, &expected.rules, expected.scan.as_ref(), "test-id");
        let name = eml.display().to_string();
        if result.verdict != expected.verdict || result.rule != expected.rule {
            failures.push(format!(
                "{name}: got {} / {:?} ({}), expected {} / {:?}",
                result.verdict, result.rule, result.reason, expected.verdict, expected.rule
            ));
        }
        let actual_path = with_suffix(&eml, ".actual");
        match (&result.output, expected.output.as_str()) {
            (Output::Original, "original") | (Output::Withhold, "withhold") => {}
            (Output::Rewritten(bytes), "rewritten") => {
                let out_path = with_suffix(&eml, ".out.eml");
                if fs::read(&out_path).ok().as_deref() != Some(bytes.as_slice()) {
                    fs::write(&actual_path, bytes).expect("write .actual");
                    failures.push(format!(
                        "{name}: output differs, see {}",
                        actual_path.display()
                    ));
                }
                check_rewritten(&name, &message, bytes, &expected, &mut failures);
            }
            (output, kind) => {
                if let Output::Rewritten(bytes) = output {
                    fs::write(&actual_path, bytes).expect("write .actual");
                }
                failures.push(format!("{name}: output {output:?} is not {kind}"));
            }
        }
    }
    assert!(ran > 0, "no fixture ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Properties every rewrite has, whatever its exact bytes.
fn check_rewritten(
    name: &str,
    original: &[u8],
    output: &[u8],
    expected: &Expected,
    failures: &mut Vec<String>,
) {
    if mail_parser::MessageParser::default()
        .parse(output)
        .is_none()
    {
        failures.push(format!("{name}: output does not parse"));
    }
    let crlf = original.windows(2).any(|w| w == b"\r\n");
    let bare_lf = output
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || output[i - 1] != b'\r'));
    if crlf && bare_lf {
        failures.push(format!("{name}: CRLF input gave bare LF output"));
    }
    if expected.verdict == Verdict::Strip || expected.verdict == Verdict::Tag {
        // A rewritten message is clean under the same rules: nothing left to strip.
        let again = inspect(output, &expected.rules, None, "test-id");
        if again.verdict > Verdict::Tag {
            failures.push(format!(
                "{name}: rewritten output still gets {}",
                again.verdict
            ));
        }
    }
}
