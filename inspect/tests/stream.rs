//! Differential tests: the streaming inspector against the batch `inspect`.
//!
//! For every streamable rule set, every input and every chunking, what `push` and `finish`
//! emit must equal the batch output (`Original` is the message itself) with the same verdict,
//! rule and reason, or `finish` must say `Diverged`, which only malformed inputs may cause.

use std::fs;
use std::path::Path;

use popgate_inspect::{inspect, Output, Rules, StreamInspector, Verdict};

mod common;
mod corpus_files;
use common::{content_rules, header_rules, name_rules};
use corpus_files::eml_files;
use proptest::prelude::*;

/// The spec's example action.
fn spec_rules() -> Rules {
    Rules {
        policy: "POP3-proxy-out".into(),
        action: "POP3-Client.Standard".into(),
        content_types: content_rules(
            Verdict::Allow,
            &[("application/x-msdownload", Verdict::Strip)],
        ),
        file_names: name_rules(
            Verdict::Allow,
            &[("*.exe", Verdict::Strip), ("*.scr", Verdict::Strip)],
        ),
        headers: header_rules(&[("X-Spam-Flag: YES", Verdict::Tag)]),
        ..Rules::default()
    }
}

/// Every streamable rule set the differential tests use.
fn rule_sets() -> Vec<(&'static str, Rules)> {
    let strict = Rules {
        content_types: content_rules(
            Verdict::Strip,
            &[("text/*", Verdict::Allow), ("multipart/*", Verdict::Allow)],
        ),
        file_names: name_rules(Verdict::Strip, &[("*.txt", Verdict::Allow)]),
        headers: header_rules(&[("Subject: *", Verdict::Tag)]),
        spam_tag: "[SPÄM] ".into(),
        ..spec_rules()
    };
    let containers = Rules {
        content_types: content_rules(Verdict::Allow, &[("multipart/*", Verdict::Strip)]),
        file_names: name_rules(Verdict::Allow, &[("*.pdf", Verdict::Strip)]),
        headers: header_rules(&[
            ("From: *", Verdict::Tag),
            ("X-Spam-Flag: YES", Verdict::Allow),
        ]),
        ..spec_rules()
    };
    let quarantine = Rules {
        unparseable: Verdict::Quarantine,
        ..spec_rules()
    };
    vec![
        ("spec", spec_rules()),
        ("default", Rules::default()),
        ("strict", strict),
        ("containers", containers),
        ("quarantine", quarantine),
    ]
}

/// The golden fixtures (inputs and expected outputs) and the integration corpus: all must
/// stream without `Diverged`.
fn well_formed() -> Vec<(String, Vec<u8>)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for dir in [
        manifest.join("tests/fixtures"),
        manifest.join("../tests/corpus"),
    ] {
        for path in eml_files(&dir) {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            inputs.push((path.display().to_string(), bytes));
        }
    }
    for (name, bytes) in generated() {
        inputs.push((name, bytes));
    }
    inputs
}

