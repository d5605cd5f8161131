//! Processors: one file per transformation. See `registry` for the list.
pub mod batch;
pub mod log_transform;
pub mod memory_limiter;
pub mod regex_parser;
pub mod segments;
