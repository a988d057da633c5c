//! `popgate demo`: a self-contained trial on loopback (SPEC §6).

use std::process::ExitCode;

/// Runs the demo; `keep_running` leaves it up for a manual try.
pub fn run(keep_running: bool) -> ExitCode {
    let _ = keep_running;
    eprintln!("popgate demo: not built yet");
    ExitCode::FAILURE
}
