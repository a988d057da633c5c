//! The shape of one log line (SPEC §7): JSON lines with a syslog `priority`, or logfmt.
//!
//! tracing-subscriber's own formats render `?` fields with `Debug`, floats with every digit
//! and a text format that is neither logfmt nor quoted; a SIEM or `journalctl -o json`
//! filter wants stable words and numbers. This formatter writes:
//!
//! ```text
//! json:   {"timestamp":"…Z","level":"INFO","priority":6,"message":"session closed",
//!          "result":"finished",…,"span":{"name":"session","id":3,"client":"…",…}}
//! logfmt: ts=…Z level=info msg="session closed" result=finished … id=3 client=…
//! ```
//! Floats have at most three decimals (durations are milliseconds); fields listed in
//! [`LIST_FIELDS`] whose value is a JSON array of strings stay arrays in JSON (comma-joined
//! in logfmt); strings are escaped (JSON) or quoted when they hold spaces, `=`, quotes or
//! control characters (logfmt). Span fields are formatted once, when recorded.
//! The subscriber itself is installed in `logging.rs`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields whose value is a list: log them as `%list(&items)`.
pub const LIST_FIELDS: [&str; 3] = ["listeners", "errors", "settings"];

/// Renders `items` as a JSON array of strings, for a [`LIST_FIELDS`] field.
pub fn list<T: ToString>(items: &[T]) -> String {
    let strings: Vec<String> = items.iter().map(ToString::to_string).collect();
    serde_json::to_string(&strings).unwrap_or_default()
}

/// The event formatter: JSON lines or logfmt.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    /// JSON lines (`true`) or logfmt.
    pub json: bool,
}

/// The span-field formatter matching a [`LineFormat`].
#[derive(Debug, Clone, Copy)]
pub struct FieldFormat {
    /// JSON members (`"k":v,…`) or logfmt pairs (`k=v …`).
    pub json: bool,
}

/// The syslog priority of a level (RFC 5424: error 3, warning 4, info 6, debug 7).
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        let mut fields = Collector::default();
        event.record(&mut fields);
        let message = fields.take_message();
        let mut span_name = None;
        let mut span_fields = String::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                span_name = Some(span.name());
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>() {
                    if !formatted.fields.is_empty() {
                        if !span_fields.is_empty() {
                            span_fields.push(if self.json { ',' } else { ' ' });
                        }
                        span_fields.push_str(&formatted.fields);
                    }
                }
            }
        }
        let mut line = String::with_capacity(256);
        let now = timestamp();
        if self.json {
            write!(
                line,
                "{{\"timestamp\":\"{now}\",\"level\":\"{}\",\"priority\":{},\"message\":{}",
                level.as_str(),
                priority(level),
                json_string(&message)
            )?;
            let members = fields.render(true);
            if !members.is_empty() {
                line.push(',');
                line.push_str(&members);
            }
            if let Some(name) = span_name {
                write!(line, ",\"span\":{{\"name\":{}", json_string(name))?;
                if !span_fields.is_empty() {
                    line.push(',');
                    line.push_str(&span_fields);
                }
                line.push('}');
            }
            line.push('}');
        } else {
            let level = level.as_str().to_ascii_lowercase();
            write!(
                line,
                "ts={now} level={level} msg={}",
                logfmt_value(&message)
            )?;
            let pairs = fields.render(false);
            for part in [pairs, span_fields] {
                if !part.is_empty() {
                    line.push(' ');
                    line.push_str(&part);
                }
            }
        }
        line.push('\n');
        writer.write_str(&line)
    }
}

impl<'w> FormatFields<'w> for FieldFormat {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut collected = Collector::default();
        fields.record(&mut collected);
        writer.write_str(&collected.render(self.json))
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut collected = Collector::default();
        fields.record(&mut collected);
        let added = collected.render(self.json);
        if added.is_empty() {
            return Ok(());
        }
        if !current.fields.is_empty() {
            current.fields.push(if self.json { ',' } else { ' ' });
        }
        current.fields.push_str(&added);
        Ok(())
    }
}

/// One field's value as recorded.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
}

/// The fields of one event or span, in order.
#[derive(Debug, Default)]
struct Collector {
    fields: Vec<(&'static str, FieldValue)>,
}

impl Collector {
    fn take_message(&mut self) -> String {
        match self.fields.iter().position(|(name, _)| *name == "message") {
            Some(index) => match self.fields.remove(index).1 {
                FieldValue::Text(text) => text,
                other => render_plain(&other),
            },
            None => String::new(),
        }
    }