/// Messages built here: the common shapes and the edge cases of boundary handling.
fn generated() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let header = "From: a@b\r\nSubject: gen\r\nMIME-Version: 1.0\r\n";
    let mixed = |parts: &[&str], boundary: &str, eol: &str| {
        let mut m = format!(
            "{header}Content-Type: multipart/mixed; boundary=\"{boundary}\"{eol}{eol}preamble{eol}"
        );
        for part in parts {
            m.push_str(&format!("--{boundary}{eol}{part}{eol}"));
        }
        m.push_str(&format!("--{boundary}--{eol}epilogue{eol}"));
        m.into_bytes()
    };
    let text = "Content-Type: text/plain\r\n\r\nhello -- world\r\n--not-a-boundary\r\n";
    let exe = "Content-Type: application/octet-stream; name=\"a.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\nTVqQ";
    let empty_body = "Content-Type: application/x-msdownload\r\n";
    let no_headers = "\r\nbody of a part without header fields";
    out.push(("gen: text+exe".into(), mixed(&[text, exe], "XyZ", "\r\n")));
    out.push(("gen: exe first".into(), mixed(&[exe, text], "b", "\r\n")));
    out.push((
        "gen: empty body".into(),
        mixed(&[empty_body, text], "bb", "\r\n"),
    ));
    out.push((
        "gen: no headers".into(),
        mixed(&[no_headers, exe], "bb", "\r\n"),
    ));
    let lf = |s: &str| s.replace("\r\n", "\n");
    out.push((
        "gen: lf".into(),
        mixed(&[&lf(text), &lf(exe), &lf(empty_body)], "=_lf", "\n"),
    ));
    let inner = String::from_utf8(mixed(&[exe, text], "inner", "\r\n")).expect("utf-8");
    let inner_part = inner.replacen(header, "", 1);
    out.push((
        "gen: nested".into(),
        mixed(&[text, &inner_part, exe], "outer", "\r\n"),
    ));
    let scr = "Content-Type: application/octet-stream;\r\n name*0*=utf-8''scr%65en;\r\n name*1=\".scr\"\r\n\r\nMZ";
    out.push(("gen: rfc2231".into(), mixed(&[scr, scr], "q", "\r\n")));
    out.push((
        "gen: single exe".into(),
        format!("{header}Content-Type: application/x-msdownload\r\n\r\nMZ\r\n").into_bytes(),
    ));
    out.push((
        "gen: spam".into(),
        format!("X-Spam-Flag: YES\r\n{header}\r\nbody\r\n").into_bytes(),
    ));
    out.push((
        "gen: no subject".into(),
        b"From: a@b\r\nX-Spam-Flag: yes\r\n\r\nbody\r\n".to_vec(),
    ));
    let mut many = mixed(&[text; 50], "many", "\r\n");
    many.extend_from_slice(&mixed(&[exe], "tail", "\r\n"));
    out.push(("gen: many parts".into(), many));
    out
}

/// Malformed and hostile inputs: `Diverged` is allowed for these.
fn hostile() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let header = "From: a@b\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n";
    let cases: [&str; 16] = [
        "--B\r\nContent-Type: application/octet-stream; name=a.exe\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=41=\r\n--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain\r\n\r\nx--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ--Bx\r\n--B--\r\n",
        "--B--\r\n--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B \r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n",
        "--B\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--BB--\r\n--B--\r\n",
        "--B\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--C--\r\n--B--\r\n",
        "--B\r\nContent-Type: multipart/digest; boundary=C\r\n\r\n--C\r\n\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--C--\r\n--B--\r\n",
        "--B\r\n \r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B--\r\n",
        "--B\r\nContent-Type: multipart/mixed\r\n\r\nx\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain; name=a.exe\r\n\r\nMZ\r\n--B\r",
        "\r\n--B\r\nContent-Type: Multipart/Mixed; boundary=C\r\n\r\n--C\r\n\r\nx\r\n--C--\r\n--B--\r\n",
        "--B\r\nContent-Type: text/plain; name=a.exe\r\nContent-Transfer-Encoding: base64\r\n\r\nTV-qQ\r\n--B--\r\n",
    ];
    for (index, case) in cases.iter().enumerate() {
        out.push((
            format!("hostile {index}"),
            format!("{header}{case}").into_bytes(),
        ));
    }
    out.push(("empty".into(), Vec::new()));
    out.push((
        "garbage".into(),
        b"garbage without colon\r\n\r\n--B".to_vec(),
    ));
    out.push((
        "headers only".into(),
        b"Subject: x\r\nX-Spam-Flag: YES".to_vec(),
    ));
    out.push(("blank first".into(), b"\r\nSubject: x\r\n\r\nb".to_vec()));
    // Found by `stream_vs_batch`: `--XYZ` inside a part's header line sends the batch to
    // mail-parser's reading, where `boundary"` names no boundary (unparseable); the stream
    // did not see it and allowed the message.
    out.push((
        "delimiter inside a part's header line".into(),
        b"Content-Type:multipart/;boundary\"=XYZ\n\n--XYZ\n:--XYZ\n\n--XYZ--\n".to_vec(),
    ));
    out.push((
        "delimiter inside a part's header field".into(),
        format!("{header}--B\r\nContent-Type: text/plain\r\nX-Note: a--B\r\n\r\nx\r\n--B--\r\n")
            .into_bytes(),
    ));
    let mut deep = String::from("From: a@b\r\nContent-Type: multipart/mixed; boundary=b0z\r\n\r\n");
    for level in 1..40 {
        deep.push_str(&format!(
            "--b{}z\r\nContent-Type: multipart/mixed; boundary=b{level}z\r\n\r\n",
            level - 1
        ));
    }
    deep.push_str("--b39z\r\nContent-Type: text/plain; name=x.exe\r\n\r\nMZ\r\n");
    out.push(("deep".into(), deep.into_bytes()));
    // Every prefix of a fixture: truncated in headers, bodies and delimiters.
    let fixture =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strip_and_tag.eml"))
            .expect("fixture");
    for cut in (0..fixture.len()).step_by(7) {
        out.push((
            format!("strip_and_tag cut at {cut}"),
            fixture[..cut].to_vec(),
        ));
    }
    out
}

