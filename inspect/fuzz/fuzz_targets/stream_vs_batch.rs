//! Differential target: streaming against batch inspection (see
//! `properties::stream_vs_batch`).

#![no_main]

use libfuzzer_sys::fuzz_target;

mod properties;
#[path = "../../tests/reference/mod.rs"]
mod reference;

fuzz_target!(|data: &[u8]| properties::stream_vs_batch(data));
