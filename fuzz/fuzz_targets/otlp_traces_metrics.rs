//! Fuzz target `otlp_traces_metrics`: the property is [`checks::otlp_traces_metrics`] (shared with `cargo test`, which
//! replays the seeds and past failures through it).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::otlp_traces_metrics(data));