/// What the batch inspector sends for `message`.
fn batch(message: &[u8], rules: &Rules) -> (Vec<u8>, Verdict, String, String) {
    let result = inspect(message, rules, None, "qid");
    let bytes = match result.output {
        Output::Original => message.to_vec(),
        Output::Rewritten(bytes) => bytes,
        Output::Withhold => panic!("withhold without antivirus"),
    };
    (bytes, result.verdict, result.rule, result.reason)
}

/// Streams `message` in chunks of the given sizes (cycled) and compares with the batch.
/// Returns `Ok(true)` when the stream diverged, `Ok(false)` when it matched, and `Err` on
/// a mismatch.
fn differ(message: &[u8], rules: &Rules, sizes: &[usize]) -> Result<bool, String> {
    differ_counting(message, rules, sizes, &mut 0)
}

/// As [`differ`], adding 1 to `held` when the inspector fell back to the batch.
fn differ_counting(
    message: &[u8],
    rules: &Rules,
    sizes: &[usize],
    held: &mut usize,
) -> Result<bool, String> {
    let Some(mut stream) = StreamInspector::new(rules, false, "qid") else {
        return Err("rules not streamable".into());
    };
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= message.len() {
            break;
        }
        let end = (at + size.max(&1)).min(message.len());
        stream.push(&message[at..end], &mut out);
        at = end;
    }
    *held += usize::from(stream.holding());
    let (expected, verdict, rule, reason) = batch(message, rules);
    // As the proxy finishes: without the whole message when the stream decided alone.
    let finished = match Box::new(stream).finish_streamed(&mut out) {
        Ok(outcome) => Ok(outcome),
        Err(stream) => stream.finish(message, &mut out),
    };
    match finished {
        // Damage with `unparseable` other than `allow` is decided by the batch result, which
        // the bytes already sent cannot match (the proxy ends the session and judges the
        // retry whole): the designed outcome, not a divergence.
        Err(_) if rule == "unparseable" && rules.unparseable != Verdict::Allow => Ok(false),
        Err(_) => Ok(true),
        Ok(outcome) => {
            if out != expected {
                let same = out
                    .iter()
                    .zip(&expected)
                    .take_while(|(a, b)| a == b)
                    .count();
                return Err(format!(
                    "output differs from byte {same}: got {:?}, expected {:?}",
                    String::from_utf8_lossy(&out[same..(same + 80).min(out.len())]),
                    String::from_utf8_lossy(&expected[same..(same + 80).min(expected.len())])
                ));
            }
            if (outcome.verdict, &outcome.rule, &outcome.reason) != (verdict, &rule, &reason) {
                return Err(format!(
                    "outcome {outcome:?}, expected {verdict} / {rule} / {reason}"
                ));
            }
            Ok(false)
        }
    }
}

const CHUNKINGS: [&[usize]; 8] = [
    &[usize::MAX],
    &[1],
    &[2],
    &[3, 5],
    &[7],
    &[64],
    &[1000],
    &[13, 1, 1, 200],
];

