//! The inspection seam: what the client receives for a RETR or TOP body (SPEC §4 verdicts).
//!
//! The pump collects the body ([`CollectedMessage`]); this module scans it with clamd when
//! the action asks, runs `popgate_inspect::inspect` off the async threads, writes the
//! original to `quarantine/` when the verdict says so, cuts an inspected TOP down to what
//! the client asked for, and hands the core its [`Delivery`]. Anything that goes wrong on
//! our side withholds the message (`-ERR [SYS/TEMP]`): it stays on the server, never lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use popgate_inspect::{Inspection, Output, Rules, ScanError, ScanResult, StreamInspector, Verdict};
use popgate_policy::{Clamd, Policy};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::message_buffer::MessageBuffer;
use super::streaming::{FinishError, Streaming};
use crate::metrics;
use crate::pop3::body::without_terminator;
use crate::pop3::{Delivery, Session};

/// A RETR/TOP body from the server, dot-stuffed, terminator line included.
#[derive(Debug, Default)]
pub struct CollectedMessage {
    /// The message number the client asked for.
    pub number: u32,
    /// For a TOP: the body lines the client asked for.
    pub top_lines: Option<u32>,
    /// The bytes as the server sent them.
    pub body: MessageBuffer,
    /// Set when the message streams to the client as it arrives.
    pub stream: Option<Box<Streaming>>,
}

impl CollectedMessage {
    /// An empty message about to be collected.
    pub fn new(number: u32, top_lines: Option<u32>) -> CollectedMessage {
        CollectedMessage {
            number,
            top_lines,
            body: MessageBuffer::default(),
            stream: None,
        }
    }
}

/// How one proxy action inspects, prepared once per route.
#[derive(Debug)]
pub struct InspectionPlan {
    rules: Rules,
    antivirus: Option<Antivirus>,
    quarantine_dir: PathBuf,
    /// No verdict can need the whole message: RETR bodies stream (see `streaming.rs`).
    streams: bool,
}

#[derive(Debug)]
struct Antivirus {
    clamd: Clamd,
    timeout: Duration,
}

/// Large parses run on the blocking pool; at most this many at once keeps memory bounded
/// when many sessions download big messages together.
static INSPECTIONS: Semaphore = Semaphore::const_new(4);

/// Messages up to this size are judged on the session's own thread.
const INLINE_LIMIT: usize = 64 * 1024;

/// Makes quarantine ids unique within the process (with the time and pid: across restarts).
static NEXT_QUARANTINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl InspectionPlan {
    /// The plan for `policy`'s action, or `None` when the action cannot change a message
    /// (no rules, antivirus off): bodies then stream through without being collected.
    pub fn for_policy(policy: &Policy, quarantine_dir: PathBuf) -> Option<Arc<InspectionPlan>> {
        let action = policy.action();
        let antivirus = action.antivirus();
        let passive = action.content_types().rules().is_empty()
            && action.content_types().default_verdict() == popgate_policy::Verdict::Allow
            && action.file_names().rules().is_empty()
            && action.file_names().default_verdict() == popgate_policy::Verdict::Allow
            && action.headers().rules().is_empty()
            && action.unparseable() == popgate_policy::Verdict::Allow
            && !antivirus.enabled();
        if passive {
            return None;
        }
        let rules = Rules::for_action(policy.name(), action);
        let streams = rules.oversize == popgate_inspect::Oversize::Allow
            && StreamInspector::new(&rules, antivirus.enabled(), "").is_some();
        Some(Arc::new(InspectionPlan {
            rules,
            antivirus: antivirus.enabled().then(|| Antivirus {
                clamd: antivirus.clamd().clone(),
                timeout: antivirus.timeout(),
            }),
            quarantine_dir,
            streams,
        }))
    }

    /// The size past which a body is not collected (`max_message_size`). A streamed body
    /// is never collected for inspection alone, so the limit does not apply to it.
    pub fn max_message_size(&self) -> u64 {
        if self.streams {
            u64::MAX
        } else {
            self.rules.max_message_size
        }
    }

    /// Starts streaming a RETR (not a TOP: it is cut down after inspection) when the rules
    /// allow it.
    pub fn start_stream(&self, user: &str, number: u32) -> Option<Box<Streaming>> {
        if !self.streams {
            return None;
        }
        let inspector = StreamInspector::new(&self.rules, false, "")?;
        Streaming::start(inspector, user, number)
    }

    /// Whether an oversize message passes uninspected (`oversize: allow`).
    pub fn passes_oversize(&self) -> bool {
        self.rules.oversize == popgate_inspect::Oversize::Allow
    }
}

