//! Driving sessions: the byte pump and the connection type it moves bytes through.

pub mod clamd;
pub mod drive;
pub mod inspection;
pub mod message_buffer;
pub mod message_job;
pub mod opaque;
pub mod pump;
pub mod quarantine;
pub mod server_leg;
pub mod session_end;
pub mod session_task;
pub mod streaming;
pub mod stuffing_stream;
pub mod tunnel;