#[test]
fn stream_equals_batch_on_well_formed_inputs() {
    let inputs = well_formed();
    let mut runs = 0;
    let mut held = 0;
    let mut failures = Vec::new();
    for (rules_name, rules) in rule_sets() {
        for (name, message) in &inputs {
            for sizes in CHUNKINGS {
                runs += 1;
                let before = held;
                let result = differ_counting(message, &rules, sizes, &mut held);
                if held > before && sizes == [usize::MAX] {
                    eprintln!("held: {rules_name} {name}");
                }
                match result {
                    Ok(false) => {}
                    Ok(true) => failures.push(format!("{rules_name} {name} {sizes:?}: diverged")),
                    Err(e) => failures.push(format!("{rules_name} {name} {sizes:?}: {e}")),
                }
            }
        }
    }
    eprintln!(
        "well-formed: {} inputs, {runs} runs, {held} fell back to the batch",
        inputs.len()
    );
    assert!(inputs.len() >= 50, "only {} inputs", inputs.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn stream_equals_batch_or_diverges_on_hostile_inputs() {
    let inputs = hostile();
    let mut runs = 0;
    let mut diverged = 0;
    let mut held = 0;
    let mut failures = Vec::new();
    for (rules_name, rules) in rule_sets() {
        for (name, message) in &inputs {
            for sizes in CHUNKINGS {
                runs += 1;
                match differ_counting(message, &rules, sizes, &mut held) {
                    Ok(false) => {}
                    Ok(true) => diverged += 1,
                    Err(e) => failures.push(format!("{rules_name} {name} {sizes:?}: {e}")),
                }
            }
        }
    }
    eprintln!(
        "hostile: {} inputs, {runs} runs, {held} fell back to the batch, {diverged} diverged",
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Bytes `push` emitted for `message` fed in chunks of `size`, before `finish`.
fn emitted_by_push(message: &[u8], rules: &Rules, size: usize) -> usize {
    let mut stream = StreamInspector::new(rules, false, "qid").expect("streamable");
    let mut out = Vec::new();
    for chunk in message.chunks(size) {
        stream.push(chunk, &mut out);
    }
    out.len()
}

#[test]
fn allowed_multipart_is_forwarded_as_it_arrives() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let message = fs::read(dir.join("multipart_pdf.eml")).expect("fixture");
    for size in [1, 7, 4096] {
        // Only the epilogue's last bytes after the closing delimiter may wait for `finish`
        // (as many as the closed boundary, which the stream still looks for there).
        let emitted = emitted_by_push(&message, &spec_rules(), size);
        assert!(
            emitted <= message.len() && emitted + 80 >= message.len(),
            "{emitted} of {} bytes emitted",
            message.len()
        );
    }
    // Cut inside the attachment: everything up to a few bytes before the cut is out.
    let cut = message.len() * 2 / 3;
    let sent = emitted_by_push(&message[..cut], &spec_rules(), 512);
    assert!(sent + 16 >= cut, "sent {sent} of {cut}");
}

#[test]
fn stripped_attachment_is_replaced_before_its_body_arrives() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let message = fs::read(dir.join("exe_stripped.eml")).expect("fixture");
    let header = message
        .windows(18)
        .position(|w| w == b"base64\r\n\r\nTVqQAAAB")
        .expect("exe part")
        + 10;
    let mut stream = StreamInspector::new(&spec_rules(), false, "qid").expect("streamable");
    let mut out = Vec::new();
    stream.push(&message[..header + 4], &mut out);
    // The replacement part is out although the exe's body has not been seen.
    let expected = batch(&message, &spec_rules()).0;
    assert!(expected.starts_with(&out));
    assert!(
        out.ends_with(b"matches application/x=2Dmsdownload."),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(!stream.holding());
    stream.push(&message[header + 4..], &mut out);
    let outcome = stream.finish(&message, &mut out).expect("streams");
    assert_eq!(outcome.verdict, Verdict::Strip);
    assert_eq!(out, expected);
}

#[test]
fn forwarded_message_is_streamed_and_its_attachment_stripped() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let message = fs::read(dir.join("nested_scr.eml")).expect("fixture");
    let mut stream = StreamInspector::new(&spec_rules(), false, "qid").expect("streamable");
    let mut out = Vec::new();
    for chunk in message.chunks(16) {
        stream.push(chunk, &mut out);
    }
    assert!(!stream.holding());
    let outcome = stream.finish(&message, &mut out).expect("streams");
    assert_eq!(
        (outcome.verdict, outcome.rule.as_str()),
        (Verdict::Strip, "file_names: *.scr")
    );
    assert_eq!(out, batch(&message, &spec_rules()).0);
}

#[test]
fn unstreamable_rules_are_refused() {
    let deny = Rules {
        file_names: name_rules(Verdict::Allow, &[("*.vbs", Verdict::Deny)]),
        ..spec_rules()
    };
    assert!(StreamInspector::new(&deny, false, "q").is_none());
    assert!(StreamInspector::new(&spec_rules(), true, "q").is_none());
    // `unparseable` streams whatever its verdict (SPEC default: quarantine): damage holds.
    let unparseable = Rules {
        unparseable: Verdict::Quarantine,
        ..spec_rules()
    };
    assert!(StreamInspector::new(&unparseable, false, "q").is_some());
    let header_strip = Rules {
        headers: header_rules(&[("X-Bad: *", Verdict::Strip)]),
        ..spec_rules()
    };
    assert!(StreamInspector::new(&header_strip, false, "q").is_none());
    assert!(StreamInspector::new(&spec_rules(), false, "q").is_some());
}

/// What the mutation test overwrites (one byte) or inserts (longer snippets).
const SNIPPETS: [&[u8]; 24] = [
    b"-",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b":",
    b";",
    b"=",
    b"\"",
    b"a",
    b"B",
    b"*",
    b"--",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"--XyZ",
    b"\r\n--XyZ\r\n",
    b"--b07outer--",
    b"\r\n--t\r\nContent-Type: application/x-msdownload\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=XyZ\r\n",
    b"; name=\"x.exe\"",
    b"\r\n ",
    b"--=_",
];

fn all_inputs() -> Vec<Vec<u8>> {
    well_formed().into_iter().map(|(_, m)| m).collect()
}

proptest! {
    // `PROPTEST_CASES=100000` runs a longer search.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400)
    ))]

    #[test]
    fn random_chunkings_match_the_batch(
        index in 0usize..1000,
        rules_index in 0usize..5,
        sizes in proptest::collection::vec(1usize..300, 1..20),
    ) {
        let inputs = all_inputs();
        let message = &inputs[index % inputs.len()];
        let (_, rules) = &rule_sets()[rules_index];
        let result = differ(message, rules, &sizes);
        prop_assert_eq!(result, Ok(false));
    }

    #[test]
    fn mutated_inputs_match_the_batch_or_diverge(
        index in 0usize..1000,
        rules_index in 0usize..5,
        edits in proptest::collection::vec((0usize..100_000, 0usize..SNIPPETS.len()), 0..6),
        cut in 0usize..100_000,
        sizes in proptest::collection::vec(1usize..100, 1..8),
    ) {
        let inputs = all_inputs();
        let mut message = inputs[index % inputs.len()].clone();
        for (at, snippet) in edits {
            let at = at % (message.len() + 1);
            let snippet = SNIPPETS[snippet];
            if snippet.len() == 1 && at < message.len() {
                message[at] = snippet[0];
            } else {
                message.splice(at..at, snippet.iter().copied());
            }
        }
        if cut % 3 == 0 {
            message.truncate(cut % (message.len() + 1));
        }
        let (_, rules) = &rule_sets()[rules_index];
        let result = differ(&message, rules, &sizes);
        prop_assert!(result.is_ok(), "{:?}", result);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024), size in 1usize..64) {
        let result = differ(&bytes, &spec_rules(), &[size]);
        prop_assert!(result.is_ok(), "{:?}", result);
    }
}

