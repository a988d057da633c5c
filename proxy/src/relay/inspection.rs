//! Judging one message (SPEC §4 verdicts): what the client receives for a RETR or TOP
//! body, for the [`MessageJob`](super::message_job::MessageJob) that collected it.
//!
//! A collected body is scanned with clamd when the action asks, judged by
//! `popgate_inspect::inspect` off the async threads, its original written to `quarantine/`
//! when the verdict says so, and an inspected TOP cut down to what the client asked for. A
//! streamed body is finished by its stream, or by the batch result when the stream could
//! not decide alone. Large bodies are read back (from the spool) only under the inspection
//! semaphore. Anything that goes wrong on our side withholds the message
//! (`-ERR [SYS/TEMP]`): it stays on the server, never lost.

use std::sync::Arc;
use std::time::Instant;

use popgate_inspect::{Inspection, Output, Rules, ScanResult, Verdict};
use tracing::{info, warn};

use super::message_buffer::{self, CollectError, MessageBuffer};
use super::streaming::{Ending, FinishError};
use crate::config::inspection_plan::InspectionPlan;
use crate::metrics;
use crate::pop3::body::without_terminator;
use crate::pop3::Delivery;
use crate::shared::SessionShared;
use crate::state::quarantine;

/// Why a collected message could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The body is not whole (spool full, spool I/O).
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// A blocking task or the semaphore failed.
    #[error("inspection task failed: {0}")]
    Task(String),
    /// The original could not be written to the quarantine.
    #[error("writing the quarantined original: {0}")]
    Quarantine(#[source] std::io::Error),
}

/// Messages up to this size are judged on the session's own thread.
const INLINE_LIMIT: usize = 64 * 1024;

/// What the client gets for one message, and the verdict's label for the summary.
#[derive(Debug)]
pub struct Judged {
    /// For the POP3 core.
    pub delivery: Delivery,
    /// `allow`, `strip`, ..., or `tempfail`.
    pub label: &'static str,
}

impl Judged {
    /// Withheld: `-ERR [SYS/TEMP]`, or the session's end after a partial delivery.
    pub fn tempfail() -> Judged {
        metrics::message("tempfail");
        Judged {
            delivery: tempfail(),
            label: "tempfail",
        }
    }
}

/// A collected message, after the whole body arrived (or, `oversize`, its first
/// `max_message_size` bytes).
#[derive(Debug)]
pub struct Collected {
    /// The message number.
    pub number: u32,
    /// For a TOP: the body lines asked for.
    pub top_lines: Option<u32>,
    /// The bytes as the server sent them.
    pub body: MessageBuffer,
    /// Only the beginning was kept: the action's oversize rule decides.
    pub oversize: bool,
}

/// Judges a collected message under `plan` (none: it passes as it is).
///
/// Cancel safety: safe (nothing is delivered here).
pub async fn judge_collected(
    shared: &Arc<SessionShared>,
    plan: Option<&Arc<InspectionPlan>>,
    message: Collected,
) -> Judged {
    let Collected {
        number,
        top_lines,
        body,
        oversize,
    } = message;
    let Some(plan) = plan else {
        if oversize {
            // Only the beginning was kept, and nothing can build a replacement.
            warn!(
                number,
                "oversize message without an inspection plan; withheld"
            );
            return Judged::tempfail();
        }
        return match message_buffer::read_back(body).await {
            Ok(raw) => {
                metrics::message("allow");
                Judged {
                    delivery: Delivery::Body(raw),
                    label: "allow",
                }
            }
            Err(err) => {
                warn!(number, error = %err, "could not collect the message; withheld");
                Judged::tempfail()
            }
        };
    };
    let started = Instant::now();
    let quarantine_id = shared.quarantine_id(unix_seconds());
    let decided = decide(
        shared,
        plan.clone(),
        body,
        oversize,
        &quarantine_id,
        top_lines,
    )
    .await;
    let elapsed = started.elapsed();
    metrics::inspection(elapsed);
    match decided {
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
            Judged {
                delivery: decided.delivery,
                label,
            }
        }
        Err(err) => {
            warn!(number, error = %err, "inspection failed; message withheld");
            Judged::tempfail()
        }
    }
}

