//! The tracing subscriber: JSON lines (journald, SIEM) or logfmt text, at the configured
//! level; the line shapes are in `log_line.rs`.
//! `RUST_LOG` overrides the level for debugging.

use popgate_policy::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

use crate::log_line::{FieldFormat, LineFormat};

/// Installs the global subscriber; later calls do nothing (tests, `demo`).
pub fn init(format: LogFormat, level: LogLevel) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("popgate={level},warn", level = level.as_str()))
    });
    let json = format == LogFormat::Json;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .fmt_fields(FieldFormat { json })
        .event_format(LineFormat { json })
        .try_init();
}
