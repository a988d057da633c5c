//! Throughput of `StreamInspector::push` on a 20 MiB message under the spec's example rules,
//! against the batch `inspect`.
//!
//! Run with `cargo run --release -p popgate-inspect --example stream_bench`. The message is a
//! multipart/mixed with a text/html alternative, a small PDF and a 20 MiB base64 attachment,
//! built here; the attachment is `big.bin` (allowed) or `big.exe` (stripped). Chunks are fed
//! as a proxy reads them (16 KiB and 64 KiB); nothing is read from disk.
//!
//! Then the cost of one small message, where per-message work dominates: the proxy bench's
//! 4 KiB text message (`tests/benches/proxy.rs`), an inspector started, fed and finished
//! per message as the relay does, best of five rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use popgate_inspect::{inspect, Rules, StreamInspector, StreamRules, Verdict};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{content_rules, header_rules, name_rules};

fn main() {
    let rules = spec_rules();
    println!(
        "{:<10} {:>10} {:>7} {:>12} {:>14} {:>12} {:>18}",
        "attachment",
        "size",
        "chunk",
        "push MB/s",
        "push+finish",
        "batch MB/s",
        "out after chunk 1"
    );
    for name in ["big.bin", "big.exe"] {
        let message = multipart(20 * 1024 * 1024, name);
        let batch_rate = rate(&message, || {
            black_box(inspect(black_box(&message), &rules, None, "bench"));
        });
        for chunk in [16 * 1024, 64 * 1024] {
            let mut first = 0;
            let push_rate = rate(&message, || {
                let mut stream =
                    StreamInspector::new(&rules, false, "bench").unwrap_or_else(|| {
                        panic!("spec rules stream");
                    });
                let mut out = Vec::with_capacity(chunk * 2);
                for (index, piece) in message.chunks(chunk).enumerate() {
                    stream.push(piece, &mut out);
                    if index == 0 {
                        first = out.len();
                    }
                    // The proxy sends and clears its buffer after every read.
                    out.clear();
                }
                black_box(stream.holding());
            });
            let full_rate = rate(&message, || {
                let mut stream =
                    StreamInspector::new(&rules, false, "bench").unwrap_or_else(|| {
                        panic!("spec rules stream");
                    });
                let mut out = Vec::with_capacity(chunk * 2);
                for piece in message.chunks(chunk) {
                    stream.push(piece, &mut out);
                    out.clear();
                }
                let outcome = stream.finish(&message, &mut out);
                assert!(outcome.is_ok());
                black_box(outcome.ok());
            });
            println!(
                "{name:<10} {:>10} {chunk:>7} {push_rate:>12.0} {full_rate:>14.0} {batch_rate:>12.0} {first:>18}",
                message.len()
            );
        }
    }
    per_small_message(&rules);
}

/// Microseconds per message for a stream inspector started, fed in one chunk and finished.
fn per_small_message(rules: &Rules) {
    let stream_rules =
        StreamRules::new(rules, false).unwrap_or_else(|| panic!("spec rules stream"));
    let message = small_message();
    let mut out = Vec::with_capacity(2 * message.len());
    let rounds = 200_000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                let mut stream = Box::new(stream_rules.inspector("bench"));
                out.clear();
                stream.push(black_box(&message), &mut out);
                black_box(stream.finish_streamed(&mut out).is_ok());
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "\n{} byte text message, new + push + finish: {best:.2} µs per message (best of 5)",
        message.len()
    );
}

/// The proxy bench's small message: a plain header and numbered lines up to 4 KiB.
fn small_message() -> Vec<u8> {
    let mut bytes = b"Message-ID: <bench-7@popgate.test>\r\n\
        Date: Mon, 6 Jan 2025 11:00:00 +0000\r\n\
        From: Sender <sender@example.org>\r\n\
        To: Alice <alice@example.net>\r\n\
        Subject: Small message 7\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        .to_vec();
    let mut line = 0;
    while bytes.len() < 4096 {
        line += 1;
        bytes.extend_from_slice(
            format!(
                "Line {line:03} of message 007: the quick brown fox jumps over the lazy dog.\r\n"
            )
            .as_bytes(),
        );
    }
    bytes
}

fn spec_rules() -> Rules {
    Rules {
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

/// Megabytes (10^6 bytes) per second of `run` over `message`, measured for about a second.
fn rate(message: &[u8], mut run: impl FnMut()) -> f64 {
    run();
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_millis(800) || rounds < 3 {
        run();
        rounds += 1;
    }
    (message.len() as f64 * rounds as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn text_lines(size: usize) -> String {
    let line = "The quick brown fox jumps over the lazy dog -- 0123456789 .,;:!?\r\n";
    line.repeat(size / line.len() + 1)
}

fn base64_lines(size: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(size + size / 38);
    let mut seed = 0x2545_f491_u32;
    while out.len() < size {
        for _ in 0..76 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            out.push(char::from(ALPHABET[(seed % 64) as usize]));
        }
        out.push_str("\r\n");
    }
    out
}

fn multipart(attachment: usize, name: &str) -> Vec<u8> {
    let mut message = String::from(
        "Return-Path: <alice@example.com>\r\nFrom: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_bench\"\r\n\r\n",
    );
    message
        .push_str("--=_bench\r\nContent-Type: multipart/alternative; boundary=\"=_alt\"\r\n\r\n");
    message.push_str("--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    message.push_str(&text_lines(2048));
    message.push_str("--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>");
    message.push_str(&text_lines(2048));
    message.push_str("</p>\r\n--=_alt--\r\n\r\n");
    message.push_str("--=_bench\r\nContent-Type: application/pdf; name=\"small.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    message.push_str(&base64_lines(16 * 1024));
    message.push_str(&format!("--=_bench\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    message.push_str(&base64_lines(attachment));
    message.push_str("--=_bench--\r\n");
    message.into_bytes()
}
