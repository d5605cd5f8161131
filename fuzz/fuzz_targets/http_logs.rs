//! Fuzz target `http_logs`: the property is [`checks::http_logs`] (shared with `cargo test`, which
//! replays the seeds and past failures through it).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::http_logs(data));
