//! Differential target: popgate's reader against the independent reference reader
//! (see `properties::splitter`).

#![no_main]

use libfuzzer_sys::fuzz_target;

mod properties;
#[path = "../../tests/reference/mod.rs"]
mod reference;

fuzz_target!(|data: &[u8]| properties::splitter(data));
