//! Text escaping and timestamps for log lines (`log_line.rs`), written straight into the
//! line being built: one line per downloaded message runs on the runtime threads, so
//! nothing here allocates.

use std::cell::RefCell;
use std::fmt::{self, Write};

/// Writes `text` as a JSON string, escaped as serde_json escapes it (`\"`, `\\`, the
/// short escapes, `\u00XX` for other control characters).
pub fn write_json_string(out: &mut impl Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&text[plain_from..at])?;
        if escape.is_empty() {
            write!(out, "\\u{byte:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        plain_from = at + 1;
    }
    out.write_str(&text[plain_from..])?;
    out.write_char('"')
}

/// Writes a logfmt value: bare when it is one plain word, else quoted with `\"`, `\\` and
/// control characters escaped.
pub fn write_logfmt_value(out: &mut impl Write, text: &str) -> fmt::Result {
    let bare = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '"' && c != '=' && c != '\\');
    if bare {
        return out.write_str(text);
    }
    out.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Writes the current UTC time as `2026-12-02T01:30:00.123Z`. The part up to the seconds
/// is formatted once per second per thread.
pub fn write_timestamp(out: &mut impl Write) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = time::OffsetDateTime::now_utc();
    let second = now.unix_timestamp();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            cached.1 = now.format(&format).unwrap_or_default();
            cached.0 = second;
        }
        out.write_str(&cached.1)
    })?;
    write!(out, ".{:03}Z", now.millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "peer \"x\"\nclosed",
            "tab\there\\ and \r\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "ünïcödé ✓ <>&'",
        ] {
            let mut out = String::new();
            write_json_string(&mut out, text).unwrap();
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let mut out = String::new();
        write_timestamp(&mut out).unwrap();
        write_timestamp(&mut out).unwrap();
        let (first, second) = out.split_at(out.len() / 2);
        for stamp in [first, second] {
            assert_eq!(stamp.len(), "2026-12-02T01:30:00.123Z".len(), "{stamp}");
            let parsed =
                time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
            assert!(parsed.is_ok(), "{stamp}");
        }
    }
}
