//! Processors: one file per transformation. See `registry` for the list.
pub mod log_transform;
pub mod regex_parser;
pub mod segments;
