//! What one log line costs on a runtime thread (issue 16): the per-message `message
//! inspected` line inside a session span, formatted by `log_line.rs` and handed to a writer
//! that keeps nothing, as JSON and as logfmt. Prints nanoseconds per line (median of 9
//! runs of 50,000 lines); a machine-independent comparison needs two builds run back to back.
//!
//! ```text
//! cargo bench -p popgate --bench log_lines
//! ```

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use popgate::log_line::{FieldFormat, LineFormat};
use tracing::field;

const LINES: u32 = 50_000;
const RUNS: usize = 9;

/// Counts what it is given, like the queue hand-off minus the channel.
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += black_box(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines(count: u32) {
    let span = tracing::info_span!(
        "session",
        id = 7u64,
        client = %"10.1.0.2:40326",
        orig_dst = %"10.2.0.2:110",
        policy = field::Empty,
        action = field::Empty,
        user = field::Empty,
    );
    span.record("policy", "by-domain");
    span.record("action", field::display("Intercept"));
    span.record("user", "alice");
    let _enter = span.enter();
    for number in 0..count {
        tracing::info!(
            number,
            size = 4_213u64,
            message_id = %"<corpus-1@popgate.test>",
            verdict = "allow",
            rule = %"none",
            reason = %"no rule matched",
            ambiguous = None::<&str>,
            streamed = true,
            inspection_ms = 0.041_f64,
            "message inspected"
        );
    }
}

fn measure(json: bool) -> f64 {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(|| Sink(0))
        .fmt_fields(FieldFormat { json })
        .event_format(LineFormat { json })
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            tracing::dispatcher::with_default(&dispatch, || lines(LINES));
            started.elapsed().as_nanos() as f64 / f64::from(LINES)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn main() {
    for (name, json) in [("json", true), ("logfmt", false)] {
        println!(
            "{name:7} {:8.0} ns per `message inspected` line",
            measure(json)
        );
    }
}
