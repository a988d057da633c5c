//! The tracing subscriber: JSON lines (journald, SIEM) or logfmt text, at the configured
//! level; the line shapes are in `log_line.rs`.
//! Lines are written without blocking a runtime thread (`log_writer.rs`). `RUST_LOG` overrides the
//! level for debugging.

use popgate_policy::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

use crate::log_line::{FieldFormat, LineFormat};
use crate::log_writer::NonBlocking;

/// Installs the global subscriber; later calls do nothing (tests, `demo`). `privileges` is
/// the process's privilege plan: the log thread confines itself like a runtime thread.
pub fn init(format: LogFormat, level: LogLevel, privileges: crate::privileges::Plan) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("popgate={level},warn", level = level.as_str()))
    });
    let json = format == LogFormat::Json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(FieldFormat { json })
        .event_format(LineFormat { json });
    // Off the runtime threads when the writer thread starts; directly otherwise.
    let _ = match NonBlocking::stderr(privileges) {
        Ok(writer) => builder.with_writer(writer).try_init(),
        Err(_) => builder.with_writer(std::io::stderr).try_init(),
    };
}