/// One MIME part of a generated message.
#[derive(Debug, Clone)]
enum Node {
    Leaf {
        content_type: &'static str,
        name: Option<&'static str>,
        encoding: &'static str,
        lines: Vec<&'static str>,
    },
    Multipart {
        subtype: &'static str,
        parts: Vec<Node>,
        preamble: bool,
    },
    /// A message/rfc822 part carrying a message whose body is `inner`.
    Message {
        disposition: Option<&'static str>,
        inner: Box<Node>,
    },
}

const LINES: [&str; 10] = [
    "plain text line",
    "-- ",
    "--",
    "---- dashes ----",
    "-- not a boundary",
    ".leading dot",
    "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "caf=C3=A9 soft break=",
    "",
    "x--y",
];

fn node() -> impl Strategy<Value = Node> {
    let leaf = (
        prop::sample::select(vec![
            "text/plain",
            "text/html",
            "application/pdf",
            "application/x-msdownload",
            "application/octet-stream",
            "image/png",
        ]),
        prop::sample::select(vec![
            None,
            Some("name=\"a.exe\""),
            Some("name=b.scr"),
            Some("name=\"c.txt\""),
            Some("name*=utf-8''%65vil.exe"),
            Some("name=\"=?utf-8?B?c2NyZWVuLnNjcg==?=\""),
            Some("name=\"report.pdf\""),
        ]),
        prop::sample::select(vec!["", "base64", "quoted-printable", "7bit"]),
        proptest::collection::vec(prop::sample::select(LINES.to_vec()), 0..6),
    )
        .prop_map(|(content_type, name, encoding, lines)| Node::Leaf {
            content_type,
            name,
            encoding,
            lines,
        });
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            3 => (
                prop::sample::select(vec!["mixed", "alternative", "related"]),
                proptest::collection::vec(inner.clone(), 0..5),
                any::<bool>(),
            )
                .prop_map(|(subtype, parts, preamble)| Node::Multipart {
                    subtype,
                    parts,
                    preamble,
                }),
            1 => (
                prop::sample::select(vec![
                    None,
                    Some("attachment; filename=\"fwd.eml\""),
                    Some("attachment; filename=\"x.exe\""),
                ]),
                inner,
            )
                .prop_map(|(disposition, inner)| Node::Message {
                    disposition,
                    inner: Box::new(inner),
                }),
        ]
    })
}

