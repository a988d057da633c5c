//! Driving sessions: the byte pump and the connection type it moves bytes through.

pub mod clamd;
pub mod inspection;
pub mod login_log;
pub mod message_buffer;
pub mod message_job;
pub mod pump;
pub mod server_leg;
pub mod session_task;
pub mod streaming;
pub mod stuffing_stream;
pub mod tunnel;