/// Decides what the client gets for `message`, hands it to the core, and returns the
/// verdict's label for the session summary.
///
/// Cancel safety: not cancel safe (the core waits for exactly one delivery).
pub async fn deliver(
    session: &mut Session,
    plan: Option<&Arc<InspectionPlan>>,
    message: CollectedMessage,
    oversize: bool,
) -> &'static str {
    let number = message.number;
    let top_lines = message.top_lines;
    if let Some(stream) = message.stream {
        return deliver_streamed(session, stream, message.body, number).await;
    }
    let raw = match message.body.into_bytes() {
        Ok(raw) => raw,
        Err(err) => {
            warn!(number, error = %err, "could not collect the message; withheld");
            metrics::message("tempfail");
            session.deliver_message(tempfail(), Instant::now());
            return "tempfail";
        }
    };
    let Some(plan) = plan else {
        metrics::message("allow");
        session.deliver_message(Delivery::Body(raw), Instant::now());
        return "allow";
    };
    let started = Instant::now();
    let plan = plan.clone();
    // `_`, not `-`: the replacement text is quoted-printable, which encodes `-`.
    let quarantine_id = format!(
        "{}_{}_{}",
        unix_seconds(),
        std::process::id(),
        NEXT_QUARANTINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let decided = decide(plan, raw, oversize, quarantine_id.clone(), top_lines).await;
    let elapsed = started.elapsed();
    metrics::inspection(elapsed);
    let (delivery, label) = match decided {
        Ok(decided) => {
            let label = decided.verdict.as_str();
            metrics::message(label);
            info!(
                number,
                size = decided.size,
                message_id = %decided.message_id,
                verdict = decided.verdict.as_str(),
                rule = %decided.rule,
                reason = %decided.reason,
                ambiguous = decided.ambiguity.as_deref(),
                quarantine_id = decided.quarantined.then_some(quarantine_id.as_str()),
                inspection_ms = elapsed.as_secs_f64() * 1000.0,
                "message inspected"
            );
            (decided.delivery, label)
        }
        Err(err) => {
            warn!(number, error = %err, "inspection failed; message withheld");
            metrics::message("tempfail");
            (tempfail(), "tempfail")
        }
    };
    session.deliver_message(delivery, Instant::now());
    label
}

/// Completes a streamed message: usually decided already, else by the batch result.
async fn deliver_streamed(
    session: &mut Session,
    stream: Box<Streaming>,
    body: MessageBuffer,
    number: u32,
) -> &'static str {
    let started = Instant::now();
    let small = body.len() <= INLINE_LIMIT as u64;
    let whole = move || -> std::io::Result<Vec<u8>> {
        let raw = body.into_bytes()?;
        Ok(popgate_inspect::unstuff(without_terminator(&raw)))
    };
    let finished = if small {
        stream.finish(whole)
    } else {
        // Usually decided already; a fallback to the batch result parses the whole message.
        tokio::task::spawn_blocking(move || stream.finish(whole))
            .await
            .map_err(|err| FinishError::Io(std::io::Error::other(err)))
            .and_then(|finished| finished)
    };
    let elapsed = started.elapsed();
    metrics::inspection(elapsed);
    match finished {
        Ok(done) => {
            let label = done.outcome.verdict.as_str();
            metrics::message(label);
            info!(
                number,
                size = done.size,
                message_id = %done.message_id,
                verdict = label,
                rule = %done.outcome.rule,
                reason = %done.outcome.reason,
                ambiguous = done.outcome.ambiguity.as_deref(),
                streamed = true,
                inspection_ms = elapsed.as_secs_f64() * 1000.0,
                "message inspected"
            );
            session.deliver_message(Delivery::Body(done.wire), Instant::now());
            label
        }
        Err(err) => {
            // Part of it is out: the client gets no terminator and keeps the message on
            // the server; its retry is inspected whole.
            warn!(number, error = ?err, "streamed inspection could not finish; session ended");
            metrics::message("tempfail");
            session.deliver_message(tempfail(), Instant::now());
            "tempfail"
        }
    }
}

fn tempfail() -> Delivery {
    Delivery::TempFail("message held back by the gateway, try again later".into())
}

/// The outcome for one message.
struct Decided {
    delivery: Delivery,
    verdict: Verdict,
    rule: String,
    reason: String,
    /// Why readers could split the message differently, when they could (SPEC §4).
    ambiguity: Option<String>,
    message_id: String,
    size: usize,
    quarantined: bool,
}

