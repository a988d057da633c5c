//! The log writer's direct path: a line is written by the thread that made it, when that
//! cannot block and nothing written before it is still waiting for the writer thread.
//!
//! Handing every line to the writer thread cost a wake-up of that thread per line: when
//! messages come one by one (a client's sequential RETRs), 13 % of popgate's CPU went to
//! switching the log thread in and out (BENCHMARKS.md). A write that cannot block costs less
//! than that wake-up. Which writes cannot block depends on what stderr is:
//!
//! * a regular file or `/dev/null`: `write(2)` goes to the page cache;
//! * a socket (journald's stdout stream): `send(2)` with `MSG_DONTWAIT`;
//! * a pipe: `write(2)` on a descriptor popgate opens itself with `O_NONBLOCK`, so the
//!   flag never reaches the file description other processes share;
//! * anything else (a terminal): no direct path, every line goes to the thread.
//!
//! What a socket or pipe does not take at once goes to the writer thread, and so does every
//! line while earlier ones wait there (their order is kept). The writer thread writes under
//! the same lock, so the two paths never interleave parts of lines.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// How a line is written without blocking.
#[derive(Debug)]
enum How {
    /// `write(2)` on stderr itself (a regular file or `/dev/null`).
    Stderr,
    /// `send(2)` with `MSG_DONTWAIT` on stderr (a socket).
    Send,
    /// `write(2)` on popgate's own non-blocking descriptor of the pipe.
    Own(OwnedFd),
}

/// The direct path to stderr, shared by the runtime threads and the writer thread.
#[derive(Debug)]
pub struct Direct {
    how: How,
    /// Held while anything is written, by either path.
    lock: Mutex<()>,
    /// Lines handed to the writer thread and not yet written.
    queued: AtomicUsize,
}

impl Direct {
    /// The direct path for this process's stderr, when it has one.
    // Runs once, when logging starts (before the runtime serves anything).
    #[allow(clippy::disallowed_methods)]
    pub fn for_stderr() -> Option<Direct> {
        let metadata = std::fs::metadata("/proc/self/fd/2").ok()?;
        let kind = metadata.file_type();
        let how = if kind.is_file() || is_dev_null(&metadata) {
            How::Stderr
        } else if kind.is_socket() {
            How::Send
        } else if kind.is_fifo() {
            // A new open of the pipe: a file description of popgate's own.
            let pipe = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open("/proc/self/fd/2")
                .ok()?;
            How::Own(pipe.into())
        } else {
            return None;
        };
        Some(Direct::new(how))
    }

    fn new(how: How) -> Direct {
        Direct {
            how,
            lock: Mutex::new(()),
            queued: AtomicUsize::new(0),
        }
    }

    /// Writes `line` now if it can, else hands it (or what a full socket or pipe did not
    /// take) to `queue`, which returns whether it took it.
    pub fn write_or_queue(&self, line: Vec<u8>, queue: impl FnOnce(Vec<u8>) -> bool) {
        if self.queued.load(Ordering::Acquire) == 0 {
            if let Ok(_guard) = self.lock.try_lock() {
                // Checked again under the lock: the writer thread counts down under it.
                if self.queued.load(Ordering::Acquire) == 0 {
                    let written = self.write(&line);
                    if written < line.len() {
                        // Queued before the lock is released: nothing can pass the rest.
                        self.queue(line[written..].to_vec(), queue);
                    }
                    return;
                }
            }
        }
        self.queue(line, queue);
    }

    fn queue(&self, line: Vec<u8>, queue: impl FnOnce(Vec<u8>) -> bool) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if !queue(line) {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// For the writer thread: held while it writes a batch.
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// For the writer thread, under [`Direct::lock`]: `lines` queued lines were written.
    pub fn written(&self, lines: usize) {
        self.queued.fetch_sub(lines, Ordering::AcqRel);
    }

    /// Writes what can be written without blocking; returns how much that was.
    fn write(&self, line: &[u8]) -> usize {
        let mut done = 0;
        while done < line.len() {
            let rest = &line[done..];
            let n = match &self.how {
                How::Stderr => write(2, rest),
                How::Own(fd) => write(fd.as_raw_fd(), rest),
                How::Send => {
                    // SAFETY: `rest` is a valid buffer of `rest.len()` bytes for the call.
                    let n = unsafe {
                        libc::send(
                            2,
                            rest.as_ptr().cast(),
                            rest.len(),
                            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        )
                    };
                    io_result(n)
                }
            };
            match n {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // Would block, or failed: the writer thread takes the rest (and reports
                // nothing either: there is nowhere to report a failing log).
                Err(_) => break,
            }
        }
        done
    }
}

fn write(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a valid buffer of `bytes.len()` bytes for the call.
    io_result(unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) })
}

fn io_result(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn is_dev_null(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // Character device 1:3 on Linux.
    metadata.file_type().is_char_device() && metadata.rdev() == libc::makedev(1, 3)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_full_pipe_hands_the_rest_and_every_later_line_to_the_queue_in_order() {
        let (mut reader, writer) = UnixStream::pair().unwrap();
        writer.set_nonblocking(true).unwrap();
        let direct = Direct::new(How::Own(writer.into()));
        let mut queued: Vec<Vec<u8>> = Vec::new();
        direct.write_or_queue(b"first\n".to_vec(), |_| panic!("an empty socket takes it"));
        let big = vec![b'x'; 4 << 20];
        direct.write_or_queue(big.clone(), |rest| {
            queued.push(rest);
            true
        });
        assert_eq!(queued.len(), 1, "the socket cannot take 4 MiB at once");
        let rest_len = queued[0].len();
        assert!(rest_len > 0 && rest_len < big.len());
        // Something waits for the writer thread: the next line queues behind it.
        direct.write_or_queue(b"second\n".to_vec(), |line| {
            queued.push(line);
            true
        });
        assert_eq!(queued[1], b"second\n");
        let mut got = vec![0u8; 6 + big.len() - rest_len];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got[..6], b"first\n");
        // The writer thread wrote both: lines go direct again.
        direct.written(2);
        direct.write_or_queue(b"third\n".to_vec(), |_| panic!("nothing waits any more"));
    }

    #[test]
    fn a_line_the_queue_refuses_is_not_counted_as_waiting() {
        let direct = Direct::new(How::Stderr);
        direct.queued.store(1, Ordering::Release);
        direct.write_or_queue(b"dropped\n".to_vec(), |_| false);
        assert_eq!(direct.queued.load(Ordering::Acquire), 1);
    }
}
