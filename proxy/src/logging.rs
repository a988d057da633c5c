//! The tracing subscriber: JSON lines (journald, SIEM) or text, at the configured level.
//! `RUST_LOG` overrides the level for debugging.

use popgate_policy::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls do nothing (tests, `demo`).
pub fn init(format: LogFormat, level: LogLevel) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("popgate={level},warn", level = level.as_str()))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