async fn decide(
    plan: Arc<InspectionPlan>,
    raw: Vec<u8>,
    oversize: bool,
    quarantine_id: String,
    top_lines: Option<u32>,
) -> std::io::Result<Decided> {
    let scan = match (&plan.antivirus, oversize) {
        (Some(av), false) => {
            let unstuffed = popgate_inspect::unstuff_cow(without_terminator(&raw));
            Some(super::clamd::scan(&av.clamd, &unstuffed, av.timeout).await)
        }
        _ => None,
    };
    let (mut decided, quarantine) = if raw.len() <= INLINE_LIMIT {
        // A small parse costs less than the two thread hand-offs of the blocking pool.
        judge(&plan, raw, scan, oversize, &quarantine_id, top_lines)
    } else {
        let _permit = INSPECTIONS.acquire().await.map_err(std::io::Error::other)?;
        let (plan, id) = (plan.clone(), quarantine_id.clone());
        tokio::task::spawn_blocking(move || judge(&plan, raw, scan, oversize, &id, top_lines))
            .await
            .map_err(std::io::Error::other)?
    };
    if let Some(original) = quarantine {
        let dir = plan.quarantine_dir.clone();
        tokio::task::spawn_blocking(move || {
            super::quarantine::store(&dir, &quarantine_id, &original)
        })
        .await
        .map_err(std::io::Error::other)??;
        decided.quarantined = true;
    }
    Ok(decided)
}

/// The blocking part: parse and decide, then rebuild what the client gets. Returns the
/// unstuffed original too when the verdict quarantines it.
fn judge(
    plan: &InspectionPlan,
    raw: Vec<u8>,
    scan: Option<ScanResult>,
    oversize: bool,
    quarantine_id: &str,
    top_lines: Option<u32>,
) -> (Decided, Option<Vec<u8>>) {
    let unstuffed = popgate_inspect::unstuff_cow(without_terminator(&raw));
    let message_id = message_id(&unstuffed);
    let size = unstuffed.len();
    let inspection: Inspection = if oversize {
        // Only the beginning was kept: the verdict is the action's `oversize: deny`.
        popgate_inspect::inspect(
            &unstuffed,
            &oversize_rules(&plan.rules),
            None,
            quarantine_id,
        )
    } else {
        popgate_inspect::inspect(&unstuffed, &plan.rules, scan.as_ref(), quarantine_id)
    };
    let quarantine = (inspection.verdict == Verdict::Quarantine).then(|| unstuffed.to_vec());
    let body = match (&inspection.output, top_lines) {
        (Output::Withhold, _) => None,
        (Output::Original, None) => Some(None),
        (Output::Original, Some(lines)) => Some(Some(stuffed(&top_of(&unstuffed, lines)))),
        (Output::Rewritten(message), None) => Some(Some(stuffed(message))),
        (Output::Rewritten(message), Some(lines)) => Some(Some(stuffed(&top_of(message, lines)))),
    };
    drop(unstuffed);
    let delivery = match body {
        None => tempfail(),
        // The original bytes, as the server sent them: no copy, no re-stuffing.
        Some(None) => Delivery::Body(raw),
        Some(Some(rebuilt)) => Delivery::Body(rebuilt),
    };
    let decided = Decided {
        delivery,
        verdict: inspection.verdict,
        rule: inspection.rule,
        reason: inspection.reason,
        ambiguity: inspection.ambiguity,
        message_id,
        size,
        quarantined: false,
    };
    (decided, quarantine)
}

/// Rules that make an oversize message's verdict `deny` whatever its content.
fn oversize_rules(rules: &Rules) -> Rules {
    Rules {
        max_message_size: 0,
        oversize: popgate_inspect::Oversize::Deny,
        ..rules.clone()
    }
}

/// Dot-stuffs a message and appends the terminator.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    popgate_inspect::restuff_into(message, &mut out);
    out
}

/// The header and the first `lines` body lines (RFC 1939 §7 TOP).
fn top_of(message: &[u8], lines: u32) -> Vec<u8> {
    let header_end = memchr::memmem::find(message, b"\r\n\r\n")
        .map(|pos| pos + 4)
        .unwrap_or(message.len());
    let mut end = header_end;
    for _ in 0..lines {
        match memchr::memchr(b'\n', &message[end..]) {
            Some(pos) => end += pos + 1,
            None => {
                end = message.len();
                break;
            }
        }
    }
    message[..end].to_vec()
}

/// The Message-ID of a message's header, for the log.
pub(super) fn message_id(message: &[u8]) -> String {
    let header_end = memchr::memmem::find(message, b"\r\n\r\n").unwrap_or(message.len());
    String::from_utf8_lossy(&message[..header_end])
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim().chars().take(200).collect())
        })
        .unwrap_or_default()
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keeps `ScanError` in this module's vocabulary for the clamd client.
pub(super) fn scan_failed(error: ScanError) -> ScanResult {
    ScanResult::Failed(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_header_and_requested_lines() {
        let msg = b"Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(top_of(msg, 0), b"Subject: x\r\nFrom: a\r\n\r\n");
        assert_eq!(top_of(msg, 2), b"Subject: x\r\nFrom: a\r\n\r\nl1\r\nl2\r\n");
        assert_eq!(top_of(msg, 10), msg);
    }

    #[test]
    fn message_id_is_found_case_insensitively() {
        let msg = b"From: a\r\nmessage-ID: <x@y>\r\n\r\nbody";
        assert_eq!(message_id(msg), "<x@y>");
    }
}