    fn render(&self, json: bool) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            if !out.is_empty() {
                out.push(if json { ',' } else { ' ' });
            }
            let list = LIST_FIELDS
                .contains(name)
                .then(|| match value {
                    FieldValue::Text(text) => serde_json::from_str::<Vec<String>>(text).ok(),
                    _ => None,
                })
                .flatten();
            if json {
                let _ = write!(out, "{}:", json_string(name));
                match (&list, value) {
                    (Some(items), _) => {
                        out.push_str(&serde_json::to_string(items).unwrap_or_default())
                    }
                    (None, FieldValue::Text(text)) => out.push_str(&json_string(text)),
                    (None, other) => out.push_str(&render_plain(other)),
                }
            } else {
                let text = match (&list, value) {
                    (Some(items), _) => items.join(","),
                    (None, other) => render_plain(other),
                };
                let _ = write!(out, "{name}={}", logfmt_value(&text));
            }
        }
        out
    }

    fn push(&mut self, field: &Field, value: FieldValue) {
        self.fields.push((field.name(), value));
    }
}

impl Visit for Collector {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, FieldValue::Text(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, FieldValue::Text(value.to_owned()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, FieldValue::Unsigned(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, FieldValue::Signed(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, FieldValue::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, FieldValue::Text(value.to_string()));
    }
}

/// A value as plain text (numbers as JSON writes them).
fn render_plain(value: &FieldValue) -> String {
    match value {
        FieldValue::Text(text) => text.clone(),
        FieldValue::Unsigned(n) => n.to_string(),
        FieldValue::Signed(n) => n.to_string(),
        FieldValue::Float(x) => three_decimals(*x),
        FieldValue::Bool(b) => b.to_string(),
    }
}

/// At most three decimals, no trailing zeros: `0.004`, `12.5`, `3`.
fn three_decimals(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_owned();
    }
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_owned()
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A logfmt value: bare when it is one plain word, else quoted with `\"`, `\\` and
/// control characters escaped.
fn logfmt_value(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '"' && c != '=' && c != '\\');
    if bare {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `2026-12-02T01:30:00.123Z`.
fn timestamp() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(json: bool, log: impl FnOnce()) -> String {
        let out = Capture::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(FieldFormat { json })
            .event_format(LineFormat { json })
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn sample() {
        let span = tracing::info_span!("session", id = 3u64, policy = tracing::field::Empty);
        let _enter = span.enter();
        span.record("policy", "relay out");
        tracing::warn!(
            reason = "peer \"x\"\nclosed",
            inspection_ms = 0.004_165_999_999_999_999_6,
            listeners = %list(&["127.0.0.1:110", "[::]:110"]),
            ok = true,
            "session closed"
        );
    }

    #[test]
    fn json_lines_carry_priority_rounded_floats_arrays_and_span_fields() {
        let text = capture(true, sample);
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["priority"], 4);
        assert_eq!(line["message"], "session closed");
        assert_eq!(line["reason"], "peer \"x\"\nclosed");
        assert_eq!(line["inspection_ms"], 0.004);
        assert_eq!(
            line["listeners"],
            serde_json::json!(["127.0.0.1:110", "[::]:110"])
        );
        assert_eq!(line["ok"], true);
        assert_eq!(line["span"]["name"], "session");
        assert_eq!(line["span"]["id"], 3);
        assert_eq!(line["span"]["policy"], "relay out");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn logfmt_quotes_what_needs_it_and_escapes_control_characters() {
        let text = capture(false, sample);
        let line = text.trim_end_matches('\n');
        assert!(line.starts_with("ts="), "{line}");
        assert!(
            line.contains(" level=warn msg=\"session closed\" reason=\"peer \\\"x\\\"\\nclosed\" inspection_ms=0.004 listeners=127.0.0.1:110,[::]:110 ok=true id=3 policy=\"relay out\""),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn floats_keep_at_most_three_decimals() {
        assert_eq!(three_decimals(0.0041659999999999996), "0.004");
        assert_eq!(three_decimals(12.5), "12.5");
        assert_eq!(three_decimals(3.0), "3");
        assert_eq!(three_decimals(-0.0001), "0");
    }
}