/// Whether `node` has a message/rfc822 whose message is itself a message/rfc822.
fn double_nested(node: &Node) -> bool {
    match node {
        Node::Leaf { .. } => false,
        Node::Multipart { parts, .. } => parts.iter().any(double_nested),
        Node::Message { inner, .. } => {
            matches!(**inner, Node::Message { .. }) || double_nested(inner)
        }
    }
}

/// Whether mail-parser (configured as the crate does) panics on `message`.
fn parser_panics(message: &[u8]) -> bool {
    let parser = mail_parser::MessageParser::new()
        .with_mime_headers()
        .header_text(mail_parser::HeaderName::Subject)
        .default_header_raw();
    std::panic::catch_unwind(|| parser.parse(message).is_some()).is_err()
}

/// Writes `node` (header fields and body) with boundaries `=_N` numbered by `next`.
fn render(node: &Node, eol: &str, next: &mut usize, out: &mut String) {
    match node {
        Node::Leaf {
            content_type,
            name,
            encoding,
            lines,
        } => {
            out.push_str(&format!("Content-Type: {content_type}"));
            if let Some(name) = name {
                out.push_str(&format!(";{eol} {name}"));
            }
            out.push_str(eol);
            if !encoding.is_empty() {
                out.push_str(&format!("Content-Transfer-Encoding: {encoding}{eol}"));
            }
            out.push_str(eol);
            for line in lines {
                out.push_str(line);
                out.push_str(eol);
            }
            out.push_str("end");
        }
        Node::Multipart {
            subtype,
            parts,
            preamble,
        } => {
            *next += 1;
            let boundary = format!("=_{next}_boundary");
            out.push_str(&format!(
                "Content-Type: multipart/{subtype};{eol} boundary=\"{boundary}\"{eol}{eol}"
            ));
            if *preamble {
                out.push_str(&format!("This is a multi-part message.{eol}"));
            }
            for part in parts {
                out.push_str(&format!("--{boundary}{eol}"));
                render(part, eol, next, out);
                out.push_str(eol);
            }
            out.push_str(&format!("--{boundary}--{eol}"));
        }
        Node::Message { disposition, inner } => {
            out.push_str(&format!("Content-Type: message/rfc822{eol}"));
            if let Some(disposition) = disposition {
                out.push_str(&format!("Content-Disposition: {disposition}{eol}"));
            }
            out.push_str(&format!(
                "{eol}From: inner@example.com{eol}Subject: inner{eol}"
            ));
            render(inner, eol, next, out);
        }
    }
}

