//! Driving sessions: everything between an accepted connection with its route and the
//! session's end. One RETR, in the order a reader follows it:
//!
//! 1. `session_task.rs` sets the legs up (connect, implicit TLS) and starts the driver;
//! 2. `drive.rs` runs the pump and does what it stops for;
//! 3. `pump.rs` moves bytes between the legs and the POP3 core (`crate::pop3`), and hands
//!    body chunks to the message's job;
//! 4. `message_job.rs` owns the downloaded message: its buffer (`message_buffer.rs`,
//!    spilled to `crate::spool`), its stream (`streaming.rs`), its oversize state and the
//!    plan it started under (`crate::config::inspection_plan`);
//! 5. `inspection.rs` judges it (with `clamd.rs` and `quarantine.rs`) and the job hands the
//!    core its delivery.
//!
//! `session_end.rs` is the one type for how a session stopped; `server_leg.rs` the server
//! leg's setup and opportunistic fallback; `tunnel.rs` and `opaque.rs` the opaque copies.

pub mod clamd;
pub mod drive;
pub mod inspection;
pub mod login_log;
pub mod message_buffer;
pub mod message_job;
pub mod opaque;
pub mod pump;
pub mod server_leg;
pub mod session_end;
pub mod session_task;
pub mod streaming;
pub mod stuffing_stream;
pub mod tunnel;
