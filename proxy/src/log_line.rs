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

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::log_text::{write_json_string, write_logfmt_value, write_timestamp};

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
    /// Writes the line straight into tracing's per-thread buffer: fields are escaped as
    /// they are visited, into two scratch strings reused by the thread (one line per
    /// downloaded message runs on the runtime threads, issue 16).
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        thread_local! {
            static SCRATCH: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
        }
        SCRATCH.with(|scratch| {
            // A `Debug` value that logs while being formatted finds the scratch taken.
            let mut own = (String::new(), String::new());
            let mut borrowed = scratch.try_borrow_mut().ok();
            let (message, fields) = match borrowed.as_deref_mut() {
                Some((message, fields)) => (message, fields),
                None => (&mut own.0, &mut own.1),
            };
            message.clear();
            fields.clear();
            event.record(&mut Renderer::new(self.json, fields, Some(message)));
            self.write_line(ctx, &mut writer, *event.metadata().level(), message, fields)
        })
    }
}

impl LineFormat {
    fn write_line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: &mut Writer<'_>,
        level: Level,
        message: &str,
        fields: &str,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let separator = if self.json { ',' } else { ' ' };
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            write_timestamp(writer)?;
            write!(
                writer,
                "\",\"level\":\"{}\",\"priority\":{},\"message\":",
                level.as_str(),
                priority(level)
            )?;
            write_json_string(writer, message)?;
        } else {
            writer.write_str("ts=")?;
            write_timestamp(writer)?;
            let level = match level {
                Level::ERROR => "error",
                Level::WARN => "warn",
                Level::INFO => "info",
                Level::DEBUG => "debug",
                Level::TRACE => "trace",
            };
            write!(writer, " level={level} msg=")?;
            write_logfmt_value(writer, message)?;
        }
        if !fields.is_empty() {
            writer.write_char(separator)?;
            writer.write_str(fields)?;
        }
        // The innermost span names the `span` object; every span's fields go in it.
        let innermost = ctx.event_scope().and_then(|mut scope| scope.next());
        if let (Some(innermost), Some(scope)) = (innermost, ctx.event_scope()) {
            if self.json {
                writer.write_str(",\"span\":{\"name\":")?;
                write_json_string(writer, innermost.name())?;
            }
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(formatted) = extensions.get::<FormattedFields<N>>() {
                    if !formatted.fields.is_empty() {
                        writer.write_char(separator)?;
                        writer.write_str(&formatted.fields)?;
                    }
                }
            }
            if self.json {
                writer.write_char('}')?;
            }
        }
        if self.json {
            writer.write_char('}')?;
        }
        writer.write_char('\n')
    }
}

impl<'w> FormatFields<'w> for FieldFormat {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut rendered = String::new();
        fields.record(&mut Renderer::new(self.json, &mut rendered, None));
        writer.write_str(&rendered)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        fields.record(&mut Renderer::new(self.json, &mut added, None));
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

/// Renders fields as they are visited: JSON members (`"k":v,…`) or logfmt pairs
/// (`k=v …`) appended to `out`; the `message` field goes to `message` when given.
struct Renderer<'a> {
    json: bool,
    out: &'a mut String,
    message: Option<&'a mut String>,
    /// A logfmt value is quoted or not by what it holds: formatted here first.
    value: String,
}

impl<'a> Renderer<'a> {
    fn new(json: bool, out: &'a mut String, message: Option<&'a mut String>) -> Self {
        Renderer {
            json,
            out,
            message,
            value: String::new(),
        }
    }

    fn key(&mut self, name: &str) {
        if !self.out.is_empty() {
            self.out.push(if self.json { ',' } else { ' ' });
        }
        if self.json {
            let _ = write_json_string(self.out, name);
            self.out.push(':');
        } else {
            self.out.push_str(name);
            self.out.push('=');
        }
    }

    /// A number, `true`/`false`: the same in both formats.
    fn plain(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if let Some(message) = self.message_for(field) {
            let _ = message.write_fmt(value);
            return;
        }
        self.key(field.name());
        let _ = self.out.write_fmt(value);
    }

    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if let Some(message) = self.message_for(field) {
            let _ = message.write_fmt(value);
            return;
        }
        let name = field.name();
        self.value.clear();
        let _ = self.value.write_fmt(value);
        let list = LIST_FIELDS
            .contains(&name)
            .then(|| serde_json::from_str::<Vec<String>>(&self.value).ok())
            .flatten();
        self.key(name);
        let _ = match (list, self.json) {
            (Some(items), true) => {
                self.out
                    .push_str(&serde_json::to_string(&items).unwrap_or_default());
                Ok(())
            }
            (Some(items), false) => write_logfmt_value(self.out, &items.join(",")),
            (None, true) => write_json_string(self.out, &self.value),
            (None, false) => write_logfmt_value(self.out, &self.value),
        };
    }

    fn message_for(&mut self, field: &Field) -> Option<&mut String> {
        if field.name() == "message" {
            self.message.as_deref_mut()
        } else {
            None
        }
    }
}

impl Visit for Renderer<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.plain(field, format_args!("{}", three_decimals(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, format_args!("{value}"));
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
    fn a_line_is_one_json_object_in_field_order_with_the_innermost_span_named() {
        let text = capture(true, || {
            let outer = tracing::info_span!("listener", port = 995u64);
            let _outer = outer.enter();
            sample();
        });
        let (_, rest) = text.split_once("\",\"level\"").unwrap();
        assert_eq!(
            rest,
            ":\"WARN\",\"priority\":4,\"message\":\"session closed\",\
             \"reason\":\"peer \\\"x\\\"\\nclosed\",\"inspection_ms\":0.004,\
             \"listeners\":[\"127.0.0.1:110\",\"[::]:110\"],\"ok\":true,\
             \"span\":{\"name\":\"session\",\"port\":995,\"id\":3,\"policy\":\"relay out\"}}\n"
        );
    }

    #[test]
    fn floats_keep_at_most_three_decimals() {
        assert_eq!(three_decimals(0.0041659999999999996), "0.004");
        assert_eq!(three_decimals(12.5), "12.5");
        assert_eq!(three_decimals(3.0), "3");
        assert_eq!(three_decimals(-0.0001), "0");
    }
}