/// Whether a multipart of `tree` has no parts.
fn empty_multipart(tree: &Node) -> bool {
    match tree {
        Node::Multipart { parts, .. } => parts.is_empty() || parts.iter().any(empty_multipart),
        Node::Message { inner, .. } => empty_multipart(inner),
        Node::Leaf { .. } => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn generated_messages_stream_like_the_batch(
        tree in node(),
        crlf in any::<bool>(),
        spam in any::<bool>(),
        rules_index in 0usize..5,
        sizes in proptest::collection::vec(1usize..200, 1..6),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut message = format!("From: a@b{eol}Subject: generated{eol}");
        if spam {
            message.push_str(&format!("X-Spam-Flag: YES{eol}"));
        }
        message.push_str(&format!("MIME-Version: 1.0{eol}"));
        render(&tree, eol, &mut 0, &mut message);
        let (_, rules) = &rule_sets()[rules_index];
        let result = differ(message.as_bytes(), rules, &sizes);
        if parser_panics(message.as_bytes()) || double_nested(&tree) || empty_multipart(&tree) {
            // mail-parser's debug assertions and overflow checks fire on some nestings in
            // test builds; the batch then sees an unparseable message, which the stream may
            // not follow. Release builds have neither, but there mail-parser 0.11 loses track
            // of a message/rfc822 directly inside another and the batch walk judges an inner
            // header block as the top-level one (it tags the inner Subject); the stream, which
            // already sent the top-level header, can only report `Diverged`.
            // A multipart without body parts (RFC 2046 requires one) is ambiguous: mail-parser
            // reads no close delimiter before the first part and runs the inner multipart
            // over the rest of the message. The batch judges both readings; the stream, which
            // may have sent parts already, reports `Diverged` when they disagree.
            prop_assert!(result.is_ok(), "{:?}", result);
        } else {
            prop_assert_eq!(result, Ok(false), "{}", message);
        }
    }
}

/// A multipart of `count` small multiparts, each closed before the next opens.
fn many_closed_multiparts(count: usize) -> Vec<u8> {
    let mut message = b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n".to_vec();
    for i in 0..count {
        let inner = format!("inner-{i:04}");
        message.extend_from_slice(
            format!(
                "--outer\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n--{inner}\r\n\
                 Content-Type: text/plain\r\n\r\nx\r\n--{inner}--\r\n"
            )
            .as_bytes(),
        );
    }
    message.extend_from_slice(b"--outer--\r\n");
    message
}

#[test]
fn many_closed_multiparts_go_to_the_batch_walk_with_its_answer() {
    // Each closed boundary is looked for in every later step: past a bound the batch walk
    // (linear in the message) decides instead of the stream (quadratic).
    for (count, holds) in [(10, false), (500, true)] {
        let message = many_closed_multiparts(count);
        for sizes in [&[4096][..], &[7, 300]] {
            let mut held = 0;
            let diverged = differ_counting(&message, &spec_rules(), sizes, &mut held);
            assert_eq!(diverged, Ok(false), "{count} multiparts");
            assert_eq!(held == 1, holds, "{count} multiparts held");
            for (name, rules) in rule_sets() {
                let diverged = differ(&message, &rules, sizes);
                assert_eq!(diverged, Ok(false), "{count} multiparts, rules {name}");
            }
        }
    }
}