/// Completes a streamed message: usually decided already, else by the batch result over
/// the collected body (read back under the inspection semaphore).
///
/// Cancel safety: safe (nothing is delivered here).
pub async fn judge_streamed(
    shared: &Arc<SessionShared>,
    ending: Ending,
    body: MessageBuffer,
    number: u32,
) -> Judged {
    let started = Instant::now();
    let finished = match ending {
        Ending::Done(done) => Ok(done),
        Ending::NeedsWhole(pending) if !body.is_usable() => {
            pending.abandon(&shared.diverged);
            Err(body
                .into_bytes()
                .map_or_else(FinishError::Collect, |_| FinishError::Diverged))
        }
        Ending::NeedsWhole(pending) => {
            let small = body.len() <= INLINE_LIMIT as u64 && !body.is_spooled();
            let _permit = if small {
                None
            } else {
                shared.inspections.acquire().await.ok()
            };
            let read = message_buffer::read_back(body).await;
            match read {
                Err(err) => Err(FinishError::Collect(err)),
                Ok(raw) if small => {
                    let whole = popgate_inspect::unstuff(without_terminator(&raw));
                    pending.finish(&whole, &shared.diverged)
                }
                Ok(raw) => {
                    // The batch fallback parses the whole message: on the blocking pool.
                    let shared = shared.clone();
                    tokio::task::spawn_blocking(move || {
                        let whole = popgate_inspect::unstuff(without_terminator(&raw));
                        drop(raw);
                        pending.finish(&whole, &shared.diverged)
                    })
                    .await
                    .unwrap_or_else(|err| {
                        Err(FinishError::Collect(CollectError::Task(err.to_string())))
                    })
                }
            }
        }
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
            Judged {
                delivery: Delivery::Body(done.wire),
                label,
            }
        }
        Err(err) => {
            // Part of it is out: the client gets no terminator and keeps the message on
            // the server; its retry is inspected whole.
            warn!(number, error = %err, "streamed inspection could not finish; session ended");
            Judged::tempfail()
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
    shared: &Arc<SessionShared>,
    plan: Arc<InspectionPlan>,
    body: MessageBuffer,
    oversize: bool,
    quarantine_id: &str,
    top_lines: Option<u32>,
) -> Result<Decided, JudgeError> {
    let small = body.len() <= INLINE_LIMIT as u64 && !body.is_spooled();
    // Admission before the body is read back: a large body is in memory only under it.
    let _permit = if small {
        None
    } else {
        Some(
            shared
                .inspections
                .acquire()
                .await
                .map_err(|err| JudgeError::Task(err.to_string()))?,
        )
    };
    let raw = message_buffer::read_back(body).await?;
    let scan = match (plan.antivirus(), oversize) {
        (Some(av), false) => {
            let unstuffed = popgate_inspect::unstuff_cow(without_terminator(&raw));
            Some(super::clamd::scan(&av.clamd, &unstuffed, av.timeout).await)
        }
        _ => None,
    };
    let (mut decided, quarantine) = if small {
        // A small parse costs less than the two thread hand-offs of the blocking pool.
        judge(&plan, raw, scan, oversize, quarantine_id, top_lines)
    } else {
        let (plan, id) = (plan.clone(), quarantine_id.to_owned());
        tokio::task::spawn_blocking(move || judge(&plan, raw, scan, oversize, &id, top_lines))
            .await
            .map_err(|err| JudgeError::Task(err.to_string()))?
    };
    if let Some(original) = quarantine {
        let entry = quarantine::Entry {
            id: quarantine_id.to_owned(),
            received_at: crate::state::rfc3339(std::time::SystemTime::now()),
            policy: plan.rules().policy.clone(),
            action: plan.rules().action.clone(),
            // The registry knows the logged-in user of the session this task serves.
            user: crate::registry::current()
                .map(|e| e.user())
                .unwrap_or_default(),
            rule: decided.rule.clone(),
            reason: decided.reason.clone(),
            size: 0,
            message_id: decided.message_id.clone(),
        };
        let store = plan.quarantine().clone();
        // Full or failing: the caller withholds the message (-ERR [SYS/TEMP]), nothing lost.
        tokio::task::spawn_blocking(move || {
            let stored = store.store(entry, &original);
            metrics::quarantine_bytes(crate::state::dir_bytes(store.dir()));
            stored
        })
        .await
        .map_err(|err| JudgeError::Task(err.to_string()))?
        .map_err(|err| JudgeError::Quarantine(std::io::Error::other(err)))?;
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
            &oversize_rules(plan.rules()),
            None,
            quarantine_id,
        )
    } else {
        popgate_inspect::inspect(&unstuffed, plan.rules(), scan.as_ref(), quarantine_id)
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
    // Only the value found is converted: this runs for every message.
    message[..header_end]
        .split(|&b| b == b'\n')
        .find_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            let value = value.strip_suffix(b"\r").unwrap_or(value);
            name.eq_ignore_ascii_case(b"message-id").then(|| {
                String::from_utf8_lossy(value)
                    .trim()
                    .chars()
                    .take(200)
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
        let eight_bit = b"Subject: \xff\xfe\r\nMessage-Id:  <a@b> \r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(message_id(eight_bit), "<a@b>");
        assert_eq!(message_id(b"From: a\r\n\r\nMessage-ID: <body@x>\r\n"), "");
        assert_eq!(message_id(b"Message-ID: <cut"), "<cut");
    }
}
