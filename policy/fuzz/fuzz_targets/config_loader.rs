//! Fuzzes the configuration loader: arbitrary bytes as `popgate.json`, a policy, an action
//! and a TLS profile (split on 0xFF), through `Config::from_sources`. See `checks.rs`.

#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config_loader(data));
