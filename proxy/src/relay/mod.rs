//! Driving sessions: the byte pump and the connection type it moves bytes through.

pub mod conn;
pub mod inspection;
pub mod pump;
pub mod session_task;
