//! Byte-exactness of `strip`, the allow path, and hostile or malformed input.

use std::fs;
use std::path::Path;

use mail_parser::{MessageParser, MimeHeaders};
use popgate_inspect::{inspect, Output, Rules, Verdict};

mod common;
use common::{content_rules, header_rules, name_rules};
use proptest::prelude::*;

fn rules() -> Rules {
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

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rewritten(output: Output) -> Vec<u8> {
    match output {
        Output::Rewritten(bytes) => bytes,
        other => panic!("expected a rewrite, got {other:?}"),
    }
}

#[test]
fn strip_replaces_exactly_the_part_between_its_boundaries() {
    let original = fixture("exe_stripped.eml");
    let result = inspect(&original, &rules(), None, "id");
    assert_eq!(result.verdict, Verdict::Strip);
    let output = rewritten(result.output);

    let prefix = original
        .iter()
        .zip(&output)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = original
        .iter()
        .rev()
        .zip(output.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    // The first differing byte is where the exe part's header started.
    let replaced = &original[prefix..original.len() - suffix];
    let inserted = &output[prefix..output.len() - suffix];
    assert!(
        original[..prefix].ends_with(b"\r\n--XyZ\r\nContent-Type: "),
        "prefix"
    );
    assert!(replaced.starts_with(b"application/x-msdownload; name=\"invoice.exe\"\r\n"));
    assert!(replaced.ends_with(b"/f7/\r\n"));
    assert!(
        original[original.len() - suffix..].starts_with(b"\r\n--XyZ\r\nContent-Type: text/plain")
    );
    assert!(inserted.starts_with(b"text/plain; charset=utf-8\r\n"));

    let parsed = MessageParser::default()
        .parse(&output)
        .expect("output parses");
    assert!(parsed
        .parts
        .iter()
        .all(|p| p.attachment_name() != Some("invoice.exe")));
    let texts: Vec<&str> = parsed
        .parts
        .iter()
        .filter_map(|p| p.text_contents())
        .collect();
    assert!(
        texts.iter().any(|t| t
            .starts_with("The attachment invoice.exe was removed by POP3-proxy-out: content type")),
        "{texts:?}"
    );
    assert_eq!(texts.iter().filter(|t| t.contains("Regards")).count(), 1);
}

#[test]
fn allowed_message_is_not_copied() {
    let original = fixture("multipart_pdf.eml");
    let result = inspect(&original, &rules(), None, "id");
    assert_eq!(
        (result.verdict, result.output),
        (Verdict::Allow, Output::Original)
    );
}

fn many_parts(count: usize, last_name: &str) -> Vec<u8> {
    let mut m =
        b"From: a@b\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n".to_vec();
    for i in 0..count {
        m.extend_from_slice(
            format!("--B\r\nContent-Type: text/plain; name=p{i}.txt\r\n\r\npart {i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(format!("--B\r\nContent-Type: application/octet-stream; name={last_name}\r\n\r\nMZ\r\n--B--\r\n").as_bytes());
    m
}

#[test]
fn ten_thousand_parts() {
    let message = many_parts(10_000, "last.exe");
    let result = inspect(&message, &rules(), None, "id");
    assert_eq!(
        (result.verdict, result.rule.as_str()),
        (Verdict::Strip, "file_names: *.exe")
    );
    let output = rewritten(result.output);
    assert!(output.starts_with(&message[..message.len() - 200]));
}

fn nested_messages(depth: usize) -> Vec<u8> {
    let mut inner = b"Content-Type: application/octet-stream; name=deep.scr\r\n\r\nMZ\r\n".to_vec();
    for level in 0..depth {
        let boundary = format!("L{level}x");
        let mut wrapped = format!(
            "Subject: level {level}\r\nContent-Type: multipart/mixed; boundary={boundary}\r\n\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        )
        .into_bytes();
        wrapped.extend_from_slice(&inner);
        wrapped.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        inner = wrapped;
    }
    let mut message = b"From: a@b\r\n".to_vec();
    message.extend_from_slice(&inner);
    message
}

#[test]
fn nesting_one_hundred_deep() {
    let message = nested_messages(100);
    let result = inspect(&message, &rules(), None, "id");
    assert!(
        result.verdict == Verdict::Strip || result.rule == "unparseable",
        "{result:?}"
    );
    if result.verdict == Verdict::Strip {
        let output = rewritten(result.output);
        assert!(!output.windows(13).any(|w| w == b"name=deep.scr"));
        assert_eq!(
            inspect(&output, &rules(), None, "id").verdict,
            Verdict::Allow
        );
    }
}

#[test]
fn nesting_multipart_ten_thousand_deep_does_not_overflow() {
    let depth = 10_000;
    let mut message = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n".to_vec();
    for level in 1..depth {
        message.extend_from_slice(
            format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=b{level}\r\n\r\n",
                level - 1
            )
            .as_bytes(),
        );
    }
    message.extend_from_slice(
        format!(
            "--b{}\r\nContent-Type: text/plain; name=x.exe\r\n\r\nMZ\r\n",
            depth - 1
        )
        .as_bytes(),
    );
    let result = inspect(&message, &rules(), None, "id");
    assert!(
        result.verdict == Verdict::Strip || result.rule == "unparseable",
        "{result:?}"
    );
}

#[test]
fn huge_header_field() {
    let mut message = b"From: a@b\r\nX-Big: ".to_vec();
    message.extend(std::iter::repeat_n(b'a', 100 * 1024));
    message.extend_from_slice(b"\r\nSubject: s\r\nX-Spam-Flag: YES\r\n\r\nbody\r\n");
    let result = inspect(&message, &rules(), None, "id");
    assert_eq!(result.verdict, Verdict::Tag);
    let output = rewritten(result.output);
    assert!(output.windows(15).any(|w| w == b"Subject: [SPAM]"));
    assert_eq!(output.len(), message.len() + "[SPAM] ".len());
}

#[test]
fn long_file_name_is_cut_in_the_text() {
    let name = format!("{}.exe", "x".repeat(50_000));
    let message = many_parts(0, &name);
    let result = inspect(&message, &rules(), None, "id");
    assert_eq!(result.verdict, Verdict::Strip);
    assert!(rewritten(result.output).len() < message.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let strict = Rules { unparseable: Verdict::Deny, ..rules() };
        let _ = inspect(&bytes, &rules(), None, "id");
        let result = inspect(&bytes, &strict, None, "id");
        if let Output::Rewritten(output) = result.output {
            prop_assert!(!output.is_empty());
        }
    }

    #[test]
    fn mutated_messages_never_panic_and_strip_stays_local(
        cut in 0usize..2000,
        edits in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
    ) {
        let mut message = fixture("nested_scr.eml");
        for (at, byte) in edits {
            let len = message.len();
            message[at % len] = byte;
        }
        message.truncate(cut.max(1).min(message.len()));
        let result = inspect(&message, &rules(), None, "id");
        if let (Verdict::Strip, Output::Rewritten(output)) = (result.verdict, &result.output) {
            // The header block is never touched by a part strip.
            let header_end = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
            prop_assert_eq!(&output[..header_end.min(output.len())], &message[..header_end.min(output.len())]);
        }
    }
}

#[test]
fn message_nesting_ten_thousand_deep_does_not_overflow() {
    let message = nested_messages(10_000);
    let result = inspect(&message, &rules(), None, "id");
    assert!(
        result.verdict == Verdict::Strip || result.rule == "unparseable",
        "{result:?}"
    );
}
