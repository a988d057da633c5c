//! Throughput of `inspect` on an in-memory corpus, for the allow and the strip path.
//!
//! Run with `cargo run --release -p popgate-inspect --example inspect_bench`. The corpus is
//! built here (a plain message, a multipart with attachments, a nested message/rfc822 and a
//! 20 MiB message with a base64 attachment); nothing is read from disk.

use std::hint::black_box;
use std::time::{Duration, Instant};

use popgate_inspect::{inspect, restuff_into, unstuff_cow, Output, Rules, Verdict};

#[path = "../tests/common/mod.rs"]
mod common;
use common::name_rules;

fn main() {
    let corpus = [
        ("plain 4 KiB", plain(4 * 1024)),
        ("multipart 300 KiB", multipart(300 * 1024, "data.bin")),
        ("nested rfc822 300 KiB", nested(300 * 1024)),
        ("base64 20 MiB", multipart(20 * 1024 * 1024, "big.bin")),
    ];
    let allow = Rules::default();
    let strip = Rules {
        file_names: name_rules(Verdict::Allow, &[("*.bin", Verdict::Strip)]),
        ..Rules::default()
    };
    println!(
        "{:<24} {:>10} {:>14} {:>14} {:>14}",
        "message", "size", "allow MB/s", "strip MB/s", "restuff MB/s"
    );
    for (name, message) in &corpus {
        let allow_rate = rate(message, || {
            let result = inspect(black_box(message), &allow, None, "bench");
            assert_eq!(result.output, Output::Original);
        });
        let strip_rate = rate(message, || {
            let result = inspect(black_box(message), &strip, None, "bench");
            assert!(name.starts_with("plain") || matches!(result.output, Output::Rewritten(_)));
        });
        let stuff_rate = rate(message, || {
            let unstuffed = unstuff_cow(black_box(message));
            let mut out = Vec::with_capacity(message.len() + 16);
            restuff_into(&unstuffed, &mut out);
            black_box(out);
        });
        println!(
            "{name:<24} {:>10} {allow_rate:>14.0} {strip_rate:>14.0} {stuff_rate:>14.0}",
            message.len()
        );
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

fn headers(subject: &str, content_type: &str) -> String {
    format!(
        "Return-Path: <alice@example.com>\r\nReceived: from mx.example.com by pop.example.net; Mon, 1 Jan 2024 12:00:00 +0000\r\nFrom: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: {subject}\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\nMessage-ID: <{subject}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    )
}

fn text_lines(size: usize) -> String {
    let line = "The quick brown fox jumps over the lazy dog. 0123456789 .,;:!?\r\n";
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

fn plain(size: usize) -> Vec<u8> {
    let mut message = headers("plain", "text/plain; charset=utf-8");
    message.push_str(&text_lines(size));
    message.into_bytes()
}

fn multipart(attachment: usize, name: &str) -> Vec<u8> {
    let mut message = headers("multipart", "multipart/mixed; boundary=\"=_bench\"");
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

fn nested(attachment: usize) -> Vec<u8> {
    let inner = String::from_utf8(multipart(attachment, "inner.bin")).unwrap_or_default();
    let mut message = headers("nested", "multipart/mixed; boundary=\"=_outer\"");
    message
        .push_str("--=_outer\r\nContent-Type: text/plain\r\n\r\nForwarded message attached.\r\n");
    message.push_str("--=_outer\r\nContent-Type: message/rfc822\r\n\r\n");
    message.push_str(&inner);
    message.push_str("\r\n--=_outer--\r\n");
    message.into_bytes()
}
