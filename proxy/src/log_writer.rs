//! Log lines never block the runtime threads (issue 16): a formatted line is written at once
//! when that cannot block (`log_direct.rs`), else handed to a bounded queue that one
//! dedicated thread writes to stderr, in batches. A runtime thread never blocks on a slow
//! journal or a full pipe; when the queue is full the line is dropped and counted
//! (`popgate_log_lines_dropped_total`) rather than stalling every session.
//!
//! [`flush`] waits (boundedly) until every queued line is written: the CLI calls it before
//! the process exits so the last lines (`popgate stopped`, a start-up error) are kept.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use crate::log_direct::Direct;

/// Lines that may wait for the writer thread.
const QUEUE: usize = 16 * 1024;
/// How long [`flush`] waits for the writer thread.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the writer thread receives.
enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Hands out one [`LineWriter`] per event; cheap to clone.
#[derive(Debug, Clone)]
pub struct NonBlocking {
    queue: SyncSender<Message>,
    direct: Option<&'static Direct>,
}

/// Collects one formatted event and writes or queues it when dropped.
#[derive(Debug)]
pub struct LineWriter<'a> {
    queue: &'a SyncSender<Message>,
    direct: Option<&'static Direct>,
    line: Vec<u8>,
}

static QUEUE_HANDLE: OnceLock<SyncSender<Message>> = OnceLock::new();
static DIRECT: OnceLock<Option<Direct>> = OnceLock::new();

impl NonBlocking {
    /// Starts the writer thread (once per process) and returns the subscriber's writer. The
    /// thread confines itself as a runtime thread does under `privileges` (it needs no
    /// capability; under root switching it keeps them for glibc's `setuid` broadcast).
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn stderr(privileges: crate::privileges::Plan) -> std::io::Result<NonBlocking> {
        let direct = DIRECT.get_or_init(Direct::for_stderr).as_ref();
        if let Some(queue) = QUEUE_HANDLE.get() {
            return Ok(NonBlocking {
                queue: queue.clone(),
                direct,
            });
        }
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("popgate-log".into())
            .spawn(move || {
                crate::privileges::confine_runtime_thread(privileges);
                write_lines(&lines, direct);
            })?;
        let queue = QUEUE_HANDLE.get_or_init(|| queue).clone();
        Ok(NonBlocking { queue, direct })
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            queue: &self.queue,
            direct: self.direct,
            line: Vec::new(),
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing-subscriber hands over a whole line in one write: one exact allocation.
        if self.line.is_empty() {
            self.line = buf.to_vec();
            return Ok(buf.len());
        }
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        let queue = |line| match self.queue.try_send(Message::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                crate::metrics::log_line_dropped();
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        };
        match self.direct {
            Some(direct) => direct.write_or_queue(line, queue),
            None => {
                queue(line);
            }
        }
    }
}

/// Waits until every line queued so far is written (at most two seconds).
pub fn flush() {
    let Some(queue) = QUEUE_HANDLE.get() else {
        return;
    };
    let (done, written) = mpsc::sync_channel(1);
    // Blocking send: the flush must queue behind the lines, even when the queue is full.
    if queue.send(Message::Flush(done)).is_ok() {
        let _ = written.recv_timeout(FLUSH_TIMEOUT);
    }
}

/// Lines are written in batches: the thread wakes for a line, then takes every line queued
/// behind it and writes them all with one `write`. A quiet proxy writes each line at once:
/// tests and operators read the log right after the event (a 2 ms pause after each batch,
/// tried to save wake-ups, let a test read the log before a verdict line was written).
/// A busy one pays one write per batch instead of one per line. Batches are written under
/// the direct path's lock, and counted off it once written.
fn write_lines(lines: &Receiver<Message>, direct: Option<&Direct>) {
    let stderr = std::io::stderr();
    let mut batch: Vec<u8> = Vec::new();
    while let Ok(first) = lines.recv() {
        let mut flushes = Vec::new();
        let mut count = take(first, &mut batch, &mut flushes);
        while let Ok(message) = lines.try_recv() {
            count += take(message, &mut batch, &mut flushes);
        }
        let guard = direct.map(Direct::lock);
        let mut out = stderr.lock();
        let _ = out.write_all(&batch);
        let _ = out.flush();
        drop(out);
        if let Some(direct) = direct {
            direct.written(count);
        }
        drop(guard);
        batch.clear();
        if batch.capacity() > 1 << 20 {
            batch = Vec::new();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Adds a message to the batch; returns the number of lines it was (0 or 1).
fn take(message: Message, batch: &mut Vec<u8>, flushes: &mut Vec<SyncSender<()>>) -> usize {
    match message {
        Message::Line(line) => {
            batch.extend_from_slice(&line);
            1
        }
        Message::Flush(done) => {
            flushes.push(done);
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_is_one_queued_line_and_a_full_queue_drops_instead_of_blocking() {
        let (queue, lines) = mpsc::sync_channel(1);
        let writer = NonBlocking {
            queue,
            direct: None,
        };
        for text in ["first line\n", "second line\n"] {
            let mut line = writer.make_writer();
            line.write_all(text.as_bytes()).unwrap();
            // Dropping the writer queues the event; the second finds the queue full.
        }
        match lines.try_recv() {
            Ok(Message::Line(line)) => assert_eq!(line, b"first line\n"),
            _ => panic!("the first line was not queued"),
        }
        assert!(
            lines.try_recv().is_err(),
            "the second line was dropped, not queued"
        );
    }
}
