//! The session core from both sides with arbitrary interleavings; see `../checks.rs`.
#![no_main]

#[allow(dead_code)] // each target uses part of the shared checks
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::session(data));
